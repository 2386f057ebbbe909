"""A real ``capgo-server serve`` process on the test session's database, with one account.

For tests whose behaviour lives in the server layer (uvicorn, sockets, timeouts, forwarded
headers, the event loop): they talk to the server over TCP, as a device or a CI job does.

    with live_server(database_url, tmp_path, CAPGO_SOME_SETTING="1") as live:
        with live.http() as http:
            http.get("/app")
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import empty_all_tables
from tests.test_cli import account_of, cli_env
from tests.test_serve import Server, free_port, running_server
from tests.warm_cli import run_cli_warm


@dataclass
class LiveServer:
    server: Server
    env: dict[str, str]
    cwd: Path
    key: str
    org_id: str
    user_id: str

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def http(self, key: str | None = None, timeout: float = 30) -> httpx.Client:
        """A client sending ``key`` (default: the account's ``all`` key)."""
        return httpx.Client(
            base_url=self.base_url, headers={"authorization": key or self.key}, timeout=timeout
        )

    def create_user(self, email: str) -> dict[str, str]:
        """Another user (and their organization) made by ``create-user``."""
        return account_of(run_cli_warm("create-user", email, env=self.env, cwd=self.cwd))


@contextmanager
def live_server(
    database_url: str, cwd: Path, *serve_options: str, **settings: str
) -> Iterator[LiveServer]:
    """``serve`` on a free port of 127.0.0.1 with ``settings`` (``CAPGO_*`` variables) and an
    account ``owner@example.com``; the tables are emptied afterwards. Its public URL is its own
    address unless ``settings`` name another (``CAPGO_PUBLIC_URL``)."""
    data_dir = cwd / "data"
    port = free_port()
    settings = {"CAPGO_PUBLIC_URL": f"http://127.0.0.1:{port}", **settings}
    env = cli_env(data_dir, CAPGO_DATABASE_URL=database_url, **settings)
    try:
        with running_server(env, cwd, *serve_options, port=port) as server:
            account = account_of(run_cli_warm("create-user", "owner@example.com", env=env, cwd=cwd))
            yield LiveServer(
                server=server,
                env=env,
                cwd=cwd,
                key=account["apikey"],
                org_id=account["org_id"],
                user_id=account["user_id"],
            )
    finally:
        asyncio.run(empty_all_tables(database_url))
