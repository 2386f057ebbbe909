"""``GET /app`` and ``GET /app/:id`` (spec §3.7, §3.8)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from capgo_server.models import App, AppIdReservation
from tests.apps.helpers import APP_FIELDS, JS_ISO, RANDOM_ORG, create_app, create_org, key_of
from tests.conftest import Account, error_of, make_account, make_key
from tests.members.helpers import add_member, invite

INVALID_APIKEY = {"error": "invalid_apikey", "message": "Invalid apikey", "moreInfo": {}}


def cannot_access(app_id: str) -> dict[str, object]:
    return {
        "error": "cannot_access_app",
        "message": "You can't access this app",
        "moreInfo": {"app_id": app_id},
    }


async def app_ids(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> list[str]:
    response = await client.get("/app", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [row["app_id"] for row in response.json()]


class TestListApps:
    async def test_no_apps_is_an_empty_list(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await client.get("/app", headers=alice.headers)
        assert response.status_code == 200
        assert response.json() == []

    async def test_lists_full_rows_oldest_first(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        first = await create_app(client, alice, "com.alice.one")
        second = await create_app(client, alice, "com.alice.two")
        response = await client.get("/app", headers=alice.headers)
        assert response.status_code == 200
        assert response.json() == [first, second]
        assert set(first) == APP_FIELDS

    async def test_never_lists_another_orgs_apps(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        await create_app(client, alice, "com.alice.app")
        await create_app(client, bob, "com.bob.app")
        assert await app_ids(client, alice.headers) == ["com.alice.app"]
        assert await app_ids(client, bob.headers) == ["com.bob.app"]

    async def test_members_see_their_orgs_apps(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, "com.alice.app")
        reader = await add_member(client, app, alice, "reader@example.com", "read")
        assert await app_ids(client, reader.headers) == ["com.alice.app"]

    async def test_pending_invitation_sees_nothing(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, "com.alice.app")
        invited = await make_account(app, "invited@example.com")
        response = await invite(client, alice, alice.org_id, invited.email, "admin")
        assert response.status_code == 200
        assert await app_ids(client, invited.headers) == []

    async def test_pages_by_limit(self, client: httpx.AsyncClient, alice: Account) -> None:
        for name in ("a", "b", "c"):
            await create_app(client, alice, f"com.alice.{name}")
        assert await app_ids(client, alice.headers, limit=2) == ["com.alice.a", "com.alice.b"]
        assert await app_ids(client, alice.headers, limit="2", page="1") == ["com.alice.c"]
        assert await app_ids(client, alice.headers, limit=2, page=2) == []

    async def test_default_page_is_50_and_limit_is_capped_at_100(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        ids = [f"com.bulk.a{n:03d}" for n in range(101)]
        async with app.state.sessionmaker() as session, session.begin():
            # Every app lives inside its id's reservation (apps.reservations).
            session.add_all(AppIdReservation(app_id=i, org_id=alice.org_id) for i in ids)
            await session.flush()
            session.add_all(
                App(app_id=i, owner_org=alice.org_id, name=f"n{n}") for n, i in enumerate(ids)
            )
        assert len(await app_ids(client, alice.headers)) == 50
        assert len(await app_ids(client, alice.headers, page=2)) == 1
        assert len(await app_ids(client, alice.headers, limit=1000)) == 100

    @pytest.mark.parametrize("params", [{"page": -1}, {"page": "x"}, {"limit": 0}])
    async def test_bad_page_or_limit_is_invalid_body(
        self, client: httpx.AsyncClient, alice: Account, params: dict[str, Any]
    ) -> None:
        response = await client.get("/app", params=params, headers=alice.headers)
        assert error_of(response) == (400, "invalid_body")

    async def test_org_id_narrows_to_one_org(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        other_org = await create_org(client, alice, "Alice Second")
        await create_app(client, alice, "com.alice.main")
        await create_app(client, alice, "com.alice.second", org_id=other_org)
        assert await app_ids(client, alice.headers) == ["com.alice.main", "com.alice.second"]
        assert await app_ids(client, alice.headers, org_id=other_org) == ["com.alice.second"]
        assert await app_ids(client, alice.headers, org_id=alice.org_id) == ["com.alice.main"]

    @pytest.mark.parametrize("org", ["foreign", RANDOM_ORG, "not-a-uuid"])
    async def test_org_id_not_a_membership_is_refused(
        self, client: httpx.AsyncClient, alice: Account, bob: Account, org: str
    ) -> None:
        await create_app(client, bob, "com.bob.app")
        org_id = bob.org_id if org == "foreign" else org
        response = await client.get("/app", params={"org_id": org_id}, headers=alice.headers)
        assert response.status_code == 400
        assert response.json() == {
            "error": "user_does_not_have_access_to_this_organization",
            "message": "User does not have access to this organization",
            "moreInfo": {"org_id": org_id},
        }

    async def test_app_limited_key_sees_only_its_apps(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await create_app(client, alice, "com.alice.one")
        await create_app(client, alice, "com.alice.two")
        headers = await key_of(client, alice, mode="read", limited_to_apps=["com.alice.two"])
        assert await app_ids(client, headers) == ["com.alice.two"]
        assert await app_ids(client, headers, org_id=alice.org_id) == ["com.alice.two"]

    async def test_org_limited_key_sees_only_its_orgs(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        other_org = await create_org(client, alice, "Alice Second")
        await create_app(client, alice, "com.alice.main")
        await create_app(client, alice, "com.alice.second", org_id=other_org)
        headers = await key_of(client, alice, mode="all", limited_to_orgs=[other_org])
        assert await app_ids(client, headers) == ["com.alice.second"]
        response = await client.get("/app", params={"org_id": alice.org_id}, headers=headers)
        assert error_of(response) == (400, "user_does_not_have_access_to_this_organization")

    async def test_subkey_narrows_the_list_and_the_reads(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await create_app(client, alice, "com.alice.one")
        await create_app(client, alice, "com.alice.two")
        subkey = await make_key(client, alice, mode="read", limited_to_apps=["com.alice.two"])
        headers = {**alice.headers, "x-limited-key-id": str(subkey["id"])}
        assert await app_ids(client, headers) == ["com.alice.two"]
        response = await client.get("/app/com.alice.one", headers=headers)
        assert response.status_code == 401
        assert response.json() == cannot_access("com.alice.one")

    @pytest.mark.parametrize("mode", ["write", "upload"])
    async def test_write_and_upload_keys_are_refused(
        self, client: httpx.AsyncClient, alice: Account, mode: str
    ) -> None:
        headers = await key_of(client, alice, mode=mode)
        response = await client.get("/app", headers=headers)
        assert response.status_code == 401
        assert response.json() == INVALID_APIKEY

    async def test_read_key_is_accepted(self, client: httpx.AsyncClient, alice: Account) -> None:
        await create_app(client, alice, "com.alice.app")
        headers = await key_of(client, alice, mode="read")
        assert await app_ids(client, headers) == ["com.alice.app"]

    async def test_no_key_is_401(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/app")
        assert error_of(response) == (401, "no_key_provided")


class TestGetApp:
    async def test_returns_the_row(self, client: httpx.AsyncClient, alice: Account) -> None:
        created = await create_app(client, alice, "com.alice.app")
        response = await client.get("/app/com.alice.app", headers=alice.headers)
        assert response.status_code == 200
        assert response.json() == created
        assert JS_ISO.match(created["created_at"])
        assert JS_ISO.match(created["updated_at"])

    @pytest.mark.parametrize("app_id", ["invalid_app", ".com.x", "com", "com.x%20y"])
    async def test_invalid_id_is_400(
        self, client: httpx.AsyncClient, alice: Account, app_id: str
    ) -> None:
        response = await client.get(f"/app/{app_id}", headers=alice.headers)
        assert error_of(response) == (400, "invalid_app_id")

    async def test_unknown_app_is_401_cannot_access_app(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await client.get("/app/com.nobody.app", headers=alice.headers)
        assert response.status_code == 401
        assert response.json() == cannot_access("com.nobody.app")

    async def test_foreign_app_looks_exactly_like_an_unknown_one(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        await create_app(client, bob, "com.bob.app", name="Bob's secret")
        response = await client.get("/app/com.bob.app", headers=alice.headers)
        assert response.status_code == 401
        assert response.json() == cannot_access("com.bob.app")

    async def test_key_limited_to_other_apps_is_refused(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await create_app(client, alice, "com.alice.one")
        await create_app(client, alice, "com.alice.two")
        headers = await key_of(client, alice, mode="read", limited_to_apps=["com.alice.two"])
        response = await client.get("/app/com.alice.one", headers=headers)
        assert response.status_code == 401
        assert response.json() == cannot_access("com.alice.one")
        response = await client.get("/app/com.alice.two", headers=headers)
        assert response.status_code == 200

    async def test_write_key_is_refused(self, client: httpx.AsyncClient, alice: Account) -> None:
        await create_app(client, alice, "com.alice.app")
        headers = await key_of(client, alice, mode="write")
        response = await client.get("/app/com.alice.app", headers=headers)
        assert response.status_code == 401
        assert response.json() == INVALID_APIKEY
