"""``/channel_self``: a device choosing its own channel (spec §5.5).

``POST`` sets a channel, ``PUT`` asks which channel the device is on, ``DELETE`` unsets it and
``GET`` lists the channels the device may pick. Plugins from 5.34.0 / 6.34.0 / 7.34.0 / 8.0.0
on ("new plugins") keep the chosen channel on the device: the server only checks it may be
chosen and forgets any stored override. Older plugins rely on a stored override
(:class:`ChannelOverride`), written in the request's transaction with the app's
``channel_device_count`` kept equal to its number of overrides.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select, true
from sqlalchemy.ext.asyncio import AsyncSession

from capgo_server.db.session import Session
from capgo_server.devices.overrides import pin_override, remove_override
from capgo_server.models import App, Channel, ChannelOverride
from capgo_server.parsing import documented_body, documented_query, strict_json_body
from capgo_server.plugin import answers
from capgo_server.plugin.common import (
    PluginRefusal,
    SemVer,
    fix_semver,
    normalise_plugin_body,
    unknown_app,
)
from capgo_server.plugin.device_route import DeviceRoute
from capgo_server.plugin.limits import device_rate_limit
from capgo_server.plugin.recording import Recording, record_later
from capgo_server.plugin.stats import AppId, DeviceId

channel_self_router = APIRouter(route_class=DeviceRoute, tags=["device protocol"])

Platform = Literal["ios", "android", "electron"]
#: Per major version, the first plugin release that stores its channel on the device.
DEVICE_STORED_CHANNEL_SINCE = {5: SemVer(5, 34, 0), 6: SemVer(6, 34, 0), 7: SemVer(7, 34, 0)}
CANNOT_OVERRIDE = "Cannot change device override current channel don't allow it"


class ChannelSelfBody(BaseModel):
    """What ``POST``/``PUT``/``DELETE`` receive (unknown fields are ignored; string lengths are
    checked before, by :mod:`.fields`)."""

    model_config = ConfigDict(strict=True)

    app_id: AppId
    device_id: DeviceId
    version_name: str  # logged with setChannel/getChannel
    version_build: str
    is_emulator: bool
    is_prod: bool
    platform: Platform
    defaultChannel: str | None = None  # the plugin's field name
    channel: str | None = None
    plugin_version: str | None = None
    key_id: str | None = None


class ChannelListQuery(BaseModel):
    """What ``GET`` receives, from the query string."""

    model_config = ConfigDict(strict=True)

    app_id: AppId
    is_emulator: bool
    is_prod: bool
    platform: Platform
    key_id: str | None = None


# --- rules ---------------------------------------------------------------------------------


def is_new_plugin(plugin_version: str | None) -> bool:
    """Whether the plugin keeps its channel itself: not older than x.34.0 for majors 5-7 (every
    8.x). Capgo only checks majors 5-8, so older majors, newer ones and a missing or unreadable
    version (read as 0.0.0) count as new."""
    version = SemVer.parse(fix_semver(plugin_version or "0.0.0"))
    if version is None:
        return True
    since = DEVICE_STORED_CHANNEL_SINCE.get(version.major)
    return since is None or version >= since


def query_body(request: Request) -> dict[str, Any]:
    """Capgo's ``convertQueryToBody``: ``is_emulator`` / ``is_prod`` are ``== 'true'``
    (defaults false / true); nothing given stays empty (400 ``invalid_query_parameters``)."""
    data: dict[str, Any] = dict(request.query_params)
    if not data:
        return data
    if isinstance(data.get("device_id"), str):
        data["device_id"] = data["device_id"].lower()
    data["is_emulator"] = data.get("is_emulator", "false") == "true"
    data["is_prod"] = data.get("is_prod", "true") == "true"
    return data


async def _known_app(session: AsyncSession, app_id: str) -> App:
    app = await session.get(App, app_id)
    if app is None:
        raise unknown_app(app_id)
    return app


async def _override(session: AsyncSession, app_id: str, device_id: str) -> Channel | None:
    """The channel the device is pinned to, if any."""
    channel: Channel | None = await session.scalar(
        select(Channel)
        .join(ChannelOverride, ChannelOverride.channel_id == Channel.id)
        .where(ChannelOverride.app_id == app_id, ChannelOverride.device_id == device_id)
    )
    return channel


async def _channel_named(session: AsyncSession, app_id: str, name: str) -> Channel | None:
    channel: Channel | None = await session.scalar(
        select(Channel).where(Channel.app_id == app_id, Channel.name == name)
    )
    return channel


async def _main_channel(session: AsyncSession, app_id: str, platform: str) -> Channel | None:
    """The first public channel serving ``platform`` (ORDER BY id)."""
    channel: Channel | None = await session.scalar(
        select(Channel)
        .where(Channel.app_id == app_id, Channel.public == true())
        .where(getattr(Channel, platform) == true())
        .order_by(Channel.id)
        .limit(1)
    )
    return channel


def _selectable(channel: Channel | None, body: ChannelSelfBody) -> Channel:
    """``channel`` if the device may assign itself to it, else the refusal."""
    extra: dict[str, Any] = {"channel": body.channel, "app_id": body.app_id}
    if channel is None:
        raise PluginRefusal("channel_not_found", "Cannot find channel", **extra)
    if channel.allow_device_self_set:
        return channel
    if channel.public:
        raise PluginRefusal(
            "public_channel_self_set_not_allowed",
            "This channel is public and does not allow device self-assignment. Unset the "
            "channel and the device will automatically use the public channel.",
            **extra,
        )
    raise PluginRefusal(
        "channel_self_set_not_allowed",
        "This channel does not allow devices to self associate",
        **extra,
    )


def _channel_event(request: Request, body: ChannelSelfBody, action: str) -> None:
    recording = Recording(body.app_id, body.device_id)
    recording.event(action, body.version_name)
    record_later(request, recording)


# --- routes --------------------------------------------------------------------------------

LIMIT_SET = [Depends(device_rate_limit("channel_self_set", same_channel_once=True))]
LIMIT_GET = [Depends(device_rate_limit("channel_self_get"))]
LIMIT_DELETE = [Depends(device_rate_limit("channel_self_delete"))]
LIMIT_LIST = [Depends(device_rate_limit("channel_self_list"))]


SET: dict[str, Any] = {"dependencies": LIMIT_SET, "responses": answers.CHANNEL_SET}
GET: dict[str, Any] = {"dependencies": LIMIT_GET, "responses": answers.CHANNEL_CURRENT}
DELETE: dict[str, Any] = {"dependencies": LIMIT_DELETE, "responses": answers.CHANNEL_UNSET}
LIST: dict[str, Any] = {"dependencies": LIMIT_LIST, "responses": answers.CHANNEL_LIST}
BODY = documented_body(ChannelSelfBody)


@channel_self_router.post("/channel_self", openapi_extra=BODY, **SET)
@channel_self_router.post("/plugin/channel_self", openapi_extra=BODY, **SET)
async def set_channel(request: Request, session: Session) -> dict[str, Any]:
    """Assign the device to ``channel``: ``{"status":"ok"}`` (``"allowSet": true`` for new
    plugins, which keep the channel themselves)."""
    body = normalise_plugin_body(await strict_json_body(request), ChannelSelfBody)
    if not body.channel:
        raise PluginRefusal("missing_channel", "Cannot find channel in body")
    app = await _known_app(session, body.app_id)
    current = await _override(session, body.app_id, body.device_id)
    if current is not None and not current.allow_device_self_set:
        raise PluginRefusal("cannot_override", CANNOT_OVERRIDE)
    channel = _selectable(await _channel_named(session, body.app_id, body.channel), body)
    if is_new_plugin(body.plugin_version):
        await remove_override(session, body.app_id, body.device_id)
        _channel_event(request, body, "setChannel")
        return {"status": "ok", "allowSet": True}
    main = await _main_channel(session, body.app_id, body.platform)
    if main is not None and main.name == channel.name:
        await remove_override(session, body.app_id, body.device_id)
    elif current is not None and current.id == channel.id:
        return {"status": "ok"}
    else:
        await pin_override(session, app, body.device_id, channel)
    _channel_event(request, body, "setChannel")
    return {"status": "ok"}


@channel_self_router.put("/channel_self", openapi_extra=BODY, **GET)
@channel_self_router.put("/plugin/channel_self", openapi_extra=BODY, **GET)
async def current_channel(request: Request, session: Session) -> dict[str, Any]:
    """Which channel the device is on: ``{"channel", "status": "override"|"default"}``."""
    body = normalise_plugin_body(await strict_json_body(request), ChannelSelfBody)
    await _known_app(session, body.app_id)
    if is_new_plugin(body.plugin_version):
        if body.channel:
            _channel_event(request, body, "getChannel")
            return {"channel": body.channel, "status": "override", "allowSet": True}
        return {"channel": body.defaultChannel or "production", "status": "default"}
    current = await _override(session, body.app_id, body.device_id)
    if current is not None:
        _channel_event(request, body, "getChannel")
        return {
            "channel": current.name,
            "status": "override",
            "allowSet": current.allow_device_self_set,
        }
    final = await _default_channel(session, body)
    _channel_event(request, body, "getChannel")
    return {"channel": final.name, "status": "default"}


async def _default_channel(session: AsyncSession, body: ChannelSelfBody) -> Channel:
    """The device's ``defaultChannel`` if it exists, else the public channel of its platform."""
    query = select(Channel).where(Channel.app_id == body.app_id).order_by(Channel.id)
    if body.defaultChannel:
        query = query.where(Channel.name == body.defaultChannel)
    else:
        query = query.where(Channel.public == true())
    candidates = list(await session.scalars(query))
    if body.defaultChannel:
        final = candidates[0] if candidates else None
    else:
        final = next((c for c in candidates if getattr(c, body.platform)), None)
    if final is None:
        raise PluginRefusal("channel_not_found", "Cannot find channel")
    return final


@channel_self_router.delete(
    "/channel_self", openapi_extra=documented_query(ChannelSelfBody), **DELETE
)
@channel_self_router.delete(
    "/plugin/channel_self", openapi_extra=documented_query(ChannelSelfBody), **DELETE
)
async def unset_channel(request: Request, session: Session) -> dict[str, Any]:
    """Forget the device's channel (query parameters, as the plugin sends them)."""
    body = normalise_plugin_body(query_body(request), ChannelSelfBody, query=True)
    await _known_app(session, body.app_id)
    current = await _override(session, body.app_id, body.device_id)
    # An override an admin set on a channel devices may not pick themselves stays, whatever
    # the plugin's version (as POST refuses to replace it).
    if current is not None and not current.allow_device_self_set:
        raise PluginRefusal("cannot_override", CANNOT_OVERRIDE)
    if is_new_plugin(body.plugin_version):
        await remove_override(session, body.app_id, body.device_id)
        _channel_event(request, body, "setChannel")
        return {"status": "ok"}
    if current is None:
        raise PluginRefusal("cannot_override", CANNOT_OVERRIDE)
    await remove_override(session, body.app_id, body.device_id)
    return {"status": "ok"}


@channel_self_router.get("/channel_self", openapi_extra=documented_query(ChannelListQuery), **LIST)
@channel_self_router.get(
    "/plugin/channel_self", openapi_extra=documented_query(ChannelListQuery), **LIST
)
async def list_channels(request: Request, session: Session) -> JSONResponse:
    """The channels this kind of device may pick: ``[{id, name, public, allow_self_set}]``."""
    query = normalise_plugin_body(
        query_body(request), ChannelListQuery, require_device=False, query=True
    )
    if await session.get(App, query.app_id) is None:
        return JSONResponse(
            {"error": "app_not_found", "message": "App not found", "app_id": query.app_id}
        )
    # Several public channels may be open to Electron (docs/channels.md): only the one this
    # platform's devices get counts as public here, as in /updates.
    main = await _main_channel(session, query.app_id, query.platform)
    main_id = None if main is None else main.id
    channels = await session.scalars(
        select(Channel)
        .where(Channel.app_id == query.app_id)
        .where((Channel.allow_device_self_set == true()) | (Channel.id == main_id))
        .where((Channel.allow_emulator if query.is_emulator else Channel.allow_device) == true())
        .where((Channel.allow_prod if query.is_prod else Channel.allow_dev) == true())
        .where(getattr(Channel, query.platform) == true())
        .order_by(Channel.id)
    )
    return JSONResponse(
        [
            {
                "id": c.id,
                "name": c.name,
                "public": c.id == main_id,
                "allow_self_set": c.allow_device_self_set,
            }
            for c in channels
        ]
    )
