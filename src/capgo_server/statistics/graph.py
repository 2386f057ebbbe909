"""SVG charts of one measure (``?graph=mau|storage|bandwidth``), drawn with pygal.

The SVG is self-contained (styles inline, no script), so it renders the same in a browser, an
``<img>`` tag of a dashboard or a README. Byte counts are scaled to one readable unit for the
whole chart (KB, MB, GB... of 1024, as Capgo's console counts them).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import pygal
from pygal.style import Style

from capgo_server.statistics.measures import Days, Usage
from capgo_server.statistics.schemas import Metric

TITLES: dict[Metric, str] = {
    "mau": "Monthly active users",
    "storage": "Storage",
    "bandwidth": "Bandwidth",
}

_BYTE_UNITS = ("bytes", "KB", "MB", "GB", "TB", "PB")

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


def _values(usage: Usage, metric: Metric) -> list[int]:
    values: list[int] = getattr(usage, metric)
    return values


def _number(value: float) -> str:
    return f"{value:,.0f}"


def _decimal(value: float) -> str:
    return f"{value:,.2f}"


def render(
    metric: Metric,
    subject: str,
    days: Days,
    series: Sequence[tuple[str, Usage]],
    requested: tuple[date, date],
) -> str:
    """An SVG line chart of ``metric`` per day, one line per ``(name, usage)`` series.

    With no day to draw (a range after today), the chart says so instead of plotting.
    """
    largest = max((max(_values(usage, metric), default=0) for _, usage in series), default=0)
    if metric == "mau":
        unit, scale = "users", 1
        y_labels: list[int] | None = whole_number_ticks(largest)
    else:
        unit, scale = byte_unit(largest)
        y_labels = None  # pygal's own ticks suit fractional KB/MB/GB
    dates = [day.isoformat() for day in days]
    chart = pygal.Line(
        title=f"{TITLES[metric]} of {subject}",
        x_title="Day (UTC)",
        y_title=unit,
        style=_STYLE,
        width=960,
        height=420,
        js=[],
        show_legend=len(series) > 1,
        legend_at_bottom=True,
        x_label_rotation=30,
        x_labels_major_every=max(1, len(dates) // 12),
        show_minor_x_labels=False,
        truncate_label=-1,
        include_x_axis=True,
        min_scale=2,
        max_scale=8,
        dots_size=3,
        # Numbers alone: the unit is the y axis title.
        value_formatter=_number if scale == 1 else _decimal,
        no_data_text=f"No data from {requested[0]} to {requested[1]}",
    )
    chart.x_labels = dates
    if y_labels is not None:
        chart.y_labels = y_labels
    for name, usage in series:
        chart.add(name, [value / scale for value in _values(usage, metric)])
    return chart.render(is_unicode=True)
