"""`cardscan catalog`: import the card catalog and show what it holds."""

from pathlib import Path

import typer

app = typer.Typer(help="Card catalog: import cards.csv, print statistics.", no_args_is_help=True)


@app.command("import")
def import_(
    folder: Path = typer.Argument(..., exists=True, file_okay=False, help="folder with cards.csv"),
) -> None:
    """Import (or update) the printings of FOLDER/cards.csv and their images; idempotent."""
    from db.migrate import require_migrated
    from pipeline.catalog import import_catalog

    require_migrated()
    report = import_catalog(folder)
    for bad in report.bad:
        typer.echo(f"skipped line {bad.line} ({bad.card_key or '?'}): {bad.reason}", err=True)
    o = report.outcomes
    typer.echo(
        f"{report.rows} rows: {o['created']} created, {o['updated']} updated, "
        f"{o['unchanged']} unchanged, {len(report.bad)} skipped"
    )
    if report.changed == 0:
        typer.echo("catalog already up to date: nothing changed")


@app.command()
def stats() -> None:
    """Printings in total, per game and per set."""
    from db.cards import catalog_stats
    from db.migrate import require_migrated
    from db.pool import connection

    require_migrated()
    with connection() as conn:
        s = catalog_stats(conn)
    typer.echo(f"printings: {s['total']}")
    for game, n in s["per_game"].items():
        typer.echo(f"  {game:<8} {n:>6}")
    typer.echo("per set:")
    for game, code, name, n in s["per_set"]:
        typer.echo(f"  {game:<8} {code:<8} {n:>5}  {name}")
