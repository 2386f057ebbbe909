"""Charts do not slow the device endpoints: against a real ``serve`` process, several clients
loop the heaviest charts (ten years, an org breakdown over several apps with data) while a
device keeps asking ``/updates``.

Drawn in the worker's event loop, one such chart stopped every other request for seconds
(pygal is pure Python); the renderer draws in processes of its own, bounded in number, and
each chart is bounded in points and lines (statistics/graph.py, statistics/renderer.py).
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert

from capgo_server.db.engine import make_engine
from capgo_server.models import DailyBandwidth, DailyMauChange
from tests.live import LiveServer, live_server

APPS = [f"com.charts.app{i}" for i in range(4)]
DEVICE_APP = APPS[0]
YEARS = 3650  # days: the longest range a request may ask for
CHART_CLIENTS = 6
MEASURE_SECONDS = 5.0
UNLIMITED = str(10**9)


def _seed_daily_statistics(database_url: str, last: date) -> None:
    """Ten years of MAU changes and bandwidth, a row per app and day (as the roll-ups keep
    them), written directly: no API back-dates device activity."""
    first = last - timedelta(days=YEARS - 1)
    mau = [
        {"app_id": app_id, "date": first + timedelta(days=i), "change": 5 if i % 3 else -3}
        for app_id in APPS
        for i in range(YEARS)
    ]
    sent = [
        {"app_id": app_id, "date": first + timedelta(days=i), "bandwidth": 1_000_000 + i * n}
        for n, app_id in enumerate(APPS, 1)
        for i in range(YEARS)
    ]

    async def write() -> None:
        engine = make_engine(database_url)
        async with engine.begin() as connection:
            await connection.execute(insert(DailyMauChange), mau)
            await connection.execute(insert(DailyBandwidth), sent)
        await engine.dispose()

    asyncio.run(write())


def _create_apps(live: LiveServer) -> None:
    """The apps through the API; the device's app with a bundle on a public channel."""
    with live.http() as http:
        for app_id in APPS:
            body = {"app_id": app_id, "name": app_id, "owner_org": live.org_id}
            assert http.post("/app", json=body).status_code == 200
        bundle = {
            "app_id": DEVICE_APP,
            "version": "1.0.1",
            "external_url": "https://cdn.example.com/1.0.1.zip",
            "checksum": "a" * 64,
        }
        response = http.post("/bundle", json=bundle)
        assert response.status_code == 200, response.text
        channel = {"app_id": DEVICE_APP, "channel": "production", "version": "1.0.1"}
        response = http.post("/channel", json={**channel, "public": True})
        assert response.status_code == 200, response.text


def _device_body(n: int) -> dict[str, object]:
    return {
        "app_id": DEVICE_APP,
        "device_id": f"dddddddd-0000-4000-8000-{n:012d}",
        "platform": "android",
        "version_name": "builtin",
        "version_build": "1.0.0",
        "version_code": "1",
        "version_os": "14",
        "plugin_version": "7.17.0",
        "is_emulator": False,
        "is_prod": True,
    }


def _chart_paths(live: LiveServer, first: date, last: date) -> list[str]:
    days = f"from={first}&to={last}"
    return [
        f"/statistics/org/{live.org_id}?{days}&graph=mau&breakdown=true",
        f"/statistics/app/{DEVICE_APP}?{days}&graph=bandwidth",
        f"/statistics/org/{live.org_id}?{days}&graph=bandwidth&breakdown=true",
    ]


def _descendants(pid: int) -> set[int]:
    """Every process started by ``pid``, at any depth (Linux: /proc/<pid>/task/*/children)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        for child in (task / "children").read_text().split():
            found |= {int(child), *_descendants(int(child))}
    return found


def _wait_until_gone(pids: set[int], seconds: float) -> set[int]:
    deadline = time.monotonic() + seconds
    while (alive := {pid for pid in pids if Path(f"/proc/{pid}").exists()}) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.1)
    return alive


def test_updates_stay_fast_while_clients_loop_ten_year_charts(
    database_url: str, tmp_path: Path
) -> None:
    settings = {
        "CAPGO_RATE_LIMIT_API_KEY_PER_MINUTE": UNLIMITED,
        "CAPGO_RATE_LIMIT_DEVICE_PER_MINUTE": UNLIMITED,
        "CAPGO_RATE_LIMIT_IP_PER_MINUTE": UNLIMITED,
    }
    with live_server(database_url, tmp_path, **settings) as live:
        _create_apps(live)
        today = date.today()
        _seed_daily_statistics(database_url, today)
        paths = _chart_paths(live, today - timedelta(days=YEARS - 1), today)
        with live.http() as http:
            first = http.get(paths[0])  # also starts the renderer before the clock runs
            assert first.status_code == 200, first.text
            assert first.headers["content-type"] == "image/svg+xml"
            assert b"com.charts.app3" in first.content  # a line per app
            answer = http.post("/updates", json=_device_body(0))
            assert answer.status_code == 200, answer.text
            assert answer.json()["version"] == "1.0.1", answer.text

        stop = threading.Event()
        drawn: list[int] = []
        refused: list[int] = []

        def loop_charts(index: int) -> None:
            with live.http(timeout=60) as http:
                while not stop.is_set():
                    response = http.get(paths[index % len(paths)])
                    if response.status_code == 200:
                        assert response.content.startswith(b"<?xml")
                        drawn.append(len(response.content))
                    else:  # the bounded queue turning a flood away
                        assert response.status_code == 503, response.text
                        assert response.json()["error"] == "charts_busy"
                        assert int(response.headers["retry-after"]) >= 1
                        refused.append(1)

        clients = [
            threading.Thread(target=loop_charts, args=(i,), daemon=True)
            for i in range(CHART_CLIENTS)
        ]
        for client in clients:
            client.start()
        latencies: list[float] = []
        try:
            time.sleep(0.5)  # every client has a chart in flight
            with httpx.Client(base_url=live.base_url, timeout=30) as device:
                deadline = time.monotonic() + MEASURE_SECONDS
                n = 1
                while time.monotonic() < deadline:
                    started = time.perf_counter()
                    answer = device.post("/updates", json=_device_body(n))
                    latencies.append(time.perf_counter() - started)
                    assert answer.status_code == 200, answer.text
                    assert answer.json()["version"] == "1.0.1", answer.text
                    n += 1
                    time.sleep(0.05)
        finally:
            stop.set()
            for client in clients:
                client.join(timeout=60)
        renderers = _descendants(live.server.process.pid)
        assert renderers  # the fork server and its renderer
    # The server was killed outright (SIGKILL): no renderer outlives it.
    assert _wait_until_gone(renderers, seconds=5) == set()

    latencies.sort()
    median = statistics.median(latencies)
    p90 = latencies[int(len(latencies) * 0.9)]
    summary = (
        f"/updates median {median * 1000:.0f} ms, p90 {p90 * 1000:.0f} ms over "
        f"{len(latencies)} requests; {len(drawn)} charts drawn, {len(refused)} refused"
    )
    logging.getLogger(__name__).warning(summary)  # shown with the test's log (-rA)
    assert len(drawn) >= CHART_CLIENTS, summary  # the charts really were being drawn
    assert median < 0.25, summary
    assert p90 < 0.25, summary
