"""Race-free counters and insert-if-absent, on SQLite and PostgreSQL alike (both speak
``INSERT ... ON CONFLICT``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect
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
) -> bool:
    """Insert the row unless one with the same primary key exists; True when it was inserted.

    Of concurrent writers of the same row exactly one sees True, so the answer can gate work
    that must happen once per row.
    """
    primary_key = list(inspect(model).primary_key)
    statement = (
        _insert(session, model).values(**values).on_conflict_do_nothing().returning(*primary_key)
    )
    return (await session.execute(statement)).first() is not None


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
