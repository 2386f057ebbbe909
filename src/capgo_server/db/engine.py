"""Engine and session factory for SQLite (default) or PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from capgo_server.private_files import prepare_sqlite_file

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


def _begin_before_savepoint(connection: Connection, _name: str | None) -> None:
    # Python's sqlite3 driver opens the transaction itself, but only before INSERT, UPDATE or
    # DELETE; it does not before SAVEPOINT. A savepoint taken before the request's first write
    # (``begin_nested()`` to catch a unique violation) would then *be* the transaction, and
    # releasing it would commit on the spot: the request's later rollback, or a crash before
    # its commit, would leave half of its writes behind (an override without its count, a
    # bundle without its audit row). Open the request's transaction first.
    open_sqlite_transaction(connection)


def open_sqlite_transaction(connection: Connection) -> None:
    """``BEGIN`` on the SQLite driver connection unless it is in a transaction already (Python's
    sqlite3 driver opens one by itself only before INSERT, UPDATE or DELETE)."""
    raw: Any = connection.connection.dbapi_connection
    driver = getattr(raw, "_connection", raw)  # aiosqlite's adapter wraps the sqlite3 connection
    if not driver.in_transaction:
        connection.exec_driver_sql("BEGIN")


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url`` with the per-connection settings each engine needs."""
    if is_sqlite(url):
        # Created owner-only before SQLite opens it: it holds every key not stored hashed.
        prepare_sqlite_file(make_url(url).database or "")
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _configure_sqlite_connection)
        event.listen(engine.sync_engine, "savepoint", _begin_before_savepoint)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def pool_options(pool_size: int, max_overflow: int, pool_timeout: float) -> dict[str, Any]:
    """The connection pool's size and checkout wait, as :func:`make_engine` keyword arguments.

    The wait is short on purpose: a request that cannot get a connection in time is answered
    503 with ``Retry-After`` (``errors``) instead of stalling its client, and every request
    queued behind it, for SQLAlchemy's default of 30 seconds.
    """
    return {"pool_size": pool_size, "max_overflow": max_overflow, "pool_timeout": pool_timeout}


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)
