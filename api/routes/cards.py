"""The card catalog: fuzzy search by name, set and number, and each printing's image."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from api.auth import current_user
from api.errors import error_responses
from db.card_search import search_cards
from db.pool import connection
from db.users import UserRow
from pipeline.storage import open_storage
from vision.errors import NotFoundError

router = APIRouter(tags=["cards"])
User = Annotated[UserRow, Depends(current_user)]


class CardPublic(BaseModel):
    card_key: str
    name: str
    game: str
    set_code: str
    set_name: str
    number: str | None
    variant: str | None
    image_url: str | None
    score: float | None = None


class CardList(BaseModel):
    items: list[CardPublic]


def card_image_url(request: Request, card_key: str) -> str:
    return str(request.url_for("card_image", card_key=card_key).path)


@router.get("/v1/cards", response_model=CardList, responses=error_responses(401, 422))
def find_cards(
    request: Request,
    _: User,
    q: Annotated[str, Query(min_length=1, max_length=200)],
    game: str | None = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> CardList:
    """Catalog printings matching free text (name, set code or name, collector number)."""
    with connection() as conn:
        hits = search_cards(conn, q=q, limit=limit, game=game)
    return CardList(
        items=[
            CardPublic(
                card_key=h.card_key,
                name=h.name,
                game=h.game,
                set_code=h.set_code,
                set_name=h.set_name,
                number=h.card_number,
                variant=h.variant,
                image_url=card_image_url(request, h.card_key) if h.image_key else None,
                score=h.score,
            )
            for h in hits
        ]
    )


@router.get(
    "/v1/cards/{card_key}/image",
    name="card_image",
    responses={200: {"content": {"image/jpeg": {}}}, **error_responses(404)},
)
def card_image(card_key: str) -> Response:
    """A printing's reference image from storage (public: the catalog is public data)."""
    with connection() as conn:
        row = conn.execute(
            "SELECT image_key FROM cards WHERE card_key = %(k)s AND deleted_at IS NULL",
            {"k": card_key.lower()},
        ).fetchone()
    if row is None or not row["image_key"]:
        raise NotFoundError(f"card {card_key} has no image")
    data = open_storage().get(row["image_key"])
    # Keys are content hashes, so an image under one key never changes.
    return Response(
        data, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=86400, immutable"}
    )
