"""`cardscan ingest` end to end: a real CLI process, a real worker, the HTML report in Chromium,
and an interrupted ingest that is simply run again."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.photos import photo, text_as_jpg
from tests.worker import ROOT


@pytest.fixture
def ingest_env(clean_db, object_dir, tmp_path) -> dict[str, str]:
    env = {**os.environ, "CARDSCAN_VAR_DIR": str(tmp_path / "var"), "CARDSCAN_RECOGNIZER": "fake"}
    env.pop("CARDSCAN_BROKER_URL", None)  # the embedded filesystem broker
    return env


def _ingest(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scripts.cli", "ingest", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _folder(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "a.jpg").write_bytes(photo(1))
    (root / "b.png").write_bytes(photo(2, fmt="PNG"))
    (root / "sub" / "c.webp").write_bytes(photo(3, fmt="WEBP"))
    (root / "sub" / "a-copy.jpg").write_bytes(photo(1))  # same bytes as a.jpg
    (root / "readme.txt").write_text("not a photo")
    (root / "fake.jpg").write_bytes(text_as_jpg())
    return root


def _summary(result: subprocess.CompletedProcess) -> dict[str, int]:
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_ingest_waits_reports_and_a_second_run_adds_nothing(ingest_env, tmp_path):
    folder = _folder(tmp_path / "photos")
    report = tmp_path / "report.html"
    first = _summary(
        _ingest(
            ingest_env,
            str(folder),
            "--wait",
            "--json",
            "--report",
            str(report),
            "--location",
            "Binder 3",
        )
    )
    # a.jpg and sub/a-copy.jpg hold the same bytes: one scan, counted once below "photos"
    assert first == {
        "photos": 4,
        "new": 3,
        "duplicates": 1,
        "skipped": 2,
        "completed": 3,
        "failed": 0,
        "cards": 3,
        "auto_accepted": first["auto_accepted"],
        "needs_review": first["needs_review"],
    }
    assert first["auto_accepted"] + first["needs_review"] <= first["cards"]
    again = _summary(_ingest(ingest_env, str(folder), "--json"))
    assert again["new"] == 0 and again["duplicates"] == 4 and again["completed"] == 3

    from db.pool import connection

    with connection() as conn:
        rows = conn.execute("SELECT trigger, location FROM scans").fetchall()
    assert len(rows) == 3
    assert {(r["trigger"], r["location"]) for r in rows} == {("ingest", "Binder 3")}
    _check_report_in_chromium(
        report, expected_photos={"a.jpg", "b.png", "sub/c.webp", "sub/a-copy.jpg"}
    )


def _check_report_in_chromium(report: Path, expected_photos: set[str]) -> None:
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is installed by `make test` (make browser)"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page()
        page.goto(report.as_uri())
        titles = set(page.locator("section h2").all_inner_texts())
        loaded = page.evaluate(
            "[...document.querySelectorAll('img.photo')].map(i => i.complete && i.naturalWidth)"
        )
        browser.close()
    assert expected_photos <= titles
    assert len(loaded) == len(expected_photos) and all(loaded)


def test_interrupted_ingest_finishes_on_the_next_run_without_duplicates(ingest_env, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    total = 400  # enough that the interrupt lands mid-ingest on a busy machine too
    for i in range(total):
        (folder / f"{i:03d}.jpg").write_bytes(photo(100 + i, size=(640, 480)))
    from db.pool import connection

    def registered() -> int:
        with connection() as conn:
            return conn.execute("SELECT count(*) AS n FROM scans").fetchone()["n"]

    # Open the pool before the ingest starts, so that the first poll does not wait for it.
    assert registered() == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "scripts.cli", "ingest", str(folder), "--json"],
        cwd=ROOT,
        env=ingest_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A child inherits an ignored SIGINT, and Python then raises no KeyboardInterrupt.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while registered() < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    before = registered()
    assert 0 < before < total, "the interrupt should land mid-ingest"

    again = _summary(_ingest(ingest_env, str(folder), "--json"))
    assert again["photos"] == total
    assert again["duplicates"] >= before - 1  # at most the photo in flight was not committed
    assert again["new"] + again["duplicates"] == total
    with connection() as conn:
        counts = conn.execute(
            "SELECT count(*) AS scans, count(DISTINCT upload_id) AS uploads FROM scans"
        ).fetchone()
    assert counts == {"scans": total, "uploads": total}
