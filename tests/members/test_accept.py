"""Invitations grant nothing until accepted; ``POST /organization/members/accept``.

House decision "Member invites": an invite is ``invite_<role>`` until the invited user accepts it
with their own key (spec README; roles order in spec §2.3).
"""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import Account, make_account
from tests.members.helpers import (
    ACCEPT,
    INVALID_KEY,
    MEMBERS,
    NO_KEY,
    RANDOM_ORG,
    accept,
    assert_cannot_access,
    assert_error,
    assert_no_org_access,
    can_see_org,
    expected,
    headers_of,
    invite,
    key_headers,
    list_members,
    member,
    second_org,
)


async def invited(
    client: httpx.AsyncClient,
    app: FastAPI,
    owner: Account,
    role: str,
    email: str = "carol@example.com",
) -> Account:
    """A new user with a pending ``invite_<role>`` to ``owner``'s org."""
    account = await make_account(app, email, f"{email} org")
    response = await invite(client, owner, owner.org_id, email, role)
    assert response.status_code == 200, response.text
    return account


def assert_not_pending(response: httpx.Response, org_id: str) -> None:
    assert_error(response, 404, "invitation_not_found", {"orgId": org_id})


class TestPendingInvitation:
    async def test_invitee_cannot_get_the_org(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await invited(client, app, alice, "admin")
        response = await client.get(
            "/organization", params={"orgId": alice.org_id}, headers=carol.headers
        )
        assert_error(response, 400, "invalid_org_id", {"org_id": alice.org_id})

    async def test_invitee_does_not_see_the_org_in_their_list(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await invited(client, app, alice, "super_admin")
        response = await client.get("/organization", headers=carol.headers)
        assert response.status_code == 200
        assert [org["id"] for org in response.json()] == [carol.org_id]

    async def test_invitee_cannot_list_members(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await invited(client, app, alice, "read")
        response = await client.get(MEMBERS, params={"orgId": alice.org_id}, headers=carol.headers)
        assert_cannot_access(response, alice.org_id)

    async def test_invitee_cannot_update_the_org(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await invited(client, app, alice, "super_admin")
        response = await client.put(
            "/organization", json={"orgId": alice.org_id, "name": "Hijack"}, headers=carol.headers
        )
        assert_cannot_access(response, alice.org_id)

    async def test_invitee_cannot_remove_members(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
    ) -> None:
        carol = await invited(client, app, alice, "super_admin")
        assert (await invite(client, alice, alice.org_id, bob.email, "read")).status_code == 200
        response = await client.request(
            "DELETE",
            MEMBERS,
            json={"orgId": alice.org_id, "email": bob.email},
            headers=carol.headers,
        )
        assert_cannot_access(response, alice.org_id)
        rows = await list_members(client, alice.org_id, alice.headers)
        assert member(bob, "invite_read") in rows


class TestAcceptInvitation:
    async def test_accept_grants_the_offered_role(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await invited(client, app, alice, "read")
        response = await accept(client, carol, alice.org_id)
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "orgId": alice.org_id, "role": "read"}
        rows = await list_members(client, alice.org_id, alice.headers)
        assert rows == expected(member(alice, "super_admin"), member(carol, "read"))

    @pytest.mark.parametrize("role", ["read", "upload", "write", "admin", "super_admin"])
    async def test_accept_answers_each_role(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, role: str
    ) -> None:
        carol = await invited(client, app, alice, role)
        response = await accept(client, carol, alice.org_id)
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "orgId": alice.org_id, "role": role}
        assert member(carol, role) in await list_members(client, alice.org_id, alice.headers)

    async def test_accepted_member_can_read_the_org(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await invited(client, app, alice, "read")
        assert (await accept(client, carol, alice.org_id)).status_code == 200
        response = await client.get(
            "/organization", params={"orgId": alice.org_id}, headers=carol.headers
        )
        assert response.status_code == 200
        assert response.json()["id"] == alice.org_id
        assert response.json()["name"] == "Alice Org"
        assert await can_see_org(client, carol, alice.org_id)
        rows = await list_members(client, alice.org_id, carol.headers)
        assert rows == expected(member(alice, "super_admin"), member(carol, "read"))

    async def test_read_member_cannot_update_the_org(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await invited(client, app, alice, "read")
        assert (await accept(client, carol, alice.org_id)).status_code == 200
        response = await client.put(
            "/organization", json={"orgId": alice.org_id, "name": "Nope"}, headers=carol.headers
        )
        assert_cannot_access(response, alice.org_id)
        org = await client.get(
            "/organization", params={"orgId": alice.org_id}, headers=alice.headers
        )
        assert org.json()["name"] == "Alice Org"

    async def test_admin_member_can_update_the_org(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await invited(client, app, alice, "admin")
        assert (await accept(client, carol, alice.org_id)).status_code == 200
        response = await client.put(
            "/organization",
            json={"orgId": alice.org_id, "name": "Renamed Org"},
            headers=carol.headers,
        )
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "Organization updated"
        assert body["id"] == alice.org_id
        assert body["data"]["name"] == "Renamed Org"

    async def test_write_mode_key_may_accept(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await invited(client, app, alice, "upload")
        headers = await key_headers(client, carol, mode="write")
        response = await client.post(ACCEPT, json={"orgId": alice.org_id}, headers=headers)
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "orgId": alice.org_id, "role": "upload"}

    async def test_accept_through_query_string(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await invited(client, app, alice, "write")
        response = await client.post(ACCEPT, params={"orgId": alice.org_id}, headers=carol.headers)
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "orgId": alice.org_id, "role": "write"}

    async def test_nothing_pending_is_not_found(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        response = await accept(client, bob, alice.org_id)
        assert_not_pending(response, alice.org_id)
        await assert_no_org_access(client, bob, alice.org_id)

    async def test_random_org_is_not_found(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await accept(client, alice, RANDOM_ORG)
        assert_not_pending(response, RANDOM_ORG)

    async def test_existing_member_has_nothing_pending(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await accept(client, alice, alice.org_id)
        assert_not_pending(response, alice.org_id)
        assert await list_members(client, alice.org_id, alice.headers) == [
            member(alice, "super_admin")
        ]

    async def test_accepting_twice_is_not_found(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await invited(client, app, alice, "read")
        assert (await accept(client, carol, alice.org_id)).status_code == 200
        response = await accept(client, carol, alice.org_id)
        assert_not_pending(response, alice.org_id)
        assert member(carol, "read") in await list_members(client, alice.org_id, alice.headers)

    async def test_inviter_cannot_accept_for_the_invitee(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await invited(client, app, alice, "admin")
        response = await accept(client, alice, alice.org_id)
        assert_not_pending(response, alice.org_id)
        rows = await list_members(client, alice.org_id, alice.headers)
        assert rows == expected(member(alice, "super_admin"), member(carol, "invite_admin"))
        await assert_no_org_access(client, carol, alice.org_id)

    async def test_another_user_cannot_accept_for_the_invitee(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
    ) -> None:
        carol = await invited(client, app, alice, "write")
        response = await accept(client, bob, alice.org_id)
        assert_not_pending(response, alice.org_id)
        rows = await list_members(client, alice.org_id, alice.headers)
        assert rows == expected(member(alice, "super_admin"), member(carol, "invite_write"))
        await assert_no_org_access(client, bob, alice.org_id)
        await assert_no_org_access(client, carol, alice.org_id)

    async def test_accepting_one_invitation_leaves_others_pending(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
    ) -> None:
        carol = await invited(client, app, alice, "read")
        assert (await invite(client, alice, alice.org_id, bob.email, "admin")).status_code == 200
        assert (await accept(client, carol, alice.org_id)).status_code == 200
        rows = await list_members(client, alice.org_id, alice.headers)
        assert rows == expected(
            member(alice, "super_admin"), member(carol, "read"), member(bob, "invite_admin")
        )

    async def test_empty_body_is_invalid_json(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await client.post(ACCEPT, json={}, headers=alice.headers)
        assert_error(response, 400, "invalid_json_parse_body")

    async def test_missing_org_id_is_invalid_body(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await client.post(ACCEPT, json={"org": alice.org_id}, headers=alice.headers)
        assert "error" in assert_error(response, 400, "invalid_body")["moreInfo"]

    async def test_non_uuid_org_cannot_be_accessed(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await client.post(ACCEPT, json={"orgId": "nope"}, headers=alice.headers)
        assert_cannot_access(response, "nope")

    @pytest.mark.parametrize("mode", ["read", "upload"])
    async def test_key_without_write_mode_cannot_accept(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, mode: str
    ) -> None:
        carol = await invited(client, app, alice, "read")
        headers = await key_headers(client, carol, mode=mode)
        response = await client.post(ACCEPT, json={"orgId": alice.org_id}, headers=headers)
        assert_cannot_access(response, alice.org_id)
        assert member(carol, "invite_read") in await list_members(
            client, alice.org_id, alice.headers
        )

    async def test_key_limited_to_another_org_cannot_accept(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await invited(client, app, alice, "read")
        other = await second_org(client, carol)
        headers = await key_headers(client, carol, mode="all", limited_to_orgs=[other])
        response = await client.post(ACCEPT, json={"orgId": alice.org_id}, headers=headers)
        assert_cannot_access(response, alice.org_id)
        assert member(carol, "invite_read") in await list_members(
            client, alice.org_id, alice.headers
        )

    async def test_no_key_is_unauthorized(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await client.post(ACCEPT, json={"orgId": alice.org_id})
        assert response.status_code == 401
        assert response.json() == NO_KEY

    async def test_bad_key_is_unauthorized(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await client.post(
            ACCEPT, json={"orgId": alice.org_id}, headers=headers_of("not-a-key")
        )
        assert response.status_code == 401
        assert response.json() == INVALID_KEY
