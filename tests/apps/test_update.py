"""``PUT /app/:id`` (spec §3.7)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.apps.helpers import JS_ISO, create_app, key_of
from tests.conftest import Account, error_of
from tests.members.helpers import add_member


def cannot_access(app_id: str) -> dict[str, Any]:
    return {
        "error": "cannot_access_app",
        "message": "You can't access this app",
        "moreInfo": {"app_id": app_id},
    }


async def put_app(
    client: httpx.AsyncClient, headers: dict[str, str], app_id: str, **body: Any
) -> httpx.Response:
    return await client.put(f"/app/{app_id}", json=body, headers=headers)


async def get_app(client: httpx.AsyncClient, owner: Account, app_id: str) -> dict[str, Any]:
    response = await client.get(f"/app/{app_id}", headers=owner.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


class TestUpdateApp:
    async def test_updates_and_returns_the_row(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        before = await create_app(client, alice, "com.alice.app")
        response = await put_app(
            client,
            alice.headers,
            "com.alice.app",
            name="Renamed",
            icon="https://x.test/icon.png",
            retention=86400,
            expose_metadata=True,
        )
        assert response.status_code == 200
        body = response.json()
        assert body == {
            **before,
            "name": "Renamed",
            "icon_url": "https://x.test/icon.png",
            "retention": 86400,
            "expose_metadata": True,
            "updated_at": body["updated_at"],
        }
        assert JS_ISO.match(body["updated_at"])
        assert body["updated_at"] >= before["updated_at"]
        assert await get_app(client, alice, "com.alice.app") == body

    async def test_fields_not_given_are_kept(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await create_app(client, alice, "com.alice.app", icon="https://x.test/a.png")
        response = await put_app(client, alice.headers, "com.alice.app", retention=0)
        assert response.status_code == 200
        body = response.json()
        assert (body["name"], body["icon_url"], body["retention"]) == (
            "Example",
            "https://x.test/a.png",
            0,
        )

    async def test_empty_body_changes_nothing(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        before = await create_app(client, alice, "com.alice.app")
        response = await put_app(client, alice.headers, "com.alice.app")
        assert response.status_code == 200
        assert response.json() == before

    async def test_largest_retention_is_accepted(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await create_app(client, alice, "com.alice.app")
        response = await put_app(client, alice.headers, "com.alice.app", retention=63113903)
        assert response.status_code == 200
        assert response.json()["retention"] == 63113903

    @pytest.mark.parametrize(
        ("retention", "code"),
        [(63113904, "retention_to_big"), (10**12, "retention_to_big"), (-1, "retention_to_small")],
    )
    async def test_retention_out_of_range(
        self, client: httpx.AsyncClient, alice: Account, retention: int, code: str
    ) -> None:
        before = await create_app(client, alice, "com.alice.app")
        response = await put_app(client, alice.headers, "com.alice.app", retention=retention)
        assert response.status_code == 400
        assert response.json()["error"] == code
        assert response.json()["moreInfo"] == {"retention": retention}
        assert await get_app(client, alice, "com.alice.app") == before

    @pytest.mark.parametrize(
        "body", [{"retention": "long"}, {"name": ""}, {"expose_metadata": "maybe"}, {"icon": 1}]
    )
    async def test_wrong_types_are_invalid_body(
        self, client: httpx.AsyncClient, alice: Account, body: dict[str, Any]
    ) -> None:
        await create_app(client, alice, "com.alice.app")
        response = await put_app(client, alice.headers, "com.alice.app", **body)
        assert error_of(response) == (400, "invalid_body")

    async def test_unknown_app_is_401(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await put_app(client, alice.headers, "com.nobody.app", name="X")
        assert response.status_code == 401
        assert response.json() == cannot_access("com.nobody.app")

    async def test_foreign_app_is_refused_like_an_unknown_one(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        before = await create_app(client, bob, "com.bob.app")
        response = await put_app(client, alice.headers, "com.bob.app", name="Hijacked")
        assert response.status_code == 401
        assert response.json() == cannot_access("com.bob.app")
        assert await get_app(client, bob, "com.bob.app") == before

    async def test_invalid_app_id(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await put_app(client, alice.headers, "invalid_app", name="X")
        assert error_of(response) == (400, "invalid_app_id")

    @pytest.mark.parametrize("role", ["read", "upload"])
    async def test_members_below_write_get_401(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, role: str
    ) -> None:
        await create_app(client, alice, "com.alice.app")
        member = await add_member(client, app, alice, f"{role}@example.com", role)
        response = await put_app(client, member.headers, "com.alice.app", name="X")
        assert response.status_code == 401
        assert response.json() == cannot_access("com.alice.app")

    async def test_write_member_is_refused_with_cannot_update_app(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        before = await create_app(client, alice, "com.alice.app")
        member = await add_member(client, app, alice, "writer@example.com", "write")
        response = await put_app(client, member.headers, "com.alice.app", name="X")
        assert response.status_code == 400
        assert response.json() == {
            "error": "cannot_update_app",
            "message": "Cannot update app",
            "moreInfo": {"app_id": "com.alice.app"},
        }
        assert await get_app(client, alice, "com.alice.app") == before

    async def test_admin_member_may_update(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, "com.alice.app")
        member = await add_member(client, app, alice, "admin@example.com", "admin")
        response = await put_app(client, member.headers, "com.alice.app", name="By admin")
        assert response.status_code == 200
        assert response.json()["name"] == "By admin"

    async def test_read_key_is_refused(self, client: httpx.AsyncClient, alice: Account) -> None:
        await create_app(client, alice, "com.alice.app")
        headers = await key_of(client, alice, mode="read")
        response = await put_app(client, headers, "com.alice.app", name="X")
        assert error_of(response) == (401, "invalid_apikey")

    async def test_key_limited_to_other_apps_is_refused(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await create_app(client, alice, "com.alice.one")
        await create_app(client, alice, "com.alice.two")
        headers = await key_of(client, alice, mode="write", limited_to_apps=["com.alice.two"])
        response = await put_app(client, headers, "com.alice.one", name="X")
        assert response.status_code == 401
        assert response.json() == cannot_access("com.alice.one")
