"""``POST /organization/members/decline``: the invited user turns an invitation down.

House route, the counterpart of ``/accept`` (Capgo's public API has no way to decline): body or
query ``{orgId}``, the invited user's own key of mode write/all, not limited to other orgs or to
apps. The invitation is deleted and audited like a withdrawn one; 404 ``invitation_not_found``
when there is nothing pending.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import Account, make_account
from tests.members.helpers import (
    NO_KEY,
    RANDOM_ORG,
    accept,
    assert_cannot_access,
    assert_error,
    assert_no_org_access,
    invite,
    key_headers,
    list_members,
    member,
)

DECLINE = "/organization/members/decline"


async def invited(client: httpx.AsyncClient, app: FastAPI, owner: Account, role: str) -> Account:
    carol = await make_account(app, "carol@example.com", "Carol Org")
    response = await invite(client, owner, owner.org_id, carol.email, role)
    assert response.status_code == 200, response.text
    return carol


async def decline(
    client: httpx.AsyncClient, org_id: str, headers: dict[str, str]
) -> httpx.Response:
    return await client.post(DECLINE, json={"orgId": org_id}, headers=headers)


def assert_not_pending(response: httpx.Response, org_id: str) -> None:
    assert_error(response, 404, "invitation_not_found", {"orgId": org_id})


class TestDeclineInvitation:
    async def test_declined_invitation_is_gone(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await invited(client, app, alice, "admin")
        response = await decline(client, alice.org_id, carol.headers)
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "ok", "orgId": alice.org_id}
        # The inviter sees it gone; accepting (or declining) it again finds nothing.
        assert await list_members(client, alice.org_id, alice.headers) == [
            member(alice, "super_admin")
        ]
        assert_not_pending(await accept(client, carol, alice.org_id), alice.org_id)
        assert_not_pending(await decline(client, alice.org_id, carol.headers), alice.org_id)
        await assert_no_org_access(client, carol, alice.org_id)

    async def test_declining_is_audited_like_a_withdrawn_invitation(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await invited(client, app, alice, "write")
        assert (await decline(client, alice.org_id, carol.headers)).status_code == 200
        response = await client.get(
            "/organization/audit",
            params={"orgId": alice.org_id, "tableName": "org_users"},
            headers=alice.headers,
        )
        assert response.status_code == 200, response.text
        latest = response.json()["data"][0]
        assert latest["operation"] == "DELETE"
        assert latest["user_id"] == carol.user_id
        assert latest["org_id"] == alice.org_id
        assert latest["new_record"] is None
        assert latest["old_record"]["user_id"] == carol.user_id
        assert latest["old_record"]["user_right"] == "invite_write"

    async def test_can_be_invited_again_after_declining(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await invited(client, app, alice, "read")
        assert (await decline(client, alice.org_id, carol.headers)).status_code == 200
        assert (await invite(client, alice, alice.org_id, carol.email, "read")).status_code == 200
        assert (await accept(client, carol, alice.org_id)).status_code == 200
        assert member(carol, "read") in await list_members(client, alice.org_id, alice.headers)

    async def test_through_query_string(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await invited(client, app, alice, "read")
        response = await client.post(DECLINE, params={"orgId": alice.org_id}, headers=carol.headers)
        assert response.status_code == 200, response.text
        assert await list_members(client, alice.org_id, alice.headers) == [
            member(alice, "super_admin")
        ]


class TestNothingToDecline:
    async def test_a_member_cannot_decline_their_membership(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        assert_not_pending(await decline(client, alice.org_id, alice.headers), alice.org_id)
        assert await list_members(client, alice.org_id, alice.headers) == [
            member(alice, "super_admin")
        ]

    async def test_others_cannot_decline_for_the_invitee(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
    ) -> None:
        carol = await invited(client, app, alice, "read")
        assert_not_pending(await decline(client, alice.org_id, bob.headers), alice.org_id)
        assert_not_pending(await decline(client, alice.org_id, alice.headers), alice.org_id)
        assert member(carol, "invite_read") in await list_members(
            client, alice.org_id, alice.headers
        )

    async def test_random_org(self, client: httpx.AsyncClient, alice: Account) -> None:
        assert_not_pending(await decline(client, RANDOM_ORG, alice.headers), RANDOM_ORG)

    async def test_non_uuid_org(self, client: httpx.AsyncClient, alice: Account) -> None:
        assert_cannot_access(await decline(client, "nope", alice.headers), "nope")

    async def test_no_key(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await client.post(DECLINE, json={"orgId": alice.org_id})
        assert response.status_code == 401
        assert response.json() == NO_KEY


class TestKeysThatMayNotDecline:
    @pytest.mark.parametrize(
        "fields", [{"mode": "read"}, {"mode": "upload"}, {"limited_to_apps": ["com.x.y"]}]
    )
    async def test_refused_and_still_pending(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, fields: dict[str, object]
    ) -> None:
        carol = await invited(client, app, alice, "read")
        headers = await key_headers(client, carol, **fields)
        assert_cannot_access(await decline(client, alice.org_id, headers), alice.org_id)
        assert member(carol, "invite_read") in await list_members(
            client, alice.org_id, alice.headers
        )


class TestAnsweringTwiceAtOnce:
    async def test_accept_and_decline_at_once_one_wins(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await invited(client, app, alice, "write")
        for trial in range(4):
            accepted, declined = await asyncio.gather(
                accept(client, carol, alice.org_id), decline(client, alice.org_id, carol.headers)
            )
            statuses = (accepted.status_code, declined.status_code)
            assert sorted(statuses) == [200, 404], (trial, accepted.text, declined.text)
            loser = declined if accepted.status_code == 200 else accepted
            assert_not_pending(loser, alice.org_id)
            rows = await list_members(client, alice.org_id, alice.headers)
            if accepted.status_code == 200:
                assert member(carol, "write") in rows
                removed = await client.request(
                    "DELETE",
                    "/organization/members",
                    json={"orgId": alice.org_id, "email": carol.email},
                    headers=alice.headers,
                )
                assert removed.status_code == 200, removed.text
            else:
                assert rows == [member(alice, "super_admin")]
            response = await invite(client, alice, alice.org_id, carol.email, "write")
            assert response.status_code == 200, response.text
