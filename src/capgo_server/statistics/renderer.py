"""Charts drawn away from the event loop, a bounded number at a time.

pygal is pure Python and holds the GIL, so a chart drawn in the worker's event loop, or in a
thread beside it, stops every other request while it draws. Each worker therefore draws in a
small pool of processes of its own (``CAPGO_CHART_RENDERERS``, started on the first chart), and
serves at most that many chart requests at once, their database reads included. A chart
request beyond that waits for a free renderer up to ``CAPGO_CHART_WAIT_SECONDS``, then gets 503
``charts_busy`` with ``Retry-After``: a burst of charts queues briefly, a sustained flood is
turned away, and neither slows the device endpoints.

The processes come from a fork server that has already imported :mod:`.graph` (pygal, and
nothing of the server), so a renderer starts in milliseconds and holds no copy of the worker's
connections or threads.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import asynccontextmanager
from multiprocessing import forkserver

from capgo_server.errors import ApiError
from capgo_server.statistics import graph

#: How often a renderer checks that the server worker that started it is still there.
_PARENT_CHECK_SECONDS = 1.0


def charts_busy(retry_after: int) -> ApiError:
    """503 ``charts_busy``: every renderer stayed busy for the whole wait."""
    return ApiError(
        503,
        "charts_busy",
        "Too many charts are being drawn; try again shortly",
        {"retry_after": retry_after},
        headers={"Retry-After": str(retry_after)},
    )


def _start_method() -> multiprocessing.context.BaseContext:
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([graph.__name__])
        return context
    return multiprocessing.get_context("spawn")


def _server_alive(server: int) -> bool:
    try:
        os.kill(server, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # the pid now belongs to another user's process
        return False
    return True


def _exit_with_server(server: int, parent: int) -> None:
    while os.getppid() == parent and _server_alive(server):
        time.sleep(_PARENT_CHECK_SECONDS)
    os._exit(0)


def _renderer_started(server: int) -> None:
    """In each renderer process: Ctrl-C is the server's to handle (it stops the pool), and a
    renderer whose server was killed outright does not linger.

    A process of the fork server inherits the fork server's "clients alive" pipe, which keeps
    the fork server running as long as the renderer does: the renderer closes it (it starts no
    process), so the fork server exits with the server, and watches the server itself.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    alive_fd = getattr(forkserver._forkserver, "_forkserver_alive_fd", None)
    if alive_fd is not None:
        os.close(alive_fd)
        forkserver._forkserver._forkserver_alive_fd = None  # type: ignore[attr-defined]
    threading.Thread(target=_exit_with_server, args=(server, os.getppid()), daemon=True).start()


class ChartRenderer:
    """A worker's chart renderers (one per worker, made in the app's lifespan)."""

    def __init__(self, processes: int, wait_seconds: float) -> None:
        self.processes = processes
        self.wait_seconds = wait_seconds
        self._slots = asyncio.Semaphore(processes)
        self._pool: ProcessPoolExecutor | None = None

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """One of the chart requests served at once, waited for up to ``wait_seconds``
        (503 ``charts_busy`` past it)."""
        if self._slots.locked():
            try:
                await asyncio.wait_for(self._slots.acquire(), self.wait_seconds)
            except TimeoutError:
                raise charts_busy(max(1, math.ceil(self.wait_seconds))) from None
        else:
            await self._slots.acquire()  # free: returns at once
        try:
            yield
        finally:
            self._slots.release()

    async def draw(self, chart: graph.Chart) -> str:
        """``graph.draw(chart)`` in a renderer process."""
        pool = self._running_pool()
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, graph.draw, chart)
        except BrokenProcessPool:
            # A renderer died (killed, out of memory): this chart is lost, the next one starts
            # a new pool.
            if self._pool is pool:
                self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            raise charts_busy(1) from None

    def _running_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.processes,
                mp_context=_start_method(),
                initializer=_renderer_started,
                initargs=(os.getpid(),),
            )
        return self._pool

    def close(self) -> None:
        """Stop the renderers (the app's shutdown); charts still drawing are abandoned."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
