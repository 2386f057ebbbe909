"""Serializing a request's check-then-write against concurrent requests, on both engines."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Select
from sqlalchemy.ext.asyncio import AsyncSession


def _begin_immediate(connection: Connection) -> None:
    raw: Any = connection.connection.dbapi_connection
    driver = getattr(raw, "_connection", raw)  # aiosqlite's adapter wraps the sqlite3 connection
    if driver.in_transaction:
        # The driver opened it for a write (or before a savepoint, db/engine.py), which holds
        # or will take the write lock; callers lock before their first write, so this is rare.
        return
    connection.exec_driver_sql("BEGIN IMMEDIATE")


async def lock_for_update(session: AsyncSession, row: Select[Any]) -> None:
    """Hold ``row`` locked until the request's transaction ends; every statement after this
    sees what concurrent holders of the same lock committed.

    PostgreSQL: ``SELECT ... FOR UPDATE`` on the row; later statements (READ COMMITTED) take a
    fresh snapshot, so they read past any transaction that held the lock before.

    SQLite has no row locks, and Python's sqlite3 driver begins a transaction only before the
    first INSERT, UPDATE or DELETE: the reads before it run on their own, so two requests can
    both read "two owners left" and then both delete one. ``BEGIN IMMEDIATE`` takes the
    database's write lock now (waiting out ``busy_timeout`` for the current writer), so the
    reads that follow and the write are one step that no other writer interleaves with. A
    deferred ``BEGIN`` would not do: upgrading it to a writer after another writer committed
    fails with "database is locked" instead of waiting.
    """
    connection = await session.connection()
    if connection.dialect.name == "sqlite":
        await connection.run_sync(_begin_immediate)
    else:
        await session.execute(row.with_for_update())
