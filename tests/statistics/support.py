"""Replaying device activity, uploads and downloads over simulated days, for the statistics
tests. Every day is June or July 2026 at noon UTC; ``on(day)`` freezes the server's clock there."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from typing import Any

import httpx

from capgo_server.clock import frozen_at
from tests.conftest import Account
from tests.files.support import Tus, bundle_path, local_path, web_bundle

APP_ID = "com.stats.app"
DEVICE_A = "aaaaaaaa-0000-4000-8000-000000000001"
DEVICE_B = "bbbbbbbb-0000-4000-8000-000000000002"
DEVICE_C = "cccccccc-0000-4000-8000-000000000003"


def june(day: int) -> date:
    return date(2026, 6, day)


def july(day: int) -> date:
    return date(2026, 7, day)


@contextmanager
def on(day: date) -> Iterator[None]:
    """The server believes it is noon (UTC) of ``day`` inside the block."""
    with frozen_at(datetime.combine(day, time(12), tzinfo=UTC)):
        yield


def point_date(day: date) -> str:
    return f"{day.isoformat()}T00:00:00.000Z"


async def create_app(
    client: httpx.AsyncClient, owner: Account, app_id: str = APP_ID, org_id: str | None = None
) -> None:
    body = {"app_id": app_id, "name": f"App {app_id}", "owner_org": org_id or owner.org_id}
    response = await client.post("/app", json=body, headers=owner.headers)
    assert response.status_code == 200, response.text


async def upload(
    client: httpx.AsyncClient, owner: Account, version: str, app_id: str = APP_ID
) -> int:
    """Upload a real bundle of ``owner``'s org through tus; its size in bytes."""
    data = web_bundle(120_000)
    response = await Tus(client, owner.headers).upload(bundle_path(owner, app_id, version), data)
    assert response.status_code == 204, response.text
    return len(data)


async def set_channel(
    client: httpx.AsyncClient, owner: Account, version: str, app_id: str = APP_ID
) -> None:
    body = {"app_id": app_id, "channel": "production", "version": version, "public": True}
    response = await client.post("/channel", json=body, headers=owner.headers)
    assert response.status_code == 200, response.text


def device_body(device_id: str, app_id: str = APP_ID, **fields: Any) -> dict[str, Any]:
    """What the plugin (7.17) on Android sends, running the native build."""
    return {
        "app_id": app_id,
        "device_id": device_id,
        "platform": "android",
        "version_name": "builtin",
        "version_build": "1.0.0",
        "version_code": "1",
        "version_os": "14",
        "plugin_version": "7.17.0",
        "custom_id": "",
        "is_emulator": False,
        "is_prod": True,
        **fields,
    }


async def check_for_update(
    client: httpx.AsyncClient, device_id: str, app_id: str = APP_ID
) -> dict[str, Any]:
    response = await client.post("/updates", json=device_body(device_id, app_id))
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def report(
    client: httpx.AsyncClient, device_id: str, action: str, version: str, **fields: Any
) -> None:
    body = device_body(device_id, action=action, version_name=version, **fields)
    response = await client.post("/stats", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok"}, response.text


async def download(client: httpx.AsyncClient, url: str, byte_range: str | None = None) -> bytes:
    headers = {"range": byte_range} if byte_range else {}
    response = await client.get(local_path(url), headers=headers)
    assert response.status_code in (200, 206), response.text
    return response.content


async def stats(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], **query: str
) -> httpx.Response:
    return await client.get(f"/statistics{path}", params=query, headers=headers)


async def points(
    client: httpx.AsyncClient, path: str, owner: Account, first: date, last: date, **query: str
) -> list[dict[str, Any]]:
    response = await stats(
        client, path, owner.headers, **{"from": first.isoformat(), "to": last.isoformat()}, **query
    )
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()
    return body


def column(body: list[dict[str, Any]], name: str) -> list[int]:
    return [point[name] for point in body]
