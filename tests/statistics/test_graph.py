"""``?graph=mau|storage|bandwidth``: a labelled SVG chart instead of JSON."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date, timedelta

import cairosvg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert

from capgo_server.models import DailyBandwidth
from capgo_server.statistics.graph import Chart, draw
from tests.conftest import Account, error_of
from tests.statistics.support import (
    APP_ID,
    DEVICE_A,
    DEVICE_B,
    check_for_update,
    create_app,
    june,
    on,
    stats,
    upload,
)

SVG = "{http://www.w3.org/2000/svg}"
RANGE = {"from": "2026-06-01", "to": "2026-06-05"}
MIB = 1024 * 1024


def texts(svg: ET.Element) -> list[str]:
    return [element.text for element in svg.iter(f"{SVG}text") if element.text]


def dots(svg: ET.Element) -> list[ET.Element]:
    """The plotted points: pygal draws each in a ``<g class="dots">`` (a circle, then its
    value and x label as ``<desc>``)."""
    return [g for g in svg.iter(f"{SVG}g") if g.get("class") == "dots"]


def plotted(svg: ET.Element) -> list[tuple[str | None, str | None]]:
    """(x label, formatted value) of every point."""
    return [
        (
            point.findtext(f"{SVG}desc[@class='x_label']"),
            point.findtext(f"{SVG}desc[@class='value']"),
        )
        for point in dots(svg)
    ]


async def _activity(client: httpx.AsyncClient, alice: Account) -> None:
    await create_app(client, alice)
    with on(june(1)):
        await upload(client, alice, "1.1.0")
        await check_for_update(client, DEVICE_A)
    with on(june(3)):
        await check_for_update(client, DEVICE_B)


async def _chart(
    client: httpx.AsyncClient, path: str, alice: Account, **query: str
) -> tuple[bytes, ET.Element]:
    with on(june(5)):
        response = await stats(client, path, alice.headers, **query)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/svg+xml"
    return response.content, ET.fromstring(response.content)


async def test_mau_chart_has_title_axes_and_every_point(
    client: httpx.AsyncClient, alice: Account
) -> None:
    await _activity(client, alice)
    _, svg = await _chart(client, f"/app/{APP_ID}", alice, graph="mau", **RANGE)

    labels = texts(svg)
    assert f"Monthly active users of App {APP_ID}" in labels
    assert "Day (UTC)" in labels
    assert "users" in labels
    assert "2026-06-01" in labels
    assert plotted(svg) == [
        ("2026-06-01", "1"),
        ("2026-06-02", "1"),
        ("2026-06-03", "2"),
        ("2026-06-04", "2"),
        ("2026-06-05", "2"),
    ]


async def test_byte_charts_use_a_readable_unit(client: httpx.AsyncClient, alice: Account) -> None:
    await _activity(client, alice)
    _, svg = await _chart(client, f"/app/{APP_ID}", alice, graph="storage", **RANGE)

    labels = texts(svg)
    assert f"Storage of App {APP_ID}" in labels
    assert "KiB" in labels  # a ~120 KB bundle
    assert len(dots(svg)) == 5


async def test_org_chart_with_breakdown_draws_a_line_per_app(
    client: httpx.AsyncClient, alice: Account
) -> None:
    await _activity(client, alice)
    await create_app(client, alice, "com.stats.quiet")
    _, svg = await _chart(
        client, f"/org/{alice.org_id}", alice, graph="bandwidth", breakdown="true", **RANGE
    )
    labels = texts(svg)
    assert "Bandwidth of Alice Org" in labels
    assert {"All apps", APP_ID, "com.stats.quiet"} <= set(labels)  # the legend
    assert len(dots(svg)) == 15


@pytest.mark.parametrize("path", ["/user", f"/app/{APP_ID}"])
async def test_an_empty_range_draws_an_empty_chart_with_a_note(
    client: httpx.AsyncClient, alice: Account, path: str
) -> None:
    await create_app(client, alice)
    query = {"from": "2026-07-01", "to": "2026-07-31", "graph": "mau"}
    _, svg = await _chart(client, path, alice, **query)
    assert "No data from 2026-07-01 to 2026-07-31" in texts(svg)
    assert dots(svg) == []


async def test_the_chart_renders_to_png(
    client: httpx.AsyncClient, alice: Account, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Rendered by a real SVG renderer (cairo), the chart is a 960 by 420 picture; the file is
    left in pytest's temporary directory to look at."""
    await _activity(client, alice)
    content, _ = await _chart(client, f"/app/{APP_ID}", alice, graph="mau", **RANGE)
    png = cairosvg.svg2png(bytestring=content)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (960, 420)
    (tmp_path_factory.getbasetemp() / "statistics-mau.png").write_bytes(png)


async def _ten_years_of_bandwidth(app: FastAPI, app_ids: list[str], last: date) -> date:
    """A row per app and day for ten years up to ``last`` (app n sends n MiB a day), written
    directly: no API back-dates downloads. The first day."""
    first = last - timedelta(days=3649)
    async with app.state.sessionmaker() as session:
        await session.execute(
            insert(DailyBandwidth),
            [
                {"app_id": app_id, "date": first + timedelta(days=i), "bandwidth": n * MIB}
                for n, app_id in enumerate(app_ids, 1)
                for i in range(3650)
            ],
        )
        await session.commit()
    return first


async def test_a_ten_year_chart_is_drawn_by_month(
    client: httpx.AsyncClient, alice: Account, app: FastAPI
) -> None:
    await create_app(client, alice)
    first = await _ten_years_of_bandwidth(app, [APP_ID], june(5))
    query = {"from": first.isoformat(), "to": "2026-06-05", "graph": "bandwidth"}
    content, svg = await _chart(client, f"/app/{APP_ID}", alice, **query)

    labels = texts(svg)
    assert "Month (UTC)" in labels
    assert "MiB per month" in labels  # 28 to 31 MiB a month
    assert "2016-06" in labels
    assert len(dots(svg)) == 121  # a point per month, not 3,650 markers
    assert plotted(svg)[1] == ("2016-07", "31")  # a month's MiB, summed
    assert len(content) < 100_000  # the day-by-day chart was 1.2 MB


async def test_a_breakdown_draws_the_largest_apps_and_sums_the_others(
    client: httpx.AsyncClient, alice: Account, app: FastAPI
) -> None:
    app_ids = [f"com.stats.app{n}" for n in range(1, 9)]
    for app_id in app_ids:
        await create_app(client, alice, app_id)
    await _ten_years_of_bandwidth(app, app_ids, june(5))
    query = {"from": "2026-06-01", "to": "2026-06-05", "graph": "bandwidth"}
    _, svg = await _chart(client, f"/org/{alice.org_id}", alice, breakdown="true", **query)
    legend = set(texts(svg))
    # Apps 4 to 8 send the most; apps 1 to 3 (1 + 2 + 3 MiB a day) make one line.
    assert {"All apps", "Other apps (3)", *app_ids[3:]} <= legend
    assert not {"com.stats.app1", "com.stats.app2", "com.stats.app3"} & legend
    assert "MiB per day" in legend
    assert plotted(svg)[-5:] == [(f"2026-06-0{day}", "6") for day in range(1, 6)]
    # Whole MiB on the axis: no needless decimals.
    assert {"0", "10", "20", "30"} <= legend  # total: 36 MiB a day
    assert not [label for label in legend if label.endswith(".00") or label.endswith(".0")]


async def test_a_chart_beyond_the_renderers_is_refused_with_retry_after(
    client: httpx.AsyncClient, alice: Account, app: FastAPI
) -> None:
    """Every renderer busy (the one slot taken here) for the whole wait: 503 ``charts_busy``."""
    await create_app(client, alice)
    renderer = app.state.chart_renderer
    renderer.wait_seconds = 0.2
    async with renderer.slot():
        with on(june(5)):
            response = await stats(client, f"/app/{APP_ID}", alice.headers, graph="mau", **RANGE)
    assert response.status_code == 503, response.text
    assert error_of(response) == (503, "charts_busy")
    assert response.headers["retry-after"] == "1"
    assert response.json()["moreInfo"] == {"retry_after": 1}
    with on(june(5)):  # the slot free again: drawn
        response = await stats(client, f"/app/{APP_ID}", alice.headers, graph="mau", **RANGE)
    assert response.status_code == 200, response.text


# --- what people read: drawn directly, the SVG parsed --------------------------------------


def drawn(metric: str, *lines: list[int]) -> ET.Element:
    first = date(2025, 6, 1)
    last = first + timedelta(days=len(lines[0]) - 1)
    chart = Chart(
        metric=metric,
        subject="App com.example.app",
        first=first,
        requested=(first, last),
        lines=[(f"line {n}", values) for n, values in enumerate(lines)],
    )
    return ET.fromstring(draw(chart))


def y_axis(svg: ET.Element) -> list[str]:
    """The y axis's tick labels, bottom to top."""
    (axis,) = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "axis y always_show"]
    return [text.text or "" for text in axis.iter(f"{SVG}text")]


def y_title(svg: ET.Element) -> str:
    (title,) = [
        t.text or ""
        for t in svg.iter(f"{SVG}text")
        if t.get("transform", "").startswith("rotate(-90")
    ]
    return title


class TestMarkers:
    def test_a_year_long_chart_is_drawn_without_markers(self) -> None:
        svg = drawn("mau", [day % 7 for day in range(365)])
        assert dots(svg) == []
        (line,) = [p for p in svg.iter(f"{SVG}path") if p.get("class") == "line reactive nofill"]
        coordinates = re.findall(r"-?[\d.]+", line.get("d", ""))
        assert len(coordinates) == 2 * 365  # every day is still drawn, day by day

    @pytest.mark.parametrize(
        ("days", "lines", "markers"), [(200, 1, 200), (201, 1, 0), (100, 3, 0)]
    )
    def test_markers_only_up_to_200_points(self, days: int, lines: int, markers: int) -> None:
        svg = drawn("storage", *([MIB] * days for _ in range(lines)))
        assert len(dots(svg)) == markers


class TestUnits:
    @pytest.mark.parametrize(
        ("values", "ticks"),
        [([0, 1, 1, 2, 1], ["0", "1", "2"]), ([0, 1], ["0", "1"]), ([3, 3], ["0", "1", "2", "3"])],
    )
    def test_mau_is_counted_in_whole_users(self, values: list[int], ticks: list[str]) -> None:
        svg = drawn("mau", values)
        assert y_title(svg) == "users"
        assert y_axis(svg) == ticks
        assert [value for _, value in plotted(svg)] == [str(v) for v in values]

    def test_large_mau_is_grouped_in_thousands(self) -> None:
        svg = drawn("mau", [1500, 2500, 100_000])
        assert y_axis(svg) == ["0", "20,000", "40,000", "60,000", "80,000", "100,000"]
        assert [value for _, value in plotted(svg)] == ["1,500", "2,500", "100,000"]

    @pytest.mark.parametrize(
        ("metric", "largest", "title"),
        [
            ("storage", 900, "bytes"),
            ("storage", 1024, "KiB"),
            ("storage", 3 * MIB // 2, "MiB"),
            ("storage", 3 * 1024 * MIB // 2, "GiB"),
            ("bandwidth", 3 * MIB // 2, "MiB per day"),
        ],
    )
    def test_bytes_are_in_one_binary_unit_spelled_as_such(
        self, metric: str, largest: int, title: str
    ) -> None:
        assert y_title(drawn(metric, [0, largest])) == title

    def test_bytes_under_a_kib_are_whole(self) -> None:
        svg = drawn("storage", [0, 1, 3])
        assert y_axis(svg) == ["0", "1", "2", "3"]  # was "0, 0, 1, 1, 2, 2, 2, 3"
        assert [value for _, value in plotted(svg)] == ["0", "1", "3"]

    def test_no_needless_decimals(self) -> None:
        svg = drawn("storage", [3 * MIB // 2, 2 * MIB, 5 * MIB // 4, MIB, MIB // 2])
        assert [value for _, value in plotted(svg)] == ["1.5", "2", "1.25", "1", "0.5"]
        ticks = y_axis(svg)
        assert ticks[0] == "0"
        assert "2" in ticks
        assert not [tick for tick in ticks if "." in tick and tick.endswith("0")]
