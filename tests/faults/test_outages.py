"""PostgreSQL, Redis or the S3 server restarted in the middle of a 200-photo ingest, with a real
worker running: every photo ends as exactly one completed scan with exactly its card and one
succeeded job. And a scan whose worker died with its broker message lost is reaped and finished.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

PHOTOS = 200
RESTART_AFTER = 80  # photos registered before the server goes away
DOWN_S = 2.0  # how long the server stays away: long enough for requests to hit the outage


def _status_counts() -> dict[str, int]:
    from db.pool import connection

    with connection() as conn:
        rows = conn.execute("SELECT status, count(*) AS n FROM scans GROUP BY status").fetchall()
    return {r["status"]: r["n"] for r in rows}


def _some_completed(timeout: float = 60.0) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while not (counts := _status_counts()).get("completed") and time.monotonic() < deadline:
        time.sleep(0.1)
    return counts


def _wait_for_status(scan_id: Any, statuses: tuple[str, ...], timeout: float):
    """Poll until the scan's status is one of `statuses` (or the timeout); returns the row."""
    from db import scans
    from db.pool import connection

    deadline = time.monotonic() + timeout
    while True:
        with connection() as conn:
            scan = scans.get_scan(conn, scan_id=scan_id)
        if scan.status in statuses or time.monotonic() > deadline:
            return scan
        time.sleep(0.1)


def _ingest_through(restart: Callable[[], None], folder: Path, user_id: Any):
    """register_folder over `folder`; once RESTART_AFTER photos are in and the worker has
    completed some, `restart` runs in a thread while registration goes on.
    Returns the summary and the scans' status counts when the restart began."""
    from pipeline.ingest import register_folder

    with ThreadPoolExecutor(1) as executor:
        restarted = []
        seen = 0

        def on_photo(path: Path, outcome: str) -> None:
            nonlocal seen
            seen += 1
            if seen == RESTART_AFTER:
                restarted.append((_some_completed(), executor.submit(restart)))

        summary = register_folder(folder, user_id=user_id, on_photo=on_photo)
        [(counts, done)] = restarted
        done.result(timeout=120)  # re-raises what went wrong in the restart
    return summary, counts


def _stop_then_start(server: Any, down_s: float = DOWN_S) -> Callable[[], None]:
    def restart() -> None:
        server.stop()
        time.sleep(down_s)  # the outage itself, not a wait for something to happen
        server.start()

    return restart


def _assert_every_photo_scanned_exactly_once(
    first,
    folder: Path,
    user_id: Any,
    worker,
    on_progress: Callable | None = None,
) -> None:
    from db.pool import connection
    from pipeline.ingest import register_folder, wait_for_scans

    assert first.skipped == 0, first.skipped_files
    assert first.photos + len(first.unregistered) == PHOTOS
    # Run again, as an operator would: what the outage kept out is registered now, the rest
    # comes back as duplicates of the same scans.
    again = register_folder(folder, user_id=user_id)
    assert (again.photos, again.skipped, again.unregistered) == (PHOTOS, 0, [])
    assert again.new == len(first.unregistered)
    assert again.duplicates == PHOTOS - again.new
    assert {k: again.scan_ids[k] for k in first.scan_ids} == first.scan_ids

    finished = wait_for_scans(again, timeout_s=90, poll_s=0.2, on_progress=on_progress)
    assert finished and again.completed == PHOTOS, (
        _status_counts(),
        again.failures,
        worker.log()[-3000:],
    )
    with connection() as conn:
        rows = conn.execute(
            """
            SELECT s.status,
                (SELECT count(*) FROM scans t WHERE t.upload_id = s.upload_id) AS scans_of_upload,
                (SELECT count(*) FROM scan_cards c WHERE c.scan_id = s.id) AS cards,
                (SELECT count(*) FROM jobs j WHERE j.scan_id = s.id
                 AND j.status = 'succeeded') AS succeeded
            FROM scans s
            """
        ).fetchall()
        uploads = conn.execute("SELECT count(*) AS n FROM uploads").fetchone()["n"]
    assert uploads == PHOTOS and len(rows) == PHOTOS
    # The fake recognizer finds exactly one card per photo.
    outcomes = {(r["status"], r["scans_of_upload"], r["cards"], r["succeeded"]) for r in rows}
    assert outcomes == {("completed", 1, 1, 1)}


def _assert_restarted_mid_ingest(counts: dict[str, int]) -> None:
    """The outage began with scans both completed and waiting (and photos still to come)."""
    assert counts.get("completed", 0) > 0, counts
    assert counts.get("pending", 0) + counts.get("processing", 0) > 0, counts


def test_postgres_restart_mid_ingest_loses_and_doubles_no_scan(
    postgres,
    redis_broker,
    local_storage,
    user_id,
    start_worker,
    photo_folder,
):
    worker = start_worker()
    summary, counts = _ingest_through(_stop_then_start(postgres), photo_folder, user_id)
    _assert_restarted_mid_ingest(counts)
    # And once more while `ingest --wait` polls for the scans to finish, for longer than a
    # pooled connection is waited for.
    with ThreadPoolExecutor(1) as executor:
        restarts = []

        def on_progress(finished: int, total: int) -> None:
            if not restarts and finished < total:
                restarts.append(executor.submit(_stop_then_start(postgres, down_s=12)))

        _assert_every_photo_scanned_exactly_once(
            summary, photo_folder, user_id, worker, on_progress
        )
        [done] = restarts
        done.result(timeout=60)
    assert worker.proc.poll() is None


def test_redis_restart_mid_ingest_loses_and_doubles_no_scan(
    postgres,
    redis_broker,
    local_storage,
    user_id,
    start_worker,
    photo_folder,
):
    # Redis keeps nothing across the restart: the queued and unacknowledged messages are gone,
    # and the worker's reaper re-enqueues their scans once they are pending too long.
    worker = start_worker()
    summary, counts = _ingest_through(_stop_then_start(redis_broker), photo_folder, user_id)
    _assert_restarted_mid_ingest(counts)
    _assert_every_photo_scanned_exactly_once(summary, photo_folder, user_id, worker)
    assert worker.proc.poll() is None


def test_s3_restart_mid_ingest_loses_and_doubles_no_scan(
    postgres,
    redis_broker,
    s3_storage,
    user_id,
    start_worker,
    photo_folder,
):
    worker = start_worker()
    summary, counts = _ingest_through(_stop_then_start(s3_storage), photo_folder, user_id)
    _assert_restarted_mid_ingest(counts)
    _assert_every_photo_scanned_exactly_once(summary, photo_folder, user_id, worker)
    assert worker.proc.poll() is None


def test_scan_of_a_dead_worker_whose_message_was_lost_is_reaped_and_completed_once(
    postgres,
    redis_broker,
    local_storage,
    user_id,
    start_worker,
):
    from db import jobs, scans
    from db.pool import connection
    from pipeline.enqueue import queue_depth, register_photo
    from tests.photos import photo

    slow = start_worker(CARDSCAN_FAKE_RECOGNIZER_DELAY_S="60")
    scan_id, _ = register_photo(user_id=user_id, data=photo(7), filename="7.jpg", trigger="ingest")
    assert _wait_for_status(scan_id, ("processing",), timeout=30).status == "processing"
    slow.kill()
    _stop_then_start(redis_broker, down_s=0)()  # the unacknowledged message dies with the broker
    assert queue_depth() == 0
    assert _wait_for_status(scan_id, ("completed", "failed"), timeout=0).status == "processing"

    worker = start_worker()
    scan = _wait_for_status(scan_id, ("completed", "failed"), timeout=60)
    assert scan.status == "completed", worker.log()[-3000:]
    with connection() as conn:
        cards = scans.list_scan_cards(conn, scan_id=scan_id)
        runs = jobs.list_jobs(conn, scan_id=scan_id)
    assert len(cards) == 1
    assert [j.trigger for j in runs] == ["ingest", "reaper"]
    assert [j.status for j in runs].count("succeeded") == 1
    assert scan.attempts == 2
