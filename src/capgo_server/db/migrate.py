"""Apply the Alembic migrations programmatically (used by ``serve``, ``migrate`` and the tests)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from capgo_server.db.engine import open_sqlite_transaction

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


class MigrationError(SQLAlchemyError):
    """Migrations refused to run, or to commit a database they would leave inconsistent.

    A ``SQLAlchemyError`` so that ``migrate`` and ``serve`` report it as any database failure.
    """


@contextmanager
def sqlite_migration_transaction(connection: Connection) -> Iterator[None]:
    """Run the body (the migrations) in one SQLite transaction with foreign keys off.

    Batch mode alters a table by copying it, dropping the original and renaming the copy. With
    foreign keys on (every connection of ours has them), that DROP deletes the rows referring
    to the original (ON DELETE CASCADE) or empties their reference (SET NULL). SQLite ignores
    ``PRAGMA foreign_keys`` inside a transaction, so it is turned off before the transaction
    begins, read back, and restored once the transaction has ended: the connection goes back to
    the pool. Before committing, ``PRAGMA foreign_key_check`` must report no row referring to a
    missing one. The transaction is opened explicitly because Python's sqlite3 driver opens
    none before DDL: every migration of the run commits together or not at all.

    Raises :class:`MigrationError` when ``connection`` is already in a transaction (pass a
    connection from ``engine.connect()``, not ``engine.begin()``), when foreign keys cannot be
    turned off, or when the check finds violations; the last two roll the run back.
    """
    if connection.in_transaction():
        raise MigrationError(
            "migrations on SQLite need a connection outside a transaction: foreign keys can "
            "only be turned off between transactions"
        )
    was_on = _foreign_keys(connection)
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    try:
        if _foreign_keys(connection):
            raise MigrationError("SQLite did not turn foreign keys off: a transaction is open")
        connection.commit()  # ends the transaction SQLAlchemy began for the pragmas
        with connection.begin():
            open_sqlite_transaction(connection)
            yield
            violations = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
            if violations:
                listed = "; ".join(
                    f"{table} row {rowid} refers to a missing {parent} row"
                    for table, rowid, parent, _ in violations
                )
                raise MigrationError(f"migrations would leave broken references: {listed}")
    finally:
        if connection.in_transaction():
            connection.rollback()
        if was_on and not connection.invalidated:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()


def _foreign_keys(connection: Connection) -> bool:
    return bool(connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one())


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    _refuse_unknown_revision(connection)
    connection.rollback()  # the read began a transaction; SQLite migrations must start outside one
    command.upgrade(alembic_config(connection), "head")


def _refuse_unknown_revision(connection: Connection) -> None:
    """Raise :class:`MigrationError` when the database is at a revision this release does not
    know: a newer capgo-server migrated it. Alembic would fail deep inside with a traceback;
    the operator needs to hear what happened and what to do."""
    from alembic.script import ScriptDirectory

    current = _current_revision(connection)
    if current is None:
        return
    known = {
        script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()
    }
    if current not in known:
        raise MigrationError(
            f"the database is at revision {current!r}, which this capgo-server does not know: "
            "a newer release migrated it; run that release (or newer), or restore a backup "
            "taken before the upgrade"
        )


def _current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


async def upgrade_to_head(engine: AsyncEngine) -> None:
    """Apply every pending migration on ``engine``'s database.

    The migration environment opens and commits the transaction itself (on SQLite it must turn
    foreign keys off before it: :func:`sqlite_migration_transaction`).
    """
    async with engine.connect() as connection:
        await connection.run_sync(_upgrade)


async def pending_migrations(engine: AsyncEngine) -> bool:
    """True when the database is not at the newest revision."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    async with engine.connect() as connection:
        await connection.run_sync(_refuse_unknown_revision)
        current = await connection.run_sync(_current_revision)
    return current != head


def new_revision(message: str) -> None:
    """Autogenerate the next revision from the models (``make migration MSG=...``).

    It diffs the models against a scratch SQLite database migrated to head. Review the result by
    hand: autogenerate misses renames and server defaults.
    """
    import asyncio
    import tempfile

    from capgo_server.db.engine import make_engine

    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite+aiosqlite:///{scratch}/scratch.db"
        engine = make_engine(url)

        async def generate() -> None:
            await upgrade_to_head(engine)
            async with engine.connect() as connection:
                await connection.run_sync(
                    lambda sync: command.revision(
                        alembic_config(sync), message=message, autogenerate=True
                    )
                )
            await engine.dispose()

        asyncio.run(generate())


if __name__ == "__main__":
    import sys

    new_revision(" ".join(sys.argv[1:]) or "change")
