"""The tus upload endpoint, ``/files/upload/attachments/`` (issue 3: bundle storage and upload)."""

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
from sqlalchemy import update

from capgo_server.models import Organization
from tests.conftest import Account, error_of, make_key
from tests.files.support import (
    OCTETS,
    TUS,
    UPLOADS,
    Tus,
    add_member,
    bundle_path,
    bundle_row,
    chunks_then_fail,
    create_app_row,
    local_path,
    make_zip,
    mark_deleted,
    metadata,
    sha256,
    stored,
    upload_rows,
    web_bundle,
)

APP_ID = "com.example.app"


@pytest.fixture
async def app_id(client: httpx.AsyncClient, alice: Account) -> str:
    return await create_app_row(client, alice, APP_ID)


@pytest.fixture
def tus(client: httpx.AsyncClient, alice: Account) -> Tus:
    return Tus(client, alice.headers)


def store_of(app: FastAPI) -> Any:
    return app.state.bundle_store


class TestOptions:
    async def test_announces_the_protocol(self, client: httpx.AsyncClient) -> None:
        for path in (UPLOADS, UPLOADS.rstrip("/"), f"{UPLOADS}{uuid.uuid4()}"):
            response = await client.options(path)
            assert response.status_code == 204
            assert response.headers["tus-version"] == "1.0.0"
            assert response.headers["tus-resumable"] == "1.0.0"
            assert response.headers["tus-extension"] == "creation,termination"
            assert response.headers["tus-max-size"] == str(1024 * 1024 * 1024)


class TestConfig:
    async def test_tells_the_cli_to_use_tus(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/files/config")
        assert response.status_code == 200
        assert response.json() == {
            "partialUpload": False,
            "partialUploadForced": False,
            "TUSUpload": True,
            "TUSUploadForced": True,
            "maxUploadLength": 1024 * 1024 * 1024,
            "maxChunkSize": 99 * 1024 * 1024,
            "alertUploadSize": 20 * 1024 * 1024,
        }


class TestCreate:
    async def test_creates_an_upload_at_offset_zero(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI
    ) -> None:
        response = await tus.create(bundle_path(alice, app_id, "1.0.0"), 1000)
        assert response.status_code == 201, response.text
        location = response.headers["location"]
        assert location.startswith(f"http://capgo.test{UPLOADS}")
        upload_id = location.rsplit("/", 1)[1]
        assert uuid.UUID(upload_id)
        assert response.headers["tus-resumable"] == "1.0.0"
        head = await tus.head(f"{UPLOADS}{upload_id}")
        assert head.status_code == 200
        assert head.headers["upload-offset"] == "0"
        assert head.headers["upload-length"] == "1000"
        assert head.headers["cache-control"] == "no-store"
        (row,) = await upload_rows(app)
        assert (row.app_id, row.version_name, row.user_id, row.length) == (
            app_id,
            "1.0.0",
            alice.user_id,
            1000,
        )

    async def test_collection_url_without_trailing_slash(
        self, client: httpx.AsyncClient, alice: Account, app_id: str
    ) -> None:
        response = await client.post(
            UPLOADS.rstrip("/"),
            headers={
                **alice.headers,
                **TUS,
                "Upload-Length": "10",
                "Upload-Metadata": metadata(filename=bundle_path(alice, app_id, "1.0.0")),
            },
        )
        assert response.status_code == 201, response.text

    async def test_an_upload_mode_key_may_upload(
        self, client: httpx.AsyncClient, alice: Account, app_id: str
    ) -> None:
        key = await make_key(client, alice, mode="upload")
        response = await Tus(client, {"authorization": key["key"]}).create(
            bundle_path(alice, app_id, "1.0.0"), 10
        )
        assert response.status_code == 201, response.text

    async def test_a_read_key_is_refused(
        self, client: httpx.AsyncClient, alice: Account, app_id: str
    ) -> None:
        key = await make_key(client, alice, mode="read")
        response = await Tus(client, {"authorization": key["key"]}).create(
            bundle_path(alice, app_id, "1.0.0"), 10
        )
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_apikey"

    async def test_no_key(self, client: httpx.AsyncClient, alice: Account, app_id: str) -> None:
        response = await Tus(client, {}).create(bundle_path(alice, app_id, "1.0.0"), 10)
        assert error_of(response) == (401, "no_key_provided")

    async def test_tus_resumable_is_required(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI
    ) -> None:
        response = await tus.create(
            bundle_path(alice, app_id, "1.0.0"), 10, extra_headers={"Tus-Resumable": "0.2.2"}
        )
        assert error_of(response) == (412, "unsupported_tus_version")
        assert response.headers["tus-version"] == "1.0.0"
        assert await upload_rows(app) == []

    @pytest.mark.parametrize("length", ["", "abc", "0", "-5", "1.5"])
    async def test_upload_length_must_be_a_positive_integer(
        self, client: httpx.AsyncClient, alice: Account, app_id: str, length: str
    ) -> None:
        headers = {
            **alice.headers,
            **TUS,
            "Upload-Metadata": metadata(filename=bundle_path(alice, app_id, "1.0.0")),
        }
        if length:
            headers["Upload-Length"] = length
        response = await client.post(UPLOADS, headers=headers)
        assert error_of(response) == (400, "invalid_upload_length")

    async def test_upload_larger_than_the_limit_is_413(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI
    ) -> None:
        limit = app.state.settings.max_upload_bytes
        response = await tus.create(bundle_path(alice, app_id, "1.0.0"), limit + 1)
        assert response.status_code == 413
        assert response.json() == {
            "error": "upload_too_large",
            "message": f"The bundle is larger than this server accepts ({limit} bytes)",
            "moreInfo": {"upload_length": limit + 1, "max_bytes": limit},
        }
        assert response.headers["tus-max-size"] == str(limit)
        assert await upload_rows(app) == []

    async def test_upload_of_exactly_the_limit_is_accepted(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI
    ) -> None:
        limit = app.state.settings.max_upload_bytes
        response = await tus.create(bundle_path(alice, app_id, "1.0.0"), limit)
        assert response.status_code == 201

    @pytest.mark.parametrize(
        "header", ["filename eA==,", "filename not-base64!", "a b c", "filename eA==,filename eQ=="]
    )
    async def test_malformed_metadata(
        self, client: httpx.AsyncClient, alice: Account, app_id: str, header: str
    ) -> None:
        response = await client.post(
            UPLOADS,
            headers={**alice.headers, **TUS, "Upload-Length": "10", "Upload-Metadata": header},
        )
        assert error_of(response) == (400, "invalid_upload_metadata")

    @pytest.mark.parametrize(
        "filename",
        [
            None,
            "",
            "ORG/apps/com.example.app/1.0.0.zip",
            "orgs/{org}/apps/com.example.app/1.0.0",
            "orgs/{org}/apps/com.example.app/1.0.0.tar.gz/x.zip",
            "orgs/{org}/apps/com.example.app/../1.0.0.zip",
            "orgs/{org}/apps/../apps/com.example.app/1.0.0.zip",
            "/orgs/{org}/apps/com.example.app/1.0.0.zip",
            "orgs/{org}/apps/com.example.app/sub/1.0.0.zip",
            "orgs/not-a-uuid/apps/com.example.app/1.0.0.zip",
            "orgs/{org}/apps/not_an_app_id/1.0.0.zip",
            "bundles/{org}/com.example.app/1.0.0.zip",
        ],
    )
    async def test_invalid_file_paths(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI, filename: str | None
    ) -> None:
        name = None if filename is None else filename.replace("{org}", alice.org_id)
        if name is None:
            response = await tus.client.post(
                UPLOADS,
                headers={**alice.headers, **TUS, "Upload-Length": "10"},
            )
        else:
            response = await tus.create(name, 10)
        assert error_of(response) == (400, "invalid_file_path")
        assert response.json()["moreInfo"] == {"filename": name}
        assert await upload_rows(app) == []

    async def test_path_naming_another_org_is_invalid(
        self, tus: Tus, alice: Account, bob: Account, app_id: str
    ) -> None:
        response = await tus.create(f"orgs/{bob.org_id}/apps/{app_id}/1.0.0.zip", 10)
        assert error_of(response) == (400, "invalid_file_path")

    @pytest.mark.parametrize("version", ["v1.0.0", "1.0", "01.0.0", "1.0.0-", "latest", "1.0.0 "])
    async def test_version_must_be_semver(
        self, tus: Tus, alice: Account, app_id: str, version: str
    ) -> None:
        response = await tus.create(f"orgs/{alice.org_id}/apps/{app_id}/{version}.zip", 10)
        assert error_of(response) == (400, "invalid_version_format")

    @pytest.mark.parametrize("checksum", ["abc", "z" * 64, "a" * 63, "12345678"])
    async def test_checksum_must_be_sha256_hex(
        self, tus: Tus, alice: Account, app_id: str, checksum: str
    ) -> None:
        response = await tus.create(bundle_path(alice, app_id, "1.0.0"), 10, checksum=checksum)
        assert error_of(response) == (400, "invalid_checksum")

    @pytest.mark.parametrize(
        ("meta", "code"),
        [
            ({"session_key": "no-colon", "checksum": "ab"}, "invalid_session_key"),
            ({"session_key": "aXY=:a2V5" * 300, "checksum": "ab"}, "invalid_session_key"),
            ({"key_id": "MIIBCgKCAQEA"}, "invalid_session_key"),
            ({"session_key": "aXY=:a2V5", "key_id": "x" * 21, "checksum": "ab"}, "invalid_key_id"),
            ({"session_key": "aXY=:a2V5"}, "invalid_checksum"),
            ({"session_key": "aXY=:a2V5", "checksum": "a" * 1001}, "invalid_checksum"),
        ],
    )
    async def test_encryption_fields_are_checked(
        self, tus: Tus, alice: Account, app_id: str, meta: dict[str, str], code: str
    ) -> None:
        response = await tus.create(bundle_path(alice, app_id, "1.0.0"), 10, **meta)
        assert error_of(response) == (400, code)

    async def test_unknown_app(self, tus: Tus, alice: Account, app_id: str) -> None:
        response = await tus.create(bundle_path(alice, "com.unknown.app", "1.0.0"), 10)
        assert response.status_code == 404
        assert response.json() == {
            "error": "app_not_found",
            "message": "App not found",
            "moreInfo": {},
        }

    async def test_foreign_org_key_gets_the_unknown_app_answer(
        self, client: httpx.AsyncClient, alice: Account, bob: Account, app_id: str, app: FastAPI
    ) -> None:
        response = await Tus(client, bob.headers).create(bundle_path(alice, app_id, "1.0.0"), 10)
        unknown = await Tus(client, bob.headers).create(
            bundle_path(alice, "com.unknown.app", "1.0.0"), 10
        )
        assert response.status_code == unknown.status_code == 404
        assert response.json() == unknown.json()
        assert alice.org_id not in response.text
        assert await upload_rows(app) == []

    async def test_read_member_cannot_upload(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account, app_id: str
    ) -> None:
        await add_member(app, alice.org_id, bob, "read")
        response = await Tus(client, bob.headers).create(bundle_path(alice, app_id, "1.0.0"), 10)
        assert error_of(response) == (404, "app_not_found")

    async def test_upload_member_may_upload(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account, app_id: str
    ) -> None:
        await add_member(app, alice.org_id, bob, "upload")
        response = await Tus(client, bob.headers).create(bundle_path(alice, app_id, "1.0.0"), 10)
        assert response.status_code == 201, response.text

    async def test_key_limited_to_another_app(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, app_id: str
    ) -> None:
        await create_app_row(client, alice, "com.example.other")
        key = await make_key(client, alice, limited_to_apps=["com.example.other"])
        response = await Tus(client, {"authorization": key["key"]}).create(
            bundle_path(alice, app_id, "1.0.0"), 10
        )
        assert error_of(response) == (404, "app_not_found")

    async def test_existing_version_is_refused_before_any_byte_is_stored(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI
    ) -> None:
        data = web_bundle()
        assert (await tus.upload(bundle_path(alice, app_id, "1.0.0"), data)).status_code == 204
        files_before = await store_of(app).list_prefix("orgs/")
        response = await tus.create(bundle_path(alice, app_id, "1.0.0"), 10)
        assert response.status_code == 400
        assert response.json() == {
            "error": "version_already_exists",
            "message": "Version already exists",
            "moreInfo": {"version": "1.0.0"},
        }
        assert await upload_rows(app) == []
        assert await store_of(app).list_prefix("uploads/") == []
        assert await store_of(app).list_prefix("orgs/") == files_before
        assert await stored(store_of(app), bundle_path(alice, app_id, "1.0.0")) == data

    async def test_deleted_bundle_names_stay_reserved(
        self, tus: Tus, alice: Account, app_id: str, app: FastAPI
    ) -> None:
        assert (
            await tus.upload(bundle_path(alice, app_id, "1.0.0"), web_bundle())
        ).status_code == 204
        await mark_deleted(app, app_id, "1.0.0")
        response = await tus.create(bundle_path(alice, app_id, "1.0.0"), 10)
        assert error_of(response) == (400, "version_already_exists")

    async def test_version_being_uploaded_is_refused(
        self, tus: Tus, client: httpx.AsyncClient, alice: Account, app: FastAPI, app_id: str
    ) -> None:
        first = await tus.create(bundle_path(alice, app_id, "1.0.0"), 10)
        again = await tus.create(bundle_path(alice, app_id, "1.0.0"), 10)
        assert again.status_code == 400
        assert again.json()["error"] == "version_already_exists"
        # The uploader learns where its pending upload is, to resume it.
        assert again.json()["moreInfo"] == {
            "version": "1.0.0",
            "upload_in_progress": True,
            "upload_url": first.headers["location"],
        }

    async def test_other_uploaders_of_the_app_may_take_over_a_pending_upload(
        self,
        tus: Tus,
        client: httpx.AsyncClient,
        alice: Account,
        bob: Account,
        app: FastAPI,
        app_id: str,
    ) -> None:
        first = await tus.create(bundle_path(alice, app_id, "1.0.0"), 10)
        await add_member(app, alice.org_id, bob, "upload")
        bobs = Tus(client, bob.headers)
        again = await bobs.create(bundle_path(alice, app_id, "1.0.0"), 10)
        assert again.status_code == 400
        assert again.json()["moreInfo"]["upload_url"] == first.headers["location"]
        abandoned = local_path(first.headers["location"])
        assert (await bobs.delete(abandoned)).status_code == 204
        assert (await bobs.create(bundle_path(alice, app_id, "1.0.0"), 10)).status_code == 201

    async def test_org_requiring_encryption_refuses_plain_bundles(
        self, tus: Tus, alice: Account, app: FastAPI, app_id: str
    ) -> None:
        async with app.state.sessionmaker() as session, session.begin():
            await session.execute(
                update(Organization)
                .where(Organization.id == alice.org_id)
                .values(enforce_encrypted_bundles=True)
            )
        response = await tus.create(bundle_path(alice, app_id, "1.0.0"), 10)
        assert error_of(response) == (400, "encryption_required")
        encrypted = await tus.create(
            bundle_path(alice, app_id, "1.0.0"),
            10,
            session_key="aXY=:a2V5",
            key_id="MIIBCgKCAQEA",
            checksum="deadbeef" * 32,
        )
        assert encrypted.status_code == 201, encrypted.text


class TestStatus:
    async def test_unknown_and_malformed_ids(self, tus: Tus, app_id: str) -> None:
        for upload_id in (str(uuid.uuid4()), "not-a-uuid"):
            response = await tus.client.get(f"{UPLOADS}{upload_id}", headers={**tus.headers, **TUS})
            assert response.status_code == 404
            assert response.json() == {
                "error": "upload_not_found",
                "message": "Upload not found",
                "moreInfo": {},
            }
            assert (await tus.head(f"{UPLOADS}{upload_id}")).status_code == 404

    async def test_get_reports_the_offset_as_json(
        self, tus: Tus, alice: Account, app_id: str
    ) -> None:
        url = await tus.start(bundle_path(alice, app_id, "1.0.0"), 100)
        assert (await tus.patch(url, 0, b"x" * 30)).status_code == 204
        response = await tus.client.get(url, headers={**tus.headers, **TUS})
        assert response.status_code == 200
        assert response.json() == {"id": url.rsplit("/", 1)[1], "offset": 30, "length": 100}
        assert response.headers["upload-offset"] == "30"

    async def test_another_org_cannot_see_an_upload(
        self, tus: Tus, client: httpx.AsyncClient, alice: Account, bob: Account, app_id: str
    ) -> None:
        url = await tus.start(bundle_path(alice, app_id, "1.0.0"), 100)
        response = await client.get(url, headers={**bob.headers, **TUS})
        assert error_of(response) == (404, "upload_not_found")
        assert (await Tus(client, bob.headers).head(url)).status_code == 404


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
        encrypted_checksum = "ab" * 256
        response = await tus.upload(
            bundle_path(alice, app_id, "1.0.0"),
            ciphertext,
            session_key="aXZpdml2aXY=:ZW5jcnlwdGVka2V5",
            key_id="MIIBCgKCAQEAx",
            checksum=encrypted_checksum,
        )
        assert response.status_code == 204, response.text
        bundle = await bundle_row(app, app_id, "1.0.0")
        assert bundle is not None
        assert (bundle.session_key, bundle.key_id, bundle.checksum, bundle.size) == (
            "aXZpdml2aXY=:ZW5jcnlwdGVka2V5",
            "MIIBCgKCAQEAx",
            encrypted_checksum,
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


class TestPendingUploadPrefixes:
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
