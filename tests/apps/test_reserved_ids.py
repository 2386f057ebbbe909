"""A deleted app id stays reserved for the organization that owned it (House decisions).

Devices in the field keep calling ``/updates`` with the id of a deleted app; an organization
that could take the id would serve its bundles to the first tenant's devices. The owning
organization may create it again; every other organization gets exactly the answer for an id a
live app holds; ``capgo-server release-app-id`` frees it on purpose.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from capgo_server.models import App
from tests.apps.helpers import create_app, create_org, key_of, rows
from tests.conftest import Account, make_account
from tests.members.helpers import add_member
from tests.plugin.updates_support import ask, not_registered
from tests.test_cli import cli_env, describe, error_line
from tests.warm_cli import run_cli_warm

APP_ID = "com.alice.reserved"


def id_taken(app_id: str) -> dict[str, object]:
    """POST /app's answer for an id a live app, or a reservation, of another tenant holds."""
    return {
        "error": "cannot_create_app",
        "message": f"The app id {app_id} is already taken on this server (by an app, or kept "
        "for the organization of a deleted app): choose another app id",
        "moreInfo": {},
    }


ID_TAKEN = id_taken(APP_ID)


async def post_app(
    client: httpx.AsyncClient, owner: Account, app_id: str, org_id: str | None = None
) -> httpx.Response:
    body = {"app_id": app_id, "name": "Mine", "owner_org": org_id or owner.org_id}
    return await client.post("/app", json=body, headers=owner.headers)


async def delete_app(client: httpx.AsyncClient, owner: Account, app_id: str = APP_ID) -> None:
    response = await client.delete(f"/app/{app_id}", headers=owner.headers)
    assert response.status_code == 200, response.text


async def assert_refused_as_taken(
    client: httpx.AsyncClient, app: FastAPI, caller: Account, org_id: str | None = None
) -> None:
    response = await post_app(client, caller, APP_ID, org_id)
    assert response.status_code == 400, response.text
    assert response.json() == ID_TAKEN
    assert [a.app_id for a in await rows(app, App, app_id=APP_ID)] == []


def release(database_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = cli_env(tmp_path / "unused-data", CAPGO_DATABASE_URL=database_url)
    return run_cli_warm("release-app-id", *args, env=env, cwd=tmp_path)


def printed_object(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The one JSON object a successful command prints (asserting the CLI contract)."""
    assert result.returncode == 0, describe(result)
    assert result.stderr == "", describe(result)
    assert len(result.stdout.splitlines()) == 1, describe(result)
    printed: dict[str, Any] = json.loads(result.stdout)
    return printed


class TestAnotherOrganization:
    async def test_deleted_id_is_refused_exactly_as_a_live_one(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        live = await post_app(client, bob, APP_ID)
        await delete_app(client, alice)
        reserved = await post_app(client, bob, APP_ID)
        assert (reserved.status_code, reserved.json()) == (live.status_code, live.json())
        await assert_refused_as_taken(client, app, bob)

    async def test_a_second_org_of_the_same_user_is_another_organization(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        # Reserved for the organization, not for whoever created the app.
        other_org = await create_org(client, alice, "Alice Second")
        await create_app(client, alice, APP_ID)
        await delete_app(client, alice)
        await assert_refused_as_taken(client, app, alice, other_org)


class TestOwningOrganization:
    async def test_recreates_the_deleted_id(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await delete_app(client, alice)
        again = await create_app(client, alice, APP_ID, name="Back")
        assert (again["owner_org"], again["name"]) == (alice.org_id, "Back")
        # ...and it stays reserved after the second deletion too.
        await delete_app(client, alice)
        response = await post_app(client, bob, APP_ID)
        assert (response.status_code, response.json()) == (400, ID_TAKEN)

    async def test_an_admin_member_with_a_write_key_recreates_it(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await delete_app(client, alice)
        admin = await add_member(client, app, alice, "admin@example.com", "admin")
        headers = await key_of(client, admin, mode="write", limited_to_orgs=[alice.org_id])
        body = {"app_id": APP_ID, "name": "Admin's", "owner_org": alice.org_id}
        response = await client.post("/app", json=body, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["user_id"] == admin.user_id

    async def test_members_who_may_not_create_apps_still_may_not(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await delete_app(client, alice)
        writer = await add_member(client, app, alice, "writer@example.com", "write")
        response = await post_app(client, writer, APP_ID, alice.org_id)
        assert response.status_code == 403
        assert response.json()["error"] == "cannot_access_organization"

    async def test_delete_and_recreate_at_once_keep_the_reservation(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        deleted, created = await asyncio.gather(
            client.delete(f"/app/{APP_ID}", headers=alice.headers), post_app(client, alice, APP_ID)
        )
        assert deleted.status_code == 200, deleted.text
        # Either order is fine; the id never leaves the organization.
        assert created.status_code in (200, 400), created.text
        if created.status_code == 200:
            await delete_app(client, alice)
        await assert_refused_as_taken(client, app, bob)


class TestDeletedOrganization:
    async def test_the_id_outlives_its_organization(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
    ) -> None:
        doomed = await create_org(client, alice, "Short Lived")
        await create_app(client, alice, APP_ID, org_id=doomed)
        response = await client.delete(f"/organization?orgId={doomed}", headers=alice.headers)
        assert response.status_code == 200, response.text
        assert await rows(app, App) == []
        # Nobody may take it until an operator releases it: not another tenant, not the
        # former members in their other organizations.
        await assert_refused_as_taken(client, app, bob)
        await assert_refused_as_taken(client, app, alice)


class TestConcurrentCreation:
    async def test_two_tenants_creating_a_free_id_at_once_get_one_app(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
    ) -> None:
        carol = await make_account(app, "carol@example.com", "Carol Org")
        answers = await asyncio.gather(*(post_app(client, who, APP_ID) for who in (bob, carol)))
        assert sorted(a.status_code for a in answers) == [200, 400], [a.text for a in answers]
        winner, loser = (bob, carol) if answers[0].status_code == 200 else (carol, bob)
        assert [a.json() for a in answers if a.status_code == 400] == [ID_TAKEN]
        assert [a.app_id for a in await rows(app, App, owner_org=winner.org_id)] == [APP_ID]
        # The id is the winner's: the loser is still refused once the winner deletes it.
        await delete_app(client, winner)
        await assert_refused_as_taken(client, app, loser)


class TestDevices:
    async def test_updates_for_a_reserved_id_answer_as_for_an_unknown_app(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await delete_app(client, alice)
        unknown = await ask(client, app_id="com.nobody.here")
        reserved = await ask(client, app_id=APP_ID)
        assert (unknown.status_code, unknown.json()) == (429, not_registered("com.nobody.here"))
        assert (reserved.status_code, reserved.json()) == (429, not_registered(APP_ID))


class TestReleaseCommand:
    async def test_release_lets_another_org_create_the_id(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        alice: Account,
        bob: Account,
        database_url: str,
        tmp_path: Path,
    ) -> None:
        await create_app(client, alice, APP_ID)
        await delete_app(client, alice)
        await assert_refused_as_taken(client, app, bob)

        released = printed_object(release(database_url, tmp_path, APP_ID))
        assert released == {"app_id": APP_ID, "org_id": alice.org_id}

        created = await create_app(client, bob, APP_ID)
        assert created["owner_org"] == bob.org_id
        # Now Bob's: Alice is the other organization.
        await delete_app(client, bob)
        await assert_refused_as_taken(client, app, alice)

    async def test_release_after_the_org_is_deleted(
        self,
        client: httpx.AsyncClient,
        alice: Account,
        bob: Account,
        database_url: str,
        tmp_path: Path,
    ) -> None:
        doomed = await create_org(client, alice, "Short Lived")
        await create_app(client, alice, APP_ID, org_id=doomed)
        response = await client.delete(f"/organization?orgId={doomed}", headers=alice.headers)
        assert response.status_code == 200, response.text
        released = printed_object(release(database_url, tmp_path, APP_ID))
        assert released == {"app_id": APP_ID, "org_id": doomed}
        assert (await create_app(client, bob, APP_ID))["owner_org"] == bob.org_id

    async def test_a_live_app_keeps_its_id(
        self,
        client: httpx.AsyncClient,
        alice: Account,
        bob: Account,
        database_url: str,
        tmp_path: Path,
    ) -> None:
        await create_app(client, alice, APP_ID)
        line = error_line(release(database_url, tmp_path, APP_ID))
        assert APP_ID in line
        assert "delete the app first" in line
        await delete_app(client, alice)
        response = await post_app(client, bob, APP_ID)
        assert (response.status_code, response.json()) == (400, ID_TAKEN)

    @pytest.mark.parametrize(
        ("app_id", "expected"),
        [("com.never.used", "is not reserved"), ("not an id", "not an app id")],
    )
    async def test_refusals_are_one_line(
        self,
        client: httpx.AsyncClient,
        database_url: str,
        tmp_path: Path,
        app_id: str,
        expected: str,
    ) -> None:
        line = error_line(release(database_url, tmp_path, app_id))
        assert expected in line

    def test_an_unmigrated_database_is_one_line(self, tmp_path: Path) -> None:
        env = cli_env(tmp_path / "data")
        line = error_line(run_cli_warm("release-app-id", APP_ID, env=env, cwd=tmp_path))
        assert "not migrated" in line
