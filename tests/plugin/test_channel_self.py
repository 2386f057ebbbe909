"""``/channel_self``: devices choosing their channel, for old plugins (a stored override) and new
ones (the device keeps it) (spec §5.5)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from capgo_server.models import App, ChannelOverride, DeviceActivity, StatsEvent
from capgo_server.settings import Settings
from tests.apps.helpers import rows
from tests.conftest import Account
from tests.plugin.seed import APP_ID, DEVICE, base_data, channel_ids, save_channel, seed_app
from tests.plugin.updates_support import not_registered

OK = {"status": "ok"}
NEW = {"status": "ok", "allowSet": True}
UNKNOWN_APP = "com.nobody.here"
CANNOT_OVERRIDE = {
    "error": "cannot_override",
    "message": "Cannot change device override current channel don't allow it",
}
OLD_PLUGIN = "7.0.0"
NEW_PLUGIN = "7.34.0"


@pytest.fixture
async def seeded(client: httpx.AsyncClient, alice: Account) -> str:
    await seed_app(client, alice)
    return APP_ID


def body(**fields: Any) -> dict[str, Any]:
    """The plugin's body (an old 7.0.0 plugin on Android unless told); ``None`` drops a field."""
    data = base_data(**fields)
    return {k: v for k, v in data.items() if v is not None}


def query(**fields: Any) -> dict[str, str]:
    """``body`` as the plugin sends it on the query string."""
    data = body(**fields)
    data.pop("channel", None)
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in data.items()}


async def overrides(app: FastAPI) -> dict[str, str]:
    """device → channel name of the app's overrides."""
    names = {v: k for k, v in (await channel_ids(app)).items()}
    return {o.device_id: names[o.channel_id] for o in await rows(app, ChannelOverride)}


async def override_count(app: FastAPI) -> int:
    (row,) = await rows(app, App, app_id=APP_ID)
    count: int = row.channel_device_count
    return count


async def pin(client: httpx.AsyncClient, owner: Account, channel: str) -> None:
    """An override made by the owner through ``POST /device``."""
    payload = {"app_id": APP_ID, "device_id": DEVICE, "channel": channel}
    response = await client.post("/device", json=payload, headers=owner.headers)
    assert response.status_code == 200, response.text


def channel_error(code: str, message: str, channel: str) -> dict[str, Any]:
    return {"error": code, "message": message, "channel": channel, "app_id": APP_ID}


class TestParsing:
    async def test_unparseable_json(self, client: httpx.AsyncClient, seeded: str) -> None:
        for method in ("POST", "PUT"):
            response = await client.request(
                method, "/channel_self", content=b"{nope", headers={"content-type": "a/json"}
            )
            assert response.status_code == 400
            assert response.json() == {
                "error": "invalid_json_parse_body",
                "message": "Invalid JSON body",
                "moreInfo": {},
            }

    @pytest.mark.parametrize(
        ("payload", "code", "message"),
        [
            ({}, "invalid_json_body", "Cannot parse body"),
            (body(device_id=None), "missing_device_id", "Cannot find device_id"),
            (body(app_id=None), "missing_app_id", "Cannot find app_id"),
            (
                body(version_build="invalid_version"),
                "semver_error",
                "Native version: invalid_version doesn't follow semver convention, please "
                "check https://capgo.app/semver_tester/ to learn more about semver usage in "
                "Capgo",
            ),
        ],
    )
    async def test_bodies_are_checked_first(
        self, client: httpx.AsyncClient, seeded: str, payload: Any, code: str, message: str
    ) -> None:
        for method in ("POST", "PUT"):
            response = await client.request(method, "/channel_self", json=payload)
            assert response.status_code == 400
            assert response.json() == {"error": code, "message": message, "moreInfo": {}}

    async def test_a_bad_platform_is_invalid(self, client: httpx.AsyncClient, seeded: str) -> None:
        response = await client.post("/channel_self", json=body(platform="windows"))
        assert response.status_code == 400
        payload = response.json()
        assert (payload["error"], payload["message"]) == ("invalid_json_body", "Cannot parse body")
        assert [e["loc"] for e in payload["moreInfo"]["parseResult"]] == [["platform"]]

    async def test_delete_without_parameters(self, client: httpx.AsyncClient, seeded: str) -> None:
        response = await client.delete("/channel_self")
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_query_parameters",
            "message": "Cannot parse body",
            "moreInfo": {},
        }

    async def test_unknown_apps_are_told_to_back_off(
        self, client: httpx.AsyncClient, seeded: str
    ) -> None:
        refused = not_registered(UNKNOWN_APP)
        responses = [
            await client.post("/channel_self", json=body(app_id=UNKNOWN_APP, channel="beta")),
            await client.put("/channel_self", json=body(app_id=UNKNOWN_APP)),
            await client.delete("/channel_self", params=query(app_id=UNKNOWN_APP)),
        ]
        assert [(r.status_code, r.json()) for r in responses] == [(429, refused)] * 3


class TestSetOldPlugin:
    async def test_missing_channel(self, client: httpx.AsyncClient, seeded: str) -> None:
        response = await client.post("/channel_self", json=body(channel=None))
        assert response.status_code == 200
        assert response.json() == {
            "error": "missing_channel",
            "message": "Cannot find channel in body",
        }

    async def test_unknown_channel(self, client: httpx.AsyncClient, seeded: str) -> None:
        response = await client.post("/channel_self", json=body(channel="nope"))
        assert response.status_code == 200
        assert response.json() == channel_error("channel_not_found", "Cannot find channel", "nope")

    async def test_a_public_channel_without_self_set(
        self, client: httpx.AsyncClient, alice: Account, seeded: str
    ) -> None:
        await save_channel(client, alice, APP_ID, "production", allow_device_self_set=False)
        response = await client.post("/channel_self", json=body(channel="production"))
        assert response.status_code == 200
        assert response.json() == channel_error(
            "public_channel_self_set_not_allowed",
            "This channel is public and does not allow device self-assignment. Unset the "
            "channel and the device will automatically use the public channel.",
            "production",
        )

    async def test_a_private_channel_without_self_set(
        self, client: httpx.AsyncClient, alice: Account, seeded: str
    ) -> None:
        await save_channel(client, alice, APP_ID, "beta", allow_device_self_set=False)
        response = await client.post("/channel_self", json=body(channel="beta"))
        assert response.status_code == 200
        assert response.json() == channel_error(
            "channel_self_set_not_allowed",
            "This channel does not allow devices to self associate",
            "beta",
        )

    async def test_a_private_channel_is_stored_as_an_override(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, seeded: str
    ) -> None:
        response = await client.post("/channel_self", json=body(channel="beta"))
        assert (response.status_code, response.json()) == (200, OK)
        (row,) = await rows(app, ChannelOverride)
        assert (row.device_id, row.owner_org) == (DEVICE, alice.org_id)
        assert await overrides(app) == {DEVICE: "beta"}
        assert await override_count(app) == 1
        logged = [(e.action, e.version_name) for e in await rows(app, StatsEvent)]
        assert logged == [("setChannel", "1.0.0")]
        assert len(await rows(app, DeviceActivity, app_id=APP_ID)) == 1

    async def test_moving_keeps_one_override(
        self, client: httpx.AsyncClient, app: FastAPI, seeded: str
    ) -> None:
        for channel in ("beta", "electron_only"):
            response = await client.post("/plugin/channel_self", json=body(channel=channel))
            assert (response.status_code, response.json()) == (200, OK)
        assert await overrides(app) == {DEVICE: "electron_only"}
        assert await override_count(app) == 1

    async def test_the_main_channel_removes_the_override(
        self, client: httpx.AsyncClient, app: FastAPI, seeded: str
    ) -> None:
        await client.post("/channel_self", json=body(channel="beta"))
        response = await client.post("/channel_self", json=body(channel="production"))
        assert (response.status_code, response.json()) == (200, OK)
        assert await overrides(app) == {}
        assert await override_count(app) == 0

    async def test_an_override_that_forbids_self_set_stays(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, seeded: str
    ) -> None:
        await save_channel(client, alice, APP_ID, "no_access", allow_device_self_set=False)
        await pin(client, alice, "no_access")
        response = await client.post("/channel_self", json=body(channel="beta"))
        assert (response.status_code, response.json()) == (200, CANNOT_OVERRIDE)
        assert await overrides(app) == {DEVICE: "no_access"}

    async def test_the_same_channel_twice_within_a_minute_is_rate_limited(
        self, client: httpx.AsyncClient, app: FastAPI, seeded: str
    ) -> None:
        first = await client.post("/channel_self", json=body(channel="beta"))
        again = await client.post("/channel_self", json=body(channel="beta"))
        assert (first.status_code, again.status_code) == (200, 429)
        assert again.json()["error"] == "too_many_requests"
        assert int(again.headers["retry-after"]) > 0
        assert await overrides(app) == {DEVICE: "beta"}


class TestSameChannelAgain:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        """The once-a-minute rule for the same channel off, to reach the handler twice."""
        return settings.model_copy(update={"rate_limit_channel_self_same_channel_seconds": 0})

    async def test_asking_again_for_the_current_channel_changes_nothing(
        self, client: httpx.AsyncClient, app: FastAPI, seeded: str
    ) -> None:
        for _ in range(2):
            response = await client.post("/channel_self", json=body(channel="beta"))
            assert (response.status_code, response.json()) == (200, OK)
        assert await overrides(app) == {DEVICE: "beta"}
        assert await override_count(app) == 1
        logged = [e.action for e in await rows(app, StatsEvent)]
        assert logged == ["setChannel"]


class TestSetNewPlugin:
    @pytest.mark.parametrize("plugin_version", [NEW_PLUGIN, "6.34.0", "5.34.1", "8.0.0", "9.1.0"])
    async def test_the_device_keeps_its_channel_and_old_overrides_go(
        self, client: httpx.AsyncClient, app: FastAPI, seeded: str, plugin_version: str
    ) -> None:
        await client.post("/channel_self", json=body(channel="electron_only"))
        assert await override_count(app) == 1
        response = await client.post(
            "/channel_self", json=body(channel="beta", plugin_version=plugin_version)
        )
        assert (response.status_code, response.json()) == (200, NEW)
        assert await overrides(app) == {}
        assert await override_count(app) == 0

    @pytest.mark.parametrize("plugin_version", ["4.0.0", None])
    async def test_majors_capgo_does_not_check_count_as_new(
        self, client: httpx.AsyncClient, app: FastAPI, seeded: str, plugin_version: str | None
    ) -> None:
        response = await client.post(
            "/channel_self", json=body(channel="beta", plugin_version=plugin_version)
        )
        assert (response.status_code, response.json()) == (200, NEW)
        assert await overrides(app) == {}

    @pytest.mark.parametrize("plugin_version", ["7.33.9", "6.33.0", "5.0.0"])
    async def test_older_plugins_get_an_override(
        self, client: httpx.AsyncClient, app: FastAPI, seeded: str, plugin_version: str
    ) -> None:
        response = await client.post(
            "/channel_self", json=body(channel="beta", plugin_version=plugin_version)
        )
        assert (response.status_code, response.json()) == (200, OK)
        assert await overrides(app) == {DEVICE: "beta"}

    async def test_refusals_still_apply(
        self, client: httpx.AsyncClient, alice: Account, seeded: str
    ) -> None:
        await save_channel(client, alice, APP_ID, "beta", allow_device_self_set=False)
        response = await client.post(
            "/channel_self", json=body(channel="beta", plugin_version=NEW_PLUGIN)
        )
        assert response.json() == channel_error(
            "channel_self_set_not_allowed",
            "This channel does not allow devices to self associate",
            "beta",
        )


class TestCurrentChannel:
    async def test_the_public_channel_of_the_platform(
        self, client: httpx.AsyncClient, seeded: str
    ) -> None:
        for platform, channel in [("android", "production"), ("ios", "development")]:
            payload = body(channel=None, version_name="1.1.0", platform=platform)
            response = await client.put("/channel_self", json=payload)
            assert response.status_code == 200
            assert response.json() == {"channel": channel, "status": "default"}

    async def test_an_override(
        self, client: httpx.AsyncClient, alice: Account, seeded: str
    ) -> None:
        await pin(client, alice, "no_access")
        response = await client.put("/channel_self", json=body())
        assert response.status_code == 200
        assert response.json() == {"channel": "no_access", "status": "override", "allowSet": True}

    async def test_the_default_channel(self, client: httpx.AsyncClient, seeded: str) -> None:
        payload = body(defaultChannel="no_access")
        response = await client.put("/plugin/channel_self", json=payload)
        assert response.status_code == 200
        assert response.json() == {"channel": "no_access", "status": "default"}

    async def test_an_unknown_default_channel(self, client: httpx.AsyncClient, seeded: str) -> None:
        response = await client.put("/channel_self", json=body(defaultChannel="nope"))
        assert response.status_code == 200
        assert response.json() == {"error": "channel_not_found", "message": "Cannot find channel"}

    async def test_no_public_channel_for_the_platform(
        self, client: httpx.AsyncClient, alice: Account, seeded: str
    ) -> None:
        await save_channel(client, alice, APP_ID, "production", electron=False)
        response = await client.put("/channel_self", json=body(platform="electron"))
        assert response.status_code == 200
        assert response.json() == {"error": "channel_not_found", "message": "Cannot find channel"}

    async def test_new_plugins_are_echoed(
        self, client: httpx.AsyncClient, alice: Account, seeded: str
    ) -> None:
        await pin(client, alice, "no_access")
        cases = [
            (body(channel="beta"), {"channel": "beta", "status": "override", "allowSet": True}),
            (body(channel=None, defaultChannel="dev"), {"channel": "dev", "status": "default"}),
            (body(channel=None), {"channel": "production", "status": "default"}),
        ]
        for payload, expected in cases:
            payload["plugin_version"] = NEW_PLUGIN
            response = await client.put("/channel_self", json=payload)
            assert (response.status_code, response.json()) == (200, expected)


class TestUnset:
    async def test_without_an_override(self, client: httpx.AsyncClient, seeded: str) -> None:
        response = await client.delete("/channel_self", params=query())
        assert (response.status_code, response.json()) == (200, CANNOT_OVERRIDE)

    async def test_an_override_is_removed(
        self, client: httpx.AsyncClient, app: FastAPI, seeded: str
    ) -> None:
        await client.post("/channel_self", json=body(channel="beta"))
        response = await client.delete("/plugin/channel_self", params=query())
        assert (response.status_code, response.json()) == (200, OK)
        assert await overrides(app) == {}
        assert await override_count(app) == 0
        assert len(await channel_ids(app)) == 5  # the channel itself stays

    async def test_an_override_that_forbids_self_set_stays(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, seeded: str
    ) -> None:
        await save_channel(client, alice, APP_ID, "no_access", allow_device_self_set=False)
        await pin(client, alice, "no_access")
        response = await client.delete("/channel_self", params=query())
        assert (response.status_code, response.json()) == (200, CANNOT_OVERRIDE)
        assert await overrides(app) == {DEVICE: "no_access"}

    @pytest.mark.parametrize("plugin_version", [None, NEW_PLUGIN, "8.0.0", "9.1.0"])
    async def test_new_plugins_cannot_remove_an_override_that_forbids_self_set(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        alice: Account,
        seeded: str,
        plugin_version: str | None,
    ) -> None:
        await save_channel(client, alice, APP_ID, "no_access", allow_device_self_set=False)
        await pin(client, alice, "no_access")
        params = query(plugin_version=plugin_version)
        response = await client.delete("/channel_self", params=params)
        assert (response.status_code, response.json()) == (200, CANNOT_OVERRIDE)
        # The same refusal POST gives for this device.
        moved = await client.post("/channel_self", json=body(plugin_version=plugin_version))
        assert (moved.status_code, moved.json()) == (200, CANNOT_OVERRIDE)
        assert await overrides(app) == {DEVICE: "no_access"}
        assert await override_count(app) == 1
        assert await rows(app, StatsEvent, app_id=APP_ID) == []

    async def test_new_plugins_always_succeed(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, seeded: str
    ) -> None:
        response = await client.delete("/channel_self", params=query(plugin_version=NEW_PLUGIN))
        assert (response.status_code, response.json()) == (200, OK)
        await pin(client, alice, "no_access")
        response = await client.delete("/channel_self", params=query(plugin_version="8.1.0"))
        assert (response.status_code, response.json()) == (200, OK)
        assert await overrides(app) == {}
        assert await override_count(app) == 0


def listed(ids: dict[str, int], *names: str, private_self_set: bool = True) -> list[Any]:
    public = {"production", "development"}
    return [
        {"id": ids[n], "name": n, "public": n in public, "allow_self_set": private_self_set}
        for n in names
    ]


class TestList:
    async def test_without_parameters(self, client: httpx.AsyncClient, seeded: str) -> None:
        response = await client.get("/channel_self")
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_query_parameters",
            "message": "Cannot parse body",
            "moreInfo": {},
        }

    async def test_without_app_id(self, client: httpx.AsyncClient, seeded: str) -> None:
        response = await client.get("/channel_self", params={"platform": "ios"})
        assert response.status_code == 400
        assert response.json() == {
            "error": "missing_app_id",
            "message": "Cannot find app_id",
            "moreInfo": {},
        }

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"app_id": "not-an-app", "platform": "ios"}, "app_id"),
            ({"app_id": APP_ID, "platform": "windows"}, "platform"),
            ({"app_id": APP_ID}, "platform"),
        ],
    )
    async def test_bad_parameters(
        self, client: httpx.AsyncClient, seeded: str, params: dict[str, str], field: str
    ) -> None:
        response = await client.get("/channel_self", params=params)
        assert response.status_code == 400
        payload = response.json()
        assert (payload["error"], payload["message"]) == (
            "invalid_query_parameters",
            "Cannot parse body",
        )
        assert [e["loc"] for e in payload["moreInfo"]["parseResult"]] == [[field]]

    async def test_an_unknown_app(self, client: httpx.AsyncClient, seeded: str) -> None:
        params = {"app_id": UNKNOWN_APP, "platform": "ios"}
        response = await client.get("/channel_self", params=params)
        assert response.status_code == 200
        assert response.json() == {
            "error": "app_not_found",
            "message": "App not found",
            "app_id": UNKNOWN_APP,
        }

    @pytest.mark.parametrize(
        ("platform", "names"),
        [
            ("ios", ["beta", "development"]),
            ("android", ["production", "beta"]),
            ("electron", ["production", "beta", "electron_only"]),
        ],
    )
    async def test_by_platform(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        seeded: str,
        platform: str,
        names: list[str],
    ) -> None:
        params = {"app_id": APP_ID, "platform": platform, "device_id": DEVICE}
        response = await client.get("/plugin/channel_self", params=params)
        assert response.status_code == 200
        assert response.json() == listed(await channel_ids(app), *names)

    async def test_public_channels_are_listed_without_self_set(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, seeded: str
    ) -> None:
        for name in ("production", "beta"):
            await save_channel(client, alice, APP_ID, name, allow_device_self_set=False)
        response = await client.get(
            "/channel_self", params={"app_id": APP_ID, "platform": "android"}
        )
        ids = await channel_ids(app)
        assert response.json() == listed(ids, "production", private_self_set=False)

    @pytest.mark.parametrize(
        ("flag", "params"),
        [
            ("allow_emulator", {"is_emulator": "true"}),
            ("allow_device", {}),
            ("allow_dev", {"is_prod": "false"}),
            ("allow_prod", {"is_prod": "true"}),
        ],
    )
    async def test_device_kind_filters(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        alice: Account,
        seeded: str,
        flag: str,
        params: dict[str, str],
    ) -> None:
        await save_channel(client, alice, APP_ID, "beta", **{flag: False})
        query_params = {"app_id": APP_ID, "platform": "android", **params}
        response = await client.get("/channel_self", params=query_params)
        assert response.status_code == 200
        assert response.json() == listed(await channel_ids(app), "production")
