"""Query and response shapes of ``/statistics`` (spec §3.3, seeds "Statistics")."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from capgo_server.clock import parse_utc_timestamp

#: Longest range one request may ask for (ten years of days).
MAX_RANGE_DAYS = 3660

Metric = Literal["mau", "storage", "bandwidth"]


def utc_day(value: object) -> object:
    """``2026-11-30``, or a timestamp such as ``2026-11-30T10:00:00.000Z`` (its UTC day)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    try:
        return parse_utc_timestamp(text).date()
    except ValueError:
        raise ValueError(
            "expected a date (YYYY-MM-DD) or an ISO 8601 timestamp within the calendar in UTC"
        ) from None


class DayRangeQuery(BaseModel):
    """``from`` and ``to`` are UTC days, both included; days after today are left out."""

    model_config = ConfigDict(populate_by_name=True)

    first: date = Field(alias="from", description="First day (YYYY-MM-DD or ISO timestamp).")
    last: date = Field(alias="to", description="Last day, included.")

    _parse_days = field_validator("first", "last", mode="before")(utc_day)

    @model_validator(mode="after")
    def _bounded(self) -> DayRangeQuery:
        if self.first > self.last:
            raise ValueError("`from` must not be after `to`")
        if (self.last - self.first).days >= MAX_RANGE_DAYS:
            raise ValueError(f"a range covers at most {MAX_RANGE_DAYS} days")
        return self


class StatisticsQuery(DayRangeQuery):
    graph: Metric | None = Field(
        default=None, description="Answer with an SVG chart of this measure instead of JSON."
    )
    breakdown: bool = Field(
        default=False, description="`/statistics/org` only: add each app's points (`byApp`)."
    )
    no_accumulate: bool = Field(
        default=False,
        alias="noAccumulate",
        description="Accepted for compatibility: points are always per-day values.",
    )


class StatsPoint(BaseModel):
    """One day's measures."""

    date: str = Field(description="The UTC day, as `2026-11-30T00:00:00.000Z`.")
    mau: int = Field(description="Distinct devices active in the 30 days up to this day.")
    storage: int = Field(description="Bytes held by live bundles at the end of the day.")
    bandwidth: int = Field(description="Bytes of bundle downloads served that day.")
    build_time_seconds: int = Field(
        default=0, description="Capgo's native build time; always 0 (no native builds here)."
    )


class AppStatsPoint(StatsPoint):
    app_id: str


class OrgBreakdown(BaseModel):
    """``/statistics/org/:org_id?breakdown=true``: the totals and each app's points."""

    model_config = ConfigDict(populate_by_name=True)

    global_: list[StatsPoint] = Field(alias="global")
    by_app: list[AppStatsPoint] = Field(alias="byApp")


class BundleDataset(BaseModel):
    label: str = Field(description="The bundle (version name).")
    data: list[float] = Field(description="Share of the app's installed devices, in percent.")
    installs: list[int]
    uninstalls: list[int]
    fails: list[int]


class BundleUsage(BaseModel):
    labels: list[str] = Field(description="The days, `YYYY-MM-DD`.")
    datasets: list[BundleDataset]
