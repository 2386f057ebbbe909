"""Who calls the official CLI's Supabase routes, and how their failures are rendered.

Under ``/rest/v1`` and ``/functions/v1`` the CLI sends its key in ``capgkey``; ``Authorization``
there carries the public "anon" value of ``/private/config``, which identifies nobody. The key
goes through :func:`capgo_server.auth.principal.require_key`, so key modes, expiry, sub-keys,
failed-auth counting and rate limits are those of the public API.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.responses import JSONResponse

from capgo_server.auth.principal import ALL_MODES, Principal, require_key
from capgo_server.cli_compat.postgrest.context import PgError
from capgo_server.db.session import TransactionalRoute
from capgo_server.errors import ApiError

logger = logging.getLogger("capgo_server.cli_compat")

#: Any valid key, read from ``capgkey`` only; each handler then authorizes the app or org with
#: the role and key modes of the matching public route.
CliKey = Annotated[Principal, Depends(require_key(ALL_MODES, headers=("capgkey",)))]


def same_key(claimed: object, request: Request) -> bool:
    """Whether a key named in a body (``get_user_id {apikey}``) is the one in ``capgkey``."""
    presented = request.headers.get("capgkey", "")
    return isinstance(claimed, str) and hmac.compare_digest(claimed.encode(), presented.encode())


def postgrest_error(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    return JSONResponse(body, status_code=status, headers=headers)


class PostgrestRoute(TransactionalRoute):
    """A route whose every refusal, authentication included, has PostgREST's error shape
    ``{code, message, details, hint}``; the transaction is rolled back first."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except PgError as error:
                return postgrest_error(error.status, error.body())
            except ApiError as error:
                body = {"code": error.code, "message": error.message, "details": None, "hint": None}
                return postgrest_error(error.status, body, error.headers)

        return handle
