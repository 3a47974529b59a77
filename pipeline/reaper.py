"""Re-enqueue scans that no worker will finish: orphaned by a dead worker, stuck in processing
past `processing_timeout_s`, or pending that long because their message was lost."""

from __future__ import annotations

import logging
import threading
from typing import Any

from db import jobs, scans
from db.pool import connection
from db.scans import Trigger
from pipeline.enqueue import QueueUnavailableError, publish_scan
from pipeline.settings import settings

log = logging.getLogger(__name__)


def reap_stuck_scans(*, older_than_s: float | None = None) -> list[Any]:
    """Claim stuck scans, give each a new job row and enqueue it; returns their ids."""
    age = settings.processing_timeout_s if older_than_s is None else older_than_s
    with connection() as conn:
        with conn.transaction():
            stuck = scans.claim_stuck_scans(conn, older_than_s=age)
            job_ids = [jobs.insert_job(conn, scan_id=s, trigger=Trigger.REAPER) for s in stuck]
        for scan_id, job_id in zip(stuck, job_ids, strict=True):
            try:
                publish_scan(conn, scan_id=scan_id, job_id=job_id)
            except QueueUnavailableError:
                log.warning("reaper could not enqueue scan %s; it stays pending", scan_id)
    if stuck:
        log.info("re-enqueued %d stuck scans", len(stuck))
    return stuck


def start_reaper_thread(interval_s: float | None = None) -> threading.Thread:
    """Run the reaper now and then every `interval_s` in a daemon thread."""
    interval = settings.reaper_interval_s if interval_s is None else interval_s
    stop = threading.Event()

    def loop() -> None:
        while True:
            try:
                reap_stuck_scans()
            except Exception:  # noqa: BLE001 - a database blip must not end the loop
                log.exception("reaper run failed")
            if stop.wait(interval):
                return

    thread = threading.Thread(target=loop, name="cardscan-reaper", daemon=True)
    thread.stop = stop  # type: ignore[attr-defined]
    thread.start()
    return thread
