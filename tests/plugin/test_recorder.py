"""Device bookkeeping is batched off the request path (plugin.recorder): it waits in memory while
the server is busy, and whatever waits is written when the application shuts down."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text

from capgo_server.app import create_app
from capgo_server.db.engine import make_engine
from capgo_server.models import DailyVersion, Device, DeviceActivity, StatsEvent
from capgo_server.plugin import recorder as recorder_module
from capgo_server.plugin.recorder import Recorder
from capgo_server.plugin.recording import DeviceSeen, Recording, write_batch
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
    # The periodic writer's round that finds nothing to write is no write: it does not hold back
    # the next idle write (it did, and this test failed whenever a round fell just before).
    await recorder.flush()
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


# --- backpressure: one batch write at most ---------------------------------------------------


def device(n: int) -> str:
    return f"00009a6b-eefe-490a-9c60-{n:012d}"


def seen_device(device_id: str) -> DeviceSeen:
    return DeviceSeen(
        app_id=APP_ID,
        device_id=device_id,
        platform="android",
        plugin_version="7.17.0",
        os_version="14",
        version_build="1.0.0",
        version_name="1.0.0",
        custom_id="",
        is_prod=True,
        is_emulator=False,
        default_channel=None,
        key_id=None,
    )


def own_recorder(app: FastAPI, monkeypatch: pytest.MonkeyPatch, **limits: int) -> Recorder:
    """A recorder in place of the app's, never started (no periodic writer: only the requests
    and the test write), with another device request pretending to be in progress (no idle
    writes)."""
    recorder = Recorder(app.state.sessionmaker, interval=3600, **limits)
    monkeypatch.setattr(app.state, "recorder", recorder)
    recorder.request_started()
    return recorder


def gated_writes(monkeypatch: pytest.MonkeyPatch) -> asyncio.Semaphore:
    """Each batch write waits for a permit of the returned semaphore (none at first)."""
    permits = asyncio.Semaphore(0)
    real = recorder_module.write_batch

    async def gated(*args: Any, **kwargs: Any) -> Any:
        await permits.acquire()
        return await real(*args, **kwargs)

    monkeypatch.setattr(recorder_module, "write_batch", gated)
    return permits


async def until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.01)


async def events(database_url: str) -> int:
    return len((await recorded(database_url))[2])


async def test_a_full_backlog_costs_the_next_request_one_batch_not_the_backlog(
    client: httpx.AsyncClient,
    app: FastAPI,
    alice: Account,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await seed(client, alice)
    recorder = own_recorder(app, monkeypatch, max_batch=2, max_backlog=5)
    for n in range(5):
        await answer(client, version_name="1.0.0", device_id=device(n))
    assert recorder.pending == 5
    assert await events(database_url) == 0
    # The sixth finds the backlog full: it writes the two oldest, then adds its own.
    await answer(client, version_name="1.0.0", device_id=device(5))
    assert recorder.pending == 5 - 2 + 1
    devices, _, _, _ = await recorded(database_url)
    assert sorted(devices) == [device(0), device(1)]
    # Below the threshold again: the next request does not wait.
    await answer(client, version_name="1.0.0", device_id=device(6))
    assert recorder.pending == 5
    await recorder.close()
    assert await events(database_url) == 7


async def test_a_request_waits_for_the_batch_in_progress_only(
    client: httpx.AsyncClient,
    app: FastAPI,
    alice: Account,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request behind a flush of the whole backlog waits for the batch being written, not
    for the flush (nor for the requests queued before it)."""
    await seed(client, alice)
    recorder = own_recorder(app, monkeypatch, max_batch=3, max_backlog=8)
    for n in range(7):
        await answer(client, version_name="1.0.0", device_id=device(n))
    recorder.max_backlog = 4
    permits = gated_writes(monkeypatch)
    flush = asyncio.create_task(recorder.flush())  # three batches, the first one blocked
    await asyncio.sleep(0.05)
    assert recorder.pending == 4  # the first batch is being written: the backlog is full
    waiting = [
        asyncio.create_task(answer(client, version_name="1.0.0", device_id=device(7 + n)))
        for n in range(3)
    ]
    await asyncio.wait_for(until(lambda: recorder.in_flight == 1 + 3), timeout=5)
    await asyncio.sleep(0.05)
    assert not any(task.done() for task in waiting)
    permits.release()  # the first batch is written; the second then waits for a permit
    await asyncio.wait_for(asyncio.gather(*waiting), timeout=5)
    assert not flush.done()
    assert await events(database_url) == 3
    assert recorder.pending == 1 + 3  # the second batch is out of the buffer, being written
    for _ in range(10):
        permits.release()
    await asyncio.wait_for(flush, timeout=5)
    assert recorder.pending == 0
    assert await events(database_url) == 10


async def test_the_backlog_stays_bounded_while_the_writer_is_slow(
    client: httpx.AsyncClient,
    app: FastAPI,
    alice: Account,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Many concurrent requests and a writer slower than them: the backlog never passes the
    threshold by more than the requests in progress, and everything is written."""
    await seed(client, alice)
    recorder = own_recorder(app, monkeypatch, max_batch=3, max_backlog=6)
    real = recorder_module.write_batch

    async def slow(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.05)
        return await real(*args, **kwargs)

    monkeypatch.setattr(recorder_module, "write_batch", slow)
    concurrency, largest = 4, 0

    async def requests(first: int) -> None:
        nonlocal largest
        for n in range(first, 40, concurrency):
            await answer(client, version_name="1.0.0", device_id=device(n))
            largest = max(largest, recorder.pending)

    await asyncio.gather(*(requests(first) for first in range(concurrency)))
    assert 6 <= largest <= 6 + concurrency
    await recorder.close()
    assert await events(database_url) == 40


async def test_requests_waiting_for_a_batch_that_fails_go_on_at_once(
    client: httpx.AsyncClient,
    app: FastAPI,
    alice: Account,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch that fails releases the requests waiting for it before its recordings are
    retried one by one; after that, a full backlog makes nobody wait."""
    await seed(client, alice)
    recorder = own_recorder(app, monkeypatch, max_batch=2, max_backlog=5)
    for n in range(4):
        await answer(client, version_name="1.0.0", device_id=device(n))
    recorder.max_backlog = 2
    permits = asyncio.Semaphore(0)
    retry = asyncio.Event()

    async def refuse(*_: object, **__: object) -> None:
        await permits.acquire()
        raise RuntimeError("the database refuses writes")

    async def blocked(*_: object, **__: object) -> None:
        await retry.wait()
        raise RuntimeError("the database refuses writes")

    monkeypatch.setattr(recorder_module, "write_batch", refuse)
    monkeypatch.setattr(recorder_module, "write", blocked)
    writing = asyncio.create_task(answer(client, version_name="1.0.0", device_id=device(4)))
    await asyncio.wait_for(until(lambda: recorder.in_flight == 1 + 1), timeout=5)
    await asyncio.sleep(0.05)
    assert not writing.done()  # it is writing the oldest batch; two wait still: full
    assert recorder.pending == 2
    waiting = asyncio.create_task(answer(client, version_name="1.0.0", device_id=device(5)))
    await asyncio.wait_for(until(lambda: recorder.in_flight == 1 + 2), timeout=5)
    await asyncio.sleep(0.05)
    assert not waiting.done()  # it waits for that batch
    permits.release()  # the batch fails; its retry, one by one, is blocked
    await asyncio.wait_for(waiting, timeout=5)
    for n in range(6, 10):  # a full backlog, a failing writer: nobody waits
        await answer(client, version_name="1.0.0", device_id=device(n))
    assert recorder.pending == 2 + 1 + 4
    assert not writing.done()  # the request that wrote the batch is the one retrying it
    retry.set()  # the retry fails too: those two recordings are lost, and logged
    await asyncio.wait_for(writing, timeout=5)
    monkeypatch.undo()
    await recorder.flush()
    assert await events(database_url) == 8


async def test_the_batch_writer_stores_values_as_the_orm_does(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    """``write_batch`` bypasses SQLAlchemy's type processing (db.bulk): what it stores must be
    what the models store, byte for byte on SQLite, so every reader sees the same values."""
    await seed(client, alice)
    at = datetime(2026, 7, 1, 12, 0, 0, tzinfo=UTC)  # no microseconds: still written out
    seen = replace(
        seen_device(device(1)), platform="ios", os_version=None, is_prod=False, is_emulator=True
    )
    recording = Recording(APP_ID, device(1), device=seen, at=at)
    recording.event("get", "1.0.0")
    recording.count("1.0.0", "get")
    async with app.state.sessionmaker() as session, session.begin():
        await write_batch(session, [recording])
        session.add(Device(**{**vars(seen), "device_id": device(2)}, updated_at=at, created_at=at))
        session.add(DeviceActivity(app_id=APP_ID, date=at.date(), device_id=device(2)))
        session.add(
            StatsEvent(
                app_id=APP_ID,
                device_id=device(2),
                action="get",
                version_name="1.0.0",
                created_at=at,
            )
        )
        session.add(DailyVersion(app_id=APP_ID, date=at.date(), version_name="1.1.0", get=1))
    columns = {
        "devices": "updated_at, is_prod, is_emulator, os_version",
        "device_activity": "date",
        "stats": "created_at, version_name IS NULL",
        "daily_version": "date, get",
    }
    async with app.state.sessionmaker() as session:
        connection = await session.connection()
        for table, names in columns.items():
            rows = (await connection.exec_driver_sql(f"SELECT {names} FROM {table}")).all()
            assert len(rows) == 2, table
            assert rows[0] == rows[1], table
        written = await session.get_one(Device, (APP_ID, device(1)))
        assert (written.updated_at, written.is_prod, written.is_emulator) == (at, False, True)
        assert written.created_at.tzinfo == UTC


async def test_batch_writers_in_two_workers_never_deadlock(
    client: httpx.AsyncClient, app: FastAPI, alice: Account, database_url: str
) -> None:
    """Two workers' batches with the same devices in opposite orders. Each batch takes its row
    locks in key order, whatever the order the devices called in, so the second waits for the
    first instead of each holding a row the other wants (PostgreSQL: DeadlockDetectedError)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time: no row locks to take in any order")
    await seed(client, alice)
    first, second = device(1), device(2)

    def batch(*order: str) -> list[Recording]:
        return [Recording(APP_ID, d, device=seen_device(d)) for d in order]

    async def write_in_own_transaction(recordings: list[Recording]) -> None:
        async with app.state.sessionmaker() as session, session.begin():
            await write_batch(session, recordings)

    await write_in_own_transaction(batch(first, second))  # both rows exist: upserts lock them

    async def waiting_for_locks() -> int:
        async with app.state.sessionmaker() as session:
            count: int = await session.scalar(
                select(func.count())
                .select_from(text("pg_stat_activity"))
                .where(text("wait_event_type = 'Lock' AND datname = current_database()"))
            )
            return count

    async with app.state.sessionmaker() as holder, holder.begin():
        # Another transaction holds the first device's row: worker A queues on it.
        await holder.execute(select(Device).where(Device.device_id == first).with_for_update())
        worker_a = asyncio.create_task(write_in_own_transaction(batch(first, second)))
        await until_async(waiting_for_locks, 1)
        # Worker B's devices arrived the other way round.
        worker_b = asyncio.create_task(write_in_own_transaction(batch(second, first)))
        await until_async(waiting_for_locks, 2)
    # The holder has committed: A and B go on, one after the other.
    await asyncio.wait_for(asyncio.gather(worker_a, worker_b), timeout=10)
    devices, _, _, _ = await recorded(database_url)
    assert sorted(devices) == [first, second]


async def until_async(count: Callable[[], Any], at_least: int) -> None:
    """Wait (at most 5 s) until the awaitable ``count()`` returns ``at_least``."""
    for _ in range(500):
        if await count() >= at_least:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never reached {at_least}")
