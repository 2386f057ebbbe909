"""Invitations to an e-mail that has no user yet: kept, listed with ``is_tmp``, cancelled,
expired after 7 days, capped per organization, granted by ``create-user`` (issue #15)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from capgo_server.auth.roles import Role
from capgo_server.clock import utcnow
from capgo_server.members.pending import (
    INVITATION_LIFETIME,
    MAX_PENDING_INVITATIONS_PER_ORG,
    keep_invitation,
    lock_email,
)
from capgo_server.models import AuditLog, PendingInvitation, User
from capgo_server.users.service import GrantedInvitation, NewAccount, create_user
from tests.apps.helpers import create_app
from tests.conftest import Account, make_account
from tests.members.helpers import (
    MEMBERS,
    accept,
    add_member,
    assert_cannot_access,
    assert_error,
    assert_invite_refused,
    can_see_org,
    expected,
    invite,
    key_headers,
    list_members,
    member,
    second_org,
)

INVITATIONS = "/organization/members/invitations"
NEWCOMER = "newcomer@example.com"


def pending(email: str, role: str) -> dict[str, Any]:
    """The members-list entry of an invitation of a non-user (its ``uid`` checked apart)."""
    return {"uid": "?", "email": email, "image_url": "", "role": f"invite_{role}", "is_tmp": True}


def without_tmp_uids(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` with each pending entry's uid (a fresh UUID) checked and replaced by ``?``."""
    for row in rows:
        if row["is_tmp"]:
            assert str(uuid.UUID(row["uid"])) == row["uid"], row
            row["uid"] = "?"
    return rows


async def members_of(client: httpx.AsyncClient, owner: Account) -> list[dict[str, Any]]:
    return without_tmp_uids(await list_members(client, owner.org_id, owner.headers))


async def remove(client: httpx.AsyncClient, caller: Any, org_id: str, email: str) -> httpx.Response:
    headers = caller.headers if isinstance(caller, Account) else caller
    return await client.request(
        "DELETE", MEMBERS, json={"orgId": org_id, "email": email}, headers=headers
    )


async def my_invitations(client: httpx.AsyncClient, headers: dict[str, str]) -> Any:
    response = await client.get(INVITATIONS, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def age_invitations(app: FastAPI, by: timedelta) -> None:
    """Date every kept invitation ``by`` ago (they are all just made; the API cannot do it)."""
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(update(PendingInvitation).values(created_at=utcnow() - by))


async def kept(app: FastAPI) -> list[tuple[str, str, str]]:
    async with app.state.sessionmaker() as session:
        rows = await session.execute(
            select(PendingInvitation.org_id, PendingInvitation.email, PendingInvitation.role)
        )
        return sorted(tuple(row) for row in rows.all())


async def assert_ok(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok"}


class TestKept:
    async def test_invitation_of_a_non_user_is_kept_and_listed_as_tmp(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await assert_ok(await invite(client, alice, alice.org_id, NEWCOMER, "write"))
        assert await members_of(client, alice) == expected(
            member(alice, "super_admin"), pending(NEWCOMER, "write")
        )
        assert await kept(app) == [(alice.org_id, NEWCOMER, "write")]

    async def test_email_is_compared_case_insensitively(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await assert_ok(await invite(client, alice, alice.org_id, "NewComer@Example.COM", "read"))
        response = await invite(client, alice, alice.org_id, "newcomer@EXAMPLE.com", "admin")
        assert_invite_refused(response, "ALREADY_INVITED")
        assert await kept(app) == [(alice.org_id, NEWCOMER, "read")]

    async def test_each_org_keeps_its_own_invitation_of_one_email(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
    ) -> None:
        await assert_ok(await invite(client, alice, alice.org_id, NEWCOMER, "read"))
        await assert_ok(await invite(client, bob, bob.org_id, NEWCOMER, "upload"))
        assert await kept(app) == sorted(
            [(alice.org_id, NEWCOMER, "read"), (bob.org_id, NEWCOMER, "upload")]
        )

    async def test_invitation_is_audited(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await assert_ok(await invite(client, alice, alice.org_id, NEWCOMER, "read"))
        response = await client.get(
            "/organization/audit",
            params={"orgId": alice.org_id, "tableName": "pending_invitations"},
            headers=alice.headers,
        )
        assert response.status_code == 200, response.text
        [entry] = response.json()["data"]
        assert (entry["operation"], entry["user_id"], entry["org_id"]) == (
            "INSERT",
            alice.user_id,
            alice.org_id,
        )
        assert (entry["new_record"]["email"], entry["new_record"]["role"]) == (NEWCOMER, "read")

    async def test_oversized_email_is_invalid_body(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        email = "a" * 64 + "@" + ".".join(["b" * 60] * 5) + ".com"
        response = await invite(client, alice, alice.org_id, email, "read")
        assert_error(response, 400, "invalid_body")
        assert await kept(app) == []

    async def test_deleting_the_org_deletes_its_invitations(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        doomed = await second_org(client, alice, "Doomed")
        await assert_ok(await invite(client, alice, doomed, NEWCOMER, "read"))
        await assert_ok(await invite(client, alice, alice.org_id, NEWCOMER, "read"))
        response = await client.delete(
            "/organization", params={"orgId": doomed}, headers=alice.headers
        )
        assert response.status_code == 200, response.text
        assert await kept(app) == [(alice.org_id, NEWCOMER, "read")]


class TestRoleRules:
    async def test_admin_may_invite_a_non_user_up_to_admin_only(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await add_member(client, app, alice, "carol@example.com", "admin")
        await assert_ok(await invite(client, carol, alice.org_id, NEWCOMER, "admin"))
        response = await invite(client, carol, alice.org_id, "other@example.com", "super_admin")
        assert_invite_refused(response, "NO_RIGHTS")
        assert await kept(app) == [(alice.org_id, NEWCOMER, "admin")]

    async def test_super_admin_may_offer_super_admin_to_a_non_user(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await assert_ok(await invite(client, alice, alice.org_id, NEWCOMER, "super_admin"))
        assert pending(NEWCOMER, "super_admin") in await members_of(client, alice)

    @pytest.mark.parametrize("role", ["read", "write"])
    async def test_member_without_rights_gets_one_answer_for_users_and_non_users(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account, role: str
    ) -> None:
        carol = await add_member(client, app, alice, "carol@example.com", role)
        for email in (bob.email, NEWCOMER):
            assert_cannot_access(
                await invite(client, carol, alice.org_id, email, "read"), alice.org_id
            )
        assert await kept(app) == []

    async def test_admin_asking_too_much_gets_one_answer_for_users_and_non_users(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
    ) -> None:
        carol = await add_member(client, app, alice, "carol@example.com", "admin")
        for email in (bob.email, NEWCOMER):
            response = await invite(client, carol, alice.org_id, email, "super_admin")
            assert_invite_refused(response, "NO_RIGHTS")

    async def test_another_tenant_gets_one_answer_for_users_and_non_users(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
    ) -> None:
        carol = await make_account(app, "carol@example.com")
        for email in (carol.email, NEWCOMER):
            assert_cannot_access(
                await invite(client, bob, alice.org_id, email, "read"), alice.org_id
            )
        assert await kept(app) == []


class TestCancel:
    async def test_owner_cancels_with_the_email(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await assert_ok(await invite(client, alice, alice.org_id, NEWCOMER, "read"))
        response = await remove(client, alice, alice.org_id, "NEWCOMER@example.com")
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "OK"}
        assert await members_of(client, alice) == [member(alice, "super_admin")]
        assert await kept(app) == []
        again = await remove(client, alice, alice.org_id, NEWCOMER)
        assert_error(again, 404, "user_not_found", {"email": NEWCOMER})
        # Cancelled, the e-mail may be invited again.
        await assert_ok(await invite(client, alice, alice.org_id, NEWCOMER, "admin"))

    async def test_cancellation_is_audited(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await assert_ok(await invite(client, alice, alice.org_id, NEWCOMER, "read"))
        assert (await remove(client, alice, alice.org_id, NEWCOMER)).status_code == 200
        response = await client.get(
            "/organization/audit",
            params={"orgId": alice.org_id, "tableName": "pending_invitations"},
            headers=alice.headers,
        )
        operations = [(e["operation"], e["user_id"]) for e in response.json()["data"]]
        assert operations == [("DELETE", alice.user_id), ("INSERT", alice.user_id)]

    @pytest.mark.parametrize("role", ["read", "write"])
    async def test_member_below_admin_cannot_cancel(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, role: str
    ) -> None:
        carol = await add_member(client, app, alice, "carol@example.com", role)
        await assert_ok(await invite(client, alice, alice.org_id, NEWCOMER, "read"))
        assert_cannot_access(await remove(client, carol, alice.org_id, NEWCOMER), alice.org_id)
        assert await kept(app) == [(alice.org_id, NEWCOMER, "read")]

    async def test_write_mode_key_cannot_cancel(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await assert_ok(await invite(client, alice, alice.org_id, NEWCOMER, "read"))
        headers = await key_headers(client, alice, mode="write")
        assert_cannot_access(await remove(client, headers, alice.org_id, NEWCOMER), alice.org_id)
        assert await kept(app) == [(alice.org_id, NEWCOMER, "read")]

    async def test_another_tenant_cannot_cancel(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
    ) -> None:
        await assert_ok(await invite(client, alice, alice.org_id, NEWCOMER, "read"))
        assert_cannot_access(await remove(client, bob, alice.org_id, NEWCOMER), alice.org_id)
        assert await kept(app) == [(alice.org_id, NEWCOMER, "read")]


class TestExpiry:
    async def test_expired_invitation_is_not_listed_not_granted_and_may_be_renewed(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await assert_ok(await invite(client, alice, alice.org_id, NEWCOMER, "read"))
        await age_invitations(app, INVITATION_LIFETIME + timedelta(minutes=1))
        assert await members_of(client, alice) == [member(alice, "super_admin")]
        assert_error(await remove(client, alice, alice.org_id, NEWCOMER), 404, "user_not_found")

        async with app.state.sessionmaker() as session, session.begin():
            account = await create_user(session, NEWCOMER)
        assert account.invitations == []
        assert await kept(app) == []  # deleted, not only ignored
        newcomer = Account(account.user_id, account.org_id, account.apikey, NEWCOMER)
        assert await my_invitations(client, newcomer.headers) == []
        assert_error(await accept(client, newcomer, alice.org_id), 404, "invitation_not_found")

    async def test_expired_invitation_does_not_block_a_new_one(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await assert_ok(await invite(client, alice, alice.org_id, NEWCOMER, "read"))
        await age_invitations(app, INVITATION_LIFETIME + timedelta(minutes=1))
        await assert_ok(await invite(client, alice, alice.org_id, NEWCOMER, "admin"))
        assert await members_of(client, alice) == expected(
            member(alice, "super_admin"), pending(NEWCOMER, "admin")
        )

    async def test_invitation_younger_than_the_lifetime_still_counts(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await assert_ok(await invite(client, alice, alice.org_id, NEWCOMER, "read"))
        await age_invitations(app, INVITATION_LIFETIME - timedelta(minutes=5))
        assert pending(NEWCOMER, "read") in await members_of(client, alice)
        async with app.state.sessionmaker() as session, session.begin():
            account = await create_user(session, NEWCOMER)
        assert account.invitations == [GrantedInvitation(alice.org_id, "invite_read")]


class TestGrantedAtCreateUser:
    async def test_new_user_holds_the_invitations_and_accepts_one(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
    ) -> None:
        await assert_ok(await invite(client, alice, alice.org_id, "NewComer@Example.com", "write"))
        await assert_ok(await invite(client, bob, bob.org_id, NEWCOMER, "read"))

        async with app.state.sessionmaker() as session, session.begin():
            account = await create_user(session, "newcomer@EXAMPLE.com")
        assert account.invitations == [
            GrantedInvitation(alice.org_id, "invite_write"),
            GrantedInvitation(bob.org_id, "invite_read"),
        ]
        newcomer = Account(account.user_id, account.org_id, account.apikey, NEWCOMER)
        assert await kept(app) == []
        assert await members_of(client, alice) == expected(
            member(alice, "super_admin"), member(newcomer, "invite_write")
        )
        # Granted, still nothing until accepted.
        assert not await can_see_org(client, newcomer, alice.org_id)

        response = await accept(client, newcomer, alice.org_id)
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "ok", "orgId": alice.org_id, "role": "write"}
        assert await can_see_org(client, newcomer, alice.org_id)
        response = await client.post(
            "/organization/members/decline", json={"orgId": bob.org_id}, headers=newcomer.headers
        )
        assert response.status_code == 200, response.text
        assert await list_members(client, bob.org_id, bob.headers) == [member(bob, "super_admin")]

    async def test_grant_is_audited_as_made_by_the_inviter(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await assert_ok(await invite(client, alice, alice.org_id, NEWCOMER, "read"))
        newcomer = await make_account(app, NEWCOMER)
        async with app.state.sessionmaker() as session:
            entries = (
                await session.scalars(
                    select(AuditLog)
                    .where(AuditLog.org_id == alice.org_id, AuditLog.user_id == alice.user_id)
                    .order_by(AuditLog.id)
                )
            ).all()
        last = [(e.table_name, e.operation) for e in entries][-2:]
        assert last == [("pending_invitations", "DELETE"), ("org_users", "INSERT")]
        assert entries[-1].new_record is not None
        assert entries[-1].new_record["user_id"] == newcomer.user_id
        assert entries[-1].new_record["user_right"] == "invite_read"


class TestRaceWithCreateUser:
    async def test_create_user_waits_for_an_invitation_of_its_email_in_progress(
        self, app: FastAPI, alice: Account
    ) -> None:
        """The invitation found no user; ``create-user`` of that e-mail, started meanwhile, must
        not miss the invitation about to be committed (it would then never be granted)."""

        async def create() -> NewAccount:
            async with app.state.sessionmaker() as session, session.begin():
                return await create_user(session, NEWCOMER)

        async with app.state.sessionmaker() as inviting, inviting.begin():
            await lock_email(inviting, NEWCOMER)
            assert await inviting.scalar(select(User.id).where(User.email == NEWCOMER)) is None
            creating = asyncio.create_task(create())
            await asyncio.sleep(0.5)
            assert not creating.done()
            await keep_invitation(
                inviting,
                org_id=alice.org_id,
                email=NEWCOMER,
                role=Role.read,
                invited_by=alice.user_id,
            )
        account = await asyncio.wait_for(creating, timeout=20)
        assert account.invitations == [GrantedInvitation(alice.org_id, "invite_read")]
        assert await kept(app) == []

    async def test_create_user_and_a_second_invitation_of_its_email_do_not_deadlock(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        """Found in review: the invitation held the org's row lock while waiting for the
        e-mail's lock; ``create-user``, holding the e-mail's lock, then granted the pending
        invitation to that org, and the new membership's foreign key waited for the org's row:
        PostgreSQL broke the deadlock by failing one of them (a 500 or a failed create-user)."""
        await assert_ok(await invite(client, alice, alice.org_id, NEWCOMER, "read"))
        async with app.state.sessionmaker() as creating, creating.begin():
            await lock_email(creating, NEWCOMER)  # create-user has started
            again = asyncio.create_task(invite(client, alice, alice.org_id, NEWCOMER, "admin"))
            await asyncio.sleep(0.5)
            assert not again.done()
            account = await create_user(creating, NEWCOMER)
        assert account.invitations == [GrantedInvitation(alice.org_id, "invite_read")]
        assert_invite_refused(await asyncio.wait_for(again, timeout=20), "ALREADY_INVITED")


class TestInviteeListing:
    async def test_invitee_lists_pending_invitations_not_in_organization_list(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
    ) -> None:
        await assert_ok(await invite(client, alice, alice.org_id, NEWCOMER, "admin"))
        newcomer = await make_account(app, NEWCOMER)
        listed = await my_invitations(client, newcomer.headers)
        assert [{k: v for k, v in row.items() if k != "invited_at"} for row in listed] == [
            {"orgId": alice.org_id, "name": "Alice Org", "role": "invite_admin"}
        ]
        assert listed[0]["invited_at"].endswith("Z")
        assert not await can_see_org(client, newcomer, alice.org_id)
        # Invitations of existing users are listed alike; the invitee's own org is not.
        await assert_ok(await invite(client, bob, bob.org_id, NEWCOMER, "read"))
        roles = [(r["orgId"], r["role"]) for r in await my_invitations(client, newcomer.headers)]
        assert roles == [(alice.org_id, "invite_admin"), (bob.org_id, "invite_read")]
        assert (await accept(client, newcomer, alice.org_id)).status_code == 200
        roles = [(r["orgId"], r["role"]) for r in await my_invitations(client, newcomer.headers)]
        assert roles == [(bob.org_id, "invite_read")]

    @pytest.mark.parametrize("mode", ["read", "upload", "write", "all"])
    async def test_any_key_mode_may_list(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, mode: str
    ) -> None:
        await assert_ok(await invite(client, alice, alice.org_id, NEWCOMER, "read"))
        newcomer = await make_account(app, NEWCOMER)
        headers = await key_headers(client, newcomer, mode=mode)
        assert [r["orgId"] for r in await my_invitations(client, headers)] == [alice.org_id]

    async def test_limited_key_sees_only_its_orgs(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
    ) -> None:
        # A key may be limited only to orgs its user belongs to: the newcomer joins Alice's,
        # makes a key for it, leaves, and is invited back (and to Bob's).
        newcomer = await add_member(client, app, alice, NEWCOMER, "read")
        headers = await key_headers(client, newcomer, mode="read", limited_to_orgs=[alice.org_id])
        own_only = await key_headers(
            client, newcomer, mode="read", limited_to_orgs=[newcomer.org_id]
        )
        assert (await remove(client, newcomer, alice.org_id, NEWCOMER)).status_code == 200
        await assert_ok(await invite(client, alice, alice.org_id, NEWCOMER, "write"))
        await assert_ok(await invite(client, bob, bob.org_id, NEWCOMER, "read"))
        everything = await my_invitations(client, newcomer.headers)
        assert [r["orgId"] for r in everything] == [alice.org_id, bob.org_id]
        assert [r["orgId"] for r in await my_invitations(client, headers)] == [alice.org_id]
        assert await my_invitations(client, own_only) == []

    async def test_app_limited_key_sees_none(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await assert_ok(await invite(client, alice, alice.org_id, NEWCOMER, "read"))
        newcomer = await make_account(app, NEWCOMER)
        await create_app(client, newcomer, "com.newcomer.app")
        headers = await key_headers(
            client, newcomer, mode="all", limited_to_apps=["com.newcomer.app"]
        )
        assert await my_invitations(client, headers) == []
        assert len(await my_invitations(client, newcomer.headers)) == 1

    async def test_other_users_see_none_of_them(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
    ) -> None:
        await assert_ok(await invite(client, alice, alice.org_id, NEWCOMER, "read"))
        await make_account(app, NEWCOMER)
        assert await my_invitations(client, bob.headers) == []
        assert await my_invitations(client, alice.headers) == []

    async def test_without_a_key_is_refused(self, client: httpx.AsyncClient) -> None:
        assert_error(await client.get(INVITATIONS), 401, "no_key_provided")

    async def test_documented_in_openapi(self, client: httpx.AsyncClient) -> None:
        spec = (await client.get("/openapi.json")).json()
        operation = spec["paths"][INVITATIONS]["get"]
        assert operation["summary"] == "List my pending invitations"
        schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema["items"]["$ref"] == "#/components/schemas/PendingInvitationOut"
        fields = spec["components"]["schemas"]["PendingInvitationOut"]["properties"]
        assert set(fields) == {"orgId", "name", "role", "invited_at"}


class TestCap:
    async def fill(self, app: FastAPI, org_id: str, count: int) -> None:
        async with app.state.sessionmaker() as session, session.begin():
            session.add_all(
                PendingInvitation(org_id=org_id, email=f"spam{n}@example.com", role="read")
                for n in range(count)
            )

    async def test_cap_refuses_users_and_non_users_alike_until_one_is_withdrawn(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
    ) -> None:
        await self.fill(app, alice.org_id, MAX_PENDING_INVITATIONS_PER_ORG - 2)
        await assert_ok(await invite(client, alice, alice.org_id, bob.email, "read"))
        await assert_ok(await invite(client, alice, alice.org_id, NEWCOMER, "read"))
        carol = await make_account(app, "carol@example.com")
        for email in (carol.email, "late@example.com"):
            response = await invite(client, alice, alice.org_id, email, "read")
            body = assert_error(
                response,
                400,
                "error_inviting_user_to_organization",
                {"data": "TOO_MANY_INVITATIONS", "limit": MAX_PENDING_INVITATIONS_PER_ORG},
            )
            assert str(MAX_PENDING_INVITATIONS_PER_ORG) in body["message"]
        assert len(await kept(app)) == MAX_PENDING_INVITATIONS_PER_ORG - 1
        # Other organizations are not affected.
        await assert_ok(await invite(client, bob, bob.org_id, "late@example.com", "read"))
        # Withdrawing one frees room.
        assert (await remove(client, alice, alice.org_id, NEWCOMER)).status_code == 200
        await assert_ok(await invite(client, alice, alice.org_id, "late@example.com", "read"))

    async def test_expired_invitations_do_not_count(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await self.fill(app, alice.org_id, MAX_PENDING_INVITATIONS_PER_ORG)
        response = await invite(client, alice, alice.org_id, NEWCOMER, "read")
        assert_invite_refused_cap(response)
        await age_invitations(app, INVITATION_LIFETIME + timedelta(seconds=1))
        await assert_ok(await invite(client, alice, alice.org_id, NEWCOMER, "read"))
        assert await kept(app) == [(alice.org_id, NEWCOMER, "read")]

    async def test_accepted_members_do_not_count(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await self.fill(app, alice.org_id, MAX_PENDING_INVITATIONS_PER_ORG - 1)
        await add_member(client, app, alice, "carol@example.com", "read")
        await assert_ok(await invite(client, alice, alice.org_id, NEWCOMER, "read"))


def assert_invite_refused_cap(response: httpx.Response) -> None:
    assert_error(
        response,
        400,
        "error_inviting_user_to_organization",
        {"data": "TOO_MANY_INVITATIONS", "limit": MAX_PENDING_INVITATIONS_PER_ORG},
    )


def test_lifetime_is_capgos_seven_days() -> None:
    assert timedelta(days=7) == INVITATION_LIFETIME
