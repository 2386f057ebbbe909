"""What the device endpoints remember: the device row, its daily activity (monthly active users),
the event log and per-bundle daily counters.

A handler describes what to record in a :class:`Recording` and hands it to :func:`record_later`,
which writes it after the answer is sent, in a transaction of its own: recording never slows the
answer, and a recording failure is logged, never shown to the device.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from fastapi import BackgroundTasks
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from capgo_server.clock import utcnow
from capgo_server.db.upsert import add_to_counters, insert_if_absent, upsert
from capgo_server.models import DailyVersion, Device, DeviceActivity, StatsEvent
from capgo_server.statistics.rollups import count_active_day

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
    """Write ``recording`` in ``session`` (flushes only)."""
    day = recording.at.date()
    if recording.device is not None:
        values = {**vars(recording.device), "updated_at": recording.at}
        await upsert(session, Device, values, key=["app_id", "device_id"])
    if recording.active:
        first_call_today = await insert_if_absent(
            session,
            DeviceActivity,
            {"app_id": recording.app_id, "date": day, "device_id": recording.device_id},
        )
        if first_call_today:
            await count_active_day(session, recording.app_id, recording.device_id, day)
    for action, version_name in recording.events:
        session.add(
            StatsEvent(
                app_id=recording.app_id,
                device_id=recording.device_id,
                action=action,
                version_name=version_name,
                created_at=recording.at,
            )
        )
    for version_name, counter in recording.version_counts:
        await add_to_counters(
            session,
            DailyVersion,
            {"app_id": recording.app_id, "date": day, "version_name": version_name},
            {counter: 1},
        )
    await session.flush()


async def _write_safely(
    sessionmaker: async_sessionmaker[AsyncSession], recordings: list[Recording]
) -> None:
    try:
        async with sessionmaker() as session, session.begin():
            for recording in recordings:
                await write(session, recording)
    except Exception:  # the device already has its answer; keep serving
        logger.exception("could not record device activity for %s", recordings[0].app_id)


def record_later(
    background: BackgroundTasks,
    sessionmaker: async_sessionmaker[AsyncSession],
    *recordings: Recording,
) -> None:
    """Write ``recordings`` once the response is sent (background tasks run after it)."""
    if recordings:
        background.add_task(_write_safely, sessionmaker, list(recordings))
