"""``GET /functions/v1/app/{app_id}``: the official CLI's app check (plan §1.4). The caller is
the key in ``capgkey`` (any mode; ``Authorization`` carries the public anon value), the answer
``GET /app/{id}``'s JSON, and 404 ``app_not_found`` alike for unknown, foreign and excluded
apps."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.apps.helpers import create_app
from tests.conftest import Account, expire_key, in_days, make_account, make_key
from tests.members.helpers import add_member, invite

ALICE_APP = "com.alice.app"
BOB_APP = "com.bob.app"
#: What the CLI sends in ``Authorization`` there: the anon value of ``/private/config``.
ANON = "Bearer anon-identifies-nobody"


def fn(key: str) -> dict[str, str]:
    """The CLI's headers under ``/functions/v1``."""
    return {"capgkey": key, "authorization": ANON}


def app_not_found(app_id: str) -> dict[str, Any]:
    return {
        "error": "app_not_found",
        "message": f"No app {app_id} that this key can read: create it first (POST /app, or "
        "the CLI's app add), or use a key of its organization",
        "moreInfo": {"app_id": app_id},
    }


async def check(client: httpx.AsyncClient, app_id: str, headers: dict[str, str]) -> httpx.Response:
    return await client.get(f"/functions/v1/app/{app_id}", headers=headers)


class TestAnswer:
    @pytest.mark.parametrize("mode", ["all", "write", "upload", "read"])
    async def test_any_key_mode_gets_the_app_as_get_app_returns_it(
        self, client: httpx.AsyncClient, alice: Account, mode: str
    ) -> None:
        created = await create_app(client, alice, ALICE_APP)
        key = (await make_key(client, alice, mode=mode))["key"]
        response = await check(client, ALICE_APP, fn(key))
        assert response.status_code == 200
        assert response.json() == created
        assert (await client.get(f"/app/{ALICE_APP}", headers=alice.headers)).json() == created

    async def test_a_read_member_reads(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        created = await create_app(client, alice, ALICE_APP)
        reader = await add_member(client, app, alice, "reader@example.com", "read")
        response = await check(client, ALICE_APP, fn(reader.key))
        assert response.status_code == 200
        assert response.json() == created

    async def test_not_in_the_openapi_document(self, client: httpx.AsyncClient) -> None:
        paths = (await client.get("/openapi.json")).json()["paths"]
        assert not [path for path in paths if path.startswith("/functions")]


class TestNotFound:
    async def test_unknown_and_foreign_apps_answer_alike(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        await create_app(client, bob, BOB_APP)
        for app_id in (BOB_APP, "com.nobody.app"):
            response = await check(client, app_id, fn(alice.key))
            assert response.status_code == 404
            assert response.json() == app_not_found(app_id)
        assert (await check(client, BOB_APP, fn(bob.key))).status_code == 200

    @pytest.mark.parametrize("mode", ["all", "upload"])
    async def test_key_limited_to_another_app(
        self, client: httpx.AsyncClient, alice: Account, mode: str
    ) -> None:
        await create_app(client, alice, ALICE_APP)
        await create_app(client, alice, "com.alice.other")
        key = (await make_key(client, alice, mode=mode, limited_to_apps=["com.alice.other"]))["key"]
        response = await check(client, ALICE_APP, fn(key))
        assert response.status_code == 404
        assert response.json() == app_not_found(ALICE_APP)
        assert (await check(client, "com.alice.other", fn(key))).status_code == 200

    async def test_subkey_limited_to_another_app(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await create_app(client, alice, ALICE_APP)
        await create_app(client, alice, "com.alice.other")
        subkey = await make_key(client, alice, mode="read", limited_to_apps=["com.alice.other"])
        headers = {**fn(alice.key), "x-limited-key-id": str(subkey["id"])}
        response = await check(client, ALICE_APP, headers)
        assert response.status_code == 404
        assert response.json() == app_not_found(ALICE_APP)
        assert (await check(client, "com.alice.other", headers)).status_code == 200

    async def test_key_limited_to_another_org(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await create_app(client, alice, ALICE_APP)
        other_org = (
            await client.post("/organization", json={"name": "Other"}, headers=alice.headers)
        ).json()["id"]
        key = (await make_key(client, alice, limited_to_orgs=[other_org]))["key"]
        response = await check(client, ALICE_APP, fn(key))
        assert response.status_code == 404
        assert response.json() == app_not_found(ALICE_APP)

    async def test_a_pending_invitation_has_no_read_role(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, ALICE_APP)
        invited = await make_account(app, "invited@example.com")
        assert (
            await invite(client, alice, alice.org_id, invited.email, "admin")
        ).status_code == 200
        response = await check(client, ALICE_APP, fn(invited.key))
        assert response.status_code == 404
        assert response.json() == app_not_found(ALICE_APP)


class TestCaller:
    async def test_the_key_in_authorization_is_not_read(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await create_app(client, alice, ALICE_APP)
        for headers in ({"authorization": alice.key}, {"x-api-key": alice.key}, {}):
            response = await check(client, ALICE_APP, headers)
            assert response.status_code == 401
            assert response.json() == {
                "error": "no_key_provided",
                "message": "No key provided",
                "moreInfo": {},
            }

    @pytest.mark.parametrize(
        "key", ["6f1c2a54-3b7e-4d0a-9c85-2e4b7f9d1a03", "anon-identifies-nobody", "x" * 5000]
    )
    async def test_an_unknown_key_is_refused(
        self, client: httpx.AsyncClient, alice: Account, key: str
    ) -> None:
        await create_app(client, alice, ALICE_APP)
        response = await check(client, ALICE_APP, fn(key))
        assert response.status_code == 401
        assert response.json() == {
            "error": "invalid_apikey",
            "message": "Invalid apikey",
            "moreInfo": {},
        }

    async def test_an_expired_key_is_refused(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, ALICE_APP)
        key = await make_key(client, alice, expires_at=in_days(1))
        await expire_key(app, key["id"])
        response = await check(client, ALICE_APP, fn(key["key"]))
        assert (response.status_code, response.json()["error"]) == (401, "invalid_apikey")

    async def test_an_invalid_app_id_is_400(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await check(client, "not_an_app_id", fn(alice.key))
        assert (response.status_code, response.json()["error"]) == (400, "invalid_app_id")
