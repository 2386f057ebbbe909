"""A user who left an organization (or was removed) keeps managing their own keys limited to
it, but writes nothing into that organization's audit trail any more.

House decision: a key is its owner's, so renaming, changing or deleting it stays allowed (the
owner can clean up a key the removal made useless); its audit entries go only to the trails of
organizations the owner still belongs to, or, when none is left, to the owner's own record
(``org_id`` null, as for unlimited keys), never to an organization they no longer belong to.
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from tests.conftest import Account, in_days, make_key
from tests.members.helpers import MEMBERS, add_member


async def key_entries(
    client: httpx.AsyncClient, viewer: Account, org_id: str, key_id: int
) -> list[dict[str, Any]]:
    """The audit entries about one key in an org's trail, newest first."""
    response = await client.get(
        "/organization/audit",
        params={"orgId": org_id, "tableName": "apikeys"},
        headers=viewer.headers,
    )
    assert response.status_code == 200, response.text
    return [e for e in response.json()["data"] if e["record_id"] == str(key_id)]


async def leave(client: httpx.AsyncClient, account: Account, org_id: str) -> None:
    response = await client.request(
        "DELETE", MEMBERS, json={"orgId": org_id, "email": account.email}, headers=account.headers
    )
    assert response.status_code == 200, response.text


class TestKeysOfFormerMembers:
    async def test_changes_and_deletion_stay_out_of_the_orgs_trail(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await add_member(client, app, alice, "carol@example.com", "write")
        key = await make_key(
            client, carol, name="ci", limited_to_orgs=[alice.org_id], expires_at=in_days(10)
        )
        assert [
            e["operation"] for e in await key_entries(client, alice, alice.org_id, key["id"])
        ] == ["INSERT"]
        await leave(client, carol, alice.org_id)

        renamed = await client.put(
            f"/apikey/{key['id']}", json={"name": "renamed", "mode": "read"}, headers=carol.headers
        )
        assert renamed.status_code == 200, renamed.text
        assert (renamed.json()["name"], renamed.json()["mode"]) == ("renamed", "read")
        extended = await client.put(
            f"/apikey/{key['id']}", json={"expires_at": in_days(20)}, headers=carol.headers
        )
        assert extended.status_code == 200, extended.text
        deleted = await client.delete(f"/apikey/{key['id']}", headers=carol.headers)
        assert deleted.status_code == 200, deleted.text
        assert deleted.json() == {"success": True, "status": "ok"}

        entries = await key_entries(client, alice, alice.org_id, key["id"])
        assert [(e["operation"], e["user_id"]) for e in entries] == [("INSERT", carol.user_id)]

    async def test_orgs_still_belonged_to_keep_recording(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        carol = await add_member(client, app, alice, "carol@example.com", "write")
        key = await make_key(
            client, carol, name="both", limited_to_orgs=[carol.org_id, alice.org_id]
        )
        removed = await client.request(
            "DELETE",
            MEMBERS,
            json={"orgId": alice.org_id, "email": carol.email},
            headers=alice.headers,
        )
        assert removed.status_code == 200, removed.text

        renamed = await client.put(
            f"/apikey/{key['id']}", json={"name": "renamed"}, headers=carol.headers
        )
        assert renamed.status_code == 200, renamed.text

        own = await key_entries(client, carol, carol.org_id, key["id"])
        assert [(e["operation"], e["changed_fields"]) for e in own] == [
            ("UPDATE", ["name"]),
            ("INSERT", None),
        ]
        theirs = await key_entries(client, alice, alice.org_id, key["id"])
        assert [e["operation"] for e in theirs] == ["INSERT"]
