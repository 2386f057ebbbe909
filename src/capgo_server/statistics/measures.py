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

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import accumulate
from typing import TypeVar

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


#: The key of the sum over every app asked for (``daily_usage(..., per_app=False)``).
ALL_APPS = ""


@dataclass(frozen=True)
class Usage:
    """Measures on each day of a :class:`Days` range: one value per day in each list."""

    mau: list[int]
    storage: list[int]
    bandwidth: list[int]

    @classmethod
    def total(cls, usages: Iterable[Usage], length: int) -> Usage:
        """The day-by-day sum (MAU sums too: a device id belongs to one app)."""
        mau, storage, bandwidth = [0] * length, [0] * length, [0] * length
        for usage in usages:
            for totals, values in (
                (mau, usage.mau),
                (storage, usage.storage),
                (bandwidth, usage.bandwidth),
            ):
                for i, value in enumerate(values):
                    totals[i] += value
        return cls(mau, storage, bandwidth)


class _Series:
    """Per key (an app id, or :data:`ALL_APPS`), a value per day, filled by day offset."""

    def __init__(self, keys: Iterable[str], days: Days) -> None:
        self.days = days
        self.values = {key: [0] * len(days) for key in keys}
        self.before: dict[str, int] = defaultdict(int)

    def add(self, key: str, day: date, amount: int) -> None:
        """``amount`` on ``day``; days before the range go to :attr:`before`."""
        if day < self.days.first:
            self.before[key] += amount
        elif day <= self.days.last:
            self.values[key][(day - self.days.first).days] += amount

    def running_totals(self) -> dict[str, list[int]]:
        """Each day's value is everything added up to and including that day."""
        return {
            key: list(accumulate(changes, initial=self.before[key]))[1:]
            for key, changes in self.values.items()
        }


_T = TypeVar("_T")

#: Rows read between two turns given back to the event loop (about 5 ms of work).
_ROWS_PER_TURN = 1000


async def _rows(result: Iterable[_T]) -> AsyncIterator[_T]:
    """The rows of ``result``, letting the worker's other requests run every
    :data:`_ROWS_PER_TURN` rows: ten years of an organization's apps are tens of thousands of
    roll-up rows, and each is converted in Python."""
    for count, row in enumerate(result, 1):
        yield row
        if count % _ROWS_PER_TURN == 0:
            await asyncio.sleep(0)


async def _mau(
    session: AsyncSession, app_ids: Sequence[str], days: Days, per_app: bool
) -> dict[str, list[int]]:
    keys = [DailyMauChange.app_id] if per_app else []
    in_apps = DailyMauChange.app_id.in_(app_ids)
    series = _Series(app_ids if per_app else [ALL_APPS], days)
    before = await session.execute(
        select(*keys, func.sum(DailyMauChange.change))
        .where(in_apps, DailyMauChange.date < days.first)
        .group_by(*keys)
    )
    for *app_id, total in before:
        series.add(app_id[0] if per_app else ALL_APPS, date.min, int(total or 0))
    changes = await session.execute(
        select(*keys, DailyMauChange.date, func.sum(DailyMauChange.change))
        .where(in_apps, DailyMauChange.date >= days.first, DailyMauChange.date <= days.last)
        .group_by(*keys, DailyMauChange.date)
    )
    async for *app_id, day, change in _rows(changes):
        series.add(app_id[0] if per_app else ALL_APPS, day, int(change))
    return series.running_totals()


async def _storage(
    session: AsyncSession, app_ids: Sequence[str], days: Days, per_app: bool
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
    series = _Series(app_ids if per_app else [ALL_APPS], days)
    for app_id, size, created_at, deleted, deleted_at in bundles:
        assert size is not None  # filtered above
        key = app_id if per_app else ALL_APPS
        series.add(key, created_at.date(), size)
        if deleted:
            # A deleted bundle without a deletion time was never live.
            series.add(key, (deleted_at or created_at).date(), -size)
    return series.running_totals()


async def _bandwidth(
    session: AsyncSession, app_ids: Sequence[str], days: Days, per_app: bool
) -> dict[str, list[int]]:
    keys = [DailyBandwidth.app_id] if per_app else []
    rows = await session.execute(
        select(*keys, DailyBandwidth.date, func.sum(DailyBandwidth.bandwidth))
        .where(
            DailyBandwidth.app_id.in_(app_ids),
            DailyBandwidth.date >= days.first,
            DailyBandwidth.date <= days.last,
        )
        .group_by(*keys, DailyBandwidth.date)
    )
    series = _Series(app_ids if per_app else [ALL_APPS], days)
    async for *app_id, day, sent in _rows(rows):
        series.add(app_id[0] if per_app else ALL_APPS, day, int(sent))
    return series.values


async def daily_usage(
    session: AsyncSession, app_ids: Sequence[str], days: Days, *, per_app: bool
) -> dict[str, Usage]:
    """The measures on each day of ``days``: per app of ``app_ids`` when ``per_app``, else
    only their sum, under :data:`ALL_APPS` (summed by the database: one row per day)."""
    keys = list(app_ids) if per_app else [ALL_APPS]
    if not app_ids or not len(days):
        return {key: Usage([0] * len(days), [0] * len(days), [0] * len(days)) for key in keys}
    mau = await _mau(session, app_ids, days, per_app)
    storage = await _storage(session, app_ids, days, per_app)
    bandwidth = await _bandwidth(session, app_ids, days, per_app)
    return {key: Usage(mau[key], storage[key], bandwidth[key]) for key in keys}


_MEASURES: dict[
    str,
    Callable[[AsyncSession, Sequence[str], Days, bool], Awaitable[dict[str, list[int]]]],
] = {"mau": _mau, "storage": _storage, "bandwidth": _bandwidth}


async def daily_metric(
    session: AsyncSession, app_ids: Sequence[str], days: Days, metric: str, *, per_app: bool
) -> dict[str, list[int]]:
    """One measure (``mau``, ``storage`` or ``bandwidth``) on each day of ``days``, keyed as
    :func:`daily_usage` keys them; what a chart reads (only the measure it draws)."""
    keys = list(app_ids) if per_app else [ALL_APPS]
    if not app_ids or not len(days):
        return {key: [0] * len(days) for key in keys}
    return await _MEASURES[metric](session, app_ids, days, per_app)


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
