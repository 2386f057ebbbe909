"""Malformed and oversized request bodies (spec §1.1): refused with 4xx, never a 500."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from capgo_server.app import create_app
from capgo_server.settings import Settings
from tests.conftest import Account, error_of, make_account, make_key

JSON = {"content-type": "application/json"}
INVALID_JSON = {"error": "invalid_json_parse_body", "message": "Invalid JSON body", "moreInfo": {}}


def too_large(limit: int) -> dict[str, object]:
    return {
        "error": "body_too_large",
        "message": f"Request body exceeds {limit} bytes",
        "moreInfo": {"max_bytes": limit},
    }


async def chunks(payload: bytes, size: int = 4096) -> AsyncIterator[bytes]:
    """``payload`` as a stream, so the request carries no ``content-length``."""
    for start in range(0, len(payload), size):
        yield payload[start : start + size]


CREATE_FIELD_CASES = [
    pytest.param({"name": ["x"]}, (400, "name_is_required"), id="name-list"),
    pytest.param({"name": {"x": 1}}, (400, "name_is_required"), id="name-object"),
    pytest.param({"name": "x", "mode": ["all"]}, (400, "invalid_mode"), id="mode-list"),
    pytest.param({"name": "x", "mode": {"all": True}}, (400, "invalid_mode"), id="mode-object"),
    pytest.param({"name": "x", "hashed": "yes"}, (400, "invalid_body"), id="hashed-string"),
    pytest.param(
        {"name": "x", "limited_to_orgs": "org"},
        (400, "limited_to_orgs_must_be_an_array_of_strings"),
        id="orgs-string",
    ),
    pytest.param(
        {"name": "x", "limited_to_apps": [1]},
        (400, "limited_to_apps_must_be_an_array_of_strings"),
        id="apps-numbers",
    ),
    pytest.param({"name": "x", "org_id": 123}, (404, "org_not_found"), id="org_id-number"),
    pytest.param(
        {"name": "x", "expires_at": {"days": 1}},
        (400, "invalid_expiration_date"),
        id="expires_at-object",
    ),
]
UPDATE_FIELD_CASES = [
    pytest.param({"name": ["x"]}, (400, "name_must_be_a_string"), id="name-list"),
    pytest.param({"mode": ["all"]}, (400, "invalid_mode"), id="mode-list"),
    pytest.param({"mode": {"all": True}}, (400, "invalid_mode"), id="mode-object"),
    pytest.param(
        {"limited_to_orgs": {"a": "b"}},
        (400, "limited_to_orgs_must_be_an_array_of_strings"),
        id="orgs-object",
    ),
    pytest.param(
        {"expires_at": ["2099-01-01"]}, (400, "invalid_expiration_date"), id="expires_at-list"
    ),
]


class TestMalformedJson:
    @pytest.mark.parametrize("method", ["POST", "PUT"])
    @pytest.mark.parametrize(
        "content", [b"invalid json", b"{", b"{'name': 'x'}", b"\xff\xfe\x00", b"", b"[]", b"{}"]
    )
    async def test_organization_save(
        self, client: httpx.AsyncClient, alice: Account, method: str, content: bytes
    ) -> None:
        response = await client.request(
            method, "/organization", content=content, headers={**alice.headers, **JSON}
        )
        assert response.status_code == 400
        assert response.json() == INVALID_JSON

    async def test_organization_delete_without_input(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await client.request(
            "DELETE", "/organization", content=b"not json", headers={**alice.headers, **JSON}
        )
        assert response.status_code == 400
        assert response.json() == INVALID_JSON
        assert (await client.get("/organization", headers=alice.headers)).json() != []

    @pytest.mark.parametrize("content", [b"invalid json", b"\xff\xfe\x00", b"null", b'["x"]'])
    async def test_apikey_create(
        self, client: httpx.AsyncClient, alice: Account, content: bytes
    ) -> None:
        response = await client.post("/apikey", content=content, headers={**alice.headers, **JSON})
        assert response.status_code == 400
        assert response.json() == INVALID_JSON

    @pytest.mark.parametrize("path", ["/organization", "/apikey"])
    async def test_deeply_nested_json(
        self, client: httpx.AsyncClient, alice: Account, path: str
    ) -> None:
        # Well under the size limit, but deeper than any JSON parser should recurse.
        response = await client.post(
            path, content=b"[" * 100_000, headers={**alice.headers, **JSON}
        )
        assert response.status_code == 400
        assert response.json() == INVALID_JSON

    @pytest.mark.parametrize(("body", "expected"), CREATE_FIELD_CASES)
    async def test_wrong_field_type_on_apikey_create(
        self,
        client: httpx.AsyncClient,
        alice: Account,
        body: dict[str, object],
        expected: tuple[int, str],
    ) -> None:
        response = await client.post("/apikey", json=body, headers=alice.headers)
        assert error_of(response) == expected
        assert len((await client.get("/apikey", headers=alice.headers)).json()) == 1

    @pytest.mark.parametrize(("body", "expected"), UPDATE_FIELD_CASES)
    async def test_wrong_field_type_on_apikey_update(
        self,
        client: httpx.AsyncClient,
        alice: Account,
        body: dict[str, object],
        expected: tuple[int, str],
    ) -> None:
        created = await make_key(client, alice)
        response = await client.put(f"/apikey/{created['id']}", json=body, headers=alice.headers)
        assert error_of(response) == expected
        fetched = await client.get(f"/apikey/{created['id']}", headers=alice.headers)
        assert fetched.json() == created

    async def test_wrong_field_types_on_organization(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        for body in (
            {"name": 123},
            {"name": "ab"},
            {"name": "Good Org", "email": "nope"},
            {"orgId": alice.org_id, "max_apikey_expiration_days": "many"},
        ):
            response = await client.post("/organization", json=body, headers=alice.headers)
            assert error_of(response) == (400, "invalid_body"), body


class TestUnstorableValues:
    """Values valid as JSON that one of the databases cannot store must not become a 500."""

    @pytest.mark.parametrize(
        "name",
        [pytest.param("n" * 300, id="300-chars"), pytest.param("nul\u0000byte", id="nul-byte")],
    )
    async def test_apikey_name(self, client: httpx.AsyncClient, alice: Account, name: str) -> None:
        response = await client.post("/apikey", json={"name": name}, headers=alice.headers)
        assert response.status_code in {200, 400}, response.text
        if response.status_code == 200:
            assert response.json()["name"] == name
        else:
            assert set(response.json()) == {"error", "message", "moreInfo"}

    @pytest.mark.parametrize(
        "name",
        [pytest.param("n" * 300, id="300-chars"), pytest.param("nul\u0000byte", id="nul-byte")],
    )
    async def test_apikey_rename(
        self, client: httpx.AsyncClient, alice: Account, name: str
    ) -> None:
        created = await make_key(client, alice)
        response = await client.put(
            f"/apikey/{created['id']}", json={"name": name}, headers=alice.headers
        )
        assert response.status_code in {200, 400}, response.text
        if response.status_code == 400:
            assert set(response.json()) == {"error", "message", "moreInfo"}

    async def test_organization_name_with_nul(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await client.post(
            "/organization", json={"name": "nul\u0000org"}, headers=alice.headers
        )
        assert response.status_code in {200, 400}, response.text
        if response.status_code == 400:
            assert set(response.json()) == {"error", "message", "moreInfo"}


class TestOversizedBodies:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("POST", "/organization"),
            ("PUT", "/organization"),
            ("POST", "/apikey"),
            ("PUT", "/apikey/1"),
            ("POST", "/organization/members"),
        ],
    )
    async def test_over_the_limit_is_413(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, method: str, path: str
    ) -> None:
        limit: int = app.state.settings.max_body_bytes
        payload = json.dumps({"name": "x" * limit}).encode()
        response = await client.request(
            method, path, content=payload, headers={**alice.headers, **JSON}
        )
        assert response.status_code == 413
        assert response.json() == too_large(limit)

    async def test_streamed_body_without_length_is_413(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        limit: int = app.state.settings.max_body_bytes
        payload = json.dumps({"name": "x" * limit}).encode()
        response = await client.post(
            "/apikey", content=chunks(payload), headers={**alice.headers, **JSON}
        )
        assert response.status_code == 413
        assert response.json() == too_large(limit)
        assert len((await client.get("/apikey", headers=alice.headers)).json()) == 1

    async def test_configured_limit_applies(
        self, app: FastAPI, database_url: str, tmp_path: Path
    ) -> None:
        settings = Settings(
            database_url=database_url,
            data_dir=tmp_path / "small",
            secret="x" * 32,
            max_body_bytes=64,
        )
        application = create_app(settings)
        async with application.router.lifespan_context(application):
            owner = await make_account(application, "dave@example.com", "Dave Org")
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://capgo.test") as http:
                small = await http.post("/apikey", json={"name": "short"}, headers=owner.headers)
                assert small.status_code == 200
                big = await http.post("/apikey", json={"name": "n" * 100}, headers=owner.headers)
                assert big.status_code == 413
                assert big.json() == too_large(64)


class TestClientGoneMidBody:
    async def test_no_server_exception_and_nothing_recorded(self, app: FastAPI) -> None:
        """A device that loses its connection while sending its body gets a 400 it never reads
        (``client_disconnected``), not a 500 and a logged traceback."""
        body = b'{"app_id": "com.demo.app", "device_id": "'
        messages = [
            {"type": "http.request", "body": body, "more_body": True},
            {"type": "http.disconnect"},
        ]
        sent: list[dict[str, object]] = []

        async def receive() -> dict[str, object]:
            return messages.pop(0)

        async def send(message: dict[str, object]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/updates",
            "raw_path": b"/updates",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"capgo.test"), (b"content-type", b"application/json")],
            "client": ("203.0.113.9", 50000),
            "server": ("capgo.test", 80),
            "state": {},
        }
        await app(scope, receive, send)  # raises if the app lets the disconnect through
        assert sent[0]["type"] == "http.response.start"
        assert sent[0]["status"] == 400
        answer = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))  # type: ignore[misc]
        assert answer["error"] == "client_disconnected"
        assert app.state.recorder.pending == 0
