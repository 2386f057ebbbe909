"""``POST`` and ``PUT /organization``: without ``orgId`` they create, with it they update (House
decision), answering ``{"status": "Organization created", "id"}`` and
``{"status": "Organization updated", "id", "data"}`` (spec §3.1, README "Success bodies")."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Account, error_of, in_days, make_key
from tests.organizations._helpers import (
    POLICY_FIELDS,
    RANDOM_ORG,
    SEED_FIELDS,
    add_member,
    create_org,
    get_org,
    invite,
    key_headers,
    update_org,
)

METHODS = ["POST", "PUT"]


class TestCreateOrganization:
    @pytest.mark.parametrize("method", METHODS)
    async def test_creates_and_answers_status_and_id(
        self, client: httpx.AsyncClient, alice: Account, method: str
    ) -> None:
        response = await client.request(
            method, "/organization", json={"name": "New Org"}, headers=alice.headers
        )
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"status", "id"}
        assert body["status"] == "Organization created"
        org = await get_org(client, alice.headers, body["id"])
        assert org.status_code == 200
        assert org.json()["name"] == "New Org"
        assert org.json()["created_by"] == alice.user_id
        assert org.json()["management_email"] == alice.email
        listed = await client.get("/organization", headers=alice.headers)
        assert {o["id"] for o in listed.json()} == {alice.org_id, body["id"]}

    async def test_creator_is_super_admin(self, client: httpx.AsyncClient, alice: Account) -> None:
        org_id = await create_org(client, alice, "New Org")
        response = await client.get(
            "/organization/members", params={"orgId": org_id}, headers=alice.headers
        )
        assert response.status_code == 200
        assert response.json() == [
            {
                "uid": alice.user_id,
                "email": alice.email,
                "image_url": "",
                "role": "super_admin",
                "is_tmp": False,
            }
        ]

    async def test_email_sets_management_email(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await client.post(
            "/organization",
            json={"name": "Billing Org", "email": "bills@example.com"},
            headers=alice.headers,
        )
        assert response.status_code == 200
        org = await get_org(client, alice.headers, response.json()["id"])
        assert org.json()["management_email"] == "bills@example.com"

    @pytest.mark.parametrize("method", METHODS)
    async def test_query_string_body_works(
        self, client: httpx.AsyncClient, alice: Account, method: str
    ) -> None:
        response = await client.request(
            method, "/organization?name=Foo Query", headers=alice.headers
        )
        assert response.status_code == 200
        assert response.json()["status"] == "Organization created"
        org = await get_org(client, alice.headers, response.json()["id"])
        assert org.json()["name"] == "Foo Query"

    @pytest.mark.parametrize("method", METHODS)
    async def test_empty_object_is_400_invalid_json_parse_body(
        self, client: httpx.AsyncClient, alice: Account, method: str
    ) -> None:
        response = await client.request(method, "/organization", json={}, headers=alice.headers)
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_json_parse_body",
            "message": "Invalid JSON body",
            "moreInfo": {},
        }

    @pytest.mark.parametrize("method", METHODS)
    async def test_invalid_json_without_query_is_400_invalid_json_parse_body(
        self, client: httpx.AsyncClient, alice: Account, method: str
    ) -> None:
        headers = {**alice.headers, "content-type": "application/json"}
        response = await client.request(
            method, "/organization", content=b"invalid json", headers=headers
        )
        assert error_of(response) == (400, "invalid_json_parse_body")

    async def test_invalid_json_falls_back_to_query_string(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        headers = {**alice.headers, "content-type": "application/json"}
        response = await client.post(
            "/organization", params={"name": "Fallback Org"}, content=b"{not json", headers=headers
        )
        assert response.status_code == 200
        org = await get_org(client, alice.headers, response.json()["id"])
        assert org.json()["name"] == "Fallback Org"

    async def test_no_body_no_query_is_400_invalid_json_parse_body(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await client.post("/organization", headers=alice.headers)
        assert error_of(response) == (400, "invalid_json_parse_body")

    @pytest.mark.parametrize(
        "body",
        [
            {"name": ""},
            {"name": "ab"},
            {"name": 42},
            {"name": None},
            {"email": "x@example.com"},
            {"name": "Good name", "email": "not-an-email"},
        ],
    )
    async def test_bad_fields_are_400_invalid_body(
        self, client: httpx.AsyncClient, alice: Account, body: dict[str, Any]
    ) -> None:
        response = await client.post("/organization", json=body, headers=alice.headers)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_body"
        assert response.json()["message"] == "Invalid body"
        listed = await client.get("/organization", headers=alice.headers)
        assert len(listed.json()) == 1

    async def test_duplicate_name_is_400_cannot_create_org(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await create_org(client, alice, "Twin Org")
        again = await client.put("/organization", json={"name": "Twin Org"}, headers=alice.headers)
        seed = await client.post("/organization", json={"name": "Alice Org"}, headers=alice.headers)
        assert error_of(again) == (400, "cannot_create_org")
        assert error_of(seed) == (400, "cannot_create_org")
        listed = await client.get("/organization", headers=alice.headers)
        assert len(listed.json()) == 2

    async def test_same_name_for_another_user_is_fine(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        response = await client.post(
            "/organization", json={"name": "Alice Org"}, headers=bob.headers
        )
        assert response.status_code == 200
        assert response.json()["status"] == "Organization created"

    @pytest.mark.parametrize("mode", ["read", "upload"])
    async def test_read_or_upload_key_is_400_cannot_create_org(
        self, client: httpx.AsyncClient, alice: Account, mode: str
    ) -> None:
        key = await make_key(client, alice, mode=mode)
        response = await client.post(
            "/organization", json={"name": "Nope Org"}, headers=key_headers(key["key"])
        )
        assert error_of(response) == (400, "cannot_create_org")
        listed = await client.get("/organization", headers=alice.headers)
        assert len(listed.json()) == 1

    async def test_write_key_may_create(self, client: httpx.AsyncClient, alice: Account) -> None:
        key = await make_key(client, alice, mode="write")
        response = await client.post(
            "/organization", json={"name": "Writer Org"}, headers=key_headers(key["key"])
        )
        assert response.status_code == 200
        assert response.json()["status"] == "Organization created"

    async def test_limited_key_is_400_cannot_create_org(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        key = await make_key(client, alice, limited_to_orgs=[alice.org_id])
        response = await client.put(
            "/organization", json={"name": "Nope Org"}, headers=key_headers(key["key"])
        )
        assert error_of(response) == (400, "cannot_create_org")

    async def test_subkey_is_400_cannot_create_org(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        subkey = await make_key(client, alice, limited_to_orgs=[alice.org_id])
        headers = {**alice.headers, "x-limited-key-id": str(subkey["id"])}
        response = await client.post("/organization", json={"name": "Nope Org"}, headers=headers)
        assert error_of(response) == (400, "cannot_create_org")


class TestUpdateOrganization:
    @pytest.mark.parametrize("method", METHODS)
    async def test_updates_and_answers_status_id_data(
        self, client: httpx.AsyncClient, alice: Account, method: str
    ) -> None:
        response = await client.request(
            method,
            "/organization",
            json={
                "orgId": alice.org_id,
                "name": "Renamed Org",
                "logo": "https://x.test/l.png",
                "management_email": "ops@example.com",
            },
            headers=alice.headers,
        )
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"status", "id", "data"}
        assert body["status"] == "Organization updated"
        assert body["id"] == alice.org_id
        data = body["data"]
        assert set(data) >= SEED_FIELDS | POLICY_FIELDS
        assert data["id"] == alice.org_id
        assert data["name"] == "Renamed Org"
        assert data["logo"] == "https://x.test/l.png"
        assert data["management_email"] == "ops@example.com"
        stored = (await get_org(client, alice.headers, alice.org_id)).json()
        assert stored == data

    async def test_query_string_update(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await client.post(
            f"/organization?orgId={alice.org_id}&name=Query Name&max_apikey_expiration_days=30",
            headers=alice.headers,
        )
        assert response.status_code == 200
        assert response.json()["data"]["name"] == "Query Name"
        assert response.json()["data"]["max_apikey_expiration_days"] == 30

    async def test_only_org_id_changes_nothing(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        before = (await get_org(client, alice.headers, alice.org_id)).json()
        response = await update_org(client, alice, alice.org_id)
        assert response.status_code == 200
        assert response.json()["data"] == before

    async def test_policy_fields_are_persisted(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await update_org(
            client,
            alice,
            alice.org_id,
            max_apikey_expiration_days=90,
            require_apikey_expiration=True,
            enforce_hashed_api_keys=True,
        )
        assert response.status_code == 200
        data = response.json()["data"]
        assert data["max_apikey_expiration_days"] == 90
        assert data["require_apikey_expiration"] is True
        assert data["enforce_hashed_api_keys"] is True
        # A key within the policies: hashed, expiring within the 90 days.
        key = await make_key(client, alice, hashed=True, expires_at=in_days(30))
        stored = (await get_org(client, key_headers(key["key"]), alice.org_id)).json()
        assert stored["max_apikey_expiration_days"] == 90
        assert stored["require_apikey_expiration"] is True
        assert stored["enforce_hashed_api_keys"] is True

    async def test_policies_can_be_switched_off(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await update_org(
            client, alice, alice.org_id, max_apikey_expiration_days=90, enforce_hashed_api_keys=True
        )
        hashed = await make_key(client, alice, hashed=True)
        response = await client.put(
            "/organization",
            json={
                "orgId": alice.org_id,
                "max_apikey_expiration_days": None,
                "enforce_hashed_api_keys": False,
            },
            headers=key_headers(hashed["key"]),
        )
        assert response.status_code == 200
        assert response.json()["data"]["max_apikey_expiration_days"] is None
        assert response.json()["data"]["enforce_hashed_api_keys"] is False
        assert (await get_org(client, alice.headers, alice.org_id)).status_code == 200

    @pytest.mark.parametrize("days", [0, 366, -1, 1000])
    async def test_max_days_out_of_range_is_400_invalid_max_expiration_days(
        self, client: httpx.AsyncClient, alice: Account, days: int
    ) -> None:
        response = await update_org(client, alice, alice.org_id, max_apikey_expiration_days=days)
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_max_expiration_days",
            "message": "Maximum expiration days must be between 1 and 365",
            "moreInfo": {},
        }
        stored = (await get_org(client, alice.headers, alice.org_id)).json()
        assert stored["max_apikey_expiration_days"] is None

    @pytest.mark.parametrize("days", [1, 90, 365])
    async def test_max_days_in_range_is_accepted(
        self, client: httpx.AsyncClient, alice: Account, days: int
    ) -> None:
        response = await update_org(client, alice, alice.org_id, max_apikey_expiration_days=days)
        assert response.status_code == 200
        assert response.json()["data"]["max_apikey_expiration_days"] == days

    @pytest.mark.parametrize(
        "fields",
        [
            {"management_email": "nope"},
            {"name": "ab"},
            {"max_apikey_expiration_days": "many"},
            {"require_apikey_expiration": "perhaps"},
        ],
    )
    async def test_bad_fields_are_400_invalid_body(
        self, client: httpx.AsyncClient, alice: Account, fields: dict[str, Any]
    ) -> None:
        response = await update_org(client, alice, alice.org_id, **fields)
        assert error_of(response) == (400, "invalid_body")
        stored = (await get_org(client, alice.headers, alice.org_id)).json()
        assert stored["name"] == "Alice Org"
        assert stored["management_email"] == alice.email

    async def test_name_taken_by_another_org_is_400_cannot_update_org(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        second = await create_org(client, alice, "Alice Second")
        response = await update_org(client, alice, second, name="Alice Org")
        assert error_of(response) == (400, "cannot_update_org")
        assert (await get_org(client, alice.headers, second)).json()["name"] == "Alice Second"

    @pytest.mark.parametrize("method", METHODS)
    async def test_foreign_org_is_400_cannot_access_organization(
        self, client: httpx.AsyncClient, alice: Account, bob: Account, method: str
    ) -> None:
        response = await client.request(
            method,
            "/organization",
            json={"orgId": bob.org_id, "name": "Hijacked"},
            headers=alice.headers,
        )
        assert response.status_code == 400
        assert response.json() == {
            "error": "cannot_access_organization",
            "message": "You can't access this organization",
            "moreInfo": {"orgId": bob.org_id},
        }
        assert (await get_org(client, bob.headers, bob.org_id)).json()["name"] == "Bob Org"

    @pytest.mark.parametrize("org_id", [RANDOM_ORG, "not-a-uuid", ""])
    async def test_unknown_org_is_400_cannot_access_organization(
        self, client: httpx.AsyncClient, alice: Account, org_id: str
    ) -> None:
        response = await update_org(client, alice, org_id, name="Whatever")
        assert error_of(response) == (400, "cannot_access_organization")

    @pytest.mark.parametrize("role", ["read", "upload", "write"])
    async def test_non_admin_member_is_400_cannot_access_organization(
        self, client: httpx.AsyncClient, alice: Account, bob: Account, role: str
    ) -> None:
        await add_member(client, alice, bob, alice.org_id, role)
        response = await update_org(client, bob, alice.org_id, name="Bob Was Here")
        assert error_of(response) == (400, "cannot_access_organization")
        assert (await get_org(client, alice.headers, alice.org_id)).json()["name"] == "Alice Org"

    async def test_pending_admin_invitation_is_400_cannot_access_organization(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        await invite(client, alice, bob, alice.org_id, "admin")
        response = await update_org(client, bob, alice.org_id, name="Bob Was Here")
        assert error_of(response) == (400, "cannot_access_organization")

    async def test_admin_member_may_update(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        await add_member(client, alice, bob, alice.org_id, "admin")
        response = await update_org(client, bob, alice.org_id, name="Co-managed Org")
        assert response.status_code == 200
        assert response.json()["data"]["name"] == "Co-managed Org"

    @pytest.mark.parametrize("mode", ["read", "upload"])
    async def test_read_or_upload_key_is_refused_not_a_silent_no_op(
        self, client: httpx.AsyncClient, alice: Account, mode: str
    ) -> None:
        key = await make_key(client, alice, mode=mode)
        response = await client.post(
            "/organization",
            json={"orgId": alice.org_id, "name": "Read Rename"},
            headers=key_headers(key["key"]),
        )
        assert error_of(response) == (400, "cannot_access_organization")
        assert (await get_org(client, alice.headers, alice.org_id)).json()["name"] == "Alice Org"

    async def test_write_key_may_update(self, client: httpx.AsyncClient, alice: Account) -> None:
        key = await make_key(client, alice, mode="write")
        response = await client.post(
            "/organization",
            json={"orgId": alice.org_id, "name": "Write Rename"},
            headers=key_headers(key["key"]),
        )
        assert response.status_code == 200
        assert response.json()["data"]["name"] == "Write Rename"

    async def test_key_limited_to_another_org_is_400_cannot_access_organization(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        second = await create_org(client, alice, "Alice Second")
        key = await make_key(client, alice, limited_to_orgs=[second])
        refused = await client.put(
            "/organization",
            json={"orgId": alice.org_id, "name": "Limited Rename"},
            headers=key_headers(key["key"]),
        )
        allowed = await client.put(
            "/organization",
            json={"orgId": second, "name": "Renamed 2"},
            headers=key_headers(key["key"]),
        )
        assert error_of(refused) == (400, "cannot_access_organization")
        assert allowed.status_code == 200
        assert allowed.json()["data"]["name"] == "Renamed 2"

    async def test_read_subkey_narrows_update(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        subkey = await make_key(client, alice, mode="read", limited_to_orgs=[alice.org_id])
        headers = {**alice.headers, "x-limited-key-id": str(subkey["id"])}
        response = await client.put(
            "/organization", json={"orgId": alice.org_id, "name": "Sub Rename"}, headers=headers
        )
        assert error_of(response) == (400, "cannot_access_organization")
        assert (await get_org(client, alice.headers, alice.org_id)).json()["name"] == "Alice Org"

    async def test_require_expiration_refuses_non_expiring_key(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        assert (
            await update_org(client, alice, alice.org_id, require_apikey_expiration=True)
        ).status_code == 200
        response = await update_org(client, alice, alice.org_id, name="Later Name")
        assert error_of(response) == (401, "org_requires_expiring_key")
