"""A real worker process (`cardscan worker`), once on Redis and once on the filesystem
transport: uploads through the API end as completed or failed scans, exactly once."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests.photos import (
    bomb_png,
    corrupt_jpeg,
    dsk_photo,
    photo,
    text_as_jpg,
    truncated_png,
)
from tests.pipeline.conftest import wait_for_scan
from tests.worker import WorkerProcess

REDIS_URL = os.environ.get("CARDSCAN_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_up() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(params=["filesystem", "redis"])
def broker_env(request, broker_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point this process and the worker's environment at the same broker."""
    from pipeline.settings import settings

    env = {
        "CARDSCAN_VAR_DIR": str(settings.var_dir),
        "CARDSCAN_RECOGNIZER": "fake",
        "CARDSCAN_REAPER_INTERVAL_S": "1",
    }
    if request.param == "redis":
        if not _redis_up():
            pytest.skip(f"no Redis at {REDIS_URL}")
        prefix = f"cardscan-test-{uuid.uuid4().hex[:8]}:"
        monkeypatch.setattr(settings, "broker_url", REDIS_URL)
        monkeypatch.setattr(settings, "broker_key_prefix", prefix)
        env |= {"CARDSCAN_BROKER_URL": REDIS_URL, "CARDSCAN_BROKER_KEY_PREFIX": prefix}
    else:
        monkeypatch.delenv("CARDSCAN_BROKER_URL", raising=False)
    return env


@pytest.fixture
def start_worker(broker_env, tmp_path):
    workers: list[WorkerProcess] = []

    def start(**extra: str) -> WorkerProcess:
        worker = WorkerProcess({**broker_env, **extra}, tmp_path / f"worker{len(workers)}.log")
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        worker.stop()


def _upload(client, headers, data: bytes, name: str = "photo.jpg"):
    return client.post(
        "/v1/scans", files={"file": (name, data, "application/octet-stream")}, headers=headers
    )


def test_photos_complete_hostile_files_fail_clearly_and_the_worker_goes_on(
    client,
    make_user,
    start_worker,
    monkeypatch,
):
    from pipeline.settings import settings

    worker = start_worker()
    alice = make_user()
    dsk = _upload(client, alice, dsk_photo(), "IMG_5981.jpg")
    assert dsk.status_code == 202, dsk.text
    scan = wait_for_scan(dsk.json()["scan_id"])
    assert scan.status == "completed", (scan, worker.log()[-2000:])
    body = client.get(dsk.json()["status_url"], headers=alice).json()
    [card] = body["cards"]
    assert card["set_code"] == "DSK" and card["candidates"][0]["name"] == card["name"]
    assert body["model_versions"]["detector"] == "fake-detector-1"
    crop = client.get(card["crop_url"], headers=alice)
    assert crop.status_code == 200 and crop.headers["content-type"] == "image/jpeg"

    rejected = {
        "empty.jpg": (b"", 422),
        "notes.jpg": (text_as_jpg(), 415),
        "bomb.png": (bomb_png(), 413),
    }
    for name, (data, status) in rejected.items():
        assert _upload(client, alice, data, name).status_code == status, name
    with monkeypatch.context() as patch:
        patch.setattr(settings, "max_upload_bytes", 40_000)
        assert _upload(client, alice, photo(1, size=(640, 480), fmt="PNG")).status_code == 413
    failing = [
        _upload(client, alice, data, name).json()["scan_id"]
        for name, data in (("c.jpg", corrupt_jpeg()), ("t.png", truncated_png()))
    ]
    good = _upload(client, alice, photo(2)).json()["scan_id"]
    for scan_id in failing:
        scan = wait_for_scan(scan_id)
        assert scan.status == "failed" and scan.error_code == "undecodable_image"
        shown = client.get(f"/v1/scans/{scan_id}", headers=alice).json()
        assert "truncated" in shown["error"]
    assert wait_for_scan(good).status == "completed"
    assert worker.proc.poll() is None


def test_sigkill_mid_scan_then_a_new_worker_completes_it_exactly_once(
    client,
    make_user,
    start_worker,
):
    from db import jobs, scans
    from db.pool import connection

    slow = start_worker(CARDSCAN_FAKE_RECOGNIZER_DELAY_S="30")
    alice = make_user()
    scan_id = _upload(client, alice, photo(3)).json()["scan_id"]
    assert wait_for_scan(scan_id, statuses=("processing",), timeout=30).status == "processing"
    slow.kill()
    assert wait_for_scan(scan_id, timeout=0).status == "processing"
    start_worker()
    scan = wait_for_scan(scan_id, timeout=60)
    assert scan.status == "completed"
    with connection() as conn:
        cards = scans.list_scan_cards(conn, scan_id=scan_id)
        runs = jobs.list_jobs(conn, scan_id=scan_id)
    assert len(cards) == 1
    assert [j.status for j in runs].count("succeeded") == 1
    assert scan.attempts == 2  # the killed run and the one that finished


def test_a_scan_past_its_time_limit_fails_and_the_worker_goes_on(client, make_user, start_worker):
    worker = start_worker(CARDSCAN_FAKE_RECOGNIZER_DELAY_S="60", CARDSCAN_SCAN_TIME_LIMIT_S="1")
    alice = make_user()
    scan_ids = [_upload(client, alice, photo(i)).json()["scan_id"] for i in (11, 12)]
    for scan_id in scan_ids:
        scan = wait_for_scan(scan_id, timeout=30)
        assert scan.status == "failed" and scan.error_code == "timed_out", worker.log()[-2000:]
        shown = client.get(f"/v1/scans/{scan_id}", headers=alice).json()
        assert "longer than 1 s" in shown["error"]
    assert worker.proc.poll() is None


def _real_models_missing() -> str | None:
    """Why the real Recognizer cannot run here, or None when it can."""
    import importlib.util
    import subprocess
    import sys

    from tests.worker import ROOT

    if importlib.util.find_spec("pipeline.recognize") is None:
        return "pipeline/recognize.py is not written yet"
    probe = subprocess.run(
        [sys.executable, "-c", "from pipeline.recognize import Recognizer; Recognizer().load()"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return f"models do not load: {probe.stderr[-300:]}" if probe.returncode else None


@pytest.mark.slow
def test_dsk_photo_with_the_real_recognizer(client, make_user, start_worker, broker_env):
    assert not (reason := _real_models_missing()), reason
    start_worker(CARDSCAN_RECOGNIZER="onnx")
    alice = make_user()
    response = _upload(client, alice, dsk_photo(), "IMG_5981.jpg")
    scan = wait_for_scan(response.json()["scan_id"], timeout=300)
    assert scan.status == "completed", scan.error_message
    body = client.get(response.json()["status_url"], headers=alice).json()
    assert body["cards"], "a Duskmourn photo shows at least one card"
    assert {"detector", "embedder", "index"} <= {k for k, v in body["model_versions"].items() if v}
    for card in body["cards"]:
        assert len(card["quad"]) == 4
        assert card["decision"] in {"auto_accepted", "needs_review", "no_match"}
