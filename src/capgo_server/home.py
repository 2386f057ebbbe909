"""``GET /``: what this server is, where its docs are, and what to put in ``capacitor.config``.

A browser (``Accept`` naming ``text/html``) gets a small page with no external asset; anything
else gets the same facts as a JSON object. The device URLs are built on ``CAPGO_PUBLIC_URL``,
like download URLs, so they are the ones phones will be told about.
"""

from __future__ import annotations

import json
import re
from html import escape
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from capgo_server.docs_pages import DOCS_PATH, REDOC_PATH, STATIC_PATH
from capgo_server.settings import Settings

#: The Capgo plugin's settings (``plugins.CapacitorUpdater`` in ``capacitor.config``) and the
#: device endpoint each one names.
DEVICE_ENDPOINTS = {"updateUrl": "/updates", "statsUrl": "/stats", "channelUrl": "/channel_self"}
#: The official ``@capgo/cli``'s settings in the same place: without both, it sends the API key
#: to Capgo's cloud (issue #16).
CLI_ENDPOINTS = {"localApi": "", "localApiFiles": ""}

_PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'"


def describe(settings: Settings, title: str, version: str, description: str) -> dict[str, Any]:
    """The facts ``/`` gives, links absolute on the public URL."""
    base = settings.public_url.rstrip("/")
    return {
        "name": title,
        "version": version,
        "description": description,
        "public_url": base,
        "links": {
            "docs": f"{base}{DOCS_PATH}",
            "redoc": f"{base}{REDOC_PATH}",
            "openapi": f"{base}/openapi.json",
            "health": f"{base}/ok",
        },
        "capacitor_config": {
            "plugins": {
                "CapacitorUpdater": {
                    setting: f"{base}{path}"
                    for setting, path in {**DEVICE_ENDPOINTS, **CLI_ENDPOINTS}.items()
                }
            }
        },
    }


def _page(facts: dict[str, Any]) -> str:
    name = escape(f"{facts['name']} {facts['version']}")
    links = facts["links"]
    rows = (
        ("Interactive API docs (Swagger UI)", links["docs"]),
        ("API reference (ReDoc)", links["redoc"]),
        ("OpenAPI document", links["openapi"]),
        ("Health check", links["health"]),
    )
    items = "".join(
        f'<li><a href="{escape(url)}">{escape(label)}</a> <code>{escape(url)}</code></li>'
        for label, url in rows
    )
    config = escape(json.dumps(facts["capacitor_config"], indent=2))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{name}</title>
<link rel="icon" href="{STATIC_PATH}/favicon.png">
<style>
body {{ font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto;
       padding: 0 1rem; line-height: 1.5; color: #222; }}
code, pre {{ font-family: ui-monospace, monospace; font-size: .9em; }}
pre {{ background: #f4f4f4; padding: 1rem; overflow-x: auto; }}
li code {{ color: #666; }}
</style>
</head>
<body>
<h1>{name}</h1>
<p>{_inline_code(escape(facts["description"]))}</p>
<h2>Documentation</h2>
<ul>{items}</ul>
<h2>Point your app here</h2>
<p>In <code>capacitor.config</code> (JSON, or the same keys in
<code>capacitor.config.ts</code>), so the Capgo updater plugin asks this server, and the
official <code>@capgo/cli</code> sends its requests and your API key here, not to Capgo's
cloud:</p>
<pre>{config}</pre>
<p>These URLs are built on <code>CAPGO_PUBLIC_URL</code> ({escape(facts["public_url"])}):
if a phone cannot reach that address, set it to one it can.</p>
</body>
</html>
"""


def install_home(app: FastAPI) -> None:
    """``GET``/``HEAD /``, outside the OpenAPI document (it is a landing page, not API)."""

    # The route reads the app from the request: a closure over ``app`` would be held by
    # FastAPI's caches of endpoint signatures (module-wide), and with it every app ever made.
    async def home(request: Request) -> Response:
        served: FastAPI = request.app
        settings: Settings = served.state.settings
        facts = describe(settings, served.title, served.version, served.description)
        response: Response
        if "text/html" in request.headers.get("accept", ""):
            response = HTMLResponse(_page(facts))
            response.headers["Content-Security-Policy"] = _PAGE_POLICY
        else:
            response = JSONResponse(facts)
        response.headers["Vary"] = "Accept"
        return response

    app.add_api_route("/", home, methods=["GET", "HEAD"], include_in_schema=False)


def _inline_code(escaped: str) -> str:
    """The description's Markdown code spans (written for /docs) as ``<code>``; ``escaped`` is
    already HTML-escaped, so a span holds no markup of its own."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
