"""Valuation: hand-computed medians and intervals, outliers, a card with no prices, the job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from db.inventory import Condition, save_scan_card
from db.pool import connection
from pipeline.prices import generate_prices, import_prices, write_prices
from pipeline.valuation import median_interval, price_stats, reject_outliers, valuate
from tests.scan_rows import make_scan, make_user


def test_one_wild_price_is_rejected_and_the_median_is_of_the_rest():
    # ln: 2.303 2.398 2.485 2.565 2.639 4.605, median 2.525; deviations .222 .127 .040 .040
    # .114 2.080 → MAD (.114 + .127) / 2 = .121; cut 3 · 1.4826 · .121 = .536: only 100 goes
    stats = price_stats([10, 11, 12, 13, 14, 100])
    assert stats.outliers_rejected == 1 and stats.sample_size == 5
    assert stats.fmv == 12
    # five prices: no order-statistic pair reaches 95 %, so [min, max] with 1 - 2/32
    assert (stats.ci_lower, stats.ci_upper) == (10, 14)
    assert stats.coverage == pytest.approx(0.9375)
    assert (stats.min_price, stats.max_price) == (10, 14)


def test_ten_prices_give_the_second_and_ninth_order_statistics():
    prices = [14, 5, 13, 6, 12, 7, 11, 8, 10, 9]
    stats = price_stats(prices)
    assert stats.outliers_rejected == 0 and stats.fmv == 9.5
    # P(B <= 1) = 11/1024 <= 0.025 < P(B <= 2) = 56/1024, B ~ Bin(10, 1/2) → j = 2
    assert (stats.ci_lower, stats.ci_upper) == (6, 13)
    assert stats.coverage == pytest.approx(1 - 2 * 11 / 1024)


def test_twenty_prices_interval_uses_the_binomial_tail():
    xs = [float(i) for i in range(1, 21)]
    lower, upper, coverage = median_interval(xs)
    # P(B <= 5) = 21700 / 2**20 = 0.0207 <= 0.025 < P(B <= 6) → [x(6), x(15)]
    assert (lower, upper) == (6.0, 15.0)
    assert coverage == pytest.approx(1 - 2 * 21700 / 2**20)


def test_zero_mad_falls_back_to_mean_absolute_deviation():
    # over half equal: MAD 0; mean |ln x − ln 10| = (.095 + 1.609) / 6 = .284,
    # cut 3 · 1.2533 · .284 = 1.068 → 50 (1.609) goes, 11 (.095) stays
    kept, rejected = reject_outliers([10, 10, 10, 10, 11, 50])
    assert kept == [10, 10, 10, 10, 11] and rejected == [50]
    assert price_stats([7, 7, 7]).fmv == 7 and price_stats([7, 7, 7]).outliers_rejected == 0


def test_a_low_outlier_is_rejected_too():
    # ln median 3.113; deviations of 20…26 ≤ .145, of 0.5 3.806; MAD .087 → cut .387
    stats = price_stats([20, 21, 22, 23, 24, 25, 26, 0.5])
    assert stats.outliers_rejected == 1 and stats.fmv == 23 and stats.min_price == 20


def test_a_cent_or_two_on_a_cheap_card_is_not_an_outlier():
    # MAD 0 and mean deviation .051 would cut at .19 < ln(.10/.08) = .22; the two-cent floor
    # ln(1 + .02/.08) = .223 per unit of scale keeps the cut at .67
    assert price_stats([0.08] * 5 + [0.10, 0.07]).outliers_rejected == 0
    assert price_stats([0.08] * 5 + [0.10, 0.07, 0.90]).outliers_rejected == 1


def test_no_prices_no_value():
    assert price_stats([]) is None
    assert price_stats([3.0]).fmv == 3.0 and price_stats([3.0]).ci_lower == 3.0


def test_generator_is_seeded_and_realistic():
    cards = [{"card_key": f"x-{i}", "variant": None, "rarity": None} for i in range(50)]
    end = datetime(2026, 11, 1, tzinfo=UTC)
    a = generate_prices(cards, seed=7, end=end)
    assert a == generate_prices(cards, seed=7, end=end)
    assert a != generate_prices(cards, seed=8, end=end)
    assert len(a) == 50 * 12
    prices = [float(r["price"]) for r in a]
    assert min(prices) > 0 and max(prices) < 10_000
    assert {r["condition"] for r in a} <= {c.value for c in Condition}
    assert all(
        end - timedelta(days=61)
        <= datetime.fromisoformat(r["observed_at"]).replace(tzinfo=UTC)
        <= end
        for r in a
    )


def _write(tmp_path, rows: list[str]):
    path = tmp_path / "prices.csv"
    path.write_text(
        "card_key,source,price,currency,condition,listing_type,observed_at\n" + "\n".join(rows)
    )
    return path


def test_import_then_valuate_values_inventory_and_writes_a_snapshot(clean_db, catalog, tmp_path):
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    day = (now - timedelta(days=1)).isoformat()
    rows = [
        f"dsk-1,tcgplayer,{p},USD,NM,sale,{(now - timedelta(hours=i + 1)).isoformat()}"
        for i, p in enumerate([10, 11, 12, 13, 14, 100])
    ]
    rows += [
        "dsk-1,ebay,not-a-price,USD,NM,sale," + day,  # line 8
        "no-such-card,ebay,1.00,USD,NM,sale," + day,  # line 9
        "dsk-10,ebay,2.50,USD,LP,sale,yesterday",  # line 10
    ]
    report = import_prices(_write(tmp_path, rows))
    assert report.inserted == 6
    assert [(b.line, b.reason.split()[0]) for b in report.bad] == [
        (8, "price"),
        (9, "unknown"),
        (10, "observed_at"),
    ]
    assert import_prices(_write(tmp_path, rows)).inserted == 0  # idempotent

    with connection() as conn, conn.transaction():
        owner, _ = make_user(conn)
        _, [priced, unpriced] = make_scan(
            conn,
            user_id=owner.id,
            cards=[
                {"card_key": "dsk-1", "decision": "auto_accepted"},
                {"card_key": "sv3pt5-1", "decision": "auto_accepted"},
            ],
        )
        for sc, key in ((priced, "dsk-1"), (unpriced, "sv3pt5-1")):
            card_id = conn.execute(
                "SELECT id FROM cards WHERE card_key = %(k)s", {"k": key}
            ).fetchone()["id"]
            save_scan_card(
                conn,
                user_id=owner.id,
                scan_card_id=sc,
                card_id=card_id,
                condition=Condition.NEAR_MINT,
                quantity=2,
                scan_confidence=0.9,
                scan_image_url=None,
            )

    result = valuate(now=now)
    assert result.valued == 2  # dsk-1 near mint, and dsk-1 pooled over conditions
    with connection() as conn:
        vals = conn.execute(
            "SELECT v.* FROM card_valuations v JOIN cards c ON c.id = v.card_id "
            "WHERE c.card_key = 'dsk-1' ORDER BY condition NULLS LAST"
        ).fetchall()
        entries = conn.execute(
            "SELECT c.card_key, ie.last_valuated_price FROM inventory_entries ie "
            "JOIN cards c ON c.id = ie.card_id ORDER BY c.card_key"
        ).fetchall()
        [snap] = conn.execute("SELECT * FROM portfolio_snapshots").fetchall()
        none = conn.execute(
            "SELECT count(*) AS n FROM card_valuations v JOIN cards c ON c.id = v.card_id "
            "WHERE c.card_key = 'sv3pt5-1'"
        ).fetchone()["n"]
    near_mint = vals[0]
    assert near_mint["condition"] == "near_mint"
    assert (
        near_mint["fmv"],
        near_mint["confidence_interval_lower"],
        near_mint["confidence_interval_upper"],
    ) == (Decimal("12.00"), Decimal("10.00"), Decimal("14.00"))
    assert (near_mint["sample_size"], near_mint["outliers_rejected"]) == (5, 1)
    assert near_mint["valid_until"] == now + timedelta(hours=24)
    assert none == 0
    assert [(e["card_key"], e["last_valuated_price"]) for e in entries] == [
        ("dsk-1", Decimal("12.00")),
        ("sv3pt5-1", None),
    ]
    assert snap["user_id"] == owner.id and snap["total_value"] == Decimal("24.00")
    assert (snap["total_cards"], snap["unique_cards"]) == (4, 2)
    assert snap["value_by_set"] == {"DSK": 24.0, "sv3pt5": 0}
    valuate(now=now + timedelta(minutes=1))  # a rerun the same day replaces the snapshot
    with connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM portfolio_snapshots").fetchone()["n"] == 1


def test_generated_file_imports_cleanly(clean_db, catalog, tmp_path):
    cards = [{"card_key": k, "variant": None, "rarity": None} for k in ("dsk-1", "sv3pt5-1")]
    path = tmp_path / "gen.csv"
    write_prices(generate_prices(cards, seed=1, per_card=20), path)
    report = import_prices(path)
    assert report.bad == [] and report.inserted == 40
