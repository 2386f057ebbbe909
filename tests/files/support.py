"""Helpers for the upload and download tests: apps, real zips, and a small tus client."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update

from capgo_server.models import Bundle, Membership, Upload
from capgo_server.storage.base import BundleStore
from tests.conftest import Account

APP_ID = "com.example.app"
UPLOADS = "/files/upload/attachments/"
TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = "application/offset+octet-stream"


async def create_app_row(
    client: httpx.AsyncClient, owner: Account, app_id: str = "com.example.app"
) -> str:
    """An app of ``owner``'s org, created through ``POST /app``."""
    response = await client.post(
        "/app",
        json={"app_id": app_id, "name": app_id, "owner_org": owner.org_id},
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text
    return app_id


async def add_member(app: FastAPI, org_id: str, member: Account, role: str) -> None:
    async with app.state.sessionmaker() as session, session.begin():
        session.add(Membership(org_id=org_id, user_id=member.user_id, user_right=role))


async def bundle_row(app: FastAPI, app_id: str, name: str) -> Bundle | None:
    async with app.state.sessionmaker() as session:
        found: Bundle | None = await session.scalar(
            select(Bundle).where(Bundle.app_id == app_id, Bundle.name == name)
        )
        return found


async def upload_rows(app: FastAPI) -> list[Upload]:
    async with app.state.sessionmaker() as session:
        return list(await session.scalars(select(Upload)))


async def mark_deleted(app: FastAPI, app_id: str, name: str) -> None:
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(
            update(Bundle).where(Bundle.app_id == app_id, Bundle.name == name).values(deleted=True)
        )


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode()


#: What the Capgo CLI sends for an encrypted bundle: a 16-byte IV and the AES key encrypted with a
#: 2048-bit RSA key (a 256-byte block), in base64; and the checksum, an RSA block of the same size
#: in hex (CLI checksum v3) or base64 (v2). The server cannot decrypt them and checks only their
#: shape, so fixed bytes stand in for them.
SESSION_KEY = f"{_base64(bytes(range(16)))}:{_base64(bytes(range(256)))}"
ENCRYPTED_CHECKSUM = bytes(range(255, -1, -1)).hex()
ENCRYPTED_CHECKSUM_V2 = _base64(bytes(range(255, -1, -1)))


def make_zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def web_bundle(padding: int = 50_000) -> bytes:
    """A zip the plugin can install: index.html at the root, plus incompressible filler."""
    return make_zip(
        {
            "index.html": b"<!doctype html><script src=main.js></script>",
            "main.js": b"console.log('hi')",
            "assets/blob.bin": os.urandom(padding),
        }
    )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def bundle_path(owner: Account, app_id: str, version: str) -> str:
    return f"orgs/{owner.org_id}/apps/{app_id}/{version}.zip"


def metadata(**pairs: str) -> str:
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in pairs.items()
    )


def local_path(location: str) -> str:
    """The path of an absolute ``Location`` (the test client talks to the app directly)."""
    return httpx.URL(location).raw_path.decode()


@dataclass
class Tus:
    """A minimal tus client over the test's httpx client."""

    client: httpx.AsyncClient
    headers: dict[str, str]

    async def create(
        self,
        filename: str,
        length: int,
        *,
        extra_headers: dict[str, str] | None = None,
        **meta: str,
    ) -> httpx.Response:
        headers = {
            **self.headers,
            **TUS,
            "Upload-Length": str(length),
            "Upload-Metadata": metadata(filename=filename, **meta),
            **(extra_headers or {}),
        }
        return await self.client.post(UPLOADS, headers=headers)

    async def start(self, filename: str, length: int, **meta: str) -> str:
        created = await self.create(filename, length, **meta)
        assert created.status_code == 201, created.text
        return local_path(created.headers["location"])

    async def patch(self, url: str, offset: int, data: Any, **headers: str) -> httpx.Response:
        return await self.client.patch(
            url,
            content=data,
            headers={
                **self.headers,
                **TUS,
                "Content-Type": OCTETS,
                "Upload-Offset": str(offset),
                **headers,
            },
        )

    async def head(self, url: str) -> httpx.Response:
        return await self.client.head(url, headers={**self.headers, **TUS})

    async def offset(self, url: str) -> int:
        response = await self.head(url)
        assert response.status_code == 200, response.text
        return int(response.headers["upload-offset"])

    async def delete(self, url: str) -> httpx.Response:
        return await self.client.delete(url, headers={**self.headers, **TUS})

    async def send_all(self, url: str, data: bytes, chunk: int, start: int = 0) -> httpx.Response:
        """PATCH ``data[start:]`` in chunks; returns the last response."""
        offset = start
        response: httpx.Response | None = None
        while offset < len(data):
            response = await self.patch(url, offset, data[offset : offset + chunk])
            if response.status_code != 204:
                return response
            offset = int(response.headers["upload-offset"])
        assert response is not None
        return response

    async def upload(
        self, filename: str, data: bytes, chunk: int = 40_000, **meta: str
    ) -> httpx.Response:
        url = await self.start(filename, len(data), **meta)
        return await self.send_all(url, data, chunk)


async def stored(store: BundleStore, path: str) -> bytes:
    return b"".join([chunk async for chunk in store.read(path)])


async def chunks_then_fail(data: bytes, chunk: int, error: Exception) -> AsyncIterator[bytes]:
    for start in range(0, len(data), chunk):
        yield data[start : start + chunk]
    raise error


def store_of(app: FastAPI) -> Any:
    """The app's live bundle store."""
    return app.state.bundle_store
