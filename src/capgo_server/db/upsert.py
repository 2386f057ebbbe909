"""Race-free counters and upserts, on SQLite and PostgreSQL alike (both speak
``INSERT ... ON CONFLICT``), for one row or many in one statement.

Each helper runs one Core ``INSERT`` on the model's table for all of its ``rows`` (an
executemany, without the ORM's per-row bulk handling). The device recorder's batches, where
SQLAlchemy's per-row parameter processing would dominate, use :mod:`capgo_server.db.bulk`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase

Row = dict[str, Any]


def table_of(model: type[DeclarativeBase]) -> Table:
    return cast(Table, model.__table__)


def insert_into(session: AsyncSession, model: type[DeclarativeBase]) -> Any:
    """The dialect's ``INSERT`` (which has ``on_conflict_do_*``) into ``model``'s table."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table_of(model))


async def execute_many(session: AsyncSession, statement: Any, rows: Sequence[Row]) -> Any:
    """Run ``statement`` for every row, as one executemany on the session's connection."""
    return await (await session.connection()).execute(statement, list(rows))


async def add_to_counters(
    session: AsyncSession,
    model: type[DeclarativeBase],
    rows: Sequence[Row],
    key: Sequence[str],
    counters: Sequence[str],
) -> None:
    """Add each row's ``counters`` to the row of ``model`` with the same ``key`` columns
    (created at those values if missing), so concurrent writers never lose a count."""
    statement = insert_into(session, model)
    statement = statement.on_conflict_do_update(
        index_elements=list(key),
        set_={name: table_of(model).c[name] + statement.excluded[name] for name in counters},
    )
    await execute_many(session, statement, rows)
