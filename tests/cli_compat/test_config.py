"""The official CLI's bootstrap and private routes (plan §1.1, §1.4): ``/private/config``,
``/private/events``, and the refused ``/files/upload_link`` and ``/private/set_manifest``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import Account

MAX_EVENT_BYTES = 64 * 1024


class TestPrivateConfig:
    @pytest.mark.parametrize(
        "headers", [{}, {"capgkey": "not-a-key"}, {"authorization": "Bearer anon"}]
    )
    async def test_public_and_names_this_server(
        self, client: httpx.AsyncClient, app: FastAPI, headers: dict[str, str]
    ) -> None:
        response = await client.get("/private/config", headers=headers)
        assert response.status_code == 200
        assert response.json() == {
            "supaHost": app.state.settings.public_url.rstrip("/"),
            "supaKey": "capgo-server-anon",
            "useNewFinalizeBundleUpload": True,
        }

    async def test_files_config_still_forces_tus(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/files/config")
        assert response.status_code == 200
        assert response.json()["TUSUploadForced"] is True
        assert response.json()["partialUpload"] is False

    async def test_not_in_the_api_document(self, client: httpx.AsyncClient) -> None:
        paths = (await client.get("/openapi.json")).json()["paths"]
        for path in ("/private/config", "/private/events", "/files/upload_link"):
            assert path not in paths
        assert "/private/set_manifest" not in paths


class TestEvents:
    async def test_accepted_and_dropped(self, client: httpx.AsyncClient, alice: Account) -> None:
        event = {"channel": "bundle", "event": "Bundle Uploaded", "tracking_version": 2}
        response = await client.post("/private/events", json=event, headers={"capgkey": alice.key})
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    @pytest.mark.parametrize("content", [b"", b"not json", b"[1, 2]"])
    async def test_any_small_body(self, client: httpx.AsyncClient, content: bytes) -> None:
        response = await client.post("/private/events", content=content)
        assert (response.status_code, response.json()) == (200, {"status": "ok"})

    async def test_a_body_at_the_cap_is_accepted(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/private/events", content=b"x" * MAX_EVENT_BYTES)
        assert response.status_code == 200

    async def test_a_larger_body_is_413(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/private/events", content=b"x" * (MAX_EVENT_BYTES + 1))
        assert response.status_code == 413
        assert response.json() == {
            "error": "body_too_large",
            "message": f"Request body exceeds {MAX_EVENT_BYTES} bytes",
            "moreInfo": {"max_bytes": MAX_EVENT_BYTES},
        }

    async def test_a_larger_streamed_body_is_413(self, client: httpx.AsyncClient) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(20):
                yield b"x" * 8192

        response = await client.post("/private/events", content=chunks())
        assert response.status_code == 413
        assert response.json()["error"] == "body_too_large"


class TestRefusedUploadModes:
    async def test_upload_link_says_tus_only(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await client.post(
            "/files/upload_link",
            json={"app_id": "com.alice.app", "name": "1.0.1", "version": 0},
            headers={"authorization": alice.key, "capgkey": alice.key},
        )
        assert response.status_code == 400
        message = (
            "This server takes bundle uploads over tus only: run the upload without --zip "
            "(tus is the default)."
        )
        assert response.json() == {
            "error": "tus_only",
            "message": message,
            "moreInfo": {},
            "status": message,
        }

    async def test_set_manifest_says_delta_is_off(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await client.post(
            "/private/set_manifest",
            json={"app_id": "com.alice.app", "name": "1.0.4", "manifest": []},
            headers={"authorization": alice.key, "capgkey": alice.key},
        )
        assert response.status_code == 400
        message = (
            "Delta (partial) uploads are off on this server: upload without --delta or "
            "--delta-only and the whole bundle is sent."
        )
        assert response.json() == {
            "error": "delta_not_supported",
            "message": message,
            "moreInfo": {},
            "status": message,
        }
