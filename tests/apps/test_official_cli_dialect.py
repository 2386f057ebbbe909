"""``GET /app/{id}`` and ``POST /app`` as the official CLI sees them (House decisions,
``cli_compat/dialect.py``): a request with a ``capgkey`` header may read the app with a key of
any mode, gets 404 ``app_not_found`` for an app it cannot read and 409 ``app_id_already_exists``
for a taken id. Without ``capgkey`` the answers stay ``[C]``'s."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from capgo_server.models import App
from tests.apps.helpers import create_app, rows
from tests.conftest import Account, make_account, make_key
from tests.members.helpers import add_member, invite

ALICE_APP = "com.alice.app"
BOB_APP = "com.bob.app"
TAKEN = (
    "The app id {} is already taken on this server (by an app, or kept for the organization of "
    "a deleted app): choose another app id"
)


def cli(key: str) -> dict[str, str]:
    """The official CLI's headers on the core routes: the raw key in both headers."""
    return {"capgkey": key, "authorization": key}


def app_not_found(app_id: str) -> dict[str, Any]:
    return {
        "error": "app_not_found",
        "message": f"No app {app_id} that this key can read: create it first (POST /app, or "
        "the CLI's app add), or use a key of its organization",
        "moreInfo": {"app_id": app_id},
    }


def cannot_access(app_id: str) -> dict[str, Any]:
    return {
        "error": "cannot_access_app",
        "message": "You can't access this app",
        "moreInfo": {"app_id": app_id},
    }


async def key_of_mode(client: httpx.AsyncClient, owner: Account, mode: str, **fields: Any) -> str:
    key: str = (await make_key(client, owner, mode=mode, **fields))["key"]
    return key


class TestReadForTheCli:
    @pytest.mark.parametrize("mode", ["all", "write", "upload", "read"])
    async def test_any_key_mode_reads_the_app(
        self, client: httpx.AsyncClient, alice: Account, mode: str
    ) -> None:
        created = await create_app(client, alice, ALICE_APP)
        key = await key_of_mode(client, alice, mode)
        response = await client.get(f"/app/{ALICE_APP}", headers=cli(key))
        assert response.status_code == 200
        assert response.json() == created

    @pytest.mark.parametrize("mode", ["write", "upload"])
    async def test_without_capgkey_those_modes_stay_refused(
        self, client: httpx.AsyncClient, alice: Account, mode: str
    ) -> None:
        await create_app(client, alice, ALICE_APP)
        key = await key_of_mode(client, alice, mode)
        response = await client.get(f"/app/{ALICE_APP}", headers={"authorization": key})
        assert response.status_code == 401
        assert response.json() == {
            "error": "invalid_apikey",
            "message": "Invalid apikey",
            "moreInfo": {},
        }

    async def test_capgkey_alone_is_enough(self, client: httpx.AsyncClient, alice: Account) -> None:
        created = await create_app(client, alice, ALICE_APP)
        key = await key_of_mode(client, alice, "upload")
        response = await client.get(f"/app/{ALICE_APP}", headers={"capgkey": key})
        assert response.status_code == 200
        assert response.json() == created

    async def test_unknown_and_foreign_apps_answer_alike(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        await create_app(client, bob, BOB_APP)
        for app_id in (BOB_APP, "com.nobody.app"):
            response = await client.get(f"/app/{app_id}", headers=cli(alice.key))
            assert response.status_code == 404
            assert response.json() == app_not_found(app_id)

    async def test_without_capgkey_unknown_and_foreign_stay_401(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        await create_app(client, bob, BOB_APP)
        for app_id in (BOB_APP, "com.nobody.app"):
            response = await client.get(f"/app/{app_id}", headers=alice.headers)
            assert response.status_code == 401
            assert response.json() == cannot_access(app_id)

    async def test_blank_capgkey_is_not_the_cli(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        headers = {"capgkey": "  ", "authorization": alice.key}
        response = await client.get("/app/com.nobody.app", headers=headers)
        assert response.status_code == 401
        assert response.json() == cannot_access("com.nobody.app")

    @pytest.mark.parametrize("mode", ["all", "upload"])
    async def test_key_limited_to_another_app_gets_404(
        self, client: httpx.AsyncClient, alice: Account, mode: str
    ) -> None:
        await create_app(client, alice, ALICE_APP)
        await create_app(client, alice, "com.alice.other")
        key = await key_of_mode(client, alice, mode, limited_to_apps=["com.alice.other"])
        response = await client.get(f"/app/{ALICE_APP}", headers=cli(key))
        assert response.status_code == 404
        assert response.json() == app_not_found(ALICE_APP)
        assert (await client.get("/app/com.alice.other", headers=cli(key))).status_code == 200

    async def test_subkey_limited_to_another_app_gets_404(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await create_app(client, alice, ALICE_APP)
        await create_app(client, alice, "com.alice.other")
        subkey = await make_key(client, alice, mode="upload", limited_to_apps=["com.alice.other"])
        headers = {**cli(alice.key), "x-limited-key-id": str(subkey["id"])}
        response = await client.get(f"/app/{ALICE_APP}", headers=headers)
        assert response.status_code == 404
        assert response.json() == app_not_found(ALICE_APP)
        assert (await client.get("/app/com.alice.other", headers=headers)).status_code == 200

    async def test_a_pending_invitation_has_no_read_role(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, ALICE_APP)
        invited = await make_account(app, "invited@example.com")
        assert (
            await invite(client, alice, alice.org_id, invited.email, "admin")
        ).status_code == 200
        response = await client.get(f"/app/{ALICE_APP}", headers=cli(invited.key))
        assert response.status_code == 404
        assert response.json() == app_not_found(ALICE_APP)

    async def test_a_read_member_with_an_upload_key_reads(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        created = await create_app(client, alice, ALICE_APP)
        reader = await add_member(client, app, alice, "reader@example.com", "read")
        key = await key_of_mode(client, reader, "upload")
        response = await client.get(f"/app/{ALICE_APP}", headers=cli(key))
        assert response.status_code == 200
        assert response.json() == created

    async def test_unknown_key_and_invalid_id_are_refused_as_before(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await client.get(
            f"/app/{ALICE_APP}", headers=cli("6f1c2a54-3b7e-4d0a-9c85-2e4b7f9d1a03")
        )
        assert (response.status_code, response.json()["error"]) == (401, "invalid_apikey")
        response = await client.get("/app/not_an_app_id", headers=cli(alice.key))
        assert (response.status_code, response.json()["error"]) == (400, "invalid_app_id")


class TestCreateForTheCli:
    async def post_app(
        self, client: httpx.AsyncClient, headers: dict[str, str], owner: Account, app_id: str
    ) -> httpx.Response:
        body = {"app_id": app_id, "name": "Demo", "owner_org": owner.org_id}
        return await client.post("/app", json=body, headers=headers)

    async def test_creates_as_usual(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        response = await self.post_app(client, cli(alice.key), alice, ALICE_APP)
        assert response.status_code == 200
        assert response.json()["app_id"] == ALICE_APP
        assert [row.app_id for row in await rows(app, App)] == [ALICE_APP]

    async def test_own_existing_id_is_409_and_the_cli_then_finds_it(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        created = await create_app(client, alice, ALICE_APP)
        response = await self.post_app(client, cli(alice.key), alice, ALICE_APP)
        assert response.status_code == 409
        assert response.json() == {
            "error": "app_id_already_exists",
            "message": TAKEN.format(ALICE_APP),
            "moreInfo": {},
        }
        # What the CLI does next: read the app and succeed when owner_org is its own.
        found = await client.get(f"/app/{ALICE_APP}", headers=cli(alice.key))
        assert found.status_code == 200
        assert found.json() == created
        assert len(await rows(app, App)) == 1

    async def test_foreign_and_reserved_ids_are_409_alike(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
    ) -> None:
        await create_app(client, bob, BOB_APP)
        await create_app(client, bob, "com.bob.gone")
        assert (await client.delete("/app/com.bob.gone", headers=bob.headers)).status_code == 200
        for app_id in (BOB_APP, "com.bob.gone"):
            response = await self.post_app(client, cli(alice.key), alice, app_id)
            assert response.status_code == 409
            assert response.json() == {
                "error": "app_id_already_exists",
                "message": TAKEN.format(app_id),
                "moreInfo": {},
            }
            # The CLI's follow-up read cannot tell the two apart either.
            found = await client.get(f"/app/{app_id}", headers=cli(alice.key))
            assert found.status_code == 404
            assert found.json() == app_not_found(app_id)
        assert sorted(row.owner_org for row in await rows(app, App)) == [bob.org_id]

    async def test_without_capgkey_a_taken_id_stays_400(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await create_app(client, alice, ALICE_APP)
        response = await self.post_app(client, alice.headers, alice, ALICE_APP)
        assert response.status_code == 400
        assert response.json() == {
            "error": "cannot_create_app",
            "message": TAKEN.format(ALICE_APP),
            "moreInfo": {},
        }

    async def test_other_refusals_are_unchanged(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        response = await self.post_app(client, cli(alice.key), bob, ALICE_APP)
        assert (response.status_code, response.json()["error"]) == (
            403,
            "cannot_access_organization",
        )
        key = await key_of_mode(client, alice, "upload")
        response = await self.post_app(client, cli(key), alice, ALICE_APP)
        assert (response.status_code, response.json()["error"]) == (401, "invalid_apikey")
