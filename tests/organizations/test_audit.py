"""``GET /organization/audit``: an organization's trail, newest first (spec §3.1 "audit")."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest

from tests.conftest import Account, error_of, make_key
from tests.organizations._helpers import (
    JS_ISO,
    RANDOM_ORG,
    add_member,
    create_org,
    invite,
    key_headers,
    update_org,
)

ENTRY_FIELDS = {
    "id",
    "created_at",
    "table_name",
    "record_id",
    "operation",
    "user_id",
    "org_id",
    "old_record",
    "new_record",
    "changed_fields",
}


async def audit(
    client: httpx.AsyncClient, headers: dict[str, str], org_id: str | None, **params: Any
) -> httpx.Response:
    query = {"orgId": org_id, **params} if org_id is not None else params
    return await client.get("/organization/audit", params=query, headers=headers)


async def entries(
    client: httpx.AsyncClient, owner: Account, org_id: str, **params: Any
) -> list[dict[str, Any]]:
    response = await audit(client, owner.headers, org_id, **params)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


class TestAuditTrail:
    async def test_page_shape_and_defaults(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await audit(client, alice.headers, alice.org_id)
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"data", "total", "page", "limit"}
        assert body["page"] == 0
        assert body["limit"] == 50
        assert body["total"] == len(body["data"]) >= 1
        for entry in body["data"]:
            assert set(entry) == ENTRY_FIELDS
            assert entry["org_id"] == alice.org_id
            assert JS_ISO.match(entry["created_at"])

    async def test_org_creation_records_org_and_owner_membership(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        org_id = await create_org(client, alice, "Audited Org")
        data = await entries(client, alice, org_id)
        orgs = [e for e in data if e["table_name"] == "orgs"]
        members = [e for e in data if e["table_name"] == "org_users"]
        assert [e["operation"] for e in orgs] == ["INSERT"]
        assert orgs[0]["record_id"] == org_id
        assert orgs[0]["user_id"] == alice.user_id
        assert orgs[0]["old_record"] is None
        assert orgs[0]["new_record"]["name"] == "Audited Org"
        assert [e["operation"] for e in members] == ["INSERT"]
        assert members[0]["new_record"]["user_right"] == "super_admin"
        assert members[0]["new_record"]["user_id"] == alice.user_id

    async def test_update_records_changed_fields(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await update_org(
            client, alice, alice.org_id, name="Audited Rename", max_apikey_expiration_days=90
        )
        assert response.status_code == 200
        data = await entries(client, alice, alice.org_id)
        newest = data[0]
        assert newest["table_name"] == "orgs"
        assert newest["operation"] == "UPDATE"
        assert newest["record_id"] == alice.org_id
        assert newest["user_id"] == alice.user_id
        assert {"name", "max_apikey_expiration_days"} <= set(newest["changed_fields"])
        assert newest["old_record"]["name"] == "Alice Org"
        assert newest["new_record"]["name"] == "Audited Rename"
        assert newest["new_record"]["max_apikey_expiration_days"] == 90
        assert "INSERT" in [e["operation"] for e in data if e["table_name"] == "orgs"]

    async def test_refused_update_leaves_no_trail(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        before = (await audit(client, alice.headers, alice.org_id)).json()["total"]
        refused = await update_org(
            client, alice, alice.org_id, name="Never", max_apikey_expiration_days=0
        )
        assert error_of(refused) == (400, "invalid_max_expiration_days")
        after = await audit(client, alice.headers, alice.org_id, operation="UPDATE")
        assert after.json()["data"] == []
        assert (await audit(client, alice.headers, alice.org_id)).json()["total"] == before

    async def test_membership_changes_are_recorded(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        await add_member(client, alice, bob, alice.org_id, "write")
        removed = await client.delete(
            "/organization/members",
            params={"orgId": alice.org_id, "email": bob.email},
            headers=alice.headers,
        )
        assert removed.status_code == 200
        data = await entries(client, alice, alice.org_id, tableName="org_users")
        bobs = [e for e in data if (e["new_record"] or e["old_record"])["user_id"] == bob.user_id]
        assert [e["operation"] for e in bobs] == ["DELETE", "UPDATE", "INSERT"]
        delete, accept, insert = bobs
        assert insert["new_record"]["user_right"] == "invite_write"
        assert insert["user_id"] == alice.user_id
        assert accept["changed_fields"] == ["user_right"]
        assert accept["new_record"]["user_right"] == "write"
        assert accept["user_id"] == bob.user_id
        assert delete["old_record"]["user_right"] == "write"
        assert delete["new_record"] is None

    @pytest.mark.parametrize("hashed", [False, True])
    async def test_api_key_limited_to_org_is_recorded_without_secret(
        self, client: httpx.AsyncClient, alice: Account, hashed: bool
    ) -> None:
        key = await make_key(
            client,
            alice,
            name="ci key",
            mode="upload",
            limited_to_orgs=[alice.org_id],
            hashed=hashed,
        )
        response = await audit(client, alice.headers, alice.org_id, tableName="apikeys")
        assert response.status_code == 200
        data = response.json()["data"]
        assert len(data) == 1
        entry = data[0]
        assert entry["operation"] == "INSERT"
        assert entry["record_id"] == str(key["id"])
        assert entry["new_record"]["name"] == "ci key"
        assert entry["new_record"]["mode"] == "upload"
        assert entry["new_record"]["limited_to_orgs"] == [alice.org_id]
        plain = key["key"]
        assert plain not in response.text
        assert hashlib.sha256(plain.encode()).hexdigest() not in response.text
        assert entry["new_record"].get("key") is None
        assert entry["new_record"].get("key_hash") is None

    async def test_api_key_update_and_delete_are_recorded_without_secret(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        key = await make_key(client, alice, limited_to_orgs=[alice.org_id])
        renamed = await client.put(
            f"/apikey/{key['id']}", json={"name": "renamed"}, headers=alice.headers
        )
        deleted = await client.delete(f"/apikey/{key['id']}", headers=alice.headers)
        assert (renamed.status_code, deleted.status_code) == (200, 200)
        response = await audit(client, alice.headers, alice.org_id, tableName="apikeys")
        data = response.json()["data"]
        assert [e["operation"] for e in data] == ["DELETE", "UPDATE", "INSERT"]
        assert data[1]["changed_fields"] == ["name"]
        assert key["key"] not in response.text
        assert hashlib.sha256(key["key"].encode()).hexdigest() not in response.text

    async def test_unlimited_key_is_not_in_org_trail(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await make_key(client, alice, name="unscoped")
        response = await audit(client, alice.headers, alice.org_id, tableName="apikeys")
        assert response.status_code == 200
        assert response.json()["data"] == []
        assert response.json()["total"] == 0

    async def test_trail_is_per_organization(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        await update_org(client, bob, bob.org_id, name="Bob Renamed")
        data = await entries(client, alice, alice.org_id)
        assert all(e["org_id"] == alice.org_id for e in data)
        assert not [e for e in data if e["operation"] == "UPDATE"]


class TestAuditQuery:
    async def test_newest_first(self, client: httpx.AsyncClient, alice: Account) -> None:
        for name in ("First Rename", "Second Rename", "Third Rename"):
            assert (await update_org(client, alice, alice.org_id, name=name)).status_code == 200
        data = await entries(client, alice, alice.org_id, operation="UPDATE")
        assert [e["new_record"]["name"] for e in data] == [
            "Third Rename",
            "Second Rename",
            "First Rename",
        ]
        ids = [e["id"] for e in data]
        assert ids == sorted(ids, reverse=True)

    async def test_page_and_limit(self, client: httpx.AsyncClient, alice: Account) -> None:
        for name in ("First Rename", "Second Rename", "Third Rename"):
            await update_org(client, alice, alice.org_id, name=name)
        everything = await entries(client, alice, alice.org_id)
        total = len(everything)
        assert total == 5
        pages = []
        for page in range(total + 1):
            response = await audit(client, alice.headers, alice.org_id, page=page, limit=2)
            assert response.status_code == 200
            body = response.json()
            assert (body["page"], body["limit"], body["total"]) == (page, 2, total)
            pages.append(body["data"])
        assert [len(p) for p in pages[:4]] == [2, 2, 1, 0]
        assert [e["id"] for p in pages for e in p] == [e["id"] for e in everything]

    async def test_limit_is_capped_at_100(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await audit(client, alice.headers, alice.org_id, limit=200)
        assert response.status_code == 200
        assert response.json()["limit"] == 100
        assert response.json()["page"] == 0

    async def test_table_name_filter(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        await update_org(client, alice, alice.org_id, name="Filtered Rename")
        await add_member(client, alice, bob, alice.org_id, "read")
        for table in ("orgs", "org_users"):
            response = await audit(client, alice.headers, alice.org_id, tableName=table)
            body = response.json()
            assert response.status_code == 200
            assert body["data"]
            assert {e["table_name"] for e in body["data"]} == {table}
            assert body["total"] == len(body["data"])
        none = await audit(client, alice.headers, alice.org_id, tableName="apps")
        assert none.json()["data"] == []

    async def test_operation_filter(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        await update_org(client, alice, alice.org_id, name="Filtered Rename")
        await add_member(client, alice, bob, alice.org_id, "read")
        updates = await entries(client, alice, alice.org_id, operation="UPDATE")
        inserts = await entries(client, alice, alice.org_id, operation="INSERT")
        assert {(e["table_name"], e["operation"]) for e in updates} == {
            ("orgs", "UPDATE"),
            ("org_users", "UPDATE"),
        }
        assert {e["operation"] for e in inserts} == {"INSERT"}
        assert len(inserts) == 3
        both = await entries(client, alice, alice.org_id, operation="UPDATE", tableName="orgs")
        assert [(e["table_name"], e["operation"]) for e in both] == [("orgs", "UPDATE")]

    @pytest.mark.parametrize("params", [{"page": "abc"}, {"limit": "abc"}, {"page": "-1"}])
    async def test_bad_numbers_are_400_invalid_body(
        self, client: httpx.AsyncClient, alice: Account, params: dict[str, str]
    ) -> None:
        response = await audit(client, alice.headers, alice.org_id, **params)
        assert error_of(response) == (400, "invalid_body")

    async def test_missing_org_id_is_400_invalid_body(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await audit(client, alice.headers, None)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_body"
        assert response.json()["message"] == "Invalid body"

    @pytest.mark.parametrize("org_id", [RANDOM_ORG, "not-a-uuid"])
    async def test_unknown_org_is_400_invalid_org_id(
        self, client: httpx.AsyncClient, alice: Account, org_id: str
    ) -> None:
        response = await audit(client, alice.headers, org_id)
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_org_id",
            "message": "You can't access this organization",
            "moreInfo": {"org_id": org_id},
        }

    async def test_foreign_org_is_400_invalid_org_id(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        response = await audit(client, alice.headers, bob.org_id)
        assert error_of(response) == (400, "invalid_org_id")

    async def test_key_limited_to_another_org_is_400_invalid_org_id(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        second = await create_org(client, alice, "Alice Second")
        key = await make_key(client, alice, mode="read", limited_to_orgs=[second])
        refused = await audit(client, key_headers(key["key"]), alice.org_id)
        allowed = await audit(client, key_headers(key["key"]), second)
        assert error_of(refused) == (400, "invalid_org_id")
        assert allowed.status_code == 200

    async def test_pending_invitation_is_400_invalid_org_id(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        await invite(client, alice, bob, alice.org_id, "admin")
        response = await audit(client, bob.headers, alice.org_id)
        assert error_of(response) == (400, "invalid_org_id")

    async def test_read_member_and_read_key_may_read(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        await add_member(client, alice, bob, alice.org_id, "read")
        key = await make_key(client, alice, mode="read")
        by_member = await audit(client, bob.headers, alice.org_id)
        by_key = await audit(client, key_headers(key["key"]), alice.org_id)
        assert (by_member.status_code, by_key.status_code) == (200, 200)
        assert by_member.json()["total"] == by_key.json()["total"] >= 4
