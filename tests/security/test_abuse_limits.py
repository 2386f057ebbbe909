"""Abuse limits (issue 7): what is not already proven elsewhere (docs/security.md lists both).

* every limit is a ``CAPGO_*`` setting, read from the environment;
* a client blocked for failed authentications stays blocked for the configured window (with a
  ``Retry-After`` counting it down), other clients are not, and it is released afterwards; the
  per-key limit likewise lasts one minute;
* the configured body limit applies to the device endpoints, and the configured upload limit
  to tus uploads (and is what ``/files/config`` and tus discovery announce).

The rate limiters' clock is replaced by one the test moves, so nothing here sleeps.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from capgo_server.settings import Settings
from tests.auth.helpers import auth
from tests.bundles.helpers import create_app
from tests.conftest import MonotonicClock, error_of, make_account
from tests.files.support import metadata
from tests.security.support import client_from, configured_app

LIMIT_SETTINGS = [
    ("CAPGO_RATE_LIMIT_FAILED_AUTH", "rate_limit_failed_auth"),
    ("CAPGO_RATE_LIMIT_FAILED_AUTH_WINDOW_SECONDS", "rate_limit_failed_auth_window_seconds"),
    ("CAPGO_RATE_LIMIT_API_KEY_PER_MINUTE", "rate_limit_api_key_per_minute"),
    ("CAPGO_RATE_LIMIT_DEVICE_PER_MINUTE", "rate_limit_device_per_minute"),
    ("CAPGO_RATE_LIMIT_IP_PER_MINUTE", "rate_limit_ip_per_minute"),
    (
        "CAPGO_RATE_LIMIT_CHANNEL_SELF_SAME_CHANNEL_SECONDS",
        "rate_limit_channel_self_same_channel_seconds",
    ),
    ("CAPGO_MAX_BODY_BYTES", "max_body_bytes"),
    ("CAPGO_STATS_MAX_BATCH_EVENTS", "stats_max_batch_events"),
    ("CAPGO_MAX_UPLOAD_BYTES", "max_upload_bytes"),
    ("CAPGO_DOWNLOAD_URL_TTL_SECONDS", "download_url_ttl_seconds"),
]


@pytest.mark.parametrize(("variable", "field"), LIMIT_SETTINGS)
def test_every_limit_is_a_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, field: str
) -> None:
    default = getattr(Settings(), field)
    monkeypatch.setenv(variable, str(default + 17))
    assert getattr(Settings(), field) == default + 17


def retry_after(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    assert response.json()["error"] == "too_many_requests"
    seconds = int(response.headers["retry-after"])
    assert response.json()["moreInfo"]["retry_after"] == seconds
    return seconds


class TestFailedAuthenticationBlock:
    async def test_blocked_for_the_window_then_released(
        self, app: FastAPI, database_url: str, tmp_path: Path, limiter_clock: MonotonicClock
    ) -> None:
        async with configured_app(
            database_url,
            tmp_path / "limits",
            rate_limit_failed_auth=2,
            rate_limit_failed_auth_window_seconds=600,
        ) as (application, http):
            owner = await make_account(application, "fay@example.com", "Fay Org")
            for _ in range(2):
                bad = await http.get("/organization", headers=auth(str(uuid.uuid4())))
                assert error_of(bad) == (401, "invalid_apikey")
            # Even the right key is refused now, for the whole window.
            assert retry_after(await http.get("/organization", headers=owner.headers)) == 600
            limiter_clock.now += 450
            assert retry_after(await http.get("/app", headers=owner.headers)) == 150
            # Another client is not blocked.
            async with client_from(application, "198.51.100.20") as elsewhere:
                other = await elsewhere.get("/organization", headers=owner.headers)
                assert other.status_code == 200
            limiter_clock.now += 150
            released = await http.get("/organization", headers=owner.headers)
            assert released.status_code == 200
            assert [org["id"] for org in released.json()] == [owner.org_id]

    async def test_wrong_sub_keys_and_device_traffic_do_not_block_the_client(
        self, app: FastAPI, database_url: str, tmp_path: Path, limiter_clock: MonotonicClock
    ) -> None:
        """Only a missing, unknown or refused key counts as a failed authentication."""
        async with configured_app(database_url, tmp_path / "limits", rate_limit_failed_auth=2) as (
            application,
            http,
        ):
            owner = await make_account(application, "gus@example.com", "Gus Org")
            for _ in range(3):
                sub = await http.get("/organization", headers=auth(owner.key, "999999"))
                assert error_of(sub) == (401, "invalid_subkey")
                device = await http.post("/updates", json={"app_id": "com.none.app"})
                assert device.status_code == 400
            assert (await http.get("/organization", headers=owner.headers)).status_code == 200


class TestPerKeyLimit:
    async def test_lasts_one_minute(
        self, app: FastAPI, database_url: str, tmp_path: Path, limiter_clock: MonotonicClock
    ) -> None:
        async with configured_app(
            database_url, tmp_path / "limits", rate_limit_api_key_per_minute=3
        ) as (application, http):
            owner = await make_account(application, "hal@example.com", "Hal Org")
            for _ in range(3):
                assert (await http.get("/organization", headers=owner.headers)).status_code == 200
            assert retry_after(await http.get("/organization", headers=owner.headers)) == 60
            limiter_clock.now += 59
            assert retry_after(await http.get("/organization", headers=owner.headers)) == 1
            limiter_clock.now += 1
            assert (await http.get("/organization", headers=owner.headers)).status_code == 200


DEVICE = "4c1c2e0a-57c4-4d1b-9c60-8e965132ae51"


def device_body(padding: int) -> dict[str, Any]:
    return {
        "platform": "android",
        "device_id": DEVICE,
        "app_id": "com.limits.app",
        "version_build": "1.0.0",
        "version_name": "1.0.0",
        "plugin_version": "7.0.0",
        "is_emulator": False,
        "is_prod": True,
        "custom_id": "x" * padding,
    }


class TestConfiguredSizes:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("POST", "/updates"),
            ("POST", "/stats"),
            ("POST", "/channel_self"),
            ("PUT", "/plugin/channel_self"),
        ],
    )
    async def test_body_limit_on_device_endpoints(
        self, app: FastAPI, database_url: str, tmp_path: Path, method: str, path: str
    ) -> None:
        async with configured_app(database_url, tmp_path / "sizes", max_body_bytes=400) as (
            _,
            http,
        ):
            body = device_body(0)
            small = len(json.dumps(body).encode())
            fits = await http.request(method, path, json=device_body(400 - small - 20))
            assert fits.status_code != 413, fits.text
            response = await http.request(method, path, json=device_body(400))
            assert response.status_code == 413
            assert response.json()["error"] == "body_too_large"
            assert response.json()["moreInfo"] == {"max_bytes": 400}

    async def test_stats_batch_limit(self, app: FastAPI, database_url: str, tmp_path: Path) -> None:
        async with configured_app(database_url, tmp_path / "sizes", stats_max_batch_events=3) as (
            _,
            http,
        ):
            event = {**device_body(0), "action": "ping"}
            fits = await http.post("/stats", json=[event] * 3)
            assert fits.status_code == 200, fits.text
            response = await http.post("/stats", json=[event] * 4)
            assert error_of(response) == (400, "invalid_json_body")
            message = "A batch holds at most 3 events, this one has 4"
            assert response.json()["moreInfo"] == {"parseResult": [{"loc": [], "msg": message}]}

    async def test_upload_limit(self, app: FastAPI, database_url: str, tmp_path: Path) -> None:
        async with configured_app(database_url, tmp_path / "sizes", max_upload_bytes=1000) as (
            application,
            http,
        ):
            owner = await make_account(application, "ivy@example.com", "Ivy Org")
            await create_app(http, owner, "com.ivy.app")
            config = await http.get("/files/config")
            assert config.json()["maxUploadLength"] == 1000
            discovery = await http.options("/files/upload/attachments/")
            assert discovery.headers["tus-max-size"] == "1000"

            async def create(length: int, version: str) -> httpx.Response:
                filename = f"orgs/{owner.org_id}/apps/com.ivy.app/{version}.zip"
                return await http.post(
                    "/files/upload/attachments/",
                    headers={
                        **owner.headers,
                        "Tus-Resumable": "1.0.0",
                        "Upload-Length": str(length),
                        "Upload-Metadata": metadata(filename=filename),
                    },
                )

            too_big = await create(1001, "1.0.0")
            assert error_of(too_big) == (413, "upload_too_large")
            assert too_big.json()["moreInfo"] == {"upload_length": 1001, "max_bytes": 1000}
            assert (await create(1000, "1.0.0")).status_code == 201
