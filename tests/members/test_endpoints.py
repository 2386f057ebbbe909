"""``GET /organization/members`` and ``POST /organization/members`` (spec §3.1, House decisions).

Accepting invitations and removing members are in ``test_accept.py`` and ``test_remove.py``.
"""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import Account, make_account, make_key
from tests.members.helpers import (
    INVALID_KEY,
    MEMBERS,
    NO_KEY,
    RANDOM_ORG,
    add_member,
    assert_cannot_access,
    assert_error,
    assert_invite_refused,
    expected,
    invite,
    key_headers,
    list_members,
    member,
    require_expiring_keys,
    second_org,
)

ROLES = ["read", "upload", "write", "admin", "super_admin"]


class TestListMembers:
    async def test_owner_is_the_only_member_as_super_admin(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await client.get(MEMBERS, params={"orgId": alice.org_id}, headers=alice.headers)
        assert response.status_code == 200
        assert response.json() == [member(alice, "super_admin")]

    async def test_invited_user_is_listed_as_invite_role(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        assert (await invite(client, alice, alice.org_id, bob.email, "admin")).status_code == 200
        rows = await list_members(client, alice.org_id, alice.headers)
        assert rows == expected(member(alice, "super_admin"), member(bob, "invite_admin"))

    async def test_accepted_member_is_listed_with_the_role(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await add_member(client, app, alice, "carol@example.com", "upload")
        rows = await list_members(client, alice.org_id, alice.headers)
        assert rows == expected(member(alice, "super_admin"), member(carol, "upload"))

    async def test_read_member_can_list(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await add_member(client, app, alice, "carol@example.com", "read")
        rows = await list_members(client, alice.org_id, carol.headers)
        assert rows == expected(member(alice, "super_admin"), member(carol, "read"))

    @pytest.mark.parametrize("mode", ["read", "upload", "write", "all"])
    async def test_every_key_mode_can_list(
        self, client: httpx.AsyncClient, alice: Account, mode: str
    ) -> None:
        headers = await key_headers(client, alice, mode=mode)
        response = await client.get(MEMBERS, params={"orgId": alice.org_id}, headers=headers)
        assert response.status_code == 200
        assert response.json() == [member(alice, "super_admin")]

    async def test_key_limited_to_the_org_can_list(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        headers = await key_headers(client, alice, mode="read", limited_to_orgs=[alice.org_id])
        response = await client.get(MEMBERS, params={"orgId": alice.org_id}, headers=headers)
        assert response.status_code == 200
        assert response.json() == [member(alice, "super_admin")]

    async def test_missing_org_id_is_invalid_body(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await client.get(MEMBERS, headers=alice.headers)
        body = assert_error(response, 400, "invalid_body")
        assert "error" in body["moreInfo"]

    async def test_random_org_cannot_be_accessed(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await client.get(MEMBERS, params={"orgId": RANDOM_ORG}, headers=alice.headers)
        assert_cannot_access(response, RANDOM_ORG)

    async def test_non_uuid_org_cannot_be_accessed(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await client.get(MEMBERS, params={"orgId": "not-an-org"}, headers=alice.headers)
        assert_cannot_access(response, "not-an-org")

    async def test_foreign_org_cannot_be_accessed(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        response = await client.get(MEMBERS, params={"orgId": bob.org_id}, headers=alice.headers)
        assert_cannot_access(response, bob.org_id)

    async def test_key_limited_to_another_org_cannot_access(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        other = await second_org(client, alice)
        headers = await key_headers(client, alice, mode="all", limited_to_orgs=[other])
        response = await client.get(MEMBERS, params={"orgId": alice.org_id}, headers=headers)
        assert_cannot_access(response, alice.org_id)

    async def test_subkey_limited_to_another_org_cannot_access(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        other = await second_org(client, alice)
        subkey = await make_key(client, alice, mode="all", limited_to_orgs=[other])
        headers = {**alice.headers, "x-limited-key-id": str(subkey["id"])}
        response = await client.get(MEMBERS, params={"orgId": alice.org_id}, headers=headers)
        assert_cannot_access(response, alice.org_id)

    async def test_org_requiring_expiring_keys_refuses_a_key_without_expiry(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await require_expiring_keys(client, alice)
        response = await client.get(MEMBERS, params={"orgId": alice.org_id}, headers=alice.headers)
        assert_error(response, 401, "org_requires_expiring_key", {"org_id": alice.org_id})

    async def test_no_key_is_unauthorized(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await client.get(MEMBERS, params={"orgId": alice.org_id})
        assert response.status_code == 401
        assert response.json() == NO_KEY

    async def test_bad_key_is_unauthorized(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await client.get(
            MEMBERS, params={"orgId": alice.org_id}, headers={"authorization": "not-a-key"}
        )
        assert response.status_code == 401
        assert response.json() == INVALID_KEY


class TestInviteMember:
    async def test_invite_with_invite_type(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        response = await invite(client, alice, alice.org_id, bob.email, "read")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        rows = await list_members(client, alice.org_id, alice.headers)
        assert rows == expected(member(alice, "super_admin"), member(bob, "invite_read"))

    async def test_invite_with_documented_role_alias(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        response = await client.post(
            MEMBERS,
            json={"orgId": alice.org_id, "email": bob.email, "role": "write"},
            headers=alice.headers,
        )
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        rows = await list_members(client, alice.org_id, alice.headers)
        assert rows == expected(member(alice, "super_admin"), member(bob, "invite_write"))

    @pytest.mark.parametrize("role", ROLES)
    async def test_owner_may_offer_every_role(
        self, client: httpx.AsyncClient, alice: Account, bob: Account, role: str
    ) -> None:
        response = await invite(client, alice, alice.org_id, bob.email, role)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        rows = await list_members(client, alice.org_id, alice.headers)
        assert member(bob, f"invite_{role}") in rows

    async def test_invite_through_query_string(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        params = {"orgId": alice.org_id, "email": bob.email, "invite_type": "upload"}
        response = await client.post(MEMBERS, params=params, headers=alice.headers)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        rows = await list_members(client, alice.org_id, alice.headers)
        assert member(bob, "invite_upload") in rows

    async def test_write_mode_key_may_invite(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        headers = await key_headers(client, alice, mode="write")
        response = await invite(client, headers, alice.org_id, bob.email, "read")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    async def test_empty_body_is_invalid_json(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await client.post(MEMBERS, json={}, headers=alice.headers)
        assert_error(response, 400, "invalid_json_parse_body")

    async def test_unparsable_body_is_invalid_json(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await client.post(MEMBERS, content=b"not json", headers=alice.headers)
        assert_error(response, 400, "invalid_json_parse_body")

    @pytest.mark.parametrize(
        "changes",
        [
            {"email": None},
            {"email": "not-an-email"},
            {"email": 42},
            {"invite_type": None},
            {"invite_type": "owner"},
            {"invite_type": "invite_read"},
            {"orgId": None},
        ],
        ids=[
            "no-email",
            "bad-email",
            "numeric-email",
            "no-invite-type",
            "unknown-invite-type",
            "pending-invite-type",
            "no-org-id",
        ],
    )
    async def test_bad_shape_is_invalid_body(
        self,
        client: httpx.AsyncClient,
        alice: Account,
        bob: Account,
        changes: dict[str, object],
    ) -> None:
        body = {"orgId": alice.org_id, "email": bob.email, "invite_type": "read", **changes}
        body = {name: value for name, value in body.items() if value is not None}
        response = await client.post(MEMBERS, json=body, headers=alice.headers)
        assert "error" in assert_error(response, 400, "invalid_body")["moreInfo"]
        assert await list_members(client, alice.org_id, alice.headers) == [
            member(alice, "super_admin")
        ]

    async def test_random_org_cannot_be_accessed(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        response = await invite(client, alice, RANDOM_ORG, bob.email, "read")
        assert_cannot_access(response, RANDOM_ORG)

    async def test_foreign_org_cannot_be_accessed(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
    ) -> None:
        carol = await make_account(app, "carol@example.com")
        response = await invite(client, alice, bob.org_id, carol.email, "read")
        assert_cannot_access(response, bob.org_id)
        assert await list_members(client, bob.org_id, bob.headers) == [member(bob, "super_admin")]

    async def test_unknown_email_is_kept_not_no_email(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        # Kept until that user is created: see test_pending_invitations.py.
        response = await invite(client, alice, alice.org_id, "nobody@example.com", "read")
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "ok"}

    async def test_existing_member_is_already_invited(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await add_member(client, app, alice, "carol@example.com", "read")
        response = await invite(client, alice, alice.org_id, carol.email, "admin")
        assert_invite_refused(response, "ALREADY_INVITED")
        rows = await list_members(client, alice.org_id, alice.headers)
        assert member(carol, "read") in rows

    async def test_owner_inviting_themself_is_already_invited(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await invite(client, alice, alice.org_id, alice.email, "read")
        assert_invite_refused(response, "ALREADY_INVITED")
        rows = await list_members(client, alice.org_id, alice.headers)
        assert rows == [member(alice, "super_admin")]

    async def test_pending_invitee_is_already_invited(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        assert (await invite(client, alice, alice.org_id, bob.email, "read")).status_code == 200
        response = await invite(client, alice, alice.org_id, bob.email, "admin")
        assert_invite_refused(response, "ALREADY_INVITED")
        rows = await list_members(client, alice.org_id, alice.headers)
        assert member(bob, "invite_read") in rows

    async def test_admin_cannot_offer_super_admin(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
    ) -> None:
        carol = await add_member(client, app, alice, "carol@example.com", "admin")
        response = await invite(client, carol, alice.org_id, bob.email, "super_admin")
        assert_invite_refused(response, "NO_RIGHTS")
        rows = await list_members(client, alice.org_id, alice.headers)
        assert bob.email not in {row["email"] for row in rows}

    async def test_admin_may_offer_admin(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
    ) -> None:
        carol = await add_member(client, app, alice, "carol@example.com", "admin")
        response = await invite(client, carol, alice.org_id, bob.email, "admin")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        rows = await list_members(client, alice.org_id, alice.headers)
        assert member(bob, "invite_admin") in rows

    async def test_super_admin_may_offer_super_admin(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
    ) -> None:
        carol = await add_member(client, app, alice, "carol@example.com", "super_admin")
        response = await invite(client, carol, alice.org_id, bob.email, "super_admin")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        rows = await list_members(client, alice.org_id, alice.headers)
        assert member(bob, "invite_super_admin") in rows

    @pytest.mark.parametrize("mode", ["read", "upload"])
    async def test_owner_key_without_write_mode_cannot_invite(
        self, client: httpx.AsyncClient, alice: Account, bob: Account, mode: str
    ) -> None:
        headers = await key_headers(client, alice, mode=mode)
        response = await invite(client, headers, alice.org_id, bob.email, "read")
        assert_cannot_access(response, alice.org_id)
        assert await list_members(client, alice.org_id, alice.headers) == [
            member(alice, "super_admin")
        ]

    async def test_key_limited_to_another_org_cannot_invite(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        other = await second_org(client, alice)
        headers = await key_headers(client, alice, mode="all", limited_to_orgs=[other])
        response = await invite(client, headers, alice.org_id, bob.email, "read")
        assert_cannot_access(response, alice.org_id)

    @pytest.mark.parametrize("role", ["read", "upload", "write"])
    async def test_member_below_admin_cannot_invite(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account, role: str
    ) -> None:
        carol = await add_member(client, app, alice, "carol@example.com", role)
        response = await invite(client, carol, alice.org_id, bob.email, "read")
        assert_cannot_access(response, alice.org_id)
        rows = await list_members(client, alice.org_id, alice.headers)
        assert bob.email not in {row["email"] for row in rows}

    async def test_pending_admin_invitee_cannot_invite(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
    ) -> None:
        carol = await make_account(app, "carol@example.com")
        assert (await invite(client, alice, alice.org_id, carol.email, "admin")).status_code == 200
        response = await invite(client, carol, alice.org_id, bob.email, "read")
        assert_cannot_access(response, alice.org_id)

    async def test_email_is_matched_case_insensitively(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        response = await invite(client, alice, alice.org_id, "BOB@Example.com", "read")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert member(bob, "invite_read") in await list_members(client, alice.org_id, alice.headers)

    async def test_org_requiring_expiring_keys_refuses_a_key_without_expiry(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        await require_expiring_keys(client, alice)
        response = await invite(client, alice, alice.org_id, bob.email, "read")
        assert_error(response, 401, "org_requires_expiring_key", {"org_id": alice.org_id})

    async def test_no_key_is_unauthorized(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        response = await client.post(
            MEMBERS, json={"orgId": alice.org_id, "email": bob.email, "invite_type": "read"}
        )
        assert response.status_code == 401
        assert response.json() == NO_KEY

    async def test_bad_key_is_unauthorized(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        response = await invite(
            client, {"authorization": "not-a-key"}, alice.org_id, bob.email, "read"
        )
        assert response.status_code == 401
        assert response.json() == INVALID_KEY
