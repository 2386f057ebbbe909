"""Forwarded headers (``capgo_server.forwarded``, ``CAPGO_TRUSTED_PROXIES``), against a real
``capgo-server serve`` process: the client address is the TCP peer's unless the peer is a proxy
the operator named. It is what the failed-authentication lockout, the per-IP device limit and the
access log key on, so a client that chose it would escape the first two and forge the third.

A local forwarder (a TCP tunnel, a proxy passing headers through) makes every client's peer
127.0.0.1, which uvicorn trusts by default: these tests send from 127.0.0.1.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from fastapi import FastAPI

from capgo_server.app import create_app
from capgo_server.settings import Settings
from tests.conftest import error_of, make_account
from tests.live import LiveServer, live_server
from tests.plugin.updates_support import not_registered
from tests.test_cli import cli_env, error_line, run_cli

LIMIT = 3
LIMITS = {"CAPGO_RATE_LIMIT_FAILED_AUTH": str(LIMIT), "CAPGO_RATE_LIMIT_IP_PER_MINUTE": str(LIMIT)}
TRUSTING_LOOPBACK = {**LIMITS, "CAPGO_TRUSTED_PROXIES": "127.0.0.1"}


def forwarded_for(address: str) -> dict[str, str]:
    return {"x-forwarded-for": address, "x-forwarded-proto": "https"}


def bad_key() -> dict[str, str]:
    return {"authorization": str(uuid.uuid4())}


def device_body(device_id: str) -> dict[str, Any]:
    return {
        "platform": "android",
        "device_id": device_id,
        "app_id": "com.forwarded.app",
        "version_build": "1.0.0",
        "version_name": "1.0.0",
        "plugin_version": "7.0.0",
        "is_emulator": False,
        "is_prod": True,
    }


def ask_for_update(http: httpx.Client, **headers: str) -> httpx.Response:
    return http.post("/updates", json=device_body(str(uuid.uuid4())), headers=headers)


def assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    retry_after = response.headers["retry-after"]
    assert response.json() == {
        "error": "too_many_requests",
        "message": "You are being rate limited",
        "moreInfo": {"retry_after": int(retry_after)},
    }


def assert_not_rate_limited(response: httpx.Response) -> None:
    """Past the limits: the app is unknown to this server, which Capgo answers so."""
    assert response.status_code == 429, response.text
    assert response.json() == not_registered("com.forwarded.app")


def fail_authentication(http: httpx.Client, **headers: str) -> None:
    """Use up the failed-authentication budget (each attempt refused as a bad key)."""
    for _ in range(LIMIT):
        response = http.get("/organization", headers={**bad_key(), **headers})
        assert error_of(response) == (401, "invalid_apikey")


def access_log(live: LiveServer) -> list[str]:
    return [line for line in live.server.output().splitlines() if '"GET /organization' in line]


class TestWithoutTrustedProxies:
    """The default: no peer's forwarded headers are believed, loopback's included."""

    def test_rotating_x_forwarded_for_does_not_escape_the_failed_auth_lockout(
        self, database_url: str, tmp_path: Path
    ) -> None:
        with live_server(database_url, tmp_path, **LIMITS) as live, live.http() as http:
            for n in range(LIMIT):
                response = http.get(
                    "/organization", headers={**bad_key(), **forwarded_for(f"203.0.113.{n}")}
                )
                assert error_of(response) == (401, "invalid_apikey")
            # The owner's valid key, from yet another forwarded address, then with none.
            assert_rate_limited(http.get("/organization", headers=forwarded_for("203.0.113.99")))
            assert_rate_limited(http.get("/organization"))
            log = access_log(live)
        # The log records the real peer, never an address the client chose.
        assert len(log) == LIMIT + 2
        assert all("127.0.0.1:" in line and "203.0.113." not in line for line in log), log

    def test_naming_its_own_address_gives_a_client_no_fresh_budget(
        self, database_url: str, tmp_path: Path
    ) -> None:
        """Under ``serve`` nothing outside the app rewrites addresses, so a client naming its
        own address is that client still, not an "unknown" one with a budget of its own."""
        with live_server(database_url, tmp_path, **LIMITS) as live, live.http() as http:
            fail_authentication(http)
            assert_rate_limited(http.get("/organization", headers=forwarded_for("127.0.0.1")))
            assert_rate_limited(
                http.get("/organization", headers={**bad_key(), **forwarded_for("127.0.0.1")})
            )

    def test_rotating_x_forwarded_for_does_not_escape_the_per_ip_device_limit(
        self, database_url: str, tmp_path: Path
    ) -> None:
        with live_server(database_url, tmp_path, **LIMITS) as live, live.http() as http:
            for n in range(LIMIT):
                assert_not_rate_limited(ask_for_update(http, **forwarded_for(f"203.0.113.{n}")))
            assert_rate_limited(ask_for_update(http, **forwarded_for("203.0.113.99")))

    def test_an_invalid_trusted_proxy_is_refused_at_start(self, tmp_path: Path) -> None:
        env = cli_env(tmp_path / "data", CAPGO_TRUSTED_PROXIES="127.0.0.1, proxy.internal")
        line = error_line(run_cli("serve", env=env, cwd=tmp_path))
        assert line == (
            "error: invalid setting: CAPGO_TRUSTED_PROXIES: Value error, 'proxy.internal' is "
            "not an IP address or network"
        )


class TestWithTrustedProxies:
    """``CAPGO_TRUSTED_PROXIES=127.0.0.1``: the address that proxy forwards is the client's."""

    def test_forwarded_addresses_are_locked_out_separately(
        self, database_url: str, tmp_path: Path
    ) -> None:
        with live_server(database_url, tmp_path, **TRUSTING_LOOPBACK) as live, live.http() as http:
            fail_authentication(http, **forwarded_for("203.0.113.1"))
            assert_rate_limited(http.get("/organization", headers=forwarded_for("203.0.113.1")))
            other = http.get("/organization", headers=forwarded_for("203.0.113.2"))
            assert other.status_code == 200, other.text
            assert [org["id"] for org in other.json()] == [live.org_id]
            # The proxy's own requests are its own.
            assert http.get("/organization").status_code == 200
            log = access_log(live)
        assert sum('203.0.113.1:0 - "GET /organization' in line for line in log) == LIMIT + 1
        assert sum('203.0.113.2:0 - "GET /organization' in line for line in log) == 1

    def test_a_client_cannot_escape_by_prepending_addresses(
        self, database_url: str, tmp_path: Path
    ) -> None:
        # The proxy appends the peer it saw; what the client wrote before that is not believed.
        with live_server(database_url, tmp_path, **TRUSTING_LOOPBACK) as live, live.http() as http:
            fail_authentication(http, **forwarded_for("203.0.113.7"))
            chain = forwarded_for("198.51.100.1, 203.0.113.7")
            assert_rate_limited(http.get("/organization", headers=chain))

    def test_forwarded_addresses_have_their_own_device_limit(
        self, database_url: str, tmp_path: Path
    ) -> None:
        with live_server(database_url, tmp_path, **TRUSTING_LOOPBACK) as live, live.http() as http:
            for _ in range(LIMIT):
                assert_not_rate_limited(ask_for_update(http, **forwarded_for("203.0.113.1")))
            assert_rate_limited(ask_for_update(http, **forwarded_for("203.0.113.1")))
            assert_not_rate_limited(ask_for_update(http, **forwarded_for("203.0.113.2")))


@pytest_asyncio.fixture(loop_scope="session")
async def under_plain_uvicorn(
    app: FastAPI, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """The app as ``uvicorn --factory capgo_server.app:create_app`` loads it: wrapped in
    uvicorn's own proxy handling, which trusts loopback peers by default. (It depends on the
    ``app`` fixture so the shared database is emptied afterwards.)"""
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path / "plain",
        secret="x" * 32,
        rate_limit_failed_auth=LIMIT,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        owner = await make_account(application, "erin@example.com", "Erin Org")
        config = uvicorn.Config(lambda: application, factory=True, log_config=None)
        config.load()
        transport = httpx.ASGITransport(app=config.loaded_app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://capgo.test") as http:
            http.headers.update(owner.headers)
            yield http


class TestUnderPlainUvicorn:
    async def test_rotating_x_forwarded_for_does_not_escape_the_failed_auth_lockout(
        self, under_plain_uvicorn: httpx.AsyncClient
    ) -> None:
        http = under_plain_uvicorn
        for n in range(LIMIT):
            response = await http.get(
                "/organization", headers={**bad_key(), **forwarded_for(f"203.0.113.{n}")}
            )
            assert error_of(response) == (401, "invalid_apikey")
        assert_rate_limited(await http.get("/organization", headers=forwarded_for("203.0.113.99")))
