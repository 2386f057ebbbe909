"""Rate limits (spec §2.5, House decisions): failed authentications per client, requests per key.

Each test builds its own app with small limits; it also depends on the ``app`` fixture so the
shared database is emptied afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest_asyncio
from fastapi import FastAPI

from capgo_server.app import create_app
from capgo_server.settings import Settings
from tests.auth.helpers import auth
from tests.conftest import Account, error_of, make_account, make_key

FAILED_AUTH_LIMIT = 3
PER_KEY_LIMIT = 5


@dataclass(frozen=True)
class Limited:
    client: httpx.AsyncClient
    owner: Account


@pytest_asyncio.fixture(loop_scope="session")
async def limited(app: FastAPI, database_url: str, tmp_path: Path) -> AsyncIterator[Limited]:
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path / "limited",
        secret="x" * 32,
        rate_limit_failed_auth=FAILED_AUTH_LIMIT,
        rate_limit_api_key_per_minute=PER_KEY_LIMIT,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        owner = await make_account(application, "carol@example.com", "Carol Org")
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://capgo.test") as http:
            yield Limited(client=http, owner=owner)


def assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429
    body = response.json()
    assert body["error"] == "too_many_requests"
    assert body["message"] == "You are being rate limited"
    retry_after = response.headers.get("retry-after")
    assert retry_after is not None
    assert retry_after.isdigit()
    assert int(retry_after) >= 1


class TestFailedAuthenticationLimit:
    async def test_blocks_the_client_even_with_a_valid_key(self, limited: Limited) -> None:
        for _ in range(FAILED_AUTH_LIMIT):
            response = await limited.client.get("/organization", headers=auth(str(uuid.uuid4())))
            assert error_of(response) == (401, "invalid_apikey")
        assert_rate_limited(
            await limited.client.get("/organization", headers=limited.owner.headers)
        )
        assert_rate_limited(await limited.client.get("/apikey", headers=limited.owner.headers))

    async def test_forwarded_headers_do_not_escape_the_block(self, limited: Limited) -> None:
        for _ in range(FAILED_AUTH_LIMIT):
            await limited.client.get("/organization", headers=auth(str(uuid.uuid4())))
        spoofed = {
            **limited.owner.headers,
            "x-forwarded-for": "203.0.113.7",
            "x-real-ip": "203.0.113.7",
            "cf-connecting-ip": "203.0.113.7",
        }
        assert_rate_limited(await limited.client.get("/organization", headers=spoofed))

    async def test_missing_keys_count_as_failures(self, limited: Limited) -> None:
        for _ in range(FAILED_AUTH_LIMIT):
            response = await limited.client.get("/apikey")
            assert error_of(response) == (401, "no_jwt_apikey_or_subkey")
        assert_rate_limited(await limited.client.get("/organization"))

    async def test_refused_mode_counts_as_a_failure(self, limited: Limited) -> None:
        read = await make_key(limited.client, limited.owner, mode="read")
        for _ in range(FAILED_AUTH_LIMIT):
            response = await limited.client.get("/apikey", headers=auth(read["key"]))
            assert error_of(response) == (401, "invalid_apikey")
        assert_rate_limited(await limited.client.get("/organization", headers=auth(read["key"])))

    async def test_below_the_limit_valid_keys_work(self, limited: Limited) -> None:
        for _ in range(FAILED_AUTH_LIMIT - 1):
            await limited.client.get("/organization", headers=auth(str(uuid.uuid4())))
        response = await limited.client.get("/organization", headers=limited.owner.headers)
        assert response.status_code == 200
        assert [org["id"] for org in response.json()] == [limited.owner.org_id]


class TestPerKeyLimit:
    async def test_over_the_limit_is_429(self, limited: Limited) -> None:
        for _ in range(PER_KEY_LIMIT):
            response = await limited.client.get("/organization", headers=limited.owner.headers)
            assert response.status_code == 200
        assert_rate_limited(
            await limited.client.get("/organization", headers=limited.owner.headers)
        )

    async def test_counts_every_route(self, limited: Limited) -> None:
        for path in (["/organization", "/apikey"] * PER_KEY_LIMIT)[:PER_KEY_LIMIT]:
            response = await limited.client.get(path, headers=limited.owner.headers)
            assert response.status_code == 200
        assert_rate_limited(await limited.client.get("/apikey", headers=limited.owner.headers))

    async def test_other_keys_are_not_affected(self, limited: Limited) -> None:
        other = await make_key(limited.client, limited.owner, name="other")
        for _ in range(PER_KEY_LIMIT):
            await limited.client.get("/organization", headers=limited.owner.headers)
        assert_rate_limited(
            await limited.client.get("/organization", headers=limited.owner.headers)
        )
        response = await limited.client.get("/organization", headers=auth(other["key"]))
        assert response.status_code == 200
