"""The reaper re-enqueues orphaned and stuck scans, and leaves live ones alone."""

from __future__ import annotations

from tests.photos import photo


def _scan(user_id, seed, status):
    from db.pool import connection
    from pipeline.enqueue import register_photo

    scan_id = register_photo(user_id=user_id, data=photo(seed), filename=None)[0]
    with connection() as conn, conn.transaction():
        conn.execute(
            "UPDATE scans SET status = %(s)s WHERE id = %(id)s", {"s": status, "id": scan_id}
        )
    return scan_id


def test_orphaned_processing_scan_is_reenqueued(user_id, broker_dir):
    from db import jobs, scans
    from db.pool import connect, connection
    from pipeline.enqueue import queue_depth
    from pipeline.reaper import reap_stuck_scans

    orphan = _scan(user_id, 1, "processing")
    live = _scan(user_id, 2, "processing")
    fresh = _scan(user_id, 3, "pending")
    with connect(autocommit=True) as worker:  # a live worker holds `live`
        assert scans.try_lock_scan(worker, scan_id=live)
        assert reap_stuck_scans() == [orphan]
        assert reap_stuck_scans() == []  # claimed scans are pending again with a fresh clock
    assert queue_depth() == 4  # three uploads + one re-enqueue
    with connection() as conn:
        assert scans.get_scan(conn, scan_id=orphan).status == "pending"
        assert [j.trigger for j in jobs.list_jobs(conn, scan_id=orphan)] == ["api", "reaper"]
        assert scans.get_scan(conn, scan_id=fresh).status == "pending"


def test_scans_stuck_past_the_timeout_are_reenqueued(user_id, broker_dir):
    from db.pool import connection
    from pipeline.reaper import reap_stuck_scans

    old = _scan(user_id, 4, "pending")
    with connection() as conn, conn.transaction():
        conn.execute("ALTER TABLE scans DISABLE TRIGGER trg_scans_updated_at")
        conn.execute(
            "UPDATE scans SET updated_at = updated_at - interval '1 hour' WHERE id = %(id)s",
            {"id": old},
        )
        conn.execute("ALTER TABLE scans ENABLE TRIGGER trg_scans_updated_at")
    assert reap_stuck_scans(older_than_s=600) == [old]


def test_processing_scan_held_past_the_timeout_is_reenqueued(user_id, broker_dir):
    # A worker whose host vanished can leave its session (and so its lock) open for a while;
    # past the timeout its scan is taken anyway.
    from db import scans
    from db.pool import connect, connection
    from pipeline.reaper import reap_stuck_scans

    held = _scan(user_id, 5, "processing")
    with connection() as conn, conn.transaction():
        conn.execute(
            "UPDATE scans SET processing_started_at = "
            "(now() AT TIME ZONE 'UTC') - interval '1 hour' WHERE id = %(id)s",
            {"id": held},
        )
    with connect(autocommit=True) as worker:
        assert scans.try_lock_scan(worker, scan_id=held)
        assert reap_stuck_scans(older_than_s=3600 * 2) == []
        assert reap_stuck_scans(older_than_s=600) == [held]
