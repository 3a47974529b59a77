"""Inventory: confirm a scan's cards into it, list / edit / delete entries, value and export it."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.auth import current_user
from api.errors import error_responses
from api.exports import FORMATS, ExportFormat, render
from db import audit, scans
from db import inventory as inventory_db
from db import prices as prices_db
from db.inventory import Condition, ScanConfirmItem
from db.pool import connection
from db.scans import ScanStatus
from db.users import UserRow
from vision.errors import ConflictError, NotFoundError

router = APIRouter(tags=["inventory"])
User = Annotated[UserRow, Depends(current_user)]


def _condition(value: object) -> object:
    return Condition.parse(value) if isinstance(value, str) else value


class ScanCardConfirm(BaseModel):
    card_index: int = Field(ge=0)
    condition: Condition | None = None
    quantity: int | None = Field(default=None, ge=1, le=9999)

    _parse = field_validator("condition", mode="before")(_condition)


class ScanConfirm(BaseModel):
    """Name cards with their condition and quantity, or leave `cards` out to take every settled
    card (auto-accepted or reviewed) with the defaults."""

    cards: list[ScanCardConfirm] | None = None
    condition: Condition = Condition.NEAR_MINT
    quantity: int = Field(default=1, ge=1, le=9999)

    _parse = field_validator("condition", mode="before")(_condition)


class SavedCard(BaseModel):
    card_index: int
    scan_card_id: UUID
    entry_id: UUID
    created: bool
    condition: Condition
    quantity: int


class SkippedCard(BaseModel):
    card_index: int
    scan_card_id: UUID | None = None
    reason: str


class ScanConfirmed(BaseModel):
    scan_id: UUID
    saved: list[SavedCard]
    skipped: list[SkippedCard]


class InventoryEntryPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    card_key: str
    name: str
    game: str
    set_code: str
    set_name: str
    card_number: str | None
    variant: str | None
    quantity: int
    condition: Condition
    notes: str | None
    location: str | None
    purchase_price: Decimal | None
    purchase_date: date | None
    purchase_source: str | None
    scan_card_id: UUID | None
    scan_confidence: Decimal | None
    scanned_at: datetime | None
    last_valuated_price: Decimal | None
    last_valuated_currency: str | None
    last_valuated_at: datetime | None
    created_at: datetime
    updated_at: datetime


class InventoryList(BaseModel):
    items: list[InventoryEntryPublic]
    limit: int
    offset: int


class InventoryEntryUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantity: int | None = Field(default=None, ge=1, le=9999)
    condition: Condition | None = None
    notes: str | None = Field(default=None, max_length=2000)
    location: str | None = Field(default=None, max_length=255)
    purchase_price: Decimal | None = Field(default=None, ge=0, max_digits=10, decimal_places=2)
    purchase_date: date | None = None
    purchase_source: str | None = Field(default=None, max_length=255)

    _parse = field_validator("condition", mode="before")(_condition)


class SetValue(BaseModel):
    game: str
    set_code: str
    set_name: str
    entries: int
    cards: int
    value: Decimal
    unvalued_cards: int


class GameValue(BaseModel):
    game: str
    cards: int
    value: Decimal


class ValueSnapshot(BaseModel):
    snapshot_date: date
    total_value: Decimal
    total_cards: int
    unique_cards: int


class InventoryValue(BaseModel):
    currency: str
    total_value: Decimal
    total_cards: int
    unvalued_cards: int
    by_game: list[GameValue]
    by_set: list[SetValue]
    history: list[ValueSnapshot]


@router.post(
    "/v1/scans/{scan_id}/confirm",
    response_model=ScanConfirmed,
    responses=error_responses(400, 401, 404, 409, 422),
)
def confirm_scan(scan_id: UUID, body: ScanConfirm, user: User) -> ScanConfirmed:
    """Save this scan's cards into your inventory; repeating it never doubles a quantity."""
    with connection() as conn, conn.transaction():
        scan = scans.get_scan(conn, scan_id=scan_id, user_id=user.id)
        if scan is None:
            raise NotFoundError(f"scan {scan_id} not found")
        if scan.status != ScanStatus.COMPLETED:
            raise ConflictError(f"scan {scan_id} is {scan.status}, not completed")
        items = (
            None
            if body.cards is None
            else [ScanConfirmItem(c.card_index, c.condition, c.quantity) for c in body.cards]
        )
        result = inventory_db.confirm_scan(
            conn,
            user_id=user.id,
            scan_id=scan_id,
            items=items,
            default_condition=body.condition,
            default_quantity=body.quantity,
        )
        if result.saved:
            audit.record(
                conn,
                actor_user_id=user.id,
                action="inventory.confirm_scan",
                entity_type="scan",
                entity_id=scan_id,
                after={"saved": result.saved, "skipped": result.skipped},
            )
    return ScanConfirmed.model_validate(
        {"scan_id": scan_id, "saved": result.saved, "skipped": result.skipped}
    )


@router.get("/v1/inventory", response_model=InventoryList, responses=error_responses(401))
def list_inventory(
    user: User,
    game: str | None = None,
    set_code: Annotated[str | None, Query(alias="set")] = None,
    condition: Annotated[str | None, Query(description="near_mint, NM, Lightly Played…")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> InventoryList:
    """Your live entries, newest first; filter by game, set code and condition."""
    try:
        wanted = Condition.parse(condition) if condition else None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    with connection() as conn:
        rows = inventory_db.list_entries(
            conn,
            user_id=user.id,
            game=game,
            set_code=set_code,
            condition=wanted,
            limit=limit,
            offset=offset,
        )
    return InventoryList(
        items=[InventoryEntryPublic.model_validate(r) for r in rows], limit=limit, offset=offset
    )


@router.patch(
    "/v1/inventory/{entry_id}",
    response_model=InventoryEntryPublic,
    responses=error_responses(400, 401, 404, 422),
)
def update_entry(entry_id: UUID, body: InventoryEntryUpdate, user: User) -> InventoryEntryPublic:
    """Change quantity, condition, notes, location or purchase details of one entry."""
    changes = body.model_dump(exclude_unset=True)
    if "condition" in changes and changes["condition"] is not None:
        changes["condition"] = str(changes["condition"])
    with connection() as conn, conn.transaction():
        before = inventory_db.get_entry(conn, user_id=user.id, entry_id=entry_id)
        after = before and inventory_db.update_entry(
            conn, user_id=user.id, entry_id=entry_id, changes=changes
        )
        if after is None:
            raise NotFoundError(f"inventory entry {entry_id} not found")
        audit.record(
            conn,
            actor_user_id=user.id,
            action="inventory.update",
            entity_type="inventory_entry",
            entity_id=entry_id,
            before={k: getattr(before, k) for k in changes},
            after={k: getattr(after, k) for k in changes},
        )
    return InventoryEntryPublic.model_validate(after)


@router.delete("/v1/inventory/{entry_id}", status_code=204, responses=error_responses(401, 404))
def delete_entry(entry_id: UUID, user: User) -> Response:
    """Soft-delete one entry (it keeps its row with `deleted_at`)."""
    with connection() as conn, conn.transaction():
        if not inventory_db.soft_delete_entry(conn, user_id=user.id, entry_id=entry_id):
            raise NotFoundError(f"inventory entry {entry_id} not found")
        audit.record(
            conn,
            actor_user_id=user.id,
            action="inventory.delete",
            entity_type="inventory_entry",
            entity_id=entry_id,
        )
    return Response(status_code=204)


@router.get("/v1/inventory/value", response_model=InventoryValue, responses=error_responses(401))
def inventory_value(user: User) -> InventoryValue:
    """What your inventory is worth at the last valuation, per game and set, and its history."""
    with connection() as conn:
        sets = inventory_db.totals(conn, user_id=user.id)
        history = prices_db.snapshots(conn, user_id=user.id)
    games: dict[str, GameValue] = {}
    for s in sets:
        g = games.setdefault(s.game, GameValue(game=s.game, cards=0, value=Decimal("0.00")))
        g.cards += s.cards
        g.value += s.value
    return InventoryValue(
        currency="USD",
        total_value=sum((s.value for s in sets), Decimal("0.00")),
        total_cards=sum(s.cards for s in sets),
        unvalued_cards=sum(s.unvalued_cards for s in sets),
        by_game=sorted(games.values(), key=lambda g: -g.value),
        by_set=[SetValue(**s.__dict__) for s in sets],
        history=[ValueSnapshot.model_validate(h) for h in history],
    )


@router.get(
    "/v1/inventory/export",
    responses={
        200: {"content": {"text/csv": {}}, "description": "the inventory as CSV"},
        **error_responses(401, 422),
    },
)
def export_inventory(
    user: User,
    format: ExportFormat = ExportFormat.CSV,  # noqa: A002 - the public query parameter's name
    game: str | None = None,
    set_code: Annotated[str | None, Query(alias="set")] = None,
) -> Response:
    """Download your inventory as csv, or in the import format of ManaBox, Moxfield or TCGplayer."""
    with connection() as conn:
        rows = inventory_db.export_rows(conn, user_id=user.id, game=game, set_code=set_code)
    spec = FORMATS[format]
    return Response(
        render(format, rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{spec.filename}"'},
    )
