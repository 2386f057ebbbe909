"""``PUT /bundle``: serve a bundle on a channel, with a deploy-history entry (spec §3.6)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from tests.bundles.helpers import (
    APP_ID,
    OTHER_APP_ID,
    UNKNOWN_APP_ID,
    bundle_id,
    channel_version,
    create_app,
    create_bundle,
    create_channel,
    deploy_history,
    error,
    headers,
    no_access,
)
from tests.conftest import Account, error_of, make_account, make_key
from tests.organizations._helpers import add_member


@pytest_asyncio.fixture(loop_scope="session")
async def setup(client: httpx.AsyncClient, app: FastAPI, alice: Account) -> tuple[int, int]:
    """Alice's app with bundle 1.0.0 and channel ``production`` (on ``unknown``):
    (bundle id, channel id)."""
    await create_app(client, alice)
    bundle = await create_bundle(client, alice, "1.0.0")
    return bundle["id"], await create_channel(app, "production")


async def put(client: httpx.AsyncClient, auth: dict[str, str], **body: Any) -> httpx.Response:
    return await client.put("/bundle", json=body, headers=auth)


class TestSetBundleOnChannel:
    async def test_points_the_channel_at_the_bundle(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, setup: tuple[int, int]
    ) -> None:
        version_id, channel_id = setup
        response = await put(
            client, alice.headers, app_id=APP_ID, version_id=version_id, channel_id=channel_id
        )
        assert response.status_code == 200
        assert response.json() == {
            "status": "success",
            "message": "Bundle 1.0.0 set to channel production",
        }
        assert await channel_version(app, channel_id) == version_id
        assert await deploy_history(app, channel_id) == [(version_id, alice.user_id)]

    async def test_ids_as_digit_strings_are_accepted(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, setup: tuple[int, int]
    ) -> None:
        version_id, channel_id = setup
        response = await put(
            client,
            alice.headers,
            app_id=APP_ID,
            version_id=str(version_id),
            channel_id=str(channel_id),
        )
        assert response.status_code == 200
        assert await channel_version(app, channel_id) == version_id

    async def test_setting_the_served_bundle_again_records_nothing_new(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, setup: tuple[int, int]
    ) -> None:
        version_id, channel_id = setup
        for _ in range(2):
            response = await put(
                client, alice.headers, app_id=APP_ID, version_id=version_id, channel_id=channel_id
            )
            assert response.status_code == 200
        assert await deploy_history(app, channel_id) == [(version_id, alice.user_id)]

    async def test_each_change_is_recorded(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, setup: tuple[int, int]
    ) -> None:
        first, channel_id = setup
        second = (await create_bundle(client, alice, "1.1.0"))["id"]
        for version_id in (first, second, first):
            response = await put(
                client, alice.headers, app_id=APP_ID, version_id=version_id, channel_id=channel_id
            )
            assert response.status_code == 200
        assert [v for v, _ in await deploy_history(app, channel_id)] == [first, second, first]

    async def test_write_member_may_set(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, setup: tuple[int, int]
    ) -> None:
        version_id, channel_id = setup
        carol = await make_account(app, "carol@example.com")
        await add_member(client, alice, carol, alice.org_id, "write")
        response = await put(
            client, carol.headers, app_id=APP_ID, version_id=version_id, channel_id=channel_id
        )
        assert response.status_code == 200
        assert await deploy_history(app, channel_id) == [(version_id, carol.user_id)]


class TestSetBundleRefusals:
    @pytest.mark.parametrize("missing", ["app_id", "version_id", "channel_id"])
    async def test_missing_field_is_400(
        self, client: httpx.AsyncClient, alice: Account, setup: tuple[int, int], missing: str
    ) -> None:
        version_id, channel_id = setup
        body = {"app_id": APP_ID, "version_id": version_id, "channel_id": channel_id}
        del body[missing]
        response = await put(client, alice.headers, **body)
        assert response.status_code == 400
        assert response.json() == error(
            "missing_required_fields", "Missing required fields", {**body, missing: None}
        )

    async def test_invalid_app_id_is_400(
        self, client: httpx.AsyncClient, alice: Account, setup: tuple[int, int]
    ) -> None:
        response = await put(
            client, alice.headers, app_id="invalid_app", version_id=1, channel_id=1
        )
        assert error_of(response) == (400, "invalid_app_id")

    async def test_not_json_is_400(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await client.put("/bundle", content=b"{", headers=alice.headers)
        assert error_of(response) == (400, "invalid_json_parse_body")

    async def test_read_key_is_401(
        self, client: httpx.AsyncClient, alice: Account, setup: tuple[int, int]
    ) -> None:
        read = await make_key(client, alice, mode="read")
        version_id, channel_id = setup
        response = await put(
            client,
            headers(read["key"]),
            app_id=APP_ID,
            version_id=version_id,
            channel_id=channel_id,
        )
        assert error_of(response) == (401, "invalid_apikey")

    async def test_foreign_app_is_refused_like_an_unknown_one(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        alice: Account,
        bob: Account,
        setup: tuple[int, int],
    ) -> None:
        version_id, channel_id = setup
        for app_id in (APP_ID, UNKNOWN_APP_ID):
            response = await put(
                client, bob.headers, app_id=app_id, version_id=version_id, channel_id=channel_id
            )
            assert response.status_code == 400
            assert response.json() == no_access("cannot_access_app", app_id)
        assert await deploy_history(app, channel_id) == []

    async def test_read_member_is_refused(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, setup: tuple[int, int]
    ) -> None:
        version_id, channel_id = setup
        carol = await make_account(app, "carol@example.com")
        await add_member(client, alice, carol, alice.org_id, "read")
        response = await put(
            client, carol.headers, app_id=APP_ID, version_id=version_id, channel_id=channel_id
        )
        assert response.json() == no_access("cannot_access_app", APP_ID)

    async def test_key_limited_to_another_app_is_refused(
        self, client: httpx.AsyncClient, alice: Account, setup: tuple[int, int]
    ) -> None:
        await create_app(client, alice, OTHER_APP_ID)
        limited = await make_key(client, alice, limited_to_apps=[OTHER_APP_ID])
        version_id, channel_id = setup
        response = await put(
            client,
            headers(limited["key"]),
            app_id=APP_ID,
            version_id=version_id,
            channel_id=channel_id,
        )
        assert response.json() == no_access("cannot_access_app", APP_ID)

    @pytest.mark.parametrize("version_id", [999999, "abc", 1.5, True, 2**70])
    async def test_unknown_version_is_400(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        alice: Account,
        setup: tuple[int, int],
        version_id: Any,
    ) -> None:
        _, channel_id = setup
        response = await put(
            client, alice.headers, app_id=APP_ID, version_id=version_id, channel_id=channel_id
        )
        assert response.status_code == 400
        assert response.json() == error(
            "cannot_find_version", "Cannot find version", {"version_id": version_id}
        )
        assert await deploy_history(app, channel_id) == []

    @pytest.mark.parametrize("name", ["unknown", "builtin", "deleted"])
    async def test_internal_or_deleted_bundle_is_not_found(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        alice: Account,
        setup: tuple[int, int],
        name: str,
    ) -> None:
        _, channel_id = setup
        if name == "deleted":
            await create_bundle(client, alice, "2.0.0")
            response = await client.delete(
                "/bundle", params={"app_id": APP_ID, "version": "2.0.0"}, headers=alice.headers
            )
            assert response.status_code == 200
            name = "2.0.0"
        response = await put(
            client,
            alice.headers,
            app_id=APP_ID,
            version_id=await bundle_id(app, name),
            channel_id=channel_id,
        )
        assert error_of(response) == (400, "cannot_find_version")

    async def test_bundle_of_another_app_is_not_found(
        self, client: httpx.AsyncClient, alice: Account, setup: tuple[int, int]
    ) -> None:
        _, channel_id = setup
        await create_app(client, alice, OTHER_APP_ID)
        foreign = await create_bundle(client, alice, "1.0.0", OTHER_APP_ID)
        response = await put(
            client, alice.headers, app_id=APP_ID, version_id=foreign["id"], channel_id=channel_id
        )
        assert error_of(response) == (400, "cannot_find_version")

    @pytest.mark.parametrize("channel_id", [999999, "x"])
    async def test_unknown_channel_is_400(
        self, client: httpx.AsyncClient, alice: Account, setup: tuple[int, int], channel_id: Any
    ) -> None:
        version_id, _ = setup
        response = await put(
            client, alice.headers, app_id=APP_ID, version_id=version_id, channel_id=channel_id
        )
        assert response.status_code == 400
        assert response.json() == error(
            "cannot_find_channel", "Cannot find channel", {"channel_id": channel_id}
        )

    async def test_channel_of_another_app_is_not_found(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, setup: tuple[int, int]
    ) -> None:
        version_id, _ = setup
        await create_app(client, alice, OTHER_APP_ID)
        foreign = await create_channel(app, "production", OTHER_APP_ID)
        response = await put(
            client, alice.headers, app_id=APP_ID, version_id=version_id, channel_id=foreign
        )
        assert error_of(response) == (400, "cannot_find_channel")
        assert await deploy_history(app, foreign) == []
