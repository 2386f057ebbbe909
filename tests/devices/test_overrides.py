"""``POST`` and ``DELETE /device``: pin a device to a channel and unpin it; a device itself is
never deleted (spec §3.5; House decisions)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.bundles.helpers import (
    APP_ID,
    OTHER_APP_ID,
    create_app,
    create_channel,
    error,
    insert_device,
    no_access,
    override_count,
    overrides,
)
from tests.conftest import Account, error_of, make_account
from tests.devices.helpers import (
    DEVICE,
    OTHER_DEVICE,
    get_device,
    link,
    unlink,
)
from tests.organizations._helpers import add_member


class TestLinkDevice:
    async def test_pins_the_device_to_the_channel(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        channel_id = await create_channel(app, "beta")
        response = await link(client, alice.headers, DEVICE.upper())
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert await overrides(app) == {DEVICE: channel_id}
        assert await override_count(app) == (1, 1)

    async def test_relinking_moves_the_override(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        await create_channel(app, "beta")
        alpha = await create_channel(app, "alpha")
        assert (await link(client, alice.headers, DEVICE)).status_code == 200
        response = await link(client, alice.headers, DEVICE, "alpha")
        assert response.status_code == 200
        assert await overrides(app) == {DEVICE: alpha}
        assert await override_count(app) == (1, 1)

    async def test_count_follows_the_number_of_overrides(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        await create_channel(app, "beta")
        for device_id in (DEVICE, OTHER_DEVICE, DEVICE):
            assert (await link(client, alice.headers, device_id)).status_code == 200
        assert await override_count(app) == (2, 2)
        assert (await unlink(client, alice.headers, DEVICE)).status_code == 200
        assert await override_count(app) == (1, 1)

    async def test_legacy_channel_id_names_the_channel(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        channel_id = await create_channel(app, "beta")
        response = await link(client, alice.headers, DEVICE, None, channel_id="beta")
        assert response.status_code == 200
        assert await overrides(app) == {DEVICE: channel_id}

    @pytest.mark.parametrize("as_string", [False, True])
    async def test_legacy_numeric_channel_id_is_a_channel_id(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        alice: Account,
        owned_app: str,
        as_string: bool,
    ) -> None:
        channel_id = await create_channel(app, "beta")
        value = str(channel_id) if as_string else channel_id
        response = await link(client, alice.headers, DEVICE, None, channel_id=value)
        assert response.status_code == 200
        assert await overrides(app) == {DEVICE: channel_id}

    async def test_channel_id_of_another_app_is_not_found(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        await create_app(client, alice, OTHER_APP_ID)
        foreign = await create_channel(app, "beta", OTHER_APP_ID)
        response = await link(client, alice.headers, DEVICE, None, channel_id=foreign)
        assert response.status_code == 404
        assert response.json() == error(
            "channel_not_found", "Cannot find channel", {"channel": foreign}
        )
        assert await override_count(app) == (0, 0)

    @pytest.mark.parametrize(
        "body", [{"app_id": APP_ID}, {"device_id": DEVICE}, {"app_id": "", "device_id": DEVICE}]
    )
    async def test_missing_device_id_or_app_id_is_400(
        self, client: httpx.AsyncClient, alice: Account, body: dict[str, Any]
    ) -> None:
        response = await client.post(
            "/device", json={**body, "channel": "beta"}, headers=alice.headers
        )
        assert error_of(response) == (400, "missing_device_id_or_app_id")
        assert response.json()["message"] == "Missing device_id or app_id"

    async def test_invalid_app_id_is_400(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await link(client, alice.headers, DEVICE, app_id="invalid_app")
        assert error_of(response) == (400, "invalid_app_id")

    @pytest.mark.parametrize("device_id", ["x" * 65, 12345])
    async def test_unstorable_device_id_is_400(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        alice: Account,
        owned_app: str,
        device_id: Any,
    ) -> None:
        await create_channel(app, "beta")
        response = await link(client, alice.headers, device_id)
        assert response.status_code == 400
        assert response.json() == error(
            "invalid_device_id",
            "device_id must be a string of at most 64 characters",
            {"device_id": device_id},
        )

    async def test_member_with_read_role_is_refused(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        await create_channel(app, "beta")
        carol = await make_account(app, "carol@example.com")
        await add_member(client, alice, carol, alice.org_id, "read")
        assert (await get_device(client, carol.headers, DEVICE)).status_code == 404
        response = await link(client, carol.headers, DEVICE)
        assert response.status_code == 400
        assert response.json() == no_access("cannot_access_app", APP_ID)
        assert await overrides(app) == {}

    async def test_version_id_is_refused(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        await create_channel(app, "beta")
        response = await link(client, alice.headers, DEVICE, version_id="1.0.0")
        assert response.status_code == 400
        assert response.json() == error(
            "invalid_version_id", "Cannot set version to device, use channel instead"
        )
        assert await overrides(app) == {}

    async def test_no_channel_is_refused(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        response = await link(client, alice.headers, DEVICE, None)
        assert response.status_code == 400
        assert response.json() == error("missing_channel", "You must provide a channel")

    async def test_unknown_channel_is_404(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        response = await link(client, alice.headers, DEVICE, "nope")
        assert response.status_code == 404
        assert response.json() == error(
            "channel_not_found", "Cannot find channel", {"channel": "nope"}
        )

    async def test_channel_name_of_another_app_is_not_found(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        await create_app(client, alice, OTHER_APP_ID)
        await create_channel(app, "beta", OTHER_APP_ID)
        response = await link(client, alice.headers, DEVICE, "beta")
        assert error_of(response) == (404, "channel_not_found")

    async def test_public_channel_is_refused(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        await create_channel(app, "production", public=True)
        response = await link(client, alice.headers, DEVICE, "production")
        assert response.status_code == 400
        assert response.json() == error(
            "public_channel_override", "Cannot set channel override for public channel"
        )
        assert await override_count(app) == (0, 0)

    async def test_non_json_body_is_400(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        response = await client.post(
            "/device",
            content=b"not json",
            headers=alice.headers,
            params={"app_id": APP_ID, "device_id": DEVICE},
        )
        assert error_of(response) == (400, "invalid_json_parse_body")

    async def test_channel_of_wrong_type_is_400(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        response = await link(client, alice.headers, DEVICE, ["beta"])
        assert error_of(response) == (400, "invalid_body")


class TestUnlinkDevice:
    async def test_removes_the_override_and_keeps_the_device(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        await create_channel(app, "beta")
        await insert_device(app, DEVICE)
        assert (await link(client, alice.headers, DEVICE)).status_code == 200
        response = await unlink(client, alice.headers, DEVICE.upper())
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert await overrides(app) == {}
        assert await override_count(app) == (0, 0)
        device = await get_device(client, alice.headers, DEVICE)
        assert device.status_code == 200
        assert "channel" not in device.json()

    async def test_query_string_works(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        await create_channel(app, "beta")
        assert (await link(client, alice.headers, DEVICE)).status_code == 200
        response = await client.delete(
            "/device", params={"app_id": APP_ID, "device_id": DEVICE}, headers=alice.headers
        )
        assert response.status_code == 200
        assert await overrides(app) == {}

    async def test_device_without_override_is_404(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        await insert_device(app, DEVICE)
        response = await unlink(client, alice.headers, DEVICE)
        assert response.status_code == 404
        assert response.json() == error(
            "override_not_found", "This device has no channel override", {"device_id": DEVICE}
        )
        assert await override_count(app) == (0, 0)

    async def test_override_in_another_app_is_untouched(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        await create_app(client, alice, OTHER_APP_ID)
        await create_channel(app, "beta", OTHER_APP_ID)
        assert (await link(client, alice.headers, DEVICE, app_id=OTHER_APP_ID)).status_code == 200
        response = await unlink(client, alice.headers, DEVICE)
        assert error_of(response) == (404, "override_not_found")
        assert await overrides(app, OTHER_APP_ID) != {}
        assert await override_count(app, OTHER_APP_ID) == (1, 1)

    async def test_missing_device_id_is_400(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        response = await client.request(
            "DELETE", "/device", json={"app_id": APP_ID}, headers=alice.headers
        )
        assert error_of(response) == (400, "missing_device_id_or_app_id")

    async def test_missing_app_id_is_400(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await client.request(
            "DELETE", "/device", json={"device_id": DEVICE}, headers=alice.headers
        )
        assert error_of(response) == (400, "missing_app_id")

    async def test_nothing_given_is_400(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await client.delete("/device", headers=alice.headers)
        assert error_of(response) == (400, "invalid_json_parse_body")

    async def test_member_with_read_role_is_refused(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        await create_channel(app, "beta")
        assert (await link(client, alice.headers, DEVICE)).status_code == 200
        carol = await make_account(app, "carol@example.com")
        await add_member(client, alice, carol, alice.org_id, "read")
        response = await unlink(client, carol.headers, DEVICE)
        assert response.status_code == 400
        assert response.json() == no_access("cannot_access_app", APP_ID)
        assert await override_count(app) == (1, 1)
