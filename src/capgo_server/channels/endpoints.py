"""``/channel`` (spec §3.4): list or read an app's channels, create or update one, delete one."""

from __future__ import annotations

from typing import Any

from fastapi import BackgroundTasks, Request

from capgo_server.auth.principal import ReadKey, WriteKey
from capgo_server.bundles import service as bundles_service
from capgo_server.channels import service
from capgo_server.channels.schemas import (
    ChannelDelete,
    ChannelOut,
    ChannelQuery,
    ChannelSaved,
    ChannelSet,
    StatusOk,
)
from capgo_server.db.session import Session
from capgo_server.openapi import API_ERRORS
from capgo_server.parsing import (
    body_or_query,
    documented_body,
    documented_body_or_query,
    documented_query,
    strict_json_body,
    validate,
)
from capgo_server.routing import router
from capgo_server.storage.cleanup import remove_stored
from capgo_server.validation import checked_app_id

channels_router = router(prefix="/channel", tags=["channels"], responses=API_ERRORS)


def _app_id(data: dict[str, Any]) -> str:
    """``app_id``, or the legacy ``appid`` (seeds/public-api-legacy.txt)."""
    return checked_app_id(data.get("app_id") or data.get("appid"), data)


@channels_router.get(
    "",
    response_model=ChannelOut | list[ChannelOut],
    openapi_extra=documented_query(ChannelQuery),
)
async def get_channels(request: Request, session: Session, principal: ReadKey) -> Any:
    """One channel (``channel``), or the app's channels, 50 per ``page``, oldest first."""
    data = await body_or_query(request)
    app_id = _app_id(data)
    query = validate(ChannelQuery, data)
    if query.channel:
        return await service.get_channel(session, principal, app_id, query.channel)
    return await service.list_channels(session, principal, app_id, query.page)


@channels_router.post("", response_model=ChannelSaved, openapi_extra=documented_body(ChannelSet))
async def save_channel(request: Request, session: Session, principal: WriteKey) -> ChannelSaved:
    """Create a channel, or update the fields given of an existing one."""
    data = await strict_json_body(request)
    data["app_id"] = checked_app_id(data.get("app_id"), data)
    channel = await service.save_channel(session, principal, validate(ChannelSet, data))
    return ChannelSaved(id=channel.id, public=channel.public)


@channels_router.delete(
    "", response_model=StatusOk, openapi_extra=documented_body_or_query(ChannelDelete)
)
async def delete_channel(
    request: Request, session: Session, principal: WriteKey, background: BackgroundTasks
) -> StatusOk:
    """Delete a channel and its device overrides (admin, key of mode ``all``); with
    ``delete_bundle``, the bundle it served too."""
    data = await body_or_query(request)
    app_id = _app_id(data)
    query = validate(ChannelDelete, data)
    served = await service.delete_channel(
        session, principal, app_id, query.channel, delete_bundle=query.delete_bundle
    )
    if served is not None:
        # In this request's transaction: a refusal here keeps the channel too.
        paths = await bundles_service.delete_bundles(session, principal, app_id, served)
        # Files go once the deletion is committed (background tasks run after the response).
        background.add_task(remove_stored, request.app.state.bundle_store, paths=paths)
    return StatusOk()
