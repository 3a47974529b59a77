"""Catalog search by name, set and number: rapidfuzz over the catalog, plus pg_trgm where present.

The catalog is small (thousands of printings), so every card is scored in process with
rapidfuzz's WRatio; a token equal to a card's set code or collector number lifts that printing,
so "bulbasaur mew 1" finds the exact one. When the database has pg_trgm, its name similarity
is blended in (it is robust to typos in long names).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz, process, utils

from db.pool import Conn

CACHE_S = 60.0

_lock = threading.Lock()
_cache: tuple[float, list[dict], list[str]] | None = None
_has_trgm: bool | None = None


@dataclass(frozen=True)
class CardHit:
    card_key: str
    name: str
    game: str
    set_code: str
    set_name: str
    card_number: str | None
    variant: str | None
    image_key: str | None
    score: float


def _catalog(conn: Conn) -> tuple[list[dict], list[str]]:
    global _cache
    with _lock:
        if _cache is None or time.monotonic() - _cache[0] > CACHE_S:
            rows = conn.execute(
                """
                SELECT c.card_key, c.name, s.game_type AS game, s.code AS set_code,
                       s.name AS set_name, c.card_number, c.variant, c.image_key
                FROM cards c JOIN sets s ON s.id = c.set_id WHERE c.deleted_at IS NULL
                ORDER BY c.card_key
                """
            ).fetchall()
            texts = [
                f"{r['name']} {r['set_code']} {r['set_name']} {r['card_number'] or ''}"
                for r in rows
            ]
            _cache = (time.monotonic(), rows, texts)
        return _cache[1], _cache[2]


def forget_catalog() -> None:
    """Drop the cached catalog (after an import, or between tests)."""
    global _cache, _has_trgm
    with _lock:
        _cache, _has_trgm = None, None


def _trigram_scores(conn: Conn, q: str) -> dict[str, float]:
    global _has_trgm
    if _has_trgm is None:
        _has_trgm = (
            conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'").fetchone()
            is not None
        )
    if not _has_trgm:
        return {}
    rows = conn.execute(
        "SELECT card_key, similarity(name, %(q)s) AS sim FROM cards "
        "WHERE name %% %(q)s AND deleted_at IS NULL ORDER BY sim DESC LIMIT 200",
        {"q": q},
    ).fetchall()
    return {r["card_key"]: float(r["sim"]) * 100 for r in rows}


def search_cards(conn: Conn, *, q: str, limit: int = 20, game: str | None = None) -> list[CardHit]:
    """The best `limit` printings for free text `q`, best first."""
    q = q.strip()
    if not q:
        return []
    rows, texts = _catalog(conn)
    tokens = {t for t in utils.default_process(q).split() if t}
    matches = process.extract(
        q,
        texts,
        scorer=fuzz.WRatio,
        processor=utils.default_process,
        limit=max(200, limit * 10),
        score_cutoff=40,
    )
    trigram = _trigram_scores(conn, q)
    scored: dict[int, float] = {}
    for _, score, i in matches:
        scored[i] = float(score)
    if trigram:
        by_key = {r["card_key"]: i for i, r in enumerate(rows)}
        for key, sim in trigram.items():
            if key in by_key:
                i = by_key[key]
                scored[i] = max(scored.get(i, 0.0), 0.5 * scored.get(i, 0.0) + 0.5 * sim)
    hits: list[tuple[float, Any]] = []
    for i, score in scored.items():
        r = rows[i]
        if game and r["game"] != game:
            continue
        if r["set_code"].lower() in tokens:
            score += 8
        if r["card_number"] and r["card_number"].lower() in tokens:
            score += 8
        if utils.default_process(r["name"]) == utils.default_process(q):
            score += 5
        hits.append((score, r))
    hits.sort(key=lambda h: (-h[0], h[1]["name"], h[1]["card_key"]))
    return [CardHit(**r, score=round(s, 1)) for s, r in hits[:limit]]
