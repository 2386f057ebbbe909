"""Helpers shared by the ``/device`` tests."""

from __future__ import annotations

from typing import Any

import httpx

from tests.bundles.helpers import APP_ID

DEVICE = "6a1c2f3e-0b4d-4e5f-8a9b-0c1d2e3f4a5b"
OTHER_DEVICE = "7b2d3e4f-1c5e-4f6a-9bac-1d2e3f4a5b6c"
DEVICE_FIELDS = {
    "updated_at",
    "device_id",
    "custom_id",
    "is_prod",
    "is_emulator",
    "version_name",
    "version",
    "app_id",
    "platform",
    "plugin_version",
    "os_version",
    "version_build",
    "key_id",
}


async def get_device(
    client: httpx.AsyncClient, auth: dict[str, str], device_id: str, app_id: str = APP_ID
) -> httpx.Response:
    return await client.get(
        "/device", params={"app_id": app_id, "device_id": device_id}, headers=auth
    )


async def list_page(
    client: httpx.AsyncClient, auth: dict[str, str], app_id: str = APP_ID, **params: Any
) -> dict[str, Any]:
    response = await client.get("/device", params={"app_id": app_id, **params}, headers=auth)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def link(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    device_id: str,
    channel: Any = "beta",
    app_id: str = APP_ID,
    **extra: Any,
) -> httpx.Response:
    body = {"app_id": app_id, "device_id": device_id, "channel": channel, **extra}
    body = {k: v for k, v in body.items() if v is not None}
    return await client.post("/device", json=body, headers=auth)


async def unlink(
    client: httpx.AsyncClient, auth: dict[str, str], device_id: str, app_id: str = APP_ID
) -> httpx.Response:
    return await client.request(
        "DELETE", "/device", json={"app_id": app_id, "device_id": device_id}, headers=auth
    )
