"""Migration 0005 rebuilds SQLite's integer-keyed tables with AUTOINCREMENT, keeping rows, ids,
foreign keys and indexes, so an id deleted before or after the upgrade is never given again."""

from __future__ import annotations

from typing import Any

import httpx
from alembic import command
from fastapi import FastAPI
from sqlalchemy import Connection, Table

from capgo_server.db.base import Base
from capgo_server.db.engine import make_engine
from capgo_server.db.migrate import alembic_config, upgrade_to_head
from capgo_server.models import ChannelOverride, DeployHistory
from tests.apps.helpers import add_bundle, add_override, create_app, rows
from tests.channels.helpers import APP_ID, get_channel, save_channel
from tests.conftest import Account, make_key

#: The tables the models key by a never-reused integer id (``NO_ID_REUSE``).
REBUILT = [
    table
    for table in Base.metadata.sorted_tables
    if table.dialect_options["sqlite"]["autoincrement"]
]


def _downgrade_to_0004(connection: Connection) -> None:
    command.downgrade(alembic_config(connection), "0004")


def _expected_shape(table: Table) -> dict[str, Any]:
    """Foreign keys and indexes (unique constraints included) as the models declare them."""
    indexes = {(tuple(c.name for c in index.columns), False) for index in table.indexes}
    indexes |= {
        (tuple(c.name for c in constraint.columns), True)
        for constraint in table.constraints
        if constraint.__class__.__name__ == "UniqueConstraint"
    }
    foreign_keys = {
        (fk.column.table.name, fk.parent.name, fk.column.name, fk.ondelete or "NO ACTION")
        for fk in table.foreign_keys
    }
    return {"foreign_keys": foreign_keys, "indexes": indexes}


def _sqlite_shape(connection: Connection, name: str) -> dict[str, Any]:
    """Foreign keys and indexes of table ``name`` as SQLite holds them."""
    pragma = connection.exec_driver_sql
    indexes = {
        (tuple(col[2] for col in pragma(f'PRAGMA index_info("{index[1]}")')), bool(index[2]))
        for index in pragma(f'PRAGMA index_list("{name}")')
        if index[3] != "pk"
    }
    foreign_keys = {
        (fk[2], fk[3], fk[4], fk[6]) for fk in pragma(f'PRAGMA foreign_key_list("{name}")')
    }
    return {"foreign_keys": foreign_keys, "indexes": indexes}


def _sqlite_schema(connection: Connection) -> dict[str, Any]:
    """Per rebuilt table: its shape and whether it is AUTOINCREMENT; plus foreign_key_check."""
    schema: dict[str, Any] = {
        "violations": connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    }
    for table in REBUILT:
        sql = connection.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table.name,)
        ).scalar_one()
        schema[table.name] = {
            **_sqlite_shape(connection, table.name),
            "autoincrement": "AUTOINCREMENT" in sql,
        }
    return schema


def _expected_schema(*, autoincrement: bool) -> dict[str, Any]:
    return {
        "violations": [],
        **{
            table.name: {**_expected_shape(table), "autoincrement": autoincrement}
            for table in REBUILT
        },
    }


async def test_upgrade_keeps_rows_and_gives_no_deleted_id_again(
    app: FastAPI, client: httpx.AsyncClient, alice: Account, database_url: str
) -> None:
    await create_app(client, alice, APP_ID)
    await add_bundle(app, APP_ID, "1.0.0")
    await save_channel(client, alice, channel="production", version="1.0.0")
    await save_channel(client, alice, channel="beta")
    production = await get_channel(client, alice, "production")
    beta = await get_channel(client, alice, "beta")
    await add_override(app, APP_ID, production["id"])
    newest_key = await make_key(client, alice, name="newest")
    history = len(await rows(app, DeployHistory))
    assert history > 0
    sqlite = database_url.startswith("sqlite")

    engine = make_engine(database_url)
    try:
        async with engine.connect() as connection:  # the migrations open their transaction
            await connection.run_sync(_downgrade_to_0004)
            if sqlite:
                at_0004 = await connection.run_sync(_sqlite_schema)
        # A server still at 0004 deletes the newest key and channel (the audit trail keeps
        # their ids; nothing else does once their rows are gone).
        response = await client.delete(f"/apikey/{newest_key['id']}", headers=alice.headers)
        assert response.status_code == 200
        response = await client.request(
            "DELETE", "/channel", json={"app_id": APP_ID, "channel": "beta"}, headers=alice.headers
        )
        assert response.status_code == 200
        await upgrade_to_head(engine)
        if sqlite:
            async with engine.connect() as connection:
                at_head = await connection.run_sync(_sqlite_schema)
    finally:
        await engine.dispose()

    created_key = await make_key(client, alice, name="after the upgrade")
    assert created_key["id"] > newest_key["id"]
    await save_channel(client, alice, channel="gamma")
    assert (await get_channel(client, alice, "gamma"))["id"] > beta["id"]
    # Rows and ids kept, children of rebuilt parents included.
    assert (await get_channel(client, alice, "production"))["id"] == production["id"]
    [override] = await rows(app, ChannelOverride)
    assert override.channel_id == production["id"]
    assert len(await rows(app, DeployHistory)) == history
    if sqlite:
        assert at_0004 == _expected_schema(autoincrement=False)
        assert at_head == _expected_schema(autoincrement=True)
