"""``DELETE /bundle`` and the legacy ``DELETE /versions`` (spec §3.6; House decisions: no silent
no-op, deleted bundles are never served; a bundle a channel serves cannot be deleted)."""

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
    bundle_row,
    create_app,
    create_bundle,
    create_channel,
    error,
    headers,
    insert_stored_bundle,
    no_access,
    post_bundle,
    store_has,
)
from tests.conftest import Account, error_of, make_account, make_key
from tests.organizations._helpers import add_member


@pytest_asyncio.fixture(loop_scope="session")
async def owned_app(client: httpx.AsyncClient, alice: Account) -> str:
    await create_app(client, alice)
    return APP_ID


async def delete(
    client: httpx.AsyncClient, auth: dict[str, str], path: str = "/bundle", **body: Any
) -> httpx.Response:
    return await client.request("DELETE", path, json={"app_id": APP_ID, **body}, headers=auth)


async def live_names(client: httpx.AsyncClient, owner: Account, app_id: str = APP_ID) -> list[str]:
    response = await client.get("/bundle", params={"app_id": app_id}, headers=owner.headers)
    assert response.status_code == 200, response.text
    return [row["name"] for row in response.json()]


class TestDeleteOneBundle:
    async def test_soft_deletes_it_and_removes_its_file(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        doomed, doomed_path = await insert_stored_bundle(app, alice.org_id, "1.0.0")
        _, kept_path = await insert_stored_bundle(app, alice.org_id, "1.0.1")
        response = await delete(client, alice.headers, version="1.0.0")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert await live_names(client, alice) == ["1.0.1"]
        row = await bundle_row(app, doomed)
        assert row.deleted is True
        assert row.deleted_at is not None
        assert not await store_has(app, doomed_path)
        assert await store_has(app, kept_path)

    async def test_external_bundle_has_no_file_to_remove(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        await create_bundle(client, alice, "1.0.0")
        response = await delete(client, alice.headers, version="1.0.0")
        assert response.status_code == 200
        assert await live_names(client, alice) == []

    async def test_query_string_works(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        await create_bundle(client, alice, "1.0.0")
        response = await client.delete(
            "/bundle", params={"app_id": APP_ID, "version": "1.0.0"}, headers=alice.headers
        )
        assert response.status_code == 200
        assert await live_names(client, alice) == []

    async def test_name_stays_reserved(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        await create_bundle(client, alice, "1.0.0")
        assert (await delete(client, alice.headers, version="1.0.0")).status_code == 200
        response = await post_bundle(client, alice, "1.0.0")
        assert error_of(response) == (400, "version_already_exists")

    @pytest.mark.parametrize(
        ("version", "message"),
        [
            ("9.9.9", f"Bundle 9.9.9 does not exist for app {APP_ID} (or is already deleted)"),
            ("builtin", "builtin names the app's native state, not a bundle: it cannot be deleted"),
            ("unknown", "unknown names the app's native state, not a bundle: it cannot be deleted"),
        ],
    )
    async def test_unknown_or_internal_version_is_400(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str, version: str, message: str
    ) -> None:
        await create_bundle(client, alice, "1.0.0")
        response = await delete(client, alice.headers, version=version)
        assert response.status_code == 400
        assert response.json() == error("cannot_delete_version", message, {"version": version})
        assert await live_names(client, alice) == ["1.0.0"]

    async def test_already_deleted_version_is_400(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        await create_bundle(client, alice, "1.0.0")
        assert (await delete(client, alice.headers, version="1.0.0")).status_code == 200
        response = await delete(client, alice.headers, version="1.0.0")
        assert response.json() == error(
            "cannot_delete_version",
            f"Bundle 1.0.0 does not exist for app {APP_ID} (or is already deleted)",
            {"version": "1.0.0"},
        )

    async def test_empty_version_deletes_nothing(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        await create_bundle(client, alice, "1.0.0")
        response = await client.delete(
            "/bundle", params={"app_id": APP_ID, "version": ""}, headers=alice.headers
        )
        assert error_of(response) == (400, "cannot_delete_version")
        assert response.json()["message"].startswith("An empty version names no bundle")
        assert await live_names(client, alice) == ["1.0.0"]

    async def test_non_string_version_is_400(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        response = await delete(client, alice.headers, version=1)
        assert error_of(response) == (400, "invalid_body")

    async def test_bundle_served_by_a_channel_is_kept(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        _, path = await insert_stored_bundle(app, alice.org_id, "1.0.0")
        await create_channel(app, "production", bundle="1.0.0")
        await create_channel(app, "beta", bundle="1.0.0")
        response = await delete(client, alice.headers, version="1.0.0")
        assert response.status_code == 400
        body = response.json()
        assert body["error"] == "cannot_delete_linked_version"
        assert body["moreInfo"] == {"channels": ["beta", "production"], "versions": ["1.0.0"]}
        assert await live_names(client, alice) == ["1.0.0"]
        assert await store_has(app, path)

    async def test_audit_records_the_deletion(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        created = await create_bundle(client, alice, "1.0.0")
        assert (await delete(client, alice.headers, version="1.0.0")).status_code == 200
        response = await client.get(
            "/organization/audit",
            headers=alice.headers,
            params={"orgId": alice.org_id, "tableName": "app_versions", "operation": "UPDATE"},
        )
        assert response.status_code == 200, response.text
        [entry] = response.json()["data"]
        assert entry["record_id"] == str(created["id"])
        assert entry["user_id"] == alice.user_id
        assert set(entry["changed_fields"]) == {"deleted", "deleted_at"}


class TestDeleteAllBundles:
    async def test_deletes_every_live_bundle_and_its_file(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        paths = [(await insert_stored_bundle(app, alice.org_id, v))[1] for v in ("1.0.0", "2.0.0")]
        await create_bundle(client, alice, "3.0.0")
        response = await client.delete("/bundle", params={"app_id": APP_ID}, headers=alice.headers)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert await live_names(client, alice) == []
        assert [await store_has(app, path) for path in paths] == [False, False]
        row = await bundle_row(app, await bundle_id(app, "3.0.0"))
        assert row.deleted is True

    async def test_other_apps_keep_their_bundles(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        await create_app(client, alice, OTHER_APP_ID)
        await create_bundle(client, alice, "1.0.0")
        _, path = await insert_stored_bundle(app, alice.org_id, "1.0.0", OTHER_APP_ID)
        assert (await delete(client, alice.headers)).status_code == 200
        assert await live_names(client, alice, OTHER_APP_ID) == ["1.0.0"]
        assert await store_has(app, path)

    async def test_no_live_bundle_is_400(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        response = await delete(client, alice.headers)
        assert response.status_code == 400
        assert response.json() == error(
            "cannot_delete_all_version", "This app has no bundle to delete", {"app_id": APP_ID}
        )

    async def test_refused_while_a_channel_serves_one(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        await create_bundle(client, alice, "1.0.0")
        await create_bundle(client, alice, "2.0.0")
        await create_channel(app, "production", bundle="2.0.0")
        response = await delete(client, alice.headers)
        assert response.status_code == 400
        assert response.json()["moreInfo"] == {"channels": ["production"], "versions": ["2.0.0"]}
        assert await live_names(client, alice) == ["2.0.0", "1.0.0"]

    async def test_channels_on_internal_bundles_do_not_block(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        await create_bundle(client, alice, "1.0.0")
        await create_channel(app, "production", bundle="unknown")
        assert (await delete(client, alice.headers)).status_code == 200
        assert await live_names(client, alice) == []


class TestDeleteRefusals:
    async def test_no_body_nor_query_is_400(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await client.delete("/bundle", headers=alice.headers)
        assert error_of(response) == (400, "invalid_json_parse_body")

    async def test_missing_app_id_is_400(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await client.request(
            "DELETE", "/bundle", json={"version": "1.0.0"}, headers=alice.headers
        )
        assert error_of(response) == (400, "missing_app_id")

    async def test_invalid_app_id_is_400(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await client.request(
            "DELETE", "/bundle", json={"app_id": "invalid_app"}, headers=alice.headers
        )
        assert error_of(response) == (400, "invalid_app_id")

    async def test_read_key_is_401(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        await create_bundle(client, alice, "1.0.0")
        read = await make_key(client, alice, mode="read")
        response = await delete(client, headers(read["key"]), version="1.0.0")
        assert error_of(response) == (401, "invalid_apikey")
        assert await live_names(client, alice) == ["1.0.0"]

    @pytest.mark.parametrize("role", ["read", "upload"])
    async def test_member_below_write_is_refused(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str, role: str
    ) -> None:
        await create_bundle(client, alice, "1.0.0")
        carol = await make_account(app, "carol@example.com")
        await add_member(client, alice, carol, alice.org_id, role)
        response = await delete(client, carol.headers, version="1.0.0")
        assert response.status_code == 400
        assert response.json() == no_access("cannot_delete_bundle", APP_ID)
        assert await live_names(client, alice) == ["1.0.0"]

    async def test_foreign_app_is_refused_like_an_unknown_one(
        self, client: httpx.AsyncClient, alice: Account, bob: Account, owned_app: str
    ) -> None:
        await create_bundle(client, alice, "1.0.0")
        for app_id in (APP_ID, UNKNOWN_APP_ID):
            response = await client.request(
                "DELETE", "/bundle", headers=bob.headers, json={"app_id": app_id}
            )
            assert response.status_code == 400
            assert response.json() == no_access("cannot_delete_bundle", app_id)
        assert await live_names(client, alice) == ["1.0.0"]

    async def test_key_limited_to_another_app_is_refused(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        await create_app(client, alice, OTHER_APP_ID)
        await create_bundle(client, alice, "1.0.0")
        limited = await make_key(client, alice, limited_to_apps=[OTHER_APP_ID])
        response = await delete(client, headers(limited["key"]), version="1.0.0")
        assert response.json() == no_access("cannot_delete_bundle", APP_ID)
        assert await live_names(client, alice) == ["1.0.0"]


class TestLegacyVersionsDelete:
    @pytest.mark.parametrize("param", ["app_id", "appid"])
    async def test_deletes_one_version(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str, param: str
    ) -> None:
        _, path = await insert_stored_bundle(app, alice.org_id, "1.0.0")
        await create_bundle(client, alice, "1.0.1")
        response = await client.delete(
            "/versions", params={param: APP_ID, "version": "1.0.0"}, headers=alice.headers
        )
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert await live_names(client, alice) == ["1.0.1"]
        assert not await store_has(app, path)

    async def test_deletes_all_versions(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        await create_bundle(client, alice, "1.0.0")
        response = await client.request(
            "DELETE", "/versions", json={"appid": APP_ID}, headers=alice.headers
        )
        assert response.status_code == 200
        assert await live_names(client, alice) == []

    async def test_refuses_a_foreign_app(
        self, client: httpx.AsyncClient, alice: Account, bob: Account, owned_app: str
    ) -> None:
        await create_bundle(client, alice, "1.0.0")
        response = await client.delete("/versions", params={"appid": APP_ID}, headers=bob.headers)
        assert response.json() == no_access("cannot_delete_bundle", APP_ID)
        assert await live_names(client, alice) == ["1.0.0"]
