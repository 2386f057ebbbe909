"""``POST /updates``: every refusal of spec §5.3's decision table, status and full body."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from tests.conftest import Account
from tests.plugin.updates_support import (
    answer,
    edit_bundle,
    offered,
    refused,
    seed,
    set_channel,
)


@pytest_asyncio.fixture(loop_scope="session")
async def seeded(client: httpx.AsyncClient, alice: Account) -> Account:
    await seed(client, alice)
    return alice


class TestRefusals:
    async def test_unsupported_plugin(self, client: httpx.AsyncClient, seeded: Account) -> None:
        assert await answer(client, plugin_version="4.15.0") == refused(
            "unsupported_plugin_version",
            "Plugin version 4.15.0 (v4) is no longer supported. "
            "Please upgrade to v5.10.0 or later.",
            "blocked",
        )

    async def test_no_channel(self, client: httpx.AsyncClient, seeded: Account) -> None:
        await set_channel(client, seeded, "production", public=False)
        assert await answer(client) == refused(
            "no_channel", "no default channel or override", "blocked"
        )

    async def test_unknown_default_channel(
        self, client: httpx.AsyncClient, seeded: Account
    ) -> None:
        assert await answer(client, defaultChannel="staging") == refused(
            "no_channel", "no default channel or override", "blocked"
        )

    async def test_deleted_bundle_is_never_offered(
        self, app: FastAPI, client: httpx.AsyncClient, seeded: Account
    ) -> None:
        await edit_bundle(app, "1.0.0", deleted=True)
        assert await answer(client, version_name="1.1.0") == refused(
            "no_bundle", "Cannot get bundle", "failed"
        )

    async def test_bundle_without_file(
        self, app: FastAPI, client: httpx.AsyncClient, seeded: Account
    ) -> None:
        await edit_bundle(app, "1.0.0", external_url=None, r2_path=None)
        assert await answer(client, version_name="1.1.0") == refused(
            "no_bundle", "Cannot get bundle", "failed"
        )

    async def test_key_id_mismatch_for_new_plugins(
        self, app: FastAPI, client: httpx.AsyncClient, seeded: Account
    ) -> None:
        await edit_bundle(app, "1.0.0", key_id="bundlekey")
        new = {"version_name": "1.1.0", "key_id": "devicekey"}
        assert await answer(client, plugin_version="8.41.0", **new) == refused(
            "key_id_mismatch",
            "Device encryption key does not match bundle encryption key. "
            "The bundle was encrypted with another key than the one configured in the app.",
            "blocked",
            deviceKeyId="devicekey",
            bundleKeyId="bundlekey",
        )
        assert await answer(client, plugin_version="8.40.7", **new) == offered("1.0.0")
        assert await answer(client, plugin_version="8.41.0", key_id="bundlekey") == refused(
            "no_new_version_available", "No new version available", "up_to_date"
        )

    @pytest.mark.parametrize(
        ("platform", "channel", "message", "version"),
        [
            ("ios", "production", "Cannot update, ios it's disabled", "1.0.0"),
            ("android", "development", "Cannot update, android is disabled", "1.359.0"),
            ("electron", "development", "Cannot update, electron is disabled", "1.359.0"),
        ],
    )
    async def test_disabled_platform(
        self,
        client: httpx.AsyncClient,
        seeded: Account,
        platform: str,
        channel: str,
        message: str,
        version: str,
    ) -> None:
        body = await answer(client, platform=platform, defaultChannel=channel, version_name="1.2.0")
        assert body == refused(
            f"disabled_platform_{platform}", message, "blocked", version=version, old="1.2.0"
        )

    async def test_major_jump(self, client: httpx.AsyncClient, seeded: Account) -> None:
        assert await answer(client, version_build="0.0.0", version_name="0.0.0") == refused(
            "disable_auto_update_to_major",
            "Cannot upgrade major version",
            "blocked",
            major=True,
            version="1.0.0",
            old="0.0.0",
        )

    async def test_private_channel_without_self_set(
        self, client: httpx.AsyncClient, seeded: Account
    ) -> None:
        await set_channel(client, seeded, "production", public=False, allow_device_self_set=False)
        body = await answer(client, defaultChannel="production", version_name="1.1.0")
        assert body == refused(
            "cannot_update_via_private_channel",
            'Cannot update via a private channel. The channel "production" does not allow '
            'device self-assignment. Please ensure your defaultChannel "production" has "Allow '
            'devices to self dissociate/associate" set to true.',
            "blocked",
        )

    @pytest.mark.parametrize("native", ["1.1.0", "0.361.0"])
    async def test_minor_jump(
        self, client: httpx.AsyncClient, seeded: Account, native: str
    ) -> None:
        await set_channel(client, seeded, "beta", disableAutoUpdate="minor")
        body = await answer(
            client, defaultChannel="beta", version_build=native, version_name=native
        )
        assert body == refused(
            "disable_auto_update_to_minor",
            "Cannot upgrade minor version",
            "blocked",
            major=True,
            version="1.361.0",
            old=native,
        )

    @pytest.mark.parametrize("native", ["1.360.0", "0.361.0"])
    async def test_patch_jump(
        self, client: httpx.AsyncClient, seeded: Account, native: str
    ) -> None:
        await set_channel(client, seeded, "beta", disableAutoUpdate="patch")
        body = await answer(
            client, defaultChannel="beta", version_build=native, version_name=native
        )
        assert body == refused(
            "disable_auto_update_to_patch",
            "Cannot upgrade patch version",
            "blocked",
            major=True,
            version="1.361.0",
            old=native,
        )

    async def test_min_update_version(
        self, app: FastAPI, client: httpx.AsyncClient, seeded: Account
    ) -> None:
        await set_channel(client, seeded, "production", disableAutoUpdate="version_number")
        old = {"version_name": "0.9.0", "version_build": "1.0.0"}
        assert await answer(client, **old) == refused(
            "misconfigured_channel",
            "Channel production is misconfigured",
            "blocked",
            version="1.0.0",
            old="1.0.0",
        )
        await edit_bundle(app, "1.0.0", min_update_version="1.2.0")
        assert await answer(client, **old) == refused(
            "disable_auto_update_to_metadata",
            "Cannot upgrade version, min update version > current version",
            "blocked",
            major=True,
            version="1.0.0",
            old="1.0.0",
        )
        await edit_bundle(app, "1.0.0", min_update_version="1.0.0")
        assert await answer(client, **old) == offered("1.0.0")

    async def test_under_native(self, client: httpx.AsyncClient, seeded: Account) -> None:
        assert await answer(client, version_build="2.0.0", version_name="2.0.0") == refused(
            "disable_auto_update_under_native",
            "Cannot revert under native version",
            "blocked",
            version="1.0.0",
            old="2.0.0",
        )

    @pytest.mark.parametrize(
        ("flag", "device", "code", "message"),
        [
            ("allow_prod", {}, "disable_prod_build", "Cannot update, prod build is disabled"),
            (
                "allow_dev",
                {"is_prod": False},
                "disable_dev_build",
                "Cannot update, dev build is disabled",
            ),
            ("allow_device", {}, "disable_device", "Cannot update, device is disabled"),
            (
                "allow_emulator",
                {"is_emulator": True},
                "disable_emulator",
                "Cannot update, emulator is disabled",
            ),
        ],
    )
    async def test_build_and_device_kinds(
        self,
        client: httpx.AsyncClient,
        seeded: Account,
        flag: str,
        device: dict[str, Any],
        code: str,
        message: str,
    ) -> None:
        await set_channel(client, seeded, "production", **{flag: False})
        body = await answer(client, version_name="1.1.0", **device)
        assert body == refused(code, message, "blocked", version="1.0.0", old="1.1.0")

    async def test_builtin(self, client: httpx.AsyncClient, seeded: Account) -> None:
        await set_channel(client, seeded, "production", version="builtin")
        assert await answer(client) == refused(
            "already_on_builtin", "Already on builtin", "up_to_date", version="builtin"
        )
        assert await answer(client, plugin_version="6.1.9") == refused(
            "revert_to_builtin_plugin_version_too_old",
            "revert_to_builtin used, but plugin version is too old",
            "blocked",
        )

    async def test_unknown_bundle_has_no_url(
        self, client: httpx.AsyncClient, seeded: Account
    ) -> None:
        await set_channel(client, seeded, "production", version="unknown")
        assert await answer(client) == refused("no_bundle_url", "Cannot get bundle url", "failed")
