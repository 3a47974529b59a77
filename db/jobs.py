"""SQL for job rows: one per task run of a scan, with trigger, timings per stage, error type."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from psycopg.types.json import Jsonb

from db.pool import Conn, one


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRYING = "retrying"


@dataclass(frozen=True)
class JobRow:
    id: Any
    scan_id: Any
    trigger: str
    status: JobStatus
    attempts: int
    celery_task_id: str | None
    worker: str | None
    stage_timings: dict | None
    error_type: str | None
    error_message: str | None
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


_COLUMNS = """id, scan_id, trigger, status, attempts, celery_task_id, worker, stage_timings,
    error_type, error_message, queued_at, started_at, finished_at"""
_NOW = "(now() AT TIME ZONE 'UTC')"


def _job(row: dict) -> JobRow:
    return JobRow(**{**row, "status": JobStatus(row["status"])})


def insert_job(
    conn: Conn,
    *,
    scan_id: Any,
    trigger: str,
    celery_task_id: str | None = None,
) -> Any:
    cur = conn.execute(
        "INSERT INTO jobs (scan_id, trigger, celery_task_id) "
        "VALUES (%(scan_id)s, %(trigger)s, %(task)s) RETURNING id",
        {"scan_id": scan_id, "trigger": str(trigger), "task": celery_task_id},
    )
    row = one(cur)
    return row["id"]


def set_task_id(conn: Conn, *, job_id: Any, celery_task_id: str | None) -> None:
    """The job's message id on the broker; None records that publishing it failed."""
    conn.execute(
        "UPDATE jobs SET celery_task_id = %(task)s WHERE id = %(id)s",
        {"id": job_id, "task": celery_task_id},
    )


def latest_job(conn: Conn, *, scan_id: Any) -> JobRow | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM jobs WHERE scan_id = %(id)s ORDER BY queued_at DESC, id LIMIT 1",
        {"id": scan_id},
    ).fetchone()
    return _job(row) if row else None


def list_jobs(conn: Conn, *, scan_id: Any) -> list[JobRow]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM jobs WHERE scan_id = %(id)s ORDER BY queued_at, id",
        {"id": scan_id},
    ).fetchall()
    return [_job(r) for r in rows]


def start_job(conn: Conn, *, scan_id: Any, worker: str, celery_task_id: str | None) -> Any:
    """Mark the scan's latest open job running (a new row if none is open); returns its id."""
    row = conn.execute(
        f"""
        UPDATE jobs SET status = 'running', attempts = attempts + 1, worker = %(worker)s,
            started_at = {_NOW}, celery_task_id = COALESCE(%(task)s, celery_task_id)
        WHERE id = (SELECT id FROM jobs WHERE scan_id = %(scan_id)s
                    AND status IN ('queued', 'retrying', 'running')
                    ORDER BY queued_at DESC LIMIT 1)
        RETURNING id
        """,
        {"scan_id": scan_id, "worker": worker, "task": celery_task_id},
    ).fetchone()
    if row:
        return row["id"]
    cur = conn.execute(
        f"""
        INSERT INTO jobs (scan_id, trigger, status, attempts, worker, started_at, celery_task_id)
        SELECT %(scan_id)s, trigger, 'running', 1, %(worker)s, {_NOW}, %(task)s
        FROM scans WHERE id = %(scan_id)s
        RETURNING id
        """,
        {"scan_id": scan_id, "worker": worker, "task": celery_task_id},
    )
    row = one(cur)
    return row["id"]


def finish_job(
    conn: Conn,
    *,
    job_id: Any,
    status: JobStatus,
    stage_timings: dict | None = None,
    error_type: str | None = None,
    error_message: str | None = None,
) -> None:
    conn.execute(
        f"""
        UPDATE jobs SET status = %(status)s::text, stage_timings = %(timings)s,
            error_type = %(error_type)s, error_message = %(error_message)s,
            finished_at = CASE WHEN %(status)s::text IN ('succeeded', 'failed') THEN {_NOW} END
        WHERE id = %(id)s
        """,
        {
            "id": job_id,
            "status": str(status),
            "timings": Jsonb(stage_timings) if stage_timings is not None else None,
            "error_type": error_type and error_type[:100],
            "error_message": error_message,
        },
    )


def stage_latency_summary(conn: Conn, *, last_n: int = 1000) -> dict[str, dict[str, float]]:
    """p50 / p95 / mean of each stage over the last `last_n` finished jobs, in milliseconds."""
    rows = conn.execute(
        """
        WITH recent AS (
            SELECT stage_timings FROM jobs
            WHERE stage_timings IS NOT NULL AND finished_at IS NOT NULL
            ORDER BY finished_at DESC LIMIT %(n)s
        )
        SELECT t.key AS stage,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY t.value::float8) AS p50,
            percentile_cont(0.95) WITHIN GROUP (ORDER BY t.value::float8) AS p95,
            count(*) AS n
        FROM recent, jsonb_each_text(recent.stage_timings) t
        WHERE jsonb_typeof(recent.stage_timings -> t.key) = 'number'
        GROUP BY t.key
        """,
        {"n": last_n},
    ).fetchall()
    return {r["stage"]: {"p50": r["p50"], "p95": r["p95"], "n": r["n"]} for r in rows}
