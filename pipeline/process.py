"""The scan stage: recognise one stored photo and record its cards, exactly once per scan.

A session advisory lock on the scan is held for the whole run, so two deliveries of one
message never process it together, and a worker that dies releases it with its connection."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

import psycopg
from celery.exceptions import SoftTimeLimitExceeded
from psycopg_pool import PoolTimeout

from db import jobs, scans
from db.jobs import JobStatus
from db.pool import Conn, connection
from db.scans import Decision, ScanCardIn, ScanStatus
from pipeline.settings import settings
from pipeline.storage import Storage, open_storage
from vision.errors import ModelNotReadyError, ScanError, TransientError

log = logging.getLogger(__name__)

_lock = threading.Lock()
_recognizer: Any = None


def load_recognizer() -> Any:
    """This process's recognizer, loaded and warmed up once (call after fork)."""
    global _recognizer
    with _lock:
        if _recognizer is None:
            recognizer: Any
            if settings.recognizer == "fake":
                from pipeline.fake_recognizer import FakeRecognizer

                recognizer = FakeRecognizer()
            else:
                from pipeline.recognize import Recognizer

                recognizer = Recognizer()
            recognizer.load()
            recognizer.warmup()
            _recognizer = recognizer
        return _recognizer


def _jsonable(value: Any) -> Any:
    """Plain JSON types from what a model returns (numpy scalars and arrays included)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist())
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _encode_crop(crop: Any) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise ScanError("could not encode a card crop")
    return buf.tobytes()


def _cards(result: Any, storage: Storage) -> list[ScanCardIn]:
    versions = _jsonable(dict(result.versions))
    out = []
    for index, card in enumerate(result.cards):
        crop_key = None
        if getattr(card, "crop", None) is not None:
            crop_key = storage.put(
                _encode_crop(card.crop), prefix="crops", content_type="image/jpeg"
            )
        out.append(
            ScanCardIn(
                card_index=index,
                quad=[[float(x), float(y)] for x, y in card.quad],
                crop_key=crop_key,
                card_key=card.card_key,
                name=card.name,
                set_code=card.set_code,
                number=card.number and str(card.number),
                confidence=min(max(float(card.confidence), 0.0), 1.0),
                decision=Decision(str(card.decision)),
                candidates=_jsonable(list(card.candidates)),
                evidence=_jsonable(
                    {
                        **(card.evidence or {}),
                        **(
                            {"detection_score": card.detection_score}
                            if hasattr(card, "detection_score")
                            else {}
                        ),
                    }
                ),
                versions=versions,
            )
        )
    return out


def run_scan(
    scan_id: Any,
    *,
    task_id: str | None = None,
    recognizer: Any = None,
    storage: Storage | None = None,
) -> dict:
    """Process one scan; returns a small summary. Raises TransientError or ModelNotReadyError
    when a retry later may succeed."""
    try:
        with connection() as conn:
            with conn.transaction():
                locked = scans.try_lock_scan(conn, scan_id=scan_id)
            if not locked:
                return {"scan_id": str(scan_id), "status": "busy"}
            try:
                return _run_locked(
                    conn, scan_id, task_id=task_id, recognizer=recognizer, storage=storage
                )
            finally:
                if not conn.closed:
                    try:
                        with conn.transaction():
                            scans.unlock_scan(conn, scan_id=scan_id)
                    except psycopg.Error:
                        pass  # the lock dies with the broken connection anyway
    except (psycopg.OperationalError, PoolTimeout) as exc:
        raise TransientError(f"database unavailable: {exc}") from exc


def _run_locked(
    conn: Conn,
    scan_id: Any,
    *,
    task_id: str | None,
    recognizer: Any,
    storage: Storage | None,
) -> dict:
    with conn.transaction():
        scan = scans.get_scan(conn, scan_id=scan_id)
        if scan is None or scan.status in (ScanStatus.COMPLETED, ScanStatus.FAILED):
            # Done already (a redelivered message) or deleted: nothing to redo.
            return {
                "scan_id": str(scan_id),
                "status": scan.status if scan else "missing",
                "skipped": True,
            }
        scan = scans.mark_processing(conn, scan_id=scan_id)
        job_id = jobs.start_job(
            conn,
            scan_id=scan_id,
            celery_task_id=task_id,
            worker=f"{socket.gethostname()}:{os.getpid()}",
        )
    timings: dict[str, float] = {}
    storage = storage or open_storage()
    assert scan is not None  # mark_processing found it under our lock a moment ago
    if scan.attempts > settings.max_scan_attempts:
        # Every earlier run died without a word (an out-of-memory kill, a hard time limit): a
        # photo that kills workers must not go round the queue for ever.
        reason = (
            f"gave up after {scan.attempts - 1} runs that did not finish "
            "(the worker was lost or killed)"
        )
        return _fail(conn, scan_id, job_id, timings, "too_many_attempts", reason, "TooManyAttempts")
    try:
        start = time.perf_counter()
        data = storage.get(scan.image_url)
        timings["fetch"] = (time.perf_counter() - start) * 1e3
        result = (recognizer or load_recognizer()).recognize(data)
        timings.update({k: float(v) for k, v in dict(result.timings_ms).items()})
        start = time.perf_counter()
        cards = _cards(result, storage)
        timings["store_crops"] = (time.perf_counter() - start) * 1e3
    except (TransientError, ModelNotReadyError) as exc:  # worth a retry later
        with conn.transaction():
            scans.requeue_scan(conn, scan_id=scan_id)
            jobs.finish_job(
                conn,
                job_id=job_id,
                status=JobStatus.RETRYING,
                stage_timings=timings,
                error_type=type(exc).__name__,
                error_message=exc.detail,
            )
        raise
    except Exception as exc:  # noqa: BLE001 - anything but a transient error fails the scan
        code, reason = _failure(exc)
        if code == "processing_error":
            log.exception("scan %s failed", scan_id)
        return _fail(conn, scan_id, job_id, timings, code, reason, type(exc).__name__)
    timings["total"] = sum(timings.values())
    with conn.transaction():
        scans.replace_scan_cards(conn, scan_id=scan_id, cards=cards)
        scans.complete_scan(
            conn,
            scan_id=scan_id,
            model_versions=_jsonable(dict(result.versions)),
            n_cards=len(cards),
        )
        jobs.finish_job(conn, job_id=job_id, status=JobStatus.SUCCEEDED, stage_timings=timings)
    return {"scan_id": str(scan_id), "status": "completed", "cards": len(cards)}


def _fail(
    conn: Conn, scan_id: Any, job_id: Any, timings: dict, code: str, reason: str, error_type: str
) -> dict:
    """Fail the scan and its job with a reason, in one transaction."""
    with conn.transaction():
        scans.fail_scan(conn, scan_id=scan_id, error_code=code, error_message=reason)
        jobs.finish_job(
            conn,
            job_id=job_id,
            status=JobStatus.FAILED,
            stage_timings=timings,
            error_type=error_type,
            error_message=reason,
        )
    return {"scan_id": str(scan_id), "status": "failed", "code": code}


def _failure(exc: Exception) -> tuple[str, str]:
    """The failed scan's (error_code, error_message) for an exception that ended its run."""
    if isinstance(exc, ScanError):
        return exc.code, exc.detail
    if isinstance(exc, SoftTimeLimitExceeded):  # raised into the task by Celery's time limit
        return "timed_out", f"recognition took longer than {settings.scan_time_limit_s:g} s"
    return "processing_error", f"{type(exc).__name__}: {exc}"


def fail_after_retries(scan_id: Any, exc: ScanError) -> None:
    """Give up on a scan whose transient error outlasted every retry."""
    with connection() as conn, conn.transaction():
        scans.fail_scan(
            conn,
            scan_id=scan_id,
            error_code=exc.code,
            error_message=f"gave up after retries: {exc.detail}",
        )
        job = jobs.latest_job(conn, scan_id=scan_id)
        if job is not None:
            jobs.finish_job(
                conn,
                job_id=job.id,
                status=JobStatus.FAILED,
                stage_timings=job.stage_timings,
                error_type=type(exc).__name__,
                error_message=exc.detail,
            )
