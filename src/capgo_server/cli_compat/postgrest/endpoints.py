"""``/rest/v1/{table}`` and ``/rest/v1/rpc/{fn}``: parse, match the whitelist, dispatch.

A table request is parsed (``parse.py``), matched against the CLI's shapes (``shapes.py``) and
handed to that shape's handler; its rows are rendered as PostgREST does. Anything off the
whitelist answers 400 ``PGRST100`` and is logged by method, table and shape, never by value.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import APIRouter, Request, Response

from capgo_server.cli_compat.auth import CliKey, PostgrestRoute
from capgo_server.cli_compat.postgrest import reads, writes_channels, writes_versions
from capgo_server.cli_compat.postgrest.context import (
    SUPPORTED_CLI,
    PgContext,
    PgError,
    PgResult,
    RpcContext,
    TableHandler,
)
from capgo_server.cli_compat.postgrest.parse import Query, Unsupported, parse
from capgo_server.cli_compat.postgrest.shapes import match
from capgo_server.cli_compat.rpc import RPCS
from capgo_server.db.session import Session
from capgo_server.parsing import NOT_JSON, parsed_json

logger = logging.getLogger("capgo_server.cli_compat")

router = APIRouter(route_class=PostgrestRoute, include_in_schema=False)

#: Every shape's handler, by the name ``shapes.match`` gives.
HANDLERS: dict[str, TableHandler] = {
    **reads.HANDLERS,
    **writes_channels.HANDLERS,
    **writes_versions.HANDLERS,
}

OBJECT_MEDIA_TYPE = "application/vnd.pgrst.object+json"


def unsupported(what: str) -> PgError:
    return PgError(400, "PGRST100", f"unsupported query ({what}); {SUPPORTED_CLI}")


def _json(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(value, separators=(",", ":")),
        status_code=status,
        media_type="application/json; charset=utf-8",
        headers=headers,
    )


def render(query: Query, result: PgResult) -> Response:
    """PostgREST's answer: an empty body, one object (406 unless exactly one row), or an array
    with its ``Content-Range``."""
    if result.rows is None:
        return Response(status_code=result.status, background=result.background)
    rows = result.rows
    if query.single:
        if len(rows) != 1:
            raise PgError(
                406,
                "PGRST116",
                "JSON object requested, multiple (or no) rows returned",
                f"The result contains {len(rows)} rows",
            )
        return _json(rows[0], result.status)
    content_range = f"0-{len(rows) - 1}/*" if rows else "*/*"
    return _json(rows, result.status, {"Content-Range": content_range})


async def _body(request: Request) -> Any:
    if request.method == "GET":
        return None
    value = await parsed_json(request)
    if value is NOT_JSON:
        raise PgError(400, "PGRST102", "Empty or invalid json")
    return value


async def _table(request: Request, table: str, session: Session, principal: CliKey) -> Response:
    try:
        query = parse(request.method, table, request.query_params.multi_items(), request.headers)
    except Unsupported as error:
        logger.warning("unsupported PostgREST request %s /%s: %s", request.method, table, error)
        raise unsupported(str(error)) from None
    shape = match(query)
    if shape is None:
        logger.warning("PostgREST request off the whitelist: %s", query.key)
        raise unsupported(f"{request.method} {table}")
    context = PgContext(request, session, principal, query, await _body(request))
    return render(query, await HANDLERS[shape](context))


for _method in ("GET", "POST", "PATCH"):
    router.add_api_route(
        "/rest/v1/{table}", _table, methods=[_method], operation_id=f"postgrest_{_method.lower()}"
    )


@router.post("/rest/v1/rpc/{fn}")
async def call_rpc(request: Request, fn: str, session: Session, principal: CliKey) -> Response:
    handler = RPCS.get(fn)
    if handler is None:
        logger.warning("unknown RPC %r", fn[:80])
        raise PgError(
            404,
            "PGRST202",
            f"Could not find the function public.{fn[:80]} in the schema cache",
        )
    args = await _body(request)
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise PgError(400, "PGRST102", "Empty or invalid json")
    single = OBJECT_MEDIA_TYPE in request.headers.get("accept", "")
    return _json(await handler(RpcContext(request, session, principal, args, single)))
