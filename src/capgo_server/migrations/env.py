"""Alembic environment.

Migrations normally run through :func:`capgo_server.db.migrate.upgrade_to_head`, which hands a
live connection in ``config.attributes["connection"]``. Run from the ``alembic`` command line,
the URL comes from the ``CAPGO_*`` settings.

On SQLite the run is one transaction with foreign keys off, checked before it commits
(:func:`capgo_server.db.migrate.sqlite_migration_transaction`): batch mode's table rebuilds
would otherwise delete the rows referring to the rebuilt table. The connection handed in must
not be in a transaction yet.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

import capgo_server.models  # noqa: F401  (registers every table on Base.metadata)
from capgo_server.db.base import Base
from capgo_server.db.engine import make_engine
from capgo_server.db.migrate import sqlite_migration_transaction
from capgo_server.settings import Settings

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        # Alembic sees the transaction as the caller's and runs every migration inside it.
        with sqlite_migration_transaction(connection):
            _configure_and_run(connection)
    else:
        _configure_and_run(connection)


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite can only alter tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine() -> None:
    engine = make_engine(Settings().resolved_database_url)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


given = context.config.attributes.get("connection")
if given is not None:
    _run(given)
else:
    asyncio.run(_run_with_own_engine())
