"""Request and response bodies of the scan API."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from db.scans import Decision, ScanStatus


class ScanAccepted(BaseModel):
    """Answer to an upload: where to watch the scan."""

    scan_id: UUID
    status_url: str


class CandidatePublic(BaseModel):
    model_config = ConfigDict(extra="ignore")

    card_key: str
    score: float
    name: str | None = None
    set_code: str | None = None
    number: str | None = None


class ModelVersions(BaseModel):
    model_config = ConfigDict(extra="allow")

    detector: str | None = None
    embedder: str | None = None
    index: str | None = None


class ScanCardPublic(BaseModel):
    """One card found in the photo and what it was identified as."""

    card_index: int
    quad: list[list[float]] = Field(
        description="4 corners [x, y] in photo pixels, clockwise from the card's top-left"
    )
    bounding_box: list[float] = Field(description="[x_min, y_min, x_max, y_max]")
    crop_url: str | None
    card_key: str | None
    name: str | None
    set_code: str | None
    set_name: str | None
    number: str | None
    decision: Decision
    confidence: float | None
    review_status: str | None
    candidates: list[CandidatePublic]
    model_versions: ModelVersions


class ScanSummary(BaseModel):
    id: UUID
    status: ScanStatus
    error_code: str | None
    error: str | None = Field(description="why the scan failed, for people")
    location: str | None
    created_at: datetime
    updated_at: datetime
    processed_at: datetime | None
    status_url: str


class ScanPublic(ScanSummary):
    """A scan with its cards (empty until it is completed)."""

    model_versions: ModelVersions | None
    cards: list[ScanCardPublic]


class ScanList(BaseModel):
    items: list[ScanSummary]
    total: int
    limit: int
    offset: int
