"""Shared fixtures: every test that uses ``client`` runs once on SQLite and once on PostgreSQL.

PostgreSQL comes from ``CAPGO_TEST_DATABASE_URL`` (default: the local ``test`` database as
``postgres``); each test session works in a database of its own, created and dropped here. When
PostgreSQL is not reachable its half of the suite is skipped, unless
``CAPGO_TEST_REQUIRE_POSTGRES=1`` (set by CI), which makes that an error.
"""

from __future__ import annotations

import fcntl
import gc
import math
import os
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import delete, text, update
from sqlalchemy.engine import make_url

from capgo_server.app import create_app
from capgo_server.auth import ratelimit
from capgo_server.clock import to_js_iso, utcnow
from capgo_server.db.admin import admin_execute
from capgo_server.db.base import Base
from capgo_server.db.engine import make_engine
from capgo_server.db.migrate import upgrade_to_head
from capgo_server.models import ApiKey
from capgo_server.settings import Settings
from capgo_server.users.service import create_user

# Device bookkeeping is written right after each response when the server is otherwise idle
# (the default waits up to a second), so a test reads what its last request recorded. Set in
# the environment, so servers the tests start as subprocesses behave alike.
os.environ.setdefault("CAPGO_RECORD_IDLE_DELAY_SECONDS", "0")

DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
ENGINES = ["sqlite", "postgresql"]

# --- Running on several cores (pytest-xdist; ``make test`` passes ``-n auto``) -------------------
#
# Tests that measure time or load (latency under load, timeouts of slow clients, the recorder's
# idle delays, kills under load...) would flake with another worker
# competing for the cores, and their bounds must not be loosened. They are marked ``serial``: each
# test holds the run's lock, shared by ordinary tests and exclusive by serial ones, so a serial
# test waits for the other workers' current tests to end and then runs alone. Whole files are
# listed here (one place, no edits in the test files); ``@pytest.mark.serial`` works too.
SERIAL_FILES = frozenset(
    {
        "tests/test_slow_clients.py",  # 1 s header/body timeouts, prompt answers beside slow ones
        "tests/test_graceful_shutdown.py",  # SIGTERM mid-download, bounded shutdown
        "tests/test_serve.py",  # startup/shutdown deadlines, connections spread over workers
        "tests/statistics/test_chart_load.py",  # /updates latency while charts are drawn
        "tests/statistics/test_measures.py",  # MAU windows written by the recorder
        "tests/plugin/test_recorder.py",  # idle delays and flushes within seconds
        "tests/plugin/test_rate_limits.py",  # per-minute windows on the real clock
        "tests/auth/test_rate_limits.py",
        "tests/security/test_crash_safety.py",  # SIGKILLs under load within a timeout
    }
)
#: A selection of fewer test files than this runs in one process under ``-n auto``: starting
#: workers costs more than they save on one folder (``make test ARGS="tests/channels"``).
FEW_TEST_FILES = 15
#: Workers per CPU under ``-n auto``. Many tests wait on a subprocess (``serve`` starting, the
#: CLI, a socket timeout) rather than compute: a third worker on two cores fills those waits.
#: The fuzzer is not serial: its phases share a time budget, and it passed with three workers on
#: two busy cores, reaching handlers in every phase.
WORKERS_PER_CPU = 1.5


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.split("::", 1)[0] in SERIAL_FILES:
            item.add_marker(pytest.mark.serial)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto``: no workers for a few test files, else 1.5 per CPU (3 on 2 cores)."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    files = 0
    for arg in config.args:
        path = Path(arg.split("::", 1)[0])
        files += len(list(path.rglob("test_*.py"))) if path.is_dir() else 1
    if files < FEW_TEST_FILES:
        return 0
    return max(2, math.ceil((os.cpu_count() or 1) * WORKERS_PER_CPU))


@contextmanager
def run_lock(config: pytest.Config, exclusive: bool) -> Iterator[None]:
    """The lock of this xdist run (files in the controller's temporary folder, which every
    worker's folder is in). The gate gives a waiting serial test priority: it holds the gate
    while it waits, so no worker starts a new test meanwhile."""
    folder = Path(config.option.basetemp).parent
    with open(folder / "serial.gate", "a") as gate, open(folder / "serial.lock", "a") as lock:
        fcntl.flock(gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        finally:
            fcntl.flock(gate, fcntl.LOCK_UN)
        yield  # closing the file releases the lock


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    """Setup, call and teardown of each test under the run lock, when run by an xdist worker."""
    if not hasattr(item.config, "workerinput"):
        return (yield)
    with run_lock(item.config, exclusive=item.get_closest_marker("serial") is not None):
        return (yield)


#: Each test's app (its engine, caches and routes) is freed only by the cycle collector, whose
#: full passes come rarely once the heap is large: a worker grew by about 5 MiB a test, 8 GiB
#: and more over the suite. A full collection every few tests keeps it flat for a small cost.
COLLECT_EVERY_TESTS = 20
_tests_since_collection = 0


def pytest_runtest_logfinish() -> None:
    global _tests_since_collection
    _tests_since_collection += 1
    if _tests_since_collection >= COLLECT_EVERY_TESTS:
        _tests_since_collection = 0
        gc.collect()


@pytest_asyncio.fixture(scope="session", params=ENGINES, loop_scope="session")
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A migrated, empty database for the whole session, on each engine in turn."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "capgo.db"
        url = f"sqlite+aiosqlite:///{path}"
        engine = make_engine(url)
        await upgrade_to_head(engine)
        await engine.dispose()
        yield url
        return
    async with scratch_postgres_database() as url:
        engine = make_engine(url)
        await upgrade_to_head(engine)
        await engine.dispose()
        yield url


@asynccontextmanager
async def scratch_postgres_database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards; skipped when the server is not
    reachable, unless ``CAPGO_TEST_REQUIRE_POSTGRES=1`` (CI), which fails instead."""
    base_url = os.environ.get("CAPGO_TEST_DATABASE_URL", DEFAULT_PG_URL)
    name = f"capgo_test_{uuid.uuid4().hex[:12]}"
    try:
        await admin_execute(base_url, f'CREATE DATABASE "{name}"')
    except (OSError, Exception) as exc:  # asyncpg raises several unrelated types
        if os.environ.get("CAPGO_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL at {base_url} is required but not usable: {exc}")
        pytest.skip(f"PostgreSQL at {base_url} is not reachable: {exc}")
    try:
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        await admin_execute(base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def empty_all_tables(url: str) -> None:
    """Every table emptied and every id counter back at its start, after each test."""
    engine = make_engine(url)
    async with engine.begin() as connection:
        if url.startswith("postgresql"):
            # What TRUNCATE ... RESTART IDENTITY does, in one statement, about 5x faster on the
            # few rows a test leaves (TRUNCATE makes new files for all 18 tables every time).
            deletes = "".join(
                f'DELETE FROM "{table.name}"; ' for table in reversed(Base.metadata.sorted_tables)
            )
            await connection.execute(
                text(
                    f"DO $$ DECLARE counter record; BEGIN {deletes}"
                    "FOR counter IN SELECT seqrelid::regclass AS name, seqstart FROM pg_sequence "
                    "LOOP PERFORM setval(counter.name, counter.seqstart, false); END LOOP; END $$"
                )
            )
        else:
            for table in reversed(Base.metadata.sorted_tables):
                await connection.execute(delete(table))
            # Ids start again at 1, as RESTART IDENTITY does on PostgreSQL.
            await connection.execute(text("DELETE FROM sqlite_sequence"))
    await engine.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        secret="test-secret-" + uuid.uuid4().hex,
    )


@pytest_asyncio.fixture(loop_scope="session")
async def app(settings: Settings, database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application
    await empty_all_tables(database_url)


@pytest_asyncio.fixture(loop_scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://capgo.test") as http:
        yield http


@dataclass(frozen=True)
class Account:
    """A user made by ``create-user``: their org and their ``all`` key."""

    user_id: str
    org_id: str
    key: str
    email: str

    @property
    def headers(self) -> dict[str, str]:
        return {"authorization": self.key}


async def make_account(app: FastAPI, email: str, org_name: str | None = None) -> Account:
    """Create a user the way ``capgo-server create-user`` does."""
    async with app.state.sessionmaker() as session, session.begin():
        account = await create_user(session, email, org_name)
    return Account(user_id=account.user_id, org_id=account.org_id, key=account.apikey, email=email)


@pytest_asyncio.fixture(loop_scope="session")
async def alice(app: FastAPI) -> Account:
    return await make_account(app, "alice@example.com", "Alice Org")


@pytest_asyncio.fixture(loop_scope="session")
async def bob(app: FastAPI) -> Account:
    return await make_account(app, "bob@example.com", "Bob Org")


async def make_key(client: httpx.AsyncClient, owner: Account, **fields: Any) -> dict[str, Any]:
    """Create an API key through ``POST /apikey`` with the owner's ``all`` key."""
    body = {"name": fields.pop("name", "test key"), **fields}
    response = await client.post("/apikey", json=body, headers=owner.headers)
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()
    return created


async def create_org(client: httpx.AsyncClient, owner: Account, name: str = "Second Org") -> str:
    """A further organization of ``owner`` (as ``super_admin``), made through the API."""
    response = await client.post("/organization", json={"name": name}, headers=owner.headers)
    assert response.status_code == 200, response.text
    org_id: str = response.json()["id"]
    return org_id


async def expire_key(app: FastAPI, key_id: int) -> None:
    """Move a key's expiry into the past (the API refuses past dates, so this goes to the DB)."""
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id)
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )


def in_days(days: float) -> str:
    """A timestamp ``days`` from now, as the API renders timestamps."""
    return to_js_iso(utcnow() + timedelta(days=days))


def error_of(response: httpx.Response) -> tuple[int, str]:
    """(status, error code) of a refusal, for compact assertions."""
    return response.status_code, response.json().get("error")


class MonotonicClock:
    """Stands in for the ``time`` module of the code under test (the rate limiters, the update
    cache), which reads only ``time.monotonic()``: the test moves ``now`` by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def limiter_clock(monkeypatch: pytest.MonkeyPatch) -> MonotonicClock:
    fake = MonotonicClock()
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(monotonic=fake.monotonic))
    return fake
