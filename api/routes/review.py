"""The review queue for annotators: lease the next unsure card, confirm / correct / reject / skip.

Every decision writes the audit log; corrections become training examples (db.review).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field, field_validator

from api.auth import current_user, require_role
from api.errors import error_responses
from db import review
from db.inventory import Condition
from db.pool import connection
from db.users import Role, UserRow
from pipeline.storage import open_storage
from vision.errors import ConflictError, NotFoundError

router = APIRouter(tags=["review"])
Annotator = Annotated[UserRow, Depends(require_role(Role.ANNOTATOR))]
User = Annotated[UserRow, Depends(current_user)]

LEASE_S = 300  # long enough to look a card up; short enough that a closed tab frees it soon
SKIP_WINDOW_S = 600  # a skipped card stays out of that annotator's queue this long


class ReviewCandidate(BaseModel):
    card_key: str
    name: str
    set_code: str
    set_name: str
    number: str | None
    score: float | None
    image_url: str | None


class ReviewCardPublic(BaseModel):
    id: UUID
    scan_id: UUID
    card_index: int
    confidence: float | None
    crop_url: str | None
    candidates: list[ReviewCandidate]
    gates: list[str] = Field(
        default_factory=list,
        description="why the scanner did not accept it on its own (e.g. number_unread)",
    )
    lease_expires_at: datetime | None
    queue_remaining: int


class ReviewConfirm(BaseModel):
    """No `card_key`: the top candidate is right. Any other key corrects the card."""

    card_key: str | None = Field(default=None, max_length=100)
    condition: Condition = Condition.NEAR_MINT
    quantity: int = Field(default=1, ge=1, le=9999)

    @field_validator("condition", mode="before")
    @classmethod
    def _parse(cls, value: object) -> object:
        return Condition.parse(value) if isinstance(value, str) else value


class ReviewReject(BaseModel):
    reason: str = Field(default="not_a_card", max_length=200)


class ReviewDecision(BaseModel):
    scan_card_id: UUID
    review_status: str
    card_key: str | None
    training_kind: str | None
    inventory_entry_id: UUID | None


@contextmanager
def _decision_errors() -> Iterator[None]:
    try:
        yield
    except review.ReviewNotFound as exc:
        raise NotFoundError(str(exc)) from exc
    except review.ReviewConflict as exc:
        raise ConflictError(str(exc)) from exc


def _public(request: Request, card: review.ReviewCard, remaining: int) -> ReviewCardPublic:
    return ReviewCardPublic(
        id=card.id,
        scan_id=card.scan_id,
        card_index=card.card_index,
        confidence=card.confidence,
        crop_url=str(request.url_for("scan_card_crop", scan_card_id=card.id).path)
        if card.crop_key
        else None,
        candidates=[
            ReviewCandidate(
                card_key=c.card_key,
                name=c.name,
                set_code=c.set_code,
                set_name=c.set_name,
                number=c.card_number,
                score=c.score,
                image_url=str(request.url_for("card_image", card_key=c.card_key).path)
                if c.image_key
                else None,
            )
            for c in card.candidates
        ],
        gates=card.gates,
        lease_expires_at=card.lease_expires_at,
        queue_remaining=remaining,
    )


def _decided(outcome: review.ReviewOutcome) -> ReviewDecision:
    return ReviewDecision(
        scan_card_id=outcome.scan_card_id,
        review_status=outcome.status,
        card_key=outcome.card_key,
        training_kind=outcome.training_kind,
        inventory_entry_id=outcome.inventory_entry_id,
    )


@router.get(
    "/v1/review/next",
    response_model=ReviewCardPublic,
    responses={204: {"description": "the queue is empty"}, **error_responses(401, 403)},
)
def next_card(request: Request, annotator: Annotator) -> ReviewCardPublic | Response:
    """Lease the lowest-confidence card waiting for review (yours until the lease expires)."""
    with connection() as conn, conn.transaction():
        card = review.lease_next(
            conn, annotator_id=annotator.id, lease_s=LEASE_S, skip_window_s=SKIP_WINDOW_S
        )
        remaining = review.queue_size(conn)
    if card is None:
        return Response(status_code=204)
    return _public(request, card, remaining)


@router.post(
    "/v1/scan-cards/{scan_card_id}/confirm",
    response_model=ReviewDecision,
    responses=error_responses(400, 401, 403, 404, 409, 422),
)
def confirm_card(scan_card_id: UUID, body: ReviewConfirm, annotator: Annotator) -> ReviewDecision:
    """Confirm the top candidate, or correct the card to any catalog printing."""
    with _decision_errors(), connection() as conn, conn.transaction():
        outcome = review.confirm(
            conn,
            scan_card_id=scan_card_id,
            annotator_id=annotator.id,
            card_key=body.card_key and body.card_key.strip().lower(),
            condition=body.condition,
            quantity=body.quantity,
        )
    return _decided(outcome)


@router.post(
    "/v1/scan-cards/{scan_card_id}/reject",
    response_model=ReviewDecision,
    responses=error_responses(400, 401, 403, 404, 409, 422),
)
def reject_card(
    scan_card_id: UUID, annotator: Annotator, body: ReviewReject | None = None
) -> ReviewDecision:
    """Not a card, or unreadable: nothing goes to the inventory."""
    with _decision_errors(), connection() as conn, conn.transaction():
        outcome = review.reject(
            conn,
            scan_card_id=scan_card_id,
            annotator_id=annotator.id,
            reason=(body or ReviewReject()).reason,
        )
    return _decided(outcome)


@router.post(
    "/v1/scan-cards/{scan_card_id}/skip",
    status_code=204,
    responses=error_responses(401, 403, 404, 409),
)
def skip_card(scan_card_id: UUID, annotator: Annotator) -> Response:
    """Give the card back to the queue (for someone else); you will not get it again soon."""
    with _decision_errors(), connection() as conn, conn.transaction():
        review.release(conn, scan_card_id=scan_card_id, annotator_id=annotator.id)
    return Response(status_code=204)


@router.get(
    "/v1/scan-cards/{scan_card_id}/crop",
    name="scan_card_crop",
    responses={200: {"content": {"image/jpeg": {}}}, **error_responses(401, 404)},
)
def scan_card_crop(scan_card_id: UUID, user: User) -> Response:
    """The straightened crop of one scanned card: for its owner and for annotators."""
    with connection() as conn:
        card = review.get_scan_card(conn, scan_card_id=scan_card_id)
    if (
        card is None
        or not card.crop_key
        or not (str(card.owner_id) == str(user.id) or user.has_role(Role.ANNOTATOR))
    ):
        raise NotFoundError(f"scan card {scan_card_id} has no crop")
    return Response(
        open_storage().get(card.crop_key),
        media_type="image/jpeg",
        headers={"Cache-Control": "private, max-age=3600"},
    )
