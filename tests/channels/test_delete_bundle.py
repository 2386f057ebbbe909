"""``DELETE /channel`` with ``delete_bundle`` (what the official CLI's ``channel delete
--delete-bundle`` sends when its key may not delete bundles itself): the channel and the bundle
it served go in one transaction, by ``DELETE /bundle``'s rules, or nothing goes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from capgo_server.models import Bundle, Channel
from tests.apps.helpers import create_app, key_of, rows
from tests.bundles.helpers import insert_stored_bundle, store_has
from tests.channels.helpers import APP_ID, cannot_access, save_channel
from tests.conftest import Account, error_of
from tests.members.helpers import add_member


async def delete_channel(
    client: httpx.AsyncClient, headers: dict[str, str] | Account, **body: Any
) -> httpx.Response:
    if isinstance(headers, Account):
        headers = headers.headers
    body.setdefault("app_id", APP_ID)
    return await client.request("DELETE", "/channel", json=body, headers=headers)


async def channel_names(app: FastAPI) -> list[str]:
    return sorted(c.name for c in await rows(app, Channel, app_id=APP_ID))


async def bundle(app: FastAPI, name: str) -> Bundle:
    (row,) = await rows(app, Bundle, app_id=APP_ID, name=name)
    return row


async def listed_bundles(client: httpx.AsyncClient, owner: Account) -> list[str]:
    response = await client.get("/bundle", params={"app_id": APP_ID}, headers=owner.headers)
    assert response.status_code == 200, response.text
    return [row["name"] for row in response.json()]


async def app_with_stored_bundle(
    client: httpx.AsyncClient, app: FastAPI, owner: Account, name: str = "1.0.0"
) -> str:
    """The app, a stored bundle ``name`` served by ``production``; the file's path."""
    await create_app(client, owner, APP_ID)
    _, path = await insert_stored_bundle(app, owner.org_id, name, APP_ID)
    await save_channel(client, owner, channel="production", version=name)
    return path


async def assert_nothing_deleted(app: FastAPI, path: str, channels: list[str]) -> None:
    assert await channel_names(app) == channels
    served = await bundle(app, "1.0.0")
    assert (served.deleted, served.deleted_at) == (False, None)
    assert await store_has(app, path)


class TestDeletesBoth:
    async def test_the_channel_and_its_bundle_go_together(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        path = await app_with_stored_bundle(client, app, alice)
        await save_channel(client, alice, channel="beta")
        response = await delete_channel(client, alice, channel="production", delete_bundle=True)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert await channel_names(app) == ["beta"]
        deleted = await bundle(app, "1.0.0")
        assert deleted.deleted is True
        assert deleted.deleted_at is not None
        assert not await store_has(app, path)
        assert await listed_bundles(client, alice) == []

    async def test_false_keeps_the_bundle(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        path = await app_with_stored_bundle(client, app, alice)
        response = await delete_channel(client, alice, channel="production", delete_bundle=False)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert await channel_names(app) == []
        assert (await bundle(app, "1.0.0")).deleted is False
        assert await store_has(app, path)
        assert await listed_bundles(client, alice) == ["1.0.0"]

    @pytest.mark.parametrize("internal", ["unknown", "builtin"])
    async def test_an_internal_bundle_stays(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, internal: str
    ) -> None:
        await create_app(client, alice, APP_ID)
        before = await bundle(app, internal)
        await save_channel(client, alice, channel="production", version=internal)
        await save_channel(client, alice, channel="beta", version=internal)
        response = await delete_channel(client, alice, channel="production", delete_bundle=True)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert await channel_names(app) == ["beta"]
        after = await bundle(app, internal)
        assert (after.id, after.deleted, after.deleted_at) == (before.id, True, None)

    async def test_query_string_form(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        path = await app_with_stored_bundle(client, app, alice)
        params = {"app_id": APP_ID, "channel": "production", "delete_bundle": "true"}
        response = await client.delete("/channel", params=params, headers=alice.headers)
        assert response.status_code == 200
        assert await channel_names(app) == []
        assert (await bundle(app, "1.0.0")).deleted is True
        assert not await store_has(app, path)

    async def test_an_admin_member_may(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await app_with_stored_bundle(client, app, alice)
        admin = await add_member(client, app, alice, "admin@example.com", "admin")
        response = await delete_channel(client, admin, channel="production", delete_bundle=True)
        assert response.status_code == 200
        assert (await bundle(app, "1.0.0")).deleted is True


class TestRefusedWhole:
    async def test_another_channel_serving_the_bundle(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        path = await app_with_stored_bundle(client, app, alice)
        await save_channel(client, alice, channel="beta", version="1.0.0")
        await save_channel(client, alice, channel="alpha", version="1.0.0")
        response = await delete_channel(client, alice, channel="production", delete_bundle=True)
        assert response.status_code == 400
        assert response.json() == {
            "error": "cannot_delete_linked_version",
            "message": "Bundle 1.0.0 is also served by channel alpha, beta: nothing was deleted. "
            "Set another bundle on alpha, beta first, or delete channel production without "
            "delete_bundle",
            "moreInfo": {
                "channel": "production",
                "version": "1.0.0",
                "channels": ["alpha", "beta"],
            },
        }
        await assert_nothing_deleted(app, path, ["alpha", "beta", "production"])

    @pytest.mark.parametrize("value", [1, 0, "yes", "1", "", None, [], {}, "True"])
    async def test_a_value_not_a_boolean_is_invalid_body(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, value: Any
    ) -> None:
        path = await app_with_stored_bundle(client, app, alice)
        response = await delete_channel(client, alice, channel="production", delete_bundle=value)
        assert error_of(response) == (400, "invalid_body")
        await assert_nothing_deleted(app, path, ["production"])

    async def test_a_query_string_not_a_boolean_is_invalid_body(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        path = await app_with_stored_bundle(client, app, alice)
        params = {"app_id": APP_ID, "channel": "production", "delete_bundle": "1"}
        response = await client.delete("/channel", params=params, headers=alice.headers)
        assert error_of(response) == (400, "invalid_body")
        await assert_nothing_deleted(app, path, ["production"])

    async def test_a_write_key_deletes_nothing(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        path = await app_with_stored_bundle(client, app, alice)
        headers = await key_of(client, alice, mode="write")
        response = await delete_channel(client, headers, channel="production", delete_bundle=True)
        assert response.status_code == 400
        assert response.json() == cannot_access(APP_ID)
        await assert_nothing_deleted(app, path, ["production"])

    @pytest.mark.parametrize("mode", ["read", "upload"])
    async def test_read_and_upload_keys_delete_nothing(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, mode: str
    ) -> None:
        path = await app_with_stored_bundle(client, app, alice)
        headers = await key_of(client, alice, mode=mode)
        response = await delete_channel(client, headers, channel="production", delete_bundle=True)
        assert error_of(response) == (401, "invalid_apikey")
        await assert_nothing_deleted(app, path, ["production"])

    @pytest.mark.parametrize("role", ["read", "upload", "write"])
    async def test_members_below_admin_delete_nothing(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, role: str
    ) -> None:
        path = await app_with_stored_bundle(client, app, alice)
        member = await add_member(client, app, alice, f"{role}@example.com", role)
        response = await delete_channel(client, member, channel="production", delete_bundle=True)
        assert response.status_code == 400
        assert response.json() == cannot_access(APP_ID)
        await assert_nothing_deleted(app, path, ["production"])

    async def test_foreign_app_deletes_nothing(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
    ) -> None:
        path = await app_with_stored_bundle(client, app, alice)
        response = await delete_channel(client, bob, channel="production", delete_bundle=True)
        assert response.status_code == 400
        assert response.json() == cannot_access(APP_ID)
        await assert_nothing_deleted(app, path, ["production"])

    async def test_key_limited_to_another_app_deletes_nothing(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        path = await app_with_stored_bundle(client, app, alice)
        await create_app(client, alice, "com.alice.other")
        headers = await key_of(client, alice, limited_to_apps=["com.alice.other"])
        response = await delete_channel(client, headers, channel="production", delete_bundle=True)
        assert response.status_code == 400
        assert response.json() == cannot_access(APP_ID)
        await assert_nothing_deleted(app, path, ["production"])

    async def test_unknown_channel_deletes_nothing(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        path = await app_with_stored_bundle(client, app, alice)
        response = await delete_channel(client, alice, channel="nope", delete_bundle=True)
        assert error_of(response) == (400, "cannot_find_channel")
        await assert_nothing_deleted(app, path, ["production"])
