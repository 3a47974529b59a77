"""Schema migrations (Alembic revisions in explicit SQL) and the start-up check."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from db.pool import connect
from db.server import database_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class DatabaseNotMigratedError(RuntimeError):
    """The database is behind the code; `cardscan db upgrade` fixes it."""


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    url = url or database_url()
    # SQLAlchemy speaks psycopg 3 through the postgresql+psycopg dialect.
    config.set_main_option(
        "sqlalchemy.url", url.replace("postgresql://", "postgresql+psycopg://", 1)
    )
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("postgresql://unused")).get_current_head()
    if head is None:
        raise RuntimeError(f"no migration revisions in {MIGRATIONS}")
    return head


def current_revision() -> str | None:
    with connect(autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('alembic_version') AS t").fetchone()
        if not exists or exists["t"] is None:
            return None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return row["version_num"] if row else None


def upgrade(url: str | None = None) -> str:
    """Migrate to head (idempotent); returns the revision the database is at."""
    command.upgrade(alembic_config(url), "head")
    return head_revision()


def require_migrated() -> None:
    """Refuse to run on a database that is not at the code's head revision."""
    current, head = current_revision(), head_revision()
    if current != head:
        raise DatabaseNotMigratedError(
            f"database is at revision {current or 'none'}, code needs {head}: "
            "run `cardscan db upgrade`"
        )
