"""Liveness, readiness and Prometheus metrics (no auth, outside /v1)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from api.metrics import REGISTRY
from api.settings import settings

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: str
    broker: str
    queue_depth: int | None = None


@router.get("/healthz", response_model=Health, summary="Liveness")
def healthz() -> Health:
    """The process answers."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness",
    responses={503: {"model": Readiness, "description": "Not ready"}},
)
def readyz() -> JSONResponse:
    """Ready when the database is reachable and migrated and the broker is reachable."""
    from db.migrate import require_migrated
    from pipeline.enqueue import queue_depth

    body: dict[str, Any] = {
        "status": "ready",
        "database": "ok",
        "broker": "ok",
        "queue_depth": None,
    }
    try:
        require_migrated()
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; say which
        body["database"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    try:
        body["queue_depth"] = queue_depth()
    except Exception as exc:  # noqa: BLE001
        body["broker"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    ready = body["database"] == "ok" and body["broker"] == "ok"
    if not ready:
        body["status"] = "not_ready"
        return JSONResponse(
            body, status_code=503, headers={"Retry-After": str(settings.retry_after_s)}
        )
    return JSONResponse(body)


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
def metrics() -> PlainTextResponse:
    """Uploads, scans by status, queue depth, stage latencies (Prometheus text format)."""
    return PlainTextResponse(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
