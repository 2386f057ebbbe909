"""Signed bundle downloads: ``POST /files/download_link`` and ``/files/read/attachments/...``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from capgo_server.app import create_app
from capgo_server.clock import utcnow
from capgo_server.files import signing
from capgo_server.models import Bundle, DailyBandwidth
from capgo_server.settings import Settings
from capgo_server.storage.s3 import S3BundleStore
from tests.conftest import Account, error_of, make_key
from tests.files.support import (
    Tus,
    bundle_path,
    bundle_row,
    create_app_row,
    local_path,
    mark_deleted,
    sha256,
    web_bundle,
)
from tests.storage.s3_support import S3Server

APP_ID = "com.example.app"
#: One digit past Python's limit on converting strings to integers.
DIGITS_4301 = "9" * 4301


@pytest.fixture
async def data() -> bytes:
    return web_bundle(120_000)


@pytest.fixture
async def path(app: FastAPI, client: httpx.AsyncClient, alice: Account, data: bytes) -> str:
    """A live bundle ``1.0.0`` of alice's app, uploaded through tus; its stored path."""
    await create_app_row(client, alice, APP_ID)
    stored_at = bundle_path(alice, APP_ID, "1.0.0")
    assert (await Tus(client, alice.headers).upload(stored_at, data)).status_code == 204
    return stored_at


async def link(client: httpx.AsyncClient, owner: Account, version: str = "1.0.0") -> str:
    response = await client.post(
        "/files/download_link", json={"app_id": APP_ID, "version": version}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    url: str = response.json()["url"]
    return local_path(url)


async def bandwidth(app: FastAPI) -> dict[str, int]:
    async with app.state.sessionmaker() as session:
        rows = await session.execute(select(DailyBandwidth))
        return {row.app_id: row.bandwidth for row in rows.scalars()}


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    query.update(changes)
    return parts.path + "?" + "&".join(f"{key}={value}" for key, value in query.items())


class TestDownloadLink:
    async def test_returns_a_signed_url(
        self, client: httpx.AsyncClient, alice: Account, path: str, settings: Settings
    ) -> None:
        before = utcnow()
        response = await client.post(
            "/files/download_link",
            json={"app_id": APP_ID, "version": "1.0.0"},
            headers=alice.headers,
        )
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"url", "expires_at"}
        assert body["url"].startswith(f"{settings.public_url}/files/read/attachments/{path}?exp=")
        assert "sig=" in body["url"]
        expires = before + timedelta(seconds=settings.download_url_ttl_seconds)
        assert body["expires_at"][:16] == expires.strftime("%Y-%m-%dT%H:%M")
        assert body["expires_at"].endswith("Z")

    async def test_a_read_key_may_ask(
        self, client: httpx.AsyncClient, alice: Account, path: str
    ) -> None:
        key = await make_key(client, alice, mode="read")
        response = await client.post(
            "/files/download_link",
            json={"app_id": APP_ID, "version": "1.0.0"},
            headers={"authorization": key["key"]},
        )
        assert response.status_code == 200

    async def test_an_upload_key_may_not(
        self, client: httpx.AsyncClient, alice: Account, path: str
    ) -> None:
        key = await make_key(client, alice, mode="upload")
        response = await client.post(
            "/files/download_link",
            json={"app_id": APP_ID, "version": "1.0.0"},
            headers={"authorization": key["key"]},
        )
        assert error_of(response) == (401, "invalid_apikey")

    async def test_foreign_and_unknown_apps_get_the_same_answer(
        self, client: httpx.AsyncClient, bob: Account, path: str
    ) -> None:
        foreign = await client.post(
            "/files/download_link", json={"app_id": APP_ID, "version": "1.0.0"}, headers=bob.headers
        )
        unknown = await client.post(
            "/files/download_link",
            json={"app_id": "com.unknown.app", "version": "1.0.0"},
            headers=bob.headers,
        )
        assert foreign.status_code == unknown.status_code == 400
        assert foreign.json() == {
            "error": "cannot_access_app",
            "message": "You can't access this app",
            "moreInfo": {"app_id": APP_ID},
        }
        assert unknown.json()["moreInfo"] == {"app_id": "com.unknown.app"}
        assert "sig=" not in foreign.text

    @pytest.mark.parametrize("version", ["9.9.9", "builtin", "unknown"])
    async def test_versions_without_a_file(
        self, client: httpx.AsyncClient, alice: Account, path: str, version: str
    ) -> None:
        response = await client.post(
            "/files/download_link",
            json={"app_id": APP_ID, "version": version},
            headers=alice.headers,
        )
        assert response.status_code == 404
        assert response.json() == {
            "error": "bundle_not_found",
            "message": "Bundle not found",
            "moreInfo": {"app_id": APP_ID, "version": version},
        }

    async def test_deleted_bundle_has_no_link(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, path: str
    ) -> None:
        await mark_deleted(app, APP_ID, "1.0.0")
        response = await client.post(
            "/files/download_link",
            json={"app_id": APP_ID, "version": "1.0.0"},
            headers=alice.headers,
        )
        assert error_of(response) == (404, "bundle_not_found")

    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            ({"version": "1.0.0"}, (400, "missing_app_id")),
            ({"app_id": "not an id", "version": "1.0.0"}, (400, "invalid_app_id")),
            ({"app_id": APP_ID}, (400, "invalid_body")),
            ({"app_id": APP_ID, "version": ""}, (400, "invalid_body")),
            ({"app_id": APP_ID, "version": 5}, (400, "invalid_body")),
        ],
    )
    async def test_invalid_bodies(
        self,
        client: httpx.AsyncClient,
        alice: Account,
        body: dict[str, object],
        expected: tuple[int, str],
    ) -> None:
        response = await client.post("/files/download_link", json=body, headers=alice.headers)
        assert error_of(response) == expected

    async def test_body_must_be_json(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await client.post("/files/download_link", content=b"{", headers=alice.headers)
        assert error_of(response) == (400, "invalid_json_parse_body")


class TestRead:
    async def test_serves_the_whole_file(
        self, client: httpx.AsyncClient, alice: Account, path: str, data: bytes, app: FastAPI
    ) -> None:
        response = await client.get(await link(client, alice))
        assert response.status_code == 200
        assert response.content == data
        assert sha256(response.content) == sha256(data)
        assert response.headers["content-length"] == str(len(data))
        assert response.headers["accept-ranges"] == "bytes"
        assert response.headers["content-type"] == "application/zip"
        assert await bandwidth(app) == {APP_ID: len(data)}

    async def test_head_describes_the_file_without_counting(
        self, client: httpx.AsyncClient, alice: Account, path: str, data: bytes, app: FastAPI
    ) -> None:
        response = await client.head(await link(client, alice))
        assert response.status_code == 200
        assert response.content == b""
        assert response.headers["content-length"] == str(len(data))
        assert response.headers["accept-ranges"] == "bytes"
        assert await bandwidth(app) == {}

    @pytest.mark.parametrize(
        ("header", "start", "end"),
        [
            ("bytes=0-99", 0, 99),
            ("bytes=1000-1999", 1000, 1999),
            ("bytes=5000-", 5000, None),
            ("bytes=-300", -300, None),
            ("bytes=10-99999999", 10, None),
            ("bytes=-99999999", 0, None),
            # Past Python's 4,300-digit int conversion limit (was a 500).
            ("bytes=10-" + DIGITS_4301, 10, None),
            ("bytes=-" + DIGITS_4301, 0, None),
        ],
    )
    async def test_single_ranges(
        self,
        client: httpx.AsyncClient,
        alice: Account,
        path: str,
        data: bytes,
        app: FastAPI,
        header: str,
        start: int,
        end: int | None,
    ) -> None:
        expected = data[start:] if end is None else data[start : end + 1]
        first = len(data) + start if start < 0 else start
        response = await client.get(await link(client, alice), headers={"Range": header})
        assert response.status_code == 206
        assert response.content == expected
        assert response.headers["content-length"] == str(len(expected))
        assert response.headers["content-range"] == (
            f"bytes {first}-{first + len(expected) - 1}/{len(data)}"
        )
        assert await bandwidth(app) == {APP_ID: len(expected)}

    @pytest.mark.parametrize(
        "header", ["bytes=999999999-", "bytes=-0", "bytes=500-100", f"bytes={DIGITS_4301}-"]
    )
    async def test_unsatisfiable_ranges(
        self,
        client: httpx.AsyncClient,
        alice: Account,
        path: str,
        data: bytes,
        app: FastAPI,
        header: str,
    ) -> None:
        response = await client.get(await link(client, alice), headers={"Range": header})
        assert response.status_code == 416
        assert response.json()["error"] == "range_not_satisfiable"
        assert response.headers["content-range"] == f"bytes */{len(data)}"
        assert await bandwidth(app) == {}

    @pytest.mark.parametrize("header", ["pages=1-2", "bytes=0-1,5-6", "bytes=a-b", "bytes=-"])
    async def test_other_range_headers_get_the_whole_file(
        self, client: httpx.AsyncClient, alice: Account, path: str, data: bytes, header: str
    ) -> None:
        response = await client.get(await link(client, alice), headers={"Range": header})
        assert response.status_code == 200
        assert response.content == data

    async def test_bandwidth_counts_every_byte_served(
        self, client: httpx.AsyncClient, alice: Account, path: str, data: bytes, app: FastAPI
    ) -> None:
        url = await link(client, alice)
        await client.get(url)
        await client.get(url, headers={"Range": "bytes=0-1023"})
        await client.get(url, headers={"Range": "bytes=-10"})
        await client.head(url)
        await client.get(with_query(url, sig="forged"))
        assert await bandwidth(app) == {APP_ID: len(data) + 1024 + 10}

    async def test_forged_signature(
        self, client: httpx.AsyncClient, alice: Account, path: str, app: FastAPI
    ) -> None:
        url = await link(client, alice)
        for forged in (
            with_query(url, sig="A" * 43),
            with_query(url, exp="9999999999"),
            url.split("?")[0],
            with_query(url, sig=""),
        ):
            response = await client.get(forged)
            assert response.status_code == 403
            assert response.json() == {
                "error": "invalid_signature",
                "message": "This download URL is not valid",
                "moreInfo": {},
            }
        assert await bandwidth(app) == {}

    async def test_a_signature_does_not_open_another_file(
        self, client: httpx.AsyncClient, alice: Account, path: str, data: bytes
    ) -> None:
        other = bundle_path(alice, APP_ID, "1.0.1")
        assert (await Tus(client, alice.headers).upload(other, data)).status_code == 204
        url = await link(client, alice)
        tampered = url.replace("/1.0.0.zip", "/1.0.1.zip")
        assert tampered != url
        assert error_of(await client.get(tampered)) == (403, "invalid_signature")

    async def test_device_id_is_covered_by_the_signature(
        self, client: httpx.AsyncClient, path: str, settings: Settings, data: bytes
    ) -> None:
        device = "00009a6b-eefe-490a-9c60-8e965132ae51"
        url = local_path(signing.sign_path(settings, path, device).url)
        assert (await client.get(url)).content == data
        other = with_query(url, device_id="11119a6b-eefe-490a-9c60-8e965132ae51")
        assert error_of(await client.get(other)) == (403, "invalid_signature")

    async def test_expired_url(
        self, client: httpx.AsyncClient, path: str, settings: Settings, app: FastAPI
    ) -> None:
        old = signing.sign_path(settings, path, now=utcnow() - timedelta(days=8))
        response = await client.get(local_path(old.url))
        assert response.status_code == 403
        assert response.json() == {
            "error": "url_expired",
            "message": "This download URL has expired",
            "moreInfo": {},
        }
        assert await bandwidth(app) == {}

    async def test_deleted_bundle_is_never_served(
        self, client: httpx.AsyncClient, alice: Account, path: str, app: FastAPI
    ) -> None:
        url = await link(client, alice)
        await mark_deleted(app, APP_ID, "1.0.0")
        for method in ("GET", "HEAD"):
            response = await client.request(method, url)
            assert response.status_code == 404
        assert error_of(await client.get(url)) == (404, "not_found")
        assert await bandwidth(app) == {}

    async def test_a_signed_path_that_is_no_bundle(
        self, client: httpx.AsyncClient, alice: Account, path: str, settings: Settings
    ) -> None:
        stray = f"orgs/{alice.org_id}/apps/{APP_ID}/stray.zip"
        url = local_path(signing.sign_path(settings, stray).url)
        assert error_of(await client.get(url)) == (404, "not_found")

    @pytest.mark.parametrize(
        "raw",
        ["orgs/%2e%2e/%2e%2e/etc/passwd", "orgs/x/%2e%2e/y.zip", "a//b.zip", "%2fetc%2fpasswd"],
    )
    async def test_path_traversal_is_refused(
        self, client: httpx.AsyncClient, path: str, settings: Settings, raw: str
    ) -> None:
        decoded = raw.replace("%2e", ".").replace("%2f", "/")
        signed = urlsplit(signing.sign_path(settings, decoded).url)
        response = await client.get(f"/files/read/attachments/{raw}?{signed.query}")
        assert error_of(response) == (404, "not_found")


class TestDownloadUrl:
    async def test_local_bundles_use_the_signed_endpoint(
        self, app: FastAPI, path: str, settings: Settings, client: httpx.AsyncClient, data: bytes
    ) -> None:
        bundle = await bundle_row(app, APP_ID, "1.0.0")
        assert bundle is not None
        url = signing.download_url(settings, bundle, "dev-1")
        assert url.startswith(f"{settings.public_url}/files/read/attachments/{path}?")
        assert "device_id=dev-1" in url
        assert (await client.get(local_path(url))).content == data

    def test_a_bundle_without_a_file_has_no_url(self, app: FastAPI, settings: Settings) -> None:
        bundle = Bundle(id=7, app_id=APP_ID, name="1.0.0", owner_org="o", external_url="https://x")
        with pytest.raises(ValueError, match="no stored file"):
            signing.download_url(settings, bundle, None)


@pytest.fixture
async def s3_app(
    app: FastAPI, settings: Settings, database_url: str, s3_server: S3Server
) -> AsyncIterator[FastAPI]:
    """The server with bundles in S3 (``app`` is requested so the tables are emptied after)."""
    s3_settings = s3_server.settings(
        database_url=database_url, data_dir=settings.data_dir, secret=settings.secret
    )
    application = create_app(s3_settings)
    async with application.router.lifespan_context(application):
        yield application


class TestS3Storage:
    async def test_upload_and_download_through_s3(
        self, s3_app: FastAPI, alice: Account, s3_server: S3Server
    ) -> None:
        store = s3_app.state.bundle_store
        assert isinstance(store, S3BundleStore)
        data = web_bundle(300_000)
        stored_at = bundle_path(alice, APP_ID, "3.0.0")
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=s3_app), base_url="http://capgo.test"
        ) as client:
            await create_app_row(client, alice, APP_ID)
            tus = Tus(client, alice.headers)
            url = await tus.start(stored_at, len(data), checksum=sha256(data))
            assert (await tus.patch(url, 0, data[:100_000])).status_code == 204
            assert await store.list_prefix("uploads/") == [
                f"uploads/{url.rsplit('/', 1)[1]}/{0:020d}"
            ]
            assert (
                await tus.send_all(url, data, 80_000, start=await tus.offset(url))
            ).status_code == 204

            bundle = await bundle_row(s3_app, APP_ID, "3.0.0")
            assert bundle is not None
            assert (bundle.storage_provider, bundle.size, bundle.checksum) == (
                "s3",
                len(data),
                sha256(data),
            )
            objects = s3_server.client().list_objects_v2(
                Bucket=s3_server.bucket, Prefix=store.prefix
            )
            assert [item["Key"] for item in objects["Contents"]] == [store.prefix + stored_at]

            download = await link(client, alice, "3.0.0")
            full = await client.get(download)
            partial = await client.get(download, headers={"Range": "bytes=100-199"})
        assert full.status_code == 200
        assert full.content == data
        assert full.headers["content-length"] == str(len(data))
        assert partial.status_code == 206
        assert partial.content == data[100:200]
        assert await bandwidth(s3_app) == {APP_ID: len(data) + 100}
