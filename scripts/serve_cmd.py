"""`cardscan serve` (API + one worker, embedded defaults), `cardscan api`, `cardscan worker`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import typer


def _require_migrated() -> None:
    """Refuse to start on an unmigrated database (`scripts.cli.main` prints it as one line)."""
    from db.migrate import require_migrated

    require_migrated()


def worker_argv(concurrency: int = 1, loglevel: str = "info") -> list[str]:
    """The Celery worker command line: queue `scans`, no gossip/mingle (one-queue service)."""
    return [
        "worker",
        "-Q",
        "scans",
        "-c",
        str(concurrency),
        "-l",
        loglevel,
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]


def worker(
    concurrency: int = typer.Option(1, help="Worker processes (one model instance each)."),
    loglevel: str = typer.Option("info", help="Celery log level."),
) -> None:
    """Run a Celery worker on CARDSCAN_BROKER_URL (else the filesystem transport, var/broker)."""
    _require_migrated()
    from pipeline.celery_app import app

    app.worker_main(worker_argv(concurrency, loglevel))


def api(
    host: str = typer.Option(None, help="Bind address (default CARDSCAN_API_HOST)."),
    port: int = typer.Option(None, help="Port (default CARDSCAN_API_PORT)."),
    workers: int = typer.Option(1, help="Uvicorn worker processes."),
) -> None:
    """Run the HTTP API against CARDSCAN_DATABASE_URL, CARDSCAN_BROKER_URL, CARDSCAN_STORAGE_URL."""
    import uvicorn

    from api.settings import settings

    _require_migrated()
    uvicorn.run(
        "api.main:app",
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers,
        log_level="info",
    )


def serve(
    host: str = typer.Option(None, help="Bind address (default CARDSCAN_API_HOST)."),
    port: int = typer.Option(None, help="Port (default CARDSCAN_API_PORT)."),
) -> None:
    """Migrate, then run the API and one worker (embedded PostgreSQL, var/broker, var/objects)."""
    import uvicorn

    from api.settings import settings
    from db.migrate import upgrade
    from db.server import database_url

    url = database_url()  # starts the embedded server if CARDSCAN_DATABASE_URL is unset
    typer.echo(f"database at revision {upgrade(url)}")
    env = {**os.environ, "CARDSCAN_DATABASE_URL": url}
    proc = subprocess.Popen([sys.executable, "-m", "scripts.cli", "worker"], env=env)
    port = port or settings.api_port
    typer.echo(f"worker pid {proc.pid}; API on http://{host or settings.api_host}:{port}")
    # uvicorn re-raises the SIGTERM it caught once it has shut down; make that an exit that
    # runs the `finally` below, so the worker is never left orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        uvicorn.run("api.main:app", host=host or settings.api_host, port=port, log_level="info")
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
