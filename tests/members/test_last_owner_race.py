"""The last-``super_admin`` rule under concurrency: two owners leaving (or removing each other)
at the same moment never leave an organization without one.

Both removals are sent at once over the in-process client (``asyncio.gather``), several times,
on each engine: exactly one succeeds, the other is refused with 400
``cannot_remove_last_super_admin``, and the organization keeps an owner who can still manage it.
"""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI

from tests.conftest import Account, make_account
from tests.members.helpers import (
    MEMBERS,
    accept,
    assert_error,
    invite,
    list_members,
    member,
    second_org,
)

TRIALS = 6


async def remove(
    client: httpx.AsyncClient, remover: Account, org_id: str, email: str
) -> httpx.Response:
    return await client.request(
        "DELETE", MEMBERS, json={"orgId": org_id, "email": email}, headers=remover.headers
    )


async def org_with_two_owners(
    client: httpx.AsyncClient, alice: Account, carol: Account, trial: int
) -> str:
    """A new org of Alice's in which Carol is a second ``super_admin``."""
    org_id = await second_org(client, alice, f"Race Org {trial}")
    response = await invite(client, alice, org_id, carol.email, "super_admin")
    assert response.status_code == 200, response.text
    response = await accept(client, carol, org_id)
    assert response.status_code == 200, response.text
    return org_id


def split(responses: list[httpx.Response], owners: list[Account]) -> tuple[Account, httpx.Response]:
    """The owner whose removal was refused, and that refusal; the other must have succeeded."""
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200, 400], [response.text for response in responses]
    refused = next(i for i, response in enumerate(responses) if response.status_code == 400)
    succeeded = responses[1 - refused]
    assert succeeded.json() == {"status": "OK"}
    return owners[refused], responses[refused]


async def test_owners_leaving_at_once_keep_one(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    carol = await make_account(app, "carol@example.com")
    owners = [alice, carol]
    for trial in range(TRIALS):
        org_id = await org_with_two_owners(client, alice, carol, trial)
        responses = await asyncio.gather(
            *(remove(client, owner, org_id, owner.email) for owner in owners)
        )
        keeper, refusal = split(list(responses), owners)
        assert_error(refusal, 400, "cannot_remove_last_super_admin", {"email": keeper.email})
        assert await list_members(client, org_id, keeper.headers) == [
            member(keeper, "super_admin")
        ], f"trial {trial}"


async def test_owners_removing_each_other_at_once_keep_one(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    """The second removal is decided after the first: its author is no longer a member."""
    carol = await make_account(app, "carol@example.com")
    owners = [alice, carol]
    for trial in range(TRIALS):
        org_id = await org_with_two_owners(client, alice, carol, trial)
        responses = await asyncio.gather(
            remove(client, alice, org_id, carol.email), remove(client, carol, org_id, alice.email)
        )
        removed, refusal = split(list(responses), owners)
        assert_error(refusal, 400, "cannot_access_organization", {"orgId": org_id})
        keeper = carol if removed is alice else alice
        assert await list_members(client, org_id, keeper.headers) == [
            member(keeper, "super_admin")
        ], f"trial {trial}"
