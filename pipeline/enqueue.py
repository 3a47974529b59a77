"""Register a photo as a scan: validate, store the original, insert uploads/scans/jobs in one
transaction, enqueue after commit. Shared by the API and `cardscan ingest`; imports no model."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from psycopg import pq

from db import jobs, scans, uploads
from db.pool import Conn, connection
from db.scans import ScanStatus, Trigger
from pipeline.celery_app import PROCESS_SCAN, QUEUE, get_app
from pipeline.settings import settings
from pipeline.storage import Storage, open_storage
from vision.errors import ConflictError, EmptyUploadError, ImageTooLargeError, TransientError

log = logging.getLogger(__name__)

# Publishing gives up fast: the caller answers 503 and the reaper enqueues the scan later.
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


class QueueUnavailableError(TransientError):
    """The broker did not take the message; the scan is saved and will be enqueued later."""

    code = "queue_unavailable"


@contextmanager
def _connection(conn: Conn | None) -> Iterator[Conn]:
    if conn is None:
        with connection() as pooled:
            yield pooled
        return
    # Enqueue-after-commit needs our transaction to be the outer one.
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        raise ValueError("register_photo needs a connection outside any transaction")
    yield conn


def check_size(data: bytes) -> None:
    """Reject empty and oversize uploads before anything reads them."""
    if not data:
        raise EmptyUploadError("the upload is empty")
    if len(data) > settings.max_upload_bytes:
        raise ImageTooLargeError(
            f"the upload is {len(data)} bytes; the limit is {settings.max_upload_bytes}"
        )


def register_photo(
    conn: Conn | None = None,
    *,
    user_id: Any,
    data: bytes,
    filename: str | None,
    trigger: Trigger | str = Trigger.API,
    idempotency_key: str | None = None,
    location: str | None = None,
    storage: Storage | None = None,
) -> tuple[Any, bool]:
    """The scan of this photo for this user, and whether this call created it."""
    # vision.decode imports OpenCV at its top; importing it here keeps `import api.main` light.
    from vision.decode import sniff_image

    check_size(data)
    info = sniff_image(data, max_pixels=settings.max_pixels)
    sha256 = hashlib.sha256(data).hexdigest()
    # Stored before the rows that name it; content-addressed, so storing again is a no-op.
    key = (storage or open_storage()).put(data, prefix="originals", content_type=info.media_type)
    task_id = str(uuid.uuid4())  # on the job row from the start: no second commit after publish
    with _connection(conn) as c:
        with c.transaction():
            existing = _existing_scan(c, user_id=user_id, sha256=sha256, key=idempotency_key)
            if existing is None:
                upload, _ = uploads.insert_upload(
                    c,
                    user_id=user_id,
                    sha256=sha256,
                    size_bytes=len(data),
                    media_type=info.media_type,
                    width=info.width,
                    height=info.height,
                    storage_key=key,
                    original_filename=filename and filename[:512],
                )
                scan_id = scans.insert_scan(
                    c,
                    user_id=user_id,
                    upload_id=upload.id,
                    image_url=key,
                    trigger=Trigger(trigger),
                    idempotency_key=idempotency_key,
                    location=location,
                )
                if scan_id is None:  # a concurrent request with these bytes or key won
                    existing = _existing_scan(
                        c, user_id=user_id, sha256=sha256, key=idempotency_key
                    )
                    if existing is None:
                        raise ConflictError("a concurrent upload of this photo was deleted")
                else:
                    job_id = jobs.insert_job(
                        c, scan_id=scan_id, trigger=trigger, celery_task_id=task_id
                    )
        if existing is not None:
            scan, job = existing
            if scan.status == ScanStatus.PENDING and job is not None and not job.celery_task_id:
                # Saved earlier while the queue was down: this retry enqueues it.
                publish_scan(c, scan_id=scan.id, job_id=job.id)
            return scan.id, False
        publish_scan(c, scan_id=scan_id, job_id=job_id, task_id=task_id)
    return scan_id, True


def _existing_scan(
    c: Conn,
    *,
    user_id: Any,
    sha256: str,
    key: str | None,
) -> tuple[scans.ScanRow, jobs.JobRow | None] | None:
    """The user's live scan for this key or these bytes, with its latest job."""
    upload = uploads.get_upload_by_sha(c, user_id=user_id, sha256=sha256)
    scan = scans.find_live_scan(
        c, user_id=user_id, upload_id=upload and upload.id, idempotency_key=key
    )
    if scan is None:
        return None
    if key is not None and scan.idempotency_key == key and scan.upload_sha256 != sha256:
        raise ConflictError("this Idempotency-Key was used with a different photo")
    return scan, jobs.latest_job(c, scan_id=scan.id)


def publish_scan(
    c: Conn,
    *,
    scan_id: Any,
    job_id: Any,
    task_id: str | None = None,
) -> None:
    """Send process_scan(scan_id) to the queue. `task_id` is the one already on the job row;
    without it a new one is noted after publishing. A failed publish clears the job's task id,
    which is how a later upload of the same photo knows to enqueue it again."""
    new_id = task_id or str(uuid.uuid4())
    try:
        get_app().send_task(
            PROCESS_SCAN,
            args=[str(scan_id)],
            task_id=new_id,
            queue=QUEUE,
            routing_key=QUEUE,
            retry=True,
            retry_policy=PUBLISH_RETRY,
        )
    except Exception as exc:  # kombu, redis and OS errors all mean the same: not queued
        log.warning("could not enqueue scan %s: %s", scan_id, exc)
        if task_id is not None:
            with c.transaction():
                jobs.set_task_id(c, job_id=job_id, celery_task_id=None)
        raise QueueUnavailableError("the scan queue is unavailable; try again shortly") from exc
    if task_id is None:
        with c.transaction():
            jobs.set_task_id(c, job_id=job_id, celery_task_id=new_id)


def queue_depth() -> int:
    """Messages waiting in the scans queue (what /metrics and /readyz ask the broker)."""
    from pipeline.celery_app import queue_depth as depth

    return depth()
