"""SVG charts of one measure (``?graph=mau|storage|bandwidth``), drawn with pygal.

The SVG is self-contained (styles inline, no script), so it renders the same in a browser, an
``<img>`` tag of a dashboard or a README. MAU is counted in whole users; byte counts are scaled
to one binary unit for the whole chart (KiB, MiB, GiB... of 1024), without needless decimals.

Whatever the range and the number of apps, what is drawn stays small (pygal is pure Python: a
ten-year breakdown over 12 apps drawn day by day took 6.5 s of CPU and 14 MB of SVG):

* at most :data:`MAX_POINTS` points per line: past a year, days are grouped by week, and past
  :data:`MAX_POINTS` weeks by calendar month (bandwidth is the bucket's sum, MAU and storage its
  highest day);
* a marker per point only while the chart has at most :data:`MAX_MARKERS` of them;
* at most :data:`APP_LINES` app lines in a breakdown: the largest apps, then one line summing
  the others.

This module imports nothing but pygal: :func:`draw` runs in the chart renderer's processes
(``statistics.renderer``), which load it alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

import pygal
from pygal.style import Style

TITLES = {
    "mau": "Monthly active users",
    "storage": "Storage",
    "bandwidth": "Bandwidth",
}

#: Most points drawn per line: a year drawn day by day.
MAX_POINTS = 366
#: Most point markers (``<g class="dots">``, each a circle and its value) in one chart; past
#: this, lines are drawn without them. A marker costs about ten times a line's segment.
MAX_MARKERS = 200
#: Most app lines in a breakdown chart (the style has a colour for each, and one for the total).
APP_LINES = 6

_BYTE_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB")

_STYLE = Style(
    background="white",
    plot_background="white",
    foreground="#333333",
    foreground_strong="#111111",
    foreground_subtle="#999999",
    colors=("#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#ca8a04"),
    font_family="DejaVu Sans, Helvetica, Arial, sans-serif",
    title_font_size=18,
    label_font_size=11,
    major_label_font_size=11,
    legend_font_size=12,
    no_data_font_size=16,
)

Line = tuple[str, list[int]]
Bucket = Literal["day", "week", "month"]


@dataclass(frozen=True)
class Chart:
    """What one chart shows: ``metric`` per day from ``first``, one value per day in each line.

    ``lines`` are drawn as they are. ``apps`` (a breakdown) are drawn after a line of their
    sum, ``All apps``, and bounded to :data:`APP_LINES`. Plain data, so it crosses to a renderer
    process cheaply.
    """

    metric: str
    subject: str
    first: date
    requested: tuple[date, date]
    lines: list[Line]
    apps: list[Line] = field(default_factory=list)


def byte_unit(largest: int) -> tuple[str, int]:
    """The unit to show byte counts up to ``largest`` in, and its size in bytes."""
    unit, size = _BYTE_UNITS[0], 1
    for name in _BYTE_UNITS[1:]:
        if largest < size * 1024:
            break
        unit, size = name, size * 1024
    return unit, size


def whole_number_ticks(largest: int, most: int = 6) -> list[int]:
    """Y-axis ticks for a count (users have no fractions): from 0 past ``largest`` in steps of
    1, 2 or 5 times a power of ten, at most ``most`` steps."""
    if largest <= 0:
        return [0, 1]
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            step = factor * magnitude
            if largest <= step * most:
                return list(range(0, largest + step, step))
        magnitude *= 10


def bucket_for(days: int) -> Bucket:
    """The coarsest grouping needed to draw ``days`` days in at most :data:`MAX_POINTS` points."""
    if days <= MAX_POINTS:
        return "day"
    if -(-days // 7) <= MAX_POINTS:
        return "week"
    return "month"


def buckets(first: date, days: int, bucket: Bucket) -> list[tuple[str, int, int]]:
    """``(label, start, stop)`` of each bucket, as offsets into the days from ``first``: days,
    weeks starting on ``first`` (labelled by their first day), or calendar months (``YYYY-MM``;
    the first and last may be partial)."""
    if bucket == "day":
        return [((first + timedelta(i)).isoformat(), i, i + 1) for i in range(days)]
    if bucket == "week":
        return [
            ((first + timedelta(i)).isoformat(), i, min(i + 7, days)) for i in range(0, days, 7)
        ]
    result: list[tuple[str, int, int]] = []
    start = 0
    while start < days:
        day = first + timedelta(start)
        next_month = date(day.year + day.month // 12, day.month % 12 + 1, 1)
        stop = min((next_month - first).days, days)
        result.append((f"{day.year:04d}-{day.month:02d}", start, stop))
        start = stop
    return result


def _reduce(metric: str) -> Callable[[Sequence[int]], int]:
    """A bucket's value: bandwidth is bytes sent, so the bucket's sum; MAU and storage are
    levels, so the bucket's highest day (a peak is not smoothed away)."""
    return sum if metric == "bandwidth" else max


def _grouped(values: list[int], spans: list[tuple[str, int, int]], metric: str) -> list[int]:
    reduce = _reduce(metric)
    return [reduce(values[start:stop]) for _, start, stop in spans]


def _summed(lines: Sequence[Line]) -> list[int]:
    """The point-by-point sum (MAU sums too: a device id belongs to one app)."""
    return [sum(values) for values in zip(*(values for _, values in lines), strict=True)]


def bounded_apps(apps: list[Line]) -> list[Line]:
    """At most :data:`APP_LINES` lines: every app when they fit, else the largest apps (by the
    sum of their points, then by name) and one line summing the others."""
    if len(apps) <= APP_LINES:
        return apps
    ranked = sorted(apps, key=lambda line: (-sum(line[1]), line[0]))
    kept, others = ranked[: APP_LINES - 1], ranked[APP_LINES - 1 :]
    return [*kept, (f"Other apps ({len(others)})", _summed(others))]


def _axis_titles(metric: str, bucket: Bucket, unit: str) -> tuple[str, str]:
    x_title = {"day": "Day (UTC)", "week": "Week from (UTC)", "month": "Month (UTC)"}[bucket]
    if metric == "bandwidth":
        return x_title, f"{unit} per {bucket}"
    if bucket == "day":
        return x_title, unit
    return x_title, f"{unit}, the {bucket}'s peak"


def _number(value: float) -> str:
    return f"{value:,.0f}"


def _trimmed(value: float) -> str:
    """Two decimals at most, and none that are zeros (``1.5``, ``2``, ``0.25``)."""
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def draw(chart: Chart) -> str:
    """The SVG line chart of ``chart``, bounded in points, markers and lines (module docstring).

    With no day to draw (a range after today), the chart says so instead of plotting.
    """
    per_day = [*chart.lines]
    if chart.apps:
        per_day += [("All apps", _summed(chart.apps)), *bounded_apps(chart.apps)]
    days = len(per_day[0][1]) if per_day else 0
    bucket = bucket_for(days)
    spans = buckets(chart.first, days, bucket)
    lines = [(name, _grouped(values, spans, chart.metric)) for name, values in per_day]
    largest = max((max(values, default=0) for _, values in lines), default=0)
    if chart.metric == "mau":
        unit, scale = "users", 1
    else:
        unit, scale = byte_unit(largest)
    # Users and bytes have no fractions: pygal's own ticks (0.5, 1, 1.5...) would print as
    # "0, 1, 1, 2"; they suit KiB, MiB, GiB... (1.5 MiB is a real amount).
    y_labels = whole_number_ticks(largest) if scale == 1 else None
    x_title, y_title = _axis_titles(chart.metric, bucket, unit)
    labels = [label for label, _, _ in spans]
    pygal_chart = pygal.Line(
        title=f"{TITLES[chart.metric]} of {chart.subject}",
        x_title=x_title,
        y_title=y_title,
        style=_STYLE,
        width=960,
        height=420,
        js=[],
        show_legend=len(lines) > 1,
        legend_at_bottom=True,
        x_label_rotation=30,
        x_labels_major_every=max(1, len(labels) // 12),
        show_minor_x_labels=False,
        truncate_label=-1,
        include_x_axis=True,
        min_scale=2,
        max_scale=8,
        show_dots=len(labels) * len(lines) <= MAX_MARKERS,
        dots_size=3,
        # Numbers alone: the unit is the y axis title.
        value_formatter=_number if scale == 1 else _trimmed,
        no_data_text=f"No data from {chart.requested[0]} to {chart.requested[1]}",
    )
    pygal_chart.x_labels = labels
    if y_labels is not None:
        pygal_chart.y_labels = y_labels
    for name, values in lines:
        pygal_chart.add(name, [value / scale for value in values])
    svg: str = pygal_chart.render(is_unicode=True)
    return svg
