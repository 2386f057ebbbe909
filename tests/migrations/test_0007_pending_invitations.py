"""Migration 0007 adds ``pending_invitations`` (invitations to e-mails that have no user yet):
downgrading drops it with the invitations in it, upgrading again makes it as the model declares
it, and the server keeps, cascades and grants invitations on the migrated table."""

from __future__ import annotations

from typing import Any

import httpx
from alembic import command
from fastapi import FastAPI
from sqlalchemy import Connection, select

from capgo_server.db.engine import make_engine
from capgo_server.db.migrate import alembic_config, upgrade_to_head
from capgo_server.models import Membership, PendingInvitation
from tests.conftest import Account, create_org, make_account
from tests.members.helpers import invite
from tests.migrations.test_0005_no_id_reuse import _expected_shape, _sqlite_shape


def _downgrade_to_0006(connection: Connection) -> None:
    command.downgrade(alembic_config(connection), "0006")


def _table_names(connection: Connection) -> set[str]:
    return set(connection.dialect.get_table_names(connection))


def _invitations_schema(connection: Connection) -> dict[str, Any]:
    return {
        "pending_invitations": _sqlite_shape(connection, "pending_invitations"),
        "violations": connection.exec_driver_sql("PRAGMA foreign_key_check").all(),
    }


async def _kept(app: FastAPI) -> list[tuple[str, str]]:
    async with app.state.sessionmaker() as session:
        rows = await session.execute(select(PendingInvitation.org_id, PendingInvitation.email))
        return sorted(tuple(row) for row in rows.all())


async def test_downgrade_drops_the_table_and_upgrade_makes_it_as_declared(
    app: FastAPI, client: httpx.AsyncClient, alice: Account, database_url: str
) -> None:
    response = await invite(client, alice, alice.org_id, "before@example.com", "read")
    assert response.status_code == 200, response.text
    assert await _kept(app) == [(alice.org_id, "before@example.com")]
    sqlite = database_url.startswith("sqlite")

    engine = make_engine(database_url)
    try:
        async with engine.connect() as connection:  # the migrations open their transaction
            await connection.run_sync(_downgrade_to_0006)
            assert "pending_invitations" not in await connection.run_sync(_table_names)
        await upgrade_to_head(engine)
        async with engine.connect() as connection:
            assert "pending_invitations" in await connection.run_sync(_table_names)
            if sqlite:
                at_head = await connection.run_sync(_invitations_schema)
    finally:
        await engine.dispose()

    assert await _kept(app) == []  # dropped with the table: nothing remembers them
    if sqlite:
        assert at_head == {
            "pending_invitations": _expected_shape(PendingInvitation.__table__),
            "violations": [],
        }

    # The migrated table works: kept, removed with its organization (FK CASCADE), granted.
    doomed = await create_org(client, alice, "Doomed")
    for org_id in (alice.org_id, doomed):
        response = await invite(client, alice, org_id, "after@example.com", "write")
        assert response.status_code == 200, response.text
    response = await client.delete("/organization", params={"orgId": doomed}, headers=alice.headers)
    assert response.status_code == 200, response.text
    assert await _kept(app) == [(alice.org_id, "after@example.com")]
    newcomer = await make_account(app, "after@example.com")
    async with app.state.sessionmaker() as session:
        rights = await session.scalars(
            select(Membership.user_right).where(
                Membership.user_id == newcomer.user_id, Membership.org_id == alice.org_id
            )
        )
        assert rights.all() == ["invite_write"]
    assert await _kept(app) == []
