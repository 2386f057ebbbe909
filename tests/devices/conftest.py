"""Fixtures of the ``/device`` tests."""

from __future__ import annotations

import httpx
import pytest_asyncio

from tests.bundles.helpers import APP_ID, create_app
from tests.conftest import Account


@pytest_asyncio.fixture(loop_scope="session")
async def owned_app(client: httpx.AsyncClient, alice: Account) -> str:
    await create_app(client, alice)
    return APP_ID
