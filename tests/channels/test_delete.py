"""``DELETE /channel`` (spec §3.4, §3.8; House decision: overrides go with the channel)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from capgo_server.models import Channel, ChannelOverride, DeployHistory
from tests.apps.helpers import add_override, create_app, key_of, rows
from tests.channels.helpers import APP_ID, cannot_access, get_channel, save_channel
from tests.conftest import Account, error_of
from tests.members.helpers import add_member

OTHER_DEVICE = "00000000-0000-4000-8000-000000000002"
THIRD_DEVICE = "00000000-0000-4000-8000-000000000003"
FOURTH_DEVICE = "00000000-0000-4000-8000-000000000004"


async def delete_channel(
    client: httpx.AsyncClient, headers: dict[str, str] | Account, **body: Any
) -> httpx.Response:
    if isinstance(headers, Account):
        headers = headers.headers
    body.setdefault("app_id", APP_ID)
    return await client.request("DELETE", "/channel", json=body, headers=headers)


async def channel_names(app: FastAPI, app_id: str = APP_ID) -> list[str]:
    return sorted(c.name for c in await rows(app, Channel, app_id=app_id))


class TestDeleteChannel:
    async def test_deletes_the_channel(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="production")
        await save_channel(client, alice, channel="beta")
        response = await delete_channel(client, alice, channel="production")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert await channel_names(app) == ["beta"]
        response = await client.get(
            "/channel", params={"app_id": APP_ID, "channel": "production"}, headers=alice.headers
        )
        assert error_of(response) == (400, "cannot_find_version")

    async def test_the_deleted_newest_id_is_not_given_again(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="production")
        await save_channel(client, alice, channel="beta")
        deleted = await get_channel(client, alice, "beta")
        assert (await delete_channel(client, alice, channel="beta")).status_code == 200
        await save_channel(client, alice, channel="gamma")
        created = await get_channel(client, alice, "gamma")
        assert created["id"] > deleted["id"]

    async def test_keeps_the_app_override_count_right(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="production")
        await save_channel(client, alice, channel="beta")
        for device, channel in (
            (OTHER_DEVICE, "production"),
            (THIRD_DEVICE, "production"),
            (FOURTH_DEVICE, "beta"),
        ):
            linked = await client.post(
                "/device",
                json={"app_id": APP_ID, "device_id": device, "channel": channel},
                headers=alice.headers,
            )
            assert linked.status_code == 200, linked.text
        response = await delete_channel(client, alice, channel="production")
        assert response.status_code == 200
        app_row = await client.get(f"/app/{APP_ID}", headers=alice.headers)
        assert app_row.json()["channel_device_count"] == 1

    async def test_removes_its_overrides_and_history_only(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="production")
        await save_channel(client, alice, channel="beta")
        channels = {c.name: c.id for c in await rows(app, Channel)}
        await add_override(app, APP_ID, channels["production"])
        await add_override(app, APP_ID, channels["beta"], OTHER_DEVICE)
        response = await delete_channel(client, alice, channel="production")
        assert response.status_code == 200
        overrides = await rows(app, ChannelOverride)
        assert [(o.device_id, o.channel_id) for o in overrides] == [
            (OTHER_DEVICE, channels["beta"])
        ]
        assert [h.channel_id for h in await rows(app, DeployHistory)] == [channels["beta"]]

    async def test_query_string_and_legacy_appid(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="production")
        await save_channel(client, alice, channel="beta")
        response = await client.delete(
            "/channel", params={"app_id": APP_ID, "channel": "production"}, headers=alice.headers
        )
        assert response.status_code == 200
        response = await client.delete(
            "/channel", params={"appid": APP_ID, "channel": "beta"}, headers=alice.headers
        )
        assert response.status_code == 200
        assert await channel_names(app) == []

    async def test_no_input_at_all(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await client.delete("/channel", headers=alice.headers)
        assert error_of(response) == (400, "invalid_json_parse_body")

    async def test_missing_app_id(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await client.delete(
            "/channel", params={"channel": "production"}, headers=alice.headers
        )
        assert error_of(response) == (400, "missing_app_id")

    async def test_invalid_app_id(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await delete_channel(client, alice, app_id="invalid_app", channel="x")
        assert error_of(response) == (400, "invalid_app_id")

    @pytest.mark.parametrize("body", [{}, {"channel": ""}, {"name": "production"}])
    async def test_missing_channel_name(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, body: dict[str, str]
    ) -> None:
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="production")
        response = await delete_channel(client, alice, **body)
        assert response.status_code == 400
        assert response.json() == {
            "error": "missing_channel_name",
            "message": "You must provide a channel name",
            "moreInfo": {},
        }
        assert await channel_names(app) == ["production"]

    async def test_unknown_channel(self, client: httpx.AsyncClient, alice: Account) -> None:
        await create_app(client, alice, APP_ID)
        response = await delete_channel(client, alice, channel="nope")
        assert response.status_code == 400
        assert response.json() == {
            "error": "cannot_find_channel",
            "message": f"Channel nope does not exist for app {APP_ID}",
            "moreInfo": {"channel": "nope"},
        }

    async def test_unknown_app(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await delete_channel(client, alice, app_id="com.nobody.app", channel="x")
        assert response.status_code == 400
        assert response.json() == cannot_access("com.nobody.app")

    async def test_foreign_app_looks_like_an_unknown_one(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
    ) -> None:
        await create_app(client, bob, "com.bob.app")
        await save_channel(client, bob, app_id="com.bob.app", channel="production")
        for name in ("production", "nope"):
            response = await delete_channel(client, alice, app_id="com.bob.app", channel=name)
            assert response.status_code == 400
            assert response.json() == cannot_access("com.bob.app")
        assert await channel_names(app, "com.bob.app") == ["production"]

    async def test_write_key_is_refused_not_silently_ignored(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="production")
        headers = await key_of(client, alice, mode="write")
        response = await delete_channel(client, headers, channel="production")
        assert response.status_code == 400
        assert response.json() == cannot_access(APP_ID)
        assert await channel_names(app) == ["production"]

    @pytest.mark.parametrize("mode", ["read", "upload"])
    async def test_read_and_upload_keys_are_refused(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, mode: str
    ) -> None:
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="production")
        headers = await key_of(client, alice, mode=mode)
        response = await delete_channel(client, headers, channel="production")
        assert error_of(response) == (401, "invalid_apikey")
        assert await channel_names(app) == ["production"]

    @pytest.mark.parametrize("role", ["read", "upload", "write"])
    async def test_members_below_admin_are_refused(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, role: str
    ) -> None:
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="production")
        member = await add_member(client, app, alice, f"{role}@example.com", role)
        response = await delete_channel(client, member, channel="production")
        assert response.status_code == 400
        assert response.json() == cannot_access(APP_ID)
        assert await channel_names(app) == ["production"]

    async def test_admin_member_may_delete(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="production")
        admin = await add_member(client, app, alice, "admin@example.com", "admin")
        response = await delete_channel(client, admin, channel="production")
        assert response.status_code == 200
        assert await channel_names(app) == []

    async def test_key_limited_to_other_apps_is_refused(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await create_app(client, alice, "com.alice.other")
        await save_channel(client, alice, channel="production")
        headers = await key_of(client, alice, limited_to_apps=["com.alice.other"])
        response = await delete_channel(client, headers, channel="production")
        assert response.status_code == 400
        assert response.json() == cannot_access(APP_ID)
        assert await channel_names(app) == ["production"]
