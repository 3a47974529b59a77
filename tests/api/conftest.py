"""API fixtures: an app on the session database with a private filesystem broker, users."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient


@pytest.fixture
def broker_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private filesystem broker for this test (messages are published, nobody consumes)."""
    from pipeline.settings import settings

    monkeypatch.setattr(settings, "broker_url", None)
    monkeypatch.setattr(settings, "var_dir", tmp_path / "var")
    return tmp_path / "var" / "broker"


@pytest.fixture
def client(clean_db: str, object_dir: Path, broker_dir: Path) -> Iterator[TestClient]:
    from api.main import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def make_user(clean_db: str) -> Callable[..., dict[str, str]]:
    """make_user(name, role) -> Authorization header of a new user."""
    from db import users
    from db.pool import connection

    def make(name: str = "alice", role: str = "user") -> dict[str, str]:
        with connection() as conn, conn.transaction():
            user = users.create_user(conn, username=name, role=users.Role(role))
            token = users.issue_token(conn, user_id=user.id)
        return {"Authorization": f"Bearer {token}"}

    return make
