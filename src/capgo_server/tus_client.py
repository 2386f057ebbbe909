"""A small tus 1.0 client (core + creation + termination) on httpx, used by ``bundle upload``.

https://tus.io/protocols/resumable-upload: ``POST`` the creation endpoint with ``Upload-Length``
and ``Upload-Metadata`` (201 and a ``Location``), then ``PATCH`` the upload URL chunk by chunk
with ``Upload-Offset`` (204 and the new ``Upload-Offset``). When a ``PATCH`` fails on the network
or with a 5xx/409, the client asks the server where it stands (``HEAD`` → ``Upload-Offset``) and
continues from there, a few times with exponential backoff.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, BinaryIO

import httpx

TUS_VERSION = "1.0.0"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024
#: Granularity of progress reports inside one PATCH body.
_SLICE = 64 * 1024
#: Statuses after which the upload may continue once the server's offset is known again.
_RETRYABLE = frozenset({409, 423, 429})

Progress = Callable[[int], None]
Sleep = Callable[[float], Awaitable[None]]


class TusError(Exception):
    """The server refused a request: ``status``, and Capgo's ``{error, message}`` if it sent one."""

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        method: str = "",
        more_info: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{method} {status} {code or ''}: {message}".strip())
        self.status = status
        self.code = code
        self.message = message
        self.method = method
        self.more_info = more_info or {}

    @classmethod
    def from_response(cls, response: httpx.Response) -> TusError:
        code: str | None = None
        message = response.reason_phrase or f"HTTP {response.status_code}"
        more_info: dict[str, Any] = {}
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            if isinstance(body.get("error"), str):
                code = body["error"]
            if isinstance(body.get("message"), str):
                message = body["message"]
            if isinstance(body.get("moreInfo"), dict):
                more_info = body["moreInfo"]
        return cls(response.status_code, code, message, response.request.method, more_info)


class TusGaveUpError(Exception):
    """The upload kept failing (network errors, 5xx) after every retry.

    ``offset`` is the last offset the server confirmed; ``sent_everything`` is true when the
    last failed request carried the final byte (the server may have completed the upload).
    """

    def __init__(self, reason: str, offset: int, *, sent_everything: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.offset = offset
        self.sent_everything = sent_everything


class TusUploadGoneError(Exception):
    """``HEAD`` answered 404/410: the server no longer knows the upload (finished, terminated).

    ``sent_everything``: the request that failed before carried the final byte, so the upload
    may well have completed.
    """

    def __init__(self, status: int, *, sent_everything: bool) -> None:
        super().__init__(f"HEAD {status}: the upload is no longer known to the server")
        self.status = status
        self.sent_everything = sent_everything


def encode_metadata(metadata: Mapping[str, str]) -> str:
    """``Upload-Metadata``: ``key base64(value)`` pairs separated by commas."""
    pairs = []
    for key, value in metadata.items():
        if not key or any(c in key for c in " ,") or not key.isascii():
            raise ValueError(f"invalid tus metadata key {key!r}")
        pairs.append(f"{key} {base64.b64encode(value.encode()).decode('ascii')}")
    return ",".join(pairs)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text.splitlines()[0]}" if text else name


class TusUploader:
    """Uploads one file through a tus server.

    ``headers`` (e.g. authorization) go with every request. ``retries`` bounds consecutive failed
    attempts (a confirmed chunk resets the count); the n-th retry waits ``backoff * 2**(n-1)``
    seconds, at most ``max_backoff``. ``on_retry(message)`` hears about every interruption.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        headers: Mapping[str, str] | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        sleep: Sleep = asyncio.sleep,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        self.http = http
        self.headers = {**(headers or {}), "Tus-Resumable": TUS_VERSION}
        self.chunk_size = chunk_size
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.sleep = sleep
        self.on_retry = on_retry
        #: Interruptions survived by the last ``upload`` call.
        self.interruptions = 0

    async def create(self, endpoint: str, length: int, metadata: Mapping[str, str]) -> str:
        """Create an upload of ``length`` bytes; returns its absolute URL."""
        headers = {**self.headers, "Upload-Length": str(length)}
        if metadata:
            headers["Upload-Metadata"] = encode_metadata(metadata)
        response = await self.http.post(endpoint, headers=headers)
        if response.status_code != 201:
            raise TusError.from_response(response)
        location = response.headers.get("Location")
        if not location:
            raise TusError(201, None, "the server created the upload but sent no Location", "POST")
        return str(response.request.url.join(location))

    async def status(self, url: str) -> tuple[int, int | None]:
        """The server's offset for the upload and its length if known (``HEAD``)."""
        response = await self.http.head(url, headers={**self.headers, "Cache-Control": "no-store"})
        if response.status_code in (404, 410):
            raise TusUploadGoneError(response.status_code, sent_everything=False)
        if response.status_code not in (200, 204):
            raise TusError.from_response(response)
        length = response.headers.get("Upload-Length", "")
        return _offset_header(response), int(length) if length.isdigit() else None

    async def terminate(self, url: str) -> None:
        """Cancel the upload (termination extension); the server drops what it received."""
        response = await self.http.delete(url, headers=self.headers)
        if response.status_code not in (204, 404, 410):
            raise TusError.from_response(response)

    async def upload(
        self,
        url: str,
        source: BinaryIO,
        length: int,
        *,
        offset: int = 0,
        on_progress: Progress | None = None,
    ) -> httpx.Response | None:
        """Send ``source[offset:length]``; returns the response to the PATCH that completed it.

        Returns ``None`` when nothing was left to send or the upload was found complete after an
        interruption. Raises ``TusError`` for a refusal, ``TusGaveUpError`` when retries run out.
        """
        self.interruptions = 0
        failures = 0
        last: httpx.Response | None = None
        while offset < length:
            size = min(self.chunk_size, length - offset)
            source.seek(offset)
            chunk = source.read(size)
            if len(chunk) != size:
                raise OSError(f"the file changed while uploading: short read at {offset}")
            try:
                response = await self._patch(url, chunk, offset, on_progress)
            except httpx.TransportError as exc:
                reason = _describe(exc)
            else:
                if response.status_code in (200, 204):
                    new_offset = _offset_header(response)
                    if not offset < new_offset <= offset + size:
                        raise TusError(
                            response.status_code,
                            None,
                            f"the server answered Upload-Offset {new_offset} after a chunk "
                            f"{offset}..{offset + size}",
                            "PATCH",
                        )
                    offset, failures, last = new_offset, 0, response
                    if on_progress:
                        on_progress(offset)
                    continue
                if response.status_code < 500 and response.status_code not in _RETRYABLE:
                    raise TusError.from_response(response)
                reason = f"HTTP {response.status_code}"
            sent_everything = offset + size == length
            failures += 1
            confirmed, failures = await self._resync(url, offset, failures, reason, sent_everything)
            if confirmed > offset:
                failures = 0  # the server kept part of the chunk: progress, not a failure streak
            offset = confirmed
            if on_progress:
                on_progress(offset)
            if offset >= length:
                return None
        return last

    async def _resync(
        self, url: str, offset: int, failures: int, reason: str, sent_everything: bool
    ) -> tuple[int, int]:
        """Wait, then learn the server's offset (``HEAD``), retrying the ``HEAD`` itself.

        Returns the offset and the count of consecutive failures so far.
        """
        while True:
            if failures > self.retries:
                raise TusGaveUpError(
                    f"gave up after {self.retries} retries: {reason}",
                    offset,
                    sent_everything=sent_everything,
                )
            self.interruptions += 1
            delay = min(self.max_backoff, self.backoff * 2 ** (failures - 1))
            if self.on_retry:
                self.on_retry(
                    f"upload interrupted at byte {offset} ({reason}); "
                    f"resuming in {delay:g}s (retry {failures}/{self.retries})"
                )
            await self.sleep(delay)
            try:
                response = await self.http.head(
                    url, headers={**self.headers, "Cache-Control": "no-store"}
                )
            except httpx.TransportError as exc:
                reason = _describe(exc)
                failures += 1
                continue
            if response.status_code in (404, 410):
                raise TusUploadGoneError(response.status_code, sent_everything=sent_everything)
            if response.status_code >= 500 or response.status_code in _RETRYABLE:
                reason = f"HEAD answered HTTP {response.status_code}"
                failures += 1
                continue
            if response.status_code not in (200, 204):
                raise TusError.from_response(response)
            return _offset_header(response), failures

    async def _patch(
        self, url: str, chunk: bytes, offset: int, on_progress: Progress | None
    ) -> httpx.Response:
        async def body() -> AsyncIterator[bytes]:
            for start in range(0, len(chunk), _SLICE):
                piece = chunk[start : start + _SLICE]
                yield piece
                if on_progress:
                    on_progress(offset + start + len(piece))

        headers = {
            **self.headers,
            "Upload-Offset": str(offset),
            "Content-Type": OFFSET_CONTENT_TYPE,
            "Content-Length": str(len(chunk)),
        }
        return await self.http.patch(url, headers=headers, content=body())


def _offset_header(response: httpx.Response) -> int:
    raw = response.headers.get("Upload-Offset", "")
    if not raw.isdigit():
        raise TusError(
            response.status_code,
            None,
            f"the server sent no valid Upload-Offset (got {raw!r})",
            response.request.method,
        )
    return int(raw)
