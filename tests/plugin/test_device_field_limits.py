"""Every string a device endpoint stores is bounded by one table (``plugin.fields``): a longer
one is refused before anything is recorded, one at the limit is accepted, on ``/updates``,
``/stats`` (single events and batches) and every ``/channel_self`` method."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from capgo_server.models import App, Channel, Device, StatsEvent
from capgo_server.plugin.fields import DEVICE_FIELD_LIMITS, DEVICE_VERSION_NAME_LENGTH, column_width
from tests.apps.helpers import rows
from tests.conftest import Account
from tests.plugin.seed import APP_ID, base_data, seed_app

Send = Callable[[httpx.AsyncClient, dict[str, Any]], Awaitable[httpx.Response]]


@pytest.fixture
async def seeded(client: httpx.AsyncClient, alice: Account) -> str:
    await seed_app(client, alice)
    return APP_ID


def too_long(field: str) -> str:
    """A value one character past the limit (a plausible one: a long valid id or version)."""
    return at_limit(field, DEVICE_FIELD_LIMITS[field] + 1)


def at_limit(field: str, length: int | None = None) -> str:
    """A value of exactly ``length`` (the field's limit) characters that is otherwise valid."""
    size = DEVICE_FIELD_LIMITS[field] if length is None else length
    if field == "plugin_version":  # a new plugin (every 8.x keeps its channel itself)
        return "8.0.0-" + "a" * (size - 6)
    if field == "version_build":
        return "1.0.0-" + "b" * (size - 6)
    if field in ("version_name", "old_version_name"):
        return "1.0.0:" + "f" * (size - 6)
    if field == "app_id":
        return "com." + "a" * (size - 4)
    if field == "device_id":
        return str(uuid.uuid4()) + "0" * (size - 36)
    return "x" * size


def as_query(body: dict[str, Any]) -> dict[str, str]:
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in body.items()}


async def post_updates(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/updates", json=body)


async def post_stats(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/stats", json={**body, "action": "set"})


async def post_channel_self(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/channel_self", json=body)


async def put_channel_self(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.put("/channel_self", json=body)


async def delete_channel_self(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.delete("/channel_self", params=as_query(body))


async def list_channel_self(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.get("/channel_self", params=as_query(body))


#: (endpoint, how it is called, its code for a body that does not parse)
ENDPOINTS: list[tuple[str, Send, str]] = [
    ("POST /updates", post_updates, "invalid_json_body"),
    ("POST /stats", post_stats, "invalid_json_body"),
    ("POST /channel_self", post_channel_self, "invalid_json_body"),
    ("PUT /channel_self", put_channel_self, "invalid_json_body"),
    ("DELETE /channel_self", delete_channel_self, "invalid_query_parameters"),
    ("GET /channel_self", list_channel_self, "invalid_query_parameters"),
]


async def nothing_recorded(app: FastAPI, client: httpx.AsyncClient, owner: Account) -> None:
    response = await client.get("/device", params={"app_id": APP_ID}, headers=owner.headers)
    assert (response.status_code, response.json()["data"]) == (200, [])
    assert await rows(app, Device) == []
    assert await rows(app, StatsEvent) == []


class TestTheTable:
    def test_no_limit_is_wider_than_the_column_it_is_written_to(self) -> None:
        written_to = {
            "app_id": [App.app_id],
            "device_id": [Device.device_id, StatsEvent.device_id],
            "platform": [Device.platform],
            "plugin_version": [Device.plugin_version],
            "version_os": [Device.os_version],
            "version_build": [Device.version_build],
            "version_name": [StatsEvent.version_name],
            "old_version_name": [StatsEvent.version_name],
            "custom_id": [Device.custom_id],
            "defaultChannel": [Device.default_channel],
            "key_id": [Device.key_id],
            "channel": [Channel.name],
        }
        assert set(written_to) == set(DEVICE_FIELD_LIMITS)
        for field, columns in written_to.items():
            for column in columns:
                assert DEVICE_FIELD_LIMITS[field] <= column_width(column), (field, column)


@pytest.mark.parametrize(("endpoint", "send", "code"), ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
class TestOversizedFields:
    async def test_each_field_past_its_limit_is_refused_and_nothing_is_recorded(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        alice: Account,
        seeded: str,
        endpoint: str,
        send: Send,
        code: str,
    ) -> None:
        for field in DEVICE_FIELD_LIMITS:
            body = base_data(device_id=str(uuid.uuid4()), plugin_version="7.34.0")
            body[field] = too_long(field)
            response = await send(client, body)
            assert response.status_code == 400, (field, response.text)
            if field == "version_build":  # checked first, as a native version (spec §5.2)
                assert response.json()["error"] == "semver_error", response.text
                continue
            if field == "app_id" and endpoint == "POST /stats":  # its first event's app id (§5.4)
                assert response.json()["error"] == "invalid_app_id", response.text
                continue
            assert response.json() == {
                "error": code,
                "message": "Cannot parse body",
                "moreInfo": {
                    "parseResult": [
                        {
                            "loc": [field],
                            "msg": f"String should have at most {DEVICE_FIELD_LIMITS[field]} "
                            "characters",
                        }
                    ]
                },
            }, field
        await nothing_recorded(app, client, alice)


class TestNormalisedValues:
    async def test_a_native_version_that_normalisation_would_lengthen_past_the_column_is_refused(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, seeded: str
    ) -> None:
        # "999...9" (68 digits) would be stored as "999...9.0.0" (72), longer than the column;
        # a number past JavaScript's safe integers is no version part (as for Capgo's parsers).
        digits = "9" * (DEVICE_FIELD_LIMITS["version_build"] - 2)
        response = await client.post("/updates", json=base_data(version_build=digits))
        assert response.status_code == 400
        assert response.json()["error"] == "semver_error"
        await nothing_recorded(app, client, alice)


class TestInABatch:
    async def test_an_oversized_event_fails_alone(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, seeded: str
    ) -> None:
        device = str(uuid.uuid4())
        good = {**base_data(device_id=device), "action": "set"}
        fields = [f for f in DEVICE_FIELD_LIMITS if f not in ("app_id", "device_id")]
        batch = [good, *({**good, f: too_long(f)} for f in fields)]
        response = await client.post("/stats", json=batch)
        assert response.status_code == 200
        results = response.json()["results"]
        assert results[0] == {"status": "ok", "index": 0}
        for index, field in enumerate(fields, start=1):
            if field == "version_build":  # checked first, as a native version (spec §5.2)
                assert results[index]["error"] == "semver_error", results[index]
                continue
            assert results[index] == {
                "status": "error",
                "error": "invalid_json_body",
                "message": "Cannot parse body",
                "index": index,
            }
        assert [(e.device_id, e.action) for e in await rows(app, StatsEvent)] == [(device, "set")]

    async def test_an_oversized_first_app_id_refuses_the_batch(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, seeded: str
    ) -> None:
        event = {**base_data(app_id=too_long("app_id")), "action": "set"}
        response = await client.post("/stats", json=[event, event])
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_app_id"
        await nothing_recorded(app, client, alice)


def everything_at_the_limit(device: str) -> dict[str, Any]:
    fields = ("plugin_version", "version_build", "version_name", "version_os", "custom_id")
    return base_data(
        device_id=device,
        defaultChannel=at_limit("defaultChannel"),
        key_id=at_limit("key_id"),
        **{f: at_limit(f) for f in fields},
    )


class TestAtTheLimit:
    @pytest.mark.parametrize("path", ["/updates", "/stats"])
    async def test_every_field_at_its_limit_is_stored(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, seeded: str, path: str
    ) -> None:
        device = str(uuid.uuid4())
        body = everything_at_the_limit(device)
        if path == "/stats":
            body.update(
                action="set",
                platform=at_limit("platform"),
                old_version_name=at_limit("old_version_name"),
                channel=at_limit("channel"),
            )
        response = await client.post(path, json=body)
        assert response.status_code == 200, response.text
        listed = await client.get(
            "/device", params={"app_id": APP_ID, "device_id": device}, headers=alice.headers
        )
        assert listed.status_code == 200, listed.text
        seen = listed.json()
        expected = {
            "custom_id": body["custom_id"],
            "os_version": body["version_os"],
            "plugin_version": body["plugin_version"],
            "version_build": body["version_build"],
            "key_id": body["key_id"],
        }
        assert {k: seen[k] for k in expected} == expected
        (row,) = await rows(app, Device, device_id=device)
        assert row.default_channel == body["defaultChannel"]
        if path == "/stats":  # /updates logs the bundle it offers or refuses
            assert [e.version_name for e in await rows(app, StatsEvent)] == [body["version_name"]]
            assert row.version_name == body["version_name"][:DEVICE_VERSION_NAME_LENGTH]

    @pytest.mark.parametrize(
        ("endpoint", "send", "code"), ENDPOINTS[2:], ids=[e[0] for e in ENDPOINTS[2:]]
    )
    async def test_channel_self_takes_every_field_at_its_limit(
        self,
        client: httpx.AsyncClient,
        seeded: str,
        endpoint: str,
        send: Send,
        code: str,
    ) -> None:
        body = everything_at_the_limit(str(uuid.uuid4()))
        body["channel"] = "beta"
        response = await send(client, body)
        assert response.status_code == 200, response.text
        assert "error" not in response.json(), response.text
        # A channel name at the limit is read (there is no such channel), not refused.
        body.update(device_id=str(uuid.uuid4()), channel=at_limit("channel"))
        response = await send(client, body)
        assert response.status_code == 200, response.text
