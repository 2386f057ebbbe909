"""``POST /stats``: single events and batches, counted per bundle (spec §5.4)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from capgo_server.models import DailyVersion, Device, DeviceActivity, StatsEvent
from capgo_server.plugin.stats_actions import ALLOWED_STATS_ACTIONS
from tests.apps.helpers import rows
from tests.conftest import Account
from tests.plugin.seed import APP_ID, DEVICE, base_data, seed_app
from tests.plugin.updates_support import not_registered

OK = {"status": "ok"}
CANNOT_PARSE = "Cannot parse body"
UNKNOWN_ACTION = (
    "Unknown action {}: a device may report only the actions listed in /openapi.json "
    "(StatsBody, action)"
)


@pytest.fixture
async def seeded(client: httpx.AsyncClient, alice: Account) -> str:
    await seed_app(client, alice)
    return APP_ID


def stat(**fields: Any) -> dict[str, Any]:
    return base_data(**{"action": "set", **fields})


async def post(client: httpx.AsyncClient, body: Any, path: str = "/stats") -> httpx.Response:
    return await client.post(path, json=body)


async def events(app: FastAPI, **where: Any) -> list[tuple[str, str | None]]:
    return [(e.action, e.version_name) for e in await rows(app, StatsEvent, **where)]


async def counters(app: FastAPI) -> dict[str, tuple[int, int, int, int]]:
    """version_name → (get, fail, install, uninstall) of today's daily_version rows."""
    return {
        r.version_name: (r.get, r.fail, r.install, r.uninstall)
        for r in await rows(app, DailyVersion, app_id=APP_ID)
    }


class TestSingleEvent:
    async def test_set_records_the_device_the_event_and_an_install(
        self, client: httpx.AsyncClient, app: FastAPI, seeded: str
    ) -> None:
        response = await post(client, stat(device_id=DEVICE.upper()))
        assert response.status_code == 200
        assert response.json() == OK
        (device,) = await rows(app, Device, app_id=APP_ID, device_id=DEVICE)
        assert (device.version_name, device.platform, device.os_version) == (
            "1.0.0",
            "android",
            "13",
        )
        assert await events(app, app_id=APP_ID) == [("set", "1.0.0")]
        assert await counters(app) == {"1.0.0": (0, 0, 1, 0)}
        (activity,) = await rows(app, DeviceActivity, app_id=APP_ID)
        assert activity.device_id == DEVICE

    @pytest.mark.parametrize(
        "fields",
        [
            {"platform": "p" * 17},
            {"version_os": "9" * 65},
            {"plugin_version": "7" * 33},
            {"custom_id": "c" * 256},
            {"key_id": "k" * 21},
            {"version_name": "1.0.0:" + "f" * 1019},
            {"is_prod": "true"},
            {"device_id": "not-a-uuid"},
        ],
    )
    async def test_fields_that_do_not_fit_are_refused(
        self, client: httpx.AsyncClient, app: FastAPI, seeded: str, fields: dict[str, Any]
    ) -> None:
        response = await post(client, stat(**fields))
        assert response.status_code == 400
        payload = response.json()
        assert (payload["error"], payload["message"]) == ("invalid_json_body", CANNOT_PARSE)
        assert [e["loc"] for e in payload["moreInfo"]["parseResult"]] == [list(fields)]
        assert await events(app, app_id=APP_ID) == []

    async def test_the_plugin_alias_answers_the_same(
        self, client: httpx.AsyncClient, app: FastAPI, seeded: str
    ) -> None:
        response = await post(client, stat(), path="/plugin/stats")
        assert (response.status_code, response.json()) == (200, OK)
        assert await events(app, app_id=APP_ID) == [("set", "1.0.0")]

    async def test_every_allowed_action_is_logged(
        self, client: httpx.AsyncClient, app: FastAPI, seeded: str
    ) -> None:
        for action in sorted(ALLOWED_STATS_ACTIONS):
            device_id = str(uuid.uuid4())
            body = stat(
                action=action,
                device_id=device_id,
                version_os="16.1",
                custom_id="test2",
                plugin_version="7.0.0",
            )
            response = await post(client, body)
            assert (response.status_code, response.json()) == (200, OK), action
            assert await events(app, device_id=device_id) == [(action, "1.0.0")]
            devices = await rows(app, Device, app_id=APP_ID, device_id=device_id)
            if action.endswith("_fail"):
                assert devices == [], action
            else:
                (device,) = devices
                seen = (device.os_version, device.plugin_version, device.custom_id)
                assert seen == ("16.1", "7.0.0", "test2"), action

    async def test_a_non_semver_native_version_is_refused(
        self, client: httpx.AsyncClient, app: FastAPI, seeded: str
    ) -> None:
        response = await post(client, stat(version_build="invalid_version"))
        assert response.status_code == 400
        assert response.json() == {
            "error": "semver_error",
            "message": "Native version: invalid_version doesn't follow semver convention, "
            "please check https://capgo.app/semver_tester/ to learn more about semver usage "
            "in Capgo",
            "moreInfo": {},
        }
        assert await rows(app, Device, app_id=APP_ID) == []

    async def test_an_unknown_app_is_told_to_back_off(
        self, client: httpx.AsyncClient, app: FastAPI, seeded: str
    ) -> None:
        response = await post(client, stat(app_id="com.nobody.here"))
        assert response.status_code == 429
        assert response.json() == not_registered("com.nobody.here")

    @pytest.mark.parametrize(
        ("action", "message"),
        [
            ("rate_limit_reached", UNKNOWN_ACTION.format("'rate_limit_reached'")),
            ("nonsense", UNKNOWN_ACTION.format("'nonsense'")),
            ("x" * 65, UNKNOWN_ACTION.format(f"'{'x' * 64}...'")),
            (None, CANNOT_PARSE),
        ],
    )
    async def test_an_unknown_or_missing_action_is_refused(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        seeded: str,
        action: str | None,
        message: str,
    ) -> None:
        body = {k: v for k, v in stat(action=action).items() if v is not None}
        response = await post(client, body)
        assert response.status_code == 400
        payload = response.json()
        assert payload["error"] == "invalid_json_body"
        assert payload["message"] == message
        assert [e["loc"] for e in payload["moreInfo"]["parseResult"]] == [["action"]]
        assert set(payload) == {"error", "message", "moreInfo"}
        assert await events(app, app_id=APP_ID) == []

    async def test_version_os_is_required(
        self, client: httpx.AsyncClient, app: FastAPI, seeded: str
    ) -> None:
        body = stat()
        del body["version_os"]
        response = await post(client, body)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_json_body"
        assert [e["loc"] for e in response.json()["moreInfo"]["parseResult"]] == [["version_os"]]

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({"device_id": DEVICE}, "App ID is required"),
            ({"app_id": 12, "device_id": DEVICE}, "App ID is required"),
            ({"app_id": "not-an-app-id"}, "App ID must be a reverse domain string"),
            ("just a string", "App ID is required"),
        ],
    )
    async def test_the_app_id_is_checked_first(
        self, client: httpx.AsyncClient, seeded: str, body: Any, message: str
    ) -> None:
        response = await post(client, body)
        assert response.status_code == 400
        assert response.json() == {"error": "invalid_app_id", "message": message, "moreInfo": {}}

    async def test_unparseable_json_is_refused(
        self, client: httpx.AsyncClient, seeded: str
    ) -> None:
        response = await client.post(
            "/stats", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_json_parse_body",
            "message": "Invalid JSON body",
            "moreInfo": {},
        }

    @pytest.mark.parametrize(
        ("missing", "code", "message"),
        [
            ("device_id", "missing_device_id", "Cannot find device_id"),
        ],
    )
    async def test_missing_device_id(
        self, client: httpx.AsyncClient, seeded: str, missing: str, code: str, message: str
    ) -> None:
        body = stat()
        del body[missing]
        response = await post(client, body)
        assert response.status_code == 400
        assert response.json() == {"error": code, "message": message, "moreInfo": {}}

    async def test_an_unknown_bundle_is_reported(
        self, client: httpx.AsyncClient, app: FastAPI, seeded: str
    ) -> None:
        response = await post(client, stat(version_name="9.9.9"))
        assert response.status_code == 200
        assert response.json() == {
            "error": "version_not_found",
            "message": "Version not found",
            "app_id": APP_ID,
            "version_name": "9.9.9",
        }
        assert await events(app, app_id=APP_ID) == []
        assert await rows(app, Device, app_id=APP_ID) == []

    @pytest.mark.parametrize(
        ("version_name", "logged"), [("builtin", "1.0.0"), ("unknown", "unknown")]
    )
    async def test_builtin_and_unknown_are_accepted(
        self, client: httpx.AsyncClient, app: FastAPI, seeded: str, version_name: str, logged: str
    ) -> None:
        response = await post(client, stat(action="get", version_name=version_name))
        assert (response.status_code, response.json()) == (200, OK)
        assert await events(app, app_id=APP_ID) == [("get", logged)]


class TestDefaultChannel:
    async def test_saved_updated_and_reset(
        self, client: httpx.AsyncClient, app: FastAPI, seeded: str
    ) -> None:
        async def default_channel() -> str | None:
            (device,) = await rows(app, Device, app_id=APP_ID, device_id=DEVICE)
            value: str | None = device.default_channel
            return value

        for sent, stored in [("beta", "beta"), ("development", "development"), ("", None)]:
            response = await post(client, stat(action="ping", defaultChannel=sent))
            assert (response.status_code, response.json()) == (200, OK)
            assert await default_channel() == stored


class TestCounters:
    async def test_set_installs_the_new_bundle_and_uninstalls_the_old_one(
        self, client: httpx.AsyncClient, app: FastAPI, seeded: str
    ) -> None:
        body = stat(version_name="1.0.1", old_version_name="1.0.0")
        response = await post(client, body)
        assert (response.status_code, response.json()) == (200, OK)
        assert await counters(app) == {"1.0.1": (0, 0, 1, 0), "1.0.0": (0, 0, 0, 1)}
        assert sorted(await events(app, app_id=APP_ID)) == [
            ("set", "1.0.1"),
            ("uninstall", "1.0.0"),
        ]

    async def test_set_of_the_same_bundle_uninstalls_nothing(
        self, client: httpx.AsyncClient, app: FastAPI, seeded: str
    ) -> None:
        response = await post(client, stat(old_version_name="1.0.0"))
        assert (response.status_code, response.json()) == (200, OK)
        assert await counters(app) == {"1.0.0": (0, 0, 1, 0)}
        assert await events(app, app_id=APP_ID) == [("set", "1.0.0")]

    @pytest.mark.parametrize("fields", [{"is_emulator": True}, {"is_prod": False}])
    async def test_emulators_and_dev_builds_install_nothing(
        self, client: httpx.AsyncClient, app: FastAPI, seeded: str, fields: dict[str, Any]
    ) -> None:
        response = await post(client, stat(old_version_name="1.0.1", **fields))
        assert (response.status_code, response.json()) == (200, OK)
        assert await counters(app) == {}
        assert await events(app, app_id=APP_ID) == [("set", "1.0.0")]

    @pytest.mark.parametrize(
        ("plugin_version", "counted"),
        [
            ("7.17.0", True),
            ("8.1.0", True),
            ("7.16.9", False),
            ("6.14.25", True),
            ("6.14.24", False),
        ],
    )
    async def test_download_fail_counts_only_from_recent_plugins(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        seeded: str,
        plugin_version: str,
        counted: bool,
    ) -> None:
        body = stat(action="download_fail", plugin_version=plugin_version)
        response = await post(client, body)
        assert (response.status_code, response.json()) == (200, OK)
        assert await counters(app) == ({"1.0.0": (0, 1, 0, 0)} if counted else {})
        assert await events(app, app_id=APP_ID) == [("download_fail", "1.0.0")]

    async def test_other_failures_always_count(
        self, client: httpx.AsyncClient, app: FastAPI, seeded: str
    ) -> None:
        response = await post(client, stat(action="unzip_fail", plugin_version="5.0.0"))
        assert (response.status_code, response.json()) == (200, OK)
        assert await counters(app) == {"1.0.0": (0, 1, 0, 0)}

    async def test_composite_names_are_logged_verbatim_and_counted_for_their_bundle(
        self, client: httpx.AsyncClient, app: FastAPI, seeded: str
    ) -> None:
        names = ["1.0.1:main.js", "1.0.1:assets/app.css"]
        body = [
            stat(action="download_manifest_file_fail", version_name=name, plugin_version="7.20.0")
            for name in names
        ]
        response = await post(client, body)
        assert response.status_code == 200
        assert response.json() == {
            "status": "ok",
            "results": [{"status": "ok", "index": 0}, {"status": "ok", "index": 1}],
        }
        assert await events(app, app_id=APP_ID) == [
            ("download_manifest_file_fail", name) for name in names
        ]
        assert await counters(app) == {"1.0.1": (0, 2, 0, 0)}
        assert await rows(app, Device, app_id=APP_ID) == []

    async def test_a_long_composite_name_is_kept_whole_in_the_log(
        self, client: httpx.AsyncClient, app: FastAPI, seeded: str
    ) -> None:
        name = "1.0.1:" + "assets/" * 80 + "main.js"
        response = await post(client, stat(action="download_manifest_start", version_name=name))
        assert (response.status_code, response.json()) == (200, OK)
        assert await events(app, app_id=APP_ID) == [("download_manifest_start", name)]
        (device,) = await rows(app, Device, app_id=APP_ID, device_id=DEVICE)
        assert device.version_name == name[:255]

    async def test_a_leading_colon_is_no_separator(
        self, client: httpx.AsyncClient, app: FastAPI, seeded: str
    ) -> None:
        response = await post(client, stat(action="get", version_name=":1.0.0"))
        assert response.json() == {
            "error": "version_not_found",
            "message": "Version not found",
            "app_id": APP_ID,
            "version_name": ":1.0.0",
        }


class TestBatch:
    async def test_every_event_is_answered(
        self, client: httpx.AsyncClient, app: FastAPI, seeded: str
    ) -> None:
        response = await post(client, [stat(action="get"), stat(action="set")])
        assert response.status_code == 200
        assert response.json() == {
            "status": "ok",
            "results": [{"status": "ok", "index": 0}, {"status": "ok", "index": 1}],
        }
        assert await events(app, app_id=APP_ID) == [("get", "1.0.0"), ("set", "1.0.0")]

    async def test_a_bad_event_fails_alone(
        self, client: httpx.AsyncClient, app: FastAPI, seeded: str
    ) -> None:
        batch = [
            stat(action="get"),
            stat(action="invalid_action"),
            stat(version_build="not semver"),
            stat(version_name="9.9.9"),
            stat(device_id=None),
        ]
        response = await post(client, batch)
        assert response.status_code == 200
        semver = (
            "Native version: not semver doesn't follow semver convention, please check "
            "https://capgo.app/semver_tester/ to learn more about semver usage in Capgo"
        )
        assert response.json() == {
            "status": "ok",
            "results": [
                {"status": "ok", "index": 0},
                error_entry(1, "invalid_json_body", UNKNOWN_ACTION.format("'invalid_action'")),
                error_entry(2, "semver_error", semver),
                {
                    **error_entry(3, "version_not_found", "Version not found"),
                    "moreInfo": {"app_id": APP_ID, "version_name": "9.9.9"},
                },
                error_entry(4, "missing_device_id", "Cannot find device_id"),
            ],
        }
        assert await events(app, app_id=APP_ID) == [("get", "1.0.0")]

    async def test_a_batch_past_the_setting_is_refused_whole(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, seeded: str
    ) -> None:
        limit = app.state.settings.stats_max_batch_events
        response = await post(client, [stat()] * (limit + 1))
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_json_body",
            "message": f"A batch holds at most {limit} events, this one has {limit + 1}",
            "moreInfo": {
                "parseResult": [
                    {
                        "loc": [],
                        "msg": f"A batch holds at most {limit} events, this one has {limit + 1}",
                    }
                ]
            },
        }
        assert await events(app, app_id=APP_ID) == []
        assert await rows(app, Device, app_id=APP_ID) == []

    async def test_a_full_batch_from_the_plugin_is_taken(
        self, client: httpx.AsyncClient, app: FastAPI, seeded: str
    ) -> None:
        limit = app.state.settings.stats_max_batch_events
        assert limit == 200  # the plugin queues at most 200 events and sends them at once
        response = await post(client, [stat(action="ping")] * limit)
        assert response.status_code == 200
        assert response.json()["results"] == [{"status": "ok", "index": i} for i in range(limit)]
        assert len(await events(app, app_id=APP_ID)) == limit

    async def test_an_event_naming_another_device_fails_alone_and_creates_nothing(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, seeded: str
    ) -> None:
        other = str(uuid.uuid4())
        batch = [stat(), stat(device_id=other), stat(device_id=DEVICE.upper(), action="get")]
        response = await post(client, batch)
        assert response.status_code == 200
        assert response.json() == {
            "status": "ok",
            "results": [
                {"status": "ok", "index": 0},
                error_entry(
                    1, "mixed_device_ids", "All events in a batch must come from the same device"
                ),
                {"status": "ok", "index": 2},
            ],
        }
        listed = await client.get("/device", params={"app_id": APP_ID}, headers=alice.headers)
        assert [d["device_id"] for d in listed.json()["data"]] == [DEVICE]
        assert {e.device_id for e in await rows(app, StatsEvent, app_id=APP_ID)} == {DEVICE}
        assert await counters(app) == {"1.0.0": (0, 0, 1, 0)}

    async def test_an_empty_batch(self, client: httpx.AsyncClient, seeded: str) -> None:
        response = await post(client, [])
        assert (response.status_code, response.json()) == (200, {"status": "ok", "results": []})

    async def test_mixed_apps_are_refused_whole(
        self, client: httpx.AsyncClient, app: FastAPI, seeded: str
    ) -> None:
        response = await post(client, [stat(), stat(app_id="com.other.app")])
        assert response.status_code == 200
        assert response.json() == {
            "error": "mixed_app_ids",
            "message": "All events in a batch must have the same app_id",
        }
        assert await events(app, app_id=APP_ID) == []

    @pytest.mark.parametrize(
        ("app_id", "message"),
        [(None, "App ID is required"), ("bad", "App ID must be a reverse domain string")],
    )
    async def test_a_later_bad_app_id_refuses_the_batch(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        seeded: str,
        app_id: str | None,
        message: str,
    ) -> None:
        later = {k: v for k, v in stat(app_id=app_id).items() if v is not None}
        response = await post(client, [stat(), later])
        assert response.status_code == 200
        assert response.json() == {"error": "invalid_app_id", "message": message}
        assert await events(app, app_id=APP_ID) == []

    async def test_a_bad_first_app_id_is_a_400(
        self, client: httpx.AsyncClient, seeded: str
    ) -> None:
        response = await post(client, [stat(app_id="bad"), stat()])
        assert response.status_code == 400
        assert response.json() == {
            "error": "invalid_app_id",
            "message": "App ID must be a reverse domain string",
            "moreInfo": {},
        }

    async def test_an_unknown_app_fails_every_event(
        self, client: httpx.AsyncClient, seeded: str
    ) -> None:
        other = "com.nobody.here"
        response = await post(client, [stat(app_id=other), stat(app_id=other)])
        assert response.status_code == 200
        message = not_registered(other)["message"]
        assert response.json() == {
            "status": "ok",
            "results": [
                error_entry(0, "on_premise_app", message),
                error_entry(1, "on_premise_app", message),
            ],
        }


def error_entry(index: int, code: str, message: str) -> dict[str, Any]:
    return {"status": "error", "error": code, "message": message, "index": index}
