"""``GET /bundle`` and the legacy ``GET /versions`` (spec §3.6; House: no bundles is ``[]``)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import update

from capgo_server.models import Bundle
from tests.bundles.helpers import (
    APP_ID,
    BUNDLE_FIELDS,
    JS_ISO,
    OTHER_APP_ID,
    SEED_BUNDLE_FIELDS,
    UNKNOWN_APP_ID,
    create_app,
    create_bundle,
    error,
    headers,
    insert_stored_bundle,
    no_access,
)
from tests.conftest import Account, error_of, make_key


@pytest_asyncio.fixture(loop_scope="session")
async def owned_app(client: httpx.AsyncClient, alice: Account) -> str:
    await create_app(client, alice)
    return APP_ID


async def list_bundles(
    client: httpx.AsyncClient, auth: dict[str, str], path: str = "/bundle", **params: Any
) -> list[dict[str, Any]]:
    response = await client.get(path, params={"app_id": APP_ID, **params}, headers=auth)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


class TestListBundles:
    async def test_app_without_bundles_is_an_empty_list(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        # The internal builtin/unknown bundles exist but are never listed.
        assert await list_bundles(client, alice.headers) == []

    async def test_rows_carry_every_field_of_the_bundle_interface(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        created = await create_bundle(client, alice, "1.0.0", session_key="iv:key", key_id="k" * 20)
        [row] = await list_bundles(client, alice.headers)
        assert set(row) == BUNDLE_FIELDS
        assert set(row) >= SEED_BUNDLE_FIELDS
        assert row == created
        assert JS_ISO.match(row["created_at"])
        assert JS_ISO.match(row["updated_at"])
        assert {k: v for k, v in row.items() if k not in {"id", "created_at", "updated_at"}} == {
            "app_id": APP_ID,
            "bucket_id": None,
            "checksum": "a" * 64,
            "deleted": False,
            "deleted_at": None,
            "external_url": "https://cdn.example.com/1.0.0.zip",
            "minUpdateVersion": None,
            "min_update_version": None,
            "name": "1.0.0",
            "native_packages": None,
            "owner_org": alice.org_id,
            "r2_path": None,
            "session_key": "iv:key",
            "key_id": "k" * 20,
            "storage_provider": "external",
            "user_id": alice.user_id,
            "link": None,
            "comment": None,
            "size": None,
            "manifest": None,
            "manifest_count": 0,
            "cli_version": None,
        }

    async def test_min_update_version_is_mirrored(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        created = await create_bundle(client, alice, "2.0.0")
        async with app.state.sessionmaker() as session, session.begin():
            await session.execute(
                update(Bundle)
                .where(Bundle.id == created["id"])
                .values(min_update_version="1.5.0", size=1234)
            )
        [row] = await list_bundles(client, alice.headers)
        assert row["minUpdateVersion"] == row["min_update_version"] == "1.5.0"
        assert row["size"] == 1234

    async def test_newest_first(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        for version in ("1.0.0", "1.0.1", "1.1.0"):
            await create_bundle(client, alice, version)
        rows = await list_bundles(client, alice.headers)
        assert [row["name"] for row in rows] == ["1.1.0", "1.0.1", "1.0.0"]

    async def test_pages_of_fifty(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        for index in range(55):
            await insert_stored_bundle(app, alice.org_id, f"1.0.{index}")
        first = await list_bundles(client, alice.headers)
        second = await list_bundles(client, alice.headers, page="1")
        third = await list_bundles(client, alice.headers, page=2)
        assert [len(first), len(second), third] == [50, 5, []]
        names = [row["name"] for row in first + second]
        assert names == [f"1.0.{index}" for index in reversed(range(55))]

    @pytest.mark.parametrize("page", ["-1", "abc", "1.5"])
    async def test_bad_page_is_400(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str, page: str
    ) -> None:
        response = await client.get(
            "/bundle", params={"app_id": APP_ID, "page": page}, headers=alice.headers
        )
        assert error_of(response) == (400, "invalid_body")

    async def test_deleted_bundles_are_not_listed(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        await create_bundle(client, alice, "1.0.0")
        await create_bundle(client, alice, "1.0.1")
        response = await client.delete(
            "/bundle", params={"app_id": APP_ID, "version": "1.0.0"}, headers=alice.headers
        )
        assert response.status_code == 200
        assert [row["name"] for row in await list_bundles(client, alice.headers)] == ["1.0.1"]

    async def test_only_the_apps_bundles_are_listed(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        await create_app(client, alice, OTHER_APP_ID)
        await create_bundle(client, alice, "1.0.0")
        await create_bundle(client, alice, "9.9.9", OTHER_APP_ID)
        assert [row["name"] for row in await list_bundles(client, alice.headers)] == ["1.0.0"]

    async def test_read_key_may_list(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        await create_bundle(client, alice, "1.0.0")
        read = await make_key(client, alice, mode="read")
        rows = await list_bundles(client, headers(read["key"]))
        assert [row["name"] for row in rows] == ["1.0.0"]


class TestListRefusals:
    async def test_no_key_is_401(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/bundle", params={"app_id": APP_ID})
        assert response.status_code == 401
        assert response.json() == error("no_key_provided", "No key provided")

    async def test_upload_key_is_401(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        upload = await make_key(client, alice, mode="upload")
        response = await client.get(
            "/bundle", params={"app_id": APP_ID}, headers=headers(upload["key"])
        )
        assert error_of(response) == (401, "invalid_apikey")

    async def test_missing_app_id_is_400(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await client.get("/bundle", headers=alice.headers)
        assert error_of(response) == (400, "missing_app_id")

    async def test_invalid_app_id_is_400(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await client.get(
            "/bundle", params={"app_id": "invalid_app"}, headers=alice.headers
        )
        assert response.status_code == 400
        assert response.json() == error(
            "invalid_app_id", "App ID must be a reverse domain string", {"app_id": "invalid_app"}
        )

    async def test_foreign_app_is_refused_like_an_unknown_one(
        self, client: httpx.AsyncClient, alice: Account, bob: Account, owned_app: str
    ) -> None:
        await create_bundle(client, alice, "1.0.0")
        for app_id in (APP_ID, UNKNOWN_APP_ID):
            response = await client.get("/bundle", params={"app_id": app_id}, headers=bob.headers)
            assert response.status_code == 400
            assert response.json() == no_access("cannot_get_bundle", app_id)

    async def test_key_limited_to_another_app_is_refused(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        await create_app(client, alice, OTHER_APP_ID)
        limited = await make_key(client, alice, limited_to_apps=[OTHER_APP_ID])
        response = await client.get(
            "/bundle", params={"app_id": APP_ID}, headers=headers(limited["key"])
        )
        assert response.status_code == 400
        assert response.json() == no_access("cannot_get_bundle", APP_ID)


class TestLegacyVersionsList:
    @pytest.mark.parametrize("param", ["app_id", "appid"])
    async def test_versions_lists_like_bundle(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str, param: str
    ) -> None:
        await create_bundle(client, alice, "1.0.0")
        await create_bundle(client, alice, "1.0.1")
        response = await client.get("/versions", params={param: APP_ID}, headers=alice.headers)
        assert response.status_code == 200
        assert response.json() == await list_bundles(client, alice.headers)

    async def test_versions_refuses_a_foreign_app(
        self, client: httpx.AsyncClient, alice: Account, bob: Account, owned_app: str
    ) -> None:
        response = await client.get("/versions", params={"appid": APP_ID}, headers=bob.headers)
        assert response.status_code == 400
        assert response.json() == no_access("cannot_get_bundle", APP_ID)
