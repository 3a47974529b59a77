"""`cardscan ingest FOLDER`: push a folder of photos through the scan queue."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import typer


@contextmanager
def local_worker(enabled: bool):
    """A worker process for the length of the ingest (the embedded defaults have none running)."""
    if not enabled:
        yield None
        return
    from db.server import database_url

    env = {**os.environ, "CARDSCAN_DATABASE_URL": database_url()}
    proc = subprocess.Popen(
        [sys.executable, "-m", "scripts.cli", "worker", "--loglevel", "warning"],
        env=env,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def main(
    folder: Path = typer.Argument(..., exists=True, file_okay=False, help="Folder of photos."),
    user: str = typer.Option("ingest", help="Owner of the scans (created if missing)."),
    location: str = typer.Option(None, help='Physical storage location, e.g. "Binder 3".'),
    wait: bool = typer.Option(False, "--wait", help="Wait until every scan is processed."),
    worker: bool = typer.Option(
        None,
        "--worker/--no-worker",
        help="Run a local worker while waiting (default: yes on the embedded filesystem broker).",
    ),
    report: Path = typer.Option(None, help="Write a self-contained HTML report here."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON last."),
    timeout: float = typer.Option(None, help="Give up waiting after this many seconds."),
) -> None:
    """Register every photo of FOLDER (recursively) as a scan; safe to run again."""
    from tqdm import tqdm

    from db import users as users_db
    from db.migrate import require_migrated
    from db.pool import connection
    from pipeline.ingest import collect_outcomes, register_folder, wait_for_scans, walk_folder
    from pipeline.settings import settings

    require_migrated()  # an unmigrated database: one line and exit 2 (`scripts.cli.main`)
    with connection() as conn, conn.transaction():
        owner = users_db.get_user_by_name(conn, username=user)
        if owner is None:
            owner = users_db.create_user(conn, username=user)
            typer.echo(
                f"created user {user!r}; `cardscan users token {user}` gives it a token", err=True
            )

    total = sum(1 for _ in walk_folder(folder))
    with tqdm(total=total, desc="registering", unit="photo", file=sys.stderr) as bar:
        summary = register_folder(
            folder,
            user_id=owner.id,
            location=location,
            on_photo=lambda _path, outcome: (bar.update(1), bar.set_postfix_str(outcome)),
        )
    if wait and summary.scan_ids:
        run_worker = settings.broker_url is None if worker is None else worker
        with (
            local_worker(run_worker),
            tqdm(
                total=len(set(summary.scan_ids.values())),
                desc="processing",
                unit="scan",
                file=sys.stderr,
            ) as bar,
        ):

            def progress(done: int, _total: int) -> None:
                bar.update(done - bar.n)

            finished = wait_for_scans(summary, timeout_s=timeout, on_progress=progress)
        if not finished:
            typer.echo("timed out waiting; the rest will finish in the background", err=True)
    else:
        collect_outcomes(summary)

    if report:
        from pipeline.report import write_report

        write_report(
            report,
            summary.scan_ids,
            summary=summary.as_json(),
            skipped=summary.skipped_files,
            title=f"cardscan ingest of {folder}",
        )
        typer.echo(f"report written to {report}", err=True)

    for rel, reason in summary.skipped_files:
        typer.echo(f"skipped {rel}: {reason}")
    for rel, reason in summary.unregistered:
        typer.echo(f"not registered, run again to retry {rel}: {reason}")
    for reason, n in summary.failures.most_common():
        typer.echo(f"failed ({n}): {reason}")
    s = summary.as_json()
    typer.echo(
        f"photos {s['photos']} · new {s['new']} · duplicates {s['duplicates']} · "
        f"skipped {s['skipped']} · completed {s['completed']} · failed {s['failed']} · "
        f"cards {s['cards']} · auto-accepted {s['auto_accepted']} · "
        f"needs review {s['needs_review']}"
    )
    if as_json:
        typer.echo(json.dumps(s))
