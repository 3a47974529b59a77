"""SQL for inventory entries: a user's confirmed cards, their filters, totals and export rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from db.pool import Conn, one


class Condition(StrEnum):
    """The five grades every import format we export to understands (TCGplayer's scale)."""

    NEAR_MINT = "near_mint"
    LIGHTLY_PLAYED = "lightly_played"
    MODERATELY_PLAYED = "moderately_played"
    HEAVILY_PLAYED = "heavily_played"
    DAMAGED = "damaged"

    @classmethod
    def parse(cls, text: str) -> Condition:
        """Accept our values, the usual abbreviations (NM, LP, …) and spelled-out names."""
        key = text.strip().lower().replace("-", " ").replace("_", " ")
        found = CONDITION_ALIASES.get(key)
        if found is None:
            raise ValueError(f"unknown condition {text!r}")
        return found


CONDITION_ALIASES: dict[str, Condition] = {
    **{c.value.replace("_", " "): c for c in Condition},
    "m": Condition.NEAR_MINT,
    "mint": Condition.NEAR_MINT,
    "nm": Condition.NEAR_MINT,
    "lp": Condition.LIGHTLY_PLAYED,
    "light played": Condition.LIGHTLY_PLAYED,
    "sp": Condition.LIGHTLY_PLAYED,
    "excellent": Condition.LIGHTLY_PLAYED,
    "mp": Condition.MODERATELY_PLAYED,
    "played": Condition.MODERATELY_PLAYED,
    "good": Condition.MODERATELY_PLAYED,
    "hp": Condition.HEAVILY_PLAYED,
    "poor": Condition.HEAVILY_PLAYED,
    "d": Condition.DAMAGED,
    "dmg": Condition.DAMAGED,
}

# Fields a user may change on an entry (PATCH); everything else is owned by the scan.
EDITABLE = (
    "quantity",
    "condition",
    "notes",
    "location",
    "purchase_price",
    "purchase_date",
    "purchase_source",
)


@dataclass(frozen=True)
class InventoryEntry:
    id: Any
    user_id: Any
    card_id: Any
    card_key: str
    name: str
    game: str
    set_code: str
    set_name: str
    card_number: str | None
    variant: str | None
    rarity: str | None
    quantity: int
    condition: str
    notes: str | None
    location: str | None
    purchase_price: Decimal | None
    purchase_date: date | None
    purchase_source: str | None
    scan_card_id: Any
    scan_confidence: Decimal | None
    scan_image_url: str | None
    scanned_at: datetime | None
    last_valuated_at: datetime | None
    last_valuated_price: Decimal | None
    last_valuated_currency: str | None
    created_at: datetime
    updated_at: datetime


ENTRY_COLUMNS = """
    ie.id, ie.user_id, ie.card_id, c.card_key, c.name, s.game_type AS game, s.code AS set_code,
    s.name AS set_name, c.card_number, c.variant, c.rarity, ie.quantity, ie.condition, ie.notes,
    ie.location, ie.purchase_price, ie.purchase_date, ie.purchase_source, ie.scan_card_id,
    ie.scan_confidence, ie.scan_image_url, ie.scanned_at, ie.last_valuated_at,
    ie.last_valuated_price, ie.last_valuated_currency, ie.created_at, ie.updated_at
"""
ENTRY_FROM = "inventory_entries ie JOIN cards c ON c.id = ie.card_id JOIN sets s ON s.id = c.set_id"


def save_scan_card(
    conn: Conn,
    *,
    user_id: Any,
    scan_card_id: Any,
    card_id: Any,
    condition: Condition,
    quantity: int,
    scan_confidence: float | None,
    scan_image_url: str | None,
    restore: bool = True,
) -> tuple[Any, bool]:
    """Put one scanned card into the user's inventory; (entry id, created).

    Keyed by (user, scan card): confirming again sets the quantity, it never adds to it. An
    entry the user deleted comes back only with `restore`; else (its id or None, False).
    """
    existed = conn.execute(
        "SELECT id, deleted_at FROM inventory_entries "
        "WHERE user_id = %(u)s AND scan_card_id = %(sc)s",
        {"u": user_id, "sc": scan_card_id},
    ).fetchone()
    if existed is not None and existed["deleted_at"] is not None and not restore:
        return None, False
    cur = conn.execute(
        """
        INSERT INTO inventory_entries (user_id, card_id, scan_card_id, quantity, condition,
                                       scan_confidence, scan_image_url)
        VALUES (%(user_id)s, %(card_id)s, %(scan_card_id)s, %(quantity)s, %(condition)s,
                %(confidence)s, %(image)s)
        ON CONFLICT (user_id, scan_card_id) DO UPDATE SET
            card_id = EXCLUDED.card_id, quantity = EXCLUDED.quantity,
            condition = EXCLUDED.condition, scan_confidence = EXCLUDED.scan_confidence,
            scan_image_url = EXCLUDED.scan_image_url, deleted_at = NULL
        RETURNING id
        """,
        {
            "user_id": user_id,
            "card_id": card_id,
            "scan_card_id": scan_card_id,
            "quantity": quantity,
            "condition": str(condition),
            "confidence": None if scan_confidence is None else round(scan_confidence * 100, 2),
            "image": scan_image_url,
        },
    )
    row = one(cur)
    conn.execute(
        "UPDATE scan_cards SET saved_to_inventory = TRUE, inventory_entry_id = %(entry)s "
        "WHERE id = %(id)s",
        {"entry": row["id"], "id": scan_card_id},
    )
    return row["id"], existed is None


def list_entries(
    conn: Conn,
    *,
    user_id: Any,
    game: str | None = None,
    set_code: str | None = None,
    condition: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[InventoryEntry]:
    """The user's live entries, filtered by game, set and condition, newest first."""
    rows = conn.execute(
        f"""
        SELECT {ENTRY_COLUMNS} FROM {ENTRY_FROM}
        WHERE ie.user_id = %(user_id)s AND ie.deleted_at IS NULL
          AND (%(game)s::text IS NULL OR s.game_type = %(game)s)
          AND (%(set)s::text IS NULL OR lower(s.code) = lower(%(set)s))
          AND (%(condition)s::text IS NULL OR ie.condition = %(condition)s)
        ORDER BY ie.created_at DESC, ie.id
        LIMIT %(limit)s OFFSET %(offset)s
        """,
        {
            "user_id": user_id,
            "game": game,
            "set": set_code,
            "condition": condition,
            "limit": limit,
            "offset": offset,
        },
    ).fetchall()
    return [InventoryEntry(**r) for r in rows]


def get_entry(conn: Conn, *, user_id: Any, entry_id: Any) -> InventoryEntry | None:
    """One live entry of this user."""
    row = conn.execute(
        f"SELECT {ENTRY_COLUMNS} FROM {ENTRY_FROM} "
        "WHERE ie.user_id = %(user_id)s AND ie.id = %(id)s AND ie.deleted_at IS NULL",
        {"user_id": user_id, "id": entry_id},
    ).fetchone()
    return InventoryEntry(**row) if row else None


def update_entry(
    conn: Conn, *, user_id: Any, entry_id: Any, changes: dict[str, Any]
) -> InventoryEntry | None:
    """Apply the EDITABLE fields in `changes`; None when the entry is missing or deleted."""
    fields = {k: v for k, v in changes.items() if k in EDITABLE}
    if fields:
        assignments = ", ".join(f"{k} = %({k})s" for k in fields)
        done = conn.execute(
            f"UPDATE inventory_entries SET {assignments} "
            "WHERE user_id = %(user_id)s AND id = %(id)s AND deleted_at IS NULL RETURNING id",
            {**fields, "user_id": user_id, "id": entry_id},
        ).fetchone()
        if done is None:
            return None
    return get_entry(conn, user_id=user_id, entry_id=entry_id)


def soft_delete_entry(conn: Conn, *, user_id: Any, entry_id: Any) -> bool:
    row = conn.execute(
        """
        UPDATE inventory_entries SET deleted_at = now() AT TIME ZONE 'UTC'
        WHERE user_id = %(user_id)s AND id = %(id)s AND deleted_at IS NULL RETURNING id
        """,
        {"user_id": user_id, "id": entry_id},
    ).fetchone()
    return row is not None


@dataclass(frozen=True)
class SetTotal:
    game: str
    set_code: str
    set_name: str
    entries: int
    cards: int
    value: Decimal
    unvalued_cards: int


def totals(conn: Conn, *, user_id: Any) -> list[SetTotal]:
    """Per (game, set): entries, card count, value at the last valuation, cards without one."""
    rows = conn.execute(
        f"""
        SELECT s.game_type AS game, s.code AS set_code, s.name AS set_name,
               count(*) AS entries, sum(ie.quantity)::int AS cards,
               coalesce(sum(ie.quantity * ie.last_valuated_price), 0)::numeric(12,2) AS value,
               coalesce(sum(ie.quantity) FILTER (WHERE ie.last_valuated_price IS NULL), 0)::int
                   AS unvalued_cards
        FROM {ENTRY_FROM}
        WHERE ie.user_id = %(user_id)s AND ie.deleted_at IS NULL
        GROUP BY s.game_type, s.code, s.name ORDER BY value DESC, s.game_type, s.code
        """,
        {"user_id": user_id},
    ).fetchall()
    return [SetTotal(**r) for r in rows]


@dataclass(frozen=True)
class ExportRow:
    card_key: str
    name: str
    game: str
    set_code: str
    set_name: str
    card_number: str | None
    variant: str | None
    rarity: str | None
    tcgplayer_id: str | None
    scryfall_id: str | None
    condition: str
    quantity: int
    purchase_price: Decimal | None
    value: Decimal | None
    last_modified: datetime


def export_rows(
    conn: Conn, *, user_id: Any, game: str | None = None, set_code: str | None = None
) -> list[ExportRow]:
    """One row per (card, condition): import tools want a count per printing, not per scan."""
    rows = conn.execute(
        """
        SELECT c.card_key, c.name, s.game_type AS game, s.code AS set_code, s.name AS set_name,
               c.card_number, c.variant, c.rarity, c.tcgplayer_id, c.scryfall_id, ie.condition,
               sum(ie.quantity)::int AS quantity,
               avg(ie.purchase_price)::numeric(10,2) AS purchase_price,
               max(ie.last_valuated_price) AS value, max(ie.updated_at) AS last_modified
        FROM inventory_entries ie JOIN cards c ON c.id = ie.card_id JOIN sets s ON s.id = c.set_id
        WHERE ie.user_id = %(user_id)s AND ie.deleted_at IS NULL
          AND (%(game)s::text IS NULL OR s.game_type = %(game)s)
          AND (%(set)s::text IS NULL OR lower(s.code) = lower(%(set)s))
        GROUP BY c.id, s.id, ie.condition ORDER BY s.game_type, s.code, c.name, ie.condition
        """,
        {"user_id": user_id, "game": game, "set": set_code},
    ).fetchall()
    return [ExportRow(**r) for r in rows]


@dataclass(frozen=True)
class ScanConfirmItem:
    card_index: int
    condition: Condition | None = None
    quantity: int | None = None


@dataclass(frozen=True)
class ScanConfirmResult:
    saved: list[dict]
    skipped: list[dict]


def confirm_scan(
    conn: Conn,
    *,
    user_id: Any,
    scan_id: Any,
    items: list[ScanConfirmItem] | None,
    default_condition: Condition = Condition.NEAR_MINT,
    default_quantity: int = 1,
) -> ScanConfirmResult:
    """Save a scan's settled cards into its owner's inventory.

    `items` names cards by index with their condition and quantity; None takes every settled
    card (auto-accepted, or confirmed/corrected by an annotator). Unsettled, unmatched and
    rejected cards are skipped with a reason. Safe to repeat: quantities are set, not added.
    """
    cards = conn.execute(
        """
        SELECT sc.id, sc.card_index, sc.decision, sc.review_status, sc.card_id,
               sc.confirmed_card_id, sc.confirmed_condition, sc.confirmed_quantity,
               sc.confidence, sc.crop_image_url
        FROM scan_cards sc WHERE sc.scan_id = %(scan)s ORDER BY sc.card_index FOR UPDATE
        """,
        {"scan": scan_id},
    ).fetchall()
    by_index = {c["card_index"]: c for c in cards}
    wanted = items if items is not None else [ScanConfirmItem(c["card_index"]) for c in cards]
    saved, skipped = [], []
    for item in wanted:
        card = by_index.get(item.card_index)
        if card is None:
            skipped.append({"card_index": item.card_index, "reason": "no such card in this scan"})
            continue
        settled = card["review_status"] in ("confirmed", "corrected") or (
            card["decision"] == "auto_accepted" and card["card_id"] is not None
        )
        if card["review_status"] == "rejected":
            reason = "rejected in review"
        elif settled:
            reason = None
        elif card["decision"] == "needs_review":
            reason = "waiting for review"
        else:
            reason = "no catalog match"
        if reason is not None:
            skipped.append(
                {"card_index": item.card_index, "scan_card_id": card["id"], "reason": reason}
            )
            continue
        reviewed = card["review_status"] is not None
        condition = item.condition or (
            Condition(card["confirmed_condition"])
            if reviewed and card["confirmed_condition"]
            else default_condition
        )
        quantity = item.quantity or (
            card["confirmed_quantity"]
            if reviewed and card["confirmed_quantity"]
            else default_quantity
        )
        entry_id, created = save_scan_card(
            conn,
            user_id=user_id,
            scan_card_id=card["id"],
            card_id=card["confirmed_card_id"] if reviewed else card["card_id"],
            condition=condition,
            quantity=quantity,
            scan_confidence=card["confidence"],
            scan_image_url=card["crop_image_url"],
            restore=items is not None,
        )
        if entry_id is None:
            skipped.append(
                {
                    "card_index": item.card_index,
                    "scan_card_id": card["id"],
                    "reason": "deleted from the inventory (name it to restore it)",
                }
            )
            continue
        saved.append(
            {
                "card_index": item.card_index,
                "scan_card_id": card["id"],
                "entry_id": entry_id,
                "created": created,
                "condition": str(condition),
                "quantity": quantity,
            }
        )
    return ScanConfirmResult(saved, skipped)
