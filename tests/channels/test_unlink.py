"""``POST /channel`` with ``"version": null`` (the official CLI's unlink) and its answer
``{status, id, public}``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from capgo_server.models import Channel, DeployHistory
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
from tests.plugin import updates_support as device


class TestExplicitNullUnlinks:
    async def test_an_existing_channel_then_serves_unknown(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await add_bundle(app, APP_ID, "1.0.0")
        saved = await save_channel(client, alice, channel="production", version="1.0.0")
        unlinked = await save_channel(client, alice, channel="production", version=None)
        assert unlinked == {"status": "ok", "id": saved["id"], "public": False}
        channel = await get_channel(client, alice, "production")
        assert channel["version"] == {"id": await bundle_id(app, "unknown"), "name": "unknown"}
        history = [h.version_id for h in await rows(app, DeployHistory, channel_id=saved["id"])]
        assert history == [await bundle_id(app, "1.0.0"), await bundle_id(app, "unknown")]

    async def test_omitted_version_still_keeps_the_bundle(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await add_bundle(app, APP_ID, "1.0.0")
        await save_channel(client, alice, channel="production", version="1.0.0")
        await save_channel(client, alice, channel="production", allow_dev=False)
        channel = await get_channel(client, alice, "production")
        assert channel["version"]["name"] == "1.0.0"
        assert channel["allow_dev"] is False

    async def test_a_new_channel_with_null_serves_unknown(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="beta", version=None)
        channel = await get_channel(client, alice, "beta")
        assert channel["version"] == {"id": await bundle_id(app, "unknown"), "name": "unknown"}

    async def test_null_on_an_unlinked_channel_records_nothing(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        saved = await save_channel(client, alice, channel="beta")
        await save_channel(client, alice, channel="beta", version=None)
        assert len(await rows(app, DeployHistory, channel_id=saved["id"])) == 1

    async def test_channel_add_of_an_existing_channel_unlinks_it(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        """The official CLI's ``channel add`` body: on an existing channel it unlinks it (as
        Capgo's upsert does)."""
        await create_app(client, alice, APP_ID)
        await add_bundle(app, APP_ID, "1.0.0")
        await save_channel(client, alice, channel="beta", version="1.0.0")
        body = {"version": None, "allow_device_self_set": True, "public": False}
        await save_channel(client, alice, channel="beta", **body)
        channel = await get_channel(client, alice, "beta")
        assert channel["version"]["name"] == "unknown"
        assert channel["allow_device_self_set"] is True

    async def test_the_device_is_then_offered_no_bundle(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await device.seed(client, alice)
        assert await device.answer(client, version_name="1.1.0") == device.offered("1.0.0")
        await device.set_channel(client, alice, "production", version=None)
        assert await device.answer(client, version_name="1.1.0") == device.refused(
            "no_bundle_url", "Cannot get bundle url", "failed"
        )

    @pytest.mark.parametrize("value", [0, False, [], {}, ["1.0.0"]])
    async def test_a_version_not_a_name_nor_null_is_invalid_body(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, value: Any
    ) -> None:
        await create_app(client, alice, APP_ID)
        await add_bundle(app, APP_ID, "1.0.0")
        await save_channel(client, alice, channel="production", version="1.0.0")
        response = await post_channel(client, alice, channel="production", version=value)
        assert error_of(response) == (400, "invalid_body")
        assert (await get_channel(client, alice, "production"))["version"]["name"] == "1.0.0"

    async def test_foreign_app_is_refused_and_unchanged(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
    ) -> None:
        await create_app(client, bob, "com.bob.app")
        await add_bundle(app, "com.bob.app", "1.0.0")
        await save_channel(client, bob, app_id="com.bob.app", channel="production", version="1.0.0")
        response = await post_channel(
            client, alice, app_id="com.bob.app", channel="production", version=None
        )
        assert response.status_code == 400
        assert response.json() == cannot_access("com.bob.app")
        channel = await get_channel(client, bob, "production", app_id="com.bob.app")
        assert channel["version"]["name"] == "1.0.0"

    @pytest.mark.parametrize("mode", ["read", "upload"])
    async def test_keys_that_cannot_save_cannot_unlink(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, mode: str
    ) -> None:
        await create_app(client, alice, APP_ID)
        await add_bundle(app, APP_ID, "1.0.0")
        await save_channel(client, alice, channel="production", version="1.0.0")
        headers = await key_of(client, alice, mode=mode)
        response = await post_channel(client, headers, channel="production", version=None)
        assert error_of(response) == (401, "invalid_apikey")
        assert (await get_channel(client, alice, "production"))["version"]["name"] == "1.0.0"

    async def test_key_limited_to_another_app_cannot_unlink(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await create_app(client, alice, "com.alice.other")
        await add_bundle(app, APP_ID, "1.0.0")
        await save_channel(client, alice, channel="production", version="1.0.0")
        headers = await key_of(client, alice, limited_to_apps=["com.alice.other"])
        response = await post_channel(client, headers, channel="production", version=None)
        assert response.status_code == 400
        assert response.json() == cannot_access(APP_ID)
        assert (await get_channel(client, alice, "production"))["version"]["name"] == "1.0.0"


class TestAnswer:
    async def test_names_the_new_channel(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        saved = await save_channel(client, alice, channel="production", public=True)
        (channel,) = await rows(app, Channel, app_id=APP_ID)
        assert saved == {"status": "ok", "id": channel.id, "public": True}

    async def test_an_update_answers_the_saved_state(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        first = await save_channel(client, alice, channel="production", public=True)
        again = await save_channel(client, alice, channel="production", allow_dev=False)
        assert again == first
        private = await save_channel(client, alice, channel="production", public=False)
        assert private == {"status": "ok", "id": first["id"], "public": False}

    async def test_each_channel_answers_its_own_id(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        production = await save_channel(client, alice, channel="production", public=True)
        beta = await save_channel(client, alice, channel="beta", public=True)
        assert beta["id"] != production["id"]
        assert beta["id"] == (await get_channel(client, alice, "beta"))["id"]
        # beta took the mobile platforms: production is no longer public.
        assert (await get_channel(client, alice, "production"))["public"] is False
