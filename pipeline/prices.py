"""Price histories: the CSV import, and a seeded generator of realistic ones for tests and demos.

CSV columns: card_key, source, price, currency, condition, listing_type, observed_at (ISO 8601;
a naive time is UTC). Bad rows are reported with their line number and skipped.

The generator draws each card's base price log-normally, scaled by rarity (or, for a catalog
without rarities, a seeded draw of one) and by variant (borderless, showcase… sell above normal),
then walks it day by day with a small drift; each observation is the day's level times
log-normal noise and a condition discount, and about 2 % of observations are outliers (a
mislisted lot, a typo'd decimal) far above or below.
"""

from __future__ import annotations

import csv
import hashlib
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from statistics import NormalDist

import numpy as np

from db import prices as prices_db
from db.inventory import Condition
from db.pool import connection

COLUMNS = ("card_key", "source", "price", "currency", "condition", "listing_type", "observed_at")
LISTING_TYPES = {"market", "low", "mid", "high", "sale", "listing"}

RARITY_BASE = {"common": 0.15, "uncommon": 0.35, "rare": 2.0, "mythic": 6.0, "special": 12.0}
VARIANT_FACTOR = {
    "borderless": 3.0,
    "showcase": 2.2,
    "extended": 1.8,
    "fullart": 4.0,
    "promo": 2.5,
    "digital": 0.5,
}
CONDITION_FACTOR = {
    Condition.NEAR_MINT: 1.0,
    Condition.LIGHTLY_PLAYED: 0.85,
    Condition.MODERATELY_PLAYED: 0.7,
    Condition.HEAVILY_PLAYED: 0.5,
    Condition.DAMAGED: 0.3,
}
SOURCES = ("tcgplayer", "ebay", "cardmarket")


@dataclass
class BadPriceRow:
    line: int
    reason: str


@dataclass
class PriceImportReport:
    rows: int = 0
    inserted: int = 0
    bad: list[BadPriceRow] = field(default_factory=list)


def _parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def read_prices(path: Path, *, known_keys: set[str], report: PriceImportReport) -> list:
    """Validate every row; good ones come back as PricePoints, bad ones go to the report."""
    points: list[prices_db.PricePoint] = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
        for line, rec in enumerate(reader, start=2):
            report.rows += 1
            if None in rec or None in rec.values():
                report.bad.append(BadPriceRow(line, "wrong number of fields"))
                continue
            try:
                points.append(_parse_row(rec, known_keys))
            except ValueError as exc:
                report.bad.append(BadPriceRow(line, str(exc)))
    return points


def _parse_row(rec: dict[str, str], known_keys: set[str]) -> prices_db.PricePoint:
    key = rec["card_key"].strip().lower()
    if key not in known_keys:
        raise ValueError(f"unknown card_key {key!r}")
    source = rec["source"].strip()
    if not source:
        raise ValueError("empty source")
    try:
        price = Decimal(rec["price"].strip())
    except InvalidOperation:
        raise ValueError(f"price {rec['price']!r} is not a number") from None
    if not price.is_finite() or price < 0 or price >= Decimal("1e8"):
        raise ValueError(f"price {rec['price']!r} out of range")
    currency = rec["currency"].strip().upper() or "USD"
    if len(currency) != 3 or not currency.isalpha():
        raise ValueError(f"currency {rec['currency']!r} is not an ISO 4217 code")
    condition = str(Condition.parse(rec["condition"])) if rec["condition"].strip() else None
    listing = rec["listing_type"].strip().lower() or None
    if listing is not None and listing not in LISTING_TYPES:
        raise ValueError(f"listing_type {listing!r} not one of {sorted(LISTING_TYPES)}")
    try:
        observed = _parse_time(rec["observed_at"])
    except ValueError:
        raise ValueError(f"observed_at {rec['observed_at']!r} is not ISO 8601") from None
    return prices_db.PricePoint(
        key, source, price.quantize(Decimal("0.01")), currency, condition, listing, observed
    )


def import_prices(path: Path) -> PriceImportReport:
    """Load a prices CSV into price_sources / card_prices; a second import adds nothing."""
    report = PriceImportReport()
    with connection() as conn, conn.transaction():
        points = read_prices(path, known_keys=prices_db.card_keys(conn), report=report)
        report.inserted = prices_db.insert_prices(conn, points=points)
    return report


def _unit(card_key: str, salt: str) -> float:
    """A stable number in [0, 1) per card: the same card gets the same level in every run."""
    digest = hashlib.sha256(f"{salt}:{card_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def base_price(card: dict) -> float:
    """A card's typical near-mint price from its rarity and variant."""
    rarity = (card.get("rarity") or "").lower()
    if rarity not in RARITY_BASE:
        u = _unit(card["card_key"], "rarity")
        rarity = (
            "common" if u < 0.55 else "uncommon" if u < 0.8 else "rare" if u < 0.95 else "mythic"
        )
    level = RARITY_BASE[rarity] * VARIANT_FACTOR.get((card.get("variant") or "").lower(), 1.0)
    # A card-specific log-normal factor (sigma 0.8): some rares are bulk, some are staples.
    z = NormalDist().inv_cdf(min(max(_unit(card["card_key"], "level"), 1e-9), 1 - 1e-9))
    return max(0.05, level * math.exp(0.8 * z))


def generate_prices(
    cards: list[dict],
    *,
    seed: int = 0,
    days: int = 60,
    per_card: int = 12,
    end: datetime | None = None,
    outlier_rate: float = 0.02,
) -> list[dict]:
    """CSV-ready rows (COLUMNS) of `per_card` observations per card over the last `days` days."""
    rng = np.random.default_rng(seed)
    end = (end or datetime.now(UTC)).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    conditions = list(CONDITION_FACTOR)
    condition_p = np.array([0.6, 0.2, 0.1, 0.06, 0.04])
    rows = []
    for card in cards:
        base = base_price(card)
        walk = np.exp(np.cumsum(rng.normal(0.0005, 0.015, size=days)))  # daily drift
        day_idx = np.sort(rng.integers(0, days, size=per_card))
        for d in day_idx:
            condition = conditions[rng.choice(len(conditions), p=condition_p)]
            price = base * walk[d] * CONDITION_FACTOR[condition] * math.exp(rng.normal(0, 0.12))
            if rng.random() < outlier_rate:
                price *= rng.uniform(4, 10) if rng.random() < 0.6 else rng.uniform(0.05, 0.2)
            observed = end - timedelta(days=int(days - 1 - d), hours=int(rng.integers(0, 24)))
            rows.append(
                {
                    "card_key": card["card_key"],
                    "source": SOURCES[rng.integers(len(SOURCES))],
                    "price": f"{max(0.01, price):.2f}",
                    "currency": "USD",
                    "condition": str(condition),
                    "listing_type": "sale",
                    "observed_at": observed.isoformat(),
                }
            )
    return rows


def write_prices(rows: list[dict], path: Path) -> None:
    """Write generated rows as a prices CSV that `import_prices` reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
