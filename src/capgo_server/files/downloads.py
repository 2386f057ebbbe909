"""Serving bundle files on signed URLs: byte ranges, live-bundle checks and bandwidth counting."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from capgo_server.auth.access import authorize_app
from capgo_server.auth.principal import Principal
from capgo_server.auth.roles import Role
from capgo_server.clock import utcnow
from capgo_server.db.upsert import add_to_counters
from capgo_server.errors import ApiError
from capgo_server.integers import digits_at_most
from capgo_server.models import Bundle, DailyBandwidth
from capgo_server.storage.base import BundleStore

logger = logging.getLogger("capgo_server.files")

_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")

NOT_FOUND = ApiError(404, "not_found", "Not found")


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def range_not_satisfiable(size: int) -> ApiError:
    return ApiError(
        416,
        "range_not_satisfiable",
        "The requested range is outside the file",
        {"size": size},
        headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"},
    )


def requested_range(header: str | None, size: int) -> ByteRange | None:
    """The single byte range asked for, or ``None`` for the whole file.

    Malformed headers and multi-range requests are ignored (the whole file is sent, as RFC 9110
    allows); a range outside the file, or whose end precedes its start, is 416. Positions may
    have any number of digits: one past the file counts as the file's size (RFC 9110: a last
    position past the end means the end, a suffix longer than the file means all of it).
    """
    if header is None:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None or (not match[1] and not match[2]):
        return None
    if not match[1]:  # bytes=-n: the last n bytes
        suffix = _position(match[2], size)
        if suffix == 0 or size == 0:
            raise range_not_satisfiable(size)
        return ByteRange(size - suffix, size - 1)
    start = _position(match[1], size)
    end = _position(match[2], size) if match[2] else size - 1
    if start >= size or end < start:
        raise range_not_satisfiable(size)
    return ByteRange(start, min(end, size - 1))


def _position(digits: str, size: int) -> int:
    """A byte position of a ``Range`` header, at most ``size`` (beyond the file is all alike)."""
    position = digits_at_most(digits, size)
    return size if position is None else position


async def live_bundle_at(session: AsyncSession, path: str) -> Bundle:
    """The live (not deleted) bundle whose file is ``path``, else 404 ``not_found``."""
    bundle = await session.scalar(
        select(Bundle)
        .where(Bundle.r2_path == path, Bundle.deleted.is_(False))
        .order_by(Bundle.id)
        .limit(1)
    )
    if bundle is None:
        raise NOT_FOUND
    return bundle


async def bundle_for_link(
    session: AsyncSession, principal: Principal, app_id: str, version: str
) -> Bundle:
    """``version`` of ``app_id`` with a stored file, for a caller with read access.

    400 ``cannot_access_app`` for unknown and foreign apps alike; 404 ``bundle_not_found`` when
    the version does not exist, is deleted, or has no file here (an external URL).
    """
    denied = ApiError(400, "cannot_access_app", "You can't access this app", {"app_id": app_id})
    await authorize_app(session, principal, app_id, role=Role.read, denied=denied)
    bundle = await session.scalar(
        select(Bundle).where(
            Bundle.app_id == app_id,
            Bundle.name == version,
            Bundle.deleted.is_(False),
            Bundle.r2_path.is_not(None),
        )
    )
    if bundle is None:
        raise ApiError(
            404, "bundle_not_found", "Bundle not found", {"app_id": app_id, "version": version}
        )
    return bundle


async def record_bandwidth(
    sessionmaker: async_sessionmaker[AsyncSession], app_id: str, sent: int
) -> None:
    """Add ``sent`` bytes to the app's bandwidth for today (UTC), in a transaction of its own.

    One upsert-increment, so concurrent downloads never lose a count.
    """
    if sent <= 0:
        return
    async with sessionmaker() as session, session.begin():
        row = {"app_id": app_id, "date": utcnow().date(), "bandwidth": sent}
        await add_to_counters(session, DailyBandwidth, [row], ["app_id", "date"], ["bandwidth"])


#: Bandwidth writes in flight; the lifespan waits for them (:func:`finish_recording`).
_pending: set[asyncio.Task[None]] = set()


def _in_background(work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    task = asyncio.get_running_loop().create_task(work)
    _pending.add(task)
    task.add_done_callback(_pending.discard)
    return task


async def finish_recording() -> None:
    """Wait for the bandwidth writes still in flight (before the engine is disposed)."""
    while _pending:
        await asyncio.gather(*_pending, return_exceptions=True)


async def _record_safely(
    sessionmaker: async_sessionmaker[AsyncSession], app_id: str, sent: int
) -> None:
    try:
        await record_bandwidth(sessionmaker, app_id, sent)
    except SQLAlchemyError:  # e.g. the app was deleted while its bundle was downloading
        logger.exception("could not record %d bytes of bandwidth for %s", sent, app_id)


async def counted_stream(
    store: BundleStore,
    path: str,
    byte_range: ByteRange,
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    app_id: str,
) -> AsyncIterator[bytes]:
    """The bytes of ``byte_range``; a chunk counts as bandwidth once the server has sent it.

    The count is written by a task of its own, which the response waits for but cannot cancel:
    a client that hangs up as soon as it has the last byte (or midway) cancels the response,
    and that must not cancel the write. Tasks still running at shutdown are waited for.
    """
    sent = 0
    try:
        async for chunk in store.read(path, byte_range.start, byte_range.end):
            yield chunk
            sent += len(chunk)
    finally:
        if sent:
            await asyncio.shield(_in_background(_record_safely(sessionmaker, app_id, sent)))
