"""A database migrated by a newer release: every command says so in one line, nothing changes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.test_cli import cli_env, error_line, run_cli
from tests.warm_cli import run_cli_warm

FUTURE_REVISION = "9999_from_a_newer_release"


@pytest.fixture
def newer_database(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A SQLite data dir migrated to head, then stamped with a revision this release lacks."""
    data_dir = tmp_path / "data"
    env = cli_env(data_dir)
    migrated = run_cli_warm("migrate", env=env, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    with sqlite3.connect(data_dir / "capgo.db") as connection:
        connection.execute("UPDATE alembic_version SET version_num = ?", (FUTURE_REVISION,))
    return env, data_dir


@pytest.mark.parametrize(
    "command",
    [["migrate"], ["serve", "--port", "1"], ["create-user", "late@example.com"]],
    ids=["migrate", "serve", "create-user"],
)
def test_newer_revision_is_one_line_naming_it(
    command: list[str], newer_database: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, data_dir = newer_database
    run = run_cli if command[0] == "serve" else run_cli_warm  # serve: a new interpreter
    line = error_line(run(*command, env=env, cwd=tmp_path))
    assert FUTURE_REVISION in line
    assert "newer release" in line
    with sqlite3.connect(data_dir / "capgo.db") as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (FUTURE_REVISION,)
        ]
        assert connection.execute("SELECT count(*) FROM users").fetchone() == (0,)
