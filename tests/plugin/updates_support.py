"""The seed of spec §4.4 built through the API, and helpers of the ``/updates`` tests."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from capgo_server.models import (
    Bundle,
    Device,
)
from tests.conftest import Account

APP_ID = "com.demo.updates"
DEVICE = "00009a6b-eefe-490a-9c60-8e965132ae51"
CHECKSUMS = {
    "1.0.0": "3885ee49",
    "1.361.0": "9d4f798a",
    "1.360.0": "44913a9f",
    "1.359.0": "9f74e70a",
}
SEED_FLAGS = {
    "disableAutoUpdate": "major",
    "disableAutoUpdateUnderNative": True,
    "allow_device_self_set": True,
    "allow_emulator": True,
    "allow_device": True,
    "allow_dev": True,
    "allow_prod": True,
}
SEED_CHANNELS: dict[str, dict[str, Any]] = {
    "production": {"version": "1.0.0", "public": True, "ios": False, "android": True},
    "beta": {"version": "1.361.0", "public": False, "ios": True, "android": True},
    "development": {
        "version": "1.359.0",
        "public": True,
        "ios": True,
        "android": False,
        "electron": False,
    },
    "no_access": {
        "version": "1.361.0",
        "public": False,
        "ios": False,
        "android": False,
        "electron": False,
    },
    "electron_only": {"version": "1.360.0", "public": False, "ios": False, "android": False},
}


def url_of(version: str) -> str:
    return f"https://cdn.example.com/{version}.zip"


def offered(version: str, **more: Any) -> dict[str, Any]:
    """The success body for a seed bundle (external URL, no session key)."""
    return {
        "version": version,
        "url": url_of(version),
        "session_key": "",
        "checksum": CHECKSUMS[version],
        **more,
    }


def refused(code: str, message: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "message": message, "kind": kind, **extra}


def base(**changes: Any) -> dict[str, Any]:
    """The plugin's body of Capgo's tests (``getBaseData``)."""
    body = {
        "channel": "production",
        "platform": "android",
        "device_id": DEVICE,
        "app_id": APP_ID,
        "custom_id": "",
        "version_build": "1.0.0",
        "version_code": "1",
        "version_os": "13",
        "version_name": "1.0.0",
        "plugin_version": "7.0.0",
        "is_emulator": False,
        "is_prod": True,
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


async def set_channel(client: httpx.AsyncClient, owner: Account, name: str, **fields: Any) -> None:
    response = await client.post(
        "/channel", json={"app_id": APP_ID, "channel": name, **fields}, headers=owner.headers
    )
    assert response.status_code == 200, response.text


async def override(client: httpx.AsyncClient, owner: Account, channel: str) -> None:
    response = await client.post(
        "/device",
        json={"app_id": APP_ID, "device_id": DEVICE, "channel": channel},
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text


async def seed(client: httpx.AsyncClient, owner: Account) -> None:
    """Spec §4.4's app seed, through the public API."""
    response = await client.post(
        "/app",
        json={"app_id": APP_ID, "name": "Demo", "owner_org": owner.org_id},
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text
    for version, checksum in CHECKSUMS.items():
        body = {
            "app_id": APP_ID,
            "version": version,
            "external_url": url_of(version),
            "checksum": checksum,
        }
        response = await client.post("/bundle", json=body, headers=owner.headers)
        assert response.status_code == 200, response.text
    for name, flags in SEED_CHANNELS.items():
        await set_channel(client, owner, name, **{"electron": True, **SEED_FLAGS, **flags})


async def ask(client: httpx.AsyncClient, path: str = "/updates", **changes: Any) -> httpx.Response:
    return await client.post(path, json=base(**changes))


async def answer(client: httpx.AsyncClient, **changes: Any) -> dict[str, Any]:
    response = await ask(client, **changes)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def edit_bundle(app: FastAPI, name: str, **values: Any) -> None:
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(
            update(Bundle).where(Bundle.app_id == APP_ID, Bundle.name == name).values(**values)
        )


async def device_row(app: FastAPI) -> Device | None:
    async with app.state.sessionmaker() as session:
        found: Device | None = await session.get(Device, (APP_ID, DEVICE))
        return found


def not_registered(app_id: str) -> dict[str, Any]:
    """The 429 ``on_premise_app`` body for an app id this server does not know."""
    return {
        "error": "on_premise_app",
        "message": f"The app id {app_id} is not registered on this server: create the app "
        "(POST /app, or the Capgo CLI's app add) before devices can get updates from it",
    }
