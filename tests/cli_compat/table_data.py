"""Helpers of the PostgREST table tests: the CLI's headers and a small app to read.

Apps and channels are made through the public API; bundles are written to the database
(``tests.apps.helpers.add_bundle``), as the channel tests do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from tests.apps.helpers import add_bundle, create_app
from tests.conftest import Account

APP_ID = "com.alice.cli"
OTHER_APP_ID = "com.alice.other"
BOB_APP_ID = "com.bob.cli"
OBJECT = "application/vnd.pgrst.object+json"
ANON = "anon-key"


def sb(key: str, *, single: bool = False, **extra: str) -> dict[str, str]:
    """The headers supabase-js sends: the anon value, and the caller's key in ``capgkey``."""
    headers = {"apikey": ANON, "authorization": f"Bearer {ANON}", "capgkey": key, **extra}
    if single:
        headers["accept"] = OBJECT
    return headers


def not_one_row(count: int) -> dict[str, Any]:
    """The 406 body of an object request that found ``count`` rows."""
    return {
        "code": "PGRST116",
        "details": f"The result contains {count} rows",
        "hint": None,
        "message": "JSON object requested, multiple (or no) rows returned",
    }


async def post_channel(
    client: httpx.AsyncClient, owner: Account, app_id: str, name: str, **body: Any
) -> None:
    response = await client.post(
        "/channel", json={"app_id": app_id, "channel": name, **body}, headers=owner.headers
    )
    assert response.status_code == 200, response.text


async def channel_of(
    client: httpx.AsyncClient, owner: Account, app_id: str, name: str
) -> dict[str, Any]:
    """The channel as ``GET /channel`` shows it."""
    response = await client.get(
        "/channel", params={"app_id": app_id, "channel": name}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


@dataclass(frozen=True)
class Release:
    """Alice's app: bundles 1.0.0 and 1.0.1 live, 0.9.0 deleted; channels ``production``
    (1.0.0, rolling 1.0.1 out to 25.5 %), ``beta`` (1.0.1) and ``empty`` (no bundle)."""

    v100: int
    v101: int
    deleted: int
    unknown: int


async def make_release(app: FastAPI, client: httpx.AsyncClient, alice: Account) -> Release:
    await create_app(client, alice, APP_ID)
    v100 = await add_bundle(app, APP_ID, "1.0.0")
    v101 = await add_bundle(app, APP_ID, "1.0.1")
    deleted = await add_bundle(app, APP_ID, "0.9.0", deleted=True)
    await post_channel(
        client,
        alice,
        APP_ID,
        "production",
        version="1.0.0",
        rollout_version="1.0.1",
        rollout_percentage=25.5,
    )
    await post_channel(client, alice, APP_ID, "beta", version="1.0.1")
    await post_channel(client, alice, APP_ID, "empty")
    empty = await channel_of(client, alice, APP_ID, "empty")
    assert empty["version"]["name"] == "unknown"
    return Release(v100=v100, v101=v101, deleted=deleted, unknown=empty["version"]["id"])
