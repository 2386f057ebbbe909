"""``POST /apikey`` (spec §3.2, §2.4): inputs, org policies, and keys never minting wider keys."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.auth.helpers import (
    JS_ISO,
    KEY_FIELDS,
    SHA256_HEX,
    auth,
    create_org,
    in_days,
    is_uuid,
    key_limited_to_org,
    set_org_policy,
    sha256,
)
from tests.conftest import Account, error_of, make_key


class TestCreateApiKey:
    async def test_returns_the_new_key(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await client.post("/apikey", json={"name": "ci"}, headers=alice.headers)
        assert response.status_code == 200
        body = response.json()
        assert set(body) == KEY_FIELDS
        assert isinstance(body["id"], int)
        assert isinstance(body["key"], str)
        assert is_uuid(body["key"])
        assert JS_ISO.match(body["created_at"])
        assert JS_ISO.match(body["updated_at"])
        assert {k: body[k] for k in KEY_FIELDS - {"id", "key", "created_at", "updated_at"}} == {
            "user_id": alice.user_id,
            "key_hash": None,
            "mode": "all",
            "name": "ci",
            "limited_to_orgs": [],
            "limited_to_apps": [],
            "expires_at": None,
        }

    async def test_new_key_authenticates(self, client: httpx.AsyncClient, alice: Account) -> None:
        created = await make_key(client, alice)
        response = await client.get("/apikey", headers=auth(created["key"]))
        assert response.status_code == 200
        assert created["id"] in {key["id"] for key in response.json()}

    @pytest.mark.parametrize("mode", ["read", "upload", "write", "all"])
    async def test_mode_is_stored(
        self, client: httpx.AsyncClient, alice: Account, mode: str
    ) -> None:
        created = await make_key(client, alice, mode=mode)
        assert created["mode"] == mode

    @pytest.mark.parametrize(
        "body", [{}, {"name": ""}, {"name": "   "}, {"name": None}, {"mode": "read"}]
    )
    async def test_name_is_required(
        self, client: httpx.AsyncClient, alice: Account, body: dict[str, object]
    ) -> None:
        response = await client.post("/apikey", json=body, headers=alice.headers)
        assert response.status_code == 400
        assert response.json() == {
            "error": "name_is_required",
            "message": "Name is required",
            "moreInfo": {},
        }

    @pytest.mark.parametrize("mode", ["root", "ALL", "", 1])
    async def test_invalid_mode(
        self, client: httpx.AsyncClient, alice: Account, mode: object
    ) -> None:
        response = await client.post(
            "/apikey", json={"name": "x", "mode": mode}, headers=alice.headers
        )
        assert error_of(response) == (400, "invalid_mode")

    async def test_hashed_key(self, client: httpx.AsyncClient, alice: Account) -> None:
        created = await make_key(client, alice, hashed=True)
        assert is_uuid(created["key"])
        assert SHA256_HEX.match(created["key_hash"])
        assert created["key_hash"] == sha256(created["key"])
        fetched = await client.get(f"/apikey/{created['id']}", headers=alice.headers)
        assert fetched.status_code == 200
        assert fetched.json()["key"] is None
        assert fetched.json()["key_hash"] == created["key_hash"]

    async def test_hashed_key_authenticates(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        created = await make_key(client, alice, hashed=True)
        response = await client.get("/apikey", headers=auth(created["key"]))
        assert response.status_code == 200
        assert created["id"] in {key["id"] for key in response.json()}

    async def test_not_hashed_has_no_hash(self, client: httpx.AsyncClient, alice: Account) -> None:
        created = await make_key(client, alice, hashed=False)
        assert is_uuid(created["key"])
        assert created["key_hash"] is None

    async def test_hashed_read_key_keeps_its_mode(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        created = await make_key(client, alice, hashed=True, mode="read")
        assert created["mode"] == "read"
        assert created["key_hash"] == sha256(created["key"])

    async def test_org_id_limits_the_key(self, client: httpx.AsyncClient, alice: Account) -> None:
        created = await make_key(client, alice, org_id=alice.org_id)
        assert created["limited_to_orgs"] == [alice.org_id]

    @pytest.mark.parametrize("which", ["random", "foreign", "not-a-uuid"])
    async def test_unknown_org_id(
        self, client: httpx.AsyncClient, alice: Account, bob: Account, which: str
    ) -> None:
        org_id = {"random": str(uuid.uuid4()), "foreign": bob.org_id, "not-a-uuid": "my-org"}[which]
        response = await client.post(
            "/apikey", json={"name": "x", "org_id": org_id}, headers=alice.headers
        )
        assert error_of(response) == (404, "org_not_found")

    async def test_limited_to_foreign_org(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        response = await client.post(
            "/apikey",
            json={"name": "x", "limited_to_orgs": [alice.org_id, bob.org_id]},
            headers=alice.headers,
        )
        assert error_of(response) == (404, "org_not_found")
        assert len((await client.get("/apikey", headers=alice.headers)).json()) == 1

    async def test_org_of_a_pending_invitation_is_not_found(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        invited = await client.post(
            "/organization/members",
            json={"orgId": bob.org_id, "email": alice.email, "invite_type": "read"},
            headers=bob.headers,
        )
        assert invited.status_code == 200
        response = await client.post(
            "/apikey", json={"name": "x", "org_id": bob.org_id}, headers=alice.headers
        )
        assert error_of(response) == (404, "org_not_found")
        accepted = await client.post(
            "/organization/members/accept", json={"orgId": bob.org_id}, headers=alice.headers
        )
        assert accepted.status_code == 200
        created = await make_key(client, alice, org_id=bob.org_id)
        assert created["limited_to_orgs"] == [bob.org_id]

    async def test_limited_to_apps_is_stored(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        created = await make_key(client, alice, limited_to_apps=["com.example.app"])
        assert created["limited_to_apps"] == ["com.example.app"]

    async def test_unknown_app_id(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await client.post(
            "/apikey", json={"name": "x", "app_id": str(uuid.uuid4())}, headers=alice.headers
        )
        assert error_of(response) == (404, "app_not_found")

    @pytest.mark.parametrize("expires", ["2020-01-01T00:00:00.000Z", "not-a-date", "", 123])
    async def test_invalid_expiration(
        self, client: httpx.AsyncClient, alice: Account, expires: object
    ) -> None:
        response = await client.post(
            "/apikey", json={"name": "x", "expires_at": expires}, headers=alice.headers
        )
        assert error_of(response) == (400, "invalid_expiration_date")

    async def test_future_expiration_is_stored(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        expires = in_days(30)
        created = await make_key(client, alice, expires_at=expires)
        assert created["expires_at"] == expires
        fetched = await client.get(f"/apikey/{created['id']}", headers=alice.headers)
        assert fetched.json()["expires_at"] == expires
        assert (await client.get("/apikey", headers=auth(created["key"]))).status_code == 200

    async def test_null_expiration_never_expires(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        created = await make_key(client, alice, expires_at=None)
        assert created["expires_at"] is None

    async def test_invalid_json(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await client.post(
            "/apikey",
            content=b"invalid json",
            headers={**alice.headers, "content-type": "application/json"},
        )
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_json_parse_body",
            "message": "Invalid JSON body",
            "moreInfo": {},
        }

    @pytest.mark.parametrize("content", [b"", b"[]", b'"name"', b"42"])
    async def test_body_must_be_an_object(
        self, client: httpx.AsyncClient, alice: Account, content: bytes
    ) -> None:
        response = await client.post(
            "/apikey",
            content=content,
            headers={**alice.headers, "content-type": "application/json"},
        )
        assert error_of(response) == (400, "invalid_json_parse_body")


class TestCreateApiKeyOrgPolicies:
    async def test_expiration_required(self, client: httpx.AsyncClient, alice: Account) -> None:
        await set_org_policy(client, alice, alice.org_id, require_apikey_expiration=True)
        response = await client.post(
            "/apikey", json={"name": "x", "org_id": alice.org_id}, headers=alice.headers
        )
        assert error_of(response) == (400, "expiration_required")
        created = await make_key(client, alice, org_id=alice.org_id, expires_at=in_days(5))
        assert created["limited_to_orgs"] == [alice.org_id]

    async def test_expiration_required_via_limited_to_orgs(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await set_org_policy(client, alice, alice.org_id, require_apikey_expiration=True)
        response = await client.post(
            "/apikey", json={"name": "x", "limited_to_orgs": [alice.org_id]}, headers=alice.headers
        )
        assert error_of(response) == (400, "expiration_required")

    async def test_expiration_exceeds_max(self, client: httpx.AsyncClient, alice: Account) -> None:
        await set_org_policy(client, alice, alice.org_id, max_apikey_expiration_days=30)
        response = await client.post(
            "/apikey",
            json={"name": "x", "org_id": alice.org_id, "expires_at": in_days(60)},
            headers=alice.headers,
        )
        assert error_of(response) == (400, "expiration_exceeds_max")
        assert "30" in response.json()["message"]

    async def test_expiration_within_max(self, client: httpx.AsyncClient, alice: Account) -> None:
        await set_org_policy(client, alice, alice.org_id, max_apikey_expiration_days=30)
        expires = in_days(15)
        created = await make_key(client, alice, org_id=alice.org_id, expires_at=expires)
        assert created["expires_at"] == expires

    async def test_policy_of_another_org_does_not_apply(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        strict = await create_org(client, alice, "Strict Org")
        await set_org_policy(client, alice, strict, require_apikey_expiration=True)
        created = await make_key(client, alice, org_id=alice.org_id)
        assert created["expires_at"] is None

    async def test_hashed_key_required(self, client: httpx.AsyncClient, alice: Account) -> None:
        await set_org_policy(client, alice, alice.org_id, enforce_hashed_api_keys=True)
        response = await client.post(
            "/apikey", json={"name": "x", "org_id": alice.org_id}, headers=alice.headers
        )
        assert error_of(response) == (400, "hashed_key_required")
        created = await make_key(client, alice, org_id=alice.org_id, hashed=True)
        assert created["key_hash"] == sha256(created["key"])


class TestKeyCannotMintBroaderKey:
    async def test_org_limited_key_cannot_create(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        limited = await key_limited_to_org(client, alice, alice.org_id)
        response = await client.post(
            "/apikey", json={"name": "wider"}, headers=auth(limited["key"])
        )
        assert response.status_code == 400
        assert response.json() == {
            "error": "cannot_create_apikey",
            "message": "You cannot do that as a limited API key",
            "moreInfo": {},
        }

    async def test_org_limited_key_cannot_create_even_as_narrow(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        limited = await key_limited_to_org(client, alice, alice.org_id)
        response = await client.post(
            "/apikey", json={"name": "n", "org_id": alice.org_id}, headers=auth(limited["key"])
        )
        assert error_of(response) == (400, "cannot_create_apikey")

    async def test_app_limited_key_cannot_create(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        limited = await make_key(client, alice, limited_to_apps=["com.example.app"])
        response = await client.post(
            "/apikey", json={"name": "wider"}, headers=auth(limited["key"])
        )
        assert error_of(response) == (400, "cannot_create_apikey")
        assert len((await client.get("/apikey", headers=alice.headers)).json()) == 2

    @pytest.mark.parametrize("mode", ["read", "upload", "write"])
    async def test_weaker_mode_key_cannot_create(
        self, client: httpx.AsyncClient, alice: Account, mode: str
    ) -> None:
        weak = await make_key(client, alice, mode=mode)
        response = await client.post("/apikey", json={"name": "wider"}, headers=auth(weak["key"]))
        assert error_of(response) == (401, "invalid_apikey")

    async def test_expiring_key_cannot_create_a_non_expiring_key(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        expiring = await make_key(client, alice, expires_at=in_days(10))
        response = await client.post(
            "/apikey", json={"name": "forever"}, headers=auth(expiring["key"])
        )
        assert error_of(response) == (400, "expiration_exceeds_key")

    async def test_expiring_key_cannot_create_a_later_expiring_key(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        expiring = await make_key(client, alice, expires_at=in_days(10))
        response = await client.post(
            "/apikey",
            json={"name": "later", "expires_at": in_days(20)},
            headers=auth(expiring["key"]),
        )
        assert error_of(response) == (400, "expiration_exceeds_key")

    async def test_expiring_key_may_create_an_earlier_expiring_key(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        expiring = await make_key(client, alice, expires_at=in_days(10))
        expires = in_days(5)
        response = await client.post(
            "/apikey", json={"name": "sooner", "expires_at": expires}, headers=auth(expiring["key"])
        )
        assert response.status_code == 200
        assert response.json()["expires_at"] == expires

    async def test_expiring_key_cannot_extend_a_key(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        expiring = await make_key(client, alice, expires_at=in_days(10))
        other = await make_key(client, alice, expires_at=in_days(5))
        response = await client.put(
            f"/apikey/{other['id']}", json={"expires_at": None}, headers=auth(expiring["key"])
        )
        assert error_of(response) == (400, "expiration_exceeds_key")

    async def test_expiring_key_cannot_upgrade_a_key_that_outlives_it(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        expiring = await make_key(client, alice, expires_at=in_days(10))
        reader = await make_key(client, alice, mode="read")
        response = await client.put(
            f"/apikey/{reader['id']}", json={"mode": "all"}, headers=auth(expiring["key"])
        )
        assert error_of(response) == (400, "expiration_exceeds_key")
        unchanged = await client.get(f"/apikey/{reader['id']}", headers=alice.headers)
        assert unchanged.json()["mode"] == "read"

    async def test_expiring_key_may_change_a_key_expiring_before_it(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        expiring = await make_key(client, alice, expires_at=in_days(10))
        sooner = await make_key(client, alice, mode="read", expires_at=in_days(5))
        response = await client.put(
            f"/apikey/{sooner['id']}", json={"mode": "write"}, headers=auth(expiring["key"])
        )
        assert response.status_code == 200
        assert response.json()["mode"] == "write"

    async def test_subkey_header_makes_the_caller_limited(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        sub = await key_limited_to_org(client, alice, alice.org_id)
        headers = auth(alice.key, sub["id"])
        created = await client.post("/apikey", json={"name": "x"}, headers=headers)
        assert error_of(created) == (400, "cannot_create_apikey")
        listed = await client.get("/apikey", headers=headers)
        assert error_of(listed) == (401, "cannot_list_apikeys")
        fetched = await client.get(f"/apikey/{sub['id']}", headers=headers)
        assert error_of(fetched) == (401, "cannot_get_apikey")
        updated = await client.put(f"/apikey/{sub['id']}", json={"name": "y"}, headers=headers)
        assert error_of(updated) == (401, "cannot_update_apikey")
        deleted = await client.delete(f"/apikey/{sub['id']}", headers=headers)
        assert error_of(deleted) == (401, "cannot_delete_apikey")
