"""``/docs`` and ``/redoc`` need nothing but this server; every operation has a summary for
people (capgo_server.docs_pages, capgo_server.summaries)."""

from __future__ import annotations

import http.client
import re
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from capgo_server.summaries import SUMMARIES
from tests.live import live_server

PAGES = ("/docs", "/redoc")
#: What each kind of file the pages load must be served as.
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
#: Enough of each file to know it is the real one, not an error page.
SIGNATURES = {
    "swagger-ui-bundle.js": b"SwaggerUIBundle",
    "redoc.standalone.js": b"Redoc",
    "swagger-ui.css": b".swagger-ui",
    "favicon.png": b"\x89PNG",
}
#: The host (and port) of every absolute URL in a text.
ABSOLUTE_URL = re.compile(r"https?://([a-z0-9.\-]+(?::\d+)?)", re.IGNORECASE)


class _References(HTMLParser):
    """The ``src`` and ``href`` of every tag of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def references(page: str) -> list[str]:
    parser = _References()
    parser.feed(page)
    return parser.urls


def assert_is_the_asset(url: str, response: httpx.Response) -> None:
    name = url.rsplit("/", 1)[1]
    assert response.status_code == 200, url
    expected = CONTENT_TYPES[Path(name).suffix]
    assert response.headers["content-type"].split(";")[0] == expected, url
    assert SIGNATURES[name] in response.content[:200_000], url


class TestDocsPages:
    @pytest.mark.parametrize("page", PAGES)
    async def test_every_asset_comes_from_this_server(
        self, client: httpx.AsyncClient, page: str
    ) -> None:
        response = await client.get(page)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        # No host at all in the page: every URL is a path of this server.
        assert ABSOLUTE_URL.findall(response.text) == []
        assert "fonts.googleapis" not in response.text
        urls = references(response.text)
        assert urls, "the page loads nothing: it would be blank"
        for url in urls:
            assert url.startswith("/docs/static/"), url
            assert_is_the_asset(url, await client.get(url))
        assert "'/openapi.json'" in response.text or '"/openapi.json"' in response.text

    async def test_both_uis_load_their_scripts(self, client: httpx.AsyncClient) -> None:
        swagger = references((await client.get("/docs")).text)
        redoc = references((await client.get("/redoc")).text)
        assert {"/docs/static/swagger-ui-bundle.js", "/docs/static/swagger-ui.css"} <= set(swagger)
        assert "/docs/static/redoc.standalone.js" in redoc

    async def test_swagger_ui_does_not_call_the_public_validator(
        self, client: httpx.AsyncClient
    ) -> None:
        """Swagger UI's default validator sends the document's URL to validator.swagger.io."""
        page = (await client.get("/docs")).text
        assert '"validatorUrl": null' in page

    @pytest.mark.parametrize("page", PAGES)
    async def test_the_browser_may_load_nothing_from_elsewhere(
        self, client: httpx.AsyncClient, page: str
    ) -> None:
        policy = (await client.get(page)).headers["content-security-policy"]
        directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
        assert directives["default-src"] == "'self'"
        for sources in directives.values():
            assert "http" not in sources, policy
            assert "*" not in sources, policy

    @pytest.mark.parametrize("page", PAGES)
    async def test_no_key_needed_and_head_works(self, client: httpx.AsyncClient, page: str) -> None:
        response = await client.head(page)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")

    async def test_the_oauth2_redirect_page_is_gone(self, client: httpx.AsyncClient) -> None:
        """The keys are apiKey headers: Swagger UI's OAuth2 page has nothing to do here."""
        for path in ("/docs/oauth2-redirect", "/docs/static/oauth2-redirect.html"):
            response = await client.get(path)
            assert response.status_code == 404, path
            assert response.json()["error"] == "not_found"
        assert "oauth2RedirectUrl" not in (await client.get("/docs")).text

    async def test_the_pages_stay_out_of_the_document(self, client: httpx.AsyncClient) -> None:
        paths = (await client.get("/openapi.json")).json()["paths"]
        assert not [path for path in paths if path.startswith(("/docs", "/redoc")) or path == "/"]


def _automatic_summaries(app: FastAPI) -> set[str]:
    """What FastAPI would call each operation: its function's name, title-cased."""
    return {
        context.original_route.name.replace("_", " ").title()
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
    }


class TestSummaries:
    async def test_every_operation_has_a_summary_for_people(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        automatic = _automatic_summaries(app)
        assert "Post Stats" in automatic  # what /stats would be called without a summary
        paths = (await client.get("/openapi.json")).json()["paths"]
        summaries: Counter[str] = Counter()
        for path, operations in paths.items():
            for method, operation in operations.items():
                summary = operation.get("summary", "")
                assert summary.strip(), (method, path)
                assert summary not in automatic, (method, path, summary)
                summaries[summary] += 1
        assert [summary for summary, count in summaries.items() if count > 1] == []
        assert paths["/stats"]["post"]["summary"] == "Report device events"
        assert paths["/updates"]["post"]["summary"] == "Check for an update"

    async def test_every_written_summary_names_a_real_operation(
        self, client: httpx.AsyncClient
    ) -> None:
        """A route renamed or removed must not leave a line behind that no one reads."""
        paths = (await client.get("/openapi.json")).json()["paths"]
        stale = [key for key in SUMMARIES if key[0].lower() not in paths.get(key[1], {})]
        assert stale == []

    async def test_operation_ids_are_unchanged(self, client: httpx.AsyncClient) -> None:
        """Generated clients name their methods after these."""
        paths = (await client.get("/openapi.json")).json()["paths"]
        assert paths["/stats"]["post"]["operationId"] == "post_stats_stats_post"
        assert paths["/bundle"]["get"]["operationId"] == "get_bundle"
        assert paths["/organization"]["put"]["operationId"] == "put_organization"


#: Ways out of the static directory (``__init__.py`` of the package sits one level up).
TRAVERSALS = (
    "/docs/static/../__init__.py",
    "/docs/static/%2e%2e/__init__.py",
    "/docs/static/%2E%2E/%2E%2E/fastapi_offline/__init__.py",
    "/docs/static/..%2f__init__.py",
    "/docs/static/..%2F..%2Ffastapi_offline%2F__init__.py",
    "/docs/static/..%5c__init__.py",
    "/docs/static/%252e%252e/__init__.py",
    "/docs/static/....//__init__.py",
    "/docs/static//etc/passwd",
    "/docs/static/%2fetc%2fpasswd",
    "/docs/static/../../../../../../etc/passwd",
)


def _raw_get(port: int, path: str) -> tuple[int, bytes]:
    """GET with the path sent byte for byte (httpx would resolve the dot segments)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest("GET", path, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_a_served_server_shows_its_docs_without_the_internet(
    database_url: str, tmp_path: Path
) -> None:
    """Against ``capgo-server serve``: both pages and every file they name answer from this
    server, nothing names another host, and no path leaves the static directory."""
    with live_server(database_url, tmp_path) as live, live.http(key="") as http_client:
        own_host = urlsplit(live.base_url).netloc
        for page in PAGES:
            response = http_client.get(page, headers={"accept": "text/html"})
            assert response.status_code == 200, page
            assert set(ABSOLUTE_URL.findall(response.text)) <= {own_host}
            urls = references(response.text)
            assert urls, page
            for url in urls:
                assert_is_the_asset(url, http_client.get(url))
        for path in TRAVERSALS:
            status, body = _raw_get(live.port, path)
            assert status == 404, (path, status)
            assert b"import" not in body, path
            assert b"root:" not in body, path
        # The package's files are really there, so the refusals above are not by accident.
        assert _raw_get(live.port, "/docs/static/favicon.png")[0] == 200
