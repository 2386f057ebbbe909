"""``GET /channel`` (spec §3.4; seeds ``Channel``, legacy ``appid`` and
``disableAutoUpdateToMajor``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from capgo_server.models import Channel
from tests.apps.helpers import JS_ISO, add_bundle, create_app, create_org, key_of
from tests.channels.helpers import (
    APP_ID,
    CHANNEL_FIELDS,
    bundle_id,
    cannot_access,
    get_channel,
    save_channel,
)
from tests.conftest import Account, error_of
from tests.members.helpers import add_member


async def list_channels(
    client: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> httpx.Response:
    params.setdefault("app_id", APP_ID)
    return await client.get("/channel", params=params, headers=headers)


async def add_channels(app: FastAPI, owner: Account, count: int) -> None:
    """``count`` channels on the ``unknown`` bundle, created one second apart."""
    unknown = await bundle_id(app, "unknown")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    async with app.state.sessionmaker() as session, session.begin():
        session.add_all(
            Channel(
                name=f"c{n:02d}",
                app_id=APP_ID,
                owner_org=owner.org_id,
                version=unknown,
                created_by=owner.user_id,
                created_at=start + timedelta(seconds=n),
            )
            for n in range(count)
        )


class TestGetChannels:
    async def test_no_channels_is_an_empty_list(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        response = await list_channels(client, alice.headers)
        assert response.status_code == 200
        assert response.json() == []

    async def test_returns_the_documented_shape(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await add_bundle(app, APP_ID, "1.0.0")
        await save_channel(client, alice, channel="production", version="1.0.0", public=True)
        response = await list_channels(client, alice.headers)
        assert response.status_code == 200
        (channel,) = response.json()
        assert set(channel) == CHANNEL_FIELDS
        assert {
            k: v for k, v in channel.items() if k not in ("id", "created_at", "updated_at")
        } == {
            "name": "production",
            "app_id": APP_ID,
            "created_by": alice.user_id,
            "public": True,
            "allow_device_self_set": False,
            "allow_emulator": True,
            "allow_device": True,
            "allow_dev": True,
            "allow_prod": True,
            "version": {"id": await bundle_id(app, "1.0.0"), "name": "1.0.0"},
            "disableAutoUpdateUnderNative": True,
            "disableAutoUpdate": "major",
            "disableAutoUpdateToMajor": True,
            "ios": True,
            "android": True,
            "electron": True,
            "rollout_version": None,
            "rollout_percentage": 0,
        }
        assert isinstance(channel["id"], int)
        assert JS_ISO.match(channel["created_at"])
        assert JS_ISO.match(channel["updated_at"])

    async def test_legacy_disable_auto_update_to_major_follows_disable_auto_update(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="beta", disableAutoUpdate="minor")
        channel = await get_channel(client, alice, "beta")
        assert (channel["disableAutoUpdate"], channel["disableAutoUpdateToMajor"]) == (
            "minor",
            False,
        )

    async def test_lists_oldest_first_50_per_page(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await add_channels(app, alice, 51)
        first = await list_channels(client, alice.headers)
        assert [c["name"] for c in first.json()] == [f"c{n:02d}" for n in range(50)]
        second = await list_channels(client, alice.headers, page="1")
        assert [c["name"] for c in second.json()] == ["c50"]
        third = await list_channels(client, alice.headers, page=2)
        assert third.json() == []

    @pytest.mark.parametrize("page", ["-1", "one"])
    async def test_bad_page_is_invalid_body(
        self, client: httpx.AsyncClient, alice: Account, page: str
    ) -> None:
        await create_app(client, alice, APP_ID)
        response = await list_channels(client, alice.headers, page=page)
        assert error_of(response) == (400, "invalid_body")

    async def test_one_channel_by_name(self, client: httpx.AsyncClient, alice: Account) -> None:
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="production")
        await save_channel(client, alice, channel="beta")
        response = await list_channels(client, alice.headers, channel="beta")
        assert response.status_code == 200
        body = response.json()
        assert set(body) == CHANNEL_FIELDS
        assert body["name"] == "beta"
        assert body["version"]["name"] == "unknown"

    async def test_unknown_channel_name_is_cannot_find_version(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        response = await list_channels(client, alice.headers, channel="nope")
        assert response.status_code == 400
        assert response.json() == {
            "error": "cannot_find_version",
            "message": f"Channel nope does not exist for app {APP_ID}",
            "moreInfo": {"channel": "nope"},
        }

    async def test_legacy_appid_parameter(self, client: httpx.AsyncClient, alice: Account) -> None:
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="production")
        response = await client.get("/channel", params={"appid": APP_ID}, headers=alice.headers)
        assert response.status_code == 200
        assert [c["name"] for c in response.json()] == ["production"]

    async def test_missing_app_id(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await client.get("/channel", headers=alice.headers)
        assert response.status_code == 400
        assert response.json() == {
            "error": "missing_app_id",
            "message": "Missing app_id",
            "moreInfo": {},
        }

    async def test_invalid_app_id(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await client.get(
            "/channel", params={"app_id": "invalid_app"}, headers=alice.headers
        )
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_app_id",
            "message": "App ID must be a reverse domain string",
            "moreInfo": {"app_id": "invalid_app"},
        }

    async def test_unknown_app_is_cannot_access_app(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await list_channels(client, alice.headers, app_id="com.nobody.app")
        assert response.status_code == 400
        assert response.json() == cannot_access("com.nobody.app")

    @pytest.mark.parametrize("params", [{}, {"channel": "production"}])
    async def test_foreign_app_looks_like_an_unknown_one(
        self, client: httpx.AsyncClient, alice: Account, bob: Account, params: dict[str, str]
    ) -> None:
        await create_app(client, bob, "com.bob.app")
        await save_channel(client, bob, app_id="com.bob.app", channel="production")
        response = await list_channels(client, alice.headers, app_id="com.bob.app", **params)
        assert response.status_code == 400
        assert response.json() == cannot_access("com.bob.app")

    async def test_key_limited_to_other_apps_is_refused(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await create_app(client, alice, "com.alice.other")
        headers = await key_of(client, alice, mode="read", limited_to_apps=["com.alice.other"])
        response = await list_channels(client, headers)
        assert response.status_code == 400
        assert response.json() == cannot_access(APP_ID)
        response = await list_channels(client, headers, app_id="com.alice.other")
        assert response.status_code == 200

    async def test_key_limited_to_another_org_is_refused(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        other_org = await create_org(client, alice, "Alice Second")
        headers = await key_of(client, alice, mode="read", limited_to_orgs=[other_org])
        response = await list_channels(client, headers)
        assert response.status_code == 400
        assert response.json() == cannot_access(APP_ID)

    @pytest.mark.parametrize("mode", ["read", "write", "all"])
    async def test_read_write_and_all_keys_may_read(
        self, client: httpx.AsyncClient, alice: Account, mode: str
    ) -> None:
        await create_app(client, alice, APP_ID)
        headers = await key_of(client, alice, mode=mode)
        response = await list_channels(client, headers)
        assert response.status_code == 200

    async def test_upload_key_is_refused(self, client: httpx.AsyncClient, alice: Account) -> None:
        await create_app(client, alice, APP_ID)
        headers = await key_of(client, alice, mode="upload")
        response = await list_channels(client, headers)
        assert error_of(response) == (401, "invalid_apikey")

    async def test_read_member_may_read(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="production")
        reader = await add_member(client, app, alice, "reader@example.com", "read")
        response = await list_channels(client, reader.headers)
        assert [c["name"] for c in response.json()] == ["production"]
