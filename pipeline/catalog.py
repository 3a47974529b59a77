"""Catalog import: `cards.csv` (EVAL.md) → sets, cards and reference images in storage.

Idempotent: a second run of the same folder changes nothing and says so. Bad rows (missing
column, missing or unreadable image, duplicate key, unknown game) are reported with their line
number and skipped; the import goes on.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from db import cards as cards_db
from db.pool import connection
from pipeline.storage import Storage, open_storage

REQUIRED = ("card_key", "game", "name", "set_code", "set_name", "number", "image")
GAMES = {"mtg", "pokemon", "yugioh"}
# Yu-Gi-Oh! rows carry no set; they share one catalog set so every card has a set_id.
SETLESS = {"yugioh": ("YGO", "Yu-Gi-Oh!")}


@dataclass
class BadRow:
    line: int
    card_key: str
    reason: str


@dataclass
class ImportReport:
    rows: int = 0
    outcomes: Counter = field(default_factory=Counter)  # created / updated / unchanged
    bad: list[BadRow] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return self.outcomes["created"] + self.outcomes["updated"]


@dataclass
class CatalogRow:
    line: int
    card_key: str
    game: str
    name: str
    set_code: str
    set_name: str
    number: str | None
    variant: str | None
    image: bytes
    image_path: str
    source_repo: str | None


def _check_image(path: Path) -> bytes:
    data = path.read_bytes()
    with Image.open(io.BytesIO(data)) as img:
        img.verify()
    return data


def read_catalog(folder: Path, report: ImportReport) -> list[CatalogRow]:
    """Parse and validate `cards.csv`; bad rows go to the report, good ones are returned."""
    csv_path = folder / "cards.csv"
    rows: list[CatalogRow] = []
    seen: dict[str, int] = {}
    with csv_path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{csv_path}: missing column(s) {', '.join(missing)}")
        for line, rec in enumerate(reader, start=2):
            report.rows += 1
            key = (rec.get("card_key") or "").strip().lower()
            game = (rec.get("game") or "").strip().lower()
            name = (rec.get("name") or "").strip()
            image_rel = (rec.get("image") or "").strip()

            def bad(reason: str, key: str = key, line: int = line) -> None:
                report.bad.append(BadRow(line, key, reason))

            if None in rec.values() or None in rec:
                bad("wrong number of fields")
                continue
            if not key or not name or not image_rel:
                bad("empty card_key, name or image")
                continue
            if game not in GAMES:
                bad(f"unknown game {game!r}")
                continue
            if key in seen:
                bad(f"duplicate card_key (first on line {seen[key]})")
                continue
            set_code, set_name = rec["set_code"].strip(), rec["set_name"].strip()
            if not set_code:
                if game not in SETLESS:
                    bad("empty set_code")
                    continue
                set_code, set_name = SETLESS[game]
            image_path = (folder / image_rel).resolve()
            if not image_path.is_relative_to(folder.resolve()):
                bad(f"image path {image_rel} leaves the catalog folder")
                continue
            try:
                image = _check_image(image_path)
            except FileNotFoundError:
                bad(f"image {image_rel} not found")
                continue
            except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
                bad(f"image {image_rel} unreadable: {exc}")
                continue
            seen[key] = line
            rows.append(
                CatalogRow(
                    line=line,
                    card_key=key,
                    game=game,
                    name=name,
                    set_code=set_code,
                    set_name=set_name or set_code,
                    number=rec["number"].strip() or None,
                    variant=(rec.get("variant") or "").strip() or None,
                    image=image,
                    image_path=image_rel,
                    source_repo=(rec.get("source_repo") or "").strip() or None,
                )
            )
    return rows


def import_catalog(folder: Path, storage: Storage | None = None) -> ImportReport:
    """Upsert every good row of `folder/cards.csv`; images go to storage by content hash."""
    storage = storage or open_storage()
    report = ImportReport()
    rows = read_catalog(folder, report)
    set_ids: dict[str, object] = {}
    with connection() as conn, conn.transaction():
        for row in rows:
            if row.set_code not in set_ids:
                set_ids[row.set_code], _ = cards_db.upsert_set(
                    conn, code=row.set_code, name=row.set_name, game=row.game
                )
            image_key = storage.put(row.image, prefix="catalog", content_type="image/jpeg")
            outcome = cards_db.upsert_card(
                conn,
                set_id=set_ids[row.set_code],
                card_key=row.card_key,
                name=row.name,
                card_number=row.number,
                variant=row.variant,
                image_key=image_key,
                metadata={"source_repo": row.source_repo, "image_path": row.image_path},
            )
            report.outcomes[outcome] += 1
    return report
