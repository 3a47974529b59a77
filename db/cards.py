"""SQL for the catalog: sets and cards."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from db.pool import Conn, one


def normalize_name(name: str) -> str:
    """Lower case, accents and punctuation stripped, spaces folded: the matching key of a name."""
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"\s+", " ", re.sub(r"[^a-z0-9 ]+", " ", text.lower())).strip()


@dataclass(frozen=True)
class CardRow:
    id: Any
    card_key: str
    name: str
    game: str
    set_code: str
    set_name: str
    card_number: str | None
    variant: str | None
    image_key: str | None


CARD_COLUMNS = """
    c.id, c.card_key, c.name, s.game_type AS game, s.code AS set_code, s.name AS set_name,
    c.card_number, c.variant, c.image_key
"""


def upsert_set(conn: Conn, *, code: str, name: str, game: str) -> tuple[Any, bool]:
    """The set's id, and whether this call created or changed it."""
    row = conn.execute(
        """
        INSERT INTO sets (code, name, game_type) VALUES (%(code)s, %(name)s, %(game)s)
        ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, game_type = EXCLUDED.game_type
            WHERE (sets.name, sets.game_type) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.game_type)
        RETURNING id
        """,
        {"code": code, "name": name, "game": game},
    ).fetchone()
    if row:
        return row["id"], True
    existing = one(conn.execute("SELECT id FROM sets WHERE code = %(code)s", {"code": code}))
    return existing["id"], False


def upsert_card(
    conn: Conn,
    *,
    set_id: Any,
    card_key: str,
    name: str,
    card_number: str | None,
    variant: str | None,
    image_key: str | None,
    metadata: dict,
) -> str:
    """Insert or update one printing; returns 'created', 'updated' or 'unchanged'."""
    row = conn.execute(
        """
        INSERT INTO cards (set_id, card_key, name, normalized_name, card_number, variant,
                           image_key, metadata)
        VALUES (%(set_id)s, %(card_key)s, %(name)s, %(normalized)s, %(number)s, %(variant)s,
                %(image_key)s, %(metadata)s)
        ON CONFLICT (card_key) DO UPDATE SET
            set_id = EXCLUDED.set_id, name = EXCLUDED.name,
            normalized_name = EXCLUDED.normalized_name, card_number = EXCLUDED.card_number,
            variant = EXCLUDED.variant, image_key = EXCLUDED.image_key,
            metadata = EXCLUDED.metadata, deleted_at = NULL
        WHERE (cards.set_id, cards.name, cards.card_number, cards.variant, cards.image_key,
               cards.metadata, cards.deleted_at)
              IS DISTINCT FROM
              (EXCLUDED.set_id, EXCLUDED.name, EXCLUDED.card_number, EXCLUDED.variant,
               EXCLUDED.image_key, EXCLUDED.metadata, NULL::timestamp)
        RETURNING (xmax = 0) AS inserted
        """,
        {
            "set_id": set_id,
            "card_key": card_key,
            "name": name,
            "normalized": normalize_name(name),
            "number": card_number,
            "variant": variant,
            "image_key": image_key,
            "metadata": Jsonb(metadata),
        },
    ).fetchone()
    if row is None:
        return "unchanged"
    return "created" if row["inserted"] else "updated"


def card_image_keys(conn: Conn) -> dict[str, str | None]:
    rows = conn.execute("SELECT card_key, image_key FROM cards").fetchall()
    return {r["card_key"]: r["image_key"] for r in rows}


def list_cards(conn: Conn, *, game: str | None = None) -> list[CardRow]:
    rows = conn.execute(
        f"""
        SELECT {CARD_COLUMNS} FROM cards c JOIN sets s ON s.id = c.set_id
        WHERE c.deleted_at IS NULL AND (%(game)s::text IS NULL OR s.game_type = %(game)s)
        ORDER BY c.card_key
        """,
        {"game": game},
    ).fetchall()
    return [CardRow(**r) for r in rows]


def get_card(conn: Conn, *, card_key: str) -> CardRow | None:
    row = conn.execute(
        f"SELECT {CARD_COLUMNS} FROM cards c JOIN sets s ON s.id = c.set_id "
        "WHERE c.card_key = %(key)s AND c.deleted_at IS NULL",
        {"key": card_key},
    ).fetchone()
    return CardRow(**row) if row else None


def catalog_stats(conn: Conn) -> dict[str, Any]:
    """Printings in total, per game, and per (game, set)."""
    rows = conn.execute(
        """
        SELECT s.game_type AS game, s.code, s.name, count(*) AS n
        FROM cards c JOIN sets s ON s.id = c.set_id WHERE c.deleted_at IS NULL
        GROUP BY s.game_type, s.code, s.name ORDER BY s.game_type, count(*) DESC, s.code
        """
    ).fetchall()
    per_game: dict[str, int] = {}
    for r in rows:
        per_game[r["game"]] = per_game.get(r["game"], 0) + r["n"]
    return {
        "total": sum(per_game.values()),
        "per_game": per_game,
        "per_set": [(r["game"], r["code"], r["name"], r["n"]) for r in rows],
    }
