from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Account
from tests.files.support import APP_ID, Tus, create_app_row
from tests.storage.s3_support import S3Server, running_s3_server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    with running_s3_server() as server:
        yield server


@pytest.fixture
async def app_id(client: httpx.AsyncClient, alice: Account) -> str:
    """An app of alice's organization, for the upload tests."""
    return await create_app_row(client, alice, APP_ID)


@pytest.fixture
def tus(client: httpx.AsyncClient, alice: Account) -> Tus:
    """A tus client acting with alice's key."""
    return Tus(client, alice.headers)
