"""How ``capgo-server serve`` runs the app under uvicorn, and what a served worker does that a
test run or a program embedding the app does not. The hot-path benchmark's bare endpoint is
served through :func:`run` too, so both are measured under the same server options."""

from __future__ import annotations

import asyncio
import gc
import socket

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

#: Allocations between two collections of the youngest generation (Python's default: 700).
GC_YOUNG_THRESHOLD = 10_000


class NoDelayH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, with Nagle's algorithm off on every TCP connection.

    asyncio turns ``TCP_NODELAY`` on only for sockets whose protocol number is ``IPPROTO_TCP``.
    With ``--workers`` above 1, uvicorn binds the listening socket itself as
    ``socket.socket(AF_INET)`` (protocol 0), so the connections it accepts keep Nagle on, and a
    response written as headers, then body, waits for the client's delayed ACK (about 40 ms).
    Measured on the bench's bare endpoint with 2 workers: 727 req/s at 43.8 ms mean latency,
    against 4,840 req/s at 6.6 ms with 1 worker.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)


def run(app_factory: str, host: str, port: int, workers: int, app_dir: str = "") -> None:
    """Serve the app that the import string ``app_factory`` (``module:function``) builds."""
    uvicorn.run(
        app_factory,
        app_dir=app_dir or None,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http=NoDelayH11Protocol,
        proxy_headers=True,
        log_level="info",
    )


def tune_garbage_collector() -> None:
    """Keep a serving worker's long-lived objects out of the garbage collector's way.

    Everything alive once the app has started (modules, routes, models, settings) lives as long
    as the worker. ``gc.freeze()`` takes it out of every later collection, so the full
    collections a busy worker runs walk only what it made since, and stall the event loop (and
    every request waiting on it) for less. A device request allocates a few hundred objects,
    nearly all freed by reference counting, so the youngest generation is collected every
    :data:`GC_YOUNG_THRESHOLD` allocations instead of every 700. Process-wide: only served
    workers call it (``capgo_server.app.create_served_app``), never a test run or a program
    embedding the app.
    """
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, oldest)
