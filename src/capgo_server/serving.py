"""How ``capgo-server serve`` runs the app under uvicorn, and what a served worker does that a
test run or a program embedding the app does not. The hot-path benchmark's bare endpoint is
served through :func:`run` too, so both are measured under the same server options."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from capgo_server.read_timeouts import ReadTimeoutH11Protocol

logger = logging.getLogger("uvicorn.error")
S = TypeVar("S", bound=socket.socket)

#: Allocations between two collections of the youngest generation (Python's default: 700).
GC_YOUNG_THRESHOLD = 10_000


class NoDelayH11Protocol(ReadTimeoutH11Protocol):
    """uvicorn's HTTP/1.1 protocol, with Nagle's algorithm off on every TCP connection (and
    slow clients' connections closed: :mod:`capgo_server.read_timeouts`).

    asyncio turns ``TCP_NODELAY`` on only for sockets whose protocol number is ``IPPROTO_TCP``.
    With ``--workers`` above 1, the listening sockets are made as ``socket.socket(AF_INET)``
    (protocol 0; by uvicorn, and by :class:`ListenerPerWorker` alike), so the connections they
    accept keep Nagle on, and a response written as headers, then body, waits for the client's
    delayed ACK (about 40 ms).
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
    if app_dir:
        sys.path.insert(0, app_dir)  # as uvicorn.run does; spawned workers inherit sys.path
    config = uvicorn.Config(
        app_factory,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http=NoDelayH11Protocol,
        # The app believes forwarded headers from CAPGO_TRUSTED_PROXIES only
        # (capgo_server.forwarded); uvicorn's own handling would trust any loopback peer.
        proxy_headers=False,
        log_level="info",
    )
    # What uvicorn.run does, but for the socket the workers get.
    if workers == 1:
        server = uvicorn.Server(config)
        server.run()
        if not server.started:
            sys.exit(STARTUP_FAILURE)
    elif sys.platform == "linux":  # where SO_REUSEPORT spreads connections
        with listener_per_worker(host, port) as listener:
            Multiprocess(config, sockets=[listener]).run()
    else:
        Multiprocess(config, sockets=[config.bind_socket()]).run()


class ListenerPerWorker(socket.socket):
    """The server's address, bound in the supervisor; each worker it reaches gets a listening
    socket of its own on that address (``SO_REUSEPORT``), and the kernel spreads connections
    across them.

    uvicorn's workers otherwise share the supervisor's one socket, and whichever worker wakes
    first accepts every connection waiting (asyncio accepts up to the backlog in one go). A
    client that opens its connections together and keeps them alive (a load balancer's pool, or
    the benchmark's 32) then talks to one worker while the others idle. Measured on the bench's
    bare endpoint with 2 workers: all 32 connections on one worker, 1,732 req/s against 1,626
    for one worker.

    Sockets reach uvicorn's workers by pickling (its workers are spawned), so this socket
    pickles as "bind another one like me" instead of as a duplicate of itself. Its own option
    is set too, which the kernel requires of every socket sharing the address, and it never
    listens, so it receives no connections.
    """

    def __reduce__(self) -> tuple[Callable[..., socket.socket], tuple[Any, ...]]:
        return _bind_sharing_the_port, (socket.socket, self.family, self.getsockname())


def _bind_sharing_the_port(kind: type[S], family: int, address: Any) -> S:
    sock = kind(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    return sock


@contextmanager
def listener_per_worker(host: str, port: int) -> Iterator[ListenerPerWorker]:
    """A :class:`ListenerPerWorker` on ``host:port``; exits the process, as uvicorn does, if
    the address is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        # A plain bind first: with SO_REUSEPORT alone, a second server started on the same
        # port by the same user would silently share its connections with the first.
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
            port = probe.getsockname()[1]
        listener = _bind_sharing_the_port(ListenerPerWorker, family, (host, port))
    except OSError as error:
        logger.error(error)
        sys.exit(STARTUP_FAILURE)
    logger.info("Uvicorn running on http://%s:%d (Press CTRL+C to quit)", host, port)
    with listener:
        yield listener


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
