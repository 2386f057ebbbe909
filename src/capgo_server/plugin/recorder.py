"""The worker's recording buffer: device bookkeeping batched off the request path.

Device endpoints hand their :class:`~.recording.Recording` objects to :meth:`Recorder.submit`,
which only appends them to a list. The recorder writes what has gathered in one transaction
(:func:`~.recording.write_batch`):

* at least every ``CAPGO_RECORD_INTERVAL_SECONDS`` (1 s) while requests keep coming, or as soon
  as :data:`MAX_BATCH` recordings are waiting;
* when no other device request is in progress, within ``CAPGO_RECORD_IDLE_DELAY_SECONDS``
  (1 s) of the last write, and at once when that is 0 (the tests: each request's recordings are
  written before the next request starts). Each write is a transaction with a fixed cost, so
  the delay caps how many a steady moderate load pays for: with requests arriving one at a
  time, the recorder sees nothing in progress after almost every response;
* on shutdown (:meth:`Recorder.close`, from the application's lifespan), so a SIGTERM loses
  nothing.

A crash (SIGKILL, power loss) loses what was waiting: at most about a second of device rows,
events and counters. Bundles, channels and keys are never written here; they are committed by
their own requests before those answer.

If a batch cannot be written, its recordings are written one by one (:func:`~.recording.write`,
each in its own transaction), so one bad recording costs only itself. If the database stays
unusable, at most :data:`MAX_BUFFER` recordings wait in memory; beyond that the oldest are
dropped, and the loss is logged.

If the database works but cannot keep up (more device requests a second than the writer stores,
as a saturated worker on SQLite can be), a device request that finds :data:`MAX_BACKLOG`
recordings waiting first makes room (:meth:`Recorder.make_room`): if a batch is being written,
it waits for that batch to end; otherwise it writes one batch of at most :data:`MAX_BATCH` (the
oldest) itself; then it looks again. A batch takes out :data:`MAX_BATCH` recordings while only
the requests in progress add theirs, so one batch write is all a request waits for unless more
requests are in progress than a batch holds; it never waits for the whole backlog nor for the
writes queued before it. The worker answers more slowly instead of growing its memory: while
writes succeed, the backlog stays below :data:`MAX_BACKLOG` plus what the requests in progress
record. While writes fail, requests never wait for them: a failed batch releases the requests
waiting for it before its recordings are retried one by one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Iterable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from capgo_server.plugin.recording import ActivityMemo, Recording, write, write_batch

logger = logging.getLogger("capgo_server.plugin")

#: The longest a recording waits in memory while requests keep coming (the setting's default).
FLUSH_SECONDS = 1.0
#: The shortest time between two writes made because the server looked idle (the default).
IDLE_DELAY_SECONDS = 1.0
#: Recordings that trigger a write before the second is over, and the most one transaction
#: writes. Also the longest a request can wait behind the backlog: one batch write.
MAX_BATCH = 2_000
#: Recordings waiting beyond which a device request waits for the writer (while it works).
MAX_BACKLOG = 5 * MAX_BATCH
#: Recordings kept while the database refuses them; beyond this the oldest are dropped.
MAX_BUFFER = 200_000


class Recorder:
    """One per application and worker process (``app.state.recorder``)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        interval: float = FLUSH_SECONDS,
        idle_delay: float = IDLE_DELAY_SECONDS,
        max_batch: int = MAX_BATCH,
        max_buffer: int = MAX_BUFFER,
        max_backlog: int = MAX_BACKLOG,
    ) -> None:
        self._sessionmaker = sessionmaker
        self.interval = interval
        self.idle_delay = idle_delay
        #: When the last write began (the event loop's clock), and the timer of an idle write
        #: that waits for :attr:`idle_delay` to have passed since.
        self._last_flush = -math.inf
        self._idle_write: asyncio.TimerHandle | None = None
        self.max_batch = max_batch
        self.max_buffer = max_buffer
        self.max_backlog = max_backlog
        #: Whether the last write succeeded: only a working writer makes requests wait for it.
        self._writing_works = True
        self._buffer: list[Recording] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        #: Writers holding or waiting for :attr:`_lock`.
        self._writers = 0
        #: Set (and replaced) each time a batch write ends, successful or not.
        self._batch_ended = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._known = ActivityMemo()
        #: Device requests between the start of their handler and the end of their response.
        self.in_flight = 0
        self.flushes = 0
        self.written = 0
        self.dropped = 0

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def start(self) -> None:
        """Start the periodic writer (call from the running event loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def submit(self, recordings: Iterable[Recording]) -> None:
        self._buffer.extend(recordings)
        if len(self._buffer) > self.max_buffer:
            excess = len(self._buffer) - self.max_buffer
            del self._buffer[:excess]
            self.dropped += excess
            logger.error("recording buffer full: dropped the %d oldest recordings", excess)
        if len(self._buffer) >= self.max_batch:
            self._wake.set()

    async def _run(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            self._wake.clear()
            self._idle_write = None
            try:
                await self.flush()
            except Exception:  # never let the writer die; the next round retries
                logger.exception("recording flush failed")

    async def flush(self) -> None:
        """Write everything submitted so far."""
        async with self._writing():
            while self._buffer:
                await self._write_oldest()

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[None]:
        """Hold the write lock (one writer at a time), counted in :attr:`_writers`."""
        self._writers += 1
        try:
            async with self._lock:
                yield
        finally:
            self._writers -= 1

    async def _write_oldest(self) -> None:
        """Write the oldest :attr:`max_batch` recordings (the write lock held)."""
        # Only a write counts for the idle delay: the periodic writer's rounds that find nothing
        # to write must not hold back the next idle write.
        self._last_flush = asyncio.get_running_loop().time()
        batch, self._buffer = self._buffer[: self.max_batch], self._buffer[self.max_batch :]
        await self._write(batch)

    async def _write(self, batch: list[Recording]) -> None:
        try:
            try:
                async with self._sessionmaker() as session, session.begin():
                    seen = await write_batch(session, batch, self._known)
            finally:
                # Requests waiting for room go on now, before a failed batch is retried one
                # recording at a time: they never wait for a failing writer.
                ended, self._batch_ended = self._batch_ended, asyncio.Event()
                ended.set()
        except Exception:
            logger.exception(
                "could not write %d recordings at once; writing them one by one", len(batch)
            )
            self._writing_works = False
            await self._write_one_by_one(batch)
        else:
            self._known.add(seen)
            self.written += len(batch)
            self._writing_works = True
        self.flushes += 1

    async def _write_one_by_one(self, batch: list[Recording]) -> None:
        lost = 0
        for recording in batch:
            try:
                async with self._sessionmaker() as session, session.begin():
                    await write(session, recording)
            except Exception:  # the device already has its answer; keep serving
                lost += 1
                if lost == 1:
                    logger.exception("could not record device activity for %s", recording.app_id)
            else:
                self.written += 1
        if lost:
            logger.error("lost %d of %d recordings", lost, len(batch))

    async def close(self) -> None:
        """Stop the periodic writer and write what is left (the lifespan's exit)."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()

    # --- the device requests' part ---------------------------------------------------------

    def request_started(self) -> None:
        self.in_flight += 1

    def _backlog_full(self) -> bool:
        return len(self._buffer) >= self.max_backlog and self._writing_works

    async def make_room(self) -> None:
        """Before a device request: while the backlog is at :attr:`max_backlog` and the
        database takes writes, wait for the batch being written, or else write the oldest
        batch (backpressure, not memory growth). One batch write is enough unless more
        requests are in progress than a batch holds."""
        while self._backlog_full():
            if self._writers:
                # Queueing for the lock would mean waiting for every write queued before this
                # request (a whole flush of the backlog); the batch in progress makes room.
                await self._batch_ended.wait()
                continue
            async with self._writing():
                if self._backlog_full():
                    await self._write_oldest()

    async def request_finished(self) -> None:
        """After a device response: if nothing else is going on, write now, or as soon as
        :attr:`idle_delay` has passed since the last write."""
        self.in_flight -= 1
        if self.in_flight or not self._buffer or self._writers:
            return
        loop = asyncio.get_running_loop()
        wait = self._last_flush + self.idle_delay - loop.time()
        if wait <= 0:
            await self.flush()
        elif self._idle_write is None:
            self._idle_write = loop.call_later(wait, self._wake.set)
