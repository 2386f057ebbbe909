"""``POST /updates`` (and ``/plugin/updates``): what a device should run next (spec §5.3).

The handler reads and normalises the body, takes the app's snapshot from the worker's
:class:`~.update_cache.UpdateCache`, resolves the channel and its bundle from it
(:mod:`.update_queries`), asks :mod:`.update_rules` for the answer, and hands what to record to
:func:`.recording.record_later`, which batches it off the request path. A warm request reads
nothing from the database.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from capgo_server.errors import ApiError
from capgo_server.files.signing import download_url, sign_path
from capgo_server.parsing import documented_body, strict_json_body
from capgo_server.plugin import update_queries as queries
from capgo_server.plugin.answers import UPDATES
from capgo_server.plugin.common import normalise_plugin_body, unknown_app
from capgo_server.plugin.device_route import DeviceRoute
from capgo_server.plugin.fields import device_version_name
from capgo_server.plugin.limits import device_rate_limit
from capgo_server.plugin.recording import DeviceSeen, Recording, record_later
from capgo_server.plugin.update_cache import UpdateCache
from capgo_server.plugin.update_rules import (
    Refusal,
    Situation,
    UpdateRequest,
    decide,
    manifest_entries,
    no_channel,
    offer,
    unsupported_plugin,
)

updates_router = APIRouter(route_class=DeviceRoute, tags=["device protocol"])


async def read_plugin_body(request: Request) -> dict[str, Any]:
    """The plugin's JSON object, size-limited and with ``device_id`` lower-cased.

    :func:`~capgo_server.parsing.strict_json_body` refuses with the public API's codes; the
    plugin protocol answers 400 ``invalid_json_body`` to any unusable body (413 stays 413).
    """
    try:
        return await strict_json_body(request)
    except ApiError as exc:
        if exc.status == 400:
            raise ApiError(400, "invalid_json_body", "Cannot parse body") from exc
        raise


def _device_seen(body: UpdateRequest, version_name: str) -> DeviceSeen:
    return DeviceSeen(
        app_id=body.app_id,
        device_id=body.device_id,
        platform=body.platform,
        plugin_version=body.plugin_version,
        os_version=body.version_os,
        version_build=body.version_build,
        version_name=device_version_name(version_name),
        custom_id=body.custom_id or "",
        is_prod=body.is_prod,
        is_emulator=body.is_emulator,
        default_channel=body.defaultChannel or None,
        key_id=body.key_id,
    )


async def _answer(
    request: Request, body: UpdateRequest
) -> tuple[dict[str, Any] | Refusal, str | None]:
    """The answer to ``body`` and the name of the bundle it is about (if any)."""
    cache: UpdateCache = request.app.state.update_cache
    snapshot = await cache.get(body.app_id)
    if snapshot is None:
        raise unknown_app(body.app_id)
    app = snapshot.app
    refusal = unsupported_plugin(body)
    if refusal is not None:
        return refusal, None
    resolved = await queries.resolve_channel(
        request.app.state.sessionmaker, snapshot, body.device_id, body.defaultChannel, body.platform
    )
    if resolved is None:
        return no_channel(), None
    bundle = queries.bundle_for_device(snapshot, resolved.channel, body.app_id, body.device_id)
    situation = Situation(body, resolved.channel, resolved.from_override, bundle)
    refusal = decide(situation)
    if refusal is not None:
        return refusal, bundle.name if bundle is not None else None
    assert bundle is not None  # the no_bundle gate refuses a missing bundle
    settings = request.app.state.settings
    url = bundle.external_url or ""
    manifest: list[dict[str, Any]] = []
    if not bundle.external_url:
        if bundle.r2_path:
            url = download_url(settings, bundle, body.device_id)
        manifest = manifest_entries(
            bundle, body.plugin, lambda path: sign_path(settings, path, body.device_id).url
        )
    return offer(body, app, bundle, url, manifest), bundle.name


_ROUTE: dict[str, Any] = {
    "openapi_extra": documented_body(UpdateRequest),
    "responses": UPDATES,
    "dependencies": [Depends(device_rate_limit("updates"))],
}


@updates_router.post("/updates", **_ROUTE)
@updates_router.post("/plugin/updates", **_ROUTE)
async def updates(request: Request) -> JSONResponse:
    """The bundle this device should run, or why it gets none (HTTP 200 either way)."""
    # No request session: a warm answer reads nothing from the database (see DeviceRoute).
    body = normalise_plugin_body(await read_plugin_body(request), UpdateRequest)
    answer, bundle_name = await _answer(request, body)
    recording = Recording(body.app_id, body.device_id)
    if isinstance(answer, Refusal):
        recording.device = _device_seen(body, body.version_name)
        if answer.action is not None:
            recording.event(answer.action, bundle_name or body.version_name)
        response = JSONResponse(answer.body())
    else:
        offered = str(answer["version"])
        recording.device = _device_seen(body, offered)
        recording.event("get", offered)
        recording.count(offered, "get")
        response = JSONResponse(answer)
    record_later(request, recording)
    return response
