"""Race-free counters and insert-if-absent, on SQLite and PostgreSQL alike (both speak
``INSERT ... ON CONFLICT``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase


def _insert(session: AsyncSession, model: type[DeclarativeBase]) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


async def add_to_counters(
    session: AsyncSession,
    model: type[DeclarativeBase],
    key: dict[str, Any],
    increments: dict[str, int],
) -> None:
    """Add ``increments`` to the row of ``model`` with primary key ``key`` (created at the
    increments if missing), in one statement, so concurrent writers never lose a count."""
    statement = _insert(session, model).values(**key, **increments)
    statement = statement.on_conflict_do_update(
        index_elements=list(key),
        set_={name: getattr(model, name) + statement.excluded[name] for name in increments},
    )
    await session.execute(statement)


async def insert_if_absent(
    session: AsyncSession, model: type[DeclarativeBase], values: dict[str, Any]
) -> None:
    """Insert the row unless one with the same primary key exists."""
    await session.execute(_insert(session, model).values(**values).on_conflict_do_nothing())


async def upsert(
    session: AsyncSession,
    model: type[DeclarativeBase],
    values: dict[str, Any],
    key: list[str],
) -> None:
    """Insert the row, or update every non-key column of the existing row with ``values``."""
    statement = _insert(session, model).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=key,
        set_={name: statement.excluded[name] for name in values if name not in key},
    )
    await session.execute(statement)
