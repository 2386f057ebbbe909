"""``GET`` and ``DELETE /organization``, and the key resolution every ``/organization`` route shares
(spec §1.1, §2.2, §3.1; House decisions in spec/README.md)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import Account, error_of, make_account, make_key
from tests.organizations._helpers import (
    JS_ISO,
    POLICY_FIELDS,
    RANDOM_ORG,
    SEED_FIELDS,
    add_member,
    create_org,
    expire_key,
    get_org,
    in_days,
    invite,
    key_headers,
    update_org,
)

ROUTES = [
    ("GET", "/organization"),
    ("POST", "/organization"),
    ("PUT", "/organization"),
    ("DELETE", "/organization"),
    ("GET", "/organization/audit"),
]


class TestAuthentication:
    @pytest.mark.parametrize(("method", "path"), ROUTES)
    async def test_no_key_is_401_no_key_provided(
        self, client: httpx.AsyncClient, method: str, path: str
    ) -> None:
        response = await client.request(method, path, params={"orgId": RANDOM_ORG})
        assert response.status_code == 401
        assert response.json() == {
            "error": "no_key_provided",
            "message": "No key provided",
            "moreInfo": {},
        }

    @pytest.mark.parametrize(("method", "path"), ROUTES)
    async def test_unknown_key_is_401_invalid_apikey(
        self, client: httpx.AsyncClient, alice: Account, method: str, path: str
    ) -> None:
        response = await client.request(
            method,
            path,
            params={"orgId": alice.org_id},
            headers=key_headers("00000000-0000-4000-8000-000000000000"),
        )
        assert response.status_code == 401
        assert response.json() == {
            "error": "invalid_apikey",
            "message": "Invalid apikey",
            "moreInfo": {},
        }

    async def test_capgkey_header_works_like_authorization(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await client.get("/organization", headers={"capgkey": alice.key})
        assert response.status_code == 200
        assert [org["id"] for org in response.json()] == [alice.org_id]

    async def test_capgkey_wins_over_authorization(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        headers = {"capgkey": alice.key, "authorization": "not-a-key"}
        response = await client.get("/organization", headers=headers)
        assert response.status_code == 200
        assert [org["id"] for org in response.json()] == [alice.org_id]

    async def test_expired_key_is_401_invalid_apikey(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        key = await make_key(client, alice, expires_at=in_days(1))
        await expire_key(app, key["id"])
        response = await client.get("/organization", headers=key_headers(key["key"]))
        assert error_of(response) == (401, "invalid_apikey")


class TestListOrganizations:
    async def test_lists_only_the_users_organizations(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        response = await client.get("/organization", headers=alice.headers)
        assert response.status_code == 200
        orgs = response.json()
        assert [org["id"] for org in orgs] == [alice.org_id]
        assert orgs[0]["name"] == "Alice Org"
        assert orgs[0]["created_by"] == alice.user_id
        assert set(orgs[0]) >= SEED_FIELDS | POLICY_FIELDS

    async def test_lists_orgs_joined_as_member(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        await add_member(client, alice, bob, alice.org_id, "read")
        response = await client.get("/organization", headers=bob.headers)
        assert response.status_code == 200
        assert {org["id"] for org in response.json()} == {alice.org_id, bob.org_id}

    async def test_pending_invitation_does_not_list_the_org(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        await invite(client, alice, bob, alice.org_id, "admin")
        response = await client.get("/organization", headers=bob.headers)
        assert response.status_code == 200
        assert [org["id"] for org in response.json()] == [bob.org_id]

    async def test_key_limited_to_one_org_sees_only_that_org(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        second = await create_org(client, alice, "Alice Second")
        key = await make_key(client, alice, mode="read", limited_to_orgs=[second])
        response = await client.get("/organization", headers=key_headers(key["key"]))
        assert response.status_code == 200
        assert [org["id"] for org in response.json()] == [second]

    async def test_subkey_narrows_the_list(self, client: httpx.AsyncClient, alice: Account) -> None:
        second = await create_org(client, alice, "Alice Second")
        subkey = await make_key(client, alice, limited_to_orgs=[second])
        headers = {**alice.headers, "x-limited-key-id": str(subkey["id"])}
        response = await client.get("/organization", headers=headers)
        assert response.status_code == 200
        assert [org["id"] for org in response.json()] == [second]

    async def test_subkey_of_another_user_is_401_invalid_subkey(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        subkey = await make_key(client, bob, limited_to_orgs=[bob.org_id])
        headers = {**alice.headers, "x-limited-key-id": str(subkey["id"])}
        response = await client.get("/organization", headers=headers)
        assert error_of(response) == (401, "invalid_subkey")

    async def test_pages_of_fifty_with_query_page_coerced(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        created = {alice.org_id}
        for index in range(50):
            created.add(await create_org(client, alice, f"Paged org {index:02d}"))
        first = await client.get("/organization", headers=alice.headers)
        page0 = await client.get("/organization", params={"page": "0"}, headers=alice.headers)
        page1 = await client.get("/organization?page=1", headers=alice.headers)
        page2 = await client.get("/organization?page=2", headers=alice.headers)
        assert [r.status_code for r in (first, page0, page1, page2)] == [200, 200, 200, 200]
        assert len(first.json()) == 50
        assert page0.json() == first.json()
        assert len(page1.json()) == 1
        assert page2.json() == []
        ids = [org["id"] for org in page0.json() + page1.json()]
        assert len(ids) == len(set(ids)) == 51
        assert set(ids) == created

    async def test_order_is_stable(self, client: httpx.AsyncClient, alice: Account) -> None:
        for name in ("Zeta org", "Alpha org", "Mid org"):
            await create_org(client, alice, name)
        answers = [
            (await client.get("/organization", headers=alice.headers)).json() for _ in range(3)
        ]
        assert len(answers[0]) == 4
        assert answers[0] == answers[1] == answers[2]

    @pytest.mark.parametrize("page", ["abc", "-1", "1.5"])
    async def test_bad_page_is_400_invalid_body(
        self, client: httpx.AsyncClient, alice: Account, page: str
    ) -> None:
        response = await client.get("/organization", params={"page": page}, headers=alice.headers)
        assert response.status_code == 400
        body = response.json()
        assert body["error"] == "invalid_body"
        assert body["message"] == "Invalid body"
        assert "error" in body["moreInfo"]


class TestGetOrganization:
    async def test_returns_the_org_object(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await get_org(client, alice.headers, alice.org_id)
        assert response.status_code == 200
        org = response.json()
        assert set(org) >= SEED_FIELDS | POLICY_FIELDS
        assert org["id"] == alice.org_id
        assert org["name"] == "Alice Org"
        assert org["created_by"] == alice.user_id
        assert org["management_email"] == alice.email
        assert org["logo"] is None
        assert org["customer_id"] is None
        assert org["require_apikey_expiration"] is False
        assert org["max_apikey_expiration_days"] is None
        assert org["enforce_hashed_api_keys"] is False
        assert JS_ISO.match(org["created_at"])
        assert JS_ISO.match(org["updated_at"])

    @pytest.mark.parametrize("mode", ["read", "upload", "write", "all"])
    async def test_every_key_mode_may_read(
        self, client: httpx.AsyncClient, alice: Account, mode: str
    ) -> None:
        key = await make_key(client, alice, mode=mode)
        response = await get_org(client, key_headers(key["key"]), alice.org_id)
        assert response.status_code == 200
        assert response.json()["id"] == alice.org_id

    async def test_foreign_org_is_400_invalid_org_id(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        response = await get_org(client, alice.headers, bob.org_id)
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_org_id",
            "message": "You can't access this organization",
            "moreInfo": {"org_id": bob.org_id},
        }

    @pytest.mark.parametrize("org_id", [RANDOM_ORG, "not-a-uuid", "1"])
    async def test_unknown_org_is_400_invalid_org_id(
        self, client: httpx.AsyncClient, alice: Account, org_id: str
    ) -> None:
        response = await get_org(client, alice.headers, org_id)
        assert error_of(response) == (400, "invalid_org_id")

    async def test_key_limited_to_another_org_is_400_invalid_org_id(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        second = await create_org(client, alice, "Alice Second")
        key = await make_key(client, alice, limited_to_orgs=[second])
        refused = await get_org(client, key_headers(key["key"]), alice.org_id)
        allowed = await get_org(client, key_headers(key["key"]), second)
        assert error_of(refused) == (400, "invalid_org_id")
        assert allowed.status_code == 200
        assert allowed.json()["id"] == second

    async def test_subkey_narrows_get_by_id(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        second = await create_org(client, alice, "Alice Second")
        subkey = await make_key(client, alice, limited_to_orgs=[second])
        headers = {**alice.headers, "x-limited-key-id": str(subkey["id"])}
        refused = await get_org(client, headers, alice.org_id)
        allowed = await get_org(client, headers, second)
        assert error_of(refused) == (400, "invalid_org_id")
        assert allowed.status_code == 200

    async def test_pending_invitation_is_400_invalid_org_id(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        await invite(client, alice, bob, alice.org_id, "write")
        response = await get_org(client, bob.headers, alice.org_id)
        assert error_of(response) == (400, "invalid_org_id")

    async def test_accepted_member_may_read(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        await add_member(client, alice, bob, alice.org_id, "read")
        response = await get_org(client, bob.headers, alice.org_id)
        assert response.status_code == 200
        assert response.json()["name"] == "Alice Org"

    async def test_require_expiration_refuses_non_expiring_key(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        expiring = await make_key(client, alice, expires_at=in_days(30))
        assert (
            await update_org(client, alice, alice.org_id, require_apikey_expiration=True)
        ).status_code == 200
        refused = await get_org(client, alice.headers, alice.org_id)
        assert refused.status_code == 401
        assert refused.json()["error"] == "org_requires_expiring_key"
        assert refused.json()["message"].startswith(
            "This organization requires API keys with an expiration date."
        )
        allowed = await get_org(client, key_headers(expiring["key"]), alice.org_id)
        assert allowed.status_code == 200
        assert allowed.json()["require_apikey_expiration"] is True

    async def test_enforce_hashed_refuses_plain_key(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        hashed = await make_key(client, alice, hashed=True)
        assert (
            await update_org(client, alice, alice.org_id, enforce_hashed_api_keys=True)
        ).status_code == 200
        refused = await get_org(client, alice.headers, alice.org_id)
        assert error_of(refused) == (401, "org_requires_hashed_key")
        allowed = await get_org(client, key_headers(hashed["key"]), alice.org_id)
        assert allowed.status_code == 200
        assert allowed.json()["enforce_hashed_api_keys"] is True


class TestDeleteOrganization:
    async def test_deletes_via_json_body(self, client: httpx.AsyncClient, alice: Account) -> None:
        org_id = await create_org(client, alice, "Doomed org")
        response = await client.request(
            "DELETE", "/organization", json={"orgId": org_id}, headers=alice.headers
        )
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert error_of(await get_org(client, alice.headers, org_id)) == (400, "invalid_org_id")
        listed = await client.get("/organization", headers=alice.headers)
        assert [org["id"] for org in listed.json()] == [alice.org_id]

    async def test_deletes_via_query_string(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        org_id = await create_org(client, alice, "Doomed org")
        response = await client.delete(f"/organization?orgId={org_id}", headers=alice.headers)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert error_of(await get_org(client, alice.headers, org_id)) == (400, "invalid_org_id")

    async def test_members_lose_access_with_the_org(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        org_id = await create_org(client, alice, "Shared org")
        await add_member(client, alice, bob, org_id, "write")
        response = await client.delete(f"/organization?orgId={org_id}", headers=alice.headers)
        assert response.status_code == 200
        assert error_of(await get_org(client, bob.headers, org_id)) == (400, "invalid_org_id")
        members = await client.get(
            "/organization/members", params={"orgId": org_id}, headers=bob.headers
        )
        assert error_of(members) == (400, "cannot_access_organization")

    async def test_no_org_id_at_all_is_400_invalid_json_parse_body(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await client.delete("/organization", headers=alice.headers)
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_json_parse_body",
            "message": "Invalid JSON body",
            "moreInfo": {},
        }

    @pytest.mark.parametrize("body", [{"foo": 1}, {"orgId": ""}])
    async def test_body_without_org_id_is_400_missing_org_id(
        self, client: httpx.AsyncClient, alice: Account, body: dict[str, object]
    ) -> None:
        response = await client.request("DELETE", "/organization", json=body, headers=alice.headers)
        assert error_of(response) == (400, "missing_org_id")
        assert (await get_org(client, alice.headers, alice.org_id)).status_code == 200

    async def test_admin_not_super_admin_is_403_invalid_org_id(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        await add_member(client, alice, bob, alice.org_id, "admin")
        response = await client.delete(f"/organization?orgId={alice.org_id}", headers=bob.headers)
        assert response.status_code == 403
        assert response.json() == {
            "error": "invalid_org_id",
            "message": "You can't delete this organization",
            "moreInfo": {"org_id": alice.org_id},
        }
        assert (await get_org(client, alice.headers, alice.org_id)).status_code == 200

    async def test_foreign_org_is_403_and_org_survives(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        response = await client.delete(f"/organization?orgId={bob.org_id}", headers=alice.headers)
        assert error_of(response) == (403, "invalid_org_id")
        still = await get_org(client, bob.headers, bob.org_id)
        assert still.status_code == 200
        assert still.json()["name"] == "Bob Org"

    @pytest.mark.parametrize("org_id", [RANDOM_ORG, "not-a-uuid"])
    async def test_unknown_org_is_403_invalid_org_id(
        self, client: httpx.AsyncClient, alice: Account, org_id: str
    ) -> None:
        response = await client.delete(
            "/organization", params={"orgId": org_id}, headers=alice.headers
        )
        assert error_of(response) == (403, "invalid_org_id")

    @pytest.mark.parametrize("mode", ["read", "upload"])
    async def test_read_or_upload_key_is_refused_not_a_silent_no_op(
        self, client: httpx.AsyncClient, alice: Account, mode: str
    ) -> None:
        key = await make_key(client, alice, mode=mode)
        response = await client.delete(
            f"/organization?orgId={alice.org_id}", headers=key_headers(key["key"])
        )
        assert error_of(response) == (403, "invalid_org_id")
        assert (await get_org(client, alice.headers, alice.org_id)).status_code == 200

    async def test_key_limited_to_another_org_is_403(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        second = await create_org(client, alice, "Alice Second")
        key = await make_key(client, alice, limited_to_orgs=[second])
        response = await client.delete(
            f"/organization?orgId={alice.org_id}", headers=key_headers(key["key"])
        )
        assert error_of(response) == (403, "invalid_org_id")
        assert (await get_org(client, alice.headers, alice.org_id)).status_code == 200

    async def test_other_users_orgs_are_untouched(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
    ) -> None:
        carol = await make_account(app, "carol@example.com", "Carol Org")
        response = await client.delete(f"/organization?orgId={alice.org_id}", headers=alice.headers)
        assert response.status_code == 200
        for owner in (bob, carol):
            listed = await client.get("/organization", headers=owner.headers)
            assert [org["id"] for org in listed.json()] == [owner.org_id]
