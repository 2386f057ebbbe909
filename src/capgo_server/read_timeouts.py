"""Closing the connections of clients too slow sending their requests.

uvicorn bounds only the idle wait between two requests of a kept-alive connection: once a client
has sent one byte, it may take forever over the rest of its headers, and over its body. Such a
client holds no database connection (routes read their whole body before they open a
transaction, ``db.session``), but it holds a socket, a file descriptor and a task, and enough of
them run a worker out of descriptors. So, as Apache's ``mod_reqtimeout`` does:

* **headers**: all of a request's headers must arrive within ``CAPGO_HEADER_TIMEOUT_SECONDS`` of
  its first byte (of the connection opening, for a connection's first request);
* **body**: a body may pause at most ``CAPGO_BODY_TIMEOUT_SECONDS`` between two pieces, and once
  that long has passed it must average ``CAPGO_BODY_MIN_BYTES_PER_SECOND``: its allowance grows
  by a second per that many bytes received. A phone uploading a tus chunk of tens of MB at a
  few kB/s is never cut; one byte every few seconds is, after the grace period.

Time the server itself does not read (flow control paused reading because the application is
behind, writing a tus chunk to storage, say) is not counted against the client. A client past
its time has its connection closed; an application still waiting on its body sees a disconnect.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass

import h11
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.h11_impl import H11Protocol

from capgo_server.settings import Settings

logger = logging.getLogger("uvicorn.error")


@dataclass(frozen=True)
class ReadTimeouts:
    header_seconds: float
    body_seconds: float
    #: 0: no minimum rate, only the pause between two pieces is bounded.
    body_min_bytes_per_second: float

    @classmethod
    def of(cls, settings: Settings) -> ReadTimeouts:
        return cls(
            header_seconds=settings.header_timeout_seconds,
            body_seconds=settings.body_timeout_seconds,
            body_min_bytes_per_second=settings.body_min_bytes_per_second,
        )


@functools.cache
def configured_read_timeouts() -> ReadTimeouts:
    """The worker's timeouts, from its ``CAPGO_*`` environment (read once per process: uvicorn
    builds a protocol per connection)."""
    return ReadTimeouts.of(Settings())


class _ObservedFlowControl(FlowControl):
    """uvicorn's flow control, telling the protocol when reading pauses and resumes."""

    def __init__(self, transport: asyncio.Transport, protocol: ReadTimeoutH11Protocol) -> None:
        super().__init__(transport)
        self._protocol = protocol

    def pause_reading(self) -> None:
        if not self.read_paused:
            self._protocol.reading_paused()
        super().pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused:
            super().resume_reading()
            self._protocol.reading_resumed()


class ReadTimeoutH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, closing connections whose client is too slow sending a
    request's headers or body (see the module docstring)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.flow = _ObservedFlowControl(transport, self)
        self._timeouts = configured_read_timeouts()
        self._deadline: asyncio.TimerHandle | None = None
        self._reading_body = False
        self._body_started = 0.0  # loop time, moved forward by the time reading was paused
        self._body_received = 0
        self._paused_at: float | None = None
        self._start_headers()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow_client(len(data))

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # A pipelined request may have started without new data.
        if not self.transport.is_closing():
            self._follow_client(0)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def reading_paused(self) -> None:
        self._paused_at = self.loop.time()
        self._cancel_deadline()

    def reading_resumed(self) -> None:
        if self._paused_at is not None:
            self._body_started += self.loop.time() - self._paused_at
            self._paused_at = None
        if self._reading_body:
            self._arm_body_deadline()

    def _follow_client(self, received: int) -> None:
        """Set the deadline for what the client is sending now."""
        state = self.conn.their_state
        if state is h11.IDLE:
            # The next request's head, begun: its deadline runs from its first byte. Before
            # any byte, uvicorn's keep-alive timeout bounds the wait.
            if received and (self._reading_body or self._deadline is None):
                self._start_headers()
        elif state is h11.SEND_BODY:
            if not self._reading_body:
                self._reading_body = True
                self._body_started = self.loop.time()
                self._body_received = 0
            else:
                self._body_received += received
            if self._paused_at is None:
                self._arm_body_deadline()
        else:  # the request is all in (or the connection is done): nothing to wait for
            self._reading_body = False
            self._cancel_deadline()

    def _start_headers(self) -> None:
        self._reading_body = False
        self._arm(self.loop.time() + self._timeouts.header_seconds)

    def _arm_body_deadline(self) -> None:
        timeouts = self._timeouts
        deadline = self.loop.time() + timeouts.body_seconds
        if timeouts.body_min_bytes_per_second > 0:
            allowance = timeouts.body_seconds + (
                self._body_received / timeouts.body_min_bytes_per_second
            )
            deadline = min(deadline, self._body_started + allowance)
        self._arm(deadline)

    def _arm(self, when: float) -> None:
        self._cancel_deadline()
        self._deadline = self.loop.call_at(when, self._too_slow)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        what = "body" if self._reading_body else "headers"
        logger.info("%s: request %s too slow, connection closed", _peer(self.client), what)
        self.transport.close()


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "unknown client"
