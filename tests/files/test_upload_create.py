"""The tus upload endpoint, part 1: discovery (OPTIONS, /files/config), creating an upload and
reading its status (issue 3: bundle storage and upload)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from capgo_server.models import Organization
from tests.conftest import Account, error_of, make_key
from tests.files.support import (
    ENCRYPTED_CHECKSUM,
    SESSION_KEY,
    TUS,
    UPLOADS,
    Tus,
    add_member,
    bundle_path,
    create_app_row,
    local_path,
    mark_deleted,
    metadata,
    store_of,
    stored,
    upload_rows,
    web_bundle,
)


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
        assert location.startswith(f"{app.state.settings.public_url}{UPLOADS}")
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
            (
                {"session_key": SESSION_KEY, "key_id": "x" * 21, "checksum": ENCRYPTED_CHECKSUM},
                "invalid_key_id",
            ),
            ({"session_key": SESSION_KEY}, "invalid_checksum"),
            ({"session_key": SESSION_KEY, "checksum": "a" * 1001}, "invalid_checksum"),
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

    async def test_upload_urls_are_on_the_public_url_whatever_the_host_header(
        self, tus: Tus, alice: Account, app: FastAPI, app_id: str
    ) -> None:
        # The client picks Host; an upload URL built on it would send the uploader's next PATCH
        # (API key included) wherever the forger chose.
        forged = {"Host": "attacker.example"}
        uploads = f"{app.state.settings.public_url}{UPLOADS}"
        first = await tus.create(bundle_path(alice, app_id, "1.0.0"), 10, extra_headers=forged)
        assert first.status_code == 201, first.text
        upload_id = first.headers["location"].removeprefix(uploads)
        assert first.headers["location"] == f"{uploads}{upload_id}"
        assert uuid.UUID(upload_id)
        again = await tus.create(bundle_path(alice, app_id, "1.0.0"), 10, extra_headers=forged)
        assert error_of(again) == (400, "version_already_exists")
        assert again.json()["moreInfo"]["upload_url"] == f"{uploads}{upload_id}"

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
            16,
            session_key=SESSION_KEY,
            key_id="MIIBCgKCAQEA",
            checksum=ENCRYPTED_CHECKSUM,
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
