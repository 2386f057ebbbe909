"""Secrets (issue 7): what is not already proven elsewhere (docs/security.md lists both).

* ``CAPGO_SECRET`` in production: missing, placeholder or short values refused with a clear
  error that never repeats the value; a long random value used as is.
* API keys are found by the SHA-256 of the presented value only (a hash lookup, then
  ``hmac.compare_digest``): the value is never compared with a stored plain value.
* A hashed key's value is shown once: no later answer, audit entry or database column holds it,
  and the ``key_hash`` the API shows is no credential.
* Download URLs: their lifetime is ``CAPGO_DOWNLOAD_URL_TTL_SECONDS``; one signed with another
  secret, or re-pointed (directly or by ``..``) at another tenant's file, opens nothing.
* A deleted organization's files (bundles and unfinished uploads) leave the store.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from capgo_server.app import create_app as build_app
from capgo_server.clock import utcnow
from capgo_server.files import signing
from capgo_server.models import ApiKey
from capgo_server.settings import MIN_SECRET_LENGTH, Settings
from tests.auth.helpers import auth
from tests.bundles.helpers import create_app, insert_stored_bundle
from tests.conftest import Account, create_org, error_of, make_account, make_key
from tests.files.support import Tus, local_path, web_bundle
from tests.security.support import configured_app
from tests.test_cli import cli_env, error_line, run_cli

# --- CAPGO_SECRET --------------------------------------------------------------------------


class TestProductionSecret:
    @pytest.mark.parametrize(
        ("secret", "reason"),
        [
            (None, "CAPGO_SECRET is missing"),
            ("", "CAPGO_SECRET is missing"),
            ("   ", "CAPGO_SECRET is missing"),
            ("changeme", "CAPGO_SECRET is a placeholder"),
            (" CHANGEME ", "CAPGO_SECRET is a placeholder"),
            ("secret", "CAPGO_SECRET is a placeholder"),
            ("change-me-to-a-long-random-value-before-going-live", "CAPGO_SECRET is a placeholder"),
            ("your_secret_here_0123456789abcdefghijklmnop", "CAPGO_SECRET is a placeholder"),
            ("k3Y-9f2aQ", "CAPGO_SECRET is too short (9 characters, at least 32)"),
            (
                "q" * (MIN_SECRET_LENGTH - 1),
                "CAPGO_SECRET is too short (31 characters, at least 32)",
            ),
        ],
    )
    def test_refused_with_a_clear_error(
        self, tmp_path: Path, secret: str | None, reason: str
    ) -> None:
        settings = Settings(env="production", secret=secret, data_dir=tmp_path / "data")
        with pytest.raises(RuntimeError) as refused:
            settings.resolved_secret()
        message = str(refused.value)
        assert message.startswith(reason)
        assert "; CAPGO_ENV=production needs a long random value" in message
        assert "secrets.token_urlsafe(48)" in message
        if secret and len(secret.strip()) > len("secret"):
            assert secret.strip() not in message  # the value is never echoed
        assert not (tmp_path / "data").exists()  # nothing generated in its place

    def test_a_long_random_secret_is_used_as_is(self, tmp_path: Path) -> None:
        value = secrets.token_urlsafe(48)
        settings = Settings(env="production", secret=value, data_dir=tmp_path / "data")
        assert settings.secret_problem() is None
        assert settings.resolved_secret() == value
        assert not (tmp_path / "data" / ".secret").exists()

    def test_read_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("CAPGO_ENV", "production")
        monkeypatch.setenv("CAPGO_SECRET", "short")
        with pytest.raises(RuntimeError, match=r"^CAPGO_SECRET is too short \(5 characters"):
            Settings().resolved_secret()

    def test_development_replaces_a_placeholder_with_a_generated_secret(
        self, tmp_path: Path
    ) -> None:
        settings = Settings(secret="changeme", data_dir=tmp_path / "data")
        generated = settings.resolved_secret()
        assert generated != "changeme"
        assert len(generated) >= MIN_SECRET_LENGTH
        assert settings.resolved_secret() == generated
        assert (tmp_path / "data" / ".secret").stat().st_mode & 0o777 == 0o600

    def test_a_production_app_cannot_be_built_without_one(self, tmp_path: Path) -> None:
        """``uvicorn --factory capgo_server.app:create_app`` refuses too, not only ``serve``."""
        settings = Settings(env="production", data_dir=tmp_path / "data")
        with pytest.raises(RuntimeError, match=r"^CAPGO_SECRET is missing"):
            build_app(settings)
        good = Settings(env="production", secret=secrets.token_urlsafe(48), data_dir=tmp_path)
        assert build_app(good).state.settings is good

    def test_serve_refuses_a_short_secret_before_touching_anything(self, tmp_path: Path) -> None:
        data_dir = tmp_path / "state"
        env = cli_env(data_dir, CAPGO_ENV="production", CAPGO_SECRET="tiny-secret-9")
        result = run_cli("serve", "--port", "1", env=env, cwd=tmp_path, timeout=30)
        line = error_line(result)
        assert "CAPGO_SECRET is too short (13 characters, at least 32)" in line
        assert "tiny-secret-9" not in line
        assert not (data_dir / "capgo.db").exists()


# --- API keys ------------------------------------------------------------------------------


class TestKeyComparison:
    async def test_keys_are_found_by_their_digest_only(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        created = await make_key(client, alice, name="plain")
        decoy = str(uuid.uuid4())
        async with app.state.sessionmaker() as session, session.begin():
            await session.execute(
                update(ApiKey).where(ApiKey.id == created["id"]).values(key=decoy)
            )
        # The stored plain value is never what a presented key is compared with ...
        refused = await client.get("/organization", headers=auth(decoy))
        assert error_of(refused) == (401, "invalid_apikey")
        # ... its digest is: the real value still works.
        accepted = await client.get("/organization", headers=auth(created["key"]))
        assert accepted.status_code == 200

    async def test_a_near_miss_is_unknown(self, client: httpx.AsyncClient, alice: Account) -> None:
        last = alice.key[-1]
        near = alice.key[:-1] + ("0" if last != "0" else "1")
        for value in (near, alice.key[:-1], alice.key + "0", f" {alice.key}x"):
            response = await client.get("/organization", headers=auth(value))
            assert error_of(response) == (401, "invalid_apikey")


class TestHashedKeys:
    async def test_the_value_is_shown_once(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        created = await make_key(
            client, alice, name="ci", hashed=True, limited_to_orgs=[alice.org_id]
        )
        plain, key_id = created["key"], created["id"]
        answers = [
            await client.get("/apikey", headers=alice.headers),
            await client.get(f"/apikey/{key_id}", headers=alice.headers),
            await client.get(f"/apikey/{plain}", headers=alice.headers),
            await client.put(f"/apikey/{key_id}", json={"name": "ci 2"}, headers=alice.headers),
            await client.get(
                "/organization/audit",
                params={"orgId": alice.org_id, "tableName": "apikeys"},
                headers=alice.headers,
            ),
        ]
        for answer in answers:
            assert answer.status_code == 200, answer.text
            assert plain not in answer.text
        listed = {key["id"]: key for key in answers[0].json()}
        assert listed[key_id]["key"] is None
        assert answers[4].json()["total"] >= 2  # the creation and the rename were audited
        async with app.state.sessionmaker() as session:
            row = await session.scalar(select(ApiKey).where(ApiKey.id == key_id))
        assert row is not None
        assert row.key is None
        assert plain not in repr({c.key: getattr(row, c.key) for c in ApiKey.__table__.columns})

    async def test_the_hash_shown_is_no_credential(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        created = await make_key(client, alice, name="ci", hashed=True)
        fetched = await client.get(f"/apikey/{created['id']}", headers=alice.headers)
        key_hash = fetched.json()["key_hash"]
        assert key_hash
        for header in ("authorization", "capgkey", "x-api-key"):
            response = await client.get("/organization", headers={header: key_hash})
            assert error_of(response) == (401, "invalid_apikey")
        assert (await client.get("/organization", headers=auth(created["key"]))).status_code == 200


# --- download URLs -------------------------------------------------------------------------

ALICE_APP = "com.alice.files"
BOB_APP = "com.bob.files"


async def stored_bundle(
    client: httpx.AsyncClient, app: FastAPI, owner: Account, app_id: str, content: bytes
) -> str:
    await create_app(client, owner, app_id)
    _, path = await insert_stored_bundle(app, owner.org_id, "1.0.0", app_id, content=content)
    return path


async def link(client: httpx.AsyncClient, owner: Account, app_id: str) -> httpx.Response:
    return await client.post(
        "/files/download_link", json={"app_id": app_id, "version": "1.0.0"}, headers=owner.headers
    )


class TestDownloadUrls:
    async def test_a_url_never_opens_another_tenants_file(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
    ) -> None:
        await stored_bundle(client, app, alice, ALICE_APP, b"alice bytes")
        bob_path = await stored_bundle(client, app, bob, BOB_APP, b"bob's secret bundle")
        url = urlsplit(local_path((await link(client, alice, ALICE_APP)).json()["url"]))
        assert (await client.get(f"{url.path}?{url.query}")).content == b"alice bytes"
        # Alice may not ask for a URL of bob's bundle (the same answer as for unknown apps) ...
        assert error_of(await link(client, alice, BOB_APP)) == (400, "cannot_access_app")
        # ... nor re-point hers at it, directly or through "..".
        alice_dir = f"orgs/{alice.org_id}/apps/{ALICE_APP}"
        for path in (
            bob_path,
            f"{alice_dir}/../../../../{bob_path}",
            f"{alice_dir}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/{bob_path}",
            f"{alice_dir}/1.0.0.zip/../../../../../{bob_path}",
        ):
            response = await client.get(f"{signing.READ_ROUTE}{path}?{url.query}")
            assert response.status_code in (403, 404), path
            assert b"bob" not in response.content
        # Bob's file is there, on bob's own URL.
        own = await link(client, bob, BOB_APP)
        assert (await client.get(local_path(own.json()["url"]))).content == b"bob's secret bundle"

    async def test_a_url_signed_with_another_secret_is_refused(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, settings: Settings
    ) -> None:
        path = await stored_bundle(client, app, alice, ALICE_APP, b"alice bytes")
        other = Settings(database_url=settings.database_url, secret=secrets.token_urlsafe(48))
        forged = await client.get(local_path(signing.sign_path(other, path).url))
        assert error_of(forged) == (403, "invalid_signature")
        genuine = await client.get(local_path(signing.sign_path(settings, path).url))
        assert genuine.content == b"alice bytes"

    async def test_the_lifetime_is_the_setting(
        self, app: FastAPI, database_url: str, tmp_path: Path
    ) -> None:
        async with configured_app(database_url, tmp_path / "ttl", download_url_ttl_seconds=60) as (
            application,
            http,
        ):
            owner = await make_account(application, "tess@example.com", "Tess Org")
            path = await stored_bundle(http, application, owner, ALICE_APP, b"tess bytes")
            before = utcnow()
            response = await link(http, owner, ALICE_APP)
            assert response.status_code == 200, response.text
            expires_at = datetime.fromisoformat(response.json()["expires_at"])
            assert timedelta(seconds=58) <= expires_at - before <= timedelta(seconds=61)
            settings: Settings = application.state.settings
            fresh = signing.sign_path(settings, path, now=utcnow() - timedelta(seconds=50))
            assert (await http.get(local_path(fresh.url))).content == b"tess bytes"
            stale = signing.sign_path(settings, path, now=utcnow() - timedelta(seconds=62))
            assert error_of(await http.get(local_path(stale.url))) == (403, "url_expired")


class TestDeletedOrganizationFiles:
    async def test_its_files_and_upload_parts_are_removed(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
    ) -> None:
        """Deleting an organization removes every stored file of its apps, finished or not;
        other organizations' files stay."""
        org_id = await create_org(client, alice, "Short-lived Org")
        await create_app(client, alice, ALICE_APP, org_id=org_id)
        tus = Tus(client, alice.headers)
        finished = f"orgs/{org_id}/apps/{ALICE_APP}/1.0.0.zip"
        assert (await tus.upload(finished, web_bundle(5_000))).status_code == 204
        pending = await tus.start(f"orgs/{org_id}/apps/{ALICE_APP}/1.0.1.zip", 10_000)
        assert (await tus.patch(pending, 0, b"p" * 4_000)).status_code == 204
        url = local_path((await link(client, alice, ALICE_APP)).json()["url"])
        bob_path = await stored_bundle(client, app, bob, BOB_APP, b"bob's bundle")
        store = app.state.bundle_store
        assert await store.list_prefix(f"orgs/{org_id}/") == [finished]
        assert await store.list_prefix("uploads/") != []

        deleted = await client.delete(
            "/organization", params={"orgId": org_id}, headers=alice.headers
        )
        assert deleted.status_code == 200, deleted.text
        assert await store.list_prefix(f"orgs/{org_id}/") == []
        assert await store.list_prefix("uploads/") == []
        assert error_of(await client.get(url)) == (404, "not_found")
        assert await store.size(bob_path) == len(b"bob's bundle")
