"""``POST /bundle``: register a bundle hosted at an external HTTPS URL (spec §3.6): validation
order, strict semver names, the organization's encrypted-bundle policy, reserved names."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from tests.bundles.helpers import (
    APP_ID,
    BUNDLE_FIELDS,
    OTHER_APP_ID,
    UNKNOWN_APP_ID,
    create_app,
    create_bundle,
    error,
    headers,
    no_access,
    post_bundle,
)
from tests.conftest import Account, error_of, make_account, make_key
from tests.organizations._helpers import add_member, update_org

VALID_SEMVER = [
    "0.0.0",
    "1.0.0",
    "1.0.0-alpha.1",
    "1.0.0+build.1",
    "10.20.30",
    "1.0.0-0.3.7",
    "1.1.2-prerelease+meta",
    "1.0.0-x-y-z.--",
    "1.2.3-beta+exp.sha.5114f85",
    "99999999999.0.0",
    "1.0.0-" + "a" * 100,
]
INVALID_SEMVER = [
    "v1.2.3",
    "1",
    "1.2",
    "01.0.0",
    "1.02.0",
    " 1.0.0",
    "1.0.0 ",
    "1.0.0-01",
    "1.0.0+",
    "1.0.0-",
    "^1.0.0",
    "~1.0.0",
    ">=1.0.0",
    "1.x",
    "latest",
    "1.0.0\n",
    "1.0.0.0",
    "builtin",
    "unknown",
    "\u0661.\u0660.\u0660",  # Arabic-Indic digits: Python's \d would accept them
]
SEMVER_MESSAGE = "Version must be valid semver format (e.g., 1.0.0, 1.0.0-alpha.1)"
FULL_BODY = {
    "app_id": APP_ID,
    "version": "1.0.0",
    "external_url": "https://cdn.example.com/1.0.0.zip",
    "checksum": "abc",
}


@pytest_asyncio.fixture(loop_scope="session")
async def owned_app(client: httpx.AsyncClient, alice: Account) -> str:
    await create_app(client, alice)
    return APP_ID


async def names(client: httpx.AsyncClient, owner: Account) -> list[str]:
    response = await client.get("/bundle", params={"app_id": APP_ID}, headers=owner.headers)
    assert response.status_code == 200, response.text
    return [row["name"] for row in response.json()]


class TestCreateBundle:
    async def test_registers_an_external_bundle(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        response = await client.post("/bundle", json=FULL_BODY, headers=alice.headers)
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"status", "bundle"}
        assert body["status"] == "success"
        bundle = body["bundle"]
        assert set(bundle) == BUNDLE_FIELDS
        assert {
            k: bundle[k]
            for k in (
                "app_id",
                "name",
                "external_url",
                "checksum",
                "storage_provider",
                "owner_org",
                "user_id",
                "deleted",
                "r2_path",
                "session_key",
                "key_id",
            )
        } == {
            "app_id": APP_ID,
            "name": "1.0.0",
            "external_url": FULL_BODY["external_url"],
            "checksum": "abc",
            "storage_provider": "external",
            "owner_org": alice.org_id,
            "user_id": alice.user_id,
            "deleted": False,
            "r2_path": None,
            "session_key": None,
            "key_id": None,
        }
        assert await names(client, alice) == ["1.0.0"]

    async def test_query_string_works(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        response = await client.post("/bundle", params=FULL_BODY, headers=alice.headers)
        assert response.status_code == 200
        assert response.json()["bundle"]["name"] == "1.0.0"

    async def test_stores_the_encryption_fields(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        bundle = await create_bundle(
            client, alice, "1.0.0", session_key="aXY=:a2V5", key_id="MIIBCgKCAQEA12345678"
        )
        assert (bundle["session_key"], bundle["key_id"]) == ("aXY=:a2V5", "MIIBCgKCAQEA12345678")

    async def test_write_key_may_create(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        write = await make_key(client, alice, mode="write")
        bundle = await create_bundle(client, headers(write["key"]), "1.0.0")
        assert bundle["user_id"] == alice.user_id

    @pytest.mark.parametrize("version", VALID_SEMVER)
    async def test_accepts_strict_semver(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str, version: str
    ) -> None:
        response = await post_bundle(client, alice, version)
        assert response.status_code == 200, response.text
        assert response.json()["bundle"]["name"] == version

    @pytest.mark.parametrize("version", INVALID_SEMVER)
    async def test_refuses_anything_else(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str, version: str
    ) -> None:
        response = await post_bundle(client, alice, version)
        assert response.status_code == 400
        assert response.json() == error(
            "invalid_version_format", SEMVER_MESSAGE, {"version": version}
        )

    async def test_nul_character_is_refused(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        # Refused by the shared body reader, before the semver check (no text column holds NUL).
        response = await post_bundle(client, alice, "1.0.0\x00")
        assert error_of(response) == (400, "invalid_body")
        assert await names(client, alice) == []

    async def test_duplicate_name_is_refused(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        await create_bundle(client, alice, "1.0.0")
        response = await post_bundle(client, alice, "1.0.0")
        assert response.status_code == 400
        assert response.json() == error(
            "version_already_exists", "Version already exists", {"version": "1.0.0"}
        )

    async def test_same_name_in_another_app_is_fine(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        await create_app(client, alice, OTHER_APP_ID)
        await create_bundle(client, alice, "1.0.0", OTHER_APP_ID)
        assert (await create_bundle(client, alice, "1.0.0"))["app_id"] == APP_ID


class TestCreateValidation:
    @pytest.mark.parametrize(
        ("missing", "code"),
        [
            ("app_id", "missing_app_id"),
            ("version", "missing_version"),
            ("external_url", "missing_external_url"),
            ("checksum", "missing_checksum"),
        ],
    )
    async def test_each_missing_field_has_its_code(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str, missing: str, code: str
    ) -> None:
        body = {k: v for k, v in FULL_BODY.items() if k != missing}
        response = await client.post("/bundle", json=body, headers=alice.headers)
        assert error_of(response) == (400, code)

    @pytest.mark.parametrize(
        ("body", "code"),
        [
            ({"app_id": "invalid_app"}, "invalid_app_id"),
            ({"app_id": APP_ID, "external_url": "http://x"}, "missing_version"),
            ({"app_id": APP_ID, "version": "nope", "checksum": "x"}, "missing_external_url"),
            ({**FULL_BODY, "version": "nope", "checksum": ""}, "missing_checksum"),
            ({**FULL_BODY, "app_id": UNKNOWN_APP_ID, "version": "nope"}, "invalid_version_format"),
            (
                {**FULL_BODY, "app_id": UNKNOWN_APP_ID, "external_url": "http://x"},
                "cannot_create_bundle",
            ),
        ],
    )
    async def test_checks_run_in_capgos_order(
        self,
        client: httpx.AsyncClient,
        alice: Account,
        owned_app: str,
        body: dict[str, Any],
        code: str,
    ) -> None:
        response = await client.post("/bundle", json=body, headers=alice.headers)
        assert error_of(response) == (400, code)

    @pytest.mark.parametrize(
        "url",
        [
            "http://cdn.example.com/1.0.0.zip",
            "ftp://x/y.zip",
            "cdn.example.com/1.zip",
            "https://",
            "HTTPS://x/y.zip",
        ],
    )
    async def test_only_https_urls(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str, url: str
    ) -> None:
        response = await post_bundle(client, alice, "1.0.0", external_url=url)
        assert response.status_code == 400
        assert response.json() == error(
            "invalid_protocol", "External URL must use HTTPS protocol", {"external_url": url}
        )
        assert await names(client, alice) == []

    async def test_key_id_longer_than_20_is_400(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        response = await post_bundle(client, alice, "1.0.0", key_id="k" * 21)
        assert error_of(response) == (400, "invalid_body")

    async def test_wrong_types_are_400(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        response = await post_bundle(client, alice, "1.0.0", checksum=123)
        assert error_of(response) == (400, "invalid_body")

    async def test_empty_body_is_400(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await client.post("/bundle", json={}, headers=alice.headers)
        assert error_of(response) == (400, "invalid_json_parse_body")


class TestCreateAccess:
    async def test_read_key_is_401(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        read = await make_key(client, alice, mode="read")
        response = await post_bundle(client, headers(read["key"]), "1.0.0")
        assert error_of(response) == (401, "invalid_apikey")

    async def test_upload_key_is_401(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        upload = await make_key(client, alice, mode="upload")
        response = await post_bundle(client, headers(upload["key"]), "1.0.0")
        assert error_of(response) == (401, "invalid_apikey")

    @pytest.mark.parametrize("role", ["read", "upload"])
    async def test_member_below_write_is_refused(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str, role: str
    ) -> None:
        carol = await make_account(app, "carol@example.com")
        await add_member(client, alice, carol, alice.org_id, role)
        response = await post_bundle(client, carol, "1.0.0")
        assert response.status_code == 400
        assert response.json() == no_access("cannot_create_bundle", APP_ID)
        assert await names(client, alice) == []

    async def test_member_with_write_role_may_create(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        carol = await make_account(app, "carol@example.com")
        await add_member(client, alice, carol, alice.org_id, "write")
        bundle = await create_bundle(client, carol, "1.0.0")
        assert bundle["user_id"] == carol.user_id

    async def test_foreign_app_is_refused_like_an_unknown_one(
        self, client: httpx.AsyncClient, alice: Account, bob: Account, owned_app: str
    ) -> None:
        await create_bundle(client, alice, "1.0.0")
        for app_id in (APP_ID, UNKNOWN_APP_ID):
            # Even a name taken in the foreign app gets the plain refusal.
            response = await post_bundle(client, bob, "1.0.0", app_id)
            assert response.status_code == 400
            assert response.json() == no_access("cannot_create_bundle", app_id)

    async def test_key_limited_to_another_app_is_refused(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        await create_app(client, alice, OTHER_APP_ID)
        limited = await make_key(client, alice, limited_to_apps=[OTHER_APP_ID])
        response = await post_bundle(client, headers(limited["key"]), "1.0.0")
        assert response.json() == no_access("cannot_create_bundle", APP_ID)
        assert (
            await post_bundle(client, headers(limited["key"]), "1.0.0", OTHER_APP_ID)
        ).status_code == 200


class TestEncryptionPolicy:
    REQUIRED_KEY = "MIIBCgKCAQEAxyzABCDEFGHIJ"

    @pytest_asyncio.fixture(loop_scope="session")
    async def enforced(self, client: httpx.AsyncClient, alice: Account, owned_app: str) -> None:
        response = await update_org(client, alice, alice.org_id, enforce_encrypted_bundles=True)
        assert response.status_code == 200, response.text

    async def test_unencrypted_bundle_is_refused(
        self, client: httpx.AsyncClient, alice: Account, enforced: None
    ) -> None:
        response = await post_bundle(client, alice, "1.0.0")
        assert response.status_code == 400
        body = response.json()
        assert body["error"] == "encryption_required"
        assert body["moreInfo"] == {"enforce_encrypted_bundles": True}
        assert await names(client, alice) == []

    async def test_encrypted_bundle_is_accepted(
        self, client: httpx.AsyncClient, alice: Account, enforced: None
    ) -> None:
        bundle = await create_bundle(client, alice, "1.0.0", session_key="aXY=:a2V5")
        assert bundle["session_key"] == "aXY=:a2V5"

    async def test_without_enforcement_unencrypted_is_fine(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        assert (await post_bundle(client, alice, "1.0.0")).status_code == 200

    async def test_required_key_needs_a_key_id(
        self, client: httpx.AsyncClient, alice: Account, enforced: None
    ) -> None:
        await update_org(client, alice, alice.org_id, required_encryption_key=self.REQUIRED_KEY)
        response = await post_bundle(client, alice, "1.0.0", session_key="aXY=:a2V5")
        assert response.status_code == 400
        body = response.json()
        assert body["error"] == "encryption_key_required"
        assert body["moreInfo"] == {
            "enforce_encrypted_bundles": True,
            "required_encryption_key": True,
        }

    async def test_other_key_is_a_mismatch(
        self, client: httpx.AsyncClient, alice: Account, enforced: None
    ) -> None:
        await update_org(client, alice, alice.org_id, required_encryption_key=self.REQUIRED_KEY)
        response = await post_bundle(
            client, alice, "1.0.0", session_key="aXY=:a2V5", key_id="MIIBCgKCAQEAotherkey"
        )
        assert response.status_code == 400
        body = response.json()
        assert body["error"] == "encryption_key_mismatch"
        assert body["moreInfo"] == {
            "enforce_encrypted_bundles": True,
            "required_encryption_key": True,
            "expected_key_prefix": "MIIB...",
        }

    async def test_key_id_of_the_required_key_is_accepted(
        self, client: httpx.AsyncClient, alice: Account, enforced: None
    ) -> None:
        await update_org(client, alice, alice.org_id, required_encryption_key=self.REQUIRED_KEY)
        bundle = await create_bundle(
            client, alice, "1.0.0", session_key="aXY=:a2V5", key_id=self.REQUIRED_KEY[:20]
        )
        assert bundle["key_id"] == self.REQUIRED_KEY[:20]

    async def test_key_id_starting_with_a_short_required_key_is_accepted(
        self, client: httpx.AsyncClient, alice: Account, enforced: None
    ) -> None:
        await update_org(client, alice, alice.org_id, required_encryption_key="MIIBCg")
        bundle = await create_bundle(
            client, alice, "1.0.0", session_key="aXY=:a2V5", key_id="MIIBCgKCAQEA12345678"
        )
        assert bundle["name"] == "1.0.0"
