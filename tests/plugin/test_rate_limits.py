"""Rate limits of the device endpoints (spec §2.5, House decisions): per (endpoint, app, device)
and per client IP, the once-per-window rule for ``POST /channel_self`` of the same channel, and
per (operation, app, device) on the public ``/device`` routes.

Each test builds its own app with small limits; it also depends on the ``app`` fixture so the
shared database is emptied afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
from fastapi import FastAPI

from capgo_server.app import create_app
from capgo_server.clock import utcnow
from capgo_server.settings import Settings
from tests.bundles.helpers import create_app as create_capgo_app
from tests.bundles.helpers import create_bundle
from tests.conftest import Account, make_account

DEVICE_LIMIT = 3
IP_LIMIT = 10
APP_ID = "com.limits.app"
DEVICE = "4c1c2e0a-57c4-4d1b-9c60-8e965132ae51"
OTHER_DEVICE = "9f0d8a3e-1b2c-4d5e-8f90-123456789abc"


@dataclass(frozen=True)
class Limited:
    application: FastAPI
    client: httpx.AsyncClient
    owner: Account

    def client_from(self, ip: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.application, client=(ip, 4242))
        return httpx.AsyncClient(transport=transport, base_url="http://capgo.test")


@pytest_asyncio.fixture(loop_scope="session")
async def limited(app: FastAPI, database_url: str, tmp_path: Path) -> AsyncIterator[Limited]:
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path / "limited",
        secret="x" * 32,
        rate_limit_device_per_minute=DEVICE_LIMIT,
        rate_limit_ip_per_minute=IP_LIMIT,
        rate_limit_channel_self_same_channel_seconds=60,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        owner = await make_account(application, "dora@example.com", "Dora Org")
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://capgo.test") as http:
            await create_capgo_app(http, owner, APP_ID)
            await create_bundle(http, owner, "1.0.0", APP_ID)
            for name, public in (("production", True), ("beta", False), ("alpha", False)):
                response = await http.post(
                    "/channel",
                    json={
                        "app_id": APP_ID,
                        "channel": name,
                        "version": "1.0.0",
                        "public": public,
                        "allow_device_self_set": True,
                    },
                    headers=owner.headers,
                )
                assert response.status_code == 200, response.text
            yield Limited(application=application, client=http, owner=owner)


def device_body(device_id: str = DEVICE, **fields: Any) -> dict[str, Any]:
    """An Android plugin 7.0.0 on bundle 1.0.0."""
    return {
        "platform": "android",
        "device_id": device_id,
        "app_id": APP_ID,
        "custom_id": "",
        "version_build": "1.0.0",
        "version_code": "1",
        "version_os": "13",
        "version_name": "1.0.0",
        "plugin_version": "7.0.0",
        "is_emulator": False,
        "is_prod": True,
        **fields,
    }


NO_NEW = {
    "error": "no_new_version_available",
    "message": "No new version available",
    "kind": "up_to_date",
}


async def ask(client: httpx.AsyncClient, device_id: str = DEVICE, path: str = "/updates") -> Any:
    return await client.post(path, json=device_body(device_id))


def assert_rate_limited(response: httpx.Response, **more_info: Any) -> None:
    """429 ``too_many_requests`` with ``Retry-After`` (seconds, also in ``moreInfo``)."""
    assert response.status_code == 429
    retry_after = response.headers.get("retry-after")
    assert retry_after is not None
    assert retry_after.isdigit()
    assert 1 <= int(retry_after) <= 60
    assert response.json() == {
        "error": "too_many_requests",
        "message": "You are being rate limited",
        "moreInfo": {"retry_after": int(retry_after), **more_info},
    }


def assert_no_new_version(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    body = response.json()
    assert {k: body.get(k) for k in NO_NEW} == NO_NEW


class TestPerDevice:
    async def test_over_the_limit_is_429_with_retry_after(self, limited: Limited) -> None:
        for _ in range(DEVICE_LIMIT):
            assert_no_new_version(await ask(limited.client))
        assert_rate_limited(await ask(limited.client), app_id=APP_ID, device_id=DEVICE)

    async def test_the_plugin_alias_shares_the_bucket_and_case_does_not_matter(
        self, limited: Limited
    ) -> None:
        assert_no_new_version(await ask(limited.client, DEVICE.upper()))
        assert_no_new_version(await ask(limited.client, path="/plugin/updates"))
        assert_no_new_version(await ask(limited.client))
        assert_rate_limited(
            await ask(limited.client, DEVICE.upper(), path="/plugin/updates"),
            app_id=APP_ID,
            device_id=DEVICE,
        )

    async def test_two_devices_under_the_limit_are_fine(self, limited: Limited) -> None:
        for _ in range(DEVICE_LIMIT):
            assert_no_new_version(await ask(limited.client, DEVICE))
            assert_no_new_version(await ask(limited.client, OTHER_DEVICE))

    async def test_each_endpoint_has_its_own_bucket(self, limited: Limited) -> None:
        for _ in range(DEVICE_LIMIT):
            assert_no_new_version(await ask(limited.client))
        assert_rate_limited(await ask(limited.client), app_id=APP_ID, device_id=DEVICE)
        stats = await limited.client.post("/stats", json=device_body(action="ping"))
        assert (stats.status_code, stats.json()) == (200, {"status": "ok"})

    async def test_malformed_bodies_still_get_their_400(self, limited: Limited) -> None:
        response = await limited.client.post(
            "/updates", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert (response.status_code, response.json()["error"]) == (400, "invalid_json_body")
        response = await limited.client.post("/updates", json=["a", 1])
        assert (response.status_code, response.json()["error"]) == (400, "invalid_json_body")


class TestPerClientIp:
    async def test_rotating_device_ids_still_hits_the_ip_limit(self, limited: Limited) -> None:
        devices = [f"00000000-0000-4000-8000-{i:012d}" for i in range(IP_LIMIT + 1)]
        for device in devices[:IP_LIMIT]:
            assert_no_new_version(await ask(limited.client, device))
        assert_rate_limited(await ask(limited.client, devices[IP_LIMIT]))

    async def test_the_ip_limit_spans_every_device_endpoint(self, limited: Limited) -> None:
        for i in range(IP_LIMIT):
            device = f"00000000-0000-4000-8000-{i:012d}"
            if i % 2:
                assert_no_new_version(await ask(limited.client, device))
            else:
                stats = await limited.client.post("/stats", json=device_body(device, action="ping"))
                assert stats.status_code == 200, stats.text
        response = await limited.client.get(
            "/channel_self", params={"app_id": APP_ID, "platform": "android"}
        )
        assert_rate_limited(response)

    async def test_other_addresses_are_not_affected(self, limited: Limited) -> None:
        for i in range(IP_LIMIT):
            await ask(limited.client, f"00000000-0000-4000-8000-{i:012d}")
        assert_rate_limited(await ask(limited.client, OTHER_DEVICE))
        async with limited.client_from("203.0.113.9") as other:
            assert_no_new_version(await ask(other, OTHER_DEVICE))

    async def test_forwarded_headers_do_not_escape_it(self, limited: Limited) -> None:
        for i in range(IP_LIMIT):
            await ask(limited.client, f"00000000-0000-4000-8000-{i:012d}")
        response = await limited.client.post(
            "/updates",
            json=device_body(OTHER_DEVICE),
            headers={"x-forwarded-for": "203.0.113.7", "x-real-ip": "203.0.113.7"},
        )
        assert_rate_limited(response)


class TestChannelSelfSameChannel:
    async def test_the_same_channel_at_most_once_a_minute(self, limited: Limited) -> None:
        body = device_body(channel="beta", plugin_version="5.0.0")
        first = await limited.client.post("/channel_self", json=body)
        assert (first.status_code, first.json()) == (200, {"status": "ok"})
        assert_rate_limited(
            await limited.client.post("/channel_self", json=body),
            app_id=APP_ID,
            device_id=DEVICE,
        )
        other = await limited.client.post("/channel_self", json={**body, "channel": "alpha"})
        assert (other.status_code, other.json()) == (200, {"status": "ok"})

    async def test_other_devices_may_pick_the_same_channel(self, limited: Limited) -> None:
        for device in (DEVICE, OTHER_DEVICE):
            body = device_body(device, channel="beta", plugin_version="5.0.0")
            response = await limited.client.post("/plugin/channel_self", json=body)
            assert (response.status_code, response.json()) == (200, {"status": "ok"})


class TestDeviceApi:
    async def test_per_operation_app_and_device(self, limited: Limited) -> None:
        params = {"app_id": APP_ID, "device_id": DEVICE}
        headers = limited.owner.headers
        for _ in range(DEVICE_LIMIT):
            response = await limited.client.get("/device", params=params, headers=headers)
            assert response.json()["error"] == "device_not_found"
        response = await limited.client.get("/device", params=params, headers=headers)
        assert_rate_limited(response, app_id=APP_ID, device_id=DEVICE)
        other = await limited.client.get(
            "/device", params={**params, "device_id": OTHER_DEVICE}, headers=headers
        )
        assert other.json()["error"] == "device_not_found"
        listing = await limited.client.get("/device", params={"app_id": APP_ID}, headers=headers)
        assert listing.status_code == 200

    async def test_unauthenticated_requests_do_not_use_the_budget(self, limited: Limited) -> None:
        params = {"app_id": APP_ID, "device_id": DEVICE}
        for _ in range(DEVICE_LIMIT + 1):
            response = await limited.client.get("/device", params=params)
            assert response.status_code == 401
        response = await limited.client.get("/device", params=params, headers=limited.owner.headers)
        assert response.json()["error"] == "device_not_found"

    async def test_device_endpoints_do_not_count_against_the_device_api(
        self, limited: Limited
    ) -> None:
        for i in range(IP_LIMIT):
            await ask(limited.client, f"00000000-0000-4000-8000-{i:012d}")
        response = await limited.client.post(
            "/device",
            json={"app_id": APP_ID, "device_id": DEVICE, "channel": "beta"},
            headers=limited.owner.headers,
        )
        assert (response.status_code, response.json()) == (200, {"status": "ok"})


def batch(*devices: str, action: str = "ping") -> list[dict[str, Any]]:
    return [device_body(device, action=action) for device in devices]


async def today_statistics(limited: Limited) -> tuple[int, int]:
    """(monthly active users, installs of 1.0.0) of the app today, as its owner reads them."""
    today = utcnow().date().isoformat()
    period = {"from": today, "to": today}
    headers = limited.owner.headers
    points = await limited.client.get(f"/statistics/app/{APP_ID}", params=period, headers=headers)
    assert points.status_code == 200, points.text
    usage = await limited.client.get(
        f"/statistics/app/{APP_ID}/bundle_usage", params=period, headers=headers
    )
    assert usage.status_code == 200, usage.text
    installs = [d["installs"][-1] for d in usage.json()["datasets"] if d["label"] == "1.0.0"]
    return points.json()[-1]["mau"], sum(installs)


class TestStatsBatches:
    async def test_each_event_counts_against_the_device_limit(self, limited: Limited) -> None:
        response = await limited.client.post("/stats", json=batch(*[DEVICE] * DEVICE_LIMIT))
        assert response.status_code == 200, response.text
        assert {r["status"] for r in response.json()["results"]} == {"ok"}
        single = await limited.client.post("/stats", json=device_body(action="ping"))
        assert_rate_limited(single, app_id=APP_ID, device_id=DEVICE)

    async def test_each_event_counts_against_the_ip_limit(self, limited: Limited) -> None:
        response = await limited.client.post("/stats", json=batch(*[DEVICE] * IP_LIMIT))
        assert response.status_code == 200, response.text
        assert_rate_limited(await ask(limited.client, OTHER_DEVICE))

    async def test_a_batch_larger_than_the_limits_still_passes_in_a_fresh_window(
        self, limited: Limited
    ) -> None:
        # The plugin sends its whole queue at once; refusing it for good would lose it forever.
        response = await limited.client.post("/stats", json=batch(*[DEVICE] * (IP_LIMIT + 5)))
        assert response.status_code == 200, response.text
        assert len(response.json()["results"]) == IP_LIMIT + 5
        assert_rate_limited(await ask(limited.client, OTHER_DEVICE))

    async def test_rotating_device_ids_in_batches_stays_within_the_limits(
        self, limited: Limited
    ) -> None:
        # One client, batches of `set` events each naming a new device: only the first event of
        # an admitted batch counts, and the IP limit admits two such batches (8, then 16 > 10).
        created = 0
        for attempt in range(5):
            devices = [f"0000000{attempt}-0000-4000-8000-{i:012d}" for i in range(8)]
            response = await limited.client.post("/stats", json=batch(*devices, action="set"))
            if attempt < 2:
                assert response.status_code == 200, response.text
                results = response.json()["results"]
                assert [r["status"] for r in results] == ["ok"] + ["error"] * 7
                assert {r["error"] for r in results[1:]} == {"mixed_device_ids"}
                created += 1
            else:
                assert_rate_limited(response)
        listed = await limited.client.get(
            "/device", params={"app_id": APP_ID}, headers=limited.owner.headers
        )
        assert len(listed.json()["data"]) == created == 2
        assert await today_statistics(limited) == (2, 2)
