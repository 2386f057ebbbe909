"""The ``capgo-server`` command line, run as real processes (``serve`` is in test_serve.py): the
console script itself for ``--help`` and a first ``migrate``, a fork of a warm one
(:func:`tests.warm_cli.run_cli_warm`, without the 2 s of imports) for the rest.

Contract: ``serve``, ``migrate`` and ``create-user EMAIL [--org-name NAME]``; ``create-user``
prints exactly one JSON object ``{"user_id", "org_id", "apikey"}`` on stdout; every error is one
line on stderr (``error: ...``) with a non-zero exit code and nothing on stdout.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from capgo_server.app import create_app
from capgo_server.db.engine import make_engine
from capgo_server.db.migrate import pending_migrations
from capgo_server.settings import Settings
from tests.warm_cli import CLI, TIMEOUT, run_cli_warm

ACCOUNT_KEYS = {"user_id", "org_id", "apikey"}
# Nothing listens on port 1, so connecting is refused at once.
UNREACHABLE_PG_URL = "postgresql+asyncpg://capgo:hunter2@127.0.0.1:1/capgo"
# Variables that would change how rich renders stderr/--help, or leak the caller's settings.
_RENDERING_VARS = ("COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")


def cli_env(data_dir: Path, **overrides: str | None) -> dict[str, str]:
    """The caller's environment without any CAPGO_* setting, with ``CAPGO_DATA_DIR`` set.

    ``overrides`` are environment variables (``None`` removes one).
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("CAPGO_") and key not in _RENDERING_VARS
    }
    env["CAPGO_DATA_DIR"] = str(data_dir)
    env["NO_COLOR"] = "1"
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_cli(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = TIMEOUT
) -> subprocess.CompletedProcess[str]:
    assert CLI.exists(), f"console script missing at {CLI}"
    return subprocess.run(
        [str(CLI), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def describe(result: subprocess.CompletedProcess[str]) -> str:
    """Exit code and output of a command, for assertion messages (a traceback's last lines)."""
    stderr = "\n".join(result.stderr.splitlines()[-4:])
    return f"exit {result.returncode}\nstdout: {result.stdout!r}\nstderr (end): {stderr}"


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single ``error: ...`` line of a failed command (asserting the error contract)."""
    assert result.returncode == 1, describe(result)
    assert result.stdout == "", describe(result)
    assert "Traceback" not in result.stderr, describe(result)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, describe(result)
    assert result.stderr.endswith("\n"), describe(result)
    assert lines[0].startswith("error: "), describe(result)
    return lines[0]


def is_uuid(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def account_of(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The JSON printed by a successful ``create-user`` (asserting its exact shape)."""
    assert result.returncode == 0, describe(result)
    assert result.stderr == "", describe(result)
    lines = result.stdout.splitlines()
    assert len(lines) == 1, describe(result)
    assert result.stdout == lines[0] + "\n", describe(result)
    account = json.loads(lines[0])
    assert isinstance(account, dict), describe(result)
    assert set(account) == ACCOUNT_KEYS | {"invitations"}, describe(result)
    assert all(is_uuid(account[key]) for key in ACCOUNT_KEYS), describe(result)
    assert isinstance(account["invitations"], list), describe(result)
    assert len({account["user_id"], account["org_id"], account["apikey"]}) == 3
    return account


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path.resolve()}"


def table_names(db_file: Path) -> set[str]:
    with sqlite3.connect(db_file) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {row[0] for row in rows}


@asynccontextmanager
async def api_client(database_url: str, data_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The app built in-process on ``database_url``, with its lifespan running."""
    settings = Settings(
        database_url=database_url, data_dir=data_dir, secret="cli-test-" + uuid.uuid4().hex
    )
    application: FastAPI = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://capgo.test") as http:
            yield http


async def assert_account_works(
    http: httpx.AsyncClient, account: dict[str, str], email: str, org_name: str | None
) -> None:
    """The key sees exactly the user's org, as its super_admin, and is their one ``all`` key."""
    headers = {"authorization": account["apikey"]}
    orgs = await http.get("/organization", headers=headers)
    assert orgs.status_code == 200, orgs.text
    assert len(orgs.json()) == 1, orgs.text
    org = orgs.json()[0]
    assert org["id"] == account["org_id"]
    assert org["created_by"] == account["user_id"]
    assert org["management_email"] == email
    if org_name is None:
        assert org["name"].strip(), orgs.text
    else:
        assert org["name"] == org_name

    one = await http.get("/organization", params={"orgId": account["org_id"]}, headers=headers)
    assert one.status_code == 200, one.text
    assert one.json()["id"] == account["org_id"]

    members = await http.get(
        "/organization/members", params={"orgId": account["org_id"]}, headers=headers
    )
    assert members.status_code == 200, members.text
    assert [(m["uid"], m["email"], m["role"]) for m in members.json()] == [
        (account["user_id"], email, "super_admin")
    ]

    keys = await http.get("/apikey", headers=headers)
    assert keys.status_code == 200, keys.text
    assert len(keys.json()) == 1, keys.text
    key = keys.json()[0]
    assert key["mode"] == "all"
    assert key["user_id"] == account["user_id"]
    assert key["limited_to_orgs"] == []
    assert key["limited_to_apps"] == []
    assert key["expires_at"] is None


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory that does not exist yet (the CLI must create it), away from ./data."""
    return tmp_path / "state" / "data"


@pytest.fixture
def env(data_dir: Path) -> dict[str, str]:
    return cli_env(data_dir)


@pytest.fixture
def migrated(env: dict[str, str], tmp_path: Path, data_dir: Path) -> Path:
    """``data_dir`` after ``capgo-server migrate``; returns the SQLite file."""
    result = run_cli_warm("migrate", env=env, cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    return data_dir / "capgo.db"


class TestHelp:
    def test_top_level_help_lists_every_command(self, env: dict[str, str], tmp_path: Path) -> None:
        result = run_cli("--help", env=env, cwd=tmp_path)
        assert result.returncode == 0, describe(result)
        assert result.stderr == ""
        assert "Usage: capgo-server" in result.stdout
        for command in ("serve", "migrate", "create-user", "release-app-id"):
            assert command in result.stdout
        assert "CAPGO_DATABASE_URL" in result.stdout
        assert "CAPGO_DATA_DIR" in result.stdout

    @pytest.mark.parametrize(
        ("command", "expected"),
        [
            ("serve", ["--host", "--port", "--workers", "127.0.0.1", "8000", "migrations"]),
            ("migrate", ["migrations"]),
            ("create-user", ["email", "--org-name", "user_id", "org_id", "apikey", "all"]),
            ("release-app-id", ["app_id", "org_id", "reserved", "deleted"]),
        ],
    )
    def test_each_command_has_help(
        self, command: str, expected: list[str], env: dict[str, str], tmp_path: Path, data_dir: Path
    ) -> None:
        result = run_cli(command, "--help", env=env, cwd=tmp_path)
        assert result.returncode == 0, describe(result)
        assert result.stderr == ""
        assert f"Usage: capgo-server {command}" in result.stdout
        for text in expected:
            assert text in result.stdout, f"{text!r} missing from {command} --help"
        # --help never touches the database.
        assert not (data_dir / "capgo.db").exists()

    def test_unknown_command_is_a_usage_error(self, env: dict[str, str], tmp_path: Path) -> None:
        result = run_cli("frobnicate", env=env, cwd=tmp_path)
        assert result.returncode == 2, describe(result)
        assert result.stdout == ""
        assert "No such command 'frobnicate'" in result.stderr
        assert "Traceback" not in result.stderr

    def test_create_user_requires_an_email(self, env: dict[str, str], tmp_path: Path) -> None:
        result = run_cli("create-user", env=env, cwd=tmp_path)
        assert result.returncode == 2, describe(result)
        assert result.stdout == ""
        assert "Missing argument" in result.stderr
        assert "Traceback" not in result.stderr


class TestMigrate:
    async def test_migrate_creates_the_sqlite_file_under_data_dir(
        self, env: dict[str, str], tmp_path: Path, data_dir: Path
    ) -> None:
        assert not data_dir.exists()
        result = run_cli("migrate", env=env, cwd=tmp_path)
        assert result.returncode == 0, describe(result)
        assert result.stdout == ""
        assert "up to date" in result.stderr
        assert "Traceback" not in result.stderr
        db_file = data_dir / "capgo.db"
        assert db_file.is_file()
        assert {"alembic_version", "users", "orgs", "org_users", "apikeys"} <= table_names(db_file)
        engine = make_engine(sqlite_url(db_file))
        try:
            assert await pending_migrations(engine) is False
        finally:
            await engine.dispose()
        # CAPGO_DATA_DIR wins over the default ./data of the working directory.
        assert not (tmp_path / "data").exists()

    def test_migrate_twice_is_a_no_op(
        self, migrated: Path, env: dict[str, str], tmp_path: Path
    ) -> None:
        before = table_names(migrated)
        result = run_cli_warm("migrate", env=env, cwd=tmp_path)
        assert result.returncode == 0, describe(result)
        assert result.stdout == ""
        assert "up to date" in result.stderr
        assert table_names(migrated) == before

    def test_migrate_keeps_existing_users(
        self, migrated: Path, env: dict[str, str], tmp_path: Path
    ) -> None:
        account_of(run_cli_warm("create-user", "keep@example.com", env=env, cwd=tmp_path))
        result = run_cli_warm("migrate", env=env, cwd=tmp_path)
        assert result.returncode == 0, describe(result)
        duplicate = run_cli_warm("create-user", "keep@example.com", env=env, cwd=tmp_path)
        assert "already exists" in error_line(duplicate)

    def test_default_data_dir_is_dot_data(self, tmp_path: Path) -> None:
        env = cli_env(tmp_path, CAPGO_DATA_DIR=None)
        workdir = tmp_path / "work"
        workdir.mkdir()
        result = run_cli_warm("migrate", env=env, cwd=workdir)
        assert result.returncode == 0, describe(result)
        assert (workdir / "data" / "capgo.db").is_file()

    def test_migrate_uses_capgo_database_url(self, tmp_path: Path, data_dir: Path) -> None:
        db_file = tmp_path / "elsewhere.db"
        env = cli_env(data_dir, CAPGO_DATABASE_URL=sqlite_url(db_file))
        result = run_cli_warm("migrate", env=env, cwd=tmp_path)
        assert result.returncode == 0, describe(result)
        assert db_file.is_file()
        assert "apikeys" in table_names(db_file)
        assert not (data_dir / "capgo.db").exists()

    def test_unreachable_database_is_one_line_without_the_password(
        self, tmp_path: Path, data_dir: Path
    ) -> None:
        env = cli_env(data_dir, CAPGO_DATABASE_URL=UNREACHABLE_PG_URL)
        line = error_line(run_cli_warm("migrate", env=env, cwd=tmp_path))
        assert "127.0.0.1:1" in line
        assert "hunter2" not in line


class TestCreateUser:
    @pytest.mark.parametrize("columns", [None, "40"])
    def test_before_migrate_tells_to_run_migrate(
        self, columns: str | None, tmp_path: Path, data_dir: Path
    ) -> None:
        env = cli_env(data_dir, COLUMNS=columns)  # a narrow terminal must not wrap the line
        result = run_cli_warm("create-user", "alice@example.com", env=env, cwd=tmp_path)
        line = error_line(result)
        assert "not migrated" in line
        assert "capgo-server migrate" in line

    def test_prints_one_json_object_then_refuses_the_same_user(
        self, migrated: Path, env: dict[str, str], tmp_path: Path
    ) -> None:
        result = run_cli_warm(
            "create-user", "alice@example.com", "--org-name", "Acme", env=env, cwd=tmp_path
        )
        account = account_of(result)

        again = run_cli_warm(
            "create-user", "alice@example.com", "--org-name", "Acme", env=env, cwd=tmp_path
        )
        line = error_line(again)
        assert "alice@example.com" in line
        assert "already exists" in line

        # E-mail addresses are compared case-insensitively.
        upper = run_cli_warm("create-user", "Alice@Example.COM", env=env, cwd=tmp_path)
        assert "already exists" in error_line(upper)

        with sqlite3.connect(migrated) as connection:
            users = connection.execute("SELECT id, email FROM users").fetchall()
            orgs = connection.execute("SELECT id, name, created_by FROM orgs").fetchall()
        assert users == [(account["user_id"], "alice@example.com")]
        assert orgs == [(account["org_id"], "Acme", account["user_id"])]

    def test_each_user_gets_their_own_org_and_key(
        self, migrated: Path, env: dict[str, str], tmp_path: Path
    ) -> None:
        alice = account_of(run_cli_warm("create-user", "alice@example.com", env=env, cwd=tmp_path))
        bob = account_of(run_cli_warm("create-user", "bob@example.com", env=env, cwd=tmp_path))
        for key in ACCOUNT_KEYS:
            assert alice[key] != bob[key]

    @pytest.mark.parametrize(
        "email",
        [
            "nope",
            "",
            "@example.com",
            "alice@",
            "two words@example.com",
            "a@b@example.com",
        ],
    )
    def test_invalid_email_fails_cleanly(
        self, email: str, migrated: Path, env: dict[str, str], tmp_path: Path
    ) -> None:
        line = error_line(run_cli_warm("create-user", email, env=env, cwd=tmp_path))
        assert "e-mail" in line
        with sqlite3.connect(migrated) as connection:
            assert connection.execute("SELECT count(*) FROM users").fetchone() == (0,)

    def test_unreachable_database_is_one_line_without_the_password(
        self, tmp_path: Path, data_dir: Path
    ) -> None:
        env = cli_env(data_dir, CAPGO_DATABASE_URL=UNREACHABLE_PG_URL)
        line = error_line(run_cli_warm("create-user", "alice@example.com", env=env, cwd=tmp_path))
        assert "127.0.0.1:1" in line
        assert "hunter2" not in line

    async def test_printed_key_works_against_the_api(
        self, migrated: Path, env: dict[str, str], tmp_path: Path, data_dir: Path
    ) -> None:
        account = account_of(
            run_cli_warm(
                "create-user", "alice@example.com", "--org-name", "Acme", env=env, cwd=tmp_path
            )
        )
        async with api_client(sqlite_url(migrated), data_dir) as http:
            await assert_account_works(http, account, "alice@example.com", "Acme")
            keys = await http.get("/apikey", headers={"authorization": account["apikey"]})
            assert keys.json()[0]["key"] == account["apikey"]
            assert keys.json()[0]["key_hash"] is None

    async def test_default_org_name(
        self, migrated: Path, env: dict[str, str], tmp_path: Path, data_dir: Path
    ) -> None:
        account = account_of(
            run_cli_warm("create-user", "carol@example.com", env=env, cwd=tmp_path)
        )
        async with api_client(sqlite_url(migrated), data_dir) as http:
            await assert_account_works(http, account, "carol@example.com", None)

    async def test_hashed_key_is_not_stored_but_works(
        self, migrated: Path, env: dict[str, str], tmp_path: Path, data_dir: Path
    ) -> None:
        account = account_of(
            run_cli_warm("create-user", "dave@example.com", "--hashed", env=env, cwd=tmp_path)
        )
        with sqlite3.connect(migrated) as connection:
            stored = connection.execute("SELECT key, is_hashed FROM apikeys").fetchall()
        assert stored == [(None, 1)]
        async with api_client(sqlite_url(migrated), data_dir) as http:
            await assert_account_works(http, account, "dave@example.com", None)
            keys = await http.get("/apikey", headers={"authorization": account["apikey"]})
            assert keys.json()[0]["key"] is None
            assert (
                keys.json()[0]["key_hash"] == hashlib.sha256(account["apikey"].encode()).hexdigest()
            )


class TestSettingsErrors:
    """Bad settings are errors like any other: one line, exit 1, no traceback."""

    @pytest.mark.parametrize("command", [["migrate"], ["create-user", "alice@example.com"]])
    def test_invalid_capgo_env(self, command: list[str], tmp_path: Path, data_dir: Path) -> None:
        env = cli_env(data_dir, CAPGO_ENV="staging")
        line = error_line(run_cli_warm(*command, env=env, cwd=tmp_path))
        assert "CAPGO_ENV" in line

    @pytest.mark.parametrize("command", [["migrate"], ["create-user", "alice@example.com"]])
    def test_unparsable_database_url(
        self, command: list[str], tmp_path: Path, data_dir: Path
    ) -> None:
        env = cli_env(data_dir, CAPGO_DATABASE_URL="not a database url")
        line = error_line(run_cli_warm(*command, env=env, cwd=tmp_path))
        assert "not a database url" in line or "CAPGO_DATABASE_URL" in line

    @pytest.mark.parametrize("command", [["migrate"], ["create-user", "alice@example.com"]])
    def test_data_dir_that_cannot_be_created(self, command: list[str], tmp_path: Path) -> None:
        blocker = tmp_path / "a-file"
        blocker.write_text("not a directory")
        env = cli_env(blocker / "data")
        line = error_line(run_cli_warm(*command, env=env, cwd=tmp_path))
        assert str(blocker) in line


class TestCreateUserOnEachEngine:
    """``create-user`` on the session database of each engine (SQLite and PostgreSQL)."""

    async def test_create_user_key_works(
        self, app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
    ) -> None:
        env = cli_env(tmp_path / "unused-data", CAPGO_DATABASE_URL=database_url)

        migrate = run_cli_warm("migrate", env=env, cwd=tmp_path)
        assert migrate.returncode == 0, describe(migrate)
        assert migrate.stdout == ""

        result = run_cli_warm(
            "create-user", "erin@example.com", "--org-name", "Acme", env=env, cwd=tmp_path
        )
        account = account_of(result)
        await assert_account_works(client, account, "erin@example.com", "Acme")

        again = run_cli_warm("create-user", "erin@example.com", env=env, cwd=tmp_path)
        assert "already exists" in error_line(again)

        response = await client.get("/organization", headers={"authorization": str(uuid.uuid4())})
        assert response.status_code == 401

    async def test_overlong_org_name_is_a_clean_error(
        self, app: FastAPI, client: httpx.AsyncClient, database_url: str, tmp_path: Path
    ) -> None:
        # The API caps organization names at 200 characters; create-user must refuse longer
        # ones itself, the same way on every engine, instead of blaming the database.
        env = cli_env(tmp_path / "unused-data", CAPGO_DATABASE_URL=database_url)
        result = run_cli_warm(
            "create-user", "frank@example.com", "--org-name", "x" * 201, env=env, cwd=tmp_path
        )
        line = error_line(result)
        assert "cannot reach" not in line
        assert "org" in line.lower()
        retry = run_cli_warm(
            "create-user", "frank@example.com", "--org-name", "Frank Org", env=env, cwd=tmp_path
        )
        account_of(retry)
