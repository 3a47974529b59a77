"""The hostile corpus through the upload route and the scan stage (issue 8): every file ends as a
clear 4xx at upload or a scan that completes or fails with a reason; never a 500 or a crash.
The same corpus through `cardscan ingest` ends with every file registered or skipped by reason."""

from __future__ import annotations

import pytest

from pipeline.fake_recognizer import FakeRecognizer
from tests.hostile import OK, REJECT, corpus

CORPUS = corpus()


@pytest.fixture
def alice(make_user):
    return make_user("hostile")


def test_every_hostile_file_gets_a_4xx_or_a_finished_scan(client, alice):
    from pipeline.process import run_scan

    for name, data, expect in CORPUS:
        resp = client.post("/v1/scans", files={"file": (name, data, "image/jpeg")}, headers=alice)
        assert resp.status_code < 500, (name, resp.text)
        if resp.status_code >= 400:
            body = resp.json()
            assert body["code"] and body["detail"] and "Traceback" not in resp.text, name
            assert expect != OK, f"{name} was refused: {body}"
            continue
        assert expect != REJECT, f"{name} was accepted"
        scan_id = resp.json()["scan_id"]
        outcome = run_scan(scan_id, recognizer=FakeRecognizer(delay_s=0))
        shown = client.get(f"/v1/scans/{scan_id}", headers=alice).json()
        assert shown["status"] == outcome["status"] in {"completed", "failed"}, name
        if shown["status"] == "failed":
            assert shown["error"] and shown["error_code"], name
            assert expect != OK, f"{name} failed: {shown['error']}"


def test_ingest_registers_or_skips_every_hostile_file(clean_db, object_dir, broker_dir, tmp_path):
    from db import users
    from db.pool import connection
    from pipeline.ingest import register_folder

    for name, data, _ in CORPUS:
        (tmp_path / name).write_bytes(data)
    with connection() as conn, conn.transaction():
        owner = users.create_user(conn, username="hostile-ingest")
    summary = register_folder(tmp_path, user_id=owner.id)
    assert summary.photos + summary.skipped == len(CORPUS)
    assert not summary.unregistered
    skipped = dict(summary.skipped_files)
    for name, _, expect in CORPUS:
        if expect == REJECT:
            assert name in skipped and ":" in skipped[name], name
        if expect == OK:
            assert name in summary.scan_ids, name
