"""Migration 0006 reserves every app id the database knows for the organization that last held
it: live apps' ids from ``apps``, deleted ones (with their app or their whole organization)
from the audit trail; ``apps`` then refers to its reservation and keeps its rows, constraints
and the rows that refer to it."""

from __future__ import annotations

import httpx
from alembic import command
from fastapi import FastAPI
from sqlalchemy import Connection

from capgo_server.apps.reservations import release_app_id
from capgo_server.db.engine import make_engine
from capgo_server.db.migrate import alembic_config, upgrade_to_head
from capgo_server.models import App, AppIdReservation, Bundle, Channel
from tests.apps.helpers import create_app, create_org, rows
from tests.apps.test_reserved_ids import id_taken, post_app
from tests.conftest import Account
from tests.migrations.test_0005_no_id_reuse import _expected_shape, _sqlite_shape


def _downgrade_to_0005(connection: Connection) -> None:
    command.downgrade(alembic_config(connection), "0005")


def _table_names(connection: Connection) -> set[str]:
    return set(connection.dialect.get_table_names(connection))


def _apps_schema(connection: Connection) -> dict[str, object]:
    return {
        "apps": _sqlite_shape(connection, "apps"),
        "violations": connection.exec_driver_sql("PRAGMA foreign_key_check").all(),
    }


async def _release(app: FastAPI, app_id: str) -> None:
    async with app.state.sessionmaker() as session, session.begin():
        await release_app_id(session, app_id)


async def test_upgrade_reserves_live_and_audited_ids(
    app: FastAPI, client: httpx.AsyncClient, alice: Account, bob: Account, database_url: str
) -> None:
    await create_app(client, alice, "com.alice.live")
    response = await client.post(
        "/channel", json={"app_id": "com.alice.live", "channel": "beta"}, headers=alice.headers
    )
    assert response.status_code == 200, response.text
    await create_app(client, alice, "com.alice.gone")
    assert (await client.delete("/app/com.alice.gone", headers=alice.headers)).status_code == 200
    doomed = await create_org(client, alice, "Doomed")
    await create_app(client, alice, "com.doomed.app", org_id=doomed)
    response = await client.delete(f"/organization?orgId={doomed}", headers=alice.headers)
    assert response.status_code == 200, response.text
    # Alice's once, released, now Bob's: the newest holder counts.
    await create_app(client, alice, "com.shared.app")
    assert (await client.delete("/app/com.shared.app", headers=alice.headers)).status_code == 200
    await _release(app, "com.shared.app")
    await create_app(client, bob, "com.shared.app")
    children = (len(await rows(app, Bundle)), len(await rows(app, Channel)))
    sqlite = database_url.startswith("sqlite")

    engine = make_engine(database_url)
    try:
        async with engine.connect() as connection:  # the migrations open their transaction
            await connection.run_sync(_downgrade_to_0005)
            assert "app_id_reservations" not in await connection.run_sync(_table_names)
        await upgrade_to_head(engine)
        if sqlite:
            async with engine.connect() as connection:
                at_head = await connection.run_sync(_apps_schema)
    finally:
        await engine.dispose()

    reserved = {r.app_id: r.org_id for r in await rows(app, AppIdReservation)}
    assert reserved == {
        "com.alice.live": alice.org_id,
        "com.alice.gone": alice.org_id,
        "com.doomed.app": doomed,
        "com.shared.app": bob.org_id,
    }
    # The rows of the rebuilt apps table and the rows referring to it are all there.
    assert sorted(a.app_id for a in await rows(app, App)) == ["com.alice.live", "com.shared.app"]
    assert (len(await rows(app, Bundle)), len(await rows(app, Channel))) == children
    if sqlite:
        assert at_head == {"apps": _expected_shape(App.__table__), "violations": []}

    for app_id in ("com.alice.gone", "com.doomed.app"):
        response = await post_app(client, bob, app_id)
        assert (response.status_code, response.json()) == (400, id_taken(app_id))
    assert (await create_app(client, alice, "com.alice.gone"))["owner_org"] == alice.org_id
