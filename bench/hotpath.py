"""The device hot path: ``POST /updates`` under load, against the framework's own ceiling.

    .venv/bin/python bench/hotpath.py --engine sqlite
    .venv/bin/python bench/hotpath.py --engine postgresql --workers 1
    .venv/bin/python bench/hotpath.py --engine postgresql --workers 2
    .venv/bin/python bench/hotpath.py --engine sqlite --duration 30 --soak 600   # RSS over 10 min
    .venv/bin/python bench/hotpath.py --table     # the Markdown table of bench/results/hotpath-*

One run, on one machine, with the same uvicorn options for both servers:

1. **The ceiling.** A bare FastAPI app (``bench/hotpath_bare.py``: one route answering a constant
   JSON body) is served by uvicorn exactly as ``capgo-server serve`` serves the real app, and
   driven with the same ``wrk`` script.
2. **The dataset**, built through the service's own code: ``capgo-server create-user``, then over
   the HTTP API 100 apps, 20 bundles and 5 channels each, and 2,000 device overrides
   (``POST /device``); then 100,000 known devices (1,000 per app), written by the recorder's own
   batch writer (``plugin.recording.write_batch``, what ``/updates`` and ``/stats`` record).
3. **The load**: ``wrk`` (one thread, 32 connections, from a separate process on loopback) with
   ``bench/hotpath.lua``. Of every 11 requests, 10 are ``POST /updates`` -- 40 % devices already
   up to date, 30 % devices that get an update, 10 % devices with an override (offered their
   override channel's bundle), 20 % devices never seen before -- and 1 is ``POST /stats`` (a
   ``set`` event). The script checks every answer: a non-200 status, a ``blocked``/``failed``
   refusal, or an unexpected kind of answer counts as an error. Each server is measured twice:
   at a fixed ~500 req/s (``--paced-rate``; the latency figures), then flat out (the
   throughput).
4. Optionally (``--soak S``), a longer run at the same load, with the server's resident memory
   (RSS, summed over its worker processes) read at its start and end.

Rate limits are raised for the benchmark (``CAPGO_RATE_LIMIT_*`` to 10^9): it measures the path,
not the limiter, which would refuse a single client address sending thousands of requests per
second.

Results go to ``bench/results/hotpath-<engine>-w<workers>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
VENV_BIN = Path(sys.executable).parent
LUA = BENCH / "hotpath.lua"
PG_URL = os.environ.get(
    "CAPGO_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)

APPS = 100
BUNDLES_PER_APP = 20
CHANNELS = ("production", "beta", "development", "staging", "nightly")
DEVICES_PER_APP = 1_000
OVERRIDES_PER_APP = 20
LATEST = f"1.0.{BUNDLES_PER_APP - 1}"
SECRET = "hotpath-benchmark-secret-0123456789abcdef"
UNLIMITED = str(10**9)


def app_id(index: int) -> str:
    return f"com.bench.app{index:03d}"


def device_id(app: int, n: int) -> str:
    """Known device ``n`` of app ``app`` (hotpath.lua builds the same ids)."""
    return f"{app:08x}-{n:04x}-4000-8000-000000000000"


# --- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_up(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code < 500:
                return
        time.sleep(0.2)
    raise RuntimeError(f"server at {url} did not start")


@contextlib.contextmanager
def serving(
    command: list[str], env: dict[str, str], url: str, log: Path, workers: int = 1
) -> Iterator[int]:
    """Run a server until the block ends (SIGTERM, as an operator would); yields its pid once
    every one of its ``workers`` has started (a worker still starting does not listen yet, so
    the connections opened meanwhile would all stay on the others)."""
    log.touch()
    logged_before = log.stat().st_size
    with log.open("ab") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=out, cwd=ROOT)
    try:
        wait_until_up(url)
        deadline = time.monotonic() + 60
        while _startups_logged(log, logged_before) < workers:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{workers} workers did not start; see {log}")
            time.sleep(0.2)
        yield process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _startups_logged(log: Path, offset: int) -> int:
    with log.open("rb") as text:
        text.seek(offset)
        return text.read().count(b"Application startup complete")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
            found.extend(int(child) for child in text.split())
    return found


def _rss_kib(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def server_rss_mib(pid: int) -> dict[str, Any]:
    """RSS of the serving processes: the workers (uvicorn's children, or the process itself
    when it serves alone; the multiprocessing resource tracker is left out)."""
    workers = [p for p in _children(pid) if "resource_tracker" not in _cmdline(p)] or [pid]
    per_worker = [round(_rss_kib(p) / 1024, 1) for p in workers]
    return {"workers": per_worker, "total": round(sum(per_worker), 1)}


@contextlib.contextmanager
def rss_sampled(pid: int, every: float) -> Iterator[list[float]]:
    """The serving processes' total RSS (MiB), read every ``every`` seconds while the block
    runs: whether memory levels off or keeps growing."""
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(every):
            samples.append(server_rss_mib(pid)["total"])

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield samples
    finally:
        stop.set()
        sampler.join()


def _cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its children so far (the serving processes)."""
    total = 0.0
    for process in [pid, *_children(pid)]:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def wrk(
    url: str,
    duration: int,
    connections: int,
    threads: int,
    pid: int | None = None,
    rate: float = 0,
) -> dict[str, Any]:
    """Run wrk with hotpath.lua; its JSON summary plus the latency percentiles (and, given the
    server's pid, the server's CPU time per request).

    ``rate``: about that many requests per second in all (each connection pausing before each
    request, see hotpath.lua); 0 sends back to back, as fast as the server answers.
    """
    env = dict(os.environ)
    if rate:
        env["HOTPATH_PAUSE_MS"] = str(round(connections * 1000 / rate, 1))
    cpu_before = _cpu_seconds(pid) if pid else 0.0
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        url,
    ]
    load_before = os.getloadavg()[0]
    completed = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    match = re.search(r"^HOTPATH (\{.*\})$", completed.stdout, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk printed no summary:\n{completed.stdout}\n{completed.stderr}")
    summary: dict[str, Any] = json.loads(match.group(1))
    summary["rps"] = round(summary["requests"] / summary["duration_s"], 1)
    # The machine's 1-minute load average around the run: other work competing for the CPUs.
    summary["loadavg_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    if pid:
        # CPU time the server spent per request: unlike req/s, it does not depend on how much
        # of the machine other work takes.
        spent = _cpu_seconds(pid) - cpu_before
        summary["server_cpu_ms_per_request"] = round(spent * 1000 / max(summary["requests"], 1), 3)
    return summary


#: A pure-Python loop that prints how many rounds it made in ``argv[1]`` seconds.
_SPIN = """
import sys, time
end = time.perf_counter() + float(sys.argv[1])
rounds = 0
while time.perf_counter() < end:
    for _ in range(10_000):
        pass
    rounds += 1
print(rounds)
"""


def cpu_speedup(processes: int, seconds: float = 2.0, rounds: int = 3) -> float:
    """How much more pure-Python work ``processes`` processes do together than one does alone:
    the most ``--workers N`` can gain on this machine. Measured, not the CPU count: virtual
    CPUs can be siblings of one core, or shared with other machines. The median of ``rounds``
    alternations, as the machine's speed drifts."""

    def spin(count: int) -> int:
        started = [
            subprocess.Popen([sys.executable, "-c", _SPIN, str(seconds)], stdout=subprocess.PIPE)
            for _ in range(count)
        ]
        return sum(int(process.communicate()[0]) for process in started)

    ratios = sorted(spin(processes) / spin(1) for _ in range(rounds))
    return round(ratios[len(ratios) // 2], 2)


# --- the dataset -------------------------------------------------------------------------------


async def seed_api(base: str, key: str, org_id: str, concurrency: int) -> None:
    """Apps, bundles, channels and overrides through the HTTP API."""
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(
        base_url=base, headers={"authorization": key}, timeout=60, limits=limits
    ) as http:

        async def call(path: str, body: dict[str, Any]) -> None:
            response = await http.post(path, json=body)
            if response.status_code != 200:
                raise RuntimeError(f"{path} {body}: {response.status_code} {response.text}")

        async def one_app(index: int) -> None:
            app = app_id(index)
            await call("/app", {"app_id": app, "name": f"Bench {index}", "owner_org": org_id})
            for n in range(BUNDLES_PER_APP):
                version = f"1.0.{n}"
                await call(
                    "/bundle",
                    {
                        "app_id": app,
                        "version": version,
                        "external_url": f"https://cdn.example.com/{app}/{version}.zip",
                        "checksum": f"{index:04x}{n:04x}",
                    },
                )
            for position, name in enumerate(CHANNELS):
                await call(
                    "/channel",
                    {
                        "app_id": app,
                        "channel": name,
                        "version": f"1.0.{BUNDLES_PER_APP - 1 - position}",
                        "public": name == "production",
                        "ios": True,
                        "android": True,
                        "electron": True,
                        "allow_device_self_set": name != "production",
                        "disableAutoUpdate": "major",
                        "disableAutoUpdateUnderNative": True,
                    },
                )
            for n in range(OVERRIDES_PER_APP):
                await call(
                    "/device", {"app_id": app, "device_id": device_id(index, n), "channel": "beta"}
                )

        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(APPS):
            queue.put_nowait(index)

        async def worker() -> None:
            while not queue.empty():
                await one_app(queue.get_nowait())

        await asyncio.gather(*(worker() for _ in range(concurrency)))


async def seed_devices(database_url: str) -> None:
    """100,000 known devices, seen yesterday and today, by the recorder's batch writer."""
    from datetime import timedelta

    from capgo_server.clock import utcnow
    from capgo_server.db.engine import make_engine, make_sessionmaker
    from capgo_server.plugin.recording import DeviceSeen, Recording, write_batch

    engine = make_engine(database_url)
    sessionmaker = make_sessionmaker(engine)
    now = utcnow()
    try:
        for index in range(APPS):
            recordings = []
            for n in range(DEVICES_PER_APP):
                for at in (now - timedelta(days=1), now):
                    recording = Recording(app_id(index), device_id(index, n), at=at)
                    recording.device = DeviceSeen(
                        app_id=app_id(index),
                        device_id=device_id(index, n),
                        platform="android",
                        plugin_version="7.17.0",
                        os_version="14",
                        version_build="1.0.0",
                        version_name=LATEST,
                        custom_id="",
                        is_prod=True,
                        is_emulator=False,
                        default_channel=None,
                        key_id=None,
                    )
                    recording.event("get", LATEST)
                    recording.count(LATEST, "get")
                    recordings.append(recording)
            async with sessionmaker() as session, session.begin():
                await write_batch(session, recordings)
    finally:
        await engine.dispose()


# --- one configuration -------------------------------------------------------------------------


def server_env(data_dir: Path, database_url: str | None, port: int) -> dict[str, str]:
    env = {
        **os.environ,
        "CAPGO_DATA_DIR": str(data_dir),
        "CAPGO_SECRET": SECRET,
        "CAPGO_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "CAPGO_RATE_LIMIT_DEVICE_PER_MINUTE": UNLIMITED,
        "CAPGO_RATE_LIMIT_IP_PER_MINUTE": UNLIMITED,
        "CAPGO_RATE_LIMIT_API_KEY_PER_MINUTE": UNLIMITED,
    }
    if database_url:
        env["CAPGO_DATABASE_URL"] = database_url
    else:
        env.pop("CAPGO_DATABASE_URL", None)
    return env


async def _pg_admin(statement: str) -> None:
    from capgo_server.db.admin import admin_execute

    await admin_execute(PG_URL, statement)


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Seed once, then for each worker count: the bare ceiling, then ``/updates``."""
    work = Path(tempfile.mkdtemp(prefix="capgo-hotpath-"))
    log = work / "server.log"
    database_url: str | None = None
    pg_name = f"capgo_hotpath_{uuid.uuid4().hex[:8]}"
    if args.engine == "postgresql":
        from sqlalchemy.engine import make_url

        asyncio.run(_pg_admin(f'CREATE DATABASE "{pg_name}"'))
        database_url = make_url(PG_URL).set(database=pg_name).render_as_string(False)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = server_env(work / "data", database_url, port)
    common: dict[str, Any] = {
        "engine": args.engine,
        "connections": args.connections,
        "wrk_threads": args.threads,
        "duration_s": args.duration,
        "paced_rate": args.paced_rate,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "dataset": {
            "apps": APPS,
            "channels_per_app": len(CHANNELS),
            "bundles_per_app": BUNDLES_PER_APP,
            "known_devices": APPS * DEVICES_PER_APP,
            "overrides": APPS * OVERRIDES_PER_APP,
        },
    }
    results: list[dict[str, Any]] = []
    try:
        # 1. The dataset.
        subprocess.run(
            [str(VENV_BIN / "capgo-server"), "migrate"], env=env, check=True, capture_output=True
        )
        created = subprocess.run(
            [
                str(VENV_BIN / "capgo-server"),
                "create-user",
                "bench@example.com",
                "--org-name",
                "Bench",
            ],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        account = json.loads(created.stdout)
        started = time.monotonic()
        with serving(capgo_command(port, 1), env, f"{base}/ok", log):
            # One writer at a time on SQLite: concurrent API writes there can fail with
            # "database is locked" (a deferred transaction cannot upgrade to a write lock).
            concurrency = 1 if args.engine == "sqlite" else 8
            asyncio.run(seed_api(base, account["apikey"], account["org_id"], concurrency))
        asyncio.run(
            seed_devices(database_url or f"sqlite+aiosqlite:///{work / 'data' / 'capgo.db'}")
        )
        common["seed_s"] = round(time.monotonic() - started, 1)
        print(f"seeded in {common['seed_s']} s", flush=True)

        for count in args.worker_counts:
            result = {
                **common,
                "workers": count,
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            if count > 1:
                result["machine_cpu_speedup"] = cpu_speedup(count)
                print(f"{count} processes do {result['machine_cpu_speedup']}x one", flush=True)
            # 2. The framework's ceiling, same uvicorn options, right before.
            # Each server: latency at a fixed, moderate rate, then throughput (back to back).
            # In that order: flat out, the recorder falls behind, and the writes it owes would
            # land in (and be billed to) whatever run came next.
            load = (base, args.duration, args.connections, args.threads)
            warm_up = (base, 5, args.connections, args.threads)
            with serving(bare_command(port, count), env, f"{base}/ok", log, count) as pid:
                wrk(*warm_up, rate=args.paced_rate)
                result["bare_paced"] = wrk(*load, pid, rate=args.paced_rate)
                result["bare"] = wrk(*load, pid)
            print(f"w{count} bare: {result['bare']['rps']} req/s", flush=True)
            # 3. The load.
            with serving(capgo_command(port, count), env, f"{base}/ok", log, count) as pid:
                wrk(*warm_up, rate=args.paced_rate)  # caches, connections
                result["updates_paced"] = wrk(*load, pid, rate=args.paced_rate)
                result["updates"] = wrk(*load, pid)
                print(f"w{count} updates: {result['updates']['rps']} req/s", flush=True)
                if args.soak and count == args.worker_counts[0]:
                    start_rss = server_rss_mib(pid)
                    with rss_sampled(pid, every=30) as samples:
                        soak = wrk(base, args.soak, args.connections, args.threads, pid)
                    result["soak"] = {
                        **soak,
                        "rss_mib_start": start_rss,
                        "rss_mib_end": server_rss_mib(pid),
                        "rss_mib_every_30s": samples,
                    }
                    print(f"soak: {result['soak']}", flush=True)
            result["ratio_to_bare"] = round(result["updates"]["rps"] / result["bare"]["rps"], 3)
            result["cpu_ratio_to_bare"] = round(
                result["bare"]["server_cpu_ms_per_request"]
                / result["updates"]["server_cpu_ms_per_request"],
                3,
            )
            # Written by the server's shutdown flush: every answered request left its event.
            result["recorded_after_shutdown"] = count_rows(database_url, work)
            result["server_exceptions"] = exceptions_logged(log)
            results.append(result)
        one = next((r for r in results if r["workers"] == 1), None)
        for result in results:
            if one is not None and result is not one:
                result["speedup_vs_one_worker"] = {
                    server: round(result[server]["rps"] / one[server]["rps"], 2)
                    for server in ("updates", "bare")
                }
    finally:
        if args.keep:
            print(f"kept {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
        if args.engine == "postgresql" and not args.keep:
            asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
    return results


def exceptions_logged(log: Path) -> dict[str, int]:
    """The exceptions the servers logged so far, by type (the last line of each traceback).

    ``ClientDisconnect`` is expected: wrk closes its connections at the end of each run, some
    in the middle of sending a request.
    """
    found: dict[str, int] = {}
    in_traceback = False
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("Traceback"):
            in_traceback = True
        elif in_traceback and line and not line.startswith((" ", "\t")):
            kind = line.split(":", 1)[0]
            found[kind] = found.get(kind, 0) + 1
            in_traceback = False
    return found


def bare_command(port: int, workers: int) -> list[str]:
    script = str(BENCH / "hotpath_bare.py")
    return [str(VENV_BIN / "python"), script, "--port", str(port), "--workers", str(workers)]


def capgo_command(port: int, workers: int) -> list[str]:
    serve = [str(VENV_BIN / "capgo-server"), "serve"]
    return [*serve, "--port", str(port), "--workers", str(workers)]


def count_rows(database_url: str | None, work: Path) -> dict[str, int]:
    """Rows the run left behind (after the server's shutdown flush)."""
    from sqlalchemy import func, select

    from capgo_server.db.engine import make_engine
    from capgo_server.models import DailyVersion, Device, DeviceActivity, StatsEvent

    async def count() -> dict[str, int]:
        engine = make_engine(database_url or f"sqlite+aiosqlite:///{work / 'data' / 'capgo.db'}")
        try:
            async with engine.connect() as connection:
                counts = {}
                for model in (Device, DeviceActivity, StatsEvent):
                    counts[model.__tablename__] = int(
                        await connection.scalar(select(func.count()).select_from(model)) or 0
                    )
                counts["daily_version_get"] = int(
                    await connection.scalar(select(func.sum(DailyVersion.get))) or 0
                )
                return counts
        finally:
            await engine.dispose()

    return asyncio.run(count())


# --- the table ---------------------------------------------------------------------------------


def table() -> str:
    rows = [
        "| Engine | Workers | `/updates` req/s | Bare req/s | Ratio | CPU ratio "
        "| p50 / p99, ~500 req/s | Bare p50 / p99, ~500 req/s | p50 / p99, flat out "
        "| Errors | Load avg | × 1 worker (bare; machine) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for path in sorted(RESULTS.glob("hotpath-*.json")):
        r = json.loads(path.read_text())
        u = r["updates"]
        paced, bare_paced = r.get("updates_paced"), r.get("bare_paced")
        errors = u["errors"] + (paced["errors"] if paced else 0)
        rows.append(
            f"| {r['engine']} | {r['workers']} | {u['rps']:,.0f} | {r['bare']['rps']:,.0f} | "
            f"{r['ratio_to_bare']:.2f} | {r.get('cpu_ratio_to_bare', 0):.2f} | "
            f"{_percentiles(paced)} | {_percentiles(bare_paced)} | {_percentiles(u)} | "
            f"{errors} | {u.get('loadavg_1m', ['?'])[0]} | {_speedup(r)} |"
        )
    return "\n".join(rows)


def _speedup(result: dict[str, Any]) -> str:
    speedup = result.get("speedup_vs_one_worker")
    if speedup is None:
        return "—"
    machine = result.get("machine_cpu_speedup", "?")
    return f"{speedup['updates']:.2f} ({speedup['bare']:.2f}; {machine})"


def _percentiles(run: dict[str, Any] | None) -> str:
    if run is None:
        return "—"
    latency = run["latency_ms"]
    return f"{latency['p50']:.1f} / {latency['p99']:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--engine", choices=["sqlite", "postgresql"])
    parser.add_argument(
        "--workers",
        default="1",
        help="uvicorn workers; a list such as 1,2 measures each on the same dataset",
    )
    parser.add_argument("--duration", type=int, default=30, help="seconds of measured load")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument(
        "--paced-rate",
        type=float,
        default=500,
        help="requests per second of the latency runs (the same connections, pausing)",
    )
    parser.add_argument("--soak", type=int, default=0, help="seconds of a further run for RSS")
    parser.add_argument("--keep", action="store_true", help="keep the data dir / database")
    parser.add_argument("--table", action="store_true", help="print the results table and exit")
    args = parser.parse_args()
    if args.table:
        print(table())
        return
    if args.engine is None:
        parser.error("--engine is required")
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")
    args.worker_counts = [int(n) for n in str(args.workers).split(",")]
    RESULTS.mkdir(parents=True, exist_ok=True)
    for result in run(args):
        out = RESULTS / f"hotpath-{args.engine}-w{result['workers']}.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        summary = ("engine", "workers", "ratio_to_bare", "cpu_ratio_to_bare")
        print(json.dumps({key: result[key] for key in summary}))
        print(f"wrote {out.relative_to(ROOT)}")
    print(table())


if __name__ == "__main__":
    main()
