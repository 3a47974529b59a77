"""Fault-test fixtures: a private PostgreSQL, Redis and (optionally) S3 server per test, each
shared by this process and a real worker, so a test can restart one without touching others.

Every server is stopped in the fixture's teardown, whether the test passed or not."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.seaweed import SeaweedS3
from tests.services import PrivatePostgres, PrivateRedis
from tests.worker import WorkerProcess

# Tight clocks so a lost message is found within seconds, not the production ten minutes.
WORKER_ENV = {
    "CARDSCAN_RECOGNIZER": "fake",
    "CARDSCAN_REAPER_INTERVAL_S": "1",
    "CARDSCAN_PROCESSING_TIMEOUT_S": "10",
    # A little model time per photo keeps a backlog in the queue when the server restarts.
    "CARDSCAN_FAKE_RECOGNIZER_DELAY_S": "0.03",
}


@pytest.fixture
def postgres(monkeypatch: pytest.MonkeyPatch) -> Iterator[PrivatePostgres]:
    """A private, migrated PostgreSQL that this process and the worker use."""
    import psycopg

    from db import pool
    from db.migrate import upgrade
    from db.settings import settings

    server = PrivatePostgres()
    try:
        server.start()
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE cardscan")
        url = server.url("cardscan")
        upgrade(url)
        pool.close_pool()  # the session pool points at another database
        monkeypatch.setattr(settings, "database_url", url)
        monkeypatch.setenv("CARDSCAN_DATABASE_URL", url)
        yield server
    finally:
        pool.close_pool()
        server.destroy()


@pytest.fixture
def redis_broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PrivateRedis]:
    """A private Redis without persistence as the Celery broker."""
    from pipeline.settings import settings

    server = PrivateRedis(tmp_path / "redis")
    try:
        server.start()
        monkeypatch.setattr(settings, "broker_url", server.url)
        monkeypatch.setattr(settings, "broker_key_prefix", "")
        monkeypatch.setenv("CARDSCAN_BROKER_URL", server.url)
        monkeypatch.delenv("CARDSCAN_BROKER_KEY_PREFIX", raising=False)
        yield server
    finally:
        server.stop()


@pytest.fixture
def local_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from pipeline.settings import settings

    url = f"file://{tmp_path / 'objects'}"
    monkeypatch.setattr(settings, "storage_url", url)
    monkeypatch.setenv("CARDSCAN_STORAGE_URL", url)
    return tmp_path / "objects"


@pytest.fixture
def s3_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SeaweedS3]:
    """A private SeaweedFS S3 server holding the originals and crops."""
    from pipeline.settings import settings
    from pipeline.storage import open_storage

    server = SeaweedS3(tmp_path / "seaweed")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", server.secret_key)
    try:
        server.start()
        monkeypatch.setattr(settings, "storage_url", "s3://cardscan-faults/scans")
        monkeypatch.setattr(settings, "s3_endpoint_url", server.endpoint)
        monkeypatch.setenv("CARDSCAN_STORAGE_URL", settings.storage_url)
        monkeypatch.setenv("CARDSCAN_S3_ENDPOINT_URL", server.endpoint)
        open_storage().ensure_bucket()
        yield server
    finally:
        server.stop()


@pytest.fixture
def user_id(postgres: PrivatePostgres) -> Any:
    from db import users
    from db.pool import connection

    with connection() as conn, conn.transaction():
        return users.create_user(conn, username="faults").id


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """start_worker(**env) -> a ready `cardscan worker` on the servers configured above."""
    workers: list[WorkerProcess] = []

    def start(**extra: str) -> WorkerProcess:
        env = {**WORKER_ENV, "CARDSCAN_VAR_DIR": str(tmp_path / "var"), **extra}
        worker = WorkerProcess(env, tmp_path / f"worker{len(workers)}.log")
        workers.append(worker)
        return worker.start()

    try:
        yield start
    finally:
        for worker in workers:
            worker.stop()


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    """200 distinct small photos."""
    from tests.photos import photo

    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(200):
        (folder / f"{i:03d}.jpg").write_bytes(photo(1000 + i, size=(96, 64)))
    return folder
