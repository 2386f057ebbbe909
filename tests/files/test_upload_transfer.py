"""The tus upload endpoint, part 2: sending bytes (PATCH), interruptions and resumption,
finishing into a bundle, and termination (issue 3: bundle storage and upload)."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from tests.conftest import Account, error_of
from tests.files.support import (
    ENCRYPTED_CHECKSUM,
    OCTETS,
    SESSION_KEY,
    TUS,
    UPLOADS,
    Tus,
    bundle_path,
    bundle_row,
    chunks_then_fail,
    make_zip,
    sha256,
    store_of,
    stored,
    upload_rows,
    web_bundle,
)


class TestPatch:
    async def test_chunks_become_the_bundle(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI
    ) -> None:
        data = web_bundle(200_000)
        path = bundle_path(alice, app_id, "1.2.3")
        url = await tus.start(path, len(data), checksum=sha256(data))
        offset = 0
        for size in (70_000, 70_000, 1):
            response = await tus.patch(url, offset, data[offset : offset + size])
            assert response.status_code == 204
            offset += size
            assert response.headers["upload-offset"] == str(offset)
            assert await tus.offset(url) == offset
            assert await bundle_row(app, app_id, "1.2.3") is None
        last = await tus.patch(url, offset, data[offset:])
        assert last.status_code == 204
        assert last.headers["upload-offset"] == str(len(data))
        bundle = await bundle_row(app, app_id, "1.2.3")
        assert bundle is not None
        assert (bundle.size, bundle.checksum, bundle.r2_path) == (len(data), sha256(data), path)
        assert (bundle.owner_org, bundle.user_id, bundle.deleted) == (
            alice.org_id,
            alice.user_id,
            False,
        )
        assert bundle.storage_provider == "local"
        assert bundle.session_key is None
        assert await stored(store_of(app), path) == data
        assert await upload_rows(app) == []
        assert await store_of(app).list_prefix("uploads/") == []
        assert (await tus.head(url)).status_code == 404

    async def test_whole_file_in_one_patch(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI
    ) -> None:
        data = web_bundle()
        response = await tus.upload(bundle_path(alice, app_id, "1.0.0"), data, chunk=len(data))
        assert response.status_code == 204
        bundle = await bundle_row(app, app_id, "1.0.0")
        assert bundle is not None
        assert bundle.checksum == sha256(data)

    async def test_twenty_mebibytes_in_five_mebibyte_patches(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI
    ) -> None:
        data = make_zip({"index.html": b"<html>", "big.bin": os.urandom(20 * 1024 * 1024)})
        response = await tus.upload(
            bundle_path(alice, app_id, "2.0.0"), data, chunk=5 * 1024 * 1024
        )
        assert response.status_code == 204, response.text
        bundle = await bundle_row(app, app_id, "2.0.0")
        assert bundle is not None
        assert (bundle.size, bundle.checksum) == (len(data), sha256(data))
        assert sha256(await stored(store_of(app), bundle.r2_path or "")) == sha256(data)

    async def test_content_type_must_be_offset_octet_stream(
        self, tus: Tus, alice: Account, app_id: str
    ) -> None:
        url = await tus.start(bundle_path(alice, app_id, "1.0.0"), 100)
        response = await tus.patch(url, 0, b"x" * 10, **{"Content-Type": "application/json"})
        assert error_of(response) == (415, "invalid_content_type")
        assert await tus.offset(url) == 0

    async def test_offset_must_match(self, tus: Tus, alice: Account, app_id: str) -> None:
        url = await tus.start(bundle_path(alice, app_id, "1.0.0"), 100)
        assert (await tus.patch(url, 0, b"x" * 10)).status_code == 204
        response = await tus.patch(url, 0, b"x" * 10)
        assert response.status_code == 409
        assert response.json()["error"] == "offset_mismatch"
        assert response.json()["moreInfo"] == {"offset": 10}
        assert response.headers["upload-offset"] == "10"
        assert await tus.offset(url) == 10

    @pytest.mark.parametrize("offset", ["", "x", "-1"])
    async def test_offset_must_be_a_number(
        self, tus: Tus, alice: Account, app_id: str, offset: str
    ) -> None:
        url = await tus.start(bundle_path(alice, app_id, "1.0.0"), 100)
        response = await tus.client.patch(
            url,
            content=b"x",
            headers={**tus.headers, **TUS, "Content-Type": OCTETS, "Upload-Offset": offset},
        )
        assert error_of(response) == (400, "invalid_upload_offset")

    async def test_body_past_the_declared_length_is_refused(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI
    ) -> None:
        url = await tus.start(bundle_path(alice, app_id, "1.0.0"), 100)
        response = await tus.patch(url, 0, b"x" * 101)
        assert response.status_code == 413
        assert response.json()["error"] == "upload_length_exceeded"
        assert await tus.offset(url) == 0
        assert await store_of(app).list_prefix("uploads/") == []

    async def test_streamed_body_past_the_length_is_refused(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI
    ) -> None:
        url = await tus.start(bundle_path(alice, app_id, "1.0.0"), 100)

        async def unsized():  # type: ignore[no-untyped-def]
            for _ in range(11):
                yield b"x" * 10

        response = await tus.patch(url, 0, unsized())
        assert error_of(response) == (413, "upload_length_exceeded")
        assert await tus.offset(url) == 0

    async def test_empty_patch_changes_nothing(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI
    ) -> None:
        url = await tus.start(bundle_path(alice, app_id, "1.0.0"), 100)
        response = await tus.patch(url, 0, b"")
        assert response.status_code == 204
        assert response.headers["upload-offset"] == "0"
        assert await store_of(app).list_prefix("uploads/") == []

    async def test_resumes_after_a_failed_patch(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI
    ) -> None:
        data = web_bundle(300_000)
        path = bundle_path(alice, app_id, "1.0.0")
        url = await tus.start(path, len(data))
        assert (await tus.patch(url, 0, data[:100_000])).status_code == 204
        # The client's body breaks off mid-request: nothing of that PATCH counts.
        with pytest.raises(ConnectionResetError):
            await tus.patch(
                url,
                100_000,
                chunks_then_fail(data[100_000:150_000], 10_000, ConnectionResetError()),
            )
        offset = await tus.offset(url)
        assert offset == 100_000
        assert (await tus.send_all(url, data, 64_000, start=offset)).status_code == 204
        bundle = await bundle_row(app, app_id, "1.0.0")
        assert bundle is not None
        assert bundle.checksum == sha256(data)
        assert await stored(store_of(app), path) == data

    async def test_resumes_after_the_client_disconnects_mid_patch(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI
    ) -> None:
        data = web_bundle(300_000)
        path = bundle_path(alice, app_id, "1.0.0")
        url = await tus.start(path, len(data))
        # What the server sees of a client that dies mid-body: some chunks, then a disconnect.
        await disconnecting_patch(
            app, url, alice, 0, [data[:20_000], data[20_000:50_000]], len(data)
        )
        offset = await tus.offset(url)
        assert offset == 50_000  # what arrived was kept
        assert (await tus.send_all(url, data, 64_000, start=offset)).status_code == 204
        bundle = await bundle_row(app, app_id, "1.0.0")
        assert bundle is not None
        assert bundle.checksum == sha256(data)
        assert await stored(store_of(app), path) == data

    async def test_resumes_after_the_connection_drops_on_a_real_server(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI
    ) -> None:
        data = web_bundle(1_500_000)
        path = bundle_path(alice, app_id, "1.0.0")
        url = await tus.start(path, len(data))
        async with live_server(app) as (host, port):
            _reader, writer = await asyncio.open_connection(host, port)
            head = (
                f"PATCH {url} HTTP/1.1\r\nHost: {host}\r\nauthorization: {alice.key}\r\n"
                f"Tus-Resumable: 1.0.0\r\nContent-Type: {OCTETS}\r\nUpload-Offset: 0\r\n"
                f"Content-Length: {len(data)}\r\n\r\n"
            )
            writer.write(head.encode() + data[:600_000])
            await writer.drain()
            await asyncio.sleep(0.2)
            writer.transport.abort()  # the client dies mid-body
            offset = 0
            for _ in range(100):
                await asyncio.sleep(0.05)
                if (offset := await tus.offset(url)) > 0:
                    break
        assert 0 < offset <= 600_000
        assert (await tus.send_all(url, data, 500_000, start=offset)).status_code == 204
        assert await stored(store_of(app), path) == data

    async def test_concurrent_patches_at_one_offset_cannot_both_land(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI
    ) -> None:
        data = web_bundle(100_000)
        path = bundle_path(alice, app_id, "1.0.0")
        url = await tus.start(path, len(data))

        async def slowly(body: bytes) -> AsyncIterator[bytes]:
            for start in range(0, len(body), 5_000):
                await asyncio.sleep(0.005)
                yield body[start : start + 5_000]

        first, second = await asyncio.gather(
            tus.patch(url, 0, slowly(data[:60_000])), tus.patch(url, 0, slowly(data[:30_000]))
        )
        assert sorted([first.status_code, second.status_code]) == [204, 409]
        landed = first if first.status_code == 204 else second
        offset = await tus.offset(url)
        assert str(offset) == landed.headers["upload-offset"]
        assert (await tus.send_all(url, data, 50_000, start=offset)).status_code == 204
        assert await stored(store_of(app), path) == data

    async def test_disconnect_before_any_byte_keeps_the_offset(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI
    ) -> None:
        url = await tus.start(bundle_path(alice, app_id, "1.0.0"), 1000)
        assert (await tus.patch(url, 0, b"x" * 100)).status_code == 204
        await disconnecting_patch(app, url, alice, 100, [], 500)
        assert await tus.offset(url) == 100
        assert await store_of(app).list_prefix("uploads/") == [
            f"uploads/{url.rsplit('/', 1)[1]}/{0:020d}"
        ]

    async def test_matching_checksum_is_accepted(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI
    ) -> None:
        data = web_bundle()
        response = await tus.upload(
            bundle_path(alice, app_id, "1.0.0"), data, checksum=sha256(data).upper()
        )
        assert response.status_code == 204

    async def test_wrong_checksum_fails_the_upload(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI
    ) -> None:
        data = web_bundle()
        path = bundle_path(alice, app_id, "1.0.0")
        url = await tus.start(path, len(data), checksum="0" * 64)
        response = await tus.send_all(url, data, 30_000)
        assert response.status_code == 400
        assert response.json() == {
            "error": "checksum_mismatch",
            "message": "The uploaded file does not match the checksum given when the upload began",
            "moreInfo": {"expected": "0" * 64, "actual": sha256(data)},
        }
        await assert_discarded(app, tus, url, app_id, path)
        # Nothing was kept: the same version can be uploaded again.
        assert (await tus.upload(path, data, checksum=sha256(data))).status_code == 204

    async def test_zip_without_index_html_is_refused(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI
    ) -> None:
        data = make_zip({"main.js": b"x", "assets/index.html": b"<html>"})
        path = bundle_path(alice, app_id, "1.0.0")
        url = await tus.start(path, len(data))
        response = await tus.send_all(url, data, 1000)
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_bundle_zip",
            "message": "The zip has no index.html at its root or in a single top-level folder, "
            "so the plugin cannot install it",
            "moreInfo": {"path": path},
        }
        await assert_discarded(app, tus, url, app_id, path)

    async def test_two_top_level_folders_are_refused(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI
    ) -> None:
        data = make_zip({"www/index.html": b"<html>", "other/index.html": b"<html>"})
        response = await tus.upload(bundle_path(alice, app_id, "1.0.0"), data)
        assert error_of(response) == (400, "invalid_bundle_zip")
        assert await bundle_row(app, app_id, "1.0.0") is None

    async def test_index_html_in_one_top_level_folder_is_accepted(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI
    ) -> None:
        data = make_zip({"dist/": b"", "dist/index.html": b"<html>", "dist/js/app.js": b"x"})
        response = await tus.upload(bundle_path(alice, app_id, "1.0.0"), data)
        assert response.status_code == 204, response.text
        assert await bundle_row(app, app_id, "1.0.0") is not None

    async def test_a_file_that_is_not_a_zip_is_refused(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI
    ) -> None:
        response = await tus.upload(bundle_path(alice, app_id, "1.0.0"), os.urandom(5000))
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_bundle_zip"
        assert response.json()["message"] == "The file is not a valid zip archive"

    async def test_encrypted_bundle_keeps_its_crypto_fields(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI
    ) -> None:
        ciphertext = os.urandom(10_000)  # not a zip: encrypted bundles cannot be inspected
        response = await tus.upload(
            bundle_path(alice, app_id, "1.0.0"),
            ciphertext,
            session_key=SESSION_KEY,
            key_id="MIIBCgKCAQEAx",
            checksum=ENCRYPTED_CHECKSUM,
        )
        assert response.status_code == 204, response.text
        bundle = await bundle_row(app, app_id, "1.0.0")
        assert bundle is not None
        assert (bundle.session_key, bundle.key_id, bundle.checksum, bundle.size) == (
            SESSION_KEY,
            "MIIBCgKCAQEAx",
            ENCRYPTED_CHECKSUM,
            len(ciphertext),
        )
        assert await store_of(app).list_prefix("uploads/") == []

    async def test_another_org_cannot_write_to_an_upload(
        self, tus: Tus, client: httpx.AsyncClient, alice: Account, bob: Account, app_id: str
    ) -> None:
        url = await tus.start(bundle_path(alice, app_id, "1.0.0"), 100)
        response = await Tus(client, bob.headers).patch(url, 0, b"x" * 10)
        assert error_of(response) == (404, "upload_not_found")
        assert await tus.offset(url) == 0


class TestAppDeletion:
    async def test_deleting_the_app_removes_unfinished_uploads(
        self, tus: Tus, client: httpx.AsyncClient, alice: Account, app_id: str, app: FastAPI
    ) -> None:
        url = await tus.start(bundle_path(alice, app_id, "1.0.0"), 100)
        assert (await tus.patch(url, 0, b"x" * 10)).status_code == 204
        assert await store_of(app).list_prefix("uploads/") != []
        response = await client.delete(f"/app/{app_id}", headers=alice.headers)
        assert response.status_code == 200
        assert await upload_rows(app) == []
        assert await store_of(app).list_prefix("uploads/") == []


class TestTerminate:
    async def test_removes_the_upload_and_its_bytes(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI
    ) -> None:
        path = bundle_path(alice, app_id, "1.0.0")
        url = await tus.start(path, 1000)
        assert (await tus.patch(url, 0, b"x" * 300)).status_code == 204
        response = await tus.delete(url)
        assert response.status_code == 204
        assert response.headers["tus-resumable"] == "1.0.0"
        assert (await tus.head(url)).status_code == 404
        assert await upload_rows(app) == []
        assert await store_of(app).list_prefix("uploads/") == []
        assert (await tus.create(path, 10)).status_code == 201  # the version is free again

    async def test_another_org_cannot_terminate(
        self, tus: Tus, client: httpx.AsyncClient, alice: Account, bob: Account, app_id: str
    ) -> None:
        url = await tus.start(bundle_path(alice, app_id, "1.0.0"), 100)
        assert (await tus.patch(url, 0, b"x" * 10)).status_code == 204
        response = await Tus(client, bob.headers).delete(url)
        assert error_of(response) == (404, "upload_not_found")
        assert await tus.offset(url) == 10

    async def test_unknown_upload(self, tus: Tus, app_id: str) -> None:
        response = await tus.delete(f"{UPLOADS}{uuid.uuid4()}")
        assert error_of(response) == (404, "upload_not_found")


@asynccontextmanager
async def live_server(app: FastAPI) -> AsyncIterator[tuple[str, int]]:
    """``app`` served by uvicorn on a free local port (its lifespan already runs in the test)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield sock.getsockname()
    finally:
        server.should_exit = True
        await task


async def assert_discarded(app: FastAPI, tus: Tus, url: str, app_id: str, path: str) -> None:
    assert (await tus.head(url)).status_code == 404
    assert await upload_rows(app) == []
    assert await bundle_row(app, app_id, path.rsplit("/", 1)[1].removesuffix(".zip")) is None
    assert await store_of(app).size(path) is None
    assert await store_of(app).list_prefix("uploads/") == []


async def disconnecting_patch(
    app: FastAPI, url: str, owner: Account, offset: int, chunks: list[bytes], declared: int
) -> None:
    """Run a PATCH through the ASGI interface the way a server reports a client that went away
    mid-body: the chunks that arrived, then ``http.disconnect``."""
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": chunk, "more_body": True} for chunk in chunks
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        pass

    headers = {
        **owner.headers,
        **TUS,
        "content-type": OCTETS,
        "upload-offset": str(offset),
        "content-length": str(declared),
        "host": "capgo.test",
    }
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "PATCH",
        "scheme": "http",
        "path": url,
        "raw_path": url.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(key.lower().encode(), value.encode()) for key, value in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("capgo.test", 80),
        "state": {},
    }
    await app(scope, receive, send)
