"""Which public channel a device gets, end to end: channels set up through ``POST /channel``
exactly as a user would (``electron`` left at its default unless a test says otherwise), then
asked for through ``/updates`` and ``/channel_self`` by an Android, an iOS and an Electron
device. The House decision is in docs/channels.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.conftest import Account
from tests.live import live_server
from tests.plugin.updates_support import APP_ID, DEVICE, base, offered, refused

#: Capgo's test seed as a user types it: public API fields only, production made public first.
SEED_LAYOUT = (
    ("production", "1.0.0", {"ios": False, "android": True}),
    ("development", "1.359.0", {"ios": True, "android": False}),
)
BUNDLES = {"1.0.0": "3885ee49", "1.359.0": "9f74e70a", "1.360.0": "44913a9f"}
NO_CHANNEL = refused("no_channel", "no default channel or override", "blocked")


def bundle_body(version: str) -> dict[str, Any]:
    return {
        "app_id": APP_ID,
        "version": version,
        "external_url": f"https://cdn.example.com/{version}.zip",
        "checksum": BUNDLES[version],
    }


def channel_body(name: str, version: str | None = None, **fields: Any) -> dict[str, Any]:
    body = {"app_id": APP_ID, "channel": name, "public": True, **fields}
    if version is not None:
        body["version"] = version
    return body


def device(platform: str) -> dict[str, Any]:
    """A device on ``platform`` running an old bundle, so any channel bundle is an update."""
    return base(platform=platform, version_name="0.0.1", channel=None)


class Api:
    """The calls of these tests on the ASGI client."""

    def __init__(self, client: httpx.AsyncClient, owner: Account) -> None:
        self.client = client
        self.owner = owner

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.post(path, json=body, headers=self.owner.headers)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    async def channel(self, name: str, version: str | None = None, **fields: Any) -> None:
        answer = await self.post("/channel", channel_body(name, version, **fields))
        # The reply names the channel and whether it is public (what the official CLI reads).
        assert answer["status"] == "ok", answer
        assert isinstance(answer["id"], int), answer
        assert answer["public"] == fields.get("public", True), answer

    async def offer(self, platform: str) -> dict[str, Any]:
        return await self.post("/updates", device(platform))

    async def default_channel(self, platform: str) -> dict[str, Any]:
        response = await self.client.put("/channel_self", json=device(platform))
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    async def selectable(self, platform: str) -> list[tuple[str, bool]]:
        query = {"app_id": APP_ID, "platform": platform, "is_emulator": "false", "is_prod": "true"}
        response = await self.client.get("/channel_self", params=query)
        assert response.status_code == 200, response.text
        return [(c["name"], c["public"]) for c in response.json()]


@pytest_asyncio.fixture(loop_scope="session")
async def api(client: httpx.AsyncClient, alice: Account) -> Api:
    api = Api(client, alice)
    await api.post("/app", {"app_id": APP_ID, "name": "Demo", "owner_org": alice.org_id})
    for version in BUNDLES:
        await api.post("/bundle", bundle_body(version))
    return api


async def seed_layout(api: Api) -> None:
    for name, version, platforms in SEED_LAYOUT:
        await api.channel(name, version, **platforms)


class TestSeedLayout:
    async def test_each_mobile_platform_gets_its_public_channel(self, api: Api) -> None:
        await seed_layout(api)
        assert await api.offer("android") == offered("1.0.0")
        assert await api.offer("ios") == offered("1.359.0")

    async def test_electron_gets_the_oldest_public_channel(self, api: Api) -> None:
        await seed_layout(api)
        assert await api.offer("electron") == offered("1.0.0")

    @pytest.mark.parametrize(
        ("platform", "channel"),
        [("android", "production"), ("ios", "development"), ("electron", "production")],
    )
    async def test_channel_self_names_the_same_channel(
        self, api: Api, platform: str, channel: str
    ) -> None:
        await seed_layout(api)
        assert await api.default_channel(platform) == {"channel": channel, "status": "default"}

    async def test_channel_self_lists_each_platform_its_public_channel(self, api: Api) -> None:
        await seed_layout(api)
        assert await api.selectable("android") == [("production", True)]
        assert await api.selectable("ios") == [("development", True)]
        # Electron is open on both; only the one Electron devices get is offered as public.
        assert await api.selectable("electron") == [("production", True)]

    async def test_the_reverse_order_gives_electron_development(self, api: Api) -> None:
        for name, version, platforms in reversed(SEED_LAYOUT):
            await api.channel(name, version, **platforms)
        assert await api.offer("android") == offered("1.0.0")
        assert await api.offer("ios") == offered("1.359.0")
        assert await api.offer("electron") == offered("1.359.0")

    async def test_a_version_change_keeps_the_layout(self, api: Api) -> None:
        await seed_layout(api)
        await api.channel("production", "1.360.0")
        await api.channel("development", "1.359.0")
        assert await api.offer("android") == offered("1.360.0")
        assert await api.offer("ios") == offered("1.359.0")
        assert await api.offer("electron") == offered("1.360.0")


class TestElectronChoice:
    async def test_explicit_electron_takes_it_from_the_other_public_channels(
        self, api: Api
    ) -> None:
        await seed_layout(api)
        await api.channel("development", electron=True)
        assert await api.offer("electron") == offered("1.359.0")
        # production stays public for Android.
        assert await api.offer("android") == offered("1.0.0")
        assert await api.selectable("electron") == [("development", True)]

    async def test_electron_false_leaves_electron_devices_without_a_channel(self, api: Api) -> None:
        await api.channel("production", "1.0.0", ios=False, android=True, electron=False)
        await api.channel("development", "1.359.0", ios=True, android=False, electron=False)
        assert await api.offer("electron") == NO_CHANNEL
        assert await api.offer("android") == offered("1.0.0")

    async def test_an_electron_only_public_channel_serves_electron_and_spares_mobile(
        self, api: Api
    ) -> None:
        await seed_layout(api)
        await api.channel("desktop", "1.360.0", ios=False, android=False)
        assert await api.offer("electron") == offered("1.360.0")
        assert await api.offer("android") == offered("1.0.0")
        assert await api.offer("ios") == offered("1.359.0")
        # Promoting a bundle on a mobile channel takes nothing back from it.
        await api.channel("production", "1.359.0")
        assert await api.offer("electron") == offered("1.360.0")

    async def test_explicit_electron_on_a_private_channel_takes_nothing(self, api: Api) -> None:
        await seed_layout(api)
        await api.channel("beta", "1.360.0", public=False, electron=True)
        assert await api.offer("electron") == offered("1.0.0")


class TestNoChannel:
    async def test_a_platform_no_public_channel_serves_gets_no_channel(self, api: Api) -> None:
        await api.channel("production", "1.0.0", ios=False, android=True, electron=False)
        assert await api.offer("ios") == NO_CHANNEL
        assert await api.default_channel("ios") == {
            "error": "channel_not_found",
            "message": "Cannot find channel",
        }


def test_seed_layout_over_a_live_server(database_url: str, tmp_path: Path) -> None:
    """The issue's report, replayed against ``serve`` as a user's script and devices would."""
    with live_server(database_url, tmp_path) as live, live.http() as http:
        app = {"app_id": APP_ID, "name": "Demo", "owner_org": live.org_id}
        assert http.post("/app", json=app).status_code == 200
        for version in BUNDLES:
            assert http.post("/bundle", json=bundle_body(version)).status_code == 200
        for name, version, platforms in SEED_LAYOUT:
            response = http.post("/channel", json=channel_body(name, version, **platforms))
            assert response.status_code == 200, response.text
        for platform, version in (("android", "1.0.0"), ("ios", "1.359.0"), ("electron", "1.0.0")):
            response = http.post("/updates", json={**device(platform), "device_id": DEVICE})
            assert response.status_code == 200, response.text
            assert response.json() == offered(version)
