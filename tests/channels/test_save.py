"""``POST /channel``: create or update (spec §3.4; seeds ``ChannelSet``; House decision: an
update without ``version`` keeps the channel's bundle)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from capgo_server.models import Channel
from tests.apps.helpers import add_bundle, create_app, key_of, rows
from tests.channels.helpers import (
    APP_ID,
    bundle_id,
    cannot_access,
    get_channel,
    post_channel,
    save_channel,
)
from tests.conftest import Account, error_of
from tests.members.helpers import add_member

ALL_FLAGS_FLIPPED = {
    "public": True,
    "disableAutoUpdateUnderNative": False,
    "ios": False,
    "android": False,
    "electron": False,
    "allow_device_self_set": True,
    "allow_emulator": False,
    "allow_device": False,
    "allow_dev": False,
    "allow_prod": False,
}


class TestCreateChannel:
    async def test_new_channel_with_defaults_serves_unknown(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="production")
        channel = await get_channel(client, alice, "production")
        assert channel["version"] == {"id": await bundle_id(app, "unknown"), "name": "unknown"}
        assert {k: channel[k] for k in ALL_FLAGS_FLIPPED} == {
            "public": False,
            "disableAutoUpdateUnderNative": True,
            "ios": True,
            "android": True,
            "electron": True,
            "allow_device_self_set": False,
            "allow_emulator": True,
            "allow_device": True,
            "allow_dev": True,
            "allow_prod": True,
        }
        assert channel["disableAutoUpdate"] == "major"
        assert channel["created_by"] == alice.user_id

    async def test_every_field_is_stored(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await add_bundle(app, APP_ID, "1.2.3")
        await save_channel(
            client,
            alice,
            channel="hidden",
            version="1.2.3",
            disableAutoUpdate="none",
            **ALL_FLAGS_FLIPPED,
        )
        channel = await get_channel(client, alice, "hidden")
        assert {k: channel[k] for k in ALL_FLAGS_FLIPPED} == ALL_FLAGS_FLIPPED
        assert channel["disableAutoUpdate"] == "none"
        assert channel["version"] == {"id": await bundle_id(app, "1.2.3"), "name": "1.2.3"}

    @pytest.mark.parametrize("value", ["major", "minor", "patch", "version_number", "none"])
    async def test_disable_auto_update_values(
        self, client: httpx.AsyncClient, alice: Account, value: str
    ) -> None:
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="beta", disableAutoUpdate=value)
        assert (await get_channel(client, alice, "beta"))["disableAutoUpdate"] == value

    @pytest.mark.parametrize("value", ["always", "", 1, None, True])
    async def test_other_disable_auto_update_values_are_invalid_body(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, value: Any
    ) -> None:
        await create_app(client, alice, APP_ID)
        response = await post_channel(client, alice, channel="beta", disableAutoUpdate=value)
        if value is None:  # null means "not given", as every optional field
            assert response.status_code == 200
            return
        assert error_of(response) == (400, "invalid_body")
        assert await rows(app, Channel) == []

    @pytest.mark.parametrize("name", ["builtin", "unknown"])
    async def test_internal_bundles_may_be_set(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, name: str
    ) -> None:
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="production", version=name)
        channel = await get_channel(client, alice, "production")
        assert channel["version"] == {"id": await bundle_id(app, name), "name": name}

    @pytest.mark.parametrize("case", ["missing", "deleted", "other_app"])
    async def test_version_not_a_live_bundle_of_the_app(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, case: str
    ) -> None:
        await create_app(client, alice, APP_ID)
        await create_app(client, alice, "com.alice.other")
        if case == "deleted":
            await add_bundle(app, APP_ID, "1.0.0", deleted=True)
        if case == "other_app":
            await add_bundle(app, "com.alice.other", "1.0.0")
        response = await post_channel(client, alice, channel="production", version="1.0.0")
        assert response.status_code == 400
        assert response.json() == {
            "error": "cannot_find_version",
            "message": f"Bundle 1.0.0 does not exist for app {APP_ID} (or is deleted): upload "
            "it first",
            "moreInfo": {"version": "1.0.0"},
        }
        assert await rows(app, Channel) == []

    async def test_external_bundle_may_be_set(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await add_bundle(app, APP_ID, "2.0.0", external_url="https://cdn.test/2.0.0.zip")
        await save_channel(client, alice, channel="production", version="2.0.0")
        assert (await get_channel(client, alice, "production"))["version"]["name"] == "2.0.0"


class TestUpdateChannel:
    async def test_without_version_keeps_the_bundle(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await add_bundle(app, APP_ID, "1.0.0")
        await save_channel(client, alice, channel="production", version="1.0.0")
        await save_channel(client, alice, channel="production", disableAutoUpdateUnderNative=False)
        channel = await get_channel(client, alice, "production")
        assert channel["version"]["name"] == "1.0.0"
        assert channel["disableAutoUpdateUnderNative"] is False

    async def test_only_given_fields_change(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="beta", **ALL_FLAGS_FLIPPED)
        before = await get_channel(client, alice, "beta")
        await save_channel(client, alice, channel="beta", allow_dev=True)
        after = await get_channel(client, alice, "beta")
        assert after == {**before, "allow_dev": True, "updated_at": after["updated_at"]}
        assert after["updated_at"] >= before["updated_at"]

    async def test_changes_the_bundle(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await add_bundle(app, APP_ID, "1.0.0")
        await add_bundle(app, APP_ID, "1.1.0")
        await save_channel(client, alice, channel="production", version="1.0.0")
        await save_channel(client, alice, channel="production", version="1.1.0")
        channel = await get_channel(client, alice, "production")
        assert channel["version"] == {"id": await bundle_id(app, "1.1.0"), "name": "1.1.0"}
        assert len(await rows(app, Channel)) == 1

    async def test_unknown_version_leaves_the_channel_unchanged(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="production")
        before = await get_channel(client, alice, "production")
        response = await post_channel(
            client, alice, channel="production", version="9.9.9", public=True
        )
        assert error_of(response) == (400, "cannot_find_version")
        assert await get_channel(client, alice, "production") == before

    async def test_keeps_its_creator(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="production")
        writer = await add_member(client, app, alice, "writer@example.com", "write")
        await save_channel(client, writer, channel="production", public=True)
        channel = await get_channel(client, alice, "production")
        assert (channel["public"], channel["created_by"]) == (True, alice.user_id)


class TestSaveChannelRefusals:
    async def test_missing_app_id(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await client.post("/channel", json={"channel": "x"}, headers=alice.headers)
        assert error_of(response) == (400, "missing_app_id")

    async def test_invalid_app_id(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await post_channel(client, alice, app_id="invalid_app", channel="x")
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_app_id",
            "message": "App ID must be a reverse domain string",
            "moreInfo": {"app_id": "invalid_app"},
        }

    @pytest.mark.parametrize("body", [{}, {"channel": ""}, {"name": "production"}])
    async def test_missing_channel_name(
        self, client: httpx.AsyncClient, alice: Account, body: dict[str, str]
    ) -> None:
        await create_app(client, alice, APP_ID)
        response = await post_channel(client, alice, **body)
        assert response.status_code == 400
        assert response.json() == {
            "error": "missing_channel_name",
            "message": "You must provide a channel name",
            "moreInfo": {},
        }

    @pytest.mark.parametrize(
        "body", [{"public": "sometimes"}, {"ios": [True]}, {"channel": "x" * 256}, {"version": 1}]
    )
    async def test_wrong_types_are_invalid_body(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, body: dict[str, Any]
    ) -> None:
        await create_app(client, alice, APP_ID)
        response = await post_channel(client, alice, **{"channel": "beta", **body})
        assert error_of(response) == (400, "invalid_body")
        assert await rows(app, Channel) == []

    @pytest.mark.parametrize("content", [b"app_id=com.alice.app&channel=x", b"[]", b""])
    async def test_body_must_be_a_json_object(
        self, client: httpx.AsyncClient, alice: Account, content: bytes
    ) -> None:
        await create_app(client, alice, APP_ID)
        response = await client.post(
            "/channel",
            content=content,
            params={"app_id": APP_ID, "channel": "x"},
            headers={**alice.headers, "content-type": "application/json"},
        )
        assert error_of(response) == (400, "invalid_json_parse_body")

    async def test_unknown_app(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await post_channel(client, alice, app_id="com.nobody.app", channel="x")
        assert response.status_code == 400
        assert response.json() == cannot_access("com.nobody.app")

    async def test_foreign_app_looks_like_an_unknown_one(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
    ) -> None:
        await create_app(client, bob, "com.bob.app")
        await add_bundle(app, "com.bob.app", "1.0.0")
        response = await post_channel(
            client, alice, app_id="com.bob.app", channel="evil", version="1.0.0", public=True
        )
        assert response.status_code == 400
        assert response.json() == cannot_access("com.bob.app")
        assert await rows(app, Channel) == []

    @pytest.mark.parametrize("mode", ["read", "upload"])
    async def test_read_and_upload_keys_are_refused(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, mode: str
    ) -> None:
        await create_app(client, alice, APP_ID)
        headers = await key_of(client, alice, mode=mode)
        response = await post_channel(client, headers, channel="x")
        assert response.status_code == 401
        assert response.json() == {
            "error": "invalid_apikey",
            "message": "Invalid apikey",
            "moreInfo": {},
        }
        assert await rows(app, Channel) == []

    async def test_write_key_may_save(self, client: httpx.AsyncClient, alice: Account) -> None:
        await create_app(client, alice, APP_ID)
        headers = await key_of(client, alice, mode="write")
        response = await post_channel(client, headers, channel="x")
        assert response.status_code == 200

    @pytest.mark.parametrize("role", ["read", "upload"])
    async def test_members_below_write_are_refused(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, role: str
    ) -> None:
        await create_app(client, alice, APP_ID)
        member = await add_member(client, app, alice, f"{role}@example.com", role)
        response = await post_channel(client, member, channel="x")
        assert response.status_code == 400
        assert response.json() == cannot_access(APP_ID)
        assert await rows(app, Channel) == []

    async def test_key_limited_to_other_apps_is_refused(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await create_app(client, alice, "com.alice.other")
        headers = await key_of(client, alice, mode="write", limited_to_apps=["com.alice.other"])
        response = await post_channel(client, headers, channel="x")
        assert response.status_code == 400
        assert response.json() == cannot_access(APP_ID)
        response = await post_channel(client, headers, app_id="com.alice.other", channel="x")
        assert response.status_code == 200
        assert [c.app_id for c in await rows(app, Channel)] == ["com.alice.other"]
