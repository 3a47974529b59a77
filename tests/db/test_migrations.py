"""Migrations on an empty database: every table, index and the unmigrated-database refusal."""

import psycopg
import pytest

from db.migrate import DatabaseNotMigratedError, current_revision, head_revision, require_migrated

TABLES = {
    "users",
    "sets",
    "cards",
    "scans",
    "scan_cards",
    "inventory_entries",
    "price_sources",
    "card_prices",
    "card_valuations",
    "portfolio_snapshots",
    "admin_users",
    "uploads",
    "jobs",
    "model_metrics",
    "training_examples",
    "audit_log",
    "api_tokens",
}


def test_upgrade_creates_every_table(db_url):
    with psycopg.connect(db_url) as conn:
        names = {
            r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        }
    assert names >= TABLES
    assert current_revision() == head_revision()


def test_inventory_is_hash_partitioned_by_user(db_url):
    with psycopg.connect(db_url) as conn:
        strategy = conn.execute(
            "SELECT partstrat, pg_get_partkeydef('inventory_entries'::regclass) "
            "FROM pg_partitioned_table WHERE partrelid = 'inventory_entries'::regclass"
        ).fetchone()
    assert strategy == ("h", "HASH (user_id)")


def test_seed_indexes_exist(db_url):
    wanted = {
        "idx_cards_normalized_name",
        "idx_cards_metadata_gin",
        "idx_scans_status",
        "idx_prices_card_observed",
        "idx_inventory_user_condition",
        "idx_snapshots_user_date",
    }
    with psycopg.connect(db_url) as conn:
        names = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes")}
        trgm = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name='pg_trgm'").fetchone()
    assert wanted <= names
    assert ("idx_cards_name_trgm" in names) == (trgm is not None)


def test_upgrade_again_is_a_no_op(db_url):
    from db.migrate import upgrade

    assert upgrade(db_url) == head_revision()


def test_commands_refuse_an_unmigrated_database(db_url, monkeypatch):
    from urllib.parse import urlparse

    from db.settings import settings

    # The server's own `postgres` database is never migrated.
    monkeypatch.setattr(
        settings, "database_url", urlparse(db_url)._replace(path="/postgres").geturl()
    )
    with pytest.raises(DatabaseNotMigratedError, match="cardscan db upgrade"):
        require_migrated()


def test_updated_at_trigger_moves_on_update(clean_db):
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute("INSERT INTO users (username) VALUES ('trig')")
        before = conn.execute("SELECT updated_at FROM users WHERE username='trig'").fetchone()[0]
        conn.execute("UPDATE users SET currency='EUR' WHERE username='trig'")
        after = conn.execute("SELECT updated_at FROM users WHERE username='trig'").fetchone()[0]
    assert after > before
