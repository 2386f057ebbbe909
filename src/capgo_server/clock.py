"""The server's notion of "now", and the timestamp format Capgo's API emits."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Current time, timezone-aware UTC. Every "now" in the server comes from here."""
    return datetime.now(UTC)


def to_js_iso(value: datetime) -> str:
    """Render as JavaScript's ``toISOString()`` does (``2026-01-02T03:04:05.678Z``).

    Capgo serialises timestamps this way, and clients parse them as such.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
