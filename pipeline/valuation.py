"""Fair market value from observed prices, and the job that values every inventory.

FMV is the median of the prices left after outlier rejection by the median absolute deviation
(MAD), taken on log prices because card prices spread multiplicatively (a $40 card moves by
dollars, a $0.40 card by cents): with l = ln(price), a price is an outlier when
|l − median(l)| > k · 1.4826 · MAD(l) (1.4826 makes MAD estimate the standard deviation of
normal data; k = 3 by default). When MAD is 0 (over half the prices equal), the mean absolute
deviation · 1.2533 stands in, so a lone wild price is still caught. The scale never drops below
two cents' worth at the median price: prices are quoted in cents, and a cent or two off a $0.08
card is rounding, not evidence.

The confidence interval is the distribution-free order-statistic interval of the median: with n
sorted kept prices x(1) ≤ … ≤ x(n), [x(j), x(n+1-j)] covers the true median with probability
1 − 2·P(B ≤ j−1), B ~ Binomial(n, ½); j is the largest index keeping that at or above the level
(95 %). Below six prices no such j exists and the interval is [min, max] (coverage 1 − 2·½ⁿ).
See Conover, *Practical Nonparametric Statistics*, §3.2, or
https://www-users.york.ac.uk/~mb55/intro/cicent.htm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from statistics import median

from db import prices as prices_db
from db.pool import connection

MAD_SCALE = 1.4826
MEAN_AD_SCALE = 1.2533  # sqrt(pi/2): mean absolute deviation → standard deviation (normal data)
CENT = 0.01  # a zero price is taken as one cent on the log scale
TICK_FLOOR = 0.02  # two cents: the smallest spread that can count as evidence


@dataclass(frozen=True)
class PriceStats:
    fmv: float
    ci_lower: float
    ci_upper: float
    coverage: float
    sample_size: int
    outliers_rejected: int
    min_price: float
    max_price: float


def reject_outliers(prices: list[float], *, k: float = 3.0) -> tuple[list[float], list[float]]:
    """(kept, rejected), both sorted."""
    xs = sorted(prices)
    if len(xs) < 3:
        return xs, []
    logs = [math.log(max(x, CENT)) for x in xs]
    m = median(logs)
    deviations = [abs(v - m) for v in logs]
    scale = MAD_SCALE * median(deviations)
    if scale == 0:
        scale = MEAN_AD_SCALE * sum(deviations) / len(deviations)
    scale = max(scale, math.log1p(TICK_FLOOR / math.exp(m)))
    kept = [x for x, d in zip(xs, deviations, strict=True) if d <= k * scale]
    rejected = [x for x, d in zip(xs, deviations, strict=True) if d > k * scale]
    return kept, rejected


def median_interval(
    sorted_prices: list[float], *, level: float = 0.95
) -> tuple[float, float, float]:
    """(lower, upper, coverage) of the order-statistic confidence interval of the median."""
    xs, n = sorted_prices, len(sorted_prices)
    tail = (1 - level) / 2
    j, cdf, tail_at_j = 0, 0.0, 0.0
    for i in range(n):  # i = j - 1: P(B <= i)
        cdf += math.comb(n, i) / 2**n
        if cdf > tail:
            break
        j, tail_at_j = i + 1, cdf
    if j == 0:
        return xs[0], xs[-1], 1 - 2 * 0.5**n
    return xs[j - 1], xs[n - j], 1 - 2 * tail_at_j


def price_stats(prices: list[float], *, k: float = 3.0, level: float = 0.95) -> PriceStats | None:
    """FMV, interval and spread of one card's prices; None without any price."""
    if not prices:
        return None
    kept, rejected = reject_outliers(prices, k=k)
    lower, upper, coverage = median_interval(kept, level=level)
    return PriceStats(
        fmv=median(kept),
        ci_lower=lower,
        ci_upper=upper,
        coverage=coverage,
        sample_size=len(kept),
        outliers_rejected=len(rejected),
        min_price=kept[0],
        max_price=kept[-1],
    )


def _cents(value: float) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@dataclass
class ValuationReport:
    groups: int = 0
    valued: int = 0
    entries_revalued: int = 0
    snapshots: int = 0
    cards_without_prices: int = 0


def valuate(
    *,
    now: datetime | None = None,
    window_days: int = 90,
    ttl_hours: int = 24,
    currency: str = "USD",
    k: float = 3.0,
) -> ValuationReport:
    """Value every card with prices in the window, restamp inventories, write today's snapshots."""
    now = (now or datetime.now(UTC)).replace(tzinfo=None, microsecond=0)
    report = ValuationReport()
    rows: list[prices_db.Valuation] = []
    with connection() as conn, conn.transaction():
        for group in prices_db.price_groups(conn, since=now - timedelta(days=window_days)):
            report.groups += 1
            stats = price_stats(group.prices, k=k)
            if stats is None:
                continue
            rows.append(
                prices_db.Valuation(
                    card_id=group.card_id,
                    condition=group.condition,
                    currency=group.currency,
                    fmv=_cents(stats.fmv),
                    ci_lower=_cents(stats.ci_lower),
                    ci_upper=_cents(stats.ci_upper),
                    sample_size=stats.sample_size,
                    outliers_rejected=stats.outliers_rejected,
                    min_price=_cents(stats.min_price),
                    max_price=_cents(stats.max_price),
                    median_price=_cents(stats.fmv),
                    computed_at=now,
                    valid_until=now + timedelta(hours=ttl_hours),
                )
            )
        report.valued = prices_db.insert_valuations(conn, valuations=rows)
        report.entries_revalued = prices_db.revalue_inventory(conn, currency=currency)
        report.snapshots = prices_db.write_snapshots(conn, snapshot_date=now.date())
        report.cards_without_prices = prices_db.count_unvalued_cards(conn)
    return report
