"""The constraints ``/openapi.json`` states are the ones the server enforces.

The fuzzer generates from the document, so a constraint the server does not enforce would make
it believe it tested valid data (and a constraint it enforces but the document hides sends most
generated requests to a validation refusal). Each rule is checked at its edge: the longest or
last valid value passes validation, the next one is refused with the route's own code.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import Account, error_of

LONGEST_APP_ID = "com." + "a" * 251  # 255 characters, the width of apps.app_id
TOO_LONG_APP_ID = LONGEST_APP_ID + "a"
DEVICE = {
    "device_id": "00000000-f022-4000-8000-000000000001",
    "platform": "android",
    "version_name": "1.0.0",
    "version_build": "1.0.0",
    "is_emulator": False,
    "is_prod": True,
}


def _schema_of(document: dict[str, Any], path: str, method: str, name: str) -> dict[str, Any]:
    operation = document["paths"][path][method]
    if "requestBody" in operation:
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        if name in body.get("properties", {}):
            field: dict[str, Any] = body["properties"][name]
            return field
    parameter = next(p for p in operation["parameters"] if p["name"] == name)
    schema: dict[str, Any] = parameter["schema"]
    return schema


def _string_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The string branch of ``X | None`` (``anyOf``), or the schema itself."""
    for branch in schema.get("anyOf", [schema]):
        if branch.get("type") == "string":
            return dict(branch)
    raise AssertionError(schema)


class TestAppIdRule:
    """``app_id`` is documented with the reverse-domain pattern and at most 255 characters."""

    @pytest.mark.parametrize(
        ("path", "method"),
        [
            ("/app/{app_id}", "get"),
            ("/app", "post"),
            ("/channel", "post"),
            ("/bundle", "get"),
            ("/device", "post"),
            ("/updates", "post"),
            ("/stats", "post"),
            ("/channel_self", "post"),
        ],
    )
    async def test_the_document_states_the_rule(self, app: FastAPI, path: str, method: str) -> None:
        schema = _string_schema(_schema_of(app.openapi(), path, method, "app_id"))
        assert schema["maxLength"] == 255
        pattern = re.compile(schema["pattern"])
        assert [bool(pattern.search(text)) for text in ("com.example.app", "Com.A_b-c")] == [
            True,
            True,
        ]
        assert [bool(pattern.search(text)) for text in ("example", "com..x")] == [False, False]

    @pytest.mark.parametrize(
        ("method", "path", "data"),
        [
            ("GET", "/channel", {}),
            ("POST", "/channel", {"channel": "x"}),
            ("GET", "/bundle", {}),
            ("GET", "/device", {}),
            ("POST", "/files/download_link", {"version": "1.0.0"}),
        ],
    )
    async def test_an_app_id_past_255_characters_is_invalid_app_id(
        self,
        client: httpx.AsyncClient,
        alice: Account,
        method: str,
        path: str,
        data: dict[str, str],
    ) -> None:
        def send(app_id: str) -> Any:
            fields = {**data, "app_id": app_id}
            if method == "GET":
                return client.get(path, params=fields, headers=alice.headers)
            return client.post(path, json=fields, headers=alice.headers)

        # The longest id passes validation: no such app, refused as one the key cannot see.
        assert error_of(await send(LONGEST_APP_ID)) != (400, "invalid_app_id")
        assert error_of(await send(TOO_LONG_APP_ID)) == (400, "invalid_app_id")

    @pytest.mark.parametrize(
        ("path", "code"),
        [
            ("/updates", "invalid_json_body"),
            ("/plugin/updates", "invalid_json_body"),
            ("/stats", "invalid_app_id"),
            ("/channel_self", "invalid_json_body"),
        ],
    )
    async def test_a_device_sending_an_app_id_past_255_characters_is_refused(
        self, client: httpx.AsyncClient, path: str, code: str
    ) -> None:
        body = {**DEVICE, "version_os": "14", "action": "get"}
        # The longest id passes validation (no such app: the route's own answer, not a 400).
        assert (await client.post(path, json={**body, "app_id": LONGEST_APP_ID})).status_code in (
            200,
            429,
        )
        response = await client.post(path, json={**body, "app_id": TOO_LONG_APP_ID})
        assert response.status_code == 400, response.text
        assert response.json()["error"] == code
