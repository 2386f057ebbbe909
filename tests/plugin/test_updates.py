"""``POST /updates``: offers, input validation and recording (spec §5.3), on the seed of §4.4
built through the API."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import select, update

from capgo_server.models import (
    App,
    DailyVersion,
    Device,
    DeviceActivity,
    StatsEvent,
)
from tests.conftest import Account
from tests.plugin.updates_support import (
    APP_ID,
    DEVICE,
    answer,
    ask,
    device_row,
    edit_bundle,
    not_registered,
    offered,
    override,
    refused,
    seed,
    set_channel,
)


@pytest_asyncio.fixture(loop_scope="session")
async def seeded(client: httpx.AsyncClient, alice: Account) -> Account:
    await seed(client, alice)
    return alice


class TestOffers:
    async def test_same_version_is_up_to_date(
        self, client: httpx.AsyncClient, seeded: Account
    ) -> None:
        assert await answer(client) == refused(
            "no_new_version_available", "No new version available", "up_to_date"
        )

    async def test_older_bundle_gets_the_channel_bundle(
        self, client: httpx.AsyncClient, seeded: Account
    ) -> None:
        assert await answer(client, version_name="1.1.0") == offered("1.0.0")

    async def test_plugin_prefix_alias(self, client: httpx.AsyncClient, seeded: Account) -> None:
        response = await ask(client, "/plugin/updates", version_name="1.1.0")
        assert response.status_code == 200
        assert response.json() == offered("1.0.0")

    async def test_default_channel_by_name(
        self, client: httpx.AsyncClient, seeded: Account
    ) -> None:
        assert await answer(client, defaultChannel="beta") == offered("1.361.0")

    async def test_electron_is_accepted(self, client: httpx.AsyncClient, seeded: Account) -> None:
        assert await answer(client, platform="electron", version_name="0.9.0") == offered("1.0.0")

    async def test_public_channel_of_the_platform(
        self, client: httpx.AsyncClient, seeded: Account
    ) -> None:
        # iOS: production has ios off, so the public channel for iOS is development.
        body = await answer(client, platform="ios", version_name="1.1.0")
        assert body == offered("1.359.0")

    async def test_override_wins_when_the_app_has_overrides(
        self, app: FastAPI, client: httpx.AsyncClient, seeded: Account
    ) -> None:
        await override(client, seeded, "beta")
        assert await answer(client) == offered("1.361.0")
        async with app.state.sessionmaker() as session, session.begin():
            await session.execute(
                update(App).where(App.app_id == APP_ID).values(channel_device_count=0)
            )
        assert await answer(client, version_name="1.1.0") == offered("1.0.0")

    async def test_override_to_private_channel(
        self, client: httpx.AsyncClient, seeded: Account
    ) -> None:
        await set_channel(client, seeded, "no_access", android=True, disableAutoUpdate="none")
        await override(client, seeded, "no_access")
        assert await answer(client) == offered("1.361.0")

    async def test_override_bypasses_the_private_channel_gate(
        self, client: httpx.AsyncClient, seeded: Account
    ) -> None:
        await set_channel(client, seeded, "production", public=False, allow_device_self_set=False)
        await override(client, seeded, "production")
        assert await answer(client, version_name="1.1.0") == offered("1.0.0")

    async def test_metadata_only_when_exposed_and_plugin_new_enough(
        self, client: httpx.AsyncClient, seeded: Account
    ) -> None:
        bundles = await client.get("/bundle", params={"app_id": APP_ID}, headers=seeded.headers)
        version_id = next(b["id"] for b in bundles.json() if b["name"] == "1.0.0")
        response = await client.post(
            "/bundle/metadata",
            json={"app_id": APP_ID, "version_id": version_id, "link": "https://l", "comment": "c"},
            headers=seeded.headers,
        )
        assert response.status_code == 200, response.text
        old = {"version_name": "1.1.0"}
        assert await answer(client, plugin_version="7.35.0", **old) == offered("1.0.0")
        response = await client.put(
            f"/app/{APP_ID}", json={"expose_metadata": True}, headers=seeded.headers
        )
        assert response.status_code == 200, response.text
        with_metadata = offered("1.0.0", link="https://l", comment="c")
        for plugin in ("5.35.0", "6.35.0", "7.35.0", "8.35.0", "9.0.0"):
            assert await answer(client, plugin_version=plugin, **old) == with_metadata
        for plugin in ("7.34.9", "8.34.0", "6.2.0"):
            assert await answer(client, plugin_version=plugin, **old) == offered("1.0.0")

    async def test_manifest_rule(
        self, app: FastAPI, client: httpx.AsyncClient, seeded: Account
    ) -> None:
        entry = {
            "file_name": "test",
            "s3_path": "orgs/o/apps/a/test_file.html",
            "file_hash": "1234567890",
        }
        await edit_bundle(app, "1.0.0", external_url=None, manifest=[entry])
        body = await answer(client, plugin_version="6.25.0", version_name="1.1.0")
        manifest = body.pop("manifest")
        assert body == {
            "version": "1.0.0",
            "url": "https://404.capgo.app/no.zip",
            "session_key": "",
            "checksum": "3885ee49",
        }
        assert [(m["file_name"], m["file_hash"]) for m in manifest] == [("test", "1234567890")]
        assert (
            "/files/read/attachments/orgs/o/apps/a/test_file.html?" in manifest[0]["download_url"]
        )
        # Too old for manifests, and no zip: nothing to download.
        assert await answer(client, plugin_version="6.7.0", version_name="1.1.0") == refused(
            "no_bundle_url", "Cannot get bundle url", "failed"
        )

    async def test_rollout_bundle(
        self, app: FastAPI, client: httpx.AsyncClient, seeded: Account
    ) -> None:
        await set_channel(
            client, seeded, "production", rollout_version="1.360.0", rollout_percentage=100
        )
        assert await answer(client) == offered("1.360.0")
        await edit_bundle(app, "1.360.0", deleted=True)  # deleted bundles are never offered
        assert await answer(client, version_name="1.1.0") == offered("1.0.0")


class TestInput:
    async def test_unknown_app(self, client: httpx.AsyncClient, seeded: Account) -> None:
        response = await ask(client, app_id="com.nobody.here")
        assert response.status_code == 429
        assert response.json() == not_registered("com.nobody.here")

    @pytest.mark.parametrize(
        "changes",
        [
            {"platform": "unsupported_platform"},
            {"device_id": "invalid-uuid"},
            {"plugin_version": "invalid_version"},
            {"app_id": "notreversedomain"},
            {"key_id": "k" * 21},
            {"is_prod": "maybe"},
        ],
    )
    async def test_invalid_fields(
        self, client: httpx.AsyncClient, seeded: Account, changes: dict[str, Any]
    ) -> None:
        response = await ask(client, **changes)
        assert response.status_code == 400
        body = response.json()
        assert set(body) == {"error", "message", "moreInfo"}
        assert (body["error"], body["message"]) == ("invalid_json_body", "Cannot parse body")
        assert set(body["moreInfo"]) == {"parseResult"}

    @pytest.mark.parametrize("content", [b"{}", b"", b"{not json", b"[1, 2]", b'"text"'])
    async def test_unparseable_bodies(self, client: httpx.AsyncClient, content: bytes) -> None:
        response = await client.post(
            "/updates", content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_json_body",
            "message": "Cannot parse body",
            "moreInfo": {},
        }

    async def test_missing_device_id(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/updates", json={"platform": "android"})
        assert response.status_code == 400
        assert response.json() == {
            "error": "missing_device_id",
            "message": "Cannot find device_id",
            "moreInfo": {},
        }

    async def test_missing_app_id(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/updates", json={"device_id": DEVICE})
        assert response.status_code == 400
        assert response.json() == {
            "error": "missing_app_id",
            "message": "Cannot find app_id",
            "moreInfo": {},
        }

    async def test_bad_native_version(self, client: httpx.AsyncClient, seeded: Account) -> None:
        response = await ask(client, version_build="invalid_version")
        assert response.status_code == 400
        assert response.json() == {
            "error": "semver_error",
            "message": "Native version: invalid_version doesn't follow semver convention, please "
            "check https://capgo.app/semver_tester/ to learn more about semver usage in Capgo",
            "moreInfo": {},
        }

    async def test_device_id_is_lower_cased_and_short_versions_fixed(
        self, app: FastAPI, client: httpx.AsyncClient, seeded: Account
    ) -> None:
        body = await answer(
            client, device_id=DEVICE.upper(), version_build="1.0", version_name="1.1.0"
        )
        assert body == offered("1.0.0")
        row = await device_row(app)
        assert row is not None
        assert row.version_build == "1.0.0"

    async def test_body_too_large(self, client: httpx.AsyncClient, seeded: Account) -> None:
        response = await ask(client, custom_id="x" * (1024 * 1024 + 1))
        assert response.status_code == 413
        assert response.json()["error"] == "body_too_large"

    async def test_nul_characters(self, client: httpx.AsyncClient, seeded: Account) -> None:
        response = await ask(client, custom_id="a\x00b")
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_json_body"


class TestRecording:
    async def test_offer_is_recorded(
        self, app: FastAPI, client: httpx.AsyncClient, seeded: Account
    ) -> None:
        body = await answer(
            client, version_name="1.1.0", custom_id="me", key_id="abc", defaultChannel="production"
        )
        assert body == offered("1.0.0")
        row = await device_row(app)
        assert row is not None
        assert (row.platform, row.version_name, row.version_build, row.os_version) == (
            "android",
            "1.0.0",  # the bundle offered, as Capgo records it
            "1.0.0",
            "13",
        )
        assert (row.custom_id, row.key_id, row.default_channel, row.plugin_version) == (
            "me",
            "abc",
            "production",
            "7.0.0",
        )
        async with app.state.sessionmaker() as session:
            events = (
                await session.execute(select(StatsEvent.action, StatsEvent.version_name))
            ).all()
            counts = (
                await session.execute(select(DailyVersion.version_name, DailyVersion.get))
            ).all()
            active = list(await session.scalars(select(DeviceActivity.device_id)))
        assert [tuple(e) for e in events] == [("get", "1.0.0")]
        assert [tuple(c) for c in counts] == [("1.0.0", 1)]
        assert active == [DEVICE]

    async def test_refusal_is_recorded(
        self, app: FastAPI, client: httpx.AsyncClient, seeded: Account
    ) -> None:
        await answer(client)
        await answer(client, version_build="2.0.0", version_name="2.0.0")
        row = await device_row(app)
        assert row is not None
        assert (row.version_name, row.version_build) == ("2.0.0", "2.0.0")
        async with app.state.sessionmaker() as session:
            events = (
                await session.execute(
                    select(StatsEvent.action, StatsEvent.version_name).order_by(StatsEvent.id)
                )
            ).all()
            counts = list(await session.scalars(select(DailyVersion.version_name)))
            active = list(await session.scalars(select(DeviceActivity.device_id)))
        assert [tuple(e) for e in events] == [
            ("noNew", "1.0.0"),
            ("disableAutoUpdateUnderNative", "1.0.0"),
        ]
        assert counts == []
        assert active == [DEVICE]  # one row per device per day

    async def test_default_channel_saved_then_reset(
        self, app: FastAPI, client: httpx.AsyncClient, seeded: Account
    ) -> None:
        await answer(client, defaultChannel="staging")
        row = await device_row(app)
        assert row is not None
        assert row.default_channel == "staging"
        await answer(client)
        row = await device_row(app)
        assert row is not None
        assert row.default_channel is None

    async def test_unknown_app_records_nothing(
        self, app: FastAPI, client: httpx.AsyncClient, seeded: Account
    ) -> None:
        await ask(client, app_id="com.nobody.here")
        async with app.state.sessionmaker() as session:
            assert list(await session.scalars(select(Device))) == []
            assert list(await session.scalars(select(StatsEvent))) == []
