"""T7: the channel PATCH of ``bundle upload --self-assign`` (plan §1.3, §4.4), over HTTP.

Only ``version`` (a live bundle of the same app) and ``allow_device_self_set`` change; the
identity columns must be the row's own; the write needs a write/all key with write access."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from capgo_server.models import AuditLog, Bundle, Channel, DeployHistory
from tests.apps.helpers import add_bundle, create_app, key_of, rows
from tests.cli_compat.table_data import (
    APP_ID,
    BOB_APP_ID,
    OTHER_APP_ID,
    Release,
    channel_of,
    make_release,
    sb,
)
from tests.conftest import Account
from tests.plugin.updates_support import APP_ID as UPDATES_APP
from tests.plugin.updates_support import answer, offered, refused, seed

T7 = "/rest/v1/channels?app_id=eq.{app}&name=eq.{ch}&select=*"
REPRESENTATION = {"prefer": "return=representation"}


async def patch(
    client: httpx.AsyncClient, key: str, body: Any, app_id: str = APP_ID, name: str = "beta"
) -> httpx.Response:
    return await client.patch(
        T7.format(app=app_id, ch=name), json=body, headers=sb(key, single=True, **REPRESENTATION)
    )


def cli_body(owner: Account, version: int, app_id: str = APP_ID, name: str = "beta") -> Any:
    """What the CLI sends: the channel's identity, the bundle id, self-assign on."""
    return {
        "name": name,
        "app_id": app_id,
        "created_by": owner.user_id,
        "version": version,
        "owner_org": owner.org_id,
        "allow_device_self_set": True,
    }


def denied(what: str) -> dict[str, Any]:
    return {"code": "42501", "message": f"permission denied: {what}", "details": None, "hint": None}


NO_WRITE = denied("this key may not change the channels of this app")
NOT_SERVABLE = denied("version must be a live bundle of this channel's app")
NO_NEW = refused("no_new_version_available", "No new version available", "up_to_date")


@pytest.fixture
async def release(app: FastAPI, client: httpx.AsyncClient, alice: Account) -> Release:
    return await make_release(app, client, alice)


async def unchanged(client: httpx.AsyncClient, owner: Account, before: dict[str, Any]) -> None:
    assert await channel_of(client, owner, APP_ID, "beta") == before


async def test_self_assign_sets_the_bundle_and_the_flag(
    release: Release, app: FastAPI, client: httpx.AsyncClient, alice: Account
) -> None:
    beta = await channel_of(client, alice, APP_ID, "beta")
    response = await patch(client, alice.key, cli_body(alice, release.v100))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    row = response.json()
    after = await channel_of(client, alice, APP_ID, "beta")
    assert after["version"] == {"id": release.v100, "name": "1.0.0"}
    assert after["allow_device_self_set"] is True
    # The reply is the row as T6 shows it.
    assert row == {
        "id": beta["id"],
        "created_at": beta["created_at"],
        "name": "beta",
        "app_id": APP_ID,
        "version": release.v100,
        "created_by": alice.user_id,
        "updated_at": after["updated_at"],
        "public": False,
        "disable_auto_update_under_native": True,
        "disable_auto_update": "major",
        "ios": True,
        "android": True,
        "electron": True,
        "allow_device_self_set": True,
        "allow_emulator": True,
        "allow_device": True,
        "allow_dev": True,
        "allow_prod": True,
        "owner_org": alice.org_id,
        "rollout_version": None,
        "rollout_enabled": False,
        "rollout_percentage_bps": 0,
    }
    # As through POST /channel: a deploy-history entry and an audit entry.
    deploys = await rows(app, DeployHistory, channel_id=beta["id"])
    assert [d.version_id for d in deploys] == [release.v101, release.v100]
    assert deploys[-1].created_by == alice.user_id
    async with app.state.sessionmaker() as session:
        audits = (
            await session.scalars(
                select(AuditLog)
                .where(AuditLog.table_name == "channels", AuditLog.record_id == str(beta["id"]))
                .order_by(AuditLog.id)
            )
        ).all()
    assert audits[-1].operation == "UPDATE"
    assert audits[-1].changed_fields == ["allow_device_self_set", "version"]
    assert audits[-1].user_id == alice.user_id


async def test_the_same_bundle_again_records_nothing(
    release: Release, app: FastAPI, client: httpx.AsyncClient, alice: Account
) -> None:
    beta = await channel_of(client, alice, APP_ID, "beta")
    body = {**cli_body(alice, release.v101), "allow_device_self_set": False}
    response = await patch(client, alice.key, body)
    assert response.status_code == 200, response.text
    assert response.json()["version"] == release.v101
    assert response.json()["updated_at"] == beta["updated_at"]
    assert len(await rows(app, DeployHistory, channel_id=beta["id"])) == 1


async def test_created_by_is_ignored(
    release: Release, app: FastAPI, client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    body = {**cli_body(alice, release.v100), "created_by": bob.user_id}
    response = await patch(client, alice.key, body)
    assert response.status_code == 200, response.text
    assert response.json()["created_by"] == alice.user_id
    (channel,) = await rows(app, Channel, app_id=APP_ID, name="beta")
    assert channel.created_by == alice.user_id


@pytest.mark.parametrize("mode", ["read", "upload"])
async def test_a_key_without_write_mode_is_refused(
    mode: str, release: Release, client: httpx.AsyncClient, alice: Account
) -> None:
    before = await channel_of(client, alice, APP_ID, "beta")
    key = (await key_of(client, alice, mode=mode))["authorization"]
    response = await patch(client, key, cli_body(alice, release.v100))
    assert response.status_code == 403, response.text
    assert response.json() == NO_WRITE
    await unchanged(client, alice, before)


async def test_write_key_may(release: Release, client: httpx.AsyncClient, alice: Account) -> None:
    key = (await key_of(client, alice, mode="write"))["authorization"]
    response = await patch(client, key, cli_body(alice, release.v100))
    assert response.status_code == 200, response.text
    assert response.json()["version"] == release.v100


async def test_another_tenant_and_an_unknown_app_are_refused_alike(
    release: Release, app: FastAPI, client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    before = await channel_of(client, alice, APP_ID, "beta")
    await create_app(client, bob, BOB_APP_ID)
    bob_bundle = await add_bundle(app, BOB_APP_ID, "2.0.0")
    for app_id in (APP_ID, "com.nobody.here"):
        response = await patch(client, bob.key, cli_body(bob, bob_bundle, app_id), app_id)
        assert response.status_code == 403, response.text
        assert response.json() == NO_WRITE
    await unchanged(client, alice, before)


async def test_a_key_limited_to_another_app_is_refused(
    release: Release, client: httpx.AsyncClient, alice: Account
) -> None:
    await create_app(client, alice, OTHER_APP_ID)
    key = (await key_of(client, alice, mode="all", limited_to_apps=[OTHER_APP_ID]))["authorization"]
    response = await patch(client, key, cli_body(alice, release.v100))
    assert (response.status_code, response.json()) == (403, NO_WRITE)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("owner_org", "8c0e7a3e-2b1f-4d3a-9a51-6f0f2f1c9b77"),
        ("name", "production"),
        ("app_id", OTHER_APP_ID),
    ],
)
async def test_a_forged_identity_column_is_refused(
    column: str, value: str, release: Release, client: httpx.AsyncClient, alice: Account
) -> None:
    before = await channel_of(client, alice, APP_ID, "beta")
    body = {**cli_body(alice, release.v100), column: value}
    response = await patch(client, alice.key, body)
    assert response.status_code == 403, response.text
    assert response.json() == denied(f"{column} must be the channel's own")
    await unchanged(client, alice, before)


async def test_bob_org_as_owner_org_is_refused(
    release: Release, client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    before = await channel_of(client, alice, APP_ID, "beta")
    body = {**cli_body(alice, release.v100), "owner_org": bob.org_id}
    response = await patch(client, alice.key, body)
    assert (response.status_code, response.json()) == (
        403,
        denied("owner_org must be the channel's own"),
    )
    await unchanged(client, alice, before)


async def test_an_unservable_version_is_refused(
    release: Release, app: FastAPI, client: httpx.AsyncClient, alice: Account
) -> None:
    """Another app's bundle (even the caller's own), a deleted one, an internal one, an
    unknown id or null all get the same refusal."""
    await create_app(client, alice, OTHER_APP_ID)
    other_app_bundle = await add_bundle(app, OTHER_APP_ID, "1.0.0")
    before = await channel_of(client, alice, APP_ID, "beta")
    for version in (other_app_bundle, release.deleted, release.unknown, 999_999, None):
        response = await patch(client, alice.key, cli_body(alice, version))  # type: ignore[arg-type]
        assert response.status_code == 403, (version, response.text)
        assert response.json() == NOT_SERVABLE
    await unchanged(client, alice, before)


@pytest.mark.parametrize("version", ["abc", 1.5, True, 2**70, -3])
async def test_a_version_that_is_no_id(
    version: Any, release: Release, client: httpx.AsyncClient, alice: Account
) -> None:
    response = await patch(client, alice.key, cli_body(alice, version))
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "22P02"


async def test_allow_device_self_set_must_be_a_boolean(
    release: Release, client: httpx.AsyncClient, alice: Account
) -> None:
    body = {**cli_body(alice, release.v100), "allow_device_self_set": "yes"}
    response = await patch(client, alice.key, body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "22P02"


async def test_other_columns_are_not_written(
    release: Release, client: httpx.AsyncClient, alice: Account
) -> None:
    before = await channel_of(client, alice, APP_ID, "beta")
    body = {**cli_body(alice, release.v100), "public": True}
    response = await patch(client, alice.key, body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "PGRST100"
    await unchanged(client, alice, before)
    response = await patch(client, alice.key, [cli_body(alice, release.v100)])
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "PGRST102"


async def test_no_such_channel_is_404(
    release: Release, client: httpx.AsyncClient, alice: Account
) -> None:
    body = cli_body(alice, release.v100, name="nightly")
    response = await patch(client, alice.key, body, name="nightly")
    assert response.status_code == 404, response.text
    assert response.json() == {
        "code": "PGRST116",
        "message": "no row matches: the app has no channel of that name",
        "details": None,
        "hint": None,
    }


async def test_devices_get_the_new_bundle_at_once(
    app: FastAPI, client: httpx.AsyncClient, alice: Account
) -> None:
    """The write reaches ``/updates``, which answers from the worker's cache."""
    await seed(client, alice)
    assert await answer(client, version_name="1.0.0") == NO_NEW  # cached now
    async with app.state.sessionmaker() as session:
        new_bundle = await session.scalar(
            select(Bundle.id).where(Bundle.app_id == UPDATES_APP, Bundle.name == "1.361.0")
        )
    assert new_bundle is not None
    body = cli_body(alice, new_bundle, app_id=UPDATES_APP, name="production")
    response = await patch(client, alice.key, body, UPDATES_APP, "production")
    assert response.status_code == 200, response.text
    assert await answer(client, version_name="1.0.0") == offered("1.361.0")
