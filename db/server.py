"""The database URL: the configured server, or PostgreSQL started by the project under var/pg.

The embedded server comes from the `pgserver` wheel (real PostgreSQL binaries, Unix socket only).
Every process that uses it registers itself; pgserver stops the server when the last one exits.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings

from db.settings import settings

log = logging.getLogger(__name__)

_lock = threading.Lock()
_embedded = None  # the pgserver handle of this process


def embedded_pgdata():  # noqa: ANN201
    return (settings.var_dir / "pg").resolve()


def database_url() -> str:
    """`CARDSCAN_DATABASE_URL`, else the URL of the embedded server (started on first call)."""
    if settings.database_url:
        return settings.database_url
    global _embedded
    with _lock:
        if _embedded is None:
            # platformdirs warns about XDG_RUNTIME_DIR on headless machines; it is harmless here.
            os.environ.setdefault("XDG_RUNTIME_DIR", str(settings.var_dir.resolve()))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import pgserver

                pgdata = embedded_pgdata()
                pgdata.parent.mkdir(parents=True, exist_ok=True)
                log.info("starting embedded PostgreSQL in %s", pgdata)
                _embedded = pgserver.get_server(pgdata, cleanup_mode="stop")
        return _embedded.get_uri()


def stop_embedded() -> None:
    """Release this process's hold on the embedded server (it stops when no process holds it)."""
    global _embedded
    with _lock:
        if _embedded is not None:
            _embedded.cleanup()
            _embedded = None
