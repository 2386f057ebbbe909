"""Crash safety, the short version of ``bench/crash_safety.py``: a real server process under a
mixed write load, killed with SIGKILL three times and restarted; every acknowledged write must
be there and intact, no upload half-visible, and SQLite's integrity checks must pass.

The full run (20+ kills, both engines) is documented in ``docs/security.md``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from capgo_server.db.engine import make_engine, make_sessionmaker

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "crash_safety.py"
KILLS = 3


def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    out = tmp_path / "crash-safety.json"
    command = [sys.executable, str(SCRIPT), "--engine", "sqlite", "--kills", str(KILLS)]
    command += ["--seed", "7", "--min-run", "1", "--max-run", "2.5", "--out", str(out)]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=240, check=False)
    assert out.exists(), finished.stdout[-3000:] + finished.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["failures"] == [], report
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    assert report["kills"] == report["kills_survived"] == KILLS
    assert report["integrity_checks"] == KILLS
    assert report["processes_killed_per_kill"] == [1]  # uvicorn serves in the killed process
    # How much gets written before each kill depends on the machine; what was acknowledged
    # was checked, and every round checks every channel.
    assert sum(report["writes_acknowledged"].values()) > 0
    assert report["verified"]["channels at their acknowledged bundle"] == 3 * KILLS


async def test_sqlite_commits_are_synced_before_the_answer(tmp_path: Path) -> None:
    """WAL with synchronous=FULL: a commit is on disk when it returns (NORMAL may lose the last
    commits on a power cut, acknowledged ones included)."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'capgo.db'}")
    try:
        async with engine.connect() as connection:
            mode = await connection.scalar(text("PRAGMA journal_mode"))
            synchronous = await connection.scalar(text("PRAGMA synchronous"))
    finally:
        await engine.dispose()
    assert (mode, synchronous) == ("wal", 2)  # 2 = FULL


async def test_sqlite_savepoint_does_not_commit_before_the_request(tmp_path: Path) -> None:
    """A savepoint taken before a request's first write (as ``pin_override`` and ``POST /bundle``
    do) stays inside the request's transaction: rolling the request back (or a crash before its
    commit) undoes what the savepoint wrote."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'capgo.db'}")
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (x INTEGER UNIQUE)"))
        sessionmaker = make_sessionmaker(engine)
        async with sessionmaker() as session:
            await session.execute(text("SELECT count(*) FROM t"))
            async with session.begin_nested():
                await session.execute(text("INSERT INTO t VALUES (1)"))
            await session.execute(text("INSERT INTO t VALUES (2)"))
            await session.rollback()
        async with sessionmaker() as session:
            assert (await session.execute(text("SELECT x FROM t"))).all() == []
            with pytest.raises(IntegrityError):  # a failed savepoint still rolls back alone
                await _insert_twice(session, 3)
            await session.execute(text("INSERT INTO t VALUES (4)"))
            await session.commit()
        async with sessionmaker() as session:
            assert (await session.execute(text("SELECT x FROM t"))).scalars().all() == [4]
    finally:
        await engine.dispose()


async def _insert_twice(session: AsyncSession, value: int) -> None:
    async with session.begin_nested():
        await session.execute(text("INSERT INTO t VALUES (:x)"), {"x": value})
        await session.execute(text("INSERT INTO t VALUES (:x)"), {"x": value})
