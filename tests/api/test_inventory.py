"""POST /v1/scans/{id}/confirm, GET/PATCH/DELETE /v1/inventory, GET /v1/inventory/value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from db.pool import connection
from tests.scan_rows import make_scan


def _user_id(headers):
    from db.users import user_for_token

    with connection() as conn:
        return user_for_token(conn, token=headers["Authorization"].split()[1]).id


def _scan(headers, cards):
    with connection() as conn, conn.transaction():
        return make_scan(conn, user_id=_user_id(headers), cards=cards)


@pytest.fixture
def alice(client, make_user, catalog):
    return make_user("alice")


MIXED = [
    {"card_key": "dsk-1", "decision": "auto_accepted", "confidence": 0.97},
    {"card_key": "dsk-10", "decision": "needs_review", "confidence": 0.5},
    {"card_key": None, "decision": "no_match", "confidence": 0.1, "candidates": []},
]


def test_accept_all_saves_auto_accepted_cards_and_says_why_others_wait(client, alice):
    scan_id, _ = _scan(alice, MIXED)
    r = client.post(f"/v1/scans/{scan_id}/confirm", json={}, headers=alice)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [(s["card_index"], s["quantity"], s["condition"]) for s in body["saved"]] == [
        (0, 1, "near_mint")
    ]
    assert {s["card_index"]: s["reason"] for s in body["skipped"]} == {
        1: "waiting for review",
        2: "no catalog match",
    }
    items = client.get("/v1/inventory", headers=alice).json()["items"]
    assert [(i["card_key"], i["quantity"]) for i in items] == [("dsk-1", 1)]
    assert float(items[0]["scan_confidence"]) == 97.0


def test_confirming_twice_never_doubles_a_quantity(client, alice):
    scan_id, _ = _scan(alice, MIXED)
    body = {"cards": [{"card_index": 0, "condition": "LP", "quantity": 3}]}
    first = client.post(f"/v1/scans/{scan_id}/confirm", json=body, headers=alice).json()
    again = client.post(f"/v1/scans/{scan_id}/confirm", json=body, headers=alice).json()
    assert first["saved"][0]["created"] and not again["saved"][0]["created"]
    assert first["saved"][0]["entry_id"] == again["saved"][0]["entry_id"]
    [item] = client.get("/v1/inventory", headers=alice).json()["items"]
    assert (item["quantity"], item["condition"]) == (3, "lightly_played")
    with connection() as conn:
        row = conn.execute(
            "SELECT saved_to_inventory, inventory_entry_id FROM scan_cards WHERE card_index = 0"
        ).fetchone()
    assert row["saved_to_inventory"] and str(row["inventory_entry_id"]) == item["id"]


def test_someone_elses_scan_is_not_found(client, alice, make_user):
    scan_id, _ = _scan(alice, MIXED)
    bob = make_user("bob")
    assert client.post(f"/v1/scans/{scan_id}/confirm", json={}, headers=bob).status_code == 404
    assert client.get("/v1/inventory", headers=bob).json()["items"] == []
    assert client.post(f"/v1/scans/{scan_id}/confirm", json={}).status_code == 401


def test_filters_by_game_and_set(client, alice):
    scan_id, _ = _scan(
        alice,
        [{"card_key": k, "decision": "auto_accepted"} for k in ("dsk-1", "woe-1", "sv3pt5-4")],
    )
    client.post(f"/v1/scans/{scan_id}/confirm", json={}, headers=alice)

    def keys(**params):
        items = client.get("/v1/inventory", params=params, headers=alice).json()["items"]
        return sorted(i["card_key"] for i in items)

    assert keys() == ["dsk-1", "sv3pt5-4", "woe-1"]
    assert keys(game="pokemon") == ["sv3pt5-4"]
    assert keys(game="mtg", set="dsk") == ["dsk-1"]
    assert keys(condition="NM") == ["dsk-1", "sv3pt5-4", "woe-1"]
    assert keys(set="nope") == []


def test_patch_and_soft_delete_are_audited(client, alice):
    scan_id, _ = _scan(alice, MIXED[:1])
    entry_id = client.post(f"/v1/scans/{scan_id}/confirm", json={}, headers=alice).json()["saved"][
        0
    ]["entry_id"]
    r = client.patch(
        f"/v1/inventory/{entry_id}",
        headers=alice,
        json={
            "quantity": 4,
            "condition": "Heavily Played",
            "location": "binder 2",
            "purchase_price": "3.50",
        },
    )
    assert r.status_code == 200, r.text
    assert (r.json()["quantity"], r.json()["condition"], r.json()["location"]) == (
        4,
        "heavily_played",
        "binder 2",
    )
    assert (
        client.patch(f"/v1/inventory/{entry_id}", headers=alice, json={"quantity": 0}).status_code
        == 422
    )
    assert (
        client.patch(f"/v1/inventory/{entry_id}", headers=alice, json={"card_id": "x"}).status_code
        == 422
    )
    assert client.delete(f"/v1/inventory/{entry_id}", headers=alice).status_code == 204
    assert client.get("/v1/inventory", headers=alice).json()["items"] == []
    assert client.delete(f"/v1/inventory/{entry_id}", headers=alice).status_code == 404
    again = client.post(f"/v1/scans/{scan_id}/confirm", json={}, headers=alice).json()
    assert again["saved"] == [] and again["skipped"][0]["reason"].startswith("deleted")
    with connection() as conn:
        actions = [
            r["action"] for r in conn.execute("SELECT action FROM audit_log ORDER BY id").fetchall()
        ]
        deleted = conn.execute("SELECT deleted_at FROM inventory_entries").fetchone()
    assert actions == ["inventory.confirm_scan", "inventory.update", "inventory.delete"]
    assert deleted["deleted_at"] is not None
    named = {"cards": [{"card_index": 0}]}  # naming the card brings it back
    assert (
        client.post(f"/v1/scans/{scan_id}/confirm", json=named, headers=alice).json()["saved"][0][
            "entry_id"
        ]
        == entry_id
    )
    assert len(client.get("/v1/inventory", headers=alice).json()["items"]) == 1


def test_value_totals_per_game_and_set(client, alice, tmp_path):
    from pipeline.prices import import_prices
    from pipeline.valuation import valuate

    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    lines = ["card_key,source,price,currency,condition,listing_type,observed_at"]
    for key, price in (("dsk-1", "2.00"), ("sv3pt5-4", "30.00")):
        lines += [
            f"{key},tcgplayer,{price},USD,NM,sale,{(now - timedelta(hours=h)).isoformat()}"
            for h in (1, 2, 3)
        ]
    path = tmp_path / "p.csv"
    path.write_text("\n".join(lines))
    import_prices(path)
    scan_id, _ = _scan(
        alice,
        [
            {"card_key": k, "decision": "auto_accepted"}
            for k in ("dsk-1", "dsk-1", "sv3pt5-4", "woe-1")
        ],
    )
    client.post(f"/v1/scans/{scan_id}/confirm", json={"quantity": 2}, headers=alice)
    valuate(now=now)
    value = client.get("/v1/inventory/value", headers=alice).json()
    assert value["total_value"] == "68.00" and value["total_cards"] == 8
    assert value["unvalued_cards"] == 2
    assert [(g["game"], g["value"]) for g in value["by_game"]] == [
        ("pokemon", "60.00"),
        ("mtg", "8.00"),
    ]
    assert {s["set_code"]: (s["cards"], s["value"]) for s in value["by_set"]} == {
        "sv3pt5": (2, "60.00"),
        "DSK": (4, "8.00"),
        "WOE": (2, "0.00"),
    }
    [day] = value["history"]
    assert (day["snapshot_date"], day["total_value"], day["unique_cards"]) == (
        now.date().isoformat(),
        "68.00",
        3,
    )


def test_an_unfinished_scan_cannot_be_confirmed(client, alice):
    scan_id, _ = _scan(alice, MIXED[:1])
    with connection() as conn, conn.transaction():
        conn.execute("UPDATE scans SET status = 'processing' WHERE id = %(id)s", {"id": scan_id})
    r = client.post(f"/v1/scans/{scan_id}/confirm", json={}, headers=alice)
    assert r.status_code == 409 and r.json()["code"] == "conflict"
