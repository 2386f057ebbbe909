"""Engine and session factory for SQLite (default) or PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SQLITE_BUSY_TIMEOUT_MS = 5000


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _configure_sqlite_connection(dbapi_connection: Any, _: Any) -> None:
    # Foreign keys are off by default in SQLite; WAL lets readers run beside the writer; the busy
    # timeout makes a second writer wait instead of failing with "database is locked".
    # synchronous=FULL syncs the WAL at every commit: a write is on disk before its answer is
    # sent. NORMAL (the usual WAL companion) survives a killed process but may lose the last
    # commits on a power cut or kernel crash, acknowledged bundles and key deletions included.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url`` with the per-connection settings each engine needs."""
    if is_sqlite(url):
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _configure_sqlite_connection)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)
