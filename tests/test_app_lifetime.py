"""An app that has served and shut down is freed: nothing module-wide keeps it.

Workers make one app, but the tests make thousands, and an embedded or reloaded server may
make several: a route closing over its own app was once held by FastAPI's module-wide caches
of endpoint signatures, so every app made (its engine, caches and routes) stayed in memory.
"""

from __future__ import annotations

import gc
import weakref

import httpx

from capgo_server.app import create_app
from capgo_server.settings import Settings

# Every path a route of our own serves without a key, so each endpoint's signature is used.
PATHS = ("/", "/ok", "/docs", "/redoc", "/openapi.json")


async def test_a_served_app_is_freed_once_dropped(settings: Settings) -> None:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://capgo.test") as http:
            for path in PATHS:
                for accept in ("application/json", "text/html"):
                    response = await http.get(path, headers={"accept": accept})
                    assert response.status_code == 200, (path, response.text)
        del http, transport, response
    freed = weakref.ref(application)
    del application
    gc.collect()
    assert freed() is None, [type(holder).__name__ for holder in gc.get_referrers(freed())]
