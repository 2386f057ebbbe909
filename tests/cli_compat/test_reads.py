"""The PostgREST reads of the official CLI (plan §1.3, T1-T6 and T8-T10), over HTTP with the
exact queries of the recorded traces: status, body and ``Content-Range``; another tenant's app,
an unknown app and a key limited to another app read nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from capgo_server.models import App, Bundle
from tests.apps.helpers import create_app, key_of
from tests.cli_compat.table_data import (
    APP_ID,
    BOB_APP_ID,
    OTHER_APP_ID,
    Release,
    channel_of,
    make_release,
    not_one_row,
    post_channel,
    sb,
)
from tests.conftest import Account

JSON = "application/json; charset=utf-8"
T1 = "/rest/v1/apps?select=default_upload_channel&app_id=eq.{app}"
T2 = (
    "/rest/v1/channels?select=version:app_versions!channels_version_fkey(checksum)"
    "&name=eq.{ch}&app_id=eq.{app}"
)
T3 = (
    "/rest/v1/channels?select=disable_auto_update,version(id,name,min_update_version,"
    "native_packages)&name=eq.{ch}&app_id=eq.{app}"
)
T4 = (
    "/rest/v1/channels?select=version:app_versions!channels_version_fkey(native_packages)"
    "&name=eq.{ch}&app_id=eq.{app}"
)
T5 = (
    "/rest/v1/channels?select=id,public,version,rollout_version,rollout_enabled,"
    "rollout_percentage_bps&app_id=eq.{app}&name=eq.{ch}"
)
T5_835 = "/rest/v1/channels?select=id,public,version,rollout_version&app_id=eq.{app}&name=eq.{ch}"
T6 = "/rest/v1/channels?select=*&app_id=eq.{app}&name=eq.{ch}"
T8 = "/rest/v1/channels?select=id,name,version,rollout_version&app_id=eq.{app}"
T9 = (
    "/rest/v1/channels?select=id,version:app_versions!channels_version_fkey(id,name),"
    "rollout_version_info:app_versions!channels_rollout_version_fkey(id,name)"
    "&app_id=eq.{app}&name=eq.{ch}"
)
T10 = (
    "/rest/v1/channels?select=id&app_id=eq.{app}&name=neq.{ch}"
    "&or=(version.eq.{id},rollout_version.eq.{id})&limit=1"
)


async def read(
    client: httpx.AsyncClient, key: str, url: str, *, single: bool = False
) -> httpx.Response:
    return await client.get(url, headers=sb(key, single=single))


def array(response: httpx.Response, rows: list[dict[str, Any]]) -> None:
    """A 200 array answer with PostgREST's ``Content-Range``."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSON
    expected_range = f"0-{len(rows) - 1}/*" if rows else "*/*"
    assert response.headers["content-range"] == expected_range
    assert response.json() == rows


def single(response: httpx.Response, row: dict[str, Any]) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSON
    assert response.json() == row


def none_found(response: httpx.Response) -> None:
    assert response.status_code == 406, response.text
    assert response.json() == not_one_row(0)


@pytest.fixture
async def release(app: FastAPI, client: httpx.AsyncClient, alice: Account) -> Release:
    return await make_release(app, client, alice)


async def test_t1_default_upload_channel(
    release: Release, app: FastAPI, client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    url = T1.format(app=APP_ID)
    single(await read(client, alice.key, url, single=True), {"default_upload_channel": "dev"})
    async with app.state.sessionmaker() as session, session.begin():
        (await session.get_one(App, APP_ID)).default_upload_channel = "production"
    response = await read(client, alice.key, url, single=True)
    single(response, {"default_upload_channel": "production"})
    for key, app_id in ((bob.key, APP_ID), (alice.key, "com.nobody.here")):
        none_found(await read(client, key, T1.format(app=app_id), single=True))


async def test_t2_checksum_of_the_served_bundle(
    release: Release, client: httpx.AsyncClient, alice: Account
) -> None:
    url = T2.format(app=APP_ID, ch="production")
    single(await read(client, alice.key, url, single=True), {"version": {"checksum": "0" * 64}})
    # A channel serving the internal "unknown" has no bundle for the CLI.
    url = T2.format(app=APP_ID, ch="empty")
    single(await read(client, alice.key, url, single=True), {"version": None})
    url = T2.format(app=APP_ID, ch="missing")
    none_found(await read(client, alice.key, url, single=True))


async def test_t3_auto_update_and_bundle(
    release: Release, client: httpx.AsyncClient, alice: Account
) -> None:
    array(
        await read(client, alice.key, T3.format(app=APP_ID, ch="beta")),
        [
            {
                "disable_auto_update": "major",
                "version": {
                    "id": release.v101,
                    "name": "1.0.1",
                    "min_update_version": None,
                    "native_packages": None,
                },
            }
        ],
    )
    array(
        await read(client, alice.key, T3.format(app=APP_ID, ch="empty")),
        [{"disable_auto_update": "major", "version": None}],
    )
    array(await read(client, alice.key, T3.format(app=APP_ID, ch="missing")), [])


async def test_t4_native_packages_as_array_and_as_object(
    release: Release, app: FastAPI, client: httpx.AsyncClient, alice: Account
) -> None:
    async with app.state.sessionmaker() as session, session.begin():
        bundle = await session.get_one(Bundle, release.v101)
        bundle.native_packages = [{"name": "@capacitor/camera", "version": "6.0.0"}]
    url = T4.format(app=APP_ID, ch="beta")
    packages = {"native_packages": [{"name": "@capacitor/camera", "version": "6.0.0"}]}
    array(await read(client, alice.key, url), [{"version": packages}])
    # 8.35.0 sends the same query for one object.
    single(await read(client, alice.key, url, single=True), {"version": packages})
    url = T4.format(app=APP_ID, ch="empty")
    array(await read(client, alice.key, url), [{"version": None}])


async def test_t5_ids_and_rollout_in_both_versions(
    release: Release, client: httpx.AsyncClient, alice: Account
) -> None:
    production = await channel_of(client, alice, APP_ID, "production")
    empty = await channel_of(client, alice, APP_ID, "empty")
    link = {
        "id": production["id"],
        "public": False,
        "version": release.v100,
        "rollout_version": release.v101,
    }
    url = T5.format(app=APP_ID, ch="production")
    array(
        await read(client, alice.key, url),
        [{**link, "rollout_enabled": True, "rollout_percentage_bps": 2550}],
    )
    array(await read(client, alice.key, T5_835.format(app=APP_ID, ch="production")), [link])
    url = T5.format(app=APP_ID, ch="empty")
    array(
        await read(client, alice.key, url),
        [
            {
                "id": empty["id"],
                "public": False,
                "version": None,
                "rollout_version": None,
                "rollout_enabled": False,
                "rollout_percentage_bps": 0,
            }
        ],
    )


async def test_t5_a_rollout_at_zero_percent_is_not_enabled(
    release: Release, client: httpx.AsyncClient, alice: Account
) -> None:
    await post_channel(client, alice, APP_ID, "production", rollout_percentage=0)
    (row,) = (await read(client, alice.key, T5.format(app=APP_ID, ch="production"))).json()
    assert (row["rollout_version"], row["rollout_enabled"], row["rollout_percentage_bps"]) == (
        release.v101,
        False,
        0,
    )


async def test_t6_the_whole_row(
    release: Release, client: httpx.AsyncClient, alice: Account
) -> None:
    await post_channel(client, alice, APP_ID, "beta", public=True, disableAutoUpdate="minor")
    beta = await channel_of(client, alice, APP_ID, "beta")
    response = await read(client, alice.key, T6.format(app=APP_ID, ch="beta"), single=True)
    single(
        response,
        {
            "id": beta["id"],
            "created_at": beta["created_at"],
            "name": "beta",
            "app_id": APP_ID,
            "version": release.v101,
            "created_by": alice.user_id,
            "updated_at": beta["updated_at"],
            "public": True,
            "disable_auto_update_under_native": True,
            "disable_auto_update": "minor",
            "ios": True,
            "android": True,
            "electron": True,
            "allow_device_self_set": False,
            "allow_emulator": True,
            "allow_device": True,
            "allow_dev": True,
            "allow_prod": True,
            "owner_org": alice.org_id,
            "rollout_version": None,
            "rollout_enabled": False,
            "rollout_percentage_bps": 0,
        },
    )
    row = (await read(client, alice.key, T6.format(app=APP_ID, ch="empty"), single=True)).json()
    assert row["version"] is None
    none_found(await read(client, alice.key, T6.format(app=APP_ID, ch="gone"), single=True))


async def test_t8_every_channel_of_the_app(
    release: Release, client: httpx.AsyncClient, alice: Account
) -> None:
    ids = {n: (await channel_of(client, alice, APP_ID, n))["id"] for n in ("production", "beta")}
    empty = (await channel_of(client, alice, APP_ID, "empty"))["id"]
    array(
        await read(client, alice.key, T8.format(app=APP_ID)),
        [
            {
                "id": ids["production"],
                "name": "production",
                "version": release.v100,
                "rollout_version": release.v101,
            },
            {"id": ids["beta"], "name": "beta", "version": release.v101, "rollout_version": None},
            {"id": empty, "name": "empty", "version": None, "rollout_version": None},
        ],
    )


async def test_t9_the_bundles_of_a_channel(
    release: Release, client: httpx.AsyncClient, alice: Account
) -> None:
    production = (await channel_of(client, alice, APP_ID, "production"))["id"]
    array(
        await read(client, alice.key, T9.format(app=APP_ID, ch="production")),
        [
            {
                "id": production,
                "version": {"id": release.v100, "name": "1.0.0"},
                "rollout_version_info": {"id": release.v101, "name": "1.0.1"},
            }
        ],
    )
    empty = (await channel_of(client, alice, APP_ID, "empty"))["id"]
    array(
        await read(client, alice.key, T9.format(app=APP_ID, ch="empty")),
        [{"id": empty, "version": None, "rollout_version_info": None}],
    )


async def test_t10_another_channel_using_a_bundle(
    release: Release, client: httpx.AsyncClient, alice: Account
) -> None:
    ids = {n: (await channel_of(client, alice, APP_ID, n))["id"] for n in ("production", "beta")}
    # 1.0.1 is beta's bundle and production's rollout: the other channel is found, one at most.
    url = T10.format(app=APP_ID, ch="beta", id=release.v101)
    array(await read(client, alice.key, url), [{"id": ids["production"]}])
    url = T10.format(app=APP_ID, ch="production", id=release.v101)
    array(await read(client, alice.key, url), [{"id": ids["beta"]}])
    url = T10.format(app=APP_ID, ch="beta", id=release.v100)
    array(await read(client, alice.key, url), [{"id": ids["production"]}])
    url = T10.format(app=APP_ID, ch="production", id=release.v100)
    array(await read(client, alice.key, url), [])
    # Two channels on 1.0.0 now: limit=1 still answers one.
    await post_channel(client, alice, APP_ID, "beta", version="1.0.0")
    url = T10.format(app=APP_ID, ch="empty", id=release.v100)
    array(await read(client, alice.key, url), [{"id": ids["production"]}])
    # The internal bundle is shown as null, so no channel "uses" it.
    url = T10.format(app=APP_ID, ch="production", id=release.unknown)
    array(await read(client, alice.key, url), [])


def every_read(app_id: str) -> list[tuple[str, bool]]:
    """Each shape's URL for ``app_id`` and whether the CLI asks it for one object."""
    return [
        (T1.format(app=app_id), True),
        (T2.format(app=app_id, ch="production"), True),
        (T3.format(app=app_id, ch="production"), False),
        (T4.format(app=app_id, ch="production"), False),
        (T4.format(app=app_id, ch="production"), True),
        (T5.format(app=app_id, ch="production"), False),
        (T5_835.format(app=app_id, ch="production"), False),
        (T6.format(app=app_id, ch="production"), True),
        (T8.format(app=app_id), False),
        (T9.format(app=app_id, ch="production"), False),
        (T10.format(app=app_id, ch="beta", id=1), False),
    ]


async def assert_reads_nothing(client: httpx.AsyncClient, key: str, app_id: str) -> None:
    for url, one in every_read(app_id):
        response = await read(client, key, url, single=one)
        if one:
            none_found(response)
        else:
            array(response, [])


async def test_another_tenant_reads_nothing(
    release: Release, client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    await create_app(client, bob, BOB_APP_ID)
    await assert_reads_nothing(client, bob.key, APP_ID)
    # An unknown app answers exactly as a foreign one.
    await assert_reads_nothing(client, bob.key, "com.nobody.here")
    await assert_reads_nothing(client, alice.key, BOB_APP_ID)


async def test_a_key_limited_to_another_app_reads_nothing(
    release: Release, client: httpx.AsyncClient, alice: Account
) -> None:
    await create_app(client, alice, OTHER_APP_ID)
    limited = await key_of(client, alice, mode="all", limited_to_apps=[OTHER_APP_ID])
    await assert_reads_nothing(client, limited["authorization"], APP_ID)


@pytest.mark.parametrize("mode", ["read", "upload", "write"])
async def test_any_key_mode_reads(
    mode: str, release: Release, client: httpx.AsyncClient, alice: Account
) -> None:
    key = (await key_of(client, alice, mode=mode))["authorization"]
    response = await read(client, key, T8.format(app=APP_ID))
    assert [row["name"] for row in response.json()] == ["production", "beta", "empty"]
    response = await read(client, key, T1.format(app=APP_ID), single=True)
    single(response, {"default_upload_channel": "dev"})


async def test_the_key_comes_from_capgkey_only(
    release: Release, client: httpx.AsyncClient, alice: Account
) -> None:
    response = await client.get(
        T8.format(app=APP_ID), headers={"authorization": alice.key, "apikey": alice.key}
    )
    assert response.status_code == 401, response.text
    assert set(response.json()) == {"code", "message", "details", "hint"}
