"""Fixtures shared by the end-to-end modules; each module provides its own ``live`` server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.bundle_cli.proxy import CuttingProxy
from tests.bundle_cli.test_end_to_end import Live


@pytest.fixture
def proxy(live: Live) -> Iterator[CuttingProxy]:
    """The proxy in front of the server, disarmed again after the test."""
    yield live.proxy
    live.proxy.arm(cuts=0)


@pytest.fixture
def app_id(live: Live) -> str:
    """A new app of the account's organization, created through ``POST /app``."""
    new_id = f"com.e2e.app{uuid.uuid4().hex[:10]}"
    with live.http() as http:
        response = http.post(
            "/app", json={"app_id": new_id, "name": "E2E", "owner_org": live.org_id}
        )
    assert response.status_code == 200, response.text
    return new_id
