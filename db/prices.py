"""SQL for pricing: sources, observed prices, computed valuations and portfolio snapshots."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from db.pool import Conn, one

NOW = "(now() AT TIME ZONE 'UTC')"


@dataclass(frozen=True)
class PricePoint:
    card_key: str
    source: str
    price: Decimal
    currency: str
    condition: str | None
    listing_type: str | None
    observed_at: datetime


def ensure_sources(conn: Conn, *, names: Iterable[str]) -> dict[str, Any]:
    """Source ids by name, creating the missing ones (imported sources)."""
    names = sorted(set(names))
    conn.execute(
        "INSERT INTO price_sources (name, source_type) "
        "SELECT n, 'import' FROM unnest(%(n)s::text[]) n ON CONFLICT (name) DO NOTHING",
        {"n": names},
    )
    rows = conn.execute(
        "SELECT id, name FROM price_sources WHERE name = ANY(%(n)s)", {"n": names}
    ).fetchall()
    return {r["name"]: r["id"] for r in rows}


def insert_prices(conn: Conn, *, points: list[PricePoint]) -> int:
    """Bulk insert through COPY into a temporary table; rows already stored are skipped.

    Returns how many rows were new. NULL condition or listing type counts as equal here, which
    the table's UNIQUE constraint alone would not (NULLs are distinct there).
    """
    if not points:
        return 0
    sources = ensure_sources(conn, names={p.source for p in points})
    conn.execute(
        """
        CREATE TEMP TABLE incoming_prices (
            card_key text, source_id uuid, price numeric(10,2), currency text, condition text,
            listing_type text, observed_at timestamp
        ) ON COMMIT DROP
        """
    )
    with conn.cursor().copy(
        "COPY incoming_prices (card_key, source_id, price, currency, condition, listing_type, "
        "observed_at) FROM STDIN"
    ) as copy:
        for p in points:
            copy.write_row(
                (
                    p.card_key,
                    sources[p.source],
                    p.price,
                    p.currency,
                    p.condition,
                    p.listing_type,
                    p.observed_at,
                )
            )
    cur = conn.execute(
        """
        INSERT INTO card_prices (card_id, price_source_id, price, currency, condition,
                                 listing_type, observed_at, sale_date)
        SELECT DISTINCT ON (c.id, i.source_id, i.condition, i.listing_type, i.observed_at)
               c.id, i.source_id, i.price, i.currency, i.condition, i.listing_type, i.observed_at,
               CASE WHEN i.listing_type = 'sale' THEN i.observed_at::date END
        FROM incoming_prices i JOIN cards c ON c.card_key = i.card_key
        WHERE NOT EXISTS (
            SELECT 1 FROM card_prices p
            WHERE p.card_id = c.id AND p.price_source_id = i.source_id
              AND p.condition IS NOT DISTINCT FROM i.condition
              AND p.listing_type IS NOT DISTINCT FROM i.listing_type
              AND p.observed_at = i.observed_at)
        ORDER BY c.id, i.source_id, i.condition, i.listing_type, i.observed_at
        """
    )
    conn.execute("DROP TABLE incoming_prices")
    conn.execute(
        f"UPDATE price_sources SET last_sync_at = {NOW} WHERE id = ANY(%(ids)s)",
        {"ids": list(sources.values())},
    )
    return cur.rowcount


@dataclass(frozen=True)
class PriceGroup:
    card_id: Any
    condition: str | None  # None: every condition pooled
    currency: str
    prices: list[float]


def price_groups(conn: Conn, *, since: datetime) -> Iterator[PriceGroup]:
    """Observed prices since `since`, per (card, condition, currency) and pooled per card.

    The pooled group (condition None) values entries whose own condition has no prices.
    """
    rows = conn.execute(
        """
        SELECT card_id, condition, currency, array_agg(price::float8 ORDER BY price) AS prices
        FROM card_prices WHERE observed_at >= %(since)s
        GROUP BY GROUPING SETS ((card_id, condition, currency), (card_id, currency))
        ORDER BY card_id, currency, condition NULLS FIRST
        """,
        {"since": since},
    )
    for r in rows:
        yield PriceGroup(r["card_id"], r["condition"], r["currency"], r["prices"])


@dataclass(frozen=True)
class Valuation:
    card_id: Any
    condition: str | None
    currency: str
    fmv: Decimal
    ci_lower: Decimal
    ci_upper: Decimal
    sample_size: int
    outliers_rejected: int
    min_price: Decimal
    max_price: Decimal
    median_price: Decimal
    computed_at: datetime
    valid_until: datetime


def insert_valuations(conn: Conn, *, valuations: list[Valuation]) -> int:
    with conn.cursor() as cur:
        cur.executemany(
            """
            INSERT INTO card_valuations (card_id, condition, fmv, confidence_interval_lower,
                confidence_interval_upper, sample_size, outliers_rejected, currency, min_price,
                max_price, median_price, computed_at, valid_until)
            VALUES (%(card_id)s, %(condition)s, %(fmv)s, %(ci_lower)s, %(ci_upper)s,
                %(sample_size)s, %(outliers_rejected)s, %(currency)s, %(min_price)s,
                %(max_price)s, %(median_price)s, %(computed_at)s, %(valid_until)s)
            ON CONFLICT (card_id, condition, computed_at) DO NOTHING
            """,
            [v.__dict__ for v in valuations],
        )
    return len(valuations)


def revalue_inventory(conn: Conn, *, currency: str = "USD") -> int:
    """Stamp every live entry with its card's latest valid FMV: its own condition, else pooled."""
    cur = conn.execute(
        f"""
        WITH latest AS (
            SELECT DISTINCT ON (card_id, condition) card_id, condition, fmv, computed_at
            FROM card_valuations
            WHERE currency = %(cur)s AND (valid_until IS NULL OR valid_until > {NOW})
            ORDER BY card_id, condition, computed_at DESC
        )
        UPDATE inventory_entries ie
        SET last_valuated_price = v.fmv, last_valuated_at = v.computed_at,
            last_valuated_currency = %(cur)s
        FROM (
            SELECT ie2.id, ie2.user_id,
                   coalesce(own.fmv, pooled.fmv) AS fmv,
                   coalesce(own.computed_at, pooled.computed_at) AS computed_at
            FROM inventory_entries ie2
            LEFT JOIN latest own ON own.card_id = ie2.card_id AND own.condition = ie2.condition
            LEFT JOIN latest pooled ON pooled.card_id = ie2.card_id AND pooled.condition IS NULL
            WHERE ie2.deleted_at IS NULL AND coalesce(own.fmv, pooled.fmv) IS NOT NULL
        ) v
        WHERE ie.id = v.id AND ie.user_id = v.user_id
        """,
        {"cur": currency},
    )
    return cur.rowcount


def write_snapshots(conn: Conn, *, snapshot_date: date) -> int:
    """One `portfolio_snapshots` row per user with live entries; a rerun that day replaces it."""
    cur = conn.execute(
        """
        WITH per_set AS (
            SELECT ie.user_id, s.code,
                   sum(ie.quantity * coalesce(ie.last_valuated_price, 0)) AS value
            FROM inventory_entries ie JOIN cards c ON c.id = ie.card_id
            JOIN sets s ON s.id = c.set_id
            WHERE ie.deleted_at IS NULL GROUP BY ie.user_id, s.code
        ), per_user AS (
            SELECT ie.user_id, sum(ie.quantity)::int AS total_cards,
                   count(DISTINCT ie.card_id)::int AS unique_cards,
                   sum(ie.quantity * coalesce(ie.last_valuated_price, 0))::numeric(12,2) AS total
            FROM inventory_entries ie WHERE ie.deleted_at IS NULL GROUP BY ie.user_id
        )
        INSERT INTO portfolio_snapshots (user_id, snapshot_date, total_value, total_cards,
                                         unique_cards, value_by_set)
        SELECT u.user_id, %(day)s, u.total, u.total_cards, u.unique_cards,
               (SELECT jsonb_object_agg(p.code, round(p.value, 2)) FROM per_set p
                WHERE p.user_id = u.user_id)
        FROM per_user u
        ON CONFLICT (user_id, snapshot_date) DO UPDATE SET
            total_value = EXCLUDED.total_value, total_cards = EXCLUDED.total_cards,
            unique_cards = EXCLUDED.unique_cards, value_by_set = EXCLUDED.value_by_set
        """,
        {"day": snapshot_date},
    )
    return cur.rowcount


def snapshots(conn: Conn, *, user_id: Any, limit: int = 30) -> list[dict]:
    """The user's latest daily portfolio snapshots, newest first."""
    return conn.execute(
        "SELECT snapshot_date, total_value, total_cards, unique_cards, value_by_set "
        "FROM portfolio_snapshots WHERE user_id = %(u)s ORDER BY snapshot_date DESC LIMIT %(n)s",
        {"u": user_id, "n": limit},
    ).fetchall()


def card_keys(conn: Conn) -> set[str]:
    """Every catalog key (the import checks rows against it)."""
    return {r["card_key"] for r in conn.execute("SELECT card_key FROM cards").fetchall()}


def catalog_for_prices(conn: Conn) -> list[dict]:
    """Every printing with what the price generator bases its level on."""
    return conn.execute(
        "SELECT c.card_key, s.game_type AS game, c.variant, c.rarity "
        "FROM cards c JOIN sets s ON s.id = c.set_id WHERE c.deleted_at IS NULL ORDER BY c.card_key"
    ).fetchall()


def count_unvalued_cards(conn: Conn) -> int:
    """Catalog cards that have never had a valuation (no prices ever seen)."""
    cur = conn.execute(
        "SELECT count(*) AS n FROM cards c WHERE c.deleted_at IS NULL AND NOT EXISTS "
        "(SELECT 1 FROM card_valuations v WHERE v.card_id = c.id)"
    )
    row = one(cur)
    return row["n"]
