"""`cardscan prices`: import price histories, generate demo ones, value the inventories."""

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Prices: import CSV, generate demo histories, valuate.", no_args_is_help=True
)


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="prices CSV")],
) -> None:
    """Load FILE.csv (card_key, source, price, currency, condition, listing_type, observed_at)."""
    from db.migrate import require_migrated
    from pipeline.prices import import_prices

    require_migrated()
    report = import_prices(file)
    for bad in report.bad:
        typer.echo(f"skipped line {bad.line}: {bad.reason}", err=True)
    typer.echo(f"{report.rows} rows: {report.inserted} new prices, {len(report.bad)} skipped")


@app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", help="CSV file to write")],
    seed: Annotated[int, typer.Option(help="the same seed writes the same file")] = 0,
    days: Annotated[int, typer.Option(help="history length in days, ending now")] = 60,
    per_card: Annotated[int, typer.Option(help="observations per card")] = 12,
    limit: Annotated[int, typer.Option(help="only the first N catalog cards (0: all)")] = 0,
) -> None:
    """Write realistic price histories for the catalog's cards (for tests and `make demo`)."""
    from db import prices as prices_db
    from db.migrate import require_migrated
    from db.pool import connection
    from pipeline.prices import generate_prices, write_prices

    require_migrated()
    with connection() as conn:
        cards = prices_db.catalog_for_prices(conn)
    if limit:
        cards = cards[:limit]
    rows = generate_prices(cards, seed=seed, days=days, per_card=per_card)
    write_prices(rows, out)
    typer.echo(f"wrote {len(rows)} prices for {len(cards)} cards to {out}")


@app.command()
def valuate(
    window_days: Annotated[int, typer.Option(help="prices within this many days count")] = 90,
    ttl_hours: Annotated[int, typer.Option(help="a valuation is valid this long")] = 24,
) -> None:
    """Compute card valuations, restamp inventory values and write today's snapshots."""
    from db.migrate import require_migrated
    from pipeline.valuation import valuate as run_valuation

    require_migrated()
    r = run_valuation(window_days=window_days, ttl_hours=ttl_hours)
    typer.echo(
        f"{r.valued} valuations from {r.groups} price groups; {r.entries_revalued} inventory "
        f"entries revalued; {r.snapshots} portfolio snapshots; "
        f"{r.cards_without_prices} catalog cards without prices"
    )
