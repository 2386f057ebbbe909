"""``/updates`` answers from a per-worker cache (plugin.update_cache): every change made over the
API shows in the next answer, in this worker at once and in another worker after its next poll."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import select, update

from capgo_server.app import create_app
from capgo_server.db.engine import make_engine
from capgo_server.db.upsert import table_of
from capgo_server.models import Bundle, Channel
from capgo_server.plugin import update_cache
from capgo_server.settings import Settings
from tests.conftest import Account, MonotonicClock
from tests.plugin.updates_support import APP_ID, DEVICE, answer, offered, refused, seed

NO_NEW = refused("no_new_version_available", "No new version available", "up_to_date")


async def ids(app: FastAPI) -> tuple[dict[str, int], dict[str, int]]:
    """(bundle name -> id, channel name -> id) of the seed app."""
    async with app.state.sessionmaker() as session:
        bundles = await session.execute(
            select(Bundle.name, Bundle.id).where(Bundle.app_id == APP_ID)
        )
        channels = await session.execute(
            select(Channel.name, Channel.id).where(Channel.app_id == APP_ID)
        )
        return dict(bundles.all()), dict(channels.all())


async def post_channel(client: httpx.AsyncClient, owner: Account, **fields: Any) -> None:
    body = {"app_id": APP_ID, "channel": "production", **fields}
    response = await client.post("/channel", json=body, headers=owner.headers)
    assert response.status_code == 200, response.text


class TestSameWorker:
    async def test_post_channel_changes_the_next_answer(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await seed(client, alice)
        assert await answer(client, version_name="1.0.0") == NO_NEW  # cached now
        await post_channel(client, alice, version="1.361.0")
        assert await answer(client, version_name="1.0.0") == offered("1.361.0")
        await post_channel(client, alice, version="1.0.0")
        assert await answer(client, version_name="1.0.0") == NO_NEW

    async def test_put_bundle_changes_the_next_answer(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await seed(client, alice)
        assert await answer(client, version_name="1.0.0") == NO_NEW
        bundles, channels = await ids(app)
        response = await client.put(
            "/bundle",
            json={
                "app_id": APP_ID,
                "version_id": bundles["1.361.0"],
                "channel_id": channels["production"],
            },
            headers=alice.headers,
        )
        assert response.status_code == 200, response.text
        assert await answer(client, version_name="1.0.0") == offered("1.361.0")

    async def test_a_rollout_changes_the_next_answer(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await seed(client, alice)
        assert await answer(client, version_name="1.0.0") == NO_NEW
        await post_channel(client, alice, rollout_version="1.361.0", rollout_percentage=100)
        assert await answer(client, version_name="1.0.0") == offered("1.361.0")
        await post_channel(client, alice, rollout_percentage=0)
        assert await answer(client, version_name="1.0.0") == NO_NEW

    async def test_a_new_override_changes_the_next_answer(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await seed(client, alice)
        assert await answer(client, version_name="1.0.0") == NO_NEW
        response = await client.post(
            "/device",
            json={"app_id": APP_ID, "device_id": DEVICE, "channel": "beta"},
            headers=alice.headers,
        )
        assert response.status_code == 200, response.text
        assert await answer(client, version_name="1.0.0") == offered("1.361.0")
        response = await client.request(
            "DELETE",
            "/device",
            json={"app_id": APP_ID, "device_id": DEVICE},
            headers=alice.headers,
        )
        assert response.status_code == 200, response.text
        assert await answer(client, version_name="1.0.0") == NO_NEW


@pytest_asyncio.fixture(loop_scope="session")
async def other_worker(app: FastAPI, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A second application on the same database whose cache hears nothing from this process,
    as a worker in another process (it learns of changes only by polling the database)."""
    worker = create_app(settings)
    async with worker.router.lifespan_context(worker):
        update_cache._CACHES.discard(worker.state.update_cache)
        transport = httpx.ASGITransport(app=worker)
        async with httpx.AsyncClient(transport=transport, base_url="http://worker.test") as http:
            yield http


class TestOtherWorker:
    async def test_a_channel_change_reaches_another_worker_at_its_next_poll(
        self, client: httpx.AsyncClient, other_worker: httpx.AsyncClient, alice: Account
    ) -> None:
        transport = other_worker._transport
        assert isinstance(transport, httpx.ASGITransport)
        worker_app: Any = transport.app
        cache: update_cache.UpdateCache = worker_app.state.update_cache
        cache.poll_seconds = 3600  # it polls only when the test says so
        cache._next_poll = float("inf")
        await seed(client, alice)
        assert await answer(other_worker, version_name="1.0.0") == NO_NEW  # cached there
        await post_channel(client, alice, version="1.361.0")
        assert await answer(client, version_name="1.0.0") == offered("1.361.0")
        # Until it polls, the other worker still answers from its snapshot...
        assert await answer(other_worker, version_name="1.0.0") == NO_NEW
        # ... and its next request after the poll interval sees the change.
        cache._next_poll = 0
        assert await answer(other_worker, version_name="1.0.0") == offered("1.361.0")
        assert cache.polls >= 1


async def change_behind_the_apps_back(database_url: str, bundle_id: int) -> None:
    """Point production at ``bundle_id`` with plain SQL on another connection: no session event,
    no ``apps.updated_at`` stamp, as another program would."""
    engine = make_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                update(table_of(Channel))
                .where(Channel.app_id == APP_ID, Channel.name == "production")
                .values(version=bundle_id)
            )
    finally:
        await engine.dispose()


class TestMaxAge:
    """A change no worker can notice shows once the snapshot is too old, and the reload that
    brings it runs beside the requests, not in front of them."""

    async def test_an_old_snapshot_is_reloaded_in_the_background_then_at_the_latest_at_max_age(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        alice: Account,
        database_url: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        clock = MonotonicClock()
        monkeypatch.setattr(update_cache, "time", clock)
        cache: update_cache.UpdateCache = app.state.update_cache
        cache._next_poll = clock.now  # the poll follows the fake clock too
        await seed(client, alice)
        assert await answer(client, version_name="1.0.0") == NO_NEW  # cached now
        loads = cache.loads
        bundles, _ = await ids(app)
        await change_behind_the_apps_back(database_url, bundles["1.361.0"])

        # Younger than its refresh age: answered from memory, nothing reloaded.
        clock.now += cache.refresh_age(APP_ID) - 0.01
        assert await answer(client, version_name="1.0.0") == NO_NEW
        assert cache.loads == loads

        # Past its refresh age, still under the maximum: these requests are answered from the
        # snapshot in hand while one reload starts beside them.
        clock.now += 0.02
        assert cache.refresh_age(APP_ID) < cache.max_age
        together = [answer(client, version_name="1.0.0") for _ in range(3)]
        assert await asyncio.gather(*together) == [NO_NEW] * 3
        for _ in range(500):
            if cache.loads > loads and APP_ID not in cache._loading:
                break
            await asyncio.sleep(0.01)
        assert cache.loads == loads + 1
        assert await answer(client, version_name="1.0.0") == offered("1.361.0")

        # A snapshot that reaches the maximum age is reloaded before the answer.
        await change_behind_the_apps_back(database_url, bundles["1.0.0"])
        clock.now += cache.max_age
        assert await answer(client, version_name="1.0.0") == NO_NEW
        assert cache.loads == loads + 2

    async def test_refresh_ages_are_spread_between_their_bounds(self, app: FastAPI) -> None:
        cache: update_cache.UpdateCache = app.state.update_cache
        ages = {cache.refresh_age(f"com.example.app{n}") for n in range(200)}
        low = cache.max_age * update_cache.REFRESH_FROM
        high = cache.max_age * update_cache.REFRESH_TO
        assert all(low <= age < high for age in ages)
        assert max(ages) - min(ages) > (high - low) / 2  # not all reloaded in the same second
