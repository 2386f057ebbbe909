"""Migration 0008 adds ``bundle_drafts`` (what the official CLI declares before its upload):
downgrading drops it with its drafts, upgrading again makes it as the model declares it, and
the migrated table keeps drafts, one per version, removed with their app."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from alembic import command
from fastapi import FastAPI
from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from capgo_server.db.engine import make_engine
from capgo_server.db.migrate import alembic_config, upgrade_to_head
from capgo_server.models import BundleDraft
from tests.apps.helpers import create_app
from tests.conftest import Account
from tests.migrations.test_0005_no_id_reuse import _expected_shape, _sqlite_shape

APP = "com.rec.demo"


def _downgrade_to_0007(connection: Connection) -> None:
    command.downgrade(alembic_config(connection), "0007")


def _table_names(connection: Connection) -> set[str]:
    return set(connection.dialect.get_table_names(connection))


def _drafts_schema(connection: Connection) -> dict[str, Any]:
    return {
        "bundle_drafts": _sqlite_shape(connection, "bundle_drafts"),
        "violations": connection.exec_driver_sql("PRAGMA foreign_key_check").all(),
    }


async def _add_draft(app: FastAPI, name: str) -> None:
    async with app.state.sessionmaker() as session, session.begin():
        session.add(BundleDraft(app_id=APP, name=name, checksum="0" * 64, native_packages=[]))


async def _kept(app: FastAPI) -> list[tuple[str, str]]:
    async with app.state.sessionmaker() as session:
        drafts = await session.scalars(select(BundleDraft).order_by(BundleDraft.name))
        return [(draft.app_id, draft.name) for draft in drafts]


async def test_downgrade_drops_the_table_and_upgrade_makes_it_as_declared(
    app: FastAPI, client: httpx.AsyncClient, alice: Account, database_url: str
) -> None:
    await create_app(client, alice, APP)
    await _add_draft(app, "1.0.0")
    sqlite = database_url.startswith("sqlite")

    engine = make_engine(database_url)
    try:
        async with engine.connect() as connection:  # the migrations open their transaction
            await connection.run_sync(_downgrade_to_0007)
            assert "bundle_drafts" not in await connection.run_sync(_table_names)
        await upgrade_to_head(engine)
        async with engine.connect() as connection:
            assert "bundle_drafts" in await connection.run_sync(_table_names)
            if sqlite:
                at_head = await connection.run_sync(_drafts_schema)
    finally:
        await engine.dispose()

    assert await _kept(app) == []  # dropped with the table
    if sqlite:
        assert at_head == {
            "bundle_drafts": _expected_shape(BundleDraft.__table__),
            "violations": [],
        }

    # The migrated table works: one draft per version, removed with its app (FK CASCADE).
    await _add_draft(app, "1.0.1")
    with pytest.raises(IntegrityError):
        await _add_draft(app, "1.0.1")
    assert await _kept(app) == [(APP, "1.0.1")]
    response = await client.delete(f"/app/{APP}", headers=alice.headers)
    assert response.status_code == 200, response.text
    assert await _kept(app) == []
