"""Network faults between a client and the real app, injected at the httpx transport.

``FaultyTransport`` forwards every request to the in-process app (``httpx.ASGITransport``) but,
for the n-th ``PATCH`` named in its plan, fails the way a network does:

- ``drop``: the connection dies before the request reaches the server;
- ``lose_response``: the server handles the request, then the connection dies before the client
  reads the answer;
- ``cut``: the connection dies halfway through the body: the server receives only the first half
  (its body simply ends, as when a client disconnects) and the client gets no answer;
- ``503``: a proxy in front of the server answers 503 without forwarding.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal

import httpx

Fault = Literal["drop", "lose_response", "cut", "503"]


@dataclass
class Forwarded:
    """A PATCH as the server received it."""

    offset: int
    body_bytes: int


@dataclass
class FaultyTransport(httpx.AsyncBaseTransport):
    inner: httpx.AsyncBaseTransport
    plan: dict[int, Fault] = field(default_factory=dict)
    #: Fault every PATCH from this number on (1-based), e.g. a network that stays down.
    fail_from: int | None = None
    patches: int = 0
    forwarded: list[Forwarded] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.methods.append(request.method)
        if request.method != "PATCH":
            return await self.inner.handle_async_request(request)
        self.patches += 1
        fault = self.plan.get(self.patches)
        if fault is None and self.fail_from is not None and self.patches >= self.fail_from:
            fault = "drop"
        if fault == "drop":
            raise httpx.ReadError("connection reset by peer", request=request)
        if fault == "503":
            return httpx.Response(503, text="upstream unavailable", request=request)
        body = b"".join([piece async for piece in request.stream])  # type: ignore[union-attr]
        if fault == "cut":
            body = body[: len(body) // 2]
        forwarded = httpx.Request(
            request.method,
            request.url,
            headers=request.headers,
            stream=_stream(body),
        )
        self.forwarded.append(Forwarded(int(request.headers["Upload-Offset"]), len(body)))
        response = await self.inner.handle_async_request(forwarded)
        if fault in ("lose_response", "cut"):
            await response.aread()
            raise httpx.ReadError("connection reset by peer", request=request)
        return response


class _stream(httpx.AsyncByteStream):
    def __init__(self, body: bytes) -> None:
        self.body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.body), 16 * 1024):
            yield self.body[start : start + 16 * 1024]


def web_zip(filler: bytes) -> bytes:
    """A zip the plugin can install: index.html at its root and some incompressible filler."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("index.html", "<!doctype html><script src=js/app.js></script>")
        archive.writestr("js/app.js", "console.log('bundle')")
        archive.writestr("assets/filler.bin", filler)
    return buffer.getvalue()
