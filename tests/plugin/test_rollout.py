"""Percentage rollout: the sticky per-device draw, setting it through ``POST /channel``, and what
``/updates`` offers devices on a channel in rollout."""

from __future__ import annotations

import random
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from capgo_server.models import Channel
from capgo_server.plugin.rollout import rollout_bundle_id, rollout_draw
from tests.bundles.helpers import bundle_id, create_app, create_bundle
from tests.conftest import Account

APP_ID = "com.rollout.app"
MAIN, ROLLOUT = 11, 22


def device_ids(count: int, seed: int = 1) -> list[str]:
    draw = random.Random(seed)
    return [str(uuid.UUID(int=draw.getrandbits(128), version=4)) for _ in range(count)]


DEVICES = device_ids(10_000)


def channel(percentage: float, rollout: int | None = ROLLOUT) -> Channel:
    return Channel(version=MAIN, rollout_version=rollout, rollout_percentage=percentage)


def rolled_out(percentage: float, rollout: int = ROLLOUT) -> set[str]:
    ch = channel(percentage, rollout)
    return {d for d in DEVICES if rollout_bundle_id(ch, APP_ID, d) == rollout}


class TestStickyDraw:
    def test_about_30_percent_of_10000_devices_get_the_rollout_bundle(self) -> None:
        share = len(rolled_out(30)) / len(DEVICES)
        assert 0.28 <= share <= 0.32

    def test_every_device_always_gets_the_same_answer(self) -> None:
        ch = channel(30)
        first = [rollout_bundle_id(ch, APP_ID, d) for d in DEVICES]
        second = [rollout_bundle_id(ch, APP_ID, d) for d in DEVICES]
        assert first == second
        assert set(first) == {MAIN, ROLLOUT}

    def test_raising_the_percentage_only_adds_devices(self) -> None:
        at_30, at_50 = rolled_out(30), rolled_out(50)
        assert at_30 < at_50
        assert 0.48 <= len(at_50) / len(DEVICES) <= 0.52

    def test_zero_percent_offers_it_to_nobody_and_100_to_everybody(self) -> None:
        assert rolled_out(0) == set()
        assert rolled_out(100) == set(DEVICES)

    def test_no_rollout_bundle_means_the_main_bundle(self) -> None:
        ch = channel(100, rollout=None)
        assert {rollout_bundle_id(ch, APP_ID, d) for d in DEVICES[:100]} == {MAIN}

    def test_a_deleted_rollout_bundle_is_never_offered(self) -> None:
        ch = channel(100)
        assert {rollout_bundle_id(ch, APP_ID, d, rollout_deleted=True) for d in DEVICES[:100]} == {
            MAIN
        }

    def test_a_new_rollout_bundle_draws_again(self) -> None:
        first, other = rolled_out(30), rolled_out(30, rollout=ROLLOUT + 1)
        assert first != other
        assert 0.28 <= len(other) / len(DEVICES) <= 0.32

    def test_the_draw_depends_on_the_app_and_ignores_device_id_case(self) -> None:
        device = DEVICES[0]
        assert rollout_draw(APP_ID, device, ROLLOUT) == rollout_draw(
            APP_ID, device.upper(), ROLLOUT
        )
        draws = {rollout_draw(f"com.app{i}", device, ROLLOUT) for i in range(20)}
        assert len(draws) == 20
        assert all(0 <= d < 100 for d in draws)


# --- POST /channel and GET /channel -----------------------------------------------------------


async def setup_app(client: httpx.AsyncClient, owner: Account) -> None:
    await create_app(client, owner, APP_ID)
    for name in ("1.0.0", "1.0.1", "1.0.2"):
        await create_bundle(client, owner, name, APP_ID)
    await post_channel(client, owner, version="1.0.0", public=True)


async def post_channel(client: httpx.AsyncClient, owner: Account, **fields: Any) -> httpx.Response:
    body = {"app_id": APP_ID, "channel": "production", **fields}
    response = await client.post("/channel", json=body, headers=owner.headers)
    if response.status_code == 200:
        assert response.json()["status"] == "ok"
    return response


async def rollout_of(client: httpx.AsyncClient, owner: Account) -> tuple[Any, Any]:
    response = await client.get(
        "/channel", params={"app_id": APP_ID, "channel": "production"}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    return body["rollout_version"], body["rollout_percentage"]


class TestSettingARollout:
    async def test_a_new_channel_has_no_rollout(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await setup_app(client, alice)
        assert await rollout_of(client, alice) == (None, 0)

    async def test_post_sets_it_and_get_shows_it(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await setup_app(client, alice)
        response = await post_channel(client, alice, rollout_version="1.0.1", rollout_percentage=30)
        assert response.status_code == 200
        rollout_id = await bundle_id(app, "1.0.1", APP_ID)
        assert await rollout_of(client, alice) == ({"id": rollout_id, "name": "1.0.1"}, 30)

    async def test_fields_change_independently(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await setup_app(client, alice)
        await post_channel(client, alice, rollout_version="1.0.1", rollout_percentage=10)
        await post_channel(client, alice, rollout_percentage=55.5)
        rollout_id = await bundle_id(app, "1.0.1", APP_ID)
        assert await rollout_of(client, alice) == ({"id": rollout_id, "name": "1.0.1"}, 55.5)
        await post_channel(client, alice, rollout_version="1.0.2")
        other_id = await bundle_id(app, "1.0.2", APP_ID)
        assert await rollout_of(client, alice) == ({"id": other_id, "name": "1.0.2"}, 55.5)
        await post_channel(client, alice, public=True)
        assert await rollout_of(client, alice) == ({"id": other_id, "name": "1.0.2"}, 55.5)

    async def test_null_clears_the_rollout(self, client: httpx.AsyncClient, alice: Account) -> None:
        await setup_app(client, alice)
        await post_channel(client, alice, rollout_version="1.0.1", rollout_percentage=30)
        await post_channel(client, alice, rollout_version=None)
        assert await rollout_of(client, alice) == (None, 0)

    async def test_a_new_channel_can_start_with_a_rollout(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await setup_app(client, alice)
        response = await client.post(
            "/channel",
            json={
                "app_id": APP_ID,
                "channel": "beta",
                "version": "1.0.0",
                "rollout_version": "1.0.1",
                "rollout_percentage": 100,
            },
            headers=alice.headers,
        )
        assert response.status_code == 200
        got = await client.get(
            "/channel", params={"app_id": APP_ID, "channel": "beta"}, headers=alice.headers
        )
        rollout_id = await bundle_id(app, "1.0.1", APP_ID)
        body = got.json()
        assert (body["rollout_version"], body["rollout_percentage"]) == (
            {"id": rollout_id, "name": "1.0.1"},
            100,
        )

    @pytest.mark.parametrize("name", ["9.9.9", "builtin", "unknown", "1.0.1-deleted"])
    async def test_unknown_internal_or_deleted_bundles_are_refused(
        self, client: httpx.AsyncClient, alice: Account, name: str
    ) -> None:
        await setup_app(client, alice)
        if name == "1.0.1-deleted":
            name = "1.0.1"
            deleted = await client.delete(
                "/bundle", params={"app_id": APP_ID, "version": name}, headers=alice.headers
            )
            assert deleted.status_code == 200, deleted.text
        response = await post_channel(client, alice, rollout_version=name, rollout_percentage=5)
        assert response.status_code == 400
        message = f"Bundle {name} does not exist for app {APP_ID} (or is deleted): upload it first"
        if name in ("builtin", "unknown"):
            message = f"{name} names the app's native state, not a bundle: it cannot be rolled out"
        assert response.json() == {
            "error": "cannot_find_version",
            "message": message,
            "moreInfo": {"rollout_version": name},
        }
        assert await rollout_of(client, alice) == (None, 0)

    @pytest.mark.parametrize(
        ("value", "echoed"),
        [(-1, -1), (100.5, 100.5), ("50", "50"), (True, True), (None, None), ([5], None)],
    )
    async def test_percentages_outside_0_to_100_are_refused(
        self, client: httpx.AsyncClient, alice: Account, value: Any, echoed: Any
    ) -> None:
        await setup_app(client, alice)
        response = await post_channel(
            client, alice, rollout_version="1.0.1", rollout_percentage=value
        )
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_rollout_percentage",
            "message": "rollout_percentage must be a number from 0 to 100",
            "moreInfo": {"rollout_percentage": echoed},
        }
        assert await rollout_of(client, alice) == (None, 0)

    @pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", "1e400"])
    async def test_non_finite_percentages_are_refused(
        self, client: httpx.AsyncClient, alice: Account, raw: str
    ) -> None:
        await setup_app(client, alice)
        content = (
            f'{{"app_id": "{APP_ID}", "channel": "production", "rollout_version": "1.0.1", '
            f'"rollout_percentage": {raw}}}'
        )
        response = await client.post(
            "/channel",
            content=content,
            headers={**alice.headers, "content-type": "application/json"},
        )
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_rollout_percentage",
            "message": "rollout_percentage must be a number from 0 to 100",
            "moreInfo": {"rollout_percentage": None},
        }


# --- what /updates offers ---------------------------------------------------------------------


def ask(device_id: str) -> dict[str, Any]:
    """An Android plugin 7.0.0 on bundle 1.0.0 asking for an update."""
    return {
        "platform": "android",
        "device_id": device_id,
        "app_id": APP_ID,
        "custom_id": "",
        "version_build": "1.0.0",
        "version_code": "1",
        "version_os": "13",
        "version_name": "1.0.0",
        "plugin_version": "7.0.0",
        "is_emulator": False,
        "is_prod": True,
    }


async def offered(client: httpx.AsyncClient, devices: list[str]) -> dict[str, str | None]:
    """device → the version ``/updates`` offers it (None: no new version)."""
    answers: dict[str, str | None] = {}
    for device in devices:
        response = await client.post("/updates", json=ask(device))
        assert response.status_code == 200, response.text
        body = response.json()
        if "error" in body:
            assert body["error"] == "no_new_version_available", body
            answers[device] = None
        else:
            answers[device] = body["version"]
    return answers


class TestUpdatesFollowTheRollout:
    async def test_half_the_devices_get_the_rollout_bundle_every_time(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        await setup_app(client, alice)
        await post_channel(client, alice, rollout_version="1.0.1", rollout_percentage=50)
        devices = device_ids(200, seed=2)
        first = await offered(client, devices)
        assert set(first.values()) == {None, "1.0.1"}
        share = sum(v == "1.0.1" for v in first.values()) / len(devices)
        assert 0.35 <= share <= 0.65
        assert await offered(client, devices) == first
        rollout_id = await bundle_id(app, "1.0.1", APP_ID)
        assert first == {
            d: "1.0.1" if rollout_draw(APP_ID, d, rollout_id) < 50 else None for d in devices
        }

    async def test_a_deleted_rollout_bundle_falls_back_to_the_main_bundle(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await setup_app(client, alice)
        await post_channel(client, alice, rollout_version="1.0.1", rollout_percentage=100)
        devices = device_ids(5, seed=3)
        assert set((await offered(client, devices)).values()) == {"1.0.1"}
        deleted = await client.delete(
            "/bundle", params={"app_id": APP_ID, "version": "1.0.1"}, headers=alice.headers
        )
        assert deleted.status_code == 200, deleted.text
        assert set((await offered(client, devices)).values()) == {None}
