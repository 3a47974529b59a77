"""Celery tasks: thin, idempotent, ids in and a small dict out."""

from __future__ import annotations

import logging
import random

from celery.signals import (
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)

from pipeline import process
from pipeline.celery_app import PROCESS_SCAN, app
from pipeline.settings import settings
from vision.errors import ModelNotReadyError, TransientError

log = logging.getLogger(__name__)


def retry_delay(retries: int, *, base_s: float = 1.0, cap_s: float = 60.0) -> float:
    """Exponential backoff with full jitter (a uniform delay up to base * 2^retries)."""
    return random.uniform(0, min(cap_s, base_s * 2**retries))


@app.task(
    name=PROCESS_SCAN,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=settings.task_max_retries,
    soft_time_limit=settings.scan_time_limit_s,
    time_limit=settings.scan_time_limit_s + settings.scan_kill_grace_s,
)
def process_scan(self, scan_id: str) -> dict:  # noqa: ANN001
    """Recognise the scan's photo and record its cards; a finished scan is not redone."""
    try:
        return process.run_scan(scan_id, task_id=self.request.id)
    except (TransientError, ModelNotReadyError) as exc:
        if self.request.retries >= self.max_retries:
            process.fail_after_retries(scan_id, exc)
            return {"scan_id": scan_id, "status": "failed", "code": exc.code}
        raise self.retry(exc=exc, countdown=retry_delay(self.request.retries)) from exc


@worker_process_init.connect
def load_models(**_: object) -> None:
    """Load and warm up the recognizer in each pool process, after the fork."""
    try:
        process.load_recognizer()
    except Exception:  # noqa: BLE001 - keep the process up; its scans retry, then fail clearly
        log.exception("recognizer failed to load; scans will retry")


@worker_ready.connect
def start_reaper(**_: object) -> None:
    """The worker's main process re-enqueues orphaned scans now and periodically."""
    from pipeline.reaper import start_reaper_thread

    start_reaper_thread()


@worker_shutdown.connect
@worker_process_shutdown.connect
def close_database(**_: object) -> None:
    """Close this process's pool now; left to interpreter exit it stalls shutdown for seconds."""
    from db.pool import close_pool

    close_pool()
