"""register_photo: validate, store, insert uploads/scans/jobs in one transaction, then enqueue."""

from __future__ import annotations

import pytest

from tests.photos import bomb_png, photo, text_as_jpg


def _counts() -> dict[str, int]:
    from db.pool import connection

    with connection() as conn:
        return {
            t: conn.execute(f"SELECT count(*) AS n FROM {t}").fetchone()["n"]
            for t in ("uploads", "scans", "jobs")
        }


def test_register_stores_inserts_and_enqueues_after_commit(user_id, broker_dir, object_dir):
    from db import jobs, scans
    from db.pool import connection
    from pipeline.enqueue import queue_depth, register_photo
    from pipeline.storage import open_storage

    scan_id, created = register_photo(
        user_id=user_id, data=photo(1), filename="a.jpg", trigger="ingest", location="binder 1"
    )
    assert created and queue_depth() == 1
    with connection() as conn:
        scan = scans.get_scan(conn, scan_id=scan_id)
        job = jobs.latest_job(conn, scan_id=scan_id)
    assert (scan.status, scan.trigger, scan.location) == ("pending", "ingest", "binder 1")
    assert job.trigger == "ingest" and job.status == "queued" and job.celery_task_id
    assert open_storage().get(scan.image_url) == photo(1)
    assert scan.image_url.startswith("originals/") and scan.image_url.endswith(".jpg")


def test_same_bytes_same_user_is_the_same_scan(user_id, broker_dir):
    from pipeline.enqueue import queue_depth, register_photo

    first = register_photo(user_id=user_id, data=photo(2), filename="a.jpg")
    again = register_photo(user_id=user_id, data=photo(2), filename="b.jpg")
    assert first == (first[0], True) and again == (first[0], False)
    assert queue_depth() == 1
    assert _counts() == {"uploads": 1, "scans": 1, "jobs": 1}


def test_a_given_connection_must_be_outside_a_transaction(user_id, broker_dir):
    from db.pool import connection
    from pipeline.enqueue import register_photo

    with connection() as conn:
        scan_id, created = register_photo(conn, user_id=user_id, data=photo(3), filename=None)
        assert created
        with conn.transaction(), pytest.raises(ValueError):
            register_photo(conn, user_id=user_id, data=photo(4), filename=None)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty_upload"),
        (text_as_jpg(), "unsupported_media_type"),
        (bomb_png(), "image_too_large"),
    ],
)
def test_rejected_bytes_leave_no_rows(user_id, broker_dir, data, code):
    from pipeline.enqueue import queue_depth, register_photo
    from vision.errors import ScanError

    with pytest.raises(ScanError) as info:
        register_photo(user_id=user_id, data=data, filename="x.jpg")
    assert info.value.code == code
    assert _counts() == {"uploads": 0, "scans": 0, "jobs": 0} and queue_depth() == 0
