"""End to end in headless Chromium: a photo's card lands in review, the annotator page corrects
it with the keyboard, and inventory, audit_log and training_examples hold the right rows.

Debian's chromium (`apt-get install -y chromium`) driven by Playwright; never a downloaded
browser. The API runs under uvicorn in a thread on a free loopback port.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from db.pool import connection
from tests.conftest import PHOTOS_DIR

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHOTOS = [PHOTOS_DIR / "images" / "brettvitaz" / name for name in ("IMG_1619.jpg", "IMG_1620.jpg")]


class UnsureRecognizer:
    """The deterministic fake recogniser, made unsure: its card goes to the review queue, held
    back, as the matcher says in its evidence, for a collector number it could not read."""

    def __init__(self, confidence: float) -> None:
        from pipeline.fake_recognizer import FakeRecognizer

        self.inner = FakeRecognizer(delay_s=0)
        self.confidence = confidence
        self.versions = self.inner.versions

    def recognize(self, data: bytes):  # noqa: ANN201
        result = self.inner.recognize(data)
        result.cards = [
            dataclasses.replace(
                c,
                decision="needs_review",
                confidence=self.confidence,
                evidence={**c.evidence, "gates": ["number_unread"]},
            )
            for c in result.cards
        ]
        return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_api(clean_db, object_dir, catalog, broker_dir) -> Iterator[str]:
    import uvicorn

    from api.main import create_app

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _tokens() -> tuple[str, str, object, object]:
    from db import users

    with connection() as conn, conn.transaction():
        owner = users.create_user(conn, username="collector")
        annotator = users.create_user(conn, username="annie", role=users.Role.ANNOTATOR)
        return (
            users.issue_token(conn, user_id=owner.id),
            users.issue_token(conn, user_id=annotator.id),
            owner.id,
            annotator.id,
        )


def test_annotator_corrects_a_card_with_the_keyboard(live_api, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from pipeline.process import run_scan

    owner_token, annotator_token, owner_id, annotator_id = _tokens()
    cards = []
    # The first photo's card is the least sure: the page shows it first, and it gets rejected.
    for photo, confidence in zip(PHOTOS, (0.45, 0.55), strict=True):
        with photo.open("rb") as fh:
            r = httpx.post(
                f"{live_api}/v1/scans",
                files={"file": (photo.name, fh, "image/jpeg")},
                headers={"Authorization": f"Bearer {owner_token}"},
                timeout=30,
            )
        assert r.status_code == 202, r.text
        scan_id = r.json()["scan_id"]
        run_scan(scan_id, recognizer=UnsureRecognizer(confidence))  # what the worker does
        with connection() as conn:
            cards += conn.execute(
                "SELECT sc.id, sc.decision, sc.crop_image_url, c.card_key FROM scan_cards sc "
                "JOIN cards c ON c.id = sc.card_id WHERE sc.scan_id = %(s)s",
                {"s": scan_id},
            ).fetchall()
    assert [c["decision"] for c in cards] == ["needs_review", "needs_review"]
    rejected, card = cards

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(f"{live_api}/review")
        page.fill("#token-input", annotator_token)
        page.keyboard.press("Enter")
        expect(page.locator(".candidate")).to_have_count(2, timeout=15_000)
        expect(page.locator(".candidate.selected")).to_have_attribute(
            "data-key", rejected["card_key"]
        )
        expect(page.locator("#queue-count")).to_have_text("2")
        expect(page.locator("#gates li")).to_have_text(
            ["collector number not read: check it on the card"]
        )
        page.keyboard.press("r")  # not a card: reject it
        expect(page.locator("#done-count")).to_have_text("1", timeout=10_000)
        expect(page.locator("#queue-count")).to_have_text("1", timeout=10_000)
        # The crop comes through the API with the token (a blob URL); catalog images load too.
        page.wait_for_function(
            "[...document.querySelectorAll('.candidate img')].every(i => i.complete "
            "&& i.naturalWidth > 0) && document.getElementById('crop').naturalWidth > 0",
            timeout=15_000,
        )
        expect(page.locator(".candidate.selected")).to_have_attribute("data-key", card["card_key"])
        page.keyboard.press("2")  # the runner-up…
        expect(page.locator(".candidate.selected")).not_to_have_attribute(
            "data-key", card["card_key"]
        )
        page.keyboard.press("/")  # …but it is neither: search the catalog
        page.keyboard.type("bulbasaur")
        expect(page.locator(".result").first).to_have_attribute(
            "data-key", "sv3pt5-1", timeout=10_000
        )
        shot = tmp_path / "review.png"
        page.screenshot(path=str(shot))
        if os.environ.get("CARDSCAN_SCREENSHOT"):
            shutil.copy(shot, os.environ["CARDSCAN_SCREENSHOT"])
        page.keyboard.press("Enter")  # pick the highlighted result
        expect(page.locator("#chosen")).to_contain_text("Bulbasaur")
        page.keyboard.press("Enter")  # confirm
        expect(page.locator("#done-count")).to_have_text("2", timeout=10_000)
        expect(page.locator("#empty")).to_be_visible(timeout=10_000)
        browser.close()

    with connection() as conn:
        sc = conn.execute(
            "SELECT sc.review_status, sc.reviewed_by, sc.saved_to_inventory, c.card_key "
            "FROM scan_cards sc JOIN cards c ON c.id = sc.confirmed_card_id "
            "WHERE sc.id = %(id)s",
            {"id": card["id"]},
        ).fetchone()
        entries = conn.execute(
            "SELECT ie.user_id, c.card_key, ie.quantity, ie.condition, ie.scan_card_id "
            "FROM inventory_entries ie JOIN cards c ON c.id = ie.card_id"
        ).fetchall()
        audit = conn.execute(
            "SELECT actor_user_id, action, entity_id, before, after FROM audit_log "
            "WHERE entity_type = 'scan_card' ORDER BY id"
        ).fetchall()
        examples = conn.execute(
            "SELECT t.kind, t.crop_key, t.annotator_id, c.card_key, p.card_key AS predicted "
            "FROM training_examples t LEFT JOIN cards c ON c.id = t.card_id "
            "JOIN cards p ON p.id = t.predicted_card_id ORDER BY t.created_at"
        ).fetchall()
    assert sc == {
        "review_status": "corrected",
        "reviewed_by": annotator_id,
        "saved_to_inventory": True,
        "card_key": "sv3pt5-1",
    }
    assert entries == [
        {
            "user_id": owner_id,
            "card_key": "sv3pt5-1",
            "quantity": 1,
            "condition": "near_mint",
            "scan_card_id": card["id"],
        }
    ]
    assert [(a["actor_user_id"], a["action"], a["entity_id"]) for a in audit] == [
        (annotator_id, "scan_card.reject", str(rejected["id"])),
        (annotator_id, "scan_card.correct", str(card["id"])),
    ]
    log = audit[1]
    assert (log["before"]["card_key"], log["after"]["card_key"]) == (card["card_key"], "sv3pt5-1")
    assert examples == [
        {
            "kind": "rejection",
            "crop_key": rejected["crop_image_url"],
            "annotator_id": annotator_id,
            "card_key": None,
            "predicted": rejected["card_key"],
        },
        {
            "kind": "correction",
            "crop_key": card["crop_image_url"],
            "annotator_id": annotator_id,
            "card_key": "sv3pt5-1",
            "predicted": card["card_key"],
        },
    ]
