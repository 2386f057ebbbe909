"""Sub-keys (``x-limited-key-id``): same user only, and they narrow every route (House decision)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.auth.helpers import (
    auth,
    create_org,
    expire_key,
    in_days,
    key_limited_to_org,
    org_ids,
)
from tests.conftest import Account, error_of, make_key

INVALID_SUBKEY = {"error": "invalid_subkey", "message": "Invalid subkey", "moreInfo": {}}


class TestSubKeyNarrowing:
    async def test_org_list_shows_only_the_subkeys_org(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await create_org(client, alice)
        sub = await key_limited_to_org(client, alice, alice.org_id)
        assert await org_ids(client, auth(alice.key, sub["id"])) == [alice.org_id]

    async def test_other_org_is_refused(self, client: httpx.AsyncClient, alice: Account) -> None:
        second = await create_org(client, alice)
        sub = await key_limited_to_org(client, alice, alice.org_id)
        response = await client.get(
            "/organization", params={"orgId": second}, headers=auth(alice.key, sub["id"])
        )
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_org_id",
            "message": "You can't access this organization",
            "moreInfo": {"org_id": second},
        }

    async def test_other_org_cannot_be_changed(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        second = await create_org(client, alice)
        sub = await key_limited_to_org(client, alice, alice.org_id)
        headers = auth(alice.key, sub["id"])
        updated = await client.put(
            "/organization", json={"orgId": second, "name": "Renamed"}, headers=headers
        )
        assert error_of(updated) == (400, "cannot_access_organization")
        deleted = await client.delete("/organization", params={"orgId": second}, headers=headers)
        assert error_of(deleted) == (403, "invalid_org_id")
        members = await client.get(
            "/organization/members", params={"orgId": second}, headers=headers
        )
        assert error_of(members) == (400, "cannot_access_organization")
        assert set(await org_ids(client, alice.headers)) == {alice.org_id, second}

    async def test_subkeys_org_stays_reachable(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        sub = await key_limited_to_org(client, alice, alice.org_id)
        response = await client.get(
            "/organization", params={"orgId": alice.org_id}, headers=auth(alice.key, sub["id"])
        )
        assert response.status_code == 200
        assert response.json()["id"] == alice.org_id

    async def test_read_subkey_narrows_the_mode(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        sub = await key_limited_to_org(client, alice, alice.org_id, mode="read")
        response = await client.put(
            "/organization",
            json={"orgId": alice.org_id, "name": "Renamed"},
            headers=auth(alice.key, sub["id"]),
        )
        assert error_of(response) == (400, "cannot_access_organization")
        org = await client.get(
            "/organization", params={"orgId": alice.org_id}, headers=alice.headers
        )
        assert org.json()["name"] == "Alice Org"

    async def test_subkey_never_widens_the_parent(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        second = await create_org(client, alice)
        parent = await key_limited_to_org(client, alice, alice.org_id)
        sub = await key_limited_to_org(client, alice, second)
        headers = auth(parent["key"], sub["id"])
        response = await client.get("/organization", params={"orgId": second}, headers=headers)
        assert error_of(response) == (400, "invalid_org_id")
        assert second not in await org_ids(client, headers)
        updated = await client.put(
            "/organization", json={"orgId": second, "name": "Renamed"}, headers=headers
        )
        assert error_of(updated) == (400, "cannot_access_organization")

    async def test_subkey_narrows_key_management(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        sub = await key_limited_to_org(client, alice, alice.org_id)
        response = await client.get("/apikey", headers=auth(alice.key, sub["id"]))
        assert error_of(response) == (401, "cannot_list_apikeys")


class TestInvalidSubKeys:
    async def test_another_users_subkey_is_refused(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        bobs = await key_limited_to_org(client, bob, bob.org_id)
        for path in ("/organization", "/apikey"):
            response = await client.get(path, headers=auth(alice.key, bobs["id"]))
            assert response.status_code == 401
            assert response.json() == INVALID_SUBKEY
        response = await client.get(
            "/organization", params={"orgId": bob.org_id}, headers=auth(alice.key, bobs["id"])
        )
        assert error_of(response) == (401, "invalid_subkey")

    async def test_unlimited_subkey_is_refused(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        unlimited = await make_key(client, alice, name="unlimited")
        response = await client.get("/organization", headers=auth(alice.key, unlimited["id"]))
        assert response.status_code == 401
        assert response.json() == {
            "error": "invalid_subkey",
            "message": "Invalid subkey, no limited apps or orgs",
            "moreInfo": {},
        }

    @pytest.mark.parametrize(
        "header", ["abc", "0", "-1", "1.5", "424242", "", "99999999999999999999999"]
    )
    async def test_malformed_or_unknown_id_is_refused(
        self, client: httpx.AsyncClient, alice: Account, header: str
    ) -> None:
        response = await client.get("/organization", headers=auth(alice.key, header))
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_subkey"

    async def test_expired_subkey_is_refused(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        sub = await key_limited_to_org(client, alice, alice.org_id, expires_at=in_days(1))
        assert (
            await client.get("/organization", headers=auth(alice.key, sub["id"]))
        ).status_code == 200
        await expire_key(app, sub["id"])
        response = await client.get("/organization", headers=auth(alice.key, sub["id"]))
        assert response.status_code == 401
        assert response.json() == INVALID_SUBKEY

    async def test_subkey_of_a_refused_mode_is_refused(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        sub = await key_limited_to_org(client, alice, alice.org_id, mode="read")
        response = await client.get("/apikey", headers=auth(alice.key, sub["id"]))
        assert error_of(response) == (401, "invalid_subkey")

    async def test_subkey_alone_does_not_authenticate(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        sub = await key_limited_to_org(client, alice, alice.org_id)
        response = await client.get("/organization", headers={"x-limited-key-id": str(sub["id"])})
        assert error_of(response) == (401, "no_key_provided")
