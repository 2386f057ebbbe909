"""Router factory: every public router runs its handlers in one transaction per request."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from capgo_server.db.session import TransactionalRoute


def router(**kwargs: Any) -> APIRouter:
    return APIRouter(route_class=TransactionalRoute, **kwargs)
