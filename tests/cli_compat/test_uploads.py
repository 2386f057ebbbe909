"""The official CLI's upload path over HTTP (plan §1.3 T11/T12, §1.4, §4.4): its upsert on
``app_versions`` writes a draft, the tus upload turns it into the bundle, finalize checks it.

Requests are those of ``cli-traces-8.68.1.txt`` (the same query strings and bodies); the tus
upload's metadata names only ``filename`` and ``filetype``, as the CLI's does.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from capgo_server.models import Bundle, BundleDraft, Upload
from tests.apps.helpers import add_bundle, create_app, rows, stored_paths
from tests.cli_compat.table_data import sb
from tests.conftest import Account, make_key
from tests.files.support import (
    ENCRYPTED_CHECKSUM,
    SESSION_KEY,
    Tus,
    sha256,
    web_bundle,
)
from tests.organizations._helpers import update_org
from tests.plugin.updates_support import answer

APP = "com.rec.demo"
BOB_APP = "com.bob.demo"
T11 = "/rest/v1/app_versions?on_conflict=name,app_id&app_id=eq.{app}&name=eq.{ver}"
T12 = "/rest/v1/app_versions?name=eq.{ver}&app_id=eq.{app}"
MERGE = {"prefer": "resolution=merge-duplicates"}
KEY_ID = "MIIBCgKCAQEAvvoOgt42"
PACKAGES = [{"name": "@capacitor/app", "version": "7.0.0"}]


def pg(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "details": None, "hint": None}


def denied(what: str) -> dict[str, Any]:
    return pg("42501", f"permission denied: {what}")


def api(key: str) -> dict[str, str]:
    """The CLI's plain HTTP calls: the raw key in Authorization and in capgkey."""
    return {"authorization": key, "capgkey": key}


def declaration(
    owner: Account, version: str, data: bytes | None = None, **changes: Any
) -> dict[str, Any]:
    """The CLI's upsert body (trace up3, step 18)."""
    body: dict[str, Any] = {
        "name": version,
        "app_id": APP,
        "storage_provider": "r2-direct",
        "native_packages": [],
        "owner_org": owner.org_id,
        "user_id": owner.user_id,
        "checksum": sha256(data) if data is not None else "0" * 64,
        "link": None,
        "comment": None,
        "cli_version": "8.68.1",
    }
    body.update(changes)
    return {key: value for key, value in body.items() if value is not ...}


async def declare(
    client: httpx.AsyncClient, key: str, body: Any, app_id: str = APP, version: str = "1.0.1"
) -> httpx.Response:
    return await client.post(
        T11.format(app=app_id, ver=version), json=body, headers=sb(key, **MERGE)
    )


async def name_path(
    client: httpx.AsyncClient, key: str, r2_path: Any, version: str = "1.0.1", app_id: str = APP
) -> httpx.Response:
    body = r2_path if isinstance(r2_path, dict) else {"r2_path": r2_path}
    return await client.patch(T12.format(app=app_id, ver=version), json=body, headers=sb(key))


async def tus_upload(
    client: httpx.AsyncClient, key: str, owner: Account, data: bytes, version: str = "1.0.1"
) -> httpx.Response:
    path = f"orgs/{owner.org_id}/apps/{APP}/{version}.zip"
    return await Tus(client, {"authorization": key}).upload(path, data, filetype="application/zip")


async def finalize(
    client: httpx.AsyncClient, key: str, version: str = "1.0.1", app_id: str = APP
) -> httpx.Response:
    return await client.post(
        "/private/finalize_bundle_upload",
        json={"app_id": app_id, "name": version},
        headers=api(key),
    )


async def delete_failed(
    client: httpx.AsyncClient, key: str, version: str = "1.0.1", app_id: str = APP
) -> httpx.Response:
    return await client.request(
        "DELETE",
        "/private/delete_failed_version",
        json={"app_id": app_id, "name": version},
        headers=api(key),
    )


async def drafts(app: FastAPI) -> list[tuple[str, str]]:
    return [(draft.app_id, draft.name) for draft in await rows(app, BundleDraft)]


async def bundle(app: FastAPI, version: str = "1.0.1") -> Bundle | None:
    found = await rows(app, Bundle, app_id=APP, name=version)
    return found[0] if found else None


async def listed(client: httpx.AsyncClient, owner: Account) -> list[str]:
    response = await client.get("/bundle", params={"app_id": APP}, headers=owner.headers)
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()]


async def serve(client: httpx.AsyncClient, owner: Account, version: str) -> httpx.Response:
    return await client.post(
        "/channel",
        json={"app_id": APP, "channel": "production", "version": version, "public": True},
        headers=owner.headers,
    )


@pytest.fixture
async def demo(client: httpx.AsyncClient, alice: Account) -> str:
    await create_app(client, alice, APP)
    return APP


class TestTheCliFlow:
    async def test_draft_then_tus_then_finalize_makes_the_bundle_devices_get(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, demo: str
    ) -> None:
        data = web_bundle()
        body = declaration(
            alice,
            "1.0.1",
            data,
            native_packages=PACKAGES,
            link="https://example.com/pr/1",
            comment="first",
            min_update_version="1.0.0",
        )
        response = await declare(client, alice.key, body)
        assert (response.status_code, response.content) == (201, b"")
        assert await drafts(app) == [(APP, "1.0.1")]

        # Declared but not uploaded: no bundle anywhere a user or a device could see one.
        assert await bundle(app) is None
        assert await listed(client, alice) == []
        link = await client.post(
            "/files/download_link", json={"app_id": APP, "version": "1.0.1"}, headers=alice.headers
        )
        assert (link.status_code, link.json()["error"]) == (404, "bundle_not_found")
        unserved = await serve(client, alice, "1.0.1")
        assert unserved.status_code == 400, unserved.text

        uploaded = await tus_upload(client, alice.key, alice, data)
        assert uploaded.status_code == 204, uploaded.text
        path = f"orgs/{alice.org_id}/apps/{APP}/1.0.1.zip"
        named = await name_path(client, alice.key, path)
        assert (named.status_code, named.content) == (204, b"")
        done = await finalize(client, alice.key)
        assert (done.status_code, done.json()) == (200, {"status": "ok"})

        made = await bundle(app)
        assert made is not None
        assert (made.checksum, made.r2_path, made.size, made.user_id) == (
            sha256(data),
            path,
            len(data),
            alice.user_id,
        )
        assert (made.native_packages, made.link, made.comment) == (
            PACKAGES,
            "https://example.com/pr/1",
            "first",
        )
        assert (made.min_update_version, made.cli_version, made.session_key) == (
            "1.0.0",
            "8.68.1",
            None,
        )
        assert await drafts(app) == []
        assert await listed(client, alice) == ["1.0.1"]
        served = await serve(client, alice, "1.0.1")
        assert served.status_code == 200, served.text
        offer = await answer(client, app_id=APP, version_name="1.0.0")
        assert (offer["version"], offer["checksum"], offer["session_key"]) == (
            "1.0.1",
            sha256(data),
            "",
        )
        download = await client.get(offer["url"])
        assert (download.status_code, sha256(download.content)) == (200, sha256(data))

    async def test_an_encrypted_draft_gives_devices_its_session_key_and_checksum(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, demo: str
    ) -> None:
        body = declaration(
            alice, "1.0.7", session_key=SESSION_KEY, key_id=KEY_ID, checksum=ENCRYPTED_CHECKSUM
        )
        response = await declare(client, alice.key, body, version="1.0.7")
        assert response.status_code == 201, response.text
        ciphertext = os.urandom(5008)
        uploaded = await tus_upload(client, alice.key, alice, ciphertext, "1.0.7")
        assert uploaded.status_code == 204, uploaded.text
        done = await finalize(client, alice.key, "1.0.7")
        assert (done.status_code, done.json()) == (200, {"status": "ok"})
        made = await bundle(app, "1.0.7")
        assert made is not None
        assert (made.session_key, made.key_id, made.checksum, made.size) == (
            SESSION_KEY,
            KEY_ID,
            ENCRYPTED_CHECKSUM,
            5008,
        )
        assert (await serve(client, alice, "1.0.7")).status_code == 200
        offer = await answer(client, app_id=APP, version_name="1.0.0")
        assert (offer["version"], offer["session_key"], offer["checksum"]) == (
            "1.0.7",
            SESSION_KEY,
            ENCRYPTED_CHECKSUM,
        )

    async def test_a_plain_zip_declared_encrypted_is_refused_and_the_draft_kept(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, demo: str
    ) -> None:
        body = declaration(alice, "1.0.7", session_key=SESSION_KEY, checksum=ENCRYPTED_CHECKSUM)
        assert (await declare(client, alice.key, body, version="1.0.7")).status_code == 201
        data = web_bundle(padding=5000)
        data += b"\0" * (-len(data) % 16)  # a length AES-CBC could have produced
        uploaded = await tus_upload(client, alice.key, alice, data, "1.0.7")
        assert uploaded.status_code == 400
        assert uploaded.json()["error"] == "invalid_bundle_zip"
        assert await bundle(app, "1.0.7") is None
        assert await drafts(app) == [(APP, "1.0.7")]

    async def test_the_declared_checksum_is_verified(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, demo: str
    ) -> None:
        body = declaration(alice, "1.0.1", b"another zip")
        assert (await declare(client, alice.key, body)).status_code == 201
        data = web_bundle()
        uploaded = await tus_upload(client, alice.key, alice, data)
        assert uploaded.status_code == 400
        assert uploaded.json() == {
            "error": "checksum_mismatch",
            "message": "The uploaded file does not match the checksum given when the upload began",
            "moreInfo": {"expected": sha256(b"another zip"), "actual": sha256(data)},
        }
        assert await bundle(app) is None
        # The CLI then finalizes nothing: the draft is discarded.
        done = await finalize(client, alice.key)
        assert done.status_code == 400
        assert done.json()["error"] == "no_bundle_content"
        assert await drafts(app) == []

    async def test_a_crc32_checksum_is_kept_for_the_updaters_that_compare_it(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, demo: str
    ) -> None:
        body = declaration(alice, "1.0.1", checksum="3885ee49")
        assert (await declare(client, alice.key, body)).status_code == 201
        assert (await tus_upload(client, alice.key, alice, web_bundle())).status_code == 204
        made = await bundle(app)
        assert made is not None
        assert made.checksum == "3885ee49"

    async def test_a_later_upsert_replaces_the_draft(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, demo: str
    ) -> None:
        encrypted = declaration(
            alice, "1.0.1", session_key=SESSION_KEY, checksum=ENCRYPTED_CHECKSUM
        )
        assert (await declare(client, alice.key, encrypted)).status_code == 201
        data = web_bundle()
        plain = declaration(alice, "1.0.1", data, comment="again")
        assert (await declare(client, alice.key, plain)).status_code == 201
        [draft] = await rows(app, BundleDraft)
        assert (draft.session_key, draft.checksum, draft.comment) == (None, sha256(data), "again")
        assert (await tus_upload(client, alice.key, alice, data)).status_code == 204

    async def test_version_8_35_finalizes_with_a_second_upsert(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, demo: str
    ) -> None:
        data = web_bundle()
        assert (
            await declare(client, alice.key, declaration(alice, "1.0.1", data))
        ).status_code == 201
        assert (await tus_upload(client, alice.key, alice, data)).status_code == 204
        final = declaration(alice, "1.0.1", data, storage_provider="r2", manifest=None)
        response = await declare(client, alice.key, final)
        assert (response.status_code, response.content) == (201, b"")
        assert await bundle(app) is not None

        # --delta-only on 8.35: nothing uploaded, then the same finalizing upsert.
        assert (
            await declare(client, alice.key, declaration(alice, "1.0.2"), version="1.0.2")
        ).status_code == 201
        refused = await declare(
            client, alice.key, declaration(alice, "1.0.2", storage_provider="r2"), version="1.0.2"
        )
        assert refused.status_code == 400
        assert refused.json()["code"] == "no_bundle_content"
        assert await drafts(app) == []  # discarded, and that was committed
        assert await listed(client, alice) == ["1.0.1"]


class TestFinalize:
    async def test_delta_only_uploads_nothing_and_is_refused(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, demo: str
    ) -> None:
        assert (
            await declare(client, alice.key, declaration(alice, "1.0.4"), version="1.0.4")
        ).status_code == 201
        response = await finalize(client, alice.key, "1.0.4")
        assert response.status_code == 400
        assert response.json() == {
            "error": "no_bundle_content",
            "message": "Nothing was uploaded for bundle 1.0.4. This server does not take delta "
            "(partial) uploads, so --delta-only uploads nothing: upload the whole bundle (without "
            "--delta-only). The bundle was not created.",
            "moreInfo": {"app_id": APP, "version": "1.0.4"},
        }
        assert await drafts(app) == []
        assert await listed(client, alice) == []
        # The version is still free.
        again = await declare(client, alice.key, declaration(alice, "1.0.4"), version="1.0.4")
        assert again.status_code == 201

    async def test_refusals(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, bob: Account, demo: str
    ) -> None:
        nothing = await finalize(client, alice.key, "9.9.9")
        assert nothing.json() == {
            "error": "bundle_not_found",
            "message": f"Bundle 9.9.9 of app {APP} does not exist (or was deleted)",
            "moreInfo": {"app_id": APP, "version": "9.9.9"},
        }
        assert nothing.status_code == 404
        await add_bundle(app, APP, "0.9.0", deleted=True)
        gone = await finalize(client, alice.key, "0.9.0")
        assert (gone.status_code, gone.json()["error"]) == (404, "bundle_not_found")
        await add_bundle(app, APP, "1.0.0")  # a row whose file was never stored
        missing = await finalize(client, alice.key, "1.0.0")
        assert (missing.status_code, missing.json()["message"]) == (
            400,
            "The stored file of bundle 1.0.0 is missing or incomplete",
        )
        foreign = await finalize(client, bob.key, "1.0.0")
        assert (foreign.status_code, foreign.json()["error"]) == (404, "app_not_found")
        reader = (await make_key(client, alice, mode="read"))["key"]
        read_only = await finalize(client, reader, "1.0.0")
        assert (read_only.status_code, read_only.json()["error"]) == (401, "invalid_apikey")

    async def test_an_unfinished_upload_is_not_finalized(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, demo: str
    ) -> None:
        data = web_bundle()
        assert (
            await declare(client, alice.key, declaration(alice, "1.0.1", data))
        ).status_code == 201
        tus = Tus(client, {"authorization": alice.key})
        url = await tus.start(f"orgs/{alice.org_id}/apps/{APP}/1.0.1.zip", len(data))
        assert (await tus.patch(url, 0, data[:1000])).status_code == 204
        response = await finalize(client, alice.key)
        assert response.status_code == 409
        assert response.json()["moreInfo"] == {"offset": 1000, "length": len(data)}
        assert await drafts(app) == [(APP, "1.0.1")]


class TestDeleteFailedVersion:
    async def test_drops_the_draft_and_the_unfinished_upload(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, demo: str
    ) -> None:
        data = web_bundle()
        assert (
            await declare(client, alice.key, declaration(alice, "1.0.1", data))
        ).status_code == 201
        tus = Tus(client, {"authorization": alice.key})
        url = await tus.start(f"orgs/{alice.org_id}/apps/{APP}/1.0.1.zip", len(data))
        assert (await tus.patch(url, 0, data[:1000])).status_code == 204
        response = await delete_failed(client, alice.key)
        assert (response.status_code, response.json()) == (200, {"status": "ok"})
        assert (await drafts(app), await rows(app, Upload)) == ([], [])
        assert await stored_paths(app, "uploads/") == []
        assert (await tus.head(url)).status_code == 404
        again = await delete_failed(client, alice.key)
        assert (again.status_code, again.json()["error"]) == (404, "bundle_not_found")
        # The version is free again.
        assert (
            await declare(client, alice.key, declaration(alice, "1.0.1", data))
        ).status_code == 201
        assert (await tus_upload(client, alice.key, alice, data)).status_code == 204

    async def test_a_finished_bundle_is_refused(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, bob: Account, demo: str
    ) -> None:
        await add_bundle(app, APP, "1.0.1")
        response = await delete_failed(client, alice.key)
        assert response.status_code == 400
        assert response.json() == {
            "error": "version_already_uploaded",
            "message": "Bundle 1.0.1 was uploaded completely (or deleted since): only unfinished "
            "uploads are discarded here; delete a bundle with DELETE /bundle",
            "moreInfo": {"app_id": APP, "version": "1.0.1"},
        }
        assert await bundle(app) is not None
        foreign = await delete_failed(client, bob.key)
        assert (foreign.status_code, foreign.json()["error"]) == (404, "app_not_found")


class TestDeclareRefusals:
    @pytest.mark.parametrize(
        ("changes", "what"),
        [
            ({"app_id": "com.rec.other"}, "app_id and name must be those of the request's filters"),
            ({"name": "1.0.2"}, "app_id and name must be those of the request's filters"),
            (
                {"user_id": "00000000-0000-4000-8000-000000000000"},
                "user_id must be the user of the API key",
            ),
            (
                {"owner_org": "8c0e7a3e-2b1f-4d3a-9a51-6f0f2f1c9b77"},
                "owner_org must be the organization that owns the app",
            ),
        ],
    )
    async def test_forged_identity_is_refused(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        alice: Account,
        demo: str,
        changes: dict[str, Any],
        what: str,
    ) -> None:
        response = await declare(client, alice.key, declaration(alice, "1.0.1", **changes))
        assert (response.status_code, response.json()) == (403, denied(what))
        assert await drafts(app) == []

    async def test_another_tenants_org_user_and_app(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, bob: Account, demo: str
    ) -> None:
        bobs_org = declaration(alice, "1.0.1", owner_org=bob.org_id)
        response = await declare(client, alice.key, bobs_org)
        assert response.json() == denied("owner_org must be the organization that owns the app")
        as_bob = declaration(alice, "1.0.1", user_id=bob.user_id)
        response = await declare(client, alice.key, as_bob)
        assert response.json() == denied("user_id must be the user of the API key")
        # Bob writing into alice's app, with his own or her identity: the same refusal.
        for body in (declaration(bob, "1.0.1"), declaration(alice, "1.0.1")):
            response = await declare(client, bob.key, body)
            assert (response.status_code, response.json()) == (
                403,
                denied(f"this key may not add bundles to {APP}"),
            )
        await create_app(client, bob, BOB_APP)
        response = await declare(
            client, alice.key, declaration(bob, "1.0.1", app_id=BOB_APP), app_id=BOB_APP
        )
        assert response.json() == denied(f"this key may not add bundles to {BOB_APP}")
        assert await drafts(app) == []

    async def test_key_modes(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, demo: str
    ) -> None:
        reader = (await make_key(client, alice, mode="read"))["key"]
        response = await declare(client, reader, declaration(alice, "1.0.1"))
        assert (response.status_code, response.json()) == (
            403,
            denied(f"this key may not add bundles to {APP}"),
        )
        limited = (await make_key(client, alice, limited_to_apps=["com.rec.other"]))["key"]
        response = await declare(client, limited, declaration(alice, "1.0.1"))
        assert response.status_code == 403
        uploader = (await make_key(client, alice, mode="upload"))["key"]
        response = await declare(client, uploader, declaration(alice, "1.0.1"))
        assert response.status_code == 201, response.text
        assert await drafts(app) == [(APP, "1.0.1")]

    async def test_an_existing_version_is_a_conflict(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, demo: str
    ) -> None:
        await add_bundle(app, APP, "1.0.1")
        await add_bundle(app, APP, "1.0.0", deleted=True)
        for version in ("1.0.1", "1.0.0"):
            response = await declare(
                client, alice.key, declaration(alice, version), version=version
            )
            assert response.status_code == 409
            assert response.json() == pg(
                "23505",
                "duplicate key value violates unique constraint: bundle "
                f"{version} already exists for app {APP} (a deleted bundle keeps its name); "
                "upload under a new version",
            )
        assert await drafts(app) == []

    @pytest.mark.parametrize(
        ("changes", "status", "code"),
        [
            ({"bucket_id": "x"}, 400, "PGRST204"),
            ({"storage_provider": "supabase"}, 400, "invalid_storage_provider"),
            ({"manifest": [{"file_name": "a"}]}, 400, "delta_not_supported"),
            ({"checksum": "not-hex"}, 400, "invalid_checksum"),
            ({"checksum": 12}, 400, "invalid_body"),
            ({"native_packages": "x"}, 400, "invalid_body"),
            ({"comment": "nul\u0000"}, 400, "invalid_body"),
            ({"session_key": "abc", "checksum": ENCRYPTED_CHECKSUM}, 400, "invalid_session_key"),
            ({"key_id": KEY_ID}, 400, "invalid_session_key"),
        ],
    )
    async def test_malformed_fields(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        alice: Account,
        demo: str,
        changes: dict[str, Any],
        status: int,
        code: str,
    ) -> None:
        response = await declare(client, alice.key, declaration(alice, "1.0.1", **changes))
        assert (response.status_code, response.json()["code"]) == (status, code)
        assert set(response.json()) == {"code", "message", "details", "hint"}
        assert await drafts(app) == []

    async def test_a_version_that_is_not_semver(
        self, client: httpx.AsyncClient, alice: Account, demo: str
    ) -> None:
        response = await declare(client, alice.key, declaration(alice, "v1"), version="v1")
        assert (response.status_code, response.json()["code"]) == (400, "invalid_version_format")

    async def test_the_orgs_encryption_policy(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, demo: str
    ) -> None:
        policy = await update_org(client, alice, alice.org_id, enforce_encrypted_bundles=True)
        assert policy.status_code == 200, policy.text
        response = await declare(client, alice.key, declaration(alice, "1.0.1"))
        assert (response.status_code, response.json()["code"]) == (400, "encryption_required")
        encrypted = declaration(
            alice, "1.0.1", session_key=SESSION_KEY, checksum=ENCRYPTED_CHECKSUM
        )
        assert (await declare(client, alice.key, encrypted)).status_code == 201


class TestUploadPath:
    @pytest.mark.parametrize(
        "forged",
        [
            "orgs/8c0e7a3e-2b1f-4d3a-9a51-6f0f2f1c9b77/apps/com.rec.demo/1.0.1.zip",
            "orgs/{org}/apps/com.rec.other/1.0.1.zip",
            "orgs/{org}/apps/com.rec.demo/1.0.2.zip",
            "orgs/{org}/apps/com.rec.demo/../../x/1.0.1.zip",
            "orgs/{org}/apps/com.rec.demo/1.0.1.zip/..",
        ],
    )
    async def test_another_path_is_refused(
        self, client: httpx.AsyncClient, alice: Account, demo: str, forged: str
    ) -> None:
        assert (await declare(client, alice.key, declaration(alice, "1.0.1"))).status_code == 201
        response = await name_path(client, alice.key, forged.format(org=alice.org_id))
        assert (response.status_code, response.json()) == (
            403,
            denied("r2_path must be orgs/<the app's organization>/apps/<app>/<version>.zip"),
        )

    async def test_the_versions_own_path_before_and_after_the_upload(
        self, client: httpx.AsyncClient, alice: Account, bob: Account, demo: str
    ) -> None:
        path = f"orgs/{alice.org_id}/apps/{APP}/1.0.1.zip"
        nothing = await name_path(client, alice.key, path)
        assert (nothing.status_code, nothing.json()) == (
            404,
            pg("PGRST116", f"no row matches: bundle 1.0.1 of app {APP}"),
        )
        data = web_bundle()
        assert (
            await declare(client, alice.key, declaration(alice, "1.0.1", data))
        ).status_code == 201
        assert (await name_path(client, alice.key, path)).status_code == 204
        extra = await name_path(client, alice.key, {"r2_path": path, "checksum": "x"})
        assert (extra.status_code, extra.json()) == (
            403,
            denied("only r2_path may be set, and only to the bundle's own path"),
        )
        foreign = await name_path(client, bob.key, path)
        assert (foreign.status_code, foreign.json()) == (
            403,
            denied(f"this key may not add bundles to {APP}"),
        )
        assert (await tus_upload(client, alice.key, alice, data)).status_code == 204
        assert (await name_path(client, alice.key, path)).status_code == 204


class TestExternal:
    async def test_an_external_bundle_needs_no_upload(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, demo: str
    ) -> None:
        body = declaration(
            alice,
            "1.0.1",
            storage_provider="external",
            external_url="https://cdn.example.com/1.0.1.zip",
            checksum=...,
            native_packages=PACKAGES,
        )
        response = await declare(client, alice.key, body)
        assert (response.status_code, response.content) == (201, b"")
        made = await bundle(app)
        assert made is not None
        assert (made.external_url, made.checksum, made.storage_provider, made.native_packages) == (
            "https://cdn.example.com/1.0.1.zip",
            None,
            "external",
            PACKAGES,
        )
        assert await drafts(app) == []
        again = await declare(client, alice.key, body)
        assert again.status_code == 409

    async def test_external_rules(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, demo: str
    ) -> None:
        http = declaration(
            alice, "1.0.1", storage_provider="external", external_url="http://cdn.example.com/x"
        )
        response = await declare(client, alice.key, http)
        assert (response.status_code, response.json()["code"]) == (400, "invalid_protocol")
        # As POST /bundle: registering a URL needs write, which an upload key lacks.
        uploader = (await make_key(client, alice, mode="upload"))["key"]
        https = {**http, "external_url": "https://cdn.example.com/x"}
        response = await declare(client, uploader, https)
        assert response.status_code == 403
        assert await bundle(app) is None
