"""The scan stage called as a plain function, with the FakeRecognizer at the model seam."""

from __future__ import annotations

import pytest

from pipeline.fake_recognizer import FakeRecognizer
from tests.photos import corrupt_jpeg, photo, truncated_png
from vision.errors import TransientError


def _register(user_id, data):
    from pipeline.enqueue import register_photo

    return register_photo(user_id=user_id, data=data, filename="p.jpg")[0]


def _state(scan_id):
    from db import jobs, scans
    from db.pool import connection

    with connection() as conn, conn.transaction():
        return (
            scans.get_scan(conn, scan_id=scan_id),
            scans.list_scan_cards(conn, scan_id=scan_id),
            jobs.list_jobs(conn, scan_id=scan_id),
        )


def test_scan_completes_with_cards_crops_versions_and_timings(user_id, broker_dir):
    from pipeline.process import run_scan
    from pipeline.storage import open_storage

    scan_id = _register(user_id, photo(1, size=(500, 400)))
    assert run_scan(scan_id, recognizer=FakeRecognizer())["status"] == "completed"
    scan, cards, jobs = _state(scan_id)
    assert scan.status == "completed" and scan.attempts == 1
    assert scan.model_versions == FakeRecognizer.versions
    [card] = cards
    assert card.decision == "auto_accepted" and card.quad[0] == [50.0, 40.0]
    assert card.bounding_box == [50.0, 40.0, 450.0, 360.0]
    assert card.candidates[0]["name"] == card.name and card.detector_version == "fake-detector-1"
    assert open_storage().get(card.crop_key)[:3] == b"\xff\xd8\xff"
    [job] = jobs
    assert job.status == "succeeded" and job.attempts == 1
    assert {"fetch", "decode", "recognize", "store_crops", "total"} <= set(job.stage_timings)


def test_completed_scan_is_not_redone(user_id, broker_dir):
    from pipeline.process import run_scan

    scan_id = _register(user_id, photo(2))
    run_scan(scan_id, recognizer=FakeRecognizer())
    again = run_scan(scan_id, recognizer=FakeRecognizer())
    assert again["skipped"] and again["status"] == "completed"
    scan, cards, jobs = _state(scan_id)
    assert scan.attempts == 1 and len(cards) == 1 and len(jobs) == 1


def test_rerun_of_an_orphaned_scan_replaces_its_cards(user_id, broker_dir):
    from db import scans
    from db.pool import connection
    from pipeline.process import run_scan

    scan_id = _register(user_id, photo(3))
    run_scan(scan_id, recognizer=FakeRecognizer())
    with connection() as conn, conn.transaction():  # as if a worker died after writing
        conn.execute("UPDATE scans SET status = 'processing' WHERE id = %(id)s", {"id": scan_id})
        scans.replace_scan_cards(
            conn,
            scan_id=scan_id,
            cards=[
                scans.ScanCardIn(
                    card_index=i,
                    quad=[[0, 0], [1, 0], [1, 1], [0, 1]],
                    crop_key=None,
                    card_key=None,
                    name=None,
                    set_code=None,
                    number=None,
                    confidence=0.1,
                    decision=scans.Decision.NO_MATCH,
                    candidates=[],
                )
                for i in range(3)
            ],
        )
    assert run_scan(scan_id, recognizer=FakeRecognizer())["status"] == "completed"
    scan, cards, _ = _state(scan_id)
    assert scan.status == "completed" and [c.card_index for c in cards] == [0]
    assert cards[0].decision == "auto_accepted"


@pytest.mark.parametrize("data", [corrupt_jpeg(), truncated_png()], ids=["jpeg", "png"])
def test_undecodable_photo_fails_with_a_reason(user_id, broker_dir, data):
    from pipeline.process import run_scan

    scan_id = _register(user_id, data)
    assert run_scan(scan_id, recognizer=FakeRecognizer())["status"] == "failed"
    scan, cards, [job] = _state(scan_id)
    assert scan.status == "failed" and scan.error_code == "undecodable_image"
    assert "truncated" in scan.error_message and cards == []
    assert job.status == "failed" and job.error_type == "DecodeError"


class FlakyRecognizer(FakeRecognizer):
    """Fails with a transient error `failures` times, then recognises normally."""

    def __init__(self, failures: int) -> None:
        super().__init__(delay_s=0)
        self.failures = failures

    def recognize(self, data):
        if self.failures:
            self.failures -= 1
            raise TransientError("model server busy")
        return super().recognize(data)


def test_transient_error_leaves_the_scan_pending_for_a_retry(user_id, broker_dir):
    from pipeline.process import run_scan

    scan_id = _register(user_id, photo(4))
    recognizer = FlakyRecognizer(failures=1)
    with pytest.raises(TransientError):
        run_scan(scan_id, recognizer=recognizer)
    scan, _, [job] = _state(scan_id)
    assert scan.status == "pending"
    assert job.status == "retrying" and job.error_type == "TransientError"
    assert run_scan(scan_id, recognizer=recognizer)["status"] == "completed"
    scan, cards, [job] = _state(scan_id)
    assert scan.attempts == 2 and job.status == "succeeded" and job.attempts == 2 and cards


def test_scan_held_by_another_worker_is_left_alone(user_id, broker_dir):
    from db import scans
    from db.pool import connect
    from pipeline.process import run_scan

    scan_id = _register(user_id, photo(5))
    with connect(autocommit=True) as other:
        assert scans.try_lock_scan(other, scan_id=scan_id)
        assert run_scan(scan_id, recognizer=FakeRecognizer())["status"] == "busy"
    scan, _, _ = _state(scan_id)
    assert scan.status == "pending" and scan.attempts == 0


def test_missing_original_fails_the_scan(user_id, broker_dir):
    from pipeline.process import run_scan
    from pipeline.storage import open_storage

    scan_id = _register(user_id, photo(6))
    scan, _, _ = _state(scan_id)
    open_storage().delete(scan.image_url)
    assert run_scan(scan_id, recognizer=FakeRecognizer())["status"] == "failed"
    assert _state(scan_id)[0].error_code == "not_found"


def test_a_photo_whose_runs_never_finish_is_failed_not_requeued_for_ever(
    user_id,
    broker_dir,
    monkeypatch,
):
    from db.pool import connection
    from pipeline.process import run_scan
    from pipeline.settings import settings

    monkeypatch.setattr(settings, "max_scan_attempts", 3)
    scan_id = _register(user_id, photo(7))
    with connection() as conn, conn.transaction():  # three runs whose worker died mid-scan
        conn.execute(
            "UPDATE scans SET status = 'processing', attempts = 3 WHERE id = %(id)s",
            {"id": scan_id},
        )
    recognizer = FakeRecognizer()
    recognizer.recognize = None  # the photo must not be tried a fourth time
    assert run_scan(scan_id, recognizer=recognizer)["code"] == "too_many_attempts"
    scan, cards, [job] = _state(scan_id)
    assert scan.status == "failed" and scan.attempts == 4 and cards == []
    assert "3 runs that did not finish" in scan.error_message and job.status == "failed"


def test_a_time_limit_inside_recognition_fails_the_scan_with_a_reason(user_id, broker_dir):
    from celery.exceptions import SoftTimeLimitExceeded

    from pipeline.process import run_scan

    class Stuck(FakeRecognizer):
        def recognize(self, data):
            raise SoftTimeLimitExceeded()  # what Celery raises into a task past its soft limit

    scan_id = _register(user_id, photo(8))
    assert run_scan(scan_id, recognizer=Stuck())["code"] == "timed_out"
    scan, _, [job] = _state(scan_id)
    assert scan.status == "failed" and "longer than" in scan.error_message
    assert job.status == "failed" and job.error_type == "SoftTimeLimitExceeded"


def test_retry_delay_grows_with_jitter():
    from pipeline.tasks import retry_delay

    delays = [retry_delay(3) for _ in range(200)]
    assert all(0 <= d <= 8 for d in delays) and len(set(delays)) > 100
    assert max(retry_delay(30) for _ in range(50)) <= 60
