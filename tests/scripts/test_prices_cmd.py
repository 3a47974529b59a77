"""`cardscan prices generate | import | valuate` on the test database."""

from __future__ import annotations

from typer.testing import CliRunner

from db.pool import connection
from scripts.cli import app

runner = CliRunner()


def test_generate_import_valuate(clean_db, catalog, tmp_path):
    out = tmp_path / "prices.csv"
    r = runner.invoke(
        app,
        ["prices", "generate", "--out", str(out), "--limit", "5", "--per-card", "8", "--seed", "3"],
    )
    assert r.exit_code == 0, r.output
    assert "wrote 40 prices for 5 cards" in r.output
    bad = tmp_path / "bad.csv"
    bad.write_text(out.read_text() + "dsk-1,ebay,-1,USD,NM,sale,2026-01-01T00:00:00\n")
    r = runner.invoke(app, ["prices", "import", str(bad)])
    assert r.exit_code == 0, r.output
    assert "skipped line 42: price '-1' out of range" in r.output
    assert "41 rows:" in r.output and "1 skipped" in r.output
    r = runner.invoke(app, ["prices", "valuate"])
    assert r.exit_code == 0, r.output
    with connection() as conn:
        n = conn.execute("SELECT count(DISTINCT card_id) AS n FROM card_valuations").fetchone()["n"]
    assert n == 5
