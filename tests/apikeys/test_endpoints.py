"""``/apikey`` list, read, update and delete (spec §3.2; POST is in ``test_create.py``)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.auth.helpers import (
    JS_ISO,
    KEY_FIELDS,
    auth,
    create_org,
    in_days,
    key_limited_to_org,
    set_org_policy,
)
from tests.conftest import Account, error_of, make_key

NOT_FOUND_ID = 424242


async def own_keys(client: httpx.AsyncClient, owner: Account) -> list[dict[str, Any]]:
    response = await client.get("/apikey", headers=owner.headers)
    assert response.status_code == 200, response.text
    keys: list[dict[str, Any]] = response.json()
    return keys


class TestListApiKeys:
    async def test_lists_the_users_keys_as_full_rows(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await client.get("/apikey", headers=alice.headers)
        assert response.status_code == 200
        [row] = response.json()
        assert set(row) == KEY_FIELDS
        assert isinstance(row["id"], int)
        assert JS_ISO.match(row["created_at"])
        assert JS_ISO.match(row["updated_at"])
        assert {k: v for k, v in row.items() if k not in {"id", "created_at", "updated_at"}} == {
            "user_id": alice.user_id,
            "key": alice.key,
            "key_hash": None,
            "mode": "all",
            "name": "all",
            "limited_to_orgs": [],
            "limited_to_apps": [],
            "expires_at": None,
        }

    async def test_lists_every_key_ordered_by_id(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        first = await make_key(client, alice, name="first", mode="read")
        second = await make_key(client, alice, name="second", hashed=True)
        keys = await own_keys(client, alice)
        ids = [key["id"] for key in keys]
        assert ids == sorted(ids)
        assert [key["name"] for key in keys] == ["all", "first", "second"]
        assert keys[1] == first
        assert keys[2] == {**second, "key": None}

    async def test_never_lists_another_users_keys(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        await make_key(client, bob, name="bob's")
        keys = await own_keys(client, alice)
        assert [key["user_id"] for key in keys] == [alice.user_id]
        assert bob.key not in {key["key"] for key in keys}

    async def test_org_limited_key_cannot_list(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        limited = await key_limited_to_org(client, alice, alice.org_id)
        response = await client.get("/apikey", headers=auth(limited["key"]))
        assert response.status_code == 401
        assert response.json() == {
            "error": "cannot_list_apikeys",
            "message": "You cannot do that as a limited API key",
            "moreInfo": {},
        }

    async def test_app_limited_key_cannot_list(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        limited = await make_key(client, alice, limited_to_apps=["com.example.app"])
        response = await client.get("/apikey", headers=auth(limited["key"]))
        assert error_of(response) == (401, "cannot_list_apikeys")


class TestGetApiKey:
    async def test_by_numeric_id(self, client: httpx.AsyncClient, alice: Account) -> None:
        created = await make_key(client, alice, name="one", mode="upload")
        response = await client.get(f"/apikey/{created['id']}", headers=alice.headers)
        assert response.status_code == 200
        assert response.json() == created

    async def test_by_key_value(self, client: httpx.AsyncClient, alice: Account) -> None:
        created = await make_key(client, alice, name="by value")
        response = await client.get(f"/apikey/{created['key']}", headers=alice.headers)
        assert response.status_code == 200
        assert response.json() == created

    async def test_hashed_key_shows_no_value(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        created = await make_key(client, alice, hashed=True)
        response = await client.get(f"/apikey/{created['id']}", headers=alice.headers)
        assert response.status_code == 200
        assert response.json() == {**created, "key": None}

    async def test_unknown_id_is_not_found(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await client.get(f"/apikey/{NOT_FOUND_ID}", headers=alice.headers)
        assert response.status_code == 404
        assert response.json() == {
            "error": "failed_to_get_apikey",
            "message": "Failed to get API key",
            "moreInfo": {},
        }

    async def test_another_users_key_id_is_not_found(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        bobs = await make_key(client, bob, name="bob's")
        response = await client.get(f"/apikey/{bobs['id']}", headers=alice.headers)
        assert error_of(response) == (404, "failed_to_get_apikey")

    async def test_another_users_key_value_is_not_found(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        response = await client.get(f"/apikey/{bob.key}", headers=alice.headers)
        assert error_of(response) == (404, "failed_to_get_apikey")

    async def test_malformed_id_is_refused(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await client.get("/apikey/abc", headers=alice.headers)
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_id_format",
            "message": "API key ID must be a valid UUID or number",
            "moreInfo": {},
        }

    async def test_oversized_numeric_id_is_a_clean_refusal(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await client.get("/apikey/99999999999999999999999", headers=alice.headers)
        assert error_of(response) in {(400, "invalid_id_format"), (404, "failed_to_get_apikey")}

    async def test_limited_key_cannot_get(self, client: httpx.AsyncClient, alice: Account) -> None:
        limited = await key_limited_to_org(client, alice, alice.org_id)
        response = await client.get(f"/apikey/{limited['id']}", headers=auth(limited["key"]))
        assert response.status_code == 401
        assert response.json() == {
            "error": "cannot_get_apikey",
            "message": "You cannot do that as a limited API key",
            "moreInfo": {},
        }


class TestUpdateApiKey:
    async def test_rename(self, client: httpx.AsyncClient, alice: Account) -> None:
        created = await make_key(client, alice, name="before")
        response = await client.put(
            f"/apikey/{created['id']}", json={"name": "after"}, headers=alice.headers
        )
        assert response.status_code == 200
        body = response.json()
        assert body == {**created, "name": "after", "updated_at": body["updated_at"]}
        assert body["updated_at"] >= created["updated_at"]
        fetched = await client.get(f"/apikey/{created['id']}", headers=alice.headers)
        assert fetched.json()["name"] == "after"

    async def test_change_mode(self, client: httpx.AsyncClient, alice: Account) -> None:
        created = await make_key(client, alice, name="demoted")
        response = await client.put(
            f"/apikey/{created['id']}", json={"mode": "read"}, headers=alice.headers
        )
        assert response.status_code == 200
        assert response.json()["mode"] == "read"
        # A read key may no longer manage keys.
        refused = await client.get("/apikey", headers=auth(created["key"]))
        assert error_of(refused) == (401, "invalid_apikey")

    async def test_invalid_mode(self, client: httpx.AsyncClient, alice: Account) -> None:
        created = await make_key(client, alice)
        response = await client.put(
            f"/apikey/{created['id']}", json={"mode": "root"}, headers=alice.headers
        )
        assert error_of(response) == (400, "invalid_mode")
        assert all(m in response.json()["message"] for m in ("read", "write", "all", "upload"))

    @pytest.mark.parametrize("field", ["limited_to_apps", "limited_to_orgs"])
    @pytest.mark.parametrize("value", ["not_an_array", [1, 2], [None], {"a": "b"}])
    async def test_limits_must_be_arrays_of_strings(
        self, client: httpx.AsyncClient, alice: Account, field: str, value: object
    ) -> None:
        created = await make_key(client, alice)
        response = await client.put(
            f"/apikey/{created['id']}", json={field: value}, headers=alice.headers
        )
        assert error_of(response) == (400, f"{field}_must_be_an_array_of_strings")

    async def test_empty_body_is_refused(self, client: httpx.AsyncClient, alice: Account) -> None:
        created = await make_key(client, alice)
        response = await client.put(f"/apikey/{created['id']}", json={}, headers=alice.headers)
        assert response.status_code == 400
        assert response.json() == {
            "error": "no_valid_fields_provided_for_update",
            "message": "No valid fields provided for update",
            "moreInfo": {},
        }

    async def test_name_must_be_a_string(self, client: httpx.AsyncClient, alice: Account) -> None:
        created = await make_key(client, alice)
        response = await client.put(
            f"/apikey/{created['id']}", json={"name": 123}, headers=alice.headers
        )
        assert error_of(response) == (400, "name_must_be_a_string")

    async def test_unknown_id_is_not_found(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await client.put(
            f"/apikey/{NOT_FOUND_ID}", json={"name": "x"}, headers=alice.headers
        )
        assert response.status_code == 404
        assert response.json() == {
            "error": "api_key_not_found_or_access_denied",
            "message": "API key not found or access denied",
            "moreInfo": {},
        }

    async def test_another_users_key_is_not_found(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        bobs = await make_key(client, bob, name="bob's", mode="read")
        response = await client.put(
            f"/apikey/{bobs['id']}", json={"name": "x", "mode": "all"}, headers=alice.headers
        )
        assert error_of(response) == (404, "api_key_not_found_or_access_denied")
        unchanged = await client.get(f"/apikey/{bobs['id']}", headers=bob.headers)
        assert unchanged.json() == bobs

    async def test_malformed_id_is_refused(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await client.put("/apikey/abc", json={"name": "x"}, headers=alice.headers)
        assert error_of(response) == (400, "invalid_id_format")

    async def test_key_value_as_id(self, client: httpx.AsyncClient, alice: Account) -> None:
        created = await make_key(client, alice, name="by value")
        response = await client.put(
            f"/apikey/{created['key']}", json={"name": "renamed"}, headers=alice.headers
        )
        assert response.status_code == 200
        assert response.json()["id"] == created["id"]
        assert response.json()["name"] == "renamed"

    async def test_add_expiration(self, client: httpx.AsyncClient, alice: Account) -> None:
        created = await make_key(client, alice)
        expires = in_days(10)
        response = await client.put(
            f"/apikey/{created['id']}", json={"expires_at": expires}, headers=alice.headers
        )
        assert response.status_code == 200
        assert response.json()["expires_at"] == expires
        fetched = await client.get(f"/apikey/{created['id']}", headers=alice.headers)
        assert fetched.json()["expires_at"] == expires

    async def test_change_expiration(self, client: httpx.AsyncClient, alice: Account) -> None:
        created = await make_key(client, alice, expires_at=in_days(10))
        expires = in_days(20)
        response = await client.put(
            f"/apikey/{created['id']}", json={"expires_at": expires}, headers=alice.headers
        )
        assert response.status_code == 200
        assert response.json()["expires_at"] == expires

    async def test_remove_expiration(self, client: httpx.AsyncClient, alice: Account) -> None:
        created = await make_key(client, alice, expires_at=in_days(10))
        response = await client.put(
            f"/apikey/{created['id']}", json={"expires_at": None}, headers=alice.headers
        )
        assert response.status_code == 200
        assert response.json()["expires_at"] is None

    @pytest.mark.parametrize("expires", ["2020-01-01T00:00:00.000Z", "not-a-date"])
    async def test_invalid_expiration(
        self, client: httpx.AsyncClient, alice: Account, expires: str
    ) -> None:
        created = await make_key(client, alice)
        response = await client.put(
            f"/apikey/{created['id']}", json={"expires_at": expires}, headers=alice.headers
        )
        assert error_of(response) == (400, "invalid_expiration_date")
        fetched = await client.get(f"/apikey/{created['id']}", headers=alice.headers)
        assert fetched.json()["expires_at"] is None

    async def test_limit_to_own_org(self, client: httpx.AsyncClient, alice: Account) -> None:
        created = await make_key(client, alice)
        response = await client.put(
            f"/apikey/{created['id']}",
            json={"limited_to_orgs": [alice.org_id]},
            headers=alice.headers,
        )
        assert response.status_code == 200
        assert response.json()["limited_to_orgs"] == [alice.org_id]

    async def test_limit_to_foreign_org_is_refused(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        created = await make_key(client, alice)
        response = await client.put(
            f"/apikey/{created['id']}",
            json={"limited_to_orgs": [bob.org_id]},
            headers=alice.headers,
        )
        assert error_of(response) == (404, "org_not_found")

    async def test_removing_expiry_against_org_policy_is_refused(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        org_id = await create_org(client, alice, "Strict Org")
        await set_org_policy(client, alice, org_id, require_apikey_expiration=True)
        created = await key_limited_to_org(client, alice, org_id, expires_at=in_days(5))
        response = await client.put(
            f"/apikey/{created['id']}", json={"expires_at": None}, headers=alice.headers
        )
        assert error_of(response) == (400, "expiration_required")

    async def test_limited_caller_cannot_update(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        limited = await key_limited_to_org(client, alice, alice.org_id)
        response = await client.put(
            f"/apikey/{limited['id']}",
            json={"limited_to_orgs": [], "name": "x"},
            headers=auth(limited["key"]),
        )
        assert response.status_code == 401
        assert response.json() == {
            "error": "cannot_update_apikey",
            "message": "You cannot do that as a limited API key",
            "moreInfo": {},
        }

    async def test_invalid_json(self, client: httpx.AsyncClient, alice: Account) -> None:
        created = await make_key(client, alice)
        response = await client.put(
            f"/apikey/{created['id']}",
            content=b"{not json",
            headers={**alice.headers, "content-type": "application/json"},
        )
        assert error_of(response) == (400, "invalid_json_parse_body")


class TestDeleteApiKey:
    async def test_delete(self, client: httpx.AsyncClient, alice: Account) -> None:
        created = await make_key(client, alice)
        response = await client.delete(f"/apikey/{created['id']}", headers=alice.headers)
        assert response.status_code == 200
        assert response.json() == {"success": True, "status": "ok"}
        assert created["id"] not in {key["id"] for key in await own_keys(client, alice)}

    async def test_delete_by_key_value(self, client: httpx.AsyncClient, alice: Account) -> None:
        created = await make_key(client, alice)
        response = await client.delete(f"/apikey/{created['key']}", headers=alice.headers)
        assert response.status_code == 200
        assert response.json() == {"success": True, "status": "ok"}

    async def test_second_delete_is_not_found(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        created = await make_key(client, alice)
        await client.delete(f"/apikey/{created['id']}", headers=alice.headers)
        response = await client.delete(f"/apikey/{created['id']}", headers=alice.headers)
        assert response.status_code == 404
        assert response.json() == {
            "error": "api_key_not_found",
            "message": "API key not found",
            "moreInfo": {},
        }

    async def test_the_deleted_newest_id_is_not_given_again(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        # SQLite without AUTOINCREMENT handed the largest id out again once its row was gone.
        deleted = await make_key(client, alice, name="deleted")
        await client.delete(f"/apikey/{deleted['id']}", headers=alice.headers)
        created = await make_key(client, alice, name="created after")
        assert created["id"] > deleted["id"]
        again = await client.delete(f"/apikey/{deleted['id']}", headers=alice.headers)
        assert error_of(again) == (404, "api_key_not_found")
        assert created["id"] in {key["id"] for key in await own_keys(client, alice)}

    async def test_deleted_key_stops_authenticating(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        created = await make_key(client, alice)
        assert (await client.get("/organization", headers=auth(created["key"]))).status_code == 200
        await client.delete(f"/apikey/{created['id']}", headers=alice.headers)
        for path in ("/organization", "/apikey"):
            response = await client.get(path, headers=auth(created["key"]))
            assert error_of(response) == (401, "invalid_apikey")

    async def test_another_users_key_is_not_found(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        bobs = await make_key(client, bob, name="bob's")
        response = await client.delete(f"/apikey/{bobs['id']}", headers=alice.headers)
        assert error_of(response) == (404, "api_key_not_found")
        still = await client.get("/organization", headers=auth(bobs["key"]))
        assert still.status_code == 200

    async def test_malformed_id_is_refused(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await client.delete("/apikey/abc", headers=alice.headers)
        assert error_of(response) == (400, "invalid_id_format")

    async def test_limited_caller_cannot_delete(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        limited = await key_limited_to_org(client, alice, alice.org_id)
        response = await client.delete(f"/apikey/{limited['id']}", headers=auth(limited["key"]))
        assert response.status_code == 401
        assert response.json() == {
            "error": "cannot_delete_apikey",
            "message": "You cannot do that as a limited API key",
            "moreInfo": {},
        }
        assert limited["id"] in {key["id"] for key in await own_keys(client, alice)}


ROUTES = [
    ("GET", "/apikey"),
    ("GET", "/apikey/{id}"),
    ("POST", "/apikey"),
    ("PUT", "/apikey/{id}"),
    ("DELETE", "/apikey/{id}"),
]


class TestOnlyAllModeKeysManageKeys:
    @pytest.mark.parametrize("mode", ["read", "upload", "write"])
    @pytest.mark.parametrize(("method", "path"), ROUTES)
    async def test_non_all_key_is_refused(
        self, client: httpx.AsyncClient, alice: Account, mode: str, method: str, path: str
    ) -> None:
        weak = await make_key(client, alice, name=f"{mode} key", mode=mode)
        body = {"name": "minted", "mode": "all"} if method in {"POST", "PUT"} else None
        response = await client.request(
            method, path.format(id=weak["id"]), json=body, headers=auth(weak["key"])
        )
        assert response.status_code == 401
        assert response.json() == {
            "error": "invalid_apikey",
            "message": "Invalid apikey",
            "moreInfo": {},
        }
        [unchanged] = [k for k in await own_keys(client, alice) if k["id"] == weak["id"]]
        assert unchanged == weak
        assert len(await own_keys(client, alice)) == 2
