"""``POST /bundle/metadata``: a bundle's link and comment (spec §3.6; House: access is checked
explicitly, and refused exactly like a missing bundle)."""

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
    create_app,
    create_bundle,
    error,
    headers,
)
from tests.conftest import Account, error_of, make_account, make_key
from tests.organizations._helpers import add_member


@pytest_asyncio.fixture(loop_scope="session")
async def bundle(client: httpx.AsyncClient, alice: Account) -> int:
    """Id of bundle 1.0.0 of Alice's app."""
    await create_app(client, alice)
    return int((await create_bundle(client, alice, "1.0.0"))["id"])


async def post(client: httpx.AsyncClient, auth: dict[str, str], **body: Any) -> httpx.Response:
    return await client.post("/bundle/metadata", json=body, headers=auth)


async def metadata(client: httpx.AsyncClient, owner: Account) -> tuple[Any, Any]:
    response = await client.get("/bundle", params={"app_id": APP_ID}, headers=owner.headers)
    assert response.status_code == 200, response.text
    [row] = response.json()
    return row["link"], row["comment"]


def not_found(version_id: Any) -> dict[str, Any]:
    return error("cannot_find_version", "Cannot find version", {"version_id": version_id})


class TestUpdateMetadata:
    async def test_sets_link_and_comment(
        self, client: httpx.AsyncClient, alice: Account, bundle: int
    ) -> None:
        response = await post(
            client,
            alice.headers,
            app_id=APP_ID,
            version_id=bundle,
            link="https://example.com/changelog",
            comment="First release",
        )
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert await metadata(client, alice) == ("https://example.com/changelog", "First release")

    async def test_one_field_leaves_the_other(
        self, client: httpx.AsyncClient, alice: Account, bundle: int
    ) -> None:
        await post(client, alice.headers, app_id=APP_ID, version_id=bundle, link="L", comment="C")
        response = await post(client, alice.headers, app_id=APP_ID, version_id=bundle, comment="C2")
        assert response.status_code == 200
        assert await metadata(client, alice) == ("L", "C2")

    async def test_empty_string_clears_a_field(
        self, client: httpx.AsyncClient, alice: Account, bundle: int
    ) -> None:
        await post(client, alice.headers, app_id=APP_ID, version_id=bundle, link="L")
        response = await post(client, alice.headers, app_id=APP_ID, version_id=bundle, link="")
        assert response.status_code == 200
        assert await metadata(client, alice) == ("", None)

    async def test_audit_records_the_change(
        self, client: httpx.AsyncClient, alice: Account, bundle: int
    ) -> None:
        await post(client, alice.headers, app_id=APP_ID, version_id=bundle, comment="C")
        response = await client.get(
            "/organization/audit",
            headers=alice.headers,
            params={"orgId": alice.org_id, "tableName": "app_versions", "operation": "UPDATE"},
        )
        [entry] = response.json()["data"]
        assert entry["changed_fields"] == ["comment"]
        assert entry["user_id"] == alice.user_id


class TestUpdateMetadataRefusals:
    @pytest.mark.parametrize(
        "body",
        [
            {"version_id": 1, "link": "x"},
            {"app_id": APP_ID, "link": "x"},
            {"app_id": APP_ID, "version_id": 0, "link": "x"},
        ],
    )
    async def test_missing_required_field_is_400(
        self, client: httpx.AsyncClient, alice: Account, body: dict[str, Any]
    ) -> None:
        response = await post(client, alice.headers, **body)
        assert response.status_code == 400
        assert response.json() == error(
            "missing_required_fields",
            "Missing required fields",
            {"app_id": body.get("app_id"), "version_id": body.get("version_id")},
        )

    async def test_invalid_app_id_is_400(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await post(client, alice.headers, app_id="invalid_app", version_id=1, link="x")
        assert error_of(response) == (400, "invalid_app_id")

    async def test_read_key_is_401(
        self, client: httpx.AsyncClient, alice: Account, bundle: int
    ) -> None:
        read = await make_key(client, alice, mode="read")
        response = await post(
            client, headers(read["key"]), app_id=APP_ID, version_id=bundle, link="x"
        )
        assert error_of(response) == (401, "invalid_apikey")

    @pytest.mark.parametrize("version_id", [999999, "abc"])
    async def test_unknown_bundle_is_400(
        self, client: httpx.AsyncClient, alice: Account, bundle: int, version_id: Any
    ) -> None:
        response = await post(client, alice.headers, app_id=APP_ID, version_id=version_id, link="x")
        assert response.status_code == 400
        assert response.json() == not_found(version_id)

    async def test_foreign_app_looks_like_a_missing_bundle(
        self, client: httpx.AsyncClient, alice: Account, bob: Account, bundle: int
    ) -> None:
        for app_id in (APP_ID, UNKNOWN_APP_ID):
            response = await post(
                client, bob.headers, app_id=app_id, version_id=bundle, link="https://evil.example"
            )
            assert response.status_code == 400
            assert response.json() == not_found(bundle)
        assert await metadata(client, alice) == (None, None)

    @pytest.mark.parametrize("role", ["read", "upload"])
    async def test_member_below_write_is_refused(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bundle: int, role: str
    ) -> None:
        carol = await make_account(app, "carol@example.com")
        await add_member(client, alice, carol, alice.org_id, role)
        response = await post(client, carol.headers, app_id=APP_ID, version_id=bundle, link="x")
        assert response.json() == not_found(bundle)
        assert await metadata(client, alice) == (None, None)

    async def test_key_limited_to_another_app_is_refused(
        self, client: httpx.AsyncClient, alice: Account, bundle: int
    ) -> None:
        await create_app(client, alice, OTHER_APP_ID)
        limited = await make_key(client, alice, limited_to_apps=[OTHER_APP_ID])
        response = await post(
            client, headers(limited["key"]), app_id=APP_ID, version_id=bundle, link="x"
        )
        assert response.json() == not_found(bundle)

    async def test_bundle_of_another_app_is_not_found(
        self, client: httpx.AsyncClient, alice: Account, bundle: int
    ) -> None:
        await create_app(client, alice, OTHER_APP_ID)
        foreign = (await create_bundle(client, alice, "1.0.0", OTHER_APP_ID))["id"]
        response = await post(client, alice.headers, app_id=APP_ID, version_id=foreign, link="x")
        assert response.json() == not_found(foreign)

    @pytest.mark.parametrize("name", ["unknown", "deleted"])
    async def test_internal_or_deleted_bundle_is_not_found(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bundle: int, name: str
    ) -> None:
        if name == "deleted":
            response = await client.delete(
                "/bundle", params={"app_id": APP_ID, "version": "1.0.0"}, headers=alice.headers
            )
            assert response.status_code == 200
        target = bundle if name == "deleted" else await bundle_id(app, name)
        response = await post(client, alice.headers, app_id=APP_ID, version_id=target, link="x")
        assert response.json() == not_found(target)

    @pytest.mark.parametrize("extra", [{}, {"link": None, "comment": None}])
    async def test_no_field_is_400(
        self, client: httpx.AsyncClient, alice: Account, bundle: int, extra: dict[str, Any]
    ) -> None:
        response = await post(client, alice.headers, app_id=APP_ID, version_id=bundle, **extra)
        assert response.status_code == 400
        assert response.json() == error("no_fields_to_update", "No fields to update")

    async def test_non_string_field_is_400(
        self, client: httpx.AsyncClient, alice: Account, bundle: int
    ) -> None:
        response = await post(
            client, alice.headers, app_id=APP_ID, version_id=bundle, comment={"a": 1}
        )
        assert error_of(response) == (400, "invalid_body")
        assert await metadata(client, alice) == (None, None)
