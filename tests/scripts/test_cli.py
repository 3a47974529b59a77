"""Every `cardscan` subcommand answers --help."""

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
