"""The tus client against the real upload endpoint, with network faults injected between them.

Every test runs the real app in-process (SQLite and PostgreSQL); only the transport misbehaves.
After each interruption the client must ask the server for its offset and continue from there,
and the stored bundle must be byte for byte the file that was sent.
"""

from __future__ import annotations

import hashlib
import io
import os
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from capgo_server.tus_client import (
    TusError,
    TusGaveUpError,
    TusUploader,
    TusUploadGoneError,
    encode_metadata,
)
from tests.bundle_cli.faults import Fault, FaultyTransport, web_zip
from tests.conftest import Account

APP_ID = "com.example.tus"
ENDPOINT = "http://capgo.test/files/upload/attachments/"
CHUNK = 64 * 1024
BUNDLE = web_zip(os.urandom(5 * CHUNK))  # a little over 5 chunks
SIZE = len(BUNDLE)
SHA256 = hashlib.sha256(BUNDLE).hexdigest()


class Sleeps:
    """Records the backoff delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
async def tus_app(client: httpx.AsyncClient, alice: Account) -> str:
    body = {"app_id": APP_ID, "name": "Tus", "owner_org": alice.org_id}
    response = await client.post("/app", json=body, headers=alice.headers)
    assert response.status_code == 200, response.text
    return APP_ID


def faulty(app: FastAPI, **options: Any) -> tuple[httpx.AsyncClient, FaultyTransport]:
    transport = FaultyTransport(httpx.ASGITransport(app=app), **options)
    return httpx.AsyncClient(transport=transport, base_url="http://capgo.test"), transport


def metadata(owner: Account, version: str) -> dict[str, str]:
    return {
        "filename": f"orgs/{owner.org_id}/apps/{APP_ID}/{version}.zip",
        "filetype": "application/zip",
        "checksum": SHA256,
    }


async def upload(
    app: FastAPI,
    owner: Account,
    version: str,
    *,
    plan: dict[int, Fault] | None = None,
    retries: int = 5,
    fail_from: int | None = None,
) -> tuple[TusUploader, FaultyTransport, Sleeps, httpx.Response | None]:
    http, transport = faulty(app, plan=plan or {}, fail_from=fail_from)
    sleeps = Sleeps()
    async with http:
        uploader = TusUploader(
            http,
            headers=owner.headers,
            chunk_size=CHUNK,
            retries=retries,
            sleep=sleeps,
        )
        url = await uploader.create(ENDPOINT, SIZE, metadata(owner, version))
        final = await uploader.upload(url, io.BytesIO(BUNDLE), SIZE)
    return uploader, transport, sleeps, final


async def stored_bundle(client: httpx.AsyncClient, owner: Account, version: str) -> bytes:
    """The bundle as the API lists it and as its signed download URL serves it."""
    listed = await client.get("/bundle", params={"app_id": APP_ID}, headers=owner.headers)
    assert listed.status_code == 200, listed.text
    row = next(row for row in listed.json() if row["name"] == version)
    assert (row["size"], row["checksum"]) == (SIZE, SHA256)
    body = {"app_id": APP_ID, "version": version}
    link = await client.post("/files/download_link", json=body, headers=owner.headers)
    assert link.status_code == 200, link.text
    download = await client.get(link.json()["url"])
    assert download.status_code == 200
    return download.content


def offsets(transport: FaultyTransport) -> list[int]:
    return [patch.offset for patch in transport.forwarded]


CHUNK_STARTS = list(range(0, SIZE, CHUNK))


class TestMetadata:
    def test_values_are_base64_and_pairs_comma_separated(self) -> None:
        assert encode_metadata({"filename": "orgs/o/a.zip", "empty": ""}) == (
            "filename b3Jncy9vL2Euemlw,empty "
        )

    def test_keys_with_spaces_or_commas_are_refused(self) -> None:
        with pytest.raises(ValueError, match="invalid tus metadata key"):
            encode_metadata({"a b": "x"})


class TestUploadWithoutFaults:
    async def test_chunks_in_order_and_the_bundle_is_intact(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, tus_app: str
    ) -> None:
        uploader, transport, sleeps, final = await upload(app, alice, "1.0.0")
        assert offsets(transport) == CHUNK_STARTS
        assert final is not None
        assert final.status_code == 204
        assert final.headers["Upload-Offset"] == str(SIZE)
        assert (uploader.interruptions, sleeps.delays) == (0, [])
        assert await stored_bundle(client, alice, "1.0.0") == BUNDLE

    async def test_a_refused_creation_raises_the_servers_error(
        self, app: FastAPI, alice: Account, tus_app: str
    ) -> None:
        await upload(app, alice, "1.0.0")
        with pytest.raises(TusError) as refused:
            await upload(app, alice, "1.0.0")
        error = refused.value
        assert (error.status, error.code, error.method) == (400, "version_already_exists", "POST")
        assert error.more_info == {"version": "1.0.0"}


class TestResumeAfterInterruption:
    async def test_request_lost_before_the_server(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, tus_app: str
    ) -> None:
        uploader, transport, sleeps, _ = await upload(app, alice, "1.0.0", plan={2: "drop"})
        # The dropped PATCH never arrived: the server still had one chunk, sent again.
        assert offsets(transport) == CHUNK_STARTS
        assert transport.methods.count("HEAD") == 1
        assert (uploader.interruptions, sleeps.delays) == (1, [0.5])
        assert await stored_bundle(client, alice, "1.0.0") == BUNDLE

    async def test_response_lost_after_the_server_stored_the_chunk(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, tus_app: str
    ) -> None:
        uploader, transport, _, _ = await upload(app, alice, "1.0.0", plan={2: "lose_response"})
        # HEAD reported the chunk as stored: it is not sent twice.
        assert offsets(transport) == CHUNK_STARTS
        assert uploader.interruptions == 1
        assert await stored_bundle(client, alice, "1.0.0") == BUNDLE

    async def test_connection_cut_in_the_middle_of_a_body(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, tus_app: str
    ) -> None:
        uploader, transport, _, _ = await upload(app, alice, "1.0.0", plan={3: "cut"})
        # The server kept the half it received; the client resumed right after it.
        half = 2 * CHUNK + CHUNK // 2
        assert offsets(transport)[:4] == [0, CHUNK, 2 * CHUNK, half]
        assert transport.forwarded[2].body_bytes == CHUNK // 2
        assert uploader.interruptions == 1
        assert await stored_bundle(client, alice, "1.0.0") == BUNDLE

    async def test_server_errors_are_retried(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, tus_app: str
    ) -> None:
        uploader, transport, sleeps, _ = await upload(
            app, alice, "1.0.0", plan={1: "503", 2: "503", 4: "drop"}
        )
        assert offsets(transport) == CHUNK_STARTS
        # Consecutive failures back off exponentially; a stored chunk resets the count.
        assert sleeps.delays == [0.5, 1.0, 0.5]
        assert uploader.interruptions == 3
        assert await stored_bundle(client, alice, "1.0.0") == BUNDLE

    async def test_several_interruptions_in_one_upload(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, tus_app: str
    ) -> None:
        plan: dict[int, Fault] = {1: "cut", 3: "lose_response", 5: "drop", 6: "cut"}
        uploader, _, _, _ = await upload(app, alice, "1.0.0", plan=plan)
        assert uploader.interruptions == 4
        assert await stored_bundle(client, alice, "1.0.0") == BUNDLE

    async def test_a_client_behind_the_server_catches_up(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, tus_app: str
    ) -> None:
        http, transport = faulty(app)
        async with http:
            uploader = TusUploader(http, headers=alice.headers, chunk_size=CHUNK, sleep=Sleeps())
            url = await uploader.create(ENDPOINT, SIZE, metadata(alice, "1.0.0"))
            await uploader.upload(url, io.BytesIO(BUNDLE), 2 * CHUNK)  # stops after two chunks
            assert await uploader.status(url) == (2 * CHUNK, SIZE)
            # Starting again from 0: the server answers 409 and the client resumes at its offset.
            await uploader.upload(url, io.BytesIO(BUNDLE), SIZE, offset=0)
        # The PATCH at 0 was refused (409) and nothing was sent twice after it.
        assert offsets(transport) == [0, CHUNK, 0, *CHUNK_STARTS[2:]]
        assert uploader.interruptions == 1
        assert await stored_bundle(client, alice, "1.0.0") == BUNDLE


class TestGivingUp:
    async def test_after_the_retries_the_last_confirmed_offset_is_reported(
        self, app: FastAPI, alice: Account, tus_app: str
    ) -> None:
        with pytest.raises(TusGaveUpError) as gave_up:
            await upload(app, alice, "1.0.0", retries=3, fail_from=3)
        assert gave_up.value.offset == 2 * CHUNK
        assert gave_up.value.sent_everything is False
        assert gave_up.value.reason == (
            "gave up after 3 retries: ReadError: connection reset by peer"
        )

    async def test_a_refusal_is_not_retried(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, tus_app: str
    ) -> None:
        http, transport = faulty(app)
        async with http:
            uploader = TusUploader(http, headers=alice.headers, chunk_size=CHUNK, sleep=Sleeps())
            url = await uploader.create(ENDPOINT, SIZE, metadata(alice, "1.0.0"))
            wrong = io.BytesIO(b"x" * SIZE)  # not the file whose checksum was announced
            with pytest.raises(TusError) as refused:
                await uploader.upload(url, wrong, SIZE)
        assert (refused.value.status, refused.value.code) == (400, "checksum_mismatch")
        assert transport.methods.count("HEAD") == 0
        listed = await client.get("/bundle", params={"app_id": APP_ID}, headers=alice.headers)
        assert listed.json() == []

    async def test_the_last_answer_lost_and_the_upload_finished(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, tus_app: str
    ) -> None:
        last = len(CHUNK_STARTS)
        with pytest.raises(TusUploadGoneError) as gone:
            await upload(app, alice, "1.0.0", plan={last: "lose_response"})
        # The server completed the bundle and forgot the upload: only the caller can check.
        assert (gone.value.status, gone.value.sent_everything) == (404, True)
        assert await stored_bundle(client, alice, "1.0.0") == BUNDLE


class TestTermination:
    async def test_terminate_frees_the_version(
        self, app: FastAPI, alice: Account, tus_app: str
    ) -> None:
        http, _ = faulty(app)
        async with http:
            uploader = TusUploader(http, headers=alice.headers, chunk_size=CHUNK, sleep=Sleeps())
            url = await uploader.create(ENDPOINT, SIZE, metadata(alice, "1.0.0"))
            await uploader.upload(url, io.BytesIO(BUNDLE), CHUNK)
            await uploader.terminate(url)
            with pytest.raises(TusUploadGoneError):
                await uploader.status(url)
            again = await uploader.create(ENDPOINT, SIZE, metadata(alice, "1.0.0"))
        assert again != url
