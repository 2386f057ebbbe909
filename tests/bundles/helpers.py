"""Helpers shared by the ``/bundle`` and ``/device`` tests.

Apps and bundles are made through the public API (``POST /app``, ``POST /bundle``). Channels,
devices and uploaded bundles are written to the database directly: devices only come from the
device protocol, and the tests must not depend on ``/channel`` or the upload route.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from capgo_server.models import App, Bundle, Channel, ChannelOverride, DeployHistory, Device
from tests.conftest import Account

JS_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
APP_ID = "com.example.app"
OTHER_APP_ID = "com.example.other"
UNKNOWN_APP_ID = "com.nobody.nothing"
SEED_BUNDLE_FIELDS = {
    "app_id",
    "bucket_id",
    "checksum",
    "created_at",
    "deleted",
    "external_url",
    "id",
    "minUpdateVersion",
    "name",
    "native_packages",
    "owner_org",
    "r2_path",
    "session_key",
    "storage_provider",
    "updated_at",
    "user_id",
}
BUNDLE_FIELDS = SEED_BUNDLE_FIELDS | {
    "min_update_version",
    "key_id",
    "link",
    "comment",
    "size",
    "manifest",
    "manifest_count",
    "cli_version",
    "deleted_at",
}


def error(code: str, message: str, more_info: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": code, "message": message, "moreInfo": more_info or {}}


def no_access(code: str, app_id: str) -> dict[str, Any]:
    """The refusal for an app the caller may not use (identical for unknown apps)."""
    return error(code, "You can't access this app", {"app_id": app_id})


def headers(key: str) -> dict[str, str]:
    return {"authorization": key}


async def create_app(
    client: httpx.AsyncClient, owner: Account, app_id: str = APP_ID, org_id: str | None = None
) -> dict[str, Any]:
    """An app of ``owner``'s org through ``POST /app`` (with its internal bundles)."""
    response = await client.post(
        "/app",
        json={"app_id": app_id, "name": app_id, "owner_org": org_id or owner.org_id},
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()
    return created


async def create_bundle(
    client: httpx.AsyncClient,
    owner: Account | dict[str, str],
    version: str,
    app_id: str = APP_ID,
    **fields: Any,
) -> dict[str, Any]:
    """A bundle registered through ``POST /bundle`` (external URL); returns its row."""
    response = await post_bundle(client, owner, version, app_id, **fields)
    assert response.status_code == 200, response.text
    bundle: dict[str, Any] = response.json()["bundle"]
    return bundle


async def post_bundle(
    client: httpx.AsyncClient,
    owner: Account | dict[str, str],
    version: Any,
    app_id: Any = APP_ID,
    **fields: Any,
) -> httpx.Response:
    body = {
        "app_id": app_id,
        "version": version,
        "external_url": f"https://cdn.example.com/{version}.zip",
        "checksum": "a" * 64,
        **fields,
    }
    body = {k: v for k, v in body.items() if v is not None}
    auth = owner.headers if isinstance(owner, Account) else owner
    return await client.post("/bundle", json=body, headers=auth)


async def insert_stored_bundle(
    app: FastAPI, org_id: str, name: str, app_id: str = APP_ID, content: bytes = b"zip bytes"
) -> tuple[int, str]:
    """A bundle as an upload leaves it: a row and its file in the bundle store."""
    path = f"orgs/{org_id}/apps/{app_id}/{name}.zip"

    async def chunks() -> Any:
        yield content

    await app.state.bundle_store.write(path, chunks())
    async with app.state.sessionmaker() as session, session.begin():
        bundle = Bundle(
            app_id=app_id,
            name=name,
            owner_org=org_id,
            r2_path=path,
            storage_provider=app.state.bundle_store.provider,
            size=len(content),
            checksum="c" * 64,
        )
        session.add(bundle)
        await session.flush()
        return bundle.id, path


async def bundle_id(app: FastAPI, name: str, app_id: str = APP_ID) -> int:
    async with app.state.sessionmaker() as session:
        found = await session.scalar(
            select(Bundle.id).where(Bundle.app_id == app_id, Bundle.name == name)
        )
    assert found is not None
    return found


async def bundle_row(app: FastAPI, bundle_id_: int) -> Bundle:
    async with app.state.sessionmaker() as session:
        bundle = await session.get(Bundle, bundle_id_)
    assert bundle is not None
    return bundle


async def create_channel(
    app: FastAPI, name: str, app_id: str = APP_ID, *, public: bool = False, bundle: str = "unknown"
) -> int:
    """A channel of the app serving ``bundle`` (a name); returns its id."""
    async with app.state.sessionmaker() as session, session.begin():
        the_app = await session.get(App, app_id)
        assert the_app is not None
        version = await session.scalar(
            select(Bundle.id).where(Bundle.app_id == app_id, Bundle.name == bundle)
        )
        assert version is not None
        channel = Channel(
            name=name, app_id=app_id, owner_org=the_app.owner_org, version=version, public=public
        )
        session.add(channel)
        await session.flush()
        return channel.id


async def channel_version(app: FastAPI, channel_id: int) -> int:
    async with app.state.sessionmaker() as session:
        channel = await session.get(Channel, channel_id)
    assert channel is not None
    return channel.version


async def deploy_history(app: FastAPI, channel_id: int) -> list[tuple[int, str | None]]:
    """(bundle id, user id) of each deployment recorded for the channel, oldest first."""
    async with app.state.sessionmaker() as session:
        rows = (
            await session.execute(
                select(DeployHistory.version_id, DeployHistory.created_by)
                .where(DeployHistory.channel_id == channel_id)
                .order_by(DeployHistory.id)
            )
        ).all()
    return [(version_id, user_id) for version_id, user_id in rows]


async def insert_device(
    app: FastAPI,
    device_id: str,
    app_id: str = APP_ID,
    *,
    updated_at: datetime | None = None,
    **fields: Any,
) -> None:
    """A device as the device protocol records it."""
    async with app.state.sessionmaker() as session, session.begin():
        session.add(
            Device(
                app_id=app_id,
                device_id=device_id,
                updated_at=updated_at or datetime.now(UTC),
                **fields,
            )
        )


async def insert_devices(
    app: FastAPI, count: int, app_id: str = APP_ID, start: datetime | None = None
) -> list[str]:
    """``count`` devices, the first updated most recently, 300 µs apart (several share a
    millisecond) and in pairs sharing a timestamp (ties); returns their ids in API order."""
    start = start or datetime(2026, 1, 1, tzinfo=UTC)
    ids: list[str] = []
    async with app.state.sessionmaker() as session, session.begin():
        for index in range(count):
            device_id = f"{index:08x}-0000-4000-8000-000000000000"
            moment = start - timedelta(microseconds=300 * (index // 2))
            session.add(Device(app_id=app_id, device_id=device_id, updated_at=moment))
            ids.append(device_id)
    return ids


async def override_count(app: FastAPI, app_id: str = APP_ID) -> tuple[int, int]:
    """(``apps.channel_device_count``, actual number of overrides) of the app."""
    async with app.state.sessionmaker() as session:
        counter = await session.scalar(select(App.channel_device_count).where(App.app_id == app_id))
        actual = await session.scalar(
            select(func.count())
            .select_from(ChannelOverride)
            .where(ChannelOverride.app_id == app_id)
        )
    assert counter is not None
    assert actual is not None
    return counter, actual


async def overrides(app: FastAPI, app_id: str = APP_ID) -> dict[str, int]:
    """device id → channel id of the app's overrides."""
    async with app.state.sessionmaker() as session:
        rows = (
            await session.execute(
                select(ChannelOverride.device_id, ChannelOverride.channel_id).where(
                    ChannelOverride.app_id == app_id
                )
            )
        ).all()
    return {device_id: channel_id for device_id, channel_id in rows}


async def store_has(app: FastAPI, path: str) -> bool:
    return await app.state.bundle_store.size(path) is not None
