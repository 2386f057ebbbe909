"""What ``capgo-server serve`` says at start (one banner, before uvicorn's lines) and
``capgo-server --version``, from real processes."""

from __future__ import annotations

import asyncio
from importlib.metadata import version
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import empty_all_tables
from tests.test_cli import CLI, account_of, cli_env, describe, run_cli
from tests.test_serve import assert_stopped_cleanly, free_port, running_server
from tests.warm_cli import run_cli_warm

VERSION = version("capgo-server")
HINT = f'{CLI} create-user you@example.com --org-name "My company"'


def banner_of(output: str) -> list[str]:
    """The banner's lines: from its first line up to uvicorn's first one (asserting there is
    exactly one banner, and that it comes first)."""
    lines = output.splitlines()
    starts = [i for i, line in enumerate(lines) if line == f"capgo-server {VERSION}"]
    assert len(starts) == 1, output
    uvicorn_lines = [i for i, line in enumerate(lines) if line.startswith("INFO:")]
    assert uvicorn_lines, output
    assert uvicorn_lines[0] > starts[0], output
    return lines[starts[0] : uvicorn_lines[0]]


def field(banner: list[str], name: str) -> str:
    [value] = [line.split(":", 1)[1].strip() for line in banner if line.startswith(f"  {name}:")]
    return value


def test_version(tmp_path: Path) -> None:
    result = run_cli("--version", env=cli_env(tmp_path / "data"), cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    assert result.stdout == f"capgo-server {VERSION}\n"
    assert result.stderr == ""
    assert not (tmp_path / "data").exists()


class TestBanner:
    def test_fresh_install_names_every_place_and_the_first_step(self, tmp_path: Path) -> None:
        data_dir = tmp_path / "state" / "data"
        env = cli_env(data_dir)
        port = free_port()
        with running_server(env, tmp_path, port=port) as server:
            banner = banner_of(server.output())
            assert field(banner, "database") == f"sqlite+aiosqlite:///{data_dir / 'capgo.db'}"
            assert field(banner, "data dir") == str(data_dir)
            assert field(banner, "bundles") == f"{data_dir / 'bundles'} (local folder)"
            public = f"http://127.0.0.1:{port}"
            assert field(banner, "public URL") == f"{public} (the address devices are given)"
            assert field(banner, "API docs") == f"{public}/docs"
            # The command to paste: the program as invoked, on the same data directory.
            assert banner[-1].strip() == f"CAPGO_DATA_DIR={data_dir} {HINT}"
            # ...which works as printed.
            account_of(run_cli_warm("create-user", "you@example.com", "--org-name", "My company",
                               env=env, cwd=tmp_path))  # fmt: skip
            assert_stopped_cleanly(server)
        with running_server(env, tmp_path) as server:
            banner = banner_of(server.output())
            assert "create-user" not in server.output()
            assert banner[-1].startswith("  API docs:")
            assert_stopped_cleanly(server)

    def test_database_password_is_masked(self, database_url: str, tmp_path: Path) -> None:
        url = make_url(database_url)
        if url.get_backend_name() != "postgresql":
            pytest.skip("a SQLite URL has no password")
        # Trust authentication: the password is ignored by the server, never shown by serve.
        with_password = url.set(password="hunter2", query={"password": "hunter3"})
        env = cli_env(
            tmp_path / "data",
            CAPGO_DATABASE_URL=with_password.render_as_string(hide_password=False),
        )
        try:
            with running_server(env, tmp_path) as server:
                output = server.output()
                banner = banner_of(output)
                assert "hunter" not in output
                shown = field(banner, "database")
                assert shown.startswith(f"postgresql+asyncpg://{url.username}:***@{url.host}")
                assert "password=***" in shown
                # An empty database: the hint says which setting create-user needs.
                assert banner[-2].strip() == HINT
                assert banner[-1].strip() == "(with the same CAPGO_DATABASE_URL set)"
                assert_stopped_cleanly(server)
        finally:
            asyncio.run(empty_all_tables(database_url))

    def test_public_url_follows_host_and_port_or_the_setting(self, tmp_path: Path) -> None:
        env = cli_env(tmp_path / "data", CAPGO_STORAGE_URL=f"file://{tmp_path / 'store'}")
        port = free_port()
        with running_server(env, tmp_path, "--host", "0.0.0.0", port=port) as server:
            output = server.output()
            banner = banner_of(output)
            assert field(banner, "public URL").startswith(f"http://127.0.0.1:{port} ")
            assert field(banner, "bundles") == f"{tmp_path / 'store'} (local folder)"
            assert "warning: serving on 0.0.0.0" in output
        public = {**env, "CAPGO_PUBLIC_URL": "https://updates.example.com/"}
        with running_server(public, tmp_path, "--host", "0.0.0.0") as server:
            banner = banner_of(server.output())
            assert field(banner, "public URL").startswith("https://updates.example.com ")
            assert field(banner, "API docs") == "https://updates.example.com/docs"
            assert "warning" not in server.output()

    def test_object_store_is_shown_without_credentials(self, tmp_path: Path) -> None:
        from capgo_server.serve_banner import masked_database_url, storage_location
        from capgo_server.settings import Settings

        settings = Settings(
            data_dir=tmp_path,
            storage_url="s3://bundles/prod",
            s3_endpoint_url="https://minio:hunter2@minio.example.com:9000",
        )
        shown = storage_location(settings)
        assert shown == "s3://bundles/prod (endpoint https://minio.example.com:9000)"
        assert masked_database_url("postgresql+asyncpg://u:hunter2@db/capgo?sslpassword=x") == (
            "postgresql+asyncpg://u:***@db/capgo?sslpassword=***"
        )

    def test_object_store_query_values_are_masked(self, tmp_path: Path) -> None:
        """Found in review: a token in the query of CAPGO_STORAGE_URL or of the endpoint (which
        the server ignores or passes on, but an operator may paste) was printed as is."""
        from capgo_server.serve_banner import storage_location
        from capgo_server.settings import Settings

        settings = Settings(
            data_dir=tmp_path,
            storage_url="s3://AKIA:hunter2@bundles/prod?X-Amz-Security-Token=hunter3#hunter4",
            s3_endpoint_url="https://minio.example.com:9000/?token=hunter5",
        )
        shown = storage_location(settings)
        assert shown == (
            "s3://bundles/prod?X-Amz-Security-Token=*** "
            "(endpoint https://minio.example.com:9000/?token=***)"
        )
