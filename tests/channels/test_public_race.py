"""Two requests making channels public for one platform at the same time: the one that
commits last must still be the only public channel of that platform (found in review)."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from capgo_server.auth.principal import Principal
from capgo_server.channels.schemas import ChannelSet
from capgo_server.channels.service import save_channel as save
from capgo_server.models import ApiKey
from tests.apps.helpers import create_app
from tests.channels.helpers import APP_ID, public_by_platform, save_channel
from tests.conftest import Account

ANDROID = {"ios": False, "android": True, "electron": False}


async def principal_of(app: FastAPI, owner: Account) -> Principal:
    async with app.state.sessionmaker() as session:
        key = await session.scalar(select(ApiKey).where(ApiKey.user_id == owner.user_id))
        assert key is not None
        return Principal(user_id=owner.user_id, presented_key=key)


class TestConcurrentPublicChannels:
    async def test_second_public_channel_for_a_platform_waits_for_the_first(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await create_app(client, alice, APP_ID)
        for name in ("production", "beta"):
            await save_channel(client, alice, channel=name, public=False, **ANDROID)
        principal = await principal_of(app, alice)

        async def make_public(name: str) -> None:
            async with app.state.sessionmaker() as session, session.begin():
                await save(session, principal, ChannelSet(app_id=APP_ID, channel=name, public=True))

        async with app.state.sessionmaker() as first, first.begin():
            await save(
                first, principal, ChannelSet(app_id=APP_ID, channel="production", public=True)
            )
            second = asyncio.create_task(make_public("beta"))
            await asyncio.sleep(0.5)
            assert not second.done()
        await asyncio.wait_for(second, timeout=20)
        # Without serializing, the second request privatized nothing (it could not see the
        # first one's uncommitted change) and both stayed public for Android.
        assert await public_by_platform(app) == {"ios": [], "android": ["beta"], "electron": []}
