"""``/docs`` (Swagger UI) and ``/redoc``, served entirely from this server.

FastAPI's own pages load their scripts, styles, favicon and fonts from public CDNs, so on an
offline or locked-down server they stay blank. The files come from the pinned
``fastapi-offline`` package instead (never copied into this repository), under
``/docs/static/``; the pages name no other host, and their ``Content-Security-Policy`` lets a
browser load nothing from anywhere else.

The keys are ``apiKey`` headers, not OAuth2, so Swagger UI's OAuth2 redirect page is not served.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"
STATIC_PATH = "/docs/static"
STATIC_DIRECTORY = Path(str(files("fastapi_offline") / "static"))

#: Only this server: the inline bootstrap script and the inline styles both UIs inject, the
#: icons Swagger UI draws as ``data:`` images, the web worker ReDoc starts from a ``blob:``.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'self'"
)


def _locked_down(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    page.headers["X-Content-Type-Options"] = "nosniff"
    return page


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs``, ``/redoc`` and their files (the app is created with FastAPI's own
    ``docs_url`` and ``redoc_url`` off). No key is needed to read them, as for
    ``/openapi.json``."""
    title = f"{app.title} {app.version}"
    openapi_url = app.openapi_url or "/openapi.json"
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIRECTORY), name="docs-static")

    async def swagger_ui() -> HTMLResponse:
        return _locked_down(
            get_swagger_ui_html(
                openapi_url=openapi_url,
                title=f"{title}: API docs",
                swagger_js_url=f"{STATIC_PATH}/swagger-ui-bundle.js",
                swagger_css_url=f"{STATIC_PATH}/swagger-ui.css",
                swagger_favicon_url=f"{STATIC_PATH}/favicon.png",
                oauth2_redirect_url=None,
                # Swagger UI's default sends the document's URL to validator.swagger.io and
                # shows the answer as a badge: a request to the outside, and a leak.
                swagger_ui_parameters={"validatorUrl": None},
            )
        )

    async def redoc() -> HTMLResponse:
        return _locked_down(
            get_redoc_html(
                openapi_url=openapi_url,
                title=f"{title}: API reference",
                redoc_js_url=f"{STATIC_PATH}/redoc.standalone.js",
                redoc_favicon_url=f"{STATIC_PATH}/favicon.png",
                with_google_fonts=False,
            )
        )

    for path, page in ((DOCS_PATH, swagger_ui), (REDOC_PATH, redoc)):
        app.add_api_route(path, page, methods=["GET", "HEAD"], include_in_schema=False)
