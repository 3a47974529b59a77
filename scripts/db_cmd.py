"""`cardscan db`: migrations and the embedded server."""

import typer

app = typer.Typer(help="Database: migrate, check, show where it is.", no_args_is_help=True)


@app.command()
def upgrade() -> None:
    """Apply every pending migration (safe to run again)."""
    from db.migrate import upgrade as run_upgrade

    typer.echo(f"database at revision {run_upgrade()}")


@app.command()
def status() -> None:
    """Show the database URL and its migration revision."""
    from db.migrate import current_revision, head_revision
    from db.server import database_url

    typer.echo(f"url: {database_url()}")
    typer.echo(f"revision: {current_revision() or 'none'} (code head {head_revision()})")
