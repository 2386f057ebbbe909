"""How the caller is resolved (spec §2.2, House decisions): headers, expiry, modes, org limits."""

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

INVALID_APIKEY = {"error": "invalid_apikey", "message": "Invalid apikey", "moreInfo": {}}


class TestMissingOrUnknownKey:
    async def test_no_key_on_organization(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/organization")
        assert response.status_code == 401
        assert response.json() == {
            "error": "no_key_provided",
            "message": "No key provided",
            "moreInfo": {},
        }

    async def test_no_key_on_apikey(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/apikey")
        assert response.status_code == 401
        assert response.json() == {
            "error": "no_jwt_apikey_or_subkey",
            "message": "No JWT, apikey or subkey provided",
            "moreInfo": {},
        }

    @pytest.mark.parametrize("header", ["authorization", "capgkey", "x-api-key"])
    async def test_blank_header_is_no_key(self, client: httpx.AsyncClient, header: str) -> None:
        response = await client.get("/organization", headers={header: "  "})
        assert error_of(response) == (401, "no_key_provided")

    @pytest.mark.parametrize("path", ["/organization", "/apikey"])
    # A fixed well-formed key that no one holds: a random one would give each pytest-xdist
    # worker a different test id, and xdist refuses to run workers that collected differently.
    @pytest.mark.parametrize(
        "key", ["6f1c2a54-3b7e-4d0a-9c85-2e4b7f9d1a03", "not-a-key", "x" * 5000]
    )
    async def test_unknown_key(
        self, client: httpx.AsyncClient, alice: Account, path: str, key: str
    ) -> None:
        response = await client.get(path, headers={"authorization": key})
        assert response.status_code == 401
        assert response.json() == INVALID_APIKEY

    async def test_key_of_another_case_is_unknown(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await client.get("/organization", headers=auth(alice.key.upper()))
        assert error_of(response) == (401, "invalid_apikey")


HEADER_FORMS = {
    "capgkey": lambda key: {"capgkey": key},
    "authorization": lambda key: {"authorization": key},
    "bearer": lambda key: {"authorization": f"Bearer {key}"},
    "x-api-key": lambda key: {"x-api-key": key},
}


class TestKeyHeaders:
    @pytest.mark.parametrize("form", sorted(HEADER_FORMS))
    async def test_organization_accepts_header(
        self, client: httpx.AsyncClient, alice: Account, form: str
    ) -> None:
        response = await client.get("/organization", headers=HEADER_FORMS[form](alice.key))
        assert response.status_code == 200
        assert [org["id"] for org in response.json()] == [alice.org_id]

    @pytest.mark.parametrize("form", sorted(HEADER_FORMS))
    async def test_apikey_accepts_header(
        self, client: httpx.AsyncClient, alice: Account, form: str
    ) -> None:
        response = await client.get("/apikey", headers=HEADER_FORMS[form](alice.key))
        assert response.status_code == 200
        assert [key["key"] for key in response.json()] == [alice.key]

    async def test_hashed_key_accepted_as_bearer(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        hashed = await make_key(client, alice, hashed=True)
        response = await client.get(
            "/organization", headers={"authorization": f"Bearer {hashed['key']}"}
        )
        assert response.status_code == 200
        assert [org["id"] for org in response.json()] == [alice.org_id]

    async def test_keys_resolve_to_their_own_user(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        assert await org_ids(client, alice.headers) == [alice.org_id]
        assert await org_ids(client, bob.headers) == [bob.org_id]


class TestExpiredKeys:
    @pytest.mark.parametrize("hashed", [False, True])
    @pytest.mark.parametrize("path", ["/organization", "/apikey"])
    async def test_expired_key_is_invalid(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, hashed: bool, path: str
    ) -> None:
        key = await make_key(client, alice, hashed=hashed, expires_at=in_days(1))
        assert (await client.get(path, headers=auth(key["key"]))).status_code == 200
        await expire_key(app, key["id"])
        response = await client.get(path, headers=auth(key["key"]))
        assert response.status_code == 401
        assert response.json() == INVALID_APIKEY

    async def test_expired_key_cannot_write(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        key = await make_key(client, alice, expires_at=in_days(1))
        await expire_key(app, key["id"])
        response = await client.post(
            "/organization", json={"name": "Late Org"}, headers=auth(key["key"])
        )
        assert error_of(response) == (401, "invalid_apikey")
        assert await org_ids(client, alice.headers) == [alice.org_id]

    async def test_unexpired_key_works(self, client: httpx.AsyncClient, alice: Account) -> None:
        key = await make_key(client, alice, expires_at=in_days(1))
        assert await org_ids(client, auth(key["key"])) == [alice.org_id]


class TestReadOnlyKeys:
    async def test_read_key_can_list_and_get(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        read = await make_key(client, alice, mode="read")
        assert await org_ids(client, auth(read["key"])) == [alice.org_id]
        response = await client.get(
            "/organization", params={"orgId": alice.org_id}, headers=auth(read["key"])
        )
        assert response.status_code == 200
        assert response.json()["id"] == alice.org_id

    @pytest.mark.parametrize("mode", ["read", "upload"])
    async def test_cannot_create_org(
        self, client: httpx.AsyncClient, alice: Account, mode: str
    ) -> None:
        weak = await make_key(client, alice, mode=mode)
        response = await client.post(
            "/organization", json={"name": "Sneaky Org"}, headers=auth(weak["key"])
        )
        assert error_of(response) == (400, "cannot_create_org")
        assert await org_ids(client, alice.headers) == [alice.org_id]

    @pytest.mark.parametrize("mode", ["read", "upload"])
    async def test_cannot_update_org(
        self, client: httpx.AsyncClient, alice: Account, mode: str
    ) -> None:
        weak = await make_key(client, alice, mode=mode)
        response = await client.put(
            "/organization",
            json={"orgId": alice.org_id, "name": "Renamed"},
            headers=auth(weak["key"]),
        )
        assert response.status_code == 400
        assert response.json() == {
            "error": "cannot_access_organization",
            "message": "You can't access this organization",
            "moreInfo": {"orgId": alice.org_id},
        }
        org = await client.get(
            "/organization", params={"orgId": alice.org_id}, headers=alice.headers
        )
        assert org.json()["name"] == "Alice Org"

    @pytest.mark.parametrize("mode", ["read", "upload"])
    async def test_cannot_delete_org(
        self, client: httpx.AsyncClient, alice: Account, mode: str
    ) -> None:
        weak = await make_key(client, alice, mode=mode)
        response = await client.delete(
            "/organization", params={"orgId": alice.org_id}, headers=auth(weak["key"])
        )
        assert error_of(response) == (403, "invalid_org_id")
        assert await org_ids(client, alice.headers) == [alice.org_id]

    async def test_read_key_cannot_manage_keys(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        read = await make_key(client, alice, mode="read")
        response = await client.post(
            "/apikey", json={"name": "all please"}, headers=auth(read["key"])
        )
        assert response.status_code == 401
        assert response.json() == INVALID_APIKEY


class TestOrgLimitedKeys:
    async def test_sees_only_its_org(self, client: httpx.AsyncClient, alice: Account) -> None:
        second = await create_org(client, alice)
        assert set(await org_ids(client, alice.headers)) == {alice.org_id, second}
        limited = await key_limited_to_org(client, alice, alice.org_id)
        assert await org_ids(client, auth(limited["key"])) == [alice.org_id]

    async def test_can_get_its_org(self, client: httpx.AsyncClient, alice: Account) -> None:
        limited = await key_limited_to_org(client, alice, alice.org_id)
        response = await client.get(
            "/organization", params={"orgId": alice.org_id}, headers=auth(limited["key"])
        )
        assert response.status_code == 200
        assert response.json()["id"] == alice.org_id

    async def test_cannot_get_other_org(self, client: httpx.AsyncClient, alice: Account) -> None:
        second = await create_org(client, alice)
        limited = await key_limited_to_org(client, alice, alice.org_id)
        response = await client.get(
            "/organization", params={"orgId": second}, headers=auth(limited["key"])
        )
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_org_id",
            "message": "You can't access this organization",
            "moreInfo": {"org_id": second},
        }

    async def test_cannot_update_other_org(self, client: httpx.AsyncClient, alice: Account) -> None:
        second = await create_org(client, alice)
        limited = await key_limited_to_org(client, alice, alice.org_id)
        response = await client.put(
            "/organization", json={"orgId": second, "name": "Taken"}, headers=auth(limited["key"])
        )
        assert error_of(response) == (400, "cannot_access_organization")
        org = await client.get("/organization", params={"orgId": second}, headers=alice.headers)
        assert org.json()["name"] == "Second Org"

    async def test_cannot_delete_other_org(self, client: httpx.AsyncClient, alice: Account) -> None:
        second = await create_org(client, alice)
        limited = await key_limited_to_org(client, alice, alice.org_id)
        response = await client.delete(
            "/organization", params={"orgId": second}, headers=auth(limited["key"])
        )
        assert response.status_code == 403
        assert response.json() == {
            "error": "invalid_org_id",
            "message": "You can't delete this organization",
            "moreInfo": {"org_id": second},
        }
        assert second in await org_ids(client, alice.headers)

    async def test_cannot_list_members_of_other_org(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        second = await create_org(client, alice)
        limited = await key_limited_to_org(client, alice, alice.org_id)
        response = await client.get(
            "/organization/members", params={"orgId": second}, headers=auth(limited["key"])
        )
        assert error_of(response) == (400, "cannot_access_organization")
        own = await client.get(
            "/organization/members", params={"orgId": alice.org_id}, headers=auth(limited["key"])
        )
        assert own.status_code == 200
        assert [member["email"] for member in own.json()] == [alice.email]

    async def test_cannot_create_org(self, client: httpx.AsyncClient, alice: Account) -> None:
        limited = await key_limited_to_org(client, alice, alice.org_id)
        response = await client.post(
            "/organization", json={"name": "Escape Org"}, headers=auth(limited["key"])
        )
        assert error_of(response) == (400, "cannot_create_org")

    async def test_cannot_reach_another_users_org(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        limited = await make_key(client, alice, name="spoof", limited_to_orgs=[alice.org_id])
        response = await client.get(
            "/organization", params={"orgId": bob.org_id}, headers=auth(limited["key"])
        )
        assert error_of(response) == (400, "invalid_org_id")


class TestOrgKeyPolicies:
    async def test_org_requiring_expiry_refuses_non_expiring_key(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await client.put(
            "/organization",
            json={"orgId": alice.org_id, "require_apikey_expiration": True},
            headers=alice.headers,
        )
        assert response.status_code == 200
        refused = await client.get(
            "/organization", params={"orgId": alice.org_id}, headers=alice.headers
        )
        assert refused.status_code == 401
        assert refused.json()["error"] == "org_requires_expiring_key"
        assert refused.json()["moreInfo"] == {"org_id": alice.org_id}
        expiring = await make_key(client, alice, expires_at=in_days(1))
        allowed = await client.get(
            "/organization", params={"orgId": alice.org_id}, headers=auth(expiring["key"])
        )
        assert allowed.status_code == 200
        assert allowed.json()["require_apikey_expiration"] is True
