"""Helpers shared by the ``/app`` and ``/channel`` tests.

Apps and channels are made through the public API. Bundles, device overrides, devices and
usage rows are written straight to the database (their own endpoints are tested elsewhere);
:func:`rows` reads tables back to check what a request changed.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import inspect, select

from capgo_server.db.base import Base
from capgo_server.models import (
    App,
    Bundle,
    ChannelOverride,
    DailyBandwidth,
    Device,
    Upload,
)
from tests.conftest import (
    Account,
    create_org,  # noqa: F401  (re-exported)
    make_key,
)

JS_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
RANDOM_ORG = "8c0e7a3e-2b1f-4d3a-9a51-6f0f2f1c9b77"
DEVICE = "00000000-0000-4000-8000-000000000001"

APP_FIELDS = {
    "app_id",
    "id",
    "owner_org",
    "user_id",
    "name",
    "icon_url",
    "last_version",
    "retention",
    "default_upload_channel",
    "channel_device_count",
    "manifest_bundle_count",
    "expose_metadata",
    "allow_preview",
    "created_at",
    "updated_at",
}


async def create_app(
    client: httpx.AsyncClient,
    owner: Account,
    app_id: str = "com.example.app",
    *,
    name: str = "Example",
    org_id: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Create an app through ``POST /app`` with the owner's ``all`` key."""
    body = {"app_id": app_id, "name": name, "owner_org": org_id or owner.org_id, **fields}
    response = await client.post("/app", json=body, headers=owner.headers)
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()
    return created


async def key_of(client: httpx.AsyncClient, owner: Account, **fields: Any) -> dict[str, str]:
    """Headers of a new key of ``owner`` (``mode``, ``limited_to_apps`` ... as given)."""
    created = await make_key(client, owner, **fields)
    return {"authorization": created["key"]}


async def add_bundle(
    app: FastAPI,
    app_id: str,
    name: str,
    *,
    deleted: bool = False,
    external_url: str | None = None,
) -> int:
    """Insert a bundle row of ``app_id`` stored at its usual path; returns its id."""
    async with app.state.sessionmaker() as session, session.begin():
        owner_org = (await session.get_one(App, app_id)).owner_org
        bundle = Bundle(
            app_id=app_id,
            name=name,
            owner_org=owner_org,
            checksum="0" * 64,
            r2_path=None if external_url else f"orgs/{owner_org}/apps/{app_id}/{name}.zip",
            external_url=external_url,
            storage_provider="external" if external_url else "local",
            deleted=deleted,
        )
        session.add(bundle)
        await session.flush()
        return bundle.id


async def add_override(app: FastAPI, app_id: str, channel_id: int, device_id: str = DEVICE) -> None:
    """Pin a device to a channel (a ``channel_devices`` row)."""
    async with app.state.sessionmaker() as session, session.begin():
        owner_org = (await session.get_one(App, app_id)).owner_org
        session.add(
            ChannelOverride(
                device_id=device_id, channel_id=channel_id, app_id=app_id, owner_org=owner_org
            )
        )


async def add_device_and_usage(app: FastAPI, app_id: str, upload_user: str) -> None:
    """A device, a day of bandwidth and an upload in progress for ``app_id``."""
    async with app.state.sessionmaker() as session, session.begin():
        owner_org = (await session.get_one(App, app_id)).owner_org
        session.add(Device(app_id=app_id, device_id=DEVICE, platform="ios"))
        session.add(DailyBandwidth(app_id=app_id, date=date(2026, 1, 2), bandwidth=1234))
        session.add(
            Upload(
                id=str(uuid.uuid4()),
                app_id=app_id,
                owner_org=owner_org,
                user_id=upload_user,
                version_name="9.9.9",
                path=f"orgs/{owner_org}/apps/{app_id}/9.9.9.zip",
                length=10,
            )
        )


async def rows(app: FastAPI, model: type[Base], **where: Any) -> list[Any]:
    """Rows of ``model`` matching ``column=value`` filters, by primary key."""
    async with app.state.sessionmaker() as session:
        order = inspect(model).primary_key
        query = select(model).filter_by(**where).order_by(*order)
        return list((await session.scalars(query)).all())


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def store_file(app: FastAPI, path: str, data: bytes = b"zip bytes") -> None:
    """Write ``data`` at ``path`` in the live bundle store."""
    await app.state.bundle_store.write(path, _chunks(data))


async def stored_paths(app: FastAPI, prefix: str) -> list[str]:
    paths: list[str] = await app.state.bundle_store.list_prefix(prefix)
    return paths
