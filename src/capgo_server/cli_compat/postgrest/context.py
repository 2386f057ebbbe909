"""What a PostgREST handler receives and returns, and PostgREST's error shape.

A table handler is ``async (ctx: PgContext) -> PgResult``; an RPC is
``async (ctx: RpcContext) -> JSON value``. Handlers never render responses: the dispatcher in
``endpoints.py`` turns rows into PostgREST's answer (an array, or one object when the request
asked for ``application/vnd.pgrst.object+json``, 406 ``PGRST116`` otherwise).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.background import BackgroundTask

from capgo_server.auth.principal import Principal
from capgo_server.cli_compat.postgrest.parse import Query
from capgo_server.settings import Settings
from capgo_server.storage import BundleStore

#: What every refusal of an unsupported CLI request ends with.
SUPPORTED_CLI = "this server supports @capgo/cli 8.35 and later: npx @capgo/cli@latest"


class PgError(Exception):
    """A refusal rendered as PostgREST renders errors: ``{code, message, details, hint}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.hint = hint

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "details": self.details,
            "hint": self.hint,
        }


def permission_denied(what: str) -> PgError:
    """403 ``42501``: what PostgreSQL's row-level security answers to a refused write."""
    return PgError(403, "42501", f"permission denied: {what}")


def no_matching_row(what: str) -> PgError:
    """404 for a write whose filters match no row the caller may change (never a silent 204)."""
    return PgError(404, "PGRST116", f"no row matches: {what}")


@dataclass
class PgContext:
    """One table request: who asks, the parsed query, and the JSON body of a write."""

    request: Request
    session: AsyncSession
    principal: Principal
    query: Query
    body: Any  # the parsed JSON body of a POST/PATCH; None for GET

    @property
    def settings(self) -> Settings:
        settings: Settings = self.request.app.state.settings
        return settings

    @property
    def store(self) -> BundleStore:
        store: BundleStore = self.request.app.state.bundle_store
        return store


@dataclass
class PgResult:
    """Rows to render (``None``: an empty body), the status of success, and work to run once
    the response is sent, after the commit (removing a deleted bundle's file)."""

    rows: list[dict[str, Any]] | None
    status: int = 200
    background: BackgroundTask | None = None


@dataclass
class RpcContext:
    """One RPC call: who asks, its named arguments, and whether one object was asked for."""

    request: Request
    session: AsyncSession
    principal: Principal
    args: dict[str, Any]
    single: bool


TableHandler = Callable[[PgContext], Awaitable[PgResult]]
RpcHandler = Callable[[RpcContext], Awaitable[Any]]
