"""``GET /``: what this server is, its docs, and the URLs to put in ``capacitor.config``
(capgo_server.home)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
import pytest

from capgo_server import __version__
from capgo_server.settings import Settings
from tests.live import live_server
from tests.test_docs_offline import ABSOLUTE_URL, references

PUBLIC_URL = "https://updates.example.com"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
CAPACITOR_CONFIG_URLS = {
    "updateUrl": f"{PUBLIC_URL}/updates",
    "statsUrl": f"{PUBLIC_URL}/stats",
    "channelUrl": f"{PUBLIC_URL}/channel_self",
    # The official @capgo/cli's: its requests, and the key, go here rather than to Capgo's cloud.
    "localApi": PUBLIC_URL,
    "localApiFiles": PUBLIC_URL,
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The conftest settings, with a public URL unlike the address the tests use."""
    # The trailing slash must not double in the links.
    return settings.model_copy(update={"public_url": PUBLIC_URL + "/"})


class TestRootJson:
    @pytest.mark.parametrize("accept", [None, "*/*", "application/json"])
    async def test_describes_the_server(
        self, client: httpx.AsyncClient, accept: str | None
    ) -> None:
        headers = {"accept": accept} if accept else {}
        response = await client.get("/", headers=headers)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert "accept" in response.headers["vary"].lower()
        body = response.json()
        assert body["name"] == "capgo-server"
        assert body["version"] == __version__
        assert body["public_url"] == PUBLIC_URL
        assert body["links"] == {
            "docs": f"{PUBLIC_URL}/docs",
            "redoc": f"{PUBLIC_URL}/redoc",
            "openapi": f"{PUBLIC_URL}/openapi.json",
            "health": f"{PUBLIC_URL}/ok",
        }
        assert body["capacitor_config"] == {"plugins": {"CapacitorUpdater": CAPACITOR_CONFIG_URLS}}

    async def test_head_answers(self, client: httpx.AsyncClient) -> None:
        for accept in ("application/json", BROWSER_ACCEPT):
            response = await client.head("/", headers={"accept": accept})
            assert response.status_code == 200
            assert response.headers["content-type"].split(";")[0] in (
                "application/json",
                "text/html",
            )

    async def test_links_lead_somewhere(self, client: httpx.AsyncClient) -> None:
        body = (await client.get("/")).json()
        for url in body["links"].values():
            path = url.removeprefix(PUBLIC_URL)
            response = await client.get(path)
            assert response.status_code == 200, url

    async def test_unknown_paths_are_still_not_found(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/index.html")
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"

    async def test_other_methods_are_refused(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/", json={})
        assert response.status_code == 405
        assert set(response.json()) >= {"error", "message"}


class TestRootHtml:
    async def test_a_browser_gets_a_page(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/", headers={"accept": BROWSER_ACCEPT})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        page = response.text
        assert f"capgo-server {__version__}" in page
        for url in (*CAPACITOR_CONFIG_URLS.values(), f"{PUBLIC_URL}/docs", f"{PUBLIC_URL}/redoc"):
            assert url in page, url
        for key in CAPACITOR_CONFIG_URLS:
            assert f"&quot;{key}&quot;" in page, key
        assert "CapacitorUpdater" in page
        # The description's Markdown code spans are shown as code, not as backticks.
        assert "<code>authorization</code>" in page
        assert "`" not in page

    async def test_the_page_loads_nothing_from_elsewhere(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/", headers={"accept": BROWSER_ACCEPT})
        page = response.text
        # Scripts, styles and images: none at all, or only this server's.
        assert "<script" not in page
        loaded = re.findall(r'<(?:link|img|script)[^>]*(?:src|href)="([^"]+)"', page)
        assert loaded  # the favicon
        assert all(url.startswith("/") for url in loaded), loaded
        # The only host named is the public URL's (links and the device URLs).
        assert set(ABSOLUTE_URL.findall(page)) == {"updates.example.com"}
        assert all(url.startswith(("/", PUBLIC_URL)) for url in references(page)), references(page)
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "http" not in policy


def test_a_served_server_tells_devices_its_own_address(database_url: str, tmp_path: Path) -> None:
    """Against ``capgo-server serve``: the URL ``/`` gives for ``updateUrl`` is one a device
    can ask (it answers as the device protocol does, not 404)."""
    with live_server(database_url, tmp_path) as live, live.http(key="") as http_client:
        facts = http_client.get("/").json()
        urls = facts["capacitor_config"]["plugins"]["CapacitorUpdater"]
        assert urls["updateUrl"] == f"{live.base_url}/updates"
        answer = httpx.post(
            urls["updateUrl"],
            json={
                "app_id": "com.example.unknown",
                "device_id": str(uuid.uuid4()),
                "version_name": "1.0.0",
                "version_build": "1.0.0",
                "platform": "android",
                "plugin_version": "7.0.0",
                "is_emulator": False,
                "is_prod": True,
            },
            timeout=30,
        )
        assert answer.status_code != 404
        assert "error" in answer.json()
        page = http_client.get("/", headers={"accept": BROWSER_ACCEPT})
        assert page.status_code == 200
        assert f"{live.base_url}/channel_self" in page.text
