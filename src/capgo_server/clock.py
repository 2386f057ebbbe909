"""The server's notion of "now", and the timestamp format Capgo's API emits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

#: When set, :func:`utcnow` returns it instead of the wall clock (see :func:`frozen_at`).
_frozen_now: datetime | None = None


def utcnow() -> datetime:
    """Current time, timezone-aware UTC. Every "now" in the server comes from here."""
    return _frozen_now if _frozen_now is not None else datetime.now(UTC)


@contextmanager
def frozen_at(moment: datetime) -> Iterator[None]:
    """Make :func:`utcnow` return ``moment`` inside the block.

    Daily statistics depend on the calendar day; tests and the statistics benchmark use this to
    replay activity over simulated days. The server itself never freezes its clock.
    """
    global _frozen_now
    if moment.tzinfo is None:
        raise ValueError("frozen_at needs a timezone-aware moment")
    previous, _frozen_now = _frozen_now, moment.astimezone(UTC)
    try:
        yield
    finally:
        _frozen_now = previous


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive value is taken to be UTC already (as stored on SQLite).

    Raises ``OverflowError`` when the instant in UTC falls outside the calendar: request input
    goes through :func:`checked_utc` instead.
    """
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def checked_utc(value: datetime) -> datetime:
    """A timestamp from a request, in UTC; ``ValueError`` when its instant lies outside the
    calendar (years 1 to 9999) once converted: ``0001-01-01T00:00:00+14:00`` is in the year 0
    in UTC and ``9999-12-31T23:59:59-14:00`` in the year 10000, which Python cannot represent
    (and the database could not store)."""
    try:
        return as_utc(value)
    except OverflowError:
        raise ValueError("the timestamp falls outside the calendar in UTC") from None


def parse_utc_timestamp(text: str) -> datetime:
    """An ISO 8601 timestamp from a request, in UTC (naive is UTC); ``ValueError`` when it is
    not one or lies outside the calendar in UTC (:func:`checked_utc`)."""
    return checked_utc(datetime.fromisoformat(text))


def to_js_iso(value: datetime) -> str:
    """Render as JavaScript's ``toISOString()`` does (``2026-01-02T03:04:05.678Z``).

    Capgo serialises timestamps this way, and clients parse them as such.
    """
    return as_utc(value).isoformat(timespec="milliseconds").replace("+00:00", "Z")
