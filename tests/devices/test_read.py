"""``GET /device``: one device or a cursor-paginated list, and the app checks every ``/device``
route shares (spec §3.5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.bundles.helpers import (
    APP_ID,
    JS_ISO,
    OTHER_APP_ID,
    UNKNOWN_APP_ID,
    bundle_id,
    create_app,
    create_bundle,
    create_channel,
    error,
    headers,
    insert_device,
    insert_devices,
    no_access,
    overrides,
)
from tests.conftest import Account, error_of, make_key
from tests.devices.helpers import (
    DEVICE,
    DEVICE_FIELDS,
    OTHER_DEVICE,
    get_device,
    link,
    list_page,
)


class TestAuthentication:
    @pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
    async def test_no_key_is_401(self, client: httpx.AsyncClient, method: str) -> None:
        response = await client.request(method, "/device", params={"app_id": APP_ID})
        assert response.status_code == 401
        assert response.json() == error("no_key_provided", "No key provided")

    @pytest.mark.parametrize("method", ["POST", "DELETE"])
    async def test_read_key_cannot_change_overrides(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str, method: str
    ) -> None:
        read = await make_key(client, alice, mode="read")
        response = await client.request(
            method,
            "/device",
            headers=headers(read["key"]),
            json={"app_id": APP_ID, "device_id": DEVICE, "channel": "beta"},
        )
        assert response.status_code == 401
        assert response.json() == error("invalid_apikey", "Invalid apikey")

    async def test_upload_key_cannot_read_devices(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        upload = await make_key(client, alice, mode="upload")
        response = await client.get(
            "/device", params={"app_id": APP_ID}, headers=headers(upload["key"])
        )
        assert error_of(response) == (401, "invalid_apikey")


class TestGetOneDevice:
    async def test_returns_the_public_projection(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        moment = datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)
        await insert_device(
            app,
            DEVICE,
            updated_at=moment,
            platform="android",
            plugin_version="7.0.0",
            os_version="14",
            version_build="1.2.0",
            version_name="1.0.0",
            custom_id="user-42",
            is_prod=False,
            is_emulator=True,
            key_id="abcd",
            default_channel="beta",
        )
        response = await get_device(client, alice.headers, DEVICE)
        assert response.status_code == 200
        assert response.json() == {
            "updated_at": "2026-03-04T05:06:07.890Z",
            "device_id": DEVICE,
            "custom_id": "user-42",
            "is_prod": False,
            "is_emulator": True,
            "version_name": "1.0.0",
            "version": None,
            "app_id": APP_ID,
            "platform": "android",
            "plugin_version": "7.0.0",
            "os_version": "14",
            "version_build": "1.2.0",
            "key_id": "abcd",
        }

    async def test_version_is_the_id_of_the_bundle_the_device_runs(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        bundle = await create_bundle(client, alice, "1.0.0")
        await insert_device(app, DEVICE, version_name="1.0.0")
        response = await get_device(client, alice.headers, DEVICE)
        assert response.status_code == 200
        assert response.json()["version"] == bundle["id"]

    async def test_version_of_a_device_on_builtin_is_the_builtin_bundle(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        await insert_device(app, DEVICE, version_name="builtin")
        response = await get_device(client, alice.headers, DEVICE)
        assert response.json()["version"] == await bundle_id(app, "builtin")

    async def test_channel_is_shown_when_the_device_has_an_override(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        await create_channel(app, "beta")
        await insert_device(app, DEVICE)
        assert (await link(client, alice.headers, DEVICE)).status_code == 200
        response = await get_device(client, alice.headers, DEVICE)
        assert response.status_code == 200
        body = response.json()
        assert set(body) == DEVICE_FIELDS | {"channel"}
        assert body["channel"] == "beta"

    async def test_device_id_is_matched_case_insensitively(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        await insert_device(app, DEVICE)
        response = await get_device(client, alice.headers, DEVICE.upper())
        assert response.status_code == 200
        assert response.json()["device_id"] == DEVICE

    async def test_unknown_device_is_404(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        response = await get_device(client, alice.headers, "invalid_device")
        assert response.status_code == 404
        assert response.json() == error(
            "device_not_found", "Cannot find device", {"device_id": "invalid_device"}
        )

    async def test_a_device_of_another_app_is_not_found(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        await create_app(client, alice, OTHER_APP_ID)
        await insert_device(app, DEVICE, OTHER_APP_ID)
        response = await get_device(client, alice.headers, DEVICE)
        assert error_of(response) == (404, "device_not_found")

    async def test_read_key_may_read(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        read = await make_key(client, alice, mode="read")
        await insert_device(app, DEVICE)
        response = await get_device(client, headers(read["key"]), DEVICE)
        assert response.status_code == 200
        assert response.json()["device_id"] == DEVICE


class TestAppChecks:
    """``app_id`` handling and access, common to every ``/device`` route."""

    async def test_missing_app_id_is_400(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await client.get("/device", headers=alice.headers)
        assert response.status_code == 400
        assert response.json()["error"] == "missing_app_id"

    @pytest.mark.parametrize("method", ["GET", "DELETE"])
    async def test_invalid_app_id_is_400(
        self, client: httpx.AsyncClient, alice: Account, method: str
    ) -> None:
        response = await client.request(
            method,
            "/device",
            headers=alice.headers,
            params={"app_id": "invalid_app", "device_id": DEVICE},
        )
        assert response.status_code == 400
        assert response.json() == error(
            "invalid_app_id", "App ID must be a reverse domain string", {"app_id": "invalid_app"}
        )

    async def test_legacy_appid_parameter_is_accepted(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        await insert_device(app, DEVICE)
        response = await client.get("/device", params={"appid": APP_ID}, headers=alice.headers)
        assert response.status_code == 200
        assert [d["device_id"] for d in response.json()["data"]] == [DEVICE]

    @pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
    async def test_foreign_app_is_refused_like_an_unknown_one(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        alice: Account,
        bob: Account,
        owned_app: str,
        method: str,
    ) -> None:
        await create_channel(app, "beta")
        await insert_device(app, DEVICE)
        assert (await link(client, alice.headers, DEVICE)).status_code == 200
        bodies = []
        for app_id in (APP_ID, UNKNOWN_APP_ID):
            response = await client.request(
                method,
                "/device",
                headers=bob.headers,
                params={"app_id": app_id, "device_id": DEVICE} if method == "GET" else None,
                json={"app_id": app_id, "device_id": DEVICE, "channel": "beta"}
                if method != "GET"
                else None,
            )
            assert response.status_code == 400
            bodies.append(response.json())
        assert bodies == [
            no_access("cannot_access_app", APP_ID),
            no_access("cannot_access_app", UNKNOWN_APP_ID),
        ]
        assert await overrides(app) != {}

    async def test_key_limited_to_another_app_is_refused(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        await create_app(client, alice, OTHER_APP_ID)
        await insert_device(app, DEVICE)
        limited = await make_key(client, alice, limited_to_apps=[OTHER_APP_ID])
        response = await get_device(client, headers(limited["key"]), DEVICE)
        assert response.status_code == 400
        assert response.json() == no_access("cannot_access_app", APP_ID)


class TestListDevices:
    async def test_no_devices_is_an_empty_last_page(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str
    ) -> None:
        assert await list_page(client, alice.headers) == {"data": [], "hasMore": False}

    async def test_rows_carry_the_projection_and_the_override(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        await create_channel(app, "beta")
        await insert_device(app, DEVICE, updated_at=datetime.now(UTC))
        await insert_device(app, OTHER_DEVICE, updated_at=datetime.now(UTC) - timedelta(hours=1))
        assert (await link(client, alice.headers, OTHER_DEVICE)).status_code == 200
        page = await list_page(client, alice.headers)
        assert page["hasMore"] is False
        assert "nextCursor" not in page
        first, second = page["data"]
        assert set(first) == DEVICE_FIELDS
        assert first["device_id"] == DEVICE
        assert JS_ISO.match(first["updated_at"])
        assert second["device_id"] == OTHER_DEVICE
        assert second["channel"] == "beta"

    async def test_cursor_pages_cover_every_device_once_in_order(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        expected = await insert_devices(app, 120)
        seen: list[str] = []
        pages: list[tuple[int, bool]] = []
        params: dict[str, Any] = {}
        while True:
            page = await list_page(client, alice.headers, **params)
            seen += [device["device_id"] for device in page["data"]]
            pages.append((len(page["data"]), page["hasMore"]))
            if not page["hasMore"]:
                assert "nextCursor" not in page
                break
            params = {"cursor": page["nextCursor"]}
        assert pages == [(50, True), (50, True), (20, False)]
        assert seen == expected

    async def test_ties_on_updated_at_are_ordered_by_device_id(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        moment = datetime(2026, 1, 1, tzinfo=UTC)
        for device_id in ("c", "a", "b"):
            await insert_device(app, device_id, updated_at=moment)
        first = await list_page(client, alice.headers, limit=2)
        assert [d["device_id"] for d in first["data"]] == ["a", "b"]
        assert first["nextCursor"] == "2026-01-01T00:00:00.000000Z|b"
        rest = await list_page(client, alice.headers, limit=2, cursor=first["nextCursor"])
        assert [d["device_id"] for d in rest["data"]] == ["c"]
        assert rest["hasMore"] is False

    async def test_limit_sets_the_page_size(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        expected = await insert_devices(app, 10)
        page = await list_page(client, alice.headers, limit="7")
        assert [d["device_id"] for d in page["data"]] == expected[:7]
        assert page["hasMore"] is True

    async def test_limit_above_100_serves_100(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        await insert_devices(app, 130)
        page = await list_page(client, alice.headers, limit=1000)
        assert len(page["data"]) == 100
        assert page["hasMore"] is True

    @pytest.mark.parametrize("limit", ["0", "-1", "abc", "1.5"])
    async def test_bad_limit_is_400(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str, limit: str
    ) -> None:
        response = await client.get(
            "/device", params={"app_id": APP_ID, "limit": limit}, headers=alice.headers
        )
        assert response.status_code == 400
        assert response.json() == error(
            "invalid_limit", "limit must be a positive integer", {"limit": limit}
        )

    @pytest.mark.parametrize(
        "cursor", ["garbage", "yesterday|abc", "2026-01-01T00:00:00Z|", "2026-13-01T00:00:00Z|abc"]
    )
    async def test_malformed_cursor_is_400(
        self, client: httpx.AsyncClient, alice: Account, owned_app: str, cursor: str
    ) -> None:
        response = await client.get(
            "/device", params={"app_id": APP_ID, "cursor": cursor}, headers=alice.headers
        )
        assert response.status_code == 400
        assert response.json() == error("invalid_cursor", "Invalid cursor", {"cursor": cursor})

    async def test_custom_id_mode_keeps_devices_with_a_custom_id(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        await insert_device(app, DEVICE, custom_id="user-1")
        await insert_device(app, OTHER_DEVICE, custom_id="")
        page = await list_page(client, alice.headers, customIdMode="true")
        assert [d["device_id"] for d in page["data"]] == [DEVICE]
        page = await list_page(client, alice.headers, customIdMode="false")
        assert {d["device_id"] for d in page["data"]} == {DEVICE, OTHER_DEVICE}

    async def test_devices_of_other_apps_are_not_listed(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, owned_app: str
    ) -> None:
        await create_app(client, alice, OTHER_APP_ID)
        await insert_device(app, DEVICE)
        await insert_device(app, OTHER_DEVICE, OTHER_APP_ID)
        page = await list_page(client, alice.headers)
        assert [d["device_id"] for d in page["data"]] == [DEVICE]
