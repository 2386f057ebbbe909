"""Capgo's per-test app seed (spec §4.4), built through the public API, for the device tests."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from capgo_server.models import Channel
from tests.apps.helpers import create_app, rows
from tests.bundles.helpers import create_bundle
from tests.conftest import Account

APP_ID = "com.demo.app"
DEVICE = "00009a6b-eefe-490a-9c60-8e965132ae51"
BUNDLES = ("1.0.0", "1.0.1", "1.361.0", "1.360.0", "1.359.0")
PLATFORMS_OFF = {"ios": False, "android": False, "electron": False}
#: name → (bundle, flags) of the seed's channels, in creation (id) order.
CHANNELS: dict[str, tuple[str, dict[str, Any]]] = {
    "production": ("1.0.0", {"public": True, "ios": False, "android": True, "electron": True}),
    "beta": ("1.361.0", {"public": False, "ios": True, "android": True, "electron": True}),
    "development": ("1.359.0", {"public": True, **PLATFORMS_OFF, "ios": True}),
    "no_access": ("1.361.0", {"public": False, **PLATFORMS_OFF}),
    "electron_only": ("1.360.0", {"public": False, **PLATFORMS_OFF, "electron": True}),
}


async def seed_app(client: httpx.AsyncClient, owner: Account, app_id: str = APP_ID) -> None:
    """The app, its bundles and its five channels (self-assignment allowed everywhere)."""
    await create_app(client, owner, app_id, name="Demo")
    for name in BUNDLES:
        await create_bundle(client, owner, name, app_id)
    for name, (bundle, flags) in CHANNELS.items():
        await save_channel(client, owner, app_id, name, version=bundle, **flags)


async def save_channel(
    client: httpx.AsyncClient, owner: Account, app_id: str, name: str, **fields: Any
) -> None:
    body = {
        "app_id": app_id,
        "channel": name,
        "disableAutoUpdate": "major",
        "disableAutoUpdateUnderNative": True,
        "allow_device_self_set": True,
        "allow_emulator": True,
        "allow_device": True,
        "allow_dev": True,
        "allow_prod": True,
        **fields,
    }
    response = await client.post("/channel", json=body, headers=owner.headers)
    assert response.status_code == 200, response.text


def base_data(app_id: str = APP_ID, **fields: Any) -> dict[str, Any]:
    """Capgo's ``getBaseData``: what a plugin 7.0.0 on Android sends."""
    return {
        "channel": "production",
        "platform": "android",
        "device_id": DEVICE,
        "app_id": app_id,
        "custom_id": "",
        "version_build": "1.0.0",
        "version_code": "1",
        "version_os": "13",
        "version_name": "1.0.0",
        "plugin_version": "7.0.0",
        "is_emulator": False,
        "is_prod": True,
        **fields,
    }


async def channel_ids(app: FastAPI, app_id: str = APP_ID) -> dict[str, int]:
    return {c.name: c.id for c in await rows(app, Channel, app_id=app_id)}
