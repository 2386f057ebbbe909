"""Device bookkeeping is batched off the request path (plugin.recorder): it waits in memory while
the server is busy, and whatever waits is written when the application shuts down."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from capgo_server.app import create_app
from capgo_server.db.engine import make_engine
from capgo_server.models import DailyVersion, Device, DeviceActivity, StatsEvent
from capgo_server.plugin import recorder as recorder_module
from capgo_server.plugin.recorder import Recorder
from capgo_server.settings import Settings
from tests.conftest import Account, make_account
from tests.plugin.updates_support import APP_ID, DEVICE, answer, offered, seed


async def recorded(database_url: str) -> tuple[list[str], list[str], list[str], list[int]]:
    """(devices, activity, events, "get" counts) as the database holds them, read apart from
    any application."""
    engine = make_engine(database_url)
    try:
        async with engine.connect() as connection:
            devices = list(await connection.scalars(select(Device.device_id)))
            active = list(await connection.scalars(select(DeviceActivity.device_id)))
            events = list(await connection.scalars(select(StatsEvent.action)))
            gets = list(await connection.scalars(select(DailyVersion.get)))
        return devices, active, events, gets
    finally:
        await engine.dispose()


async def test_a_recording_waiting_at_shutdown_is_written(
    settings: Settings, database_url: str, app: FastAPI
) -> None:
    """SIGTERM makes uvicorn leave the lifespan: the recorder writes what it holds first."""
    del app  # the fixture empties the tables afterwards
    server = create_app(settings)
    async with server.router.lifespan_context(server):
        recorder: Recorder = server.state.recorder
        recorder.interval = 3600  # no periodic write during the test
        recorder.request_started()  # another device request in progress: no write at once
        transport = httpx.ASGITransport(app=server)
        async with httpx.AsyncClient(transport=transport, base_url="http://capgo.test") as client:
            owner = await make_account(server, "owner@example.com", "Owner Org")
            await seed(client, owner)
            await client.post(
                "/channel",
                json={"app_id": APP_ID, "channel": "production", "version": "1.361.0"},
                headers=owner.headers,
            )
            assert await answer(client, version_name="1.0.0") == offered("1.361.0")
        assert recorder.pending == 1
        assert await recorded(database_url) == ([], [], [], [])
    # The lifespan has ended (the engine is disposed): the recording is in the database.
    assert recorder.pending == 0
    assert await recorded(database_url) == ([DEVICE], [DEVICE], ["get"], [1])


async def test_an_idle_server_writes_at_once(
    client: httpx.AsyncClient, app: FastAPI, alice: Account, database_url: str
) -> None:
    await seed(client, alice)
    await answer(client, version_name="1.0.0")
    assert app.state.recorder.pending == 0
    devices, active, events, _ = await recorded(database_url)
    assert (devices, active, events) == ([DEVICE], [DEVICE], ["noNew"])


async def test_a_busy_server_writes_within_a_flush(
    client: httpx.AsyncClient, app: FastAPI, alice: Account, database_url: str
) -> None:
    await seed(client, alice)
    recorder: Recorder = app.state.recorder
    recorder.request_started()  # pretend another device request is in progress
    try:
        for _ in range(3):
            await answer(client, version_name="1.0.0")
        assert recorder.pending == 3
        await recorder.flush()  # what the periodic writer does within a second
    finally:
        await recorder.request_finished()
    devices, active, events, _ = await recorded(database_url)
    assert (devices, active, events) == ([DEVICE], [DEVICE], ["noNew"] * 3)


async def test_a_backlog_makes_the_next_device_request_write_it_first(
    client: httpx.AsyncClient, app: FastAPI, alice: Account, database_url: str
) -> None:
    """A writer that cannot keep up slows the requests down instead of growing the buffer."""
    await seed(client, alice)
    recorder: Recorder = app.state.recorder
    recorder.max_backlog = 2
    recorder.request_started()  # pretend another device request is in progress
    try:
        for _ in range(2):
            await answer(client, version_name="1.0.0")
        assert recorder.pending == 2
        assert await recorded(database_url) == ([], [], [], [])
        # The third request finds the backlog full: it writes it before answering.
        await answer(client, version_name="1.0.0")
        assert recorder.pending == 1
        devices, _, events, _ = await recorded(database_url)
        assert (devices, events) == ([DEVICE], ["noNew"] * 2)
    finally:
        await recorder.request_finished()


async def test_requests_never_wait_for_a_failing_writer(
    client: httpx.AsyncClient,
    app: FastAPI,
    alice: Account,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await seed(client, alice)
    recorder: Recorder = app.state.recorder
    recorder.max_backlog = 1

    async def refuse(*_: object, **__: object) -> None:
        raise RuntimeError("the database refuses writes")

    monkeypatch.setattr(recorder_module, "write_batch", refuse)
    monkeypatch.setattr(recorder_module, "write", refuse)
    recorder.request_started()
    try:
        await answer(client, version_name="1.0.0")
        await recorder.flush()  # fails: the recording is lost and logged
        assert recorder.pending == 0
        for _ in range(3):
            await answer(client, version_name="1.0.0")
        # Past the backlog, yet nobody waited for (or retried) the failing writer.
        assert recorder.pending == 3
    finally:
        monkeypatch.undo()
        await recorder.request_finished()
    devices, _, events, _ = await recorded(database_url)
    assert (devices, events) == ([DEVICE], ["noNew"] * 3)


async def test_a_steady_moderate_load_writes_once_per_idle_delay_not_per_request(
    client: httpx.AsyncClient, app: FastAPI, alice: Account, database_url: str
) -> None:
    """``CAPGO_RECORD_IDLE_DELAY_SECONDS``: after a write, an idle server waits that long before
    the next one, so requests arriving one at a time share a transaction."""
    await seed(client, alice)
    recorder: Recorder = app.state.recorder
    recorder.idle_delay = 0.5
    await answer(client, version_name="1.0.0")  # the first write in a while: at once
    assert recorder.pending == 0
    flushes = recorder.flushes
    for _ in range(3):
        await answer(client, version_name="1.0.0")
    assert recorder.pending == 3  # waiting for the delay to pass
    await asyncio.wait_for(written(recorder, flushes + 1), timeout=5)
    assert recorder.pending == 0  # one write for the three
    _, _, events, _ = await recorded(database_url)
    assert events == ["noNew"] * 4


async def written(recorder: Recorder, flushes: int) -> None:
    while recorder.flushes < flushes:
        await asyncio.sleep(0.01)
