"""Batch folder ingestion: every photo of a folder through the same path as an upload.

Photos are registered one by one through `pipeline.enqueue.register_photo` (same storage, same
`uploads` SHA-256 dedupe, same task), each in its own transaction, so an interrupted ingest is
simply run again: what was registered comes back as a duplicate and the rest is done. Progress is
read back in pages of 1,000 scans per query.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import PoolTimeout

from db import scans as scans_db
from db.pool import connection
from db.scans import ScanStatus
from pipeline.enqueue import register_photo
from pipeline.storage import Storage, open_storage
from vision.errors import ScanError, TransientError

log = logging.getLogger(__name__)

TRANSIENT_ATTEMPTS = 6  # ~30 s of backoff before a photo is left for the next run


@dataclass
class IngestSummary:
    photos: int = 0
    new: int = 0
    duplicates: int = 0
    skipped: int = 0
    completed: int = 0
    failed: int = 0
    cards: int = 0
    auto_accepted: int = 0
    needs_review: int = 0
    skipped_files: list[tuple[str, str]] = field(default_factory=list)
    # Photos a transient outage kept from registering; running the ingest again picks them up.
    unregistered: list[tuple[str, str]] = field(default_factory=list)
    failures: Counter = field(default_factory=Counter)  # reason -> photos
    scan_ids: dict[str, Any] = field(default_factory=dict)  # path -> scan id

    def as_json(self) -> dict[str, int]:
        keys = (
            "photos",
            "new",
            "duplicates",
            "skipped",
            "completed",
            "failed",
            "cards",
            "auto_accepted",
            "needs_review",
        )
        return {k: getattr(self, k) for k in keys}


def walk_folder(folder: Path) -> Iterator[Path]:
    """Every regular file below `folder`, in a stable order; hidden files and dirs are left out."""
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.is_file() and not path.is_symlink():
            yield path


def register_folder(
    folder: Path,
    *,
    user_id: Any,
    location: str | None = None,
    storage: Storage | None = None,
    on_photo: Callable[[Path, str], None] | None = None,
) -> IngestSummary:
    """Register every image of `folder`; files that are not images are skipped with the reason."""
    storage = storage or open_storage()
    summary = IngestSummary()
    for path in walk_folder(folder):
        # Each photo takes a pooled connection of its own and commits on its own, so an
        # interruption or a database restart costs at most the photo in flight.
        outcome = _register_one(path, folder, user_id, location, storage, summary)
        if on_photo:
            on_photo(path, outcome)
    return summary


def _register_one(
    path: Path,
    folder: Path,
    user_id: Any,
    location: str | None,
    storage: Storage,
    summary: IngestSummary,
) -> str:
    rel = str(path.relative_to(folder))
    try:
        data = path.read_bytes()
        scan_id, created = _register_with_retry(
            user_id=user_id,
            data=data,
            filename=rel,
            location=location,
            storage=storage,
        )
    except TransientError as exc:
        summary.unregistered.append((rel, f"{exc.code}: {exc.detail}"))
        return "unregistered"
    except ScanError as exc:
        summary.skipped += 1
        summary.skipped_files.append((rel, f"{exc.code}: {exc.detail}"))
        return "skipped"
    except OSError as exc:
        summary.skipped += 1
        summary.skipped_files.append((rel, f"unreadable: {exc.strerror or exc}"))
        return "skipped"
    summary.photos += 1
    summary.scan_ids[rel] = scan_id
    if created:
        summary.new += 1
        return "new"
    summary.duplicates += 1
    return "duplicate"


def _register_with_retry(*, attempts: int = TRANSIENT_ATTEMPTS, **kwargs: Any):  # noqa: ANN202
    """register_photo, retried with backoff while the database, broker or storage is away."""
    for attempt in range(attempts):
        try:
            return register_photo(trigger="ingest", **kwargs)
        except (TransientError, psycopg.OperationalError, PoolTimeout) as exc:
            if attempt == attempts - 1:
                if isinstance(exc, TransientError):
                    raise
                raise TransientError(f"database unavailable: {exc}") from exc
            time.sleep(min(10.0, 0.5 * 2**attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def collect_outcomes(summary: IngestSummary) -> list[scans_db.ScanOutcome]:
    """Fill the summary's completed/failed/card counts from the database; returns the rows.

    Counts are per distinct scan: two files with the same bytes are one scan."""
    ids = list(dict.fromkeys(summary.scan_ids.values()))
    outcomes: list[scans_db.ScanOutcome] = []
    with connection() as conn:
        for start in range(0, len(ids), 1000):
            outcomes += scans_db.scan_outcomes(conn, scan_ids=ids[start : start + 1000])
    summary.completed = sum(o.status == ScanStatus.COMPLETED for o in outcomes)
    summary.failed = sum(o.status == ScanStatus.FAILED for o in outcomes)
    summary.failures = Counter(
        o.error_message or "unknown error" for o in outcomes if o.status == ScanStatus.FAILED
    )
    done = [o for o in outcomes if o.status == ScanStatus.COMPLETED]
    summary.cards = sum(o.cards for o in done)
    summary.auto_accepted = sum(o.auto_accepted for o in done)
    summary.needs_review = sum(o.needs_review for o in done)
    return outcomes


def wait_for_scans(
    summary: IngestSummary,
    *,
    timeout_s: float | None = None,
    poll_s: float = 0.5,
    on_progress: Callable[[int, int], None] | None = None,
) -> bool:
    """Poll until every scan of the ingest is completed or failed; False on timeout."""
    total = len(set(summary.scan_ids.values()))
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        try:
            collect_outcomes(summary)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            # The database is away (a restart): the scans go on without us; ask again later.
            log.warning("could not read scan progress: %s", exc)
        else:
            finished = summary.completed + summary.failed
            if on_progress:
                on_progress(finished, total)
            if finished >= total:
                return True
        if deadline is not None and time.monotonic() > deadline:
            return False
        time.sleep(poll_s)
