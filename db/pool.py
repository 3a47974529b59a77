"""One psycopg connection pool per process, created lazily (never before a fork).

Every connection goes back to the pool through `connection()`; connect and statement timeouts
are set on each (seed 001's connection rules). The caller owns the transaction.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from db.server import database_url
from db.settings import settings

# What every query function takes: a connection whose rows are dicts (see connect_kwargs).
Conn = psycopg.Connection[DictRow]

_lock = threading.Lock()
_pool: ConnectionPool[psycopg.Connection[DictRow]] | None = None
_pool_pid: int | None = None


def connect_kwargs() -> dict:
    return {
        "connect_timeout": settings.connect_timeout_s,
        "options": f"-c statement_timeout={settings.statement_timeout_ms} -c timezone=UTC",
        "row_factory": dict_row,
    }


def get_pool() -> ConnectionPool[psycopg.Connection[DictRow]]:
    """This process's pool; a forked child gets a new one rather than its parent's sockets."""
    global _pool, _pool_pid
    with _lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ConnectionPool(
                database_url(),
                min_size=settings.pool_min_size,
                max_size=settings.pool_max_size,
                timeout=settings.pool_timeout_s,
                kwargs=connect_kwargs(),
                check=ConnectionPool.check_connection,
                open=True,
                name=f"cardscan-{os.getpid()}",
            )
            _pool_pid = os.getpid()
        return _pool


@contextmanager
def connection() -> Iterator[psycopg.Connection[DictRow]]:
    """A pooled connection, returned to the pool when the block ends."""
    with get_pool().connection() as conn:
        yield conn


def close_pool() -> None:
    global _pool, _pool_pid
    with _lock:
        if _pool is not None and _pool_pid == os.getpid():
            _pool.close()
        _pool = None
        _pool_pid = None


def one(cursor: psycopg.Cursor[DictRow]) -> DictRow:
    """The row of a statement that always returns one (INSERT … RETURNING, count(*))."""
    row = cursor.fetchone()
    if row is None:
        raise LookupError("the statement returned no row where one must exist")
    return row


def connect(autocommit: bool = False) -> psycopg.Connection[DictRow]:
    """A single connection outside the pool (migrations, one-off commands); close it yourself."""
    return psycopg.connect(database_url(), autocommit=autocommit, **connect_kwargs())
