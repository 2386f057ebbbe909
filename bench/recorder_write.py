"""What the device recorder's batch writer costs per recording, in-process.

    .venv/bin/python bench/recorder_write.py --engine sqlite
    .venv/bin/python bench/recorder_write.py --engine postgresql --label after

Migrates a fresh database (a SQLite file in a temporary directory, or a scratch PostgreSQL
database dropped at the end), makes a user, one app and a few bundles, and writes
``--known`` devices seen yesterday with the writer itself. Then it times
``plugin.recording.write_batch`` (one transaction each, commit included, as the recorder runs
it) on batches such as ``POST /updates`` makes: a device row, the device-day and one ``get``
event per recording, a ``get`` counter for about one in ten; 70 % devices never seen before,
20 % devices seen yesterday, 10 % devices already written today. The worker's
:class:`~capgo_server.plugin.recording.ActivityMemo` is kept across batches, as the recorder
keeps it. Recordings are built before the clock starts.

Prints and stores (``bench/results/recorder-write-<engine>-<label>.json``) the median over
``--runs`` batches of each size: wall time and process CPU time (every thread, so on SQLite the
driver's thread too) per recording, in microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from capgo_server.clock import utcnow
from capgo_server.db.admin import admin_execute
from capgo_server.db.engine import make_engine, make_sessionmaker
from capgo_server.db.migrate import upgrade_to_head
from capgo_server.models import App, AppIdReservation, Bundle
from capgo_server.plugin.recording import ActivityMemo, DeviceSeen, Recording, write_batch
from capgo_server.users.service import create_user

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
APP_ID = "com.bench.recorder"
BUNDLES = ["1.0.0", "1.1.0", "1.2.0"]


def say(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


@asynccontextmanager
async def fresh_database(engine_name: str, pg_url: str) -> AsyncIterator[str]:
    with tempfile.TemporaryDirectory(prefix="capgo-bench-") as scratch:
        name = None
        if engine_name == "sqlite":
            url = f"sqlite+aiosqlite:///{Path(scratch) / 'capgo.db'}"
        else:
            name = f"capgo_bench_{uuid.uuid4().hex[:12]}"
            await admin_execute(pg_url, f'CREATE DATABASE "{name}"')
            url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
        try:
            engine = make_engine(url)
            await upgrade_to_head(engine)
            await engine.dispose()
            yield url
        finally:
            if name is not None:
                await admin_execute(pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def recording(device_id: str, rng: random.Random, when: Any) -> Recording:
    """What ``POST /updates`` records for a device asking from bundle ``version``."""
    version = rng.choice(BUNDLES)
    seen = Recording(APP_ID, device_id, at=when)
    seen.device = DeviceSeen(
        app_id=APP_ID,
        device_id=device_id,
        platform=rng.choice(["android", "ios"]),
        plugin_version="7.17.0",
        os_version="14",
        version_build="1.0.0",
        version_name=version,
        custom_id="",
        is_prod=True,
        is_emulator=False,
        default_channel=None,
        key_id=None,
    )
    seen.event("get", BUNDLES[-1])
    if rng.random() < 0.1:
        seen.count(BUNDLES[-1], "get")
    return seen


class Devices:
    """Device ids: new ones, those seen yesterday, those already written today."""

    def __init__(self, known: int, rng: random.Random) -> None:
        self.rng = rng
        self.known = [f"known-{n:07d}" for n in range(known)]
        self.today: list[str] = []
        self.fresh = 0

    def batch(self, size: int) -> list[str]:
        ids = []
        for _ in range(size):
            draw = self.rng.random()
            if draw < 0.1 and self.today:
                ids.append(self.rng.choice(self.today))
            elif draw < 0.3:
                ids.append(self.rng.choice(self.known))
            else:
                self.fresh += 1
                ids.append(f"new-{self.fresh:08d}")
        self.today.extend(ids)
        return ids


async def seed(sessionmaker: async_sessionmaker[AsyncSession], devices: Devices) -> None:
    async with sessionmaker() as session, session.begin():
        account = await create_user(session, "bench@example.com", "Bench Org")
        session.add(AppIdReservation(app_id=APP_ID, org_id=account.org_id))
        await session.flush()
        session.add(App(app_id=APP_ID, name="Bench", owner_org=account.org_id))
        await session.flush()
        session.add_all(
            Bundle(app_id=APP_ID, name=name, owner_org=account.org_id, external_url="https://x/")
            for name in BUNDLES
        )
    yesterday = utcnow() - timedelta(days=1)
    for start in range(0, len(devices.known), 5_000):
        chunk = devices.known[start : start + 5_000]
        async with sessionmaker() as session, session.begin():
            await write_batch(session, [recording(d, devices.rng, yesterday) for d in chunk])


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    devices = Devices(args.known, rng)
    async with fresh_database(args.engine, args.pg_url) as url:
        engine = make_engine(url)
        sessionmaker = make_sessionmaker(engine)
        try:
            await seed(sessionmaker, devices)
            memo = ActivityMemo()
            figures: dict[str, Any] = {}
            for size in args.sizes:
                walls, cpus = [], []
                for _ in range(args.warmup + args.runs):
                    now = utcnow()
                    batch = [recording(d, rng, now) for d in devices.batch(size)]
                    wall, cpu = time.perf_counter(), time.process_time()
                    async with sessionmaker() as session, session.begin():
                        seen = await write_batch(session, batch, memo)
                    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                    memo.add(seen)
                    walls.append(wall * 1e6 / size)
                    cpus.append(cpu * 1e6 / size)
                walls, cpus = walls[args.warmup :], cpus[args.warmup :]
                figures[str(size)] = {
                    "wall_us_per_recording_median": round(statistics.median(walls), 1),
                    "cpu_us_per_recording_median": round(statistics.median(cpus), 1),
                    "wall_us_per_recording_all": [round(w, 1) for w in walls],
                    "batch_ms_median": round(statistics.median(walls) * size / 1000, 1),
                }
                say(
                    f"{args.engine} batch {size:>6}: wall {statistics.median(walls):7.1f} µs, "
                    f"cpu {statistics.median(cpus):7.1f} µs per recording (median of {args.runs})"
                )
            return figures
        finally:
            await engine.dispose()


def commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--pg-url", default=os.environ.get("CAPGO_BENCH_PG_URL", DEFAULT_PG_URL))
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 2_000, 5_000])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--known", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--label", default="current")
    args = parser.parse_args()
    figures = asyncio.run(measure(args))
    RESULTS_DIR.mkdir(exist_ok=True)
    result = {
        "engine": args.engine,
        "label": args.label,
        "commit": commit(),
        "taken_at": utcnow().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average_1min": os.getloadavg()[0],
        "runs": args.runs,
        "known_devices": args.known,
        "batches": figures,
    }
    path = RESULTS_DIR / f"recorder-write-{args.engine}-{args.label}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    say(f"wrote {path}")


if __name__ == "__main__":
    main()
