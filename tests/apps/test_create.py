"""``POST /app`` (spec §3.7, §4.3)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from capgo_server.models import App, Bundle
from tests.apps.helpers import APP_FIELDS, JS_ISO, RANDOM_ORG, create_app, create_org, key_of, rows
from tests.conftest import Account, error_of
from tests.members.helpers import add_member

#: The answer's message when the app id is held (a live app of anyone, or a reservation).
TAKEN = (
    "The app id {} is already taken on this server (by an app, or kept for the organization of "
    "a deleted app): choose another app id"
)


async def post_app(
    client: httpx.AsyncClient, headers: dict[str, str], **body: Any
) -> httpx.Response:
    return await client.post("/app", json=body, headers=headers)


def cannot_access_org(org_id: object) -> dict[str, Any]:
    return {
        "error": "cannot_access_organization",
        "message": "You can't access this organization",
        "moreInfo": {"org_id": org_id},
    }


class TestCreateApp:
    async def test_returns_the_new_row(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await post_app(
            client, alice.headers, app_id="com.alice.app", name="Alice", owner_org=alice.org_id
        )
        assert response.status_code == 200
        body = response.json()
        assert set(body) == APP_FIELDS
        assert {k: v for k, v in body.items() if k not in {"id", "created_at", "updated_at"}} == {
            "app_id": "com.alice.app",
            "owner_org": alice.org_id,
            "user_id": alice.user_id,
            "name": "Alice",
            "icon_url": "",
            "last_version": None,
            "retention": 2592000,
            "default_upload_channel": "dev",
            "channel_device_count": 0,
            "manifest_bundle_count": 0,
            "expose_metadata": False,
            "allow_preview": False,
        }
        assert JS_ISO.match(body["created_at"])
        assert JS_ISO.match(body["updated_at"])
        response = await client.get("/app/com.alice.app", headers=alice.headers)
        assert response.json() == body

    async def test_icon_becomes_icon_url(self, client: httpx.AsyncClient, alice: Account) -> None:
        body = await create_app(client, alice, "com.alice.app", icon="https://x.test/i.png")
        assert body["icon_url"] == "https://x.test/i.png"

    async def test_gets_its_two_internal_bundles_deleted(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, "com.alice.app")
        bundles = await rows(app, Bundle, app_id="com.alice.app")
        assert sorted((b.name, b.deleted, b.owner_org) for b in bundles) == [
            ("builtin", True, alice.org_id),
            ("unknown", True, alice.org_id),
        ]

    async def test_write_key_may_create(self, client: httpx.AsyncClient, alice: Account) -> None:
        headers = await key_of(client, alice, mode="write")
        response = await post_app(
            client, headers, app_id="com.alice.app", name="A", owner_org=alice.org_id
        )
        assert response.status_code == 200

    @pytest.mark.parametrize("mode", ["read", "upload"])
    async def test_read_and_upload_keys_are_refused(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, mode: str
    ) -> None:
        headers = await key_of(client, alice, mode=mode)
        response = await post_app(
            client, headers, app_id="com.alice.app", name="A", owner_org=alice.org_id
        )
        assert error_of(response) == (401, "invalid_apikey")
        assert await rows(app, App) == []

    async def test_admin_member_may_create(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        admin = await add_member(client, app, alice, "admin@example.com", "admin")
        response = await post_app(
            client, admin.headers, app_id="com.alice.app", name="A", owner_org=alice.org_id
        )
        assert response.status_code == 200
        assert response.json()["user_id"] == admin.user_id

    @pytest.mark.parametrize("role", ["read", "upload", "write"])
    async def test_members_below_admin_are_refused(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, role: str
    ) -> None:
        member = await add_member(client, app, alice, f"{role}@example.com", role)
        response = await post_app(
            client, member.headers, app_id="com.alice.app", name="A", owner_org=alice.org_id
        )
        assert response.status_code == 403
        assert response.json() == cannot_access_org(alice.org_id)
        assert await rows(app, App) == []

    @pytest.mark.parametrize("org", ["foreign", RANDOM_ORG, "not-a-uuid"])
    async def test_org_not_a_membership_is_403(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account, org: str
    ) -> None:
        org_id = bob.org_id if org == "foreign" else org
        response = await post_app(
            client, alice.headers, app_id="com.alice.app", name="A", owner_org=org_id
        )
        assert response.status_code == 403
        assert response.json() == cannot_access_org(org_id)
        assert await rows(app, App) == []

    async def test_key_limited_to_another_org_is_403(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        other_org = await create_org(client, alice, "Alice Second")
        headers = await key_of(client, alice, limited_to_orgs=[other_org])
        response = await post_app(
            client, headers, app_id="com.alice.app", name="A", owner_org=alice.org_id
        )
        assert response.status_code == 403
        assert response.json() == cannot_access_org(alice.org_id)
        response = await post_app(
            client, headers, app_id="com.alice.app", name="A", owner_org=other_org
        )
        assert response.status_code == 200

    async def test_app_limited_key_cannot_create_apps(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await create_app(client, alice, "com.alice.one")
        headers = await key_of(client, alice, limited_to_apps=["com.alice.one"])
        response = await post_app(
            client, headers, app_id="com.alice.two", name="A", owner_org=alice.org_id
        )
        assert response.status_code == 403
        assert response.json() == cannot_access_org(alice.org_id)

    async def test_missing_app_id(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await post_app(client, alice.headers, name="A", owner_org=alice.org_id)
        assert error_of(response) == (400, "missing_app_id")

    @pytest.mark.parametrize("app_id", ["invalid_app", "com.x y", ".com.x", "com." + "a" * 300])
    async def test_invalid_app_id(
        self, client: httpx.AsyncClient, alice: Account, app_id: str
    ) -> None:
        response = await post_app(
            client, alice.headers, app_id=app_id, name="A", owner_org=alice.org_id
        )
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_app_id",
            "message": "App ID must be a reverse domain string",
            "moreInfo": {"app_id": app_id},
        }

    @pytest.mark.parametrize("name", [None, ""])
    async def test_missing_name(
        self, client: httpx.AsyncClient, alice: Account, name: str | None
    ) -> None:
        body = {"app_id": "com.alice.app", "owner_org": alice.org_id}
        if name is not None:
            body["name"] = name
        response = await client.post("/app", json=body, headers=alice.headers)
        assert response.status_code == 400
        assert response.json() == {
            "error": "missing_name",
            "message": "Missing name",
            "moreInfo": {},
        }

    async def test_missing_owner_org(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await post_app(client, alice.headers, app_id="com.alice.app", name="A")
        assert response.status_code == 400
        assert response.json() == {
            "error": "cannot_create_app",
            "message": "owner_org is required: the id of the organization the app will belong "
            "to (GET /organization lists yours)",
            "moreInfo": {},
        }

    async def test_duplicate_app_id_is_refused(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        first = await create_app(client, alice, "com.alice.app")
        response = await post_app(
            client, alice.headers, app_id="com.alice.app", name="Again", owner_org=alice.org_id
        )
        assert error_of(response) == (400, "cannot_create_app")
        assert response.json()["message"] == TAKEN.format("com.alice.app")
        response = await client.get("/app/com.alice.app", headers=alice.headers)
        assert response.json() == first

    async def test_another_tenants_app_id_is_refused_without_its_data(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        await create_app(client, bob, "com.bob.app", name="Bob secret")
        response = await post_app(
            client, alice.headers, app_id="com.bob.app", name="Mine", owner_org=alice.org_id
        )
        assert response.status_code == 400
        assert response.json() == {
            "error": "cannot_create_app",
            "message": TAKEN.format("com.bob.app"),
            "moreInfo": {},
        }

    @pytest.mark.parametrize("content", [b"not json", b"[1, 2]", b""])
    async def test_body_must_be_a_json_object(
        self, client: httpx.AsyncClient, alice: Account, content: bytes
    ) -> None:
        response = await client.post(
            "/app",
            content=content,
            headers={**alice.headers, "content-type": "application/json"},
        )
        assert error_of(response) == (400, "invalid_json_parse_body")

    @pytest.mark.parametrize(
        "field", [{"name": 5}, {"name": "x" * 256}, {"icon": ["a"]}, {"owner_org": 3}]
    )
    async def test_wrong_field_types_are_invalid_body(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, field: dict[str, Any]
    ) -> None:
        body = {"app_id": "com.alice.app", "name": "A", "owner_org": alice.org_id, **field}
        response = await client.post("/app", json=body, headers=alice.headers)
        assert error_of(response) == (400, "invalid_body")
        assert await rows(app, App) == []
