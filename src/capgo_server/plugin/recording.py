"""What the device endpoints remember: the device row, its daily activity (monthly active users),
the event log and per-bundle daily counters.

A handler describes what to record in a :class:`Recording` and hands it to :func:`record_later`.
That only appends it to the worker's :class:`~.recorder.Recorder`, which writes what has
gathered in one transaction (:func:`write_batch`) at least once a second, and at once when no
device request is in progress. Recording never slows the answer, and a recording failure is
logged, never shown to the device.

:func:`write` writes one recording on its own; :func:`write_batch` writes many with the same
effect, in a handful of statements whatever the batch's size (one per table, each carrying
every row, :mod:`capgo_server.db.bulk`, plus two per day of new device-days): the device rows
coalesced (the last recording of a device wins, as it would one after the other), per-bundle
counters summed, and each new device-day counted once in the monthly-active-users roll-up,
exactly as :func:`write` counts it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from operator import attrgetter
from typing import Any, Literal

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from capgo_server.clock import utcnow
from capgo_server.db.bulk import Kind, insert_rows, upsert_rows
from capgo_server.hash_slots import HashSlots
from capgo_server.models import DailyMauChange, DailyVersion, Device, DeviceActivity, StatsEvent
from capgo_server.statistics.rollups import add_window_changes

logger = logging.getLogger("capgo_server.plugin")

VersionCounter = Literal["get", "fail", "install", "uninstall"]


@dataclass(frozen=True)
class DeviceSeen:
    """The device as it describes itself in a request (spec §5.1)."""

    app_id: str
    device_id: str
    platform: str | None
    plugin_version: str
    os_version: str | None
    version_build: str
    version_name: str | None
    custom_id: str
    is_prod: bool
    is_emulator: bool
    default_channel: str | None
    key_id: str | None


@dataclass
class Recording:
    """Everything one request will record about one app's device."""

    app_id: str
    device_id: str
    device: DeviceSeen | None = None
    events: list[tuple[str, str | None]] = field(default_factory=list)
    version_counts: list[tuple[str, VersionCounter]] = field(default_factory=list)
    active: bool = True
    at: datetime = field(default_factory=utcnow)

    def event(self, action: str, version_name: str | None) -> None:
        self.events.append((action, version_name))

    def count(self, version_name: str, counter: VersionCounter) -> None:
        self.version_counts.append((version_name, counter))


async def write(session: AsyncSession, recording: Recording) -> None:
    """Write ``recording`` in ``session`` on its own (flushes only): a batch of one."""
    await write_batch(session, [recording])


COUNTERS: tuple[VersionCounter, ...] = ("get", "fail", "install", "uninstall")

_DEVICE_COLUMNS: tuple[tuple[str, Kind], ...] = (
    ("app_id", "text"),
    ("device_id", "text"),
    ("platform", "text"),
    ("plugin_version", "text"),
    ("os_version", "text"),
    ("version_build", "text"),
    ("version_name", "text"),
    ("custom_id", "text"),
    ("is_prod", "bool"),
    ("is_emulator", "bool"),
    ("default_channel", "text"),
    ("key_id", "text"),
    ("updated_at", "timestamp"),
    ("created_at", "timestamp"),
)
#: A device row's values from what it said about itself (the columns before ``updated_at``).
_device_values = attrgetter(*(name for name, _ in _DEVICE_COLUMNS[:-2]))
_EVENT_COLUMNS: tuple[tuple[str, Kind], ...] = (
    ("app_id", "text"),
    ("device_id", "text"),
    ("action", "text"),
    ("version_name", "text"),
    ("created_at", "timestamp"),
)
_COUNT_COLUMNS: tuple[tuple[str, Kind], ...] = (
    ("app_id", "text"),
    ("date", "date"),
    ("version_name", "text"),
    *((name, "int") for name in COUNTERS),
)
_MAU_COLUMNS: tuple[tuple[str, Kind], ...] = (
    ("app_id", "text"),
    ("date", "date"),
    ("change", "int"),
)


@dataclass
class _Batch:
    """``recordings`` gathered by table, as rows of the columns above (a device row without its
    ``created_at``, which is when it is written): events in arrival order, the rest by key."""

    devices: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)
    active: dict[date, set[tuple[str, str]]] = field(default_factory=dict)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    counts: dict[tuple[str, date, str], dict[str, int]] = field(default_factory=dict)

    @classmethod
    def of(cls, recordings: list[Recording]) -> _Batch:
        batch = cls()
        for recording in recordings:
            day = recording.at.date()
            pair = (recording.app_id, recording.device_id)
            if recording.device is not None:
                device = recording.device
                # The last one wins.
                batch.devices[(device.app_id, device.device_id)] = (
                    *_device_values(device),
                    recording.at,
                )
            if recording.active:
                batch.active.setdefault(day, set()).add(pair)
            batch.events.extend(
                (recording.app_id, recording.device_id, action, version_name, recording.at)
                for action, version_name in recording.events
            )
            for version_name, counter in recording.version_counts:
                row = batch.counts.setdefault(
                    (recording.app_id, day, version_name), dict.fromkeys(COUNTERS, 0)
                )
                row[counter] += 1
        return batch


async def write_batch(
    session: AsyncSession, recordings: list[Recording], known: ActivityMemo | None = None
) -> dict[date, list[tuple[str, str]]]:
    """Write ``recordings`` in ``session`` (flushes only), as :func:`write` would one by one.

    ``known``: device-days already in ``device_activity`` (skipped). Returns the device-days
    this batch made sure of, for the caller to remember once the transaction has committed.

    One statement per table (and two more per day of new device-days, for the MAU roll-up),
    each carrying the whole batch (:mod:`capgo_server.db.bulk`).

    Every statement takes its rows in key order, not in the order the devices called: two
    workers writing overlapping batches at once then lock the rows they share in the same order,
    so one waits for the other instead of both deadlocking (on PostgreSQL each row an upsert or
    a conflicting insert touches stays locked until commit).
    """
    batch = _Batch.of(recordings)
    if batch.devices:
        written = utcnow()
        await upsert_rows(
            session,
            Device.__tablename__,
            _DEVICE_COLUMNS,
            [(*row, written) for _, row in sorted(batch.devices.items())],
            ["app_id", "device_id"],
            replace=[name for name, _ in _DEVICE_COLUMNS[2:-1]],
        )
    seen: dict[date, list[tuple[str, str]]] = {}
    mau: dict[tuple[str, date], int] = {}
    # Day by day, so a device's later new day sees its earlier one, as it would one by one.
    for day in sorted(batch.active):
        pairs = sorted(p for p in batch.active[day] if known is None or not known.has(day, *p))
        if pairs:
            new = await _insert_absent_activity(session, day, pairs)
            await add_window_changes(session, day, new, mau)
            seen[day] = pairs
    if batch.events:
        await insert_rows(session, StatsEvent.__tablename__, _EVENT_COLUMNS, batch.events)
    if batch.counts:
        rows = [
            (app_id, day, name, *(counters[c] for c in COUNTERS))
            for (app_id, day, name), counters in sorted(batch.counts.items())
        ]
        key = ["app_id", "date", "version_name"]
        await upsert_rows(
            session, DailyVersion.__tablename__, _COUNT_COLUMNS, rows, key, add=COUNTERS
        )
    if mau:
        rows = [(app_id, day, change) for (app_id, day), change in sorted(mau.items())]
        key = ["app_id", "date"]
        await upsert_rows(
            session, DailyMauChange.__tablename__, _MAU_COLUMNS, rows, key, add=["change"]
        )
    await session.flush()
    return seen


async def _insert_absent_activity(
    session: AsyncSession, day: date, pairs: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """Insert the missing ``device_activity`` rows of ``day``; the (app, device) pairs of the
    new ones.

    Of concurrent writers of the same row exactly one sees it as new (the insert is the gate:
    ``RETURNING`` lists only the rows it inserted).
    """
    result = await insert_rows(
        session,
        DeviceActivity.__tablename__,
        (("app_id", "text"), ("date", "date"), ("device_id", "text")),
        [(app_id, day, device_id) for app_id, device_id in pairs],
        conflict="ON CONFLICT (app_id, date, device_id) DO NOTHING",
        returning="app_id, device_id",
    )
    return [(app_id, device_id) for app_id, device_id in result]


class ActivityMemo:
    """Device-days this worker knows are in ``device_activity`` (rows are never deleted while
    their app lives), so a device calling again the same day costs no insert.

    Held in a :class:`~capgo_server.hash_slots.HashSlots` table of ``slots`` entries (4 MiB at
    the default), allocated here: the oldest days are forgotten first, and a forgotten
    device-day only costs one insert that finds the row already there.
    """

    def __init__(self, slots: int = 262_144) -> None:
        self._slots = HashSlots(slots)

    def has(self, day: date, app_id: str, device_id: str) -> bool:
        return self._slots.find(HashSlots.tag((day, app_id, device_id))) is not None

    def add(self, seen: dict[date, list[tuple[str, str]]]) -> None:
        slots = self._slots
        for day, pairs in seen.items():
            age = day.toordinal()
            for app_id, device_id in pairs:
                slot, _ = slots.claim(HashSlots.tag((day, app_id, device_id)))
                slots.ages[slot] = age


def record_later(request: Request, *recordings: Recording) -> None:
    """Record ``recordings`` once the request has committed (a device route's request, see
    :class:`~.device_route.DeviceRoute`): the worker's recorder writes them within about a second,
    off the request path (at once when the server is otherwise idle). Nothing is recorded for
    a request that fails."""
    pending: list[Recording] | None = getattr(request.state, PENDING, None)
    if pending is None:
        pending = []
        setattr(request.state, PENDING, pending)
    pending.extend(recordings)


#: Where a request keeps its recordings until it has committed.
PENDING = "capgo_recordings"
