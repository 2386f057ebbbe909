"""Routes of this module (being built)."""

from __future__ import annotations

from capgo_server.routing import router

stats_router = router(tags=["device protocol"])
