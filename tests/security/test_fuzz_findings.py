"""What the OpenAPI fuzzer (``test_fuzz_openapi.py``) found, each pinned by a plain test."""

from __future__ import annotations

import httpx
import pytest

from capgo_server.schema_types import MAX_PAGE
from tests.conftest import Account

HUGE_PAGE = str(2**63)


class TestHugePageNumbers:
    """``page`` becomes an SQL ``OFFSET``: past 64 bits the database refused it and the server
    answered 500. Pages are now bounded (``MAX_PAGE``) and a larger one is 400."""

    @pytest.mark.parametrize(
        ("path", "params"),
        [
            ("/organization", {}),
            ("/organization/audit", {"orgId": "ORG"}),
            ("/app", {}),
            ("/channel", {"app_id": "com.example.app"}),
            ("/bundle", {"app_id": "com.example.app"}),
            ("/versions", {"app_id": "com.example.app"}),
        ],
    )
    async def test_a_page_past_the_bound_is_invalid_body(
        self, client: httpx.AsyncClient, alice: Account, path: str, params: dict[str, str]
    ) -> None:
        if params.get("orgId") == "ORG":
            params = {**params, "orgId": alice.org_id}
        for page in (HUGE_PAGE, str(MAX_PAGE + 1)):
            response = await client.get(
                path, params={**params, "page": page}, headers=alice.headers
            )
            assert response.status_code == 400, response.text
            body = response.json()
            assert body["error"] == "invalid_body"
            assert body["moreInfo"]["error"][0]["loc"] == ["page"]

    async def test_the_last_page_allowed_is_an_empty_page(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await client.get(
            "/organization", params={"page": str(MAX_PAGE)}, headers=alice.headers
        )
        assert response.status_code == 200, response.text
        assert response.json() == []
