"""GET /v1/inventory/export: each format's header is the one its tool documents for import."""

from __future__ import annotations

import csv
import io

import pytest

from db.pool import connection
from tests.scan_rows import make_scan

# Written out again here, not imported, so a change to api/exports.py has to agree with these.
# ManaBox: transmute-mtg's ManaBox handler (https://pypi.org/project/transmute-mtg/).
MANABOX = [
    "Name",
    "Set code",
    "Set name",
    "Collector number",
    "Foil",
    "Rarity",
    "Quantity",
    "ManaBox ID",
    "Scryfall ID",
    "Purchase price",
    "Misprint",
    "Altered",
    "Condition",
    "Language",
    "Purchase price currency",
]
# Moxfield: its collection CSV as transmute-mtg and mtg_collector's MoxfieldExporter write it.
MOXFIELD = [
    "Count",
    "Tradelist Count",
    "Name",
    "Edition",
    "Condition",
    "Language",
    "Foil",
    "Tags",
    "Last Modified",
    "Collector Number",
    "Alter",
    "Proxy",
    "Purchase Price",
]
# TCGplayer: the TCGplayer app's collection export (transmute-mtg's TCGPlayer handler).
TCGPLAYER = [
    "Quantity",
    "Name",
    "Simple Name",
    "Set",
    "Card Number",
    "Set Code",
    "Printing",
    "Condition",
    "Language",
    "Rarity",
    "Product ID",
    "SKU",
]
OURS = [
    "card_key",
    "game",
    "name",
    "set_code",
    "set_name",
    "number",
    "variant",
    "condition",
    "quantity",
    "purchase_price",
    "value",
    "currency",
]


@pytest.fixture
def alice(client, make_user, catalog):
    from db.users import user_for_token

    headers = make_user("alice")
    with connection() as conn, conn.transaction():
        user = user_for_token(conn, token=headers["Authorization"].split()[1])
        scan_id, _ = make_scan(
            conn,
            user_id=user.id,
            cards=[
                {"card_key": k, "decision": "auto_accepted"}
                for k in ("dsk-1", "dsk-1", "dsk-10", "sv3pt5-4")
            ],
        )
    body = {
        "cards": [
            {"card_index": 0, "quantity": 2},
            {"card_index": 1, "quantity": 1},
            {"card_index": 2, "condition": "MP"},
            {"card_index": 3},
        ]
    }
    assert (
        client.post(f"/v1/scans/{scan_id}/confirm", json=body, headers=headers).status_code == 200
    )
    return headers


def _export(client, headers, fmt, **params):
    r = client.get("/v1/inventory/export", params={"format": fmt, **params}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    return list(csv.DictReader(io.StringIO(r.text))), r.text.splitlines()[0].split(",")


@pytest.mark.parametrize(
    ("fmt", "header"),
    [("csv", OURS), ("manabox", MANABOX), ("moxfield", MOXFIELD), ("tcgplayer", TCGPLAYER)],
)
def test_header_is_the_documented_one(client, alice, fmt, header):
    _, got = _export(client, alice, fmt)
    assert got == header


def test_manabox_rows(client, alice):
    rows, _ = _export(client, alice, "manabox")
    assert [
        (r["Name"], r["Set code"], r["Collector number"], r["Quantity"], r["Condition"])
        for r in rows
    ] == [
        ("Acrobatic Cheerleader", "DSK", "1", "3", "near_mint"),
        ("Fear of Immobility", "DSK", "10", "1", "light_played"),
    ]  # Pokémon left out: ManaBox catalogues Magic
    assert {r["Foil"] for r in rows} == {"normal"} and {r["Language"] for r in rows} == {"en"}


def test_moxfield_rows(client, alice):
    rows, _ = _export(client, alice, "moxfield")
    assert [(r["Count"], r["Name"], r["Edition"], r["Condition"]) for r in rows] == [
        ("3", "Acrobatic Cheerleader", "dsk", "Near Mint"),
        ("1", "Fear of Immobility", "dsk", "Moderately Played"),
    ]


def test_tcgplayer_rows_cover_every_game(client, alice):
    rows, _ = _export(client, alice, "tcgplayer")
    assert [
        (r["Quantity"], r["Simple Name"], r["Set Code"], r["Printing"], r["Condition"])
        for r in rows
    ] == [
        ("3", "Acrobatic Cheerleader", "DSK", "Normal", "Near Mint"),
        ("1", "Fear of Immobility", "DSK", "Normal", "Moderately Played"),
        ("1", "Charmander", "SV3PT5", "Normal", "Near Mint"),
    ]


def test_own_csv_filters_and_rejects_unknown_formats(client, alice):
    rows, _ = _export(client, alice, "csv", game="pokemon")
    assert [(r["card_key"], r["quantity"], r["condition"]) for r in rows] == [
        ("sv3pt5-4", "1", "near_mint")
    ]
    r = client.get("/v1/inventory/export", params={"format": "xlsx"}, headers=alice)
    assert r.status_code == 422 and r.json()["code"] == "invalid_request"
    assert client.get("/v1/inventory/export").status_code == 401
