"""Shared fixtures: a real PostgreSQL database, a real S3 server, local storage, the catalog.

The database is a fresh one on the machine's PostgreSQL (127.0.0.1:5432) when it answers, or the
project's embedded server otherwise; it is migrated once per test session and dropped at the end.
Subprocesses (workers, CLI) inherit it through CARDSCAN_DATABASE_URL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
CATALOG_DIR = SHARED_DATA / "catalog"
PHOTOS_DIR = SHARED_DATA / "photos"
SERVER_URL = os.environ.get(
    "CARDSCAN_TEST_SERVER_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)

# Tables emptied between tests that ask for `clean_db`; the catalog stays.
USER_TABLES = (
    "audit_log",
    "training_examples",
    "model_metrics",
    "jobs",
    "portfolio_snapshots",
    "card_valuations",
    "card_prices",
    "price_sources",
    "inventory_entries",
    "scan_cards",
    "scans",
    "uploads",
    "admin_users",
    "api_tokens",
    "users",
)


def _server_reachable(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


@pytest.fixture(scope="session")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, empty database for this test session."""
    from db import pool, server
    from db.migrate import upgrade
    from db.settings import settings

    embedded = None
    if _server_reachable(SERVER_URL):
        admin_url = SERVER_URL
    else:
        import pgserver

        embedded = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="delete")
        admin_url = embedded.get_uri()
    name = f"cardscan_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = urlparse(admin_url)._replace(path=f"/{name}").geturl()
    old_url, old_env = settings.database_url, os.environ.get("CARDSCAN_DATABASE_URL")
    settings.database_url = url
    os.environ["CARDSCAN_DATABASE_URL"] = url
    upgrade(url)
    yield url
    pool.close_pool()
    settings.database_url = old_url
    if old_env is None:
        os.environ.pop("CARDSCAN_DATABASE_URL", None)
    else:
        os.environ["CARDSCAN_DATABASE_URL"] = old_env
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if embedded is not None:
        embedded.cleanup()
    server.stop_embedded()


@pytest.fixture(scope="session")
def object_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Local object storage for the session, also handed to subprocesses."""
    from pipeline.settings import settings

    path = tmp_path_factory.mktemp("objects")
    old_url, old_env = settings.storage_url, os.environ.get("CARDSCAN_STORAGE_URL")
    settings.storage_url = f"file://{path}"
    os.environ["CARDSCAN_STORAGE_URL"] = settings.storage_url
    yield path
    settings.storage_url = old_url
    if old_env is None:
        os.environ.pop("CARDSCAN_STORAGE_URL", None)
    else:
        os.environ["CARDSCAN_STORAGE_URL"] = old_env


@pytest.fixture(scope="session")
def catalog(db_url: str, object_dir: Path) -> str:
    """The real catalog (2,399 printings) imported once per session; returns its folder."""
    from pipeline.catalog import import_catalog

    report = import_catalog(CATALOG_DIR)
    assert not report.bad, report.bad[:3]
    return str(CATALOG_DIR)


@pytest.fixture
def clean_db(db_url: str) -> Iterator[str]:
    """The session database with every user-made row removed before the test."""
    from db.pool import connection

    with connection() as conn, conn.transaction():
        conn.execute(f"TRUNCATE {', '.join(USER_TABLES)} CASCADE")
    yield db_url


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real S3 server (SeaweedFS) on loopback; yields its endpoint URL."""
    from tests.seaweed import SeaweedS3

    server = SeaweedS3(tmp_path_factory.mktemp("seaweed"))
    # boto3 in this process and in workers signs with the server's credentials.
    os.environ["AWS_ACCESS_KEY_ID"] = server.access_key
    os.environ["AWS_SECRET_ACCESS_KEY"] = server.secret_key
    server.start()
    yield server.endpoint
    server.stop()
