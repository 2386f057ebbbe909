"""Routes of this package (being built)."""

from __future__ import annotations

from capgo_server.routing import router

apps_router = router(tags=["apps"])
