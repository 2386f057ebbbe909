"""The official CLI's bootstrap and private routes: ``/private/config``, ``/private/events``, and
the two upload modes this server refuses (plan §1.1, §1.4).

None of them touches the database. ``/private/config`` is public: the CLI fetches it before it
has a key (``login``). It names this server as the "Supabase" host, so the CLI's PostgREST and
RPC calls come back here, and turns on the finalize step of uploads.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from capgo_server.errors import ApiError
from capgo_server.integers import digits_at_most
from capgo_server.settings import Settings

router = APIRouter(include_in_schema=False)

#: What the CLI sends as Supabase's public "anon" key (``apikey`` and ``Authorization: Bearer``
#: under ``/rest/v1``). It identifies nobody and grants nothing: the caller is ``capgkey``.
ANON_KEY = "capgo-server-anon"
#: Telemetry events are a few hundred bytes; they are dropped, so only their size is checked.
MAX_EVENT_BYTES = 64 * 1024

TUS_ONLY = (
    "This server takes bundle uploads over tus only: run the upload without --zip "
    "(tus is the default)."
)
NO_DELTA = (
    "Delta (partial) uploads are off on this server: upload without --delta or --delta-only "
    "and the whole bundle is sent."
)


@router.get("/private/config")
async def private_config(request: Request) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    return {
        "supaHost": settings.public_url.rstrip("/"),
        "supaKey": ANON_KEY,
        "useNewFinalizeBundleUpload": True,
    }


@router.post("/private/events")
async def private_events(request: Request) -> dict[str, str]:
    """Accepted and dropped: nothing the CLI reports leaves or stays on the server."""
    await _drain_at_most(request, MAX_EVENT_BYTES)
    return {"status": "ok"}


async def _drain_at_most(request: Request, limit: int) -> None:
    """Read and discard the body; 413 past ``limit`` bytes, declared or streamed."""
    too_large = ApiError(
        413, "body_too_large", f"Request body exceeds {limit} bytes", {"max_bytes": limit}
    )
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and digits_at_most(declared, limit) is None:
        raise too_large
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large
    except ClientDisconnect:
        raise ApiError(
            400, "client_disconnected", "The client closed the connection before its body ended"
        ) from None


def _refused(code: str, message: str) -> JSONResponse:
    # ``status`` repeats the message: it is the field the CLI prints for these routes.
    body = {"error": code, "message": message, "moreInfo": {}, "status": message}
    return JSONResponse(body, status_code=400)


@router.post("/files/upload_link")
async def upload_link() -> JSONResponse:
    """``--zip`` asks for a presigned PUT URL; this server only has tus uploads."""
    return _refused("tus_only", TUS_ONLY)


@router.post("/private/set_manifest")
async def set_manifest() -> JSONResponse:
    """Only delta uploads send a manifest, and delta is off (``/files/config``)."""
    return _refused("delta_not_supported", NO_DELTA)
