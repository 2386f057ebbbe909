"""``DELETE /organization/members`` (spec §3.1, §1.1; House decisions "Silent no-ops", "Success
bodies"): remove a member, leave, or withdraw an invitation; a removed member loses access at once.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import Account, make_account
from tests.members.helpers import (
    INVALID_KEY,
    MEMBERS,
    NO_KEY,
    RANDOM_ORG,
    accept,
    add_member,
    assert_cannot_access,
    assert_error,
    assert_no_org_access,
    can_see_org,
    expected,
    headers_of,
    in_a_week,
    invite,
    key_headers,
    list_members,
    member,
    require_expiring_keys,
    second_org,
)

REMOVED = {"status": "OK"}


async def remove(
    client: httpx.AsyncClient, remover: Account | dict[str, str], org_id: str, email: str
) -> httpx.Response:
    headers = remover.headers if isinstance(remover, Account) else remover
    return await client.request(
        "DELETE", MEMBERS, json={"orgId": org_id, "email": email}, headers=headers
    )


class TestRemoveMember:
    async def test_remove_by_body(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await add_member(client, app, alice, "carol@example.com", "write")
        response = await remove(client, alice, alice.org_id, carol.email)
        assert response.status_code == 200
        assert response.json() == REMOVED
        assert await list_members(client, alice.org_id, alice.headers) == [
            member(alice, "super_admin")
        ]

    async def test_remove_by_query_string(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await add_member(client, app, alice, "carol@example.com", "read")
        response = await client.delete(
            MEMBERS, params={"orgId": alice.org_id, "email": carol.email}, headers=alice.headers
        )
        assert response.status_code == 200
        assert response.json() == REMOVED
        assert await list_members(client, alice.org_id, alice.headers) == [
            member(alice, "super_admin")
        ]

    async def test_removed_member_loses_access_at_once(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await add_member(client, app, alice, "carol@example.com", "admin")
        assert await can_see_org(client, carol, alice.org_id)
        response = await remove(client, alice, alice.org_id, carol.email)
        assert response.status_code == 200
        assert response.json() == REMOVED
        await assert_no_org_access(client, carol, alice.org_id)
        response = await client.put(
            "/organization", json={"orgId": alice.org_id, "name": "Gone"}, headers=carol.headers
        )
        assert_cannot_access(response, alice.org_id)

    async def test_member_can_leave(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await add_member(client, app, alice, "carol@example.com", "read")
        response = await remove(client, carol, alice.org_id, carol.email)
        assert response.status_code == 200
        assert response.json() == REMOVED
        await assert_no_org_access(client, carol, alice.org_id)
        assert await list_members(client, alice.org_id, alice.headers) == [
            member(alice, "super_admin")
        ]

    async def test_one_of_two_super_admins_can_leave(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await add_member(client, app, alice, "carol@example.com", "super_admin")
        response = await remove(client, alice, alice.org_id, alice.email)
        assert response.status_code == 200
        assert response.json() == REMOVED
        await assert_no_org_access(client, alice, alice.org_id)
        assert await list_members(client, alice.org_id, carol.headers) == [
            member(carol, "super_admin")
        ]

    async def test_super_admin_can_remove_another_super_admin(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await add_member(client, app, alice, "carol@example.com", "super_admin")
        response = await remove(client, carol, alice.org_id, alice.email)
        assert response.status_code == 200
        assert response.json() == REMOVED
        await assert_no_org_access(client, alice, alice.org_id)

    async def test_admin_can_remove_a_lower_member(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await add_member(client, app, alice, "carol@example.com", "admin")
        dave = await add_member(client, app, alice, "dave@example.com", "write")
        response = await remove(client, carol, alice.org_id, dave.email)
        assert response.status_code == 200
        assert response.json() == REMOVED
        rows = await list_members(client, alice.org_id, alice.headers)
        assert rows == expected(member(alice, "super_admin"), member(carol, "admin"))

    async def test_withdraw_pending_invitation(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await make_account(app, "carol@example.com")
        assert (await invite(client, alice, alice.org_id, carol.email, "admin")).status_code == 200
        response = await remove(client, alice, alice.org_id, carol.email)
        assert response.status_code == 200
        assert response.json() == REMOVED
        assert await list_members(client, alice.org_id, alice.headers) == [
            member(alice, "super_admin")
        ]
        response = await accept(client, carol, alice.org_id)
        assert_error(response, 404, "invitation_not_found", {"orgId": alice.org_id})
        await assert_no_org_access(client, carol, alice.org_id)

    async def test_email_is_matched_case_insensitively(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await add_member(client, app, alice, "carol@example.com", "read")
        response = await remove(client, alice, alice.org_id, "Carol@Example.COM")
        assert response.status_code == 200
        assert response.json() == REMOVED
        assert await list_members(client, alice.org_id, alice.headers) == [
            member(alice, "super_admin")
        ]

    async def test_no_params_is_invalid_json(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await client.delete(MEMBERS, headers=alice.headers)
        assert_error(response, 400, "invalid_json_parse_body")

    @pytest.mark.parametrize(
        "body",
        [{"email": "carol@example.com"}, {"orgId": "ORG"}, {"orgId": "ORG", "email": "nope"}],
        ids=["no-org-id", "no-email", "bad-email"],
    )
    async def test_bad_shape_is_invalid_body(
        self, client: httpx.AsyncClient, alice: Account, body: dict[str, Any]
    ) -> None:
        body = {name: alice.org_id if value == "ORG" else value for name, value in body.items()}
        response = await client.request("DELETE", MEMBERS, json=body, headers=alice.headers)
        assert "error" in assert_error(response, 400, "invalid_body")["moreInfo"]

    async def test_random_org_cannot_be_accessed(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        response = await remove(client, alice, RANDOM_ORG, bob.email)
        assert_cannot_access(response, RANDOM_ORG)

    async def test_foreign_org_cannot_be_accessed(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        response = await remove(client, alice, bob.org_id, bob.email)
        assert_cannot_access(response, bob.org_id)
        assert await list_members(client, bob.org_id, bob.headers) == [member(bob, "super_admin")]

    async def test_unknown_email_is_user_not_found(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await remove(client, alice, alice.org_id, "nobody@example.com")
        assert_error(response, 404, "user_not_found")

    async def test_existing_non_member_is_user_not_found(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        response = await remove(client, alice, alice.org_id, bob.email)
        assert_error(response, 404, "user_not_found")
        assert await list_members(client, bob.org_id, bob.headers) == [member(bob, "super_admin")]

    async def test_admin_cannot_remove_super_admin(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await add_member(client, app, alice, "carol@example.com", "admin")
        response = await remove(client, carol, alice.org_id, alice.email)
        assert_error(response, 403, "cannot_delete_higher_priority_role")
        rows = await list_members(client, alice.org_id, alice.headers)
        assert rows == expected(member(alice, "super_admin"), member(carol, "admin"))

    async def test_last_super_admin_cannot_be_removed(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await add_member(client, app, alice, "carol@example.com", "admin")
        response = await remove(client, alice, alice.org_id, alice.email)
        assert_error(response, 400, "cannot_remove_last_super_admin")
        response = await client.get(
            "/organization", params={"orgId": alice.org_id}, headers=alice.headers
        )
        assert response.status_code == 200
        assert response.json()["id"] == alice.org_id

    async def test_pending_super_admin_does_not_count_as_an_owner(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        assert (
            await invite(client, alice, alice.org_id, bob.email, "super_admin")
        ).status_code == 200
        response = await remove(client, alice, alice.org_id, alice.email)
        assert_error(response, 400, "cannot_remove_last_super_admin")
        assert member(alice, "super_admin") in await list_members(
            client, alice.org_id, alice.headers
        )

    async def test_write_mode_key_cannot_remove_another_member(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await add_member(client, app, alice, "carol@example.com", "read")
        headers = await key_headers(client, alice, mode="write")
        response = await remove(client, headers, alice.org_id, carol.email)
        assert_cannot_access(response, alice.org_id)
        assert member(carol, "read") in await list_members(client, alice.org_id, alice.headers)
        assert await can_see_org(client, carol, alice.org_id)

    @pytest.mark.parametrize("mode", ["read", "upload"])
    async def test_key_without_write_mode_cannot_remove(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, mode: str
    ) -> None:
        carol = await add_member(client, app, alice, "carol@example.com", "read")
        headers = await key_headers(client, alice, mode=mode)
        response = await remove(client, headers, alice.org_id, carol.email)
        assert_cannot_access(response, alice.org_id)
        assert member(carol, "read") in await list_members(client, alice.org_id, alice.headers)

    async def test_key_limited_to_another_org_cannot_remove(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await add_member(client, app, alice, "carol@example.com", "read")
        other = await second_org(client, alice)
        headers = await key_headers(client, alice, mode="all", limited_to_orgs=[other])
        response = await remove(client, headers, alice.org_id, carol.email)
        assert_cannot_access(response, alice.org_id)
        assert member(carol, "read") in await list_members(client, alice.org_id, alice.headers)

    @pytest.mark.parametrize("role", ["read", "upload", "write"])
    async def test_non_admin_member_cannot_remove_others(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, role: str
    ) -> None:
        carol = await add_member(client, app, alice, "carol@example.com", role)
        dave = await add_member(client, app, alice, "dave@example.com", "read")
        response = await remove(client, carol, alice.org_id, dave.email)
        assert_cannot_access(response, alice.org_id)
        assert member(dave, "read") in await list_members(client, alice.org_id, alice.headers)

    async def test_org_requiring_expiring_keys_refuses_a_key_without_expiry(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await add_member(client, app, alice, "carol@example.com", "read")
        await require_expiring_keys(client, alice)
        response = await remove(client, alice, alice.org_id, carol.email)
        assert_error(response, 401, "org_requires_expiring_key", {"org_id": alice.org_id})
        headers = await key_headers(client, alice, expires_at=in_a_week())
        response = await remove(client, headers, alice.org_id, carol.email)
        assert response.status_code == 200
        assert response.json() == REMOVED

    async def test_no_key_is_unauthorized(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        response = await client.request(
            "DELETE", MEMBERS, json={"orgId": alice.org_id, "email": bob.email}
        )
        assert response.status_code == 401
        assert response.json() == NO_KEY

    async def test_bad_key_is_unauthorized(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        response = await remove(client, headers_of("not-a-key"), alice.org_id, bob.email)
        assert response.status_code == 401
        assert response.json() == INVALID_KEY
