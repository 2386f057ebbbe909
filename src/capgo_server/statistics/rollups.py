"""Keeping the monthly-active-users roll-up in step with device activity.

**MAU** of an app on day *d* is the number of distinct devices that contacted the device
endpoints on any of the 30 days up to and including *d* (Capgo's rolling window). Each active day
*a* of a device covers the days ``[a, a + 29]``; the device counts on day *d* when some active
day covers *d*.

``daily_mau_change`` stores, per app and day, how that count changes: +1 on the first day of a
stretch of covered days, -1 on the day after it ends. MAU on day *d* is then the sum of the
changes up to *d*. When a device is active on a new day *D*, only the days ``[D, D + 29]`` not
already covered by its nearest active days before (*P*) and after (*N*) change:

    first = max(D, P + 30)        last = min(D + 29, N - 1)

so two rows change, whatever order days arrive in, and a device seen every day costs one change
per day at most.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from capgo_server.db.upsert import add_to_counters
from capgo_server.models import DailyMauChange, DeviceActivity

#: Days a device keeps counting as active after it was seen, that day included.
MAU_WINDOW_DAYS = 30


def window_change(
    day: date, previous: date | None, following: date | None
) -> tuple[date, date] | None:
    """The days newly covered when a device is active on ``day``, given its nearest other
    active days, as ``(first, last)`` inclusive; ``None`` when nothing changes."""
    first = day
    if previous is not None:
        first = max(first, previous + timedelta(days=MAU_WINDOW_DAYS))
    last = day + timedelta(days=MAU_WINDOW_DAYS - 1)
    if following is not None:
        last = min(last, following - timedelta(days=1))
    return (first, last) if first <= last else None


async def count_active_day(session: AsyncSession, app_id: str, device_id: str, day: date) -> None:
    """Update the MAU roll-up for a device's newly recorded active ``day``.

    Call it only when the ``device_activity`` row for that day was just inserted, so each
    device-day counts once (the insert is the gate, also between concurrent workers).
    """
    same_device = (DeviceActivity.app_id == app_id, DeviceActivity.device_id == device_id)
    previous = await session.scalar(
        select(func.max(DeviceActivity.date)).where(*same_device, DeviceActivity.date < day)
    )
    following = await session.scalar(
        select(func.min(DeviceActivity.date)).where(*same_device, DeviceActivity.date > day)
    )
    covered = window_change(day, previous, following)
    if covered is None:
        return
    first, last = covered
    await add_to_counters(session, DailyMauChange, {"app_id": app_id, "date": first}, {"change": 1})
    await add_to_counters(
        session,
        DailyMauChange,
        {"app_id": app_id, "date": last + timedelta(days=1)},
        {"change": -1},
    )
