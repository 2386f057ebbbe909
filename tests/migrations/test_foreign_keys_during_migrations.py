"""Migrations keep the rows that refer to a table they rebuild.

On SQLite, batch mode rebuilds a table by copying it, dropping the original and renaming the
copy; with foreign keys on, that DROP deletes every row referring to the original (0003 rebuilds
``channels``: its overrides and deploy history went with it). The migration environment turns
foreign keys off for the run, checks them before committing and turns them on again.
PostgreSQL alters tables in place; it runs here too as the reference.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Connection
from sqlalchemy.engine import make_url

from capgo_server.db.base import UTCDateTime
from capgo_server.db.engine import make_engine
from capgo_server.db.migrate import MigrationError, alembic_config, upgrade_to_head
from tests.conftest import scratch_postgres_database

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
USER = "00000000-0000-4000-8000-000000000001"
ORG = "00000000-0000-4000-8000-000000000002"
APP_ID = "com.example.migrated"

#: Rows valid under 0002's schema, parents first: an app with a bundle, a channel on it, a
#: device override of that channel and the channel's deploy history.
ROWS: list[tuple[str, dict[str, Any]]] = [
    ("users", {"id": USER, "email": "alice@example.com", "image_url": ""}),
    (
        "orgs",
        {
            "id": ORG,
            "created_by": USER,
            "name": "Alice Org",
            "management_email": "alice@example.com",
            "require_apikey_expiration": False,
            "enforce_hashed_api_keys": False,
            "enforce_encrypted_bundles": False,
        },
    ),
    (
        "apps",
        {
            "app_id": APP_ID,
            "id": "00000000-0000-4000-8000-000000000003",
            "owner_org": ORG,
            "user_id": USER,
            "name": "Migrated",
            "icon_url": "",
            "retention": 0,
            "default_upload_channel": "production",
            "channel_device_count": 1,
            "manifest_bundle_count": 0,
            "expose_metadata": False,
            "allow_preview": False,
        },
    ),
    (
        "app_versions",
        {
            "id": 1,
            "app_id": APP_ID,
            "name": "1.0.0",
            "owner_org": ORG,
            "user_id": USER,
            "deleted": False,
            "storage_provider": "r2",
            "manifest_count": 0,
        },
    ),
    (
        "channels",
        {
            "id": 1,
            "name": "production",
            "app_id": APP_ID,
            "version": 1,
            "owner_org": ORG,
            "created_by": USER,
            "public": True,
            "disable_auto_update_under_native": True,
            "disable_auto_update": "major",
            "ios": True,
            "android": True,
            "electron": True,
            "allow_device_self_set": False,
            "allow_emulator": True,
            "allow_device": True,
            "allow_dev": True,
            "allow_prod": True,
        },
    ),
    (
        "channel_devices",
        {"id": 1, "device_id": "device-a", "channel_id": 1, "app_id": APP_ID, "owner_org": ORG},
    ),
    (
        "deploy_history",
        {
            "id": 1,
            "channel_id": 1,
            "app_id": APP_ID,
            "version_id": 1,
            "owner_org": ORG,
            "created_by": USER,
            "deployed_at": NOW,
        },
    ),
]
TIMESTAMPED = {"users", "orgs", "apps", "app_versions", "channels", "channel_devices"}


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database of its own, with no table yet."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'capgo.db'}"
        return
    async with scratch_postgres_database() as url:
        yield url


def _upgrade_to_0002(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "0002")


def _upgrade_to_head(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


def _insert(connection: Connection, name: str, row: dict[str, Any]) -> None:
    if name in TIMESTAMPED:
        row = {**row, "created_at": NOW, "updated_at": NOW}
    columns = [
        sa.column(key, UTCDateTime() if isinstance(value, datetime) else None)
        for key, value in row.items()
    ]
    connection.execute(sa.table(name, *columns).insert().values(row))


def _counts(connection: Connection) -> dict[str, int]:
    return {
        name: connection.execute(sa.text(f'SELECT count(*) FROM "{name}"')).scalar_one()
        for name, _ in ROWS
    }


def _foreign_keys(connection: Connection) -> int:
    value: int = connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one()
    return value


def _version(connection: Connection) -> str:
    value: str = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()
    return value


async def test_upgrade_keeps_the_rows_referring_to_rebuilt_tables(empty_url: str) -> None:
    sqlite = empty_url.startswith("sqlite")
    engine = make_engine(empty_url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_upgrade_to_0002)
        async with engine.begin() as connection:
            for name, row in ROWS:
                await connection.run_sync(_insert, name, row)
        async with engine.connect() as connection:
            await connection.run_sync(_upgrade_to_head)
            # The connection that ran the migrations has its foreign keys back on.
            if sqlite:
                assert await connection.run_sync(_foreign_keys) == 1
            counts = await connection.run_sync(_counts)
            if sqlite:
                violations = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).all()
    finally:
        await engine.dispose()

    assert counts == {name: 1 for name, _ in ROWS}
    if sqlite:
        assert violations == []
        fresh = make_engine(empty_url)
        try:
            async with fresh.connect() as connection:
                assert await connection.run_sync(_foreign_keys) == 1
        finally:
            await fresh.dispose()


@pytest.mark.parametrize("empty_url", ["sqlite"], indirect=True)
async def test_upgrade_leaving_a_dangling_reference_is_rolled_back(empty_url: str) -> None:
    engine = make_engine(empty_url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_upgrade_to_0002)
        # An override of a channel that does not exist, written with foreign keys off.
        database = sqlite3.connect(make_url(empty_url).database or "")
        with database:
            database.execute(
                "INSERT INTO channel_devices"
                " (id, device_id, channel_id, app_id, owner_org, created_at, updated_at)"
                " VALUES (1, 'device-a', 42, ?, ?, '2026-11-25 12:00:00', '2026-11-25 12:00:00')",
                (APP_ID, ORG),
            )
        database.close()

        with pytest.raises(MigrationError, match="channel_devices"):
            await upgrade_to_head(engine)

        async with engine.connect() as connection:
            assert await connection.run_sync(_version) == "0002"
            assert not await connection.run_sync(lambda sync: sa.inspect(sync).has_table("stats"))
            assert await connection.run_sync(_foreign_keys) == 1
    finally:
        await engine.dispose()


@pytest.mark.parametrize("empty_url", ["sqlite"], indirect=True)
async def test_refuses_a_connection_already_in_a_transaction(empty_url: str) -> None:
    engine = make_engine(empty_url)
    try:
        async with engine.begin() as connection:
            with pytest.raises(MigrationError, match="outside a transaction"):
                await connection.run_sync(_upgrade_to_head)
    finally:
        await engine.dispose()
