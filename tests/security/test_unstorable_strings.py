"""Strings no database column can hold back: NUL and lone UTF-16 surrogates (``\\ud800``).

JSON can carry a lone surrogate as an escape, and Python keeps it in a ``str``; no UTF-8 encodes
it. Through the device recorder's bulk write, SQLite stored one as bytes that every later read
of the row failed to decode, so a single unauthenticated ``/updates`` made the owner's
``GET /device`` answer 500 for good (found by an attack on the hardened server). Every body is
now refused with 400 before anything is recorded.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import Account
from tests.plugin.seed import APP_ID, base_data, seed_app

LONE_SURROGATES = ["\ud800", "\udfff\ud800", "ok\udc00"]


def raw_json(body: Any) -> bytes:
    """``body`` as JSON with its surrogates as ``\\u`` escapes (httpx's encoder refuses them)."""
    return json.dumps(body, ensure_ascii=True).encode()


async def send(client: httpx.AsyncClient, method: str, path: str, body: Any, **headers: str):
    return await client.request(
        method,
        path,
        content=raw_json(body),
        headers={"content-type": "application/json", **headers},
    )


DEVICE_CASES = [
    ("POST", "/updates", "version_os"),
    ("POST", "/updates", "custom_id"),
    ("POST", "/stats", "version_os"),
    ("POST", "/stats", "version_name"),
    ("POST", "/channel_self", "custom_id"),
    ("PUT", "/channel_self", "version_os"),
]


@pytest.mark.parametrize(("method", "path", "field"), DEVICE_CASES)
async def test_a_device_string_with_a_lone_surrogate_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, alice: Account, method: str, path: str, field: str
) -> None:
    await seed_app(client, alice)
    for value in LONE_SURROGATES:
        body = {**base_data(device_id=str(uuid.uuid4())), field: value}
        if path == "/stats":
            body["action"] = "set"
        if path == "/channel_self" and method == "POST":
            body["channel"] = "production"
        response = await send(client, method, path, body)
        assert response.status_code == 400, response.text
        if path == "/updates":  # the plugin protocol's answer to any unusable body
            assert response.json()["error"] == "invalid_json_body"
        else:  # as for a NUL character
            assert response.json()["error"] == "invalid_body"
            assert response.json()["message"] == "Strings must not contain unpaired surrogates"
    devices = await client.get("/device", params={"app_id": APP_ID}, headers=alice.headers)
    assert devices.status_code == 200, devices.text
    assert devices.json()["data"] == []


async def test_a_paired_surrogate_is_an_ordinary_character(
    client: httpx.AsyncClient, alice: Account
) -> None:
    await seed_app(client, alice)
    device = str(uuid.uuid4())
    body = {**base_data(device_id=device), "version_os": "17 \U0001f600"}  # sent as \ud83d\ude00
    response = await send(client, "POST", "/updates", body)
    assert response.status_code == 200, response.text
    listed = await client.get(
        "/device", params={"app_id": APP_ID, "device_id": device}, headers=alice.headers
    )
    assert listed.status_code == 200, listed.text
    assert listed.json()["os_version"] == "17 \U0001f600"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/apikey", {"name": "k\ud800", "mode": "read"}),
        ("POST", "/organization", {"name": "Org \udfff"}),
    ],
)
async def test_an_api_string_with_a_lone_surrogate_is_refused(
    client: httpx.AsyncClient, alice: Account, method: str, path: str, body: dict[str, Any]
) -> None:
    response = await send(client, method, path, body, authorization=alice.key)
    assert response.status_code == 400, response.text
    assert response.json()["error"] in {"invalid_body", "invalid_json_parse_body"}
