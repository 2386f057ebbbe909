"""Helpers shared by the ``/channel`` tests."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from capgo_server.models import Bundle, Channel
from tests.apps.helpers import rows
from tests.conftest import Account

APP_ID = "com.alice.app"
CHANNEL_FIELDS = {
    "id",
    "created_at",
    "name",
    "app_id",
    "created_by",
    "updated_at",
    "public",
    "allow_device_self_set",
    "allow_emulator",
    "allow_device",
    "allow_dev",
    "allow_prod",
    "version",
    "disableAutoUpdateUnderNative",
    "disableAutoUpdate",
    "disableAutoUpdateToMajor",
    "ios",
    "android",
    "electron",
    "rollout_version",
    "rollout_percentage",
}


def cannot_access(app_id: str) -> dict[str, Any]:
    return {
        "error": "cannot_access_app",
        "message": "You can't access this app",
        "moreInfo": {"app_id": app_id},
    }


async def post_channel(
    client: httpx.AsyncClient, headers: dict[str, str] | Account, **body: Any
) -> httpx.Response:
    if isinstance(headers, Account):
        headers = headers.headers
    body.setdefault("app_id", APP_ID)
    return await client.post("/channel", json=body, headers=headers)


async def save_channel(client: httpx.AsyncClient, owner: Account, **body: Any) -> dict[str, Any]:
    """``POST /channel`` that must succeed; its answer ``{status, id, public}``."""
    response = await post_channel(client, owner, **body)
    assert response.status_code == 200, response.text
    saved: dict[str, Any] = response.json()
    assert saved == {"status": "ok", "id": saved["id"], "public": saved["public"]}
    return saved


async def get_channel(
    client: httpx.AsyncClient, owner: Account, name: str, app_id: str = APP_ID
) -> dict[str, Any]:
    response = await client.get(
        "/channel", params={"app_id": app_id, "channel": name}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def bundle_id(app: FastAPI, name: str, app_id: str = APP_ID) -> int:
    (bundle,) = await rows(app, Bundle, app_id=app_id, name=name)
    found: int = bundle.id
    return found


async def public_by_platform(app: FastAPI, app_id: str = APP_ID) -> dict[str, list[str]]:
    """For each platform, the names of the app's public channels serving it."""
    channels = await rows(app, Channel, app_id=app_id, public=True)
    return {
        platform: sorted(c.name for c in channels if getattr(c, platform))
        for platform in ("ios", "android", "electron")
    }


async def public_names(app: FastAPI, app_id: str = APP_ID) -> list[str]:
    return sorted(c.name for c in await rows(app, Channel, app_id=app_id, public=True))
