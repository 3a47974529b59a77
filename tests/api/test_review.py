"""The review API: roles, leasing, decisions with their audit and training rows; card search."""

from __future__ import annotations

import pytest

from db.pool import connection
from tests.scan_rows import make_scan


@pytest.fixture
def queue(client, make_user, catalog):
    """An owner with a scan of three cards waiting for review, and an annotator."""
    from db.users import user_for_token

    owner = make_user("owner")
    with connection() as conn, conn.transaction():
        user = user_for_token(conn, token=owner["Authorization"].split()[1])
        cands = [{"card_key": "dsk-1", "score": 0.6}, {"card_key": "dsk-10", "score": 0.55}]
        _, ids = make_scan(
            conn,
            user_id=user.id,
            cards=[
                {"card_key": "dsk-1", "confidence": c, "candidates": cands, "evidence": ev}
                for c, ev in (
                    (0.6, None),
                    (0.4, {"gates": ["number_unread", "misaligned"]}),
                    (0.5, {}),
                )
            ],
        )
    return {"owner": owner, "annotator": make_user("ann", "annotator"), "ids": ids}


def test_the_queue_needs_the_annotator_role(client, queue):
    assert client.get("/v1/review/next").status_code == 401
    r = client.get("/v1/review/next", headers=queue["owner"])
    assert r.status_code == 403 and r.json()["code"] == "forbidden"


def test_next_hands_out_the_least_sure_card_with_its_candidates(client, queue):
    r = client.get("/v1/review/next", headers=queue["annotator"])
    assert r.status_code == 200, r.text
    card = r.json()
    assert card["id"] == str(queue["ids"][1]) and card["confidence"] == 0.4
    assert card["queue_remaining"] == 3
    assert card["gates"] == ["number_unread", "misaligned"]  # why the scanner held it back
    assert [(c["card_key"], c["name"], c["number"]) for c in card["candidates"]] == [
        ("dsk-1", "Acrobatic Cheerleader", "1"),
        ("dsk-10", "Fear of Immobility", "10"),
    ]
    image = client.get(card["candidates"][0]["image_url"])
    assert image.status_code == 200 and image.content[:2] == b"\xff\xd8"


def test_correction_through_the_api(client, queue):
    ann = queue["annotator"]
    card = client.get("/v1/review/next", headers=ann).json()
    r = client.post(
        f"/v1/scan-cards/{card['id']}/confirm",
        headers=ann,
        json={"card_key": "sv3pt5-1", "condition": "NM", "quantity": 2},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["review_status"], r.json()["training_kind"]) == ("corrected", "correction")
    again = client.post(f"/v1/scan-cards/{card['id']}/confirm", headers=ann, json={})
    assert again.status_code == 409 and again.json()["code"] == "conflict"
    bad = client.post(
        f"/v1/scan-cards/{queue['ids'][2]}/confirm", headers=ann, json={"card_key": "no-such-card"}
    )
    assert bad.status_code == 404
    items = client.get("/v1/inventory", headers=queue["owner"]).json()["items"]
    assert [(i["card_key"], i["quantity"]) for i in items] == [("sv3pt5-1", 2)]


def test_reject_and_skip(client, queue):
    ann = queue["annotator"]
    first = client.get("/v1/review/next", headers=ann).json()
    assert client.post(f"/v1/scan-cards/{first['id']}/skip", headers=ann).status_code == 204
    second = client.get("/v1/review/next", headers=ann).json()
    assert second["id"] != first["id"]
    r = client.post(f"/v1/scan-cards/{second['id']}/reject", headers=ann)
    assert r.status_code == 200 and r.json()["review_status"] == "rejected"
    with connection() as conn:
        actions = [
            r["action"] for r in conn.execute("SELECT action FROM audit_log ORDER BY id").fetchall()
        ]
    assert actions == ["scan_card.skip", "scan_card.reject"]


def test_crop_is_for_the_owner_and_annotators_only(client, queue, make_user, object_dir):
    from pipeline.storage import open_storage

    key = open_storage().put(b"\xff\xd8crop", prefix="crops", content_type="image/jpeg")
    with connection() as conn, conn.transaction():
        conn.execute("UPDATE scan_cards SET crop_image_url = %(k)s", {"k": key})
    url = f"/v1/scan-cards/{queue['ids'][0]}/crop"
    assert client.get(url, headers=queue["owner"]).content == b"\xff\xd8crop"
    assert client.get(url, headers=queue["annotator"]).status_code == 200
    assert client.get(url, headers=make_user("mallory")).status_code == 404


@pytest.mark.parametrize(
    ("q", "first"),
    [
        ("bulbasaur", "sv3pt5-1"),
        ("acrobatic cheerleader", "dsk-1"),
        ("acrobatc cheerleadr", "dsk-1"),  # typos
        ("Fear of Immobility DSK 10", "dsk-10"),
    ],
)
def test_card_search_is_fuzzy_over_name_set_and_number(client, queue, q, first):
    r = client.get("/v1/cards", params={"q": q}, headers=queue["annotator"])
    assert r.status_code == 200, r.text
    assert r.json()["items"][0]["card_key"] == first


def test_card_search_works_without_pg_trgm(client, queue, monkeypatch):
    from db import card_search

    monkeypatch.setattr(card_search, "_trigram_scores", lambda conn, q: {})
    r = client.get("/v1/cards", params={"q": "charmander 4"}, headers=queue["annotator"])
    assert r.json()["items"][0]["card_key"] == "sv3pt5-4"


def test_review_page_is_served(client):
    page = client.get("/review")
    assert page.status_code == 200 and 'id="candidates"' in page.text
    assert client.get("/review/review.js").status_code == 200
