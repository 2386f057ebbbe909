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

from sqlalchemy.ext.asyncio import AsyncSession

from capgo_server.db.bulk import Statement
from capgo_server.models import DeviceActivity

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


async def add_window_changes(
    session: AsyncSession,
    day: date,
    new_days: list[tuple[str, str]],
    changes: dict[tuple[str, date], int],
) -> None:
    """Add to ``changes`` (per app and day) what the newly recorded active ``day`` of each
    (app, device) in ``new_days`` changes in the roll-up.

    Pass only device-days whose ``device_activity`` row was just inserted, so each counts once
    (the insert is the gate, also between concurrent workers). Two queries whatever the number
    of devices and apps (each carries every device, :mod:`capgo_server.db.bulk`): under load
    every ``await`` of the writer waits behind the requests, so it makes few of them.
    """
    if not new_days:
        return
    previous = await _nearest_days(session, new_days, day, before=True)
    following = await _nearest_days(session, new_days, day, before=False)
    for pair in new_days:
        covered = window_change(day, previous.get(pair), following.get(pair))
        if covered is None:
            continue
        first, last = covered
        for when, change in ((first, 1), (last + timedelta(days=1), -1)):
            changes[(pair[0], when)] = changes.get((pair[0], when), 0) + change


async def _nearest_days(
    session: AsyncSession, pairs: list[tuple[str, str]], day: date, *, before: bool
) -> dict[tuple[str, str], date]:
    """Each (app, device)'s active day nearest ``day``, before or after it (those without one
    are left out)."""
    statement = Statement(session)
    devices = statement.rows("p", (("app_id", "text"), ("device_id", "text")), pairs)
    nearest, side = ("max", "<") if before else ("min", ">")
    # The devices drive the join (CROSS JOIN fixes the order on SQLite), so each costs one
    # seek in ix_device_activity_device_date, however many other days and devices there are.
    rows = await statement.execute(
        f"SELECT a.app_id, a.device_id, {nearest}(a.date) FROM {devices}"
        f" CROSS JOIN {DeviceActivity.__tablename__} AS a"
        " WHERE a.app_id = p.app_id AND a.device_id = p.device_id"
        f" AND a.date {side} {statement.param(day, 'date')}"
        " GROUP BY a.app_id, a.device_id"
    )
    return {(app_id, device_id): _as_date(found) for app_id, device_id, found in rows}


def _as_date(value: date | str) -> date:
    # The driver's own value: SQLite keeps dates as ISO text.
    return value if isinstance(value, date) else date.fromisoformat(value)
