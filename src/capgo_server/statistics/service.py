"""Who may read which statistics (spec §3.3), and the answers built from the measures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from capgo_server.auth.access import authorize_app, authorize_org, visible_apps, visible_orgs
from capgo_server.auth.principal import INVALID_APIKEY, Principal
from capgo_server.auth.roles import Role
from capgo_server.clock import to_js_iso, utcnow
from capgo_server.errors import ApiError
from capgo_server.models import App
from capgo_server.statistics.measures import (
    ALL_APPS,
    BundleDay,
    Days,
    Usage,
    bundle_days,
    daily_metric,
    daily_usage,
)
from capgo_server.statistics.schemas import (
    BundleDataset,
    BundleUsage,
    DayRangeQuery,
)


def no_access_to_app(app_id: str) -> ApiError:
    """401 ``no_access_to_app``: unknown and foreign apps alike."""
    return ApiError(
        401, "no_access_to_app", "No access to app with this apikey", {"app_id": app_id}
    )


def no_access_to_organization(org_id: str) -> ApiError:
    """401 ``no_access_to_organization``: unknown and foreign orgs alike (and non-UUID ids)."""
    return ApiError(
        401, "no_access_to_organization", "No access to organization", {"org_id": org_id}
    )


NO_ORGANIZATIONS = ApiError(401, "no_organizations_found", "No organizations found")


@dataclass(frozen=True)
class Subject:
    """What a statistics request covers: some apps, named for a chart's title."""

    title: str
    app_ids: list[str]


async def app_subject(session: AsyncSession, principal: Principal, app_id: str) -> Subject:
    access = await authorize_app(
        session, principal, app_id, role=Role.read, denied=no_access_to_app(app_id)
    )
    return Subject(title=access.app.name or app_id, app_ids=[app_id])


async def org_subject(session: AsyncSession, principal: Principal, org_id: str) -> Subject:
    """An organization's apps. A key limited to apps, or to other orgs, may not read an
    organization's totals (401 ``invalid_apikey``, spec §3.3)."""
    if principal.is_app_limited or not principal.may_use_org(org_id):
        raise INVALID_APIKEY
    access = await authorize_org(
        session, principal, org_id, role=Role.read, denied=no_access_to_organization(org_id)
    )
    app_ids = await session.scalars(
        select(App.app_id).where(App.owner_org == access.org.id).order_by(App.app_id)
    )
    return Subject(title=access.org.name, app_ids=list(app_ids))


async def user_subject(session: AsyncSession, principal: Principal) -> Subject:
    """Every app the caller may read, in every organization it may read (narrowed by the keys'
    org and app limits); 401 ``no_organizations_found`` when there is no such organization."""
    if (await session.scalar(visible_orgs(principal).limit(1))) is None:
        raise NO_ORGANIZATIONS
    apps = await session.scalars(visible_apps(principal))
    return Subject(title="All organizations", app_ids=[app.app_id for app in apps])


#: A point of the JSON answers (the shape of ``schemas.StatsPoint``), built as a plain dict:
#: a year of 100 apps is 36,500 of them, too many to validate one by one.
Point = dict[str, str | int]


def _point_dates(days: Days) -> list[str]:
    return [to_js_iso(datetime.combine(day, time.min, tzinfo=UTC)) for day in days]


def points(days: Days, usage: Usage) -> list[Point]:
    """One point per day (``StatsPoint``)."""
    return _points(_point_dates(days), usage)


def _points(dates: list[str], usage: Usage) -> list[Point]:
    return [
        {"date": when, "mau": mau, "storage": storage, "bandwidth": sent, "build_time_seconds": 0}
        for when, mau, storage, sent in zip(
            dates, usage.mau, usage.storage, usage.bandwidth, strict=True
        )
    ]


def breakdown(days: Days, total: Usage, per_app: dict[str, Usage]) -> dict[str, list[Point]]:
    """``{"global": points, "byApp": each app's points with its app_id}`` (``OrgBreakdown``)."""
    # The dates are formatted once for every app: a year of 100 apps would otherwise format
    # 36,500 of them.
    dates = _point_dates(days)
    by_app: list[Point] = [
        {"app_id": app_id, **point}
        for app_id, usage in per_app.items()
        for point in _points(dates, usage)
    ]
    return {"global": points(days, total), "byApp": by_app}


def requested_days(query: DayRangeQuery) -> Days:
    return Days(query.first, query.last).up_to_today()


async def total_usage(session: AsyncSession, subject: Subject, days: Days) -> Usage:
    """The subject's apps' measures summed per day."""
    return (await daily_usage(session, subject.app_ids, days, per_app=False))[ALL_APPS]


async def usage_by_app(
    session: AsyncSession, subject: Subject, days: Days
) -> tuple[Usage, dict[str, Usage]]:
    """The subject's daily totals, and each of its apps' own."""
    per_app = await daily_usage(session, subject.app_ids, days, per_app=True)
    return Usage.total(per_app.values(), len(days)), per_app


async def metric_by_app(
    session: AsyncSession, subject: Subject, days: Days, metric: str, *, per_app: bool
) -> list[tuple[str, list[int]]]:
    """One measure per day: each of the subject's apps' (``per_app``), or their sum named
    after the subject."""
    values = await daily_metric(session, subject.app_ids, days, metric, per_app=per_app)
    if per_app:
        return list(values.items())
    return [(subject.title, values[ALL_APPS])]


def bundle_usage(per_bundle: dict[str, dict[date, BundleDay]], days: Days) -> BundleUsage:
    """Capgo's bundle-usage estimate (spec §3.3): per bundle, the share of the app's devices on
    it each day, from installs and uninstalls.

    Day by day, a bundle with new installs gains them; a bundle without loses the same share of
    its devices as today's new installs are of yesterday's total (those devices moved to the new
    bundles); uninstalls are then taken off (never below 0). Shares are rounded to one decimal. A
    day with no devices at all after one with some (data not in yet) repeats the previous day,
    except today. Each dataset also carries the raw daily counts.
    """
    dates = list(days)
    names = sorted(per_bundle)
    counts = {
        name: [per_bundle[name].get(day, BundleDay(0, 0, 0)) for day in dates] for name in names
    }
    devices: dict[str, list[float]] = {name: [] for name in names}
    for i in range(len(dates)):
        previous_total = sum(devices[name][i - 1] for name in names) if i else 0.0
        new_installs = sum(counts[name][i].installs for name in names)
        for name in names:
            today = counts[name][i]
            before = devices[name][i - 1] if i else 0.0
            if today.installs or not i:
                value = before + today.installs
            elif previous_total > 0:
                value = before * max(0.0, 1 - new_installs / previous_total)
            else:
                value = before
            devices[name].append(max(0.0, value - today.uninstalls))
    shares: dict[str, list[float]] = {name: [] for name in names}
    for i in range(len(dates)):
        total = sum(devices[name][i] for name in names)
        for name in names:
            shares[name].append(round(devices[name][i] / total * 100, 1) if total else 0.0)
    this_day = utcnow().date()
    for i in range(1, len(dates)):
        day_total = sum(shares[name][i] for name in names)
        previous_total = sum(shares[name][i - 1] for name in names)
        if day_total == 0 and previous_total > 0 and dates[i] != this_day:
            for name in names:
                shares[name][i] = shares[name][i - 1]
    datasets = [
        BundleDataset(
            label=name,
            data=shares[name],
            installs=[c.installs for c in counts[name]],
            uninstalls=[c.uninstalls for c in counts[name]],
            fails=[c.fails for c in counts[name]],
        )
        for name in names
        if any(shares[name]) or any(c.installs or c.uninstalls or c.fails for c in counts[name])
    ]
    return BundleUsage(labels=[day.isoformat() for day in dates], datasets=datasets)


async def app_bundle_usage(session: AsyncSession, app_id: str, days: Days) -> BundleUsage:
    if not len(days):
        return BundleUsage(labels=[], datasets=[])
    return bundle_usage(await bundle_days(session, app_id, days), days)
