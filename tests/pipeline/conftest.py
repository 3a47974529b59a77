"""Pipeline fixtures: a user, a private broker, and helpers to watch a scan."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import broker_dir  # noqa: F401 - the same private broker per test


@pytest.fixture
def user_id(clean_db: str, object_dir: Path) -> Any:
    from db import users
    from db.pool import connection

    with connection() as conn, conn.transaction():
        return users.create_user(conn, username="worker-test").id


def wait_for_scan(scan_id: Any, statuses=("completed", "failed"), timeout: float = 60.0):
    """Poll the database until the scan reaches one of `statuses`; returns the ScanRow."""
    from db import scans
    from db.pool import connection

    deadline = time.monotonic() + timeout
    while True:
        with connection() as conn, conn.transaction():
            scan = scans.get_scan(conn, scan_id=scan_id)
        if scan.status in statuses or time.monotonic() > deadline:
            return scan
        time.sleep(0.1)


from tests.api.conftest import client, make_user  # noqa: E402, F401 - uploads go through the API
