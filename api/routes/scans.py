"""/v1/scans: upload a photo, watch its scan, list and delete scans."""

from __future__ import annotations

import time
from typing import Annotated
from uuid import UUID

from fastapi import (
    APIRouter,
    Depends,
    File,
    Form,
    Header,
    Path,
    Query,
    Request,
    Response,
    UploadFile,
)

from api.auth import current_user
from api.errors import error_responses
from api.metrics import UPLOAD_REQUESTS, UPLOAD_SECONDS
from api.schemas import (
    CandidatePublic,
    ModelVersions,
    ScanAccepted,
    ScanCardPublic,
    ScanList,
    ScanPublic,
    ScanSummary,
)
from api.settings import settings
from db import scans
from db.pool import connection
from db.scans import ScanCardRow, ScanRow, ScanStatus, Trigger
from db.users import UserRow
from pipeline.enqueue import check_size, register_photo
from pipeline.settings import settings as pipeline_settings
from pipeline.storage import open_storage
from vision.errors import NotFoundError, ScanError

router = APIRouter(prefix="/v1/scans", tags=["scans"])
User = Annotated[UserRow, Depends(current_user)]


def _not_found(scan_id: UUID) -> NotFoundError:
    return NotFoundError(f"scan {scan_id} not found")


def _summary(request: Request, scan: ScanRow) -> dict:
    return {
        "id": scan.id,
        "status": scan.status,
        "error_code": scan.error_code,
        "error": scan.error_message,
        "location": scan.location,
        "created_at": scan.created_at,
        "updated_at": scan.updated_at,
        "processed_at": scan.processed_at,
        "status_url": str(request.url_for("get_scan", scan_id=scan.id)),
    }


def _card(request: Request, scan_id: UUID, card: ScanCardRow) -> ScanCardPublic:
    crop_url = None
    if card.crop_key:
        crop_url = str(
            request.url_for("get_scan_card_crop", scan_id=scan_id, card_index=card.card_index)
        )
    return ScanCardPublic(
        card_index=card.card_index,
        quad=card.quad,
        bounding_box=card.bounding_box,
        crop_url=crop_url,
        card_key=card.card_key,
        name=card.name,
        set_code=card.set_code,
        set_name=card.set_name,
        number=card.number,
        decision=card.decision,
        confidence=card.confidence,
        review_status=card.review_status,
        candidates=[CandidatePublic.model_validate(c) for c in card.candidates],
        model_versions=ModelVersions(
            detector=card.detector_version, embedder=card.embedder_version, index=card.index_version
        ),
    )


@router.post(
    "",
    status_code=202,
    response_model=ScanAccepted,
    summary="Upload a photo to scan",
    responses={
        200: {
            "model": ScanAccepted,
            "description": "These bytes (or this Idempotency-Key) "
            "were already uploaded: the existing scan",
        },
        202: {"description": "Stored and queued"},
        **error_responses(400, 401, 409, 413, 415, 422, 503),
    },
)
def create_scan(
    request: Request,
    response: Response,
    user: User,
    file: Annotated[
        UploadFile, File(description="JPEG, PNG, WebP or HEIC; type judged from the bytes")
    ],
    location: Annotated[str | None, Form(max_length=255)] = None,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)
    ] = None,
) -> ScanAccepted:
    """Store the photo and queue it; answers at once, recognition happens in the worker."""
    start = time.perf_counter()
    try:
        data = file.file.read(pipeline_settings.max_upload_bytes + 1)
        check_size(data)
        scan_id, created = register_photo(
            user_id=user.id,
            data=data,
            filename=file.filename,
            trigger=Trigger.API,
            idempotency_key=idempotency_key,
            location=location,
        )
    except ScanError as exc:
        UPLOAD_REQUESTS.labels(outcome=exc.code).inc()
        raise
    UPLOAD_REQUESTS.labels(outcome="created" if created else "existing").inc()
    UPLOAD_SECONDS.observe(time.perf_counter() - start)
    status_url = str(request.url_for("get_scan", scan_id=scan_id))
    response.status_code = 202 if created else 200
    response.headers["Location"] = status_url
    return ScanAccepted(scan_id=scan_id, status_url=status_url)


@router.get(
    "", response_model=ScanList, summary="List your scans", responses=error_responses(401, 422, 503)
)
def list_scans(
    request: Request,
    user: User,
    status: ScanStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=settings.page_size_max)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> ScanList:
    """Your scans, newest first, optionally only those with `status`."""
    with connection() as conn, conn.transaction():
        rows, total = scans.list_scans(
            conn, user_id=user.id, status=status, limit=limit, offset=offset
        )
    return ScanList(
        items=[ScanSummary(**_summary(request, r)) for r in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/{scan_id}",
    response_model=ScanPublic,
    summary="A scan and its cards",
    responses=error_responses(401, 404, 422, 503),
)
def get_scan(request: Request, user: User, scan_id: UUID) -> ScanPublic:
    """Status, failure reason, and per card: quad, crop, decision, candidates, versions."""
    with connection() as conn, conn.transaction():
        scan = scans.get_scan(conn, scan_id=scan_id, user_id=user.id)
        if scan is None:
            raise _not_found(scan_id)
        cards = scans.list_scan_cards(conn, scan_id=scan_id)
    versions = ModelVersions.model_validate(scan.model_versions) if scan.model_versions else None
    return ScanPublic(
        **_summary(request, scan),
        model_versions=versions,
        cards=[_card(request, scan_id, c) for c in cards],
    )


@router.get(
    "/{scan_id}/cards/{card_index}/crop",
    summary="The straightened crop of one card",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "JPEG crop"},
        **error_responses(401, 404, 422, 503),
    },
)
def get_scan_card_crop(
    user: User,
    scan_id: UUID,
    card_index: Annotated[int, Path(ge=0, le=10_000)],
) -> Response:
    """The card's crop as JPEG."""
    with connection() as conn, conn.transaction():
        scan = scans.get_scan(conn, scan_id=scan_id, user_id=user.id)
        cards = scans.list_scan_cards(conn, scan_id=scan_id) if scan else []
    card = next((c for c in cards if c.card_index == card_index), None)
    if card is None or not card.crop_key:
        raise NotFoundError(f"scan {scan_id} has no card {card_index}")
    return Response(open_storage().get(card.crop_key), media_type="image/jpeg")


@router.delete(
    "/{scan_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a scan",
    responses=error_responses(401, 404, 422, 503),
)
def delete_scan(user: User, scan_id: UUID) -> Response:
    """Soft-delete the scan: it disappears from the API; the photo may be uploaded again."""
    with connection() as conn, conn.transaction():
        if not scans.soft_delete_scan(conn, scan_id=scan_id, user_id=user.id):
            raise _not_found(scan_id)
    return Response(status_code=204)
