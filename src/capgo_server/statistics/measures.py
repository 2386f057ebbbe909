"""The daily measures, defined in one place and read from the roll-ups only.

For each app and UTC day:

* ``mau`` — distinct devices that contacted the device endpoints in the 30 days up to and
  including that day (rollups.py keeps ``daily_mau_change``; MAU is its running sum);
* ``storage`` — bytes held by the app's live bundles at the end of that day: a bundle counts from
  the day it was stored until the day it is deleted (its ``size``, ``created_at`` and
  ``deleted_at``; an app has at most a few thousand bundles, so they are their own roll-up);
* ``bandwidth`` — bytes of bundle downloads this server sent that day (``daily_bandwidth``,
  counted as bytes leave, ranges included);
* per bundle: installs, uninstalls and failures reported to ``/stats`` (``daily_version``).

A query reads at most one row per app and day of each roll-up, never the raw event log.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import accumulate

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from capgo_server.clock import utcnow
from capgo_server.models import Bundle, DailyBandwidth, DailyMauChange, DailyVersion


@dataclass(frozen=True)
class Days:
    """An inclusive range of UTC days."""

    first: date
    last: date

    def __iter__(self) -> Iterator[date]:
        day = self.first
        while day <= self.last:
            yield day
            day += timedelta(days=1)

    def __len__(self) -> int:
        return max((self.last - self.first).days + 1, 0)

    def up_to_today(self) -> Days:
        """The same range without the days after today (UTC); possibly empty."""
        return Days(self.first, min(self.last, utcnow().date()))


@dataclass(frozen=True)
class DailyUsage:
    """One app's (or a sum of apps') measures on one day."""

    day: date
    mau: int
    storage: int
    bandwidth: int


def _per_day(app_ids: Sequence[str], days: Days) -> dict[str, list[int]]:
    """Per app, a zero for each day of ``days`` (to fill by day offset)."""
    return {app_id: [0] * len(days) for app_id in app_ids}


def _running_totals(before: dict[str, int], changes: dict[str, list[int]]) -> dict[str, list[int]]:
    """Per app, the value on each day: ``before`` (the total of every change before the range)
    plus the changes up to and including that day (``changes``: per app, each day's change)."""
    return {
        app_id: list(accumulate(deltas, initial=before.get(app_id, 0)))[1:]
        for app_id, deltas in changes.items()
    }


async def _mau(session: AsyncSession, app_ids: Sequence[str], days: Days) -> dict[str, list[int]]:
    in_apps = DailyMauChange.app_id.in_(app_ids)
    before_rows = await session.execute(
        select(DailyMauChange.app_id, func.sum(DailyMauChange.change))
        .where(in_apps, DailyMauChange.date < days.first)
        .group_by(DailyMauChange.app_id)
    )
    before = {app_id: int(total) for app_id, total in before_rows}
    change_rows = await session.execute(
        select(DailyMauChange.app_id, DailyMauChange.date, DailyMauChange.change).where(
            in_apps, DailyMauChange.date >= days.first, DailyMauChange.date <= days.last
        )
    )
    changes = _per_day(app_ids, days)
    for app_id, day, change in change_rows:
        changes[app_id][(day - days.first).days] += change
    return _running_totals(before, changes)


async def _storage(
    session: AsyncSession, app_ids: Sequence[str], days: Days
) -> dict[str, list[int]]:
    end_of_range = datetime.combine(days.last + timedelta(days=1), time.min, tzinfo=UTC)
    bundles = await session.execute(
        select(
            Bundle.app_id, Bundle.size, Bundle.created_at, Bundle.deleted, Bundle.deleted_at
        ).where(
            Bundle.app_id.in_(app_ids),
            Bundle.size.is_not(None),
            Bundle.created_at < end_of_range,
        )
    )
    before: dict[str, int] = defaultdict(int)
    changes = _per_day(app_ids, days)

    def add(app_id: str, day: date, amount: int) -> None:
        if day < days.first:
            before[app_id] += amount
        elif day <= days.last:
            changes[app_id][(day - days.first).days] += amount

    for app_id, size, created_at, deleted, deleted_at in bundles:
        assert size is not None  # filtered above
        add(app_id, created_at.date(), size)
        if deleted:
            # A deleted bundle without a deletion time was never live.
            add(app_id, (deleted_at or created_at).date(), -size)
    return _running_totals(before, changes)


async def _bandwidth(
    session: AsyncSession, app_ids: Sequence[str], days: Days
) -> dict[str, list[int]]:
    rows = await session.execute(
        select(DailyBandwidth.app_id, DailyBandwidth.date, DailyBandwidth.bandwidth).where(
            DailyBandwidth.app_id.in_(app_ids),
            DailyBandwidth.date >= days.first,
            DailyBandwidth.date <= days.last,
        )
    )
    sent = _per_day(app_ids, days)
    for app_id, day, amount in rows:
        sent[app_id][(day - days.first).days] = amount
    return sent


async def daily_usage(
    session: AsyncSession, app_ids: Sequence[str], days: Days
) -> dict[str, list[DailyUsage]]:
    """Per app, its measures on each day of ``days``."""
    if not app_ids or not len(days):
        return {app_id: [] for app_id in app_ids}
    mau = await _mau(session, app_ids, days)
    storage = await _storage(session, app_ids, days)
    bandwidth = await _bandwidth(session, app_ids, days)
    dates = list(days)
    return {
        app_id: [
            DailyUsage(*values)
            for values in zip(dates, mau[app_id], storage[app_id], bandwidth[app_id], strict=True)
        ]
        for app_id in app_ids
    }


def summed(per_app: Iterable[list[DailyUsage]], days: Days) -> list[DailyUsage]:
    """The day-by-day sum of several apps' measures (MAU sums too: a device id belongs to one
    app)."""
    dates = list(days)
    mau, storage, bandwidth = [0] * len(dates), [0] * len(dates), [0] * len(dates)
    for series in per_app:
        for i, usage in enumerate(series):
            mau[i] += usage.mau
            storage[i] += usage.storage
            bandwidth[i] += usage.bandwidth
    return [DailyUsage(*values) for values in zip(dates, mau, storage, bandwidth, strict=True)]


@dataclass(frozen=True)
class BundleDay:
    installs: int
    uninstalls: int
    fails: int


async def bundle_days(
    session: AsyncSession, app_id: str, days: Days
) -> dict[str, dict[date, BundleDay]]:
    """Per bundle name, its installs, uninstalls and failures on the days it had any."""
    rows = await session.execute(
        select(
            DailyVersion.version_name,
            DailyVersion.date,
            DailyVersion.install,
            DailyVersion.uninstall,
            DailyVersion.fail,
        )
        .where(
            DailyVersion.app_id == app_id,
            DailyVersion.date >= days.first,
            DailyVersion.date <= days.last,
        )
        .order_by(DailyVersion.version_name, DailyVersion.date)
    )
    per_bundle: dict[str, dict[date, BundleDay]] = defaultdict(dict)
    for name, day, installs, uninstalls, fails in rows:
        per_bundle[name][day] = BundleDay(installs, uninstalls, fails)
    return per_bundle
