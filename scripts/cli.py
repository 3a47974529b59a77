"""The `cardscan` command. Each subcommand lives in the module of its subject; heavy imports
(ONNX Runtime, FAISS, torch) happen inside the commands, so `cardscan --help` stays fast."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    help="cardscan: photos of trading cards in, identified cards out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# (command or group name, "module:attribute"); an attribute that is a Typer app becomes a group.
COMMANDS: list[tuple[str, str]] = [
    ("db", "scripts.db_cmd:app"),
    ("catalog", "scripts.catalog_cmd:app"),
    ("index", "scripts.index_cmd:app"),
    ("scan", "scripts.scan_cmd:main"),
    ("eval", "scripts.eval_cmd:main"),
    ("users", "scripts.users_cmd:app"),
    ("serve", "scripts.serve_cmd:serve"),
    ("api", "scripts.serve_cmd:api"),
    ("worker", "scripts.serve_cmd:worker"),
    ("detect", "scripts.detect_cmd:main"),
    ("prices", "scripts.prices_cmd:app"),
    ("ingest", "scripts.ingest_cmd:main"),
    ("bench", "scripts.bench_cmd:main"),
    ("synth", "scripts.synth_cmd:main"),
]


def _register() -> None:
    for name, target in COMMANDS:
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # not written yet
        obj = getattr(module, attr)
        if isinstance(obj, typer.Typer):
            app.add_typer(obj, name=name)
        else:
            app.command(name)(obj)


_register()


def main() -> None:
    """The console entry point: `app`, with a one-line error instead of a traceback when the
    database is not migrated yet (`cardscan db upgrade`) or cannot be reached."""
    import psycopg

    from db.migrate import DatabaseNotMigratedError

    try:
        app()
    except (DatabaseNotMigratedError, psycopg.OperationalError) as exc:
        typer.echo(f"error: {str(exc).strip()}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
