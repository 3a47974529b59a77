"""Every `cardscan` subcommand answers --help; an unmigrated database gets one clear line."""

import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest
import typer
from typer.testing import CliRunner

from scripts.cli import app

runner = CliRunner()


def _command_paths(typer_app: typer.Typer, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix + (c.name or c.callback.__name__,) for c in typer_app.registered_commands]
    for group in typer_app.registered_groups:
        paths += _command_paths(group.typer_instance, prefix + (group.name,))
        paths.append(prefix + (group.name,))
    return paths


PATHS = _command_paths(app)


def test_core_commands_are_registered():
    assert {("db", "upgrade"), ("catalog", "import"), ("catalog", "stats")} <= set(PATHS)


@pytest.mark.parametrize("path", PATHS, ids=" ".join)
def test_help(path):
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


@pytest.mark.parametrize(
    "command", [["catalog", "stats"], ["ingest", "."], ["worker"]], ids=" ".join
)
def test_a_command_on_an_unmigrated_database_says_what_to_do(db_url, command):
    import psycopg

    name = f"cardscan_fresh_{uuid.uuid4().hex[:8]}"
    admin = urlparse(db_url)._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        fresh = urlparse(db_url)._replace(path=f"/{name}").geturl()
        env = {**os.environ, "CARDSCAN_DATABASE_URL": fresh}
        out = subprocess.run(
            [sys.executable, "-m", "scripts.cli", *command],
            env=env,
            cwd=Path(__file__).resolve().parents[2],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert out.returncode == 2, out.stderr
    assert "run `cardscan db upgrade`" in out.stderr and "Traceback" not in out.stderr


def test_synth_writes_one_layout_when_asked(tmp_path):
    import cv2
    import numpy as np

    catalog = tmp_path / "catalog"
    (catalog / "images").mkdir(parents=True)
    rows = ["card_key,game,name,set_code,set_name,number,variant,image,source_repo"]
    for i in range(3):
        cv2.imwrite(
            str(catalog / "images" / f"t-{i}.jpg"), np.full((626, 448, 3), 60 * i, np.uint8)
        )
        rows.append(f"t-{i},mtg,Card {i},TST,Test,{i},,images/t-{i}.jpg,test")
    (catalog / "cards.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "set"
    args = ["synth", str(out), "--n", "2", "--size", "320", "--catalog", str(catalog)]
    result = runner.invoke(app, [*args, "--layout", "stack"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "images").iterdir()) == ["stack"]
    result = runner.invoke(app, [*args[:1], str(tmp_path / "other"), *args[2:], "--layout", "nope"])
    assert result.exit_code == 2 and "unknown layouts ['nope']" in result.output
