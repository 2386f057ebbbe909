"""Public channels stay exclusive per platform (spec §3.4 ``on_channel_update``), and every
bundle a channel is given is recorded in its deploy history."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from capgo_server.channels.service import set_channel_bundle
from capgo_server.models import Bundle, Channel, DeployHistory
from tests.apps.helpers import add_bundle, create_app, rows
from tests.channels.helpers import (
    APP_ID,
    bundle_id,
    public_by_platform,
    public_names,
    save_channel,
)
from tests.conftest import Account
from tests.members.helpers import add_member

IOS = {"ios": True, "android": False, "electron": False}
ANDROID = {"ios": False, "android": True, "electron": False}
ELECTRON = {"ios": False, "android": False, "electron": True}
MOBILE = {"ios": True, "android": True, "electron": False}
ALL = {"ios": True, "android": True, "electron": True}


def at_most_one_each(by_platform: dict[str, list[str]]) -> bool:
    return all(len(names) <= 1 for names in by_platform.values())


class TestPublicExclusivity:
    async def test_a_new_public_channel_takes_over_its_platforms(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="production", public=True)
        await save_channel(client, alice, channel="beta", public=True)
        assert await public_names(app) == ["beta"]

    async def test_single_platform_public_channels_coexist(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="ios", public=True, **IOS)
        await save_channel(client, alice, channel="android", public=True, **ANDROID)
        assert await public_by_platform(app) == {
            "ios": ["ios"],
            "android": ["android"],
            "electron": [],
        }

    @pytest.mark.parametrize("first", ["production", "development"])
    async def test_seed_layout_keeps_both_public_channels(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, first: str
    ) -> None:
        # Capgo's seed as a user types it (public API fields only): electron stays at its
        # default on both and is shared, so neither channel is made private.
        layout = {
            "production": {"ios": False, "android": True},
            "development": {"ios": True, "android": False},
        }
        await create_app(client, alice, APP_ID)
        for name in sorted(layout, key=lambda name: name != first):
            await save_channel(client, alice, channel=name, public=True, **layout[name])
        assert await public_by_platform(app) == {
            "ios": ["development"],
            "android": ["production"],
            "electron": ["development", "production"],
        }

    async def test_sharing_one_platform_demotes_the_other_channel(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="everywhere", public=True, **ALL)
        await save_channel(client, alice, channel="android", public=True, **ANDROID)
        assert await public_names(app) == ["android"]

    async def test_ios_and_android_demotes_every_other_public_mobile_channel(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="ios", public=True, **IOS)
        await save_channel(client, alice, channel="android", public=True, **ANDROID)
        await save_channel(client, alice, channel="mobile", public=True, **MOBILE)
        assert await public_names(app) == ["mobile"]

    async def test_electron_never_makes_a_channel_private(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        # Capgo (before Electron) also let a channel open to neither iOS nor Android demote
        # every other public channel, and be demoted by any public mobile channel; such a
        # channel serves Electron now, so neither happens (docs/channels.md).
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="electron", public=True, **ELECTRON)
        await save_channel(client, alice, channel="mobile", public=True, **MOBILE)
        await save_channel(client, alice, channel="everywhere", public=True, ios=True)
        assert await public_names(app) == ["electron", "everywhere"]
        await save_channel(client, alice, channel="electron", public=True)
        assert await public_names(app) == ["electron", "everywhere"]

    async def test_explicit_electron_takes_it_and_keeps_the_others_public(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="production", public=True, ios=False)
        await save_channel(client, alice, channel="development", public=True, android=False)
        await save_channel(client, alice, channel="development", electron=True)
        assert await public_by_platform(app) == {
            "ios": ["development"],
            "android": ["production"],
            "electron": ["development"],
        }

    async def test_explicit_electron_on_a_private_channel_takes_nothing(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="production", public=True)
        await save_channel(client, alice, channel="beta", public=False, electron=True)
        assert await public_by_platform(app) == {
            "ios": ["production"],
            "android": ["production"],
            "electron": ["production"],
        }

    async def test_an_electron_only_channel_takes_electron_from_the_others(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="production", public=True)
        await save_channel(client, alice, channel="desktop", public=True, ios=False, android=False)
        assert await public_by_platform(app) == {
            "ios": ["production"],
            "android": ["production"],
            "electron": ["desktop"],
        }
        # A mobile channel saved again (a new bundle, say) takes nothing back.
        await save_channel(client, alice, channel="production", allow_dev=False)
        assert (await public_by_platform(app))["electron"] == ["desktop"]

    async def test_a_channel_left_open_to_no_platform_becomes_private(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="desktop", public=True, **ELECTRON)
        await save_channel(client, alice, channel="desktop-next", public=True, **ELECTRON)
        assert await public_names(app) == ["desktop-next"]
        (old,) = await rows(app, Channel, name="desktop")
        assert old.electron is True  # made private, not stripped: public again it serves Electron

    async def test_a_public_channel_open_to_no_platform_changes_nothing(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="production", public=True)
        nowhere = {"ios": False, "android": False, "electron": False}
        await save_channel(client, alice, channel="hidden", public=True, **nowhere)
        assert await public_names(app) == ["hidden", "production"]

    async def test_making_an_existing_channel_public_demotes_others(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="production", public=True, **IOS)
        await save_channel(client, alice, channel="beta", **IOS)
        assert await public_names(app) == ["production"]
        await save_channel(client, alice, channel="beta", public=True)
        assert await public_names(app) == ["beta"]

    async def test_widening_a_public_channels_platforms_demotes_others(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="ios", public=True, **IOS)
        await save_channel(client, alice, channel="android", public=True, **ANDROID)
        await save_channel(client, alice, channel="ios", android=True)
        assert await public_names(app) == ["ios"]

    async def test_private_channels_demote_nothing(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="production", public=True)
        await save_channel(client, alice, channel="beta", public=False)
        await save_channel(client, alice, channel="production", allow_dev=False)
        assert await public_names(app) == ["production"]

    async def test_other_apps_are_not_touched(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await create_app(client, alice, "com.alice.other")
        await save_channel(client, alice, app_id="com.alice.other", channel="p", public=True)
        await save_channel(client, alice, channel="p", public=True)
        assert await public_names(app, "com.alice.other") == ["p"]
        assert await public_names(app) == ["p"]

    @pytest.mark.parametrize(
        "sequence",
        [
            [("a", ALL), ("b", IOS), ("c", ANDROID), ("d", ELECTRON), ("a", MOBILE)],
            [("a", IOS), ("b", ANDROID), ("c", ELECTRON), ("b", ALL), ("c", IOS)],
            [("a", ELECTRON), ("b", {"ios": False, "android": False, "electron": False})],
        ],
    )
    async def test_never_more_than_one_public_channel_per_platform(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        alice: Account,
        sequence: list[tuple[str, dict[str, bool]]],
    ) -> None:
        await create_app(client, alice, APP_ID)
        for name, platforms in sequence:
            await save_channel(client, alice, channel=name, public=True, **platforms)
            assert at_most_one_each(await public_by_platform(app))
            assert name in await public_names(app)


class TestDeployHistory:
    async def test_creating_a_channel_records_its_bundle(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await add_bundle(app, APP_ID, "1.0.0")
        await save_channel(client, alice, channel="production", version="1.0.0")
        (channel,) = await rows(app, Channel)
        (entry,) = await rows(app, DeployHistory)
        assert (entry.channel_id, entry.app_id, entry.version_id, entry.owner_org) == (
            channel.id,
            APP_ID,
            await bundle_id(app, "1.0.0"),
            alice.org_id,
        )
        assert entry.created_by == alice.user_id

    async def test_a_new_channel_without_version_records_unknown(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await save_channel(client, alice, channel="production")
        assert [e.version_id for e in await rows(app, DeployHistory)] == [
            await bundle_id(app, "unknown")
        ]

    async def test_each_bundle_change_is_recorded_by_whoever_made_it(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await add_bundle(app, APP_ID, "1.0.0")
        await add_bundle(app, APP_ID, "1.1.0")
        writer = await add_member(client, app, alice, "writer@example.com", "write")
        await save_channel(client, alice, channel="production", version="1.0.0")
        await save_channel(client, writer, channel="production", version="1.1.0")
        await save_channel(client, alice, channel="production", version="1.0.0")
        history = [(e.version_id, e.created_by) for e in await rows(app, DeployHistory)]
        assert history == [
            (await bundle_id(app, "1.0.0"), alice.user_id),
            (await bundle_id(app, "1.1.0"), writer.user_id),
            (await bundle_id(app, "1.0.0"), alice.user_id),
        ]

    async def test_saving_without_a_bundle_change_records_nothing(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await add_bundle(app, APP_ID, "1.0.0")
        await save_channel(client, alice, channel="production", version="1.0.0")
        await save_channel(client, alice, channel="production", version="1.0.0")
        await save_channel(client, alice, channel="production", public=True)
        assert len(await rows(app, DeployHistory)) == 1


class TestSetChannelBundle:
    """The helper ``PUT /bundle`` uses to point a channel at a bundle."""

    async def test_sets_and_records_only_real_changes(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await add_bundle(app, APP_ID, "1.0.0")
        await save_channel(client, alice, channel="production")
        target = await bundle_id(app, "1.0.0")
        async with app.state.sessionmaker() as session, session.begin():
            channel = (await session.scalars(select(Channel))).one()
            bundle = await session.get_one(Bundle, target)
            assert await set_channel_bundle(session, channel, bundle, alice.user_id) is True
            assert await set_channel_bundle(session, channel, bundle, alice.user_id) is False
        (channel_row,) = await rows(app, Channel)
        assert channel_row.version == await bundle_id(app, "1.0.0")
        assert [e.version_id for e in await rows(app, DeployHistory)] == [
            await bundle_id(app, "unknown"),
            await bundle_id(app, "1.0.0"),
        ]

    async def test_refuses_a_bundle_of_another_app(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        await create_app(client, alice, "com.alice.other")
        await add_bundle(app, "com.alice.other", "1.0.0")
        await save_channel(client, alice, channel="production")
        foreign = await bundle_id(app, "1.0.0", "com.alice.other")
        async with app.state.sessionmaker() as session:
            channel = (await session.scalars(select(Channel))).one()
            bundle = await session.get_one(Bundle, foreign)
            with pytest.raises(ValueError, match="its own app"):
                await set_channel_bundle(session, channel, bundle, alice.user_id)
            assert channel.version == await bundle_id(app, "unknown")
