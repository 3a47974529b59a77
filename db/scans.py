"""SQL for scans and their cards: status changes, results, listing, the reaper's queries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from psycopg.types.json import Jsonb

from db.pool import Conn, one


class ScanStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


class Decision(StrEnum):
    AUTO_ACCEPTED = "auto_accepted"
    NEEDS_REVIEW = "needs_review"
    NO_MATCH = "no_match"


class Trigger(StrEnum):
    API = "api"
    INGEST = "ingest"
    CLI = "cli"
    REAPER = "reaper"


@dataclass(frozen=True)
class ScanRow:
    id: Any
    user_id: Any
    upload_id: Any
    image_url: str
    status: ScanStatus
    error_code: str | None
    error_message: str | None
    trigger: str
    idempotency_key: str | None
    location: str | None
    model_versions: dict | None
    attempts: int
    processing_started_at: datetime | None
    processed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    upload_sha256: str = ""


@dataclass(frozen=True)
class ScanCardIn:
    """One recognised card as the worker writes it."""

    card_index: int
    quad: list[list[float]]
    crop_key: str | None
    card_key: str | None
    name: str | None
    set_code: str | None
    number: str | None
    confidence: float
    decision: Decision
    candidates: list[dict]
    evidence: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ScanCardRow:
    card_index: int
    quad: list
    bounding_box: list
    crop_key: str | None
    card_key: str | None
    name: str | None
    set_code: str | None
    set_name: str | None
    number: str | None
    confidence: float | None
    decision: Decision
    review_status: str | None
    candidates: list
    detector_version: str | None
    embedder_version: str | None
    index_version: str | None


_COLUMNS = """s.id, s.user_id, s.upload_id, s.image_url, s.status, s.error_code, s.error_message,
    s.trigger, s.idempotency_key, s.location, s.model_versions, s.attempts,
    s.processing_started_at, s.processed_at, s.created_at, s.updated_at, s.deleted_at,
    u.sha256 AS upload_sha256"""
_FROM = "FROM scans s JOIN uploads u ON u.id = s.upload_id"
_NOW = "(now() AT TIME ZONE 'UTC')"


def _scan(row: dict) -> ScanRow:
    return ScanRow(**{**row, "status": ScanStatus(row["status"])})


def insert_scan(
    conn: Conn,
    *,
    user_id: Any,
    upload_id: Any,
    image_url: str,
    trigger: Trigger,
    idempotency_key: str | None = None,
    location: str | None = None,
) -> Any | None:
    """A new pending scan's id; None when a live scan of this upload or key already exists."""
    row = conn.execute(
        """
        INSERT INTO scans (user_id, upload_id, image_url, trigger, idempotency_key, location)
        VALUES (%(user_id)s, %(upload_id)s, %(image_url)s, %(trigger)s, %(key)s, %(location)s)
        ON CONFLICT DO NOTHING
        RETURNING id
        """,
        {
            "user_id": user_id,
            "upload_id": upload_id,
            "image_url": image_url,
            "trigger": str(trigger),
            "key": idempotency_key,
            "location": location,
        },
    ).fetchone()
    return row["id"] if row else None


def find_live_scan(
    conn: Conn,
    *,
    user_id: Any,
    upload_id: Any = None,
    idempotency_key: str | None = None,
) -> ScanRow | None:
    """The user's undeleted scan with this idempotency key, else of this upload."""
    if idempotency_key is not None:
        row = conn.execute(
            f"SELECT {_COLUMNS} {_FROM} WHERE s.user_id = %(user_id)s "
            "AND s.idempotency_key = %(key)s AND s.deleted_at IS NULL",
            {"user_id": user_id, "key": idempotency_key},
        ).fetchone()
        if row:
            return _scan(row)
    if upload_id is None:
        return None
    row = conn.execute(
        f"SELECT {_COLUMNS} {_FROM} WHERE s.upload_id = %(upload_id)s AND s.deleted_at IS NULL",
        {"upload_id": upload_id},
    ).fetchone()
    return _scan(row) if row else None


def get_scan(conn: Conn, *, scan_id: Any, user_id: Any = None) -> ScanRow | None:
    """An undeleted scan; with `user_id`, only if it is that user's."""
    row = conn.execute(
        f"SELECT {_COLUMNS} {_FROM} WHERE s.id = %(id)s AND s.deleted_at IS NULL "
        "AND (%(user_id)s::uuid IS NULL OR s.user_id = %(user_id)s::uuid)",
        {"id": scan_id, "user_id": user_id},
    ).fetchone()
    return _scan(row) if row else None


def list_scans(
    conn: Conn,
    *,
    user_id: Any,
    status: ScanStatus | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[ScanRow], int]:
    """One page of the user's scans, newest first, and the total that match."""
    params = {
        "user_id": user_id,
        "status": status and str(status),
        "limit": limit,
        "offset": offset,
    }
    where = (
        "WHERE s.user_id = %(user_id)s AND s.deleted_at IS NULL "
        "AND (%(status)s::text IS NULL OR s.status = %(status)s::text)"
    )
    rows = conn.execute(
        f"SELECT {_COLUMNS} {_FROM} {where} ORDER BY s.created_at DESC, s.id "
        "LIMIT %(limit)s OFFSET %(offset)s",
        params,
    ).fetchall()
    total = one(conn.execute(f"SELECT count(*) AS n {_FROM} {where}", params))["n"]
    return [_scan(r) for r in rows], total


def soft_delete_scan(conn: Conn, *, scan_id: Any, user_id: Any) -> bool:
    cur = conn.execute(
        f"UPDATE scans SET deleted_at = {_NOW} WHERE id = %(id)s AND user_id = %(user_id)s "
        "AND deleted_at IS NULL",
        {"id": scan_id, "user_id": user_id},
    )
    return cur.rowcount > 0


def try_lock_scan(conn: Conn, *, scan_id: Any) -> bool:
    """Session advisory lock held while a worker runs the scan; a dead worker's lock goes with
    its connection, which is how the reaper tells an orphan from a scan still in progress."""
    cur = conn.execute(
        "SELECT pg_try_advisory_lock(hashtextextended(%(id)s::text, 0)) AS ok", {"id": scan_id}
    )
    row = one(cur)
    return bool(row["ok"])


def unlock_scan(conn: Conn, *, scan_id: Any) -> None:
    conn.execute("SELECT pg_advisory_unlock(hashtextextended(%(id)s::text, 0))", {"id": scan_id})


def mark_processing(conn: Conn, *, scan_id: Any) -> ScanRow | None:
    """Move a pending (or orphaned processing) scan to processing; None if done or deleted."""
    row = conn.execute(
        f"""
        UPDATE scans SET status = 'processing', attempts = attempts + 1,
            processing_started_at = {_NOW}, error_code = NULL, error_message = NULL
        WHERE id = %(id)s AND deleted_at IS NULL AND status IN ('pending', 'processing')
        RETURNING id
        """,
        {"id": scan_id},
    ).fetchone()
    return get_scan(conn, scan_id=row["id"]) if row else None


def replace_scan_cards(conn: Conn, *, scan_id: Any, cards: list[ScanCardIn]) -> None:
    """Write the scan's cards keyed by (scan_id, card_index): a re-run replaces, never adds."""
    conn.execute(
        "DELETE FROM scan_cards WHERE scan_id = %(id)s AND card_index >= %(n)s",
        {"id": scan_id, "n": len(cards)},
    )
    for card in cards:
        xs = [p[0] for p in card.quad]
        ys = [p[1] for p in card.quad]
        evidence = {
            **card.evidence,
            "predicted": {
                "card_key": card.card_key,
                "set_code": card.set_code,
                "number": card.number,
            },
        }
        conn.execute(
            """
            INSERT INTO scan_cards (scan_id, card_index, card_id, bounding_box, quad,
                crop_image_url, predicted_set_id, predicted_name, predicted_confidence,
                confidence, decision, candidates, evidence, detector_version,
                embedder_version, index_version)
            SELECT %(scan_id)s, %(idx)s, c.id, %(bbox)s, %(quad)s, %(crop)s, c.set_id,
                %(name)s, %(pct)s, %(conf)s, %(decision)s, %(candidates)s, %(evidence)s,
                %(detector)s, %(embedder)s, %(index)s
            FROM (SELECT 1) one
            LEFT JOIN cards c ON c.card_key = %(card_key)s AND c.deleted_at IS NULL
            ON CONFLICT (scan_id, card_index) DO UPDATE SET
                card_id = EXCLUDED.card_id, bounding_box = EXCLUDED.bounding_box,
                quad = EXCLUDED.quad, crop_image_url = EXCLUDED.crop_image_url,
                predicted_set_id = EXCLUDED.predicted_set_id,
                predicted_name = EXCLUDED.predicted_name,
                predicted_confidence = EXCLUDED.predicted_confidence,
                confidence = EXCLUDED.confidence, decision = EXCLUDED.decision,
                candidates = EXCLUDED.candidates, evidence = EXCLUDED.evidence,
                detector_version = EXCLUDED.detector_version,
                embedder_version = EXCLUDED.embedder_version,
                index_version = EXCLUDED.index_version,
                review_status = NULL, reviewed_by = NULL, reviewed_at = NULL
            """,
            {
                "scan_id": scan_id,
                "idx": card.card_index,
                "card_key": card.card_key,
                "bbox": Jsonb([min(xs), min(ys), max(xs), max(ys)]),
                "quad": Jsonb(card.quad),
                "crop": card.crop_key,
                "name": card.name,
                "pct": round(card.confidence * 100, 2),
                "conf": card.confidence,
                "decision": str(card.decision),
                "candidates": Jsonb(card.candidates),
                "evidence": Jsonb(evidence),
                "detector": card.versions.get("detector"),
                "embedder": card.versions.get("embedder"),
                "index": card.versions.get("index"),
            },
        )


def complete_scan(conn: Conn, *, scan_id: Any, model_versions: dict, n_cards: int) -> None:
    conn.execute(
        f"""
        UPDATE scans SET status = 'completed', processed_at = {_NOW}, model_versions = %(v)s,
            scan_type = CASE WHEN %(n)s = 1 THEN 'single' ELSE 'multi' END,
            error_code = NULL, error_message = NULL
        WHERE id = %(id)s
        """,
        {"id": scan_id, "v": Jsonb(model_versions), "n": n_cards},
    )


def fail_scan(conn: Conn, *, scan_id: Any, error_code: str, error_message: str) -> None:
    conn.execute(
        f"""
        UPDATE scans SET status = 'failed', processed_at = {_NOW}, error_code = %(code)s,
            error_message = %(message)s
        WHERE id = %(id)s AND status <> 'completed'
        """,
        {"id": scan_id, "code": error_code[:64], "message": error_message},
    )


def list_scan_cards(conn: Conn, *, scan_id: Any) -> list[ScanCardRow]:
    """The scan's cards in index order, with catalog names and sets where the card is known."""
    rows = conn.execute(
        """
        SELECT sc.card_index, sc.quad, sc.bounding_box, sc.crop_image_url AS crop_key,
            COALESCE(c.card_key, sc.evidence->'predicted'->>'card_key') AS card_key,
            COALESCE(c.name, sc.predicted_name) AS name,
            COALESCE(st.code, sc.evidence->'predicted'->>'set_code') AS set_code,
            st.name AS set_name,
            COALESCE(c.card_number, sc.evidence->'predicted'->>'number') AS number,
            sc.confidence, sc.decision, sc.review_status, sc.candidates,
            sc.detector_version, sc.embedder_version, sc.index_version
        FROM scan_cards sc
        LEFT JOIN cards c ON c.id = sc.card_id
        LEFT JOIN sets st ON st.id = c.set_id
        WHERE sc.scan_id = %(id)s ORDER BY sc.card_index
        """,
        {"id": scan_id},
    ).fetchall()
    return [ScanCardRow(**{**r, "decision": Decision(r["decision"])}) for r in rows]


def count_scans_by_status(conn: Conn) -> dict[str, int]:
    rows = conn.execute(
        "SELECT status, count(*) AS n FROM scans WHERE deleted_at IS NULL GROUP BY status"
    ).fetchall()
    counts = {str(s): 0 for s in ScanStatus}
    counts.update({r["status"]: r["n"] for r in rows})
    return counts


def claim_stuck_scans(conn: Conn, *, older_than_s: float, limit: int = 100) -> list[Any]:
    """Scans to re-enqueue: processing with no live worker holding them (or for longer than
    `older_than_s`), or pending for longer than that (a message lost by the broker).
    They go back to pending with a fresh clock, so two reapers do not both take one."""
    rows = conn.execute(
        f"""
        WITH stuck AS (
            SELECT id FROM scans
            WHERE deleted_at IS NULL AND (
                (status = 'processing' AND (
                    processing_started_at < {_NOW} - make_interval(secs => %(age)s)
                    OR NOT EXISTS (
                        SELECT 1 FROM pg_locks l
                        WHERE l.locktype = 'advisory' AND l.granted
                          AND l.database = (SELECT oid FROM pg_database
                                            WHERE datname = current_database())
                          AND ((l.classid::bigint << 32) | l.objid::bigint)
                              = hashtextextended(scans.id::text, 0)
                    )))
                OR (status = 'pending' AND updated_at < {_NOW} - make_interval(secs => %(age)s)))
            ORDER BY updated_at LIMIT %(limit)s
            FOR UPDATE SKIP LOCKED
        )
        UPDATE scans s SET status = 'pending', processing_started_at = NULL
        FROM stuck WHERE s.id = stuck.id
        RETURNING s.id
        """,
        {"age": older_than_s, "limit": limit},
    ).fetchall()
    return [r["id"] for r in rows]


def requeue_scan(conn: Conn, *, scan_id: Any) -> None:
    """Back to pending while a retry waits (so the reaper does not take it as an orphan)."""
    conn.execute(
        "UPDATE scans SET status = 'pending', processing_started_at = NULL "
        "WHERE id = %(id)s AND status = 'processing'",
        {"id": scan_id},
    )


@dataclass(frozen=True)
class ScanOutcome:
    """A scan's state and its card counts by decision (what batch progress needs)."""

    id: Any
    status: ScanStatus
    error_message: str | None
    cards: int
    auto_accepted: int
    needs_review: int


def scan_outcomes(conn: Conn, *, scan_ids: list[Any]) -> list[ScanOutcome]:
    """Status and card counts of many scans in one query."""
    rows = conn.execute(
        """
        SELECT s.id, s.status, s.error_message, count(sc.id) AS cards,
            count(sc.id) FILTER (WHERE sc.decision = 'auto_accepted') AS auto_accepted,
            count(sc.id) FILTER (WHERE sc.decision = 'needs_review') AS needs_review
        FROM scans s LEFT JOIN scan_cards sc ON sc.scan_id = s.id
        WHERE s.id = ANY(%(ids)s::uuid[])
        GROUP BY s.id
        """,
        {"ids": [str(i) for i in scan_ids]},
    ).fetchall()
    return [ScanOutcome(**{**r, "status": ScanStatus(r["status"])}) for r in rows]
