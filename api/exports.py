"""Inventory export formats: our own CSV and the column sets ManaBox, Moxfield and TCGplayer import.

Each format lists its header exactly as the tool writes and reads it; the source of each list is
cited beside it. Rows are one per (printing, condition), quantities summed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from db.inventory import Condition, ExportRow


class ExportFormat(StrEnum):
    CSV = "csv"
    MANABOX = "manabox"
    MOXFIELD = "moxfield"
    TCGPLAYER = "tcgplayer"


# Our own columns: every identifier we hold, so nothing is lost on a round trip.
CSV_COLUMNS = (
    "card_key",
    "game",
    "name",
    "set_code",
    "set_name",
    "number",
    "variant",
    "condition",
    "quantity",
    "purchase_price",
    "value",
    "currency",
)

# ManaBox collection CSV, as ManaBox exports it and reads it back. Source: transmute-mtg's ManaBox
# handler (https://pypi.org/project/transmute-mtg/, "ManaBox typically exports: Name,Set code,…");
# the same header is parsed by sboulema/ManaBoxImporter (Models/Inventory/InventoryCard.cs).
MANABOX_COLUMNS = (
    "Name",
    "Set code",
    "Set name",
    "Collector number",
    "Foil",
    "Rarity",
    "Quantity",
    "ManaBox ID",
    "Scryfall ID",
    "Purchase price",
    "Misprint",
    "Altered",
    "Condition",
    "Language",
    "Purchase price currency",
)
# ManaBox grades on the Cardmarket scale (mint … poor), lowercase with underscores.
MANABOX_CONDITION = {
    Condition.NEAR_MINT: "near_mint",
    Condition.LIGHTLY_PLAYED: "excellent",
    Condition.MODERATELY_PLAYED: "light_played",
    Condition.HEAVILY_PLAYED: "played",
    Condition.DAMAGED: "poor",
}

# Moxfield collection CSV (moxfield.com → Collection → Import, "Moxfield CSV"). Source: the header
# of Moxfield's collection export as reproduced by transmute-mtg (https://pypi.org/project/
# transmute-mtg/) and by mtg_collector's MoxfieldExporter.HEADERS.
MOXFIELD_COLUMNS = (
    "Count",
    "Tradelist Count",
    "Name",
    "Edition",
    "Condition",
    "Language",
    "Foil",
    "Tags",
    "Last Modified",
    "Collector Number",
    "Alter",
    "Proxy",
    "Purchase Price",
)

# TCGplayer app collection CSV (the scanner app's export, which TCGplayer imports). Source:
# transmute-mtg's TCGPlayer handler ("TCGPlayer export format: Quantity,Name,Simple Name,Set,Card
# Number,Set Code,Printing,Condition,Language,Rarity,Product ID,SKU"), matching the exports
# parsed by Mtgdb (NikolayXHD/Mtgdb wiki, "Import collection using phone camera").
TCGPLAYER_COLUMNS = (
    "Quantity",
    "Name",
    "Simple Name",
    "Set",
    "Card Number",
    "Set Code",
    "Printing",
    "Condition",
    "Language",
    "Rarity",
    "Product ID",
    "SKU",
)
# TCGplayer's and Moxfield's words for the five grades.
SPELLED_CONDITION = {
    Condition.NEAR_MINT: "Near Mint",
    Condition.LIGHTLY_PLAYED: "Lightly Played",
    Condition.MODERATELY_PLAYED: "Moderately Played",
    Condition.HEAVILY_PLAYED: "Heavily Played",
    Condition.DAMAGED: "Damaged",
}
FOIL_VARIANTS = {"foil", "etched", "holofoil"}


def _foil(row: ExportRow) -> bool:
    return (row.variant or "").lower() in FOIL_VARIANTS


def _money(value: object) -> str:
    return "" if value is None else f"{value:.2f}"


def _csv_row(row: ExportRow, currency: str) -> list:
    return [
        row.card_key,
        row.game,
        row.name,
        row.set_code,
        row.set_name,
        row.card_number or "",
        row.variant or "",
        row.condition,
        row.quantity,
        _money(row.purchase_price),
        _money(row.value),
        currency,
    ]


def _manabox_row(row: ExportRow, currency: str) -> list:
    return [
        row.name,
        row.set_code.upper(),
        row.set_name,
        row.card_number or "",
        "foil" if _foil(row) else "normal",
        (row.rarity or "").lower(),
        row.quantity,
        "",
        row.scryfall_id or "",
        _money(row.purchase_price),
        "false",
        "false",
        MANABOX_CONDITION[Condition(row.condition)],
        "en",
        currency,
    ]


def _moxfield_row(row: ExportRow, currency: str) -> list:
    return [
        row.quantity,
        0,
        row.name,
        row.set_code.lower(),
        SPELLED_CONDITION[Condition(row.condition)],
        "English",
        "foil" if _foil(row) else "",
        "",
        row.last_modified.strftime("%Y-%m-%d %H:%M:%S"),
        row.card_number or "",
        "False",
        "False",
        _money(row.purchase_price),
    ]


def _tcgplayer_row(row: ExportRow, currency: str) -> list:
    return [
        row.quantity,
        row.name,
        row.name,
        row.set_name,
        row.card_number or "",
        row.set_code.upper(),
        "Foil" if _foil(row) else "Normal",
        SPELLED_CONDITION[Condition(row.condition)],
        "English",
        (row.rarity or "").title(),
        row.tcgplayer_id or "",
        "",
    ]


@dataclass(frozen=True)
class FormatSpec:
    columns: tuple[str, ...]
    write_row: Callable[[ExportRow, str], list]
    games: frozenset[str] | None  # None: every game
    filename: str


FORMATS: dict[ExportFormat, FormatSpec] = {
    ExportFormat.CSV: FormatSpec(CSV_COLUMNS, _csv_row, None, "cardscan-inventory.csv"),
    # ManaBox and Moxfield catalogue Magic only; other games' rows would fail their import.
    ExportFormat.MANABOX: FormatSpec(
        MANABOX_COLUMNS, _manabox_row, frozenset({"mtg"}), "manabox-import.csv"
    ),
    ExportFormat.MOXFIELD: FormatSpec(
        MOXFIELD_COLUMNS, _moxfield_row, frozenset({"mtg"}), "moxfield-import.csv"
    ),
    ExportFormat.TCGPLAYER: FormatSpec(
        TCGPLAYER_COLUMNS, _tcgplayer_row, None, "tcgplayer-import.csv"
    ),
}


def render(fmt: ExportFormat, rows: list[ExportRow], *, currency: str = "USD") -> str:
    """The CSV text of `rows` in format `fmt` (header first, CRLF line ends as csv writes them)."""
    spec = FORMATS[fmt]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(spec.columns)
    for row in rows:
        if spec.games is None or row.game in spec.games:
            writer.writerow(spec.write_row(row, currency))
    return out.getvalue()
