"""Migration 0004 fills the MAU roll-up from the activity recorded before it existed."""

from __future__ import annotations

from datetime import timedelta

import httpx
from alembic import command
from fastapi import FastAPI
from sqlalchemy import Connection, delete, insert

from capgo_server.db.engine import make_engine
from capgo_server.db.migrate import alembic_config, upgrade_to_head
from capgo_server.models import DeviceActivity
from tests.conftest import Account
from tests.statistics.support import (
    APP_ID,
    DEVICE_A,
    DEVICE_B,
    column,
    create_app,
    june,
    on,
    points,
)


def _downgrade_to_0003(connection: Connection) -> None:
    command.downgrade(alembic_config(connection), "0003")


async def test_upgrade_backfills_monthly_active_users(
    app: FastAPI, client: httpx.AsyncClient, alice: Account, database_url: str
) -> None:
    await create_app(client, alice)
    history = [(DEVICE_A, 1), (DEVICE_A, 2), (DEVICE_A, 40), (DEVICE_B, 5)]
    engine = make_engine(database_url)
    try:
        async with engine.connect() as connection:  # the migrations open their transaction
            await connection.run_sync(_downgrade_to_0003)
        async with engine.begin() as connection:
            await connection.execute(delete(DeviceActivity))
            await connection.execute(
                insert(DeviceActivity),
                [
                    {"app_id": APP_ID, "device_id": device, "date": june(1) + timedelta(days=n - 1)}
                    for device, n in history
                ],
            )
        await upgrade_to_head(engine)
    finally:
        await engine.dispose()

    last = june(1) + timedelta(days=70)
    with on(last):
        body = await points(client, f"/app/{APP_ID}", alice, june(1), last)

    # A: days 1-2 cover days 1-31, day 40 covers 40-69; B: day 5 covers 5-34.
    expected = [
        (1 if 1 <= n <= 31 or 40 <= n <= 69 else 0) + (1 if 5 <= n <= 34 else 0)
        for n in range(1, 72)
    ]
    assert column(body, "mau") == expected
