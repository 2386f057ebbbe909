"""Apply the Alembic migrations programmatically (used by ``serve``, ``migrate`` and the tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


def _current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


async def upgrade_to_head(engine: AsyncEngine) -> None:
    """Apply every pending migration on ``engine``'s database."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


async def pending_migrations(engine: AsyncEngine) -> bool:
    """True when the database is not at the newest revision."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    async with engine.connect() as connection:
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
            async with engine.begin() as connection:
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
