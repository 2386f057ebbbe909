"""``POST /stats``: what a device reports about its bundles, one event or a batch (spec §5.4).

An event is checked as every device body is (§5.2), then counted: ``set`` on a production,
non-emulator device is an install of the bundle (and an uninstall of the one it replaced), a
``*_fail`` action a failure. Every accepted event is logged with the device's ``version_name``
verbatim (composite ``<version>:<file>`` names of per-file failures included) and, unless it is a
failure, refreshes the device row. All of it is written off the request path
(:func:`record_later`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from capgo_server.db.session import Session
from capgo_server.errors import ApiError
from capgo_server.models import Bundle
from capgo_server.parsing import documented_body, json_body
from capgo_server.plugin.answers import STATS
from capgo_server.plugin.common import (
    PluginRefusal,
    SemVer,
    explained,
    fix_semver,
    normalise_plugin_body,
    unknown_app,
)
from capgo_server.plugin.device_route import DeviceRoute
from capgo_server.plugin.fields import device_version_name
from capgo_server.plugin.limits import device_rate_limit
from capgo_server.plugin.recording import DeviceSeen, Recording, record_later
from capgo_server.plugin.stats_actions import ALLOWED_STATS_ACTIONS
from capgo_server.plugin.update_cache import AppSnapshot, UpdateCache
from capgo_server.schema_types import AppIdText, DeviceUuid
from capgo_server.validation import INTERNAL_VERSION_NAMES, is_app_id, is_device_id

stats_router = APIRouter(route_class=DeviceRoute, tags=["device protocol"])

#: ``download_fail`` counts as a failure only from plugins that report it once per failure.
DOWNLOAD_FAIL_SINCE = SemVer(7, 17, 0)
DOWNLOAD_FAIL_SINCE_V6 = SemVer(6, 14, 25)
DEFAULT_PLUGIN_VERSION = "2.3.3"


def _allowed_action(action: str) -> str:
    if action not in ALLOWED_STATS_ACTIONS:
        shown = action if len(action) <= 64 else f"{action[:64]}..."
        raise explained(
            f"Unknown action {shown!r}: a device may report only the actions listed in "
            "/openapi.json (StatsBody, action)"
        )
    return action


def _app_id(value: str) -> str:
    if not is_app_id(value):
        raise ValueError("app_id must be a reverse domain string")
    return value


def _device_id(value: str) -> str:
    if not is_device_id(value):
        raise ValueError("device_id must be a UUID")
    return value


AppId = Annotated[AppIdText, AfterValidator(_app_id)]
DeviceId = Annotated[DeviceUuid, AfterValidator(_device_id)]


class StatsBody(BaseModel):
    """One event a device reports. ``action`` is required here: Capgo crashes (500) without one.
    String lengths are checked before, by :mod:`.fields` (the widths of the columns the event is
    written to)."""

    model_config = ConfigDict(strict=True)

    app_id: AppId
    device_id: DeviceId
    platform: str
    version_name: str
    version_os: str
    old_version_name: str | None = None
    version_code: str | None = None
    version_build: str | None = None
    action: Annotated[
        str,
        AfterValidator(_allowed_action),
        Field(json_schema_extra={"enum": sorted(ALLOWED_STATS_ACTIONS)}),
    ]
    custom_id: str | None = None
    channel: str | None = None
    defaultChannel: str | None = None
    plugin_version: str | None = None
    is_emulator: bool
    is_prod: bool
    key_id: str | None = None


@dataclass(frozen=True)
class EventRefusal:
    """An event that parsed but cannot be counted (``version_not_found``)."""

    code: str
    message: str
    more_info: dict[str, Any]


# --- reading the request -------------------------------------------------------------------


def _app_id_problem(event: object) -> str | None:
    """Why ``event`` has no usable ``app_id`` (the ``invalid_app_id`` message), or None."""
    app_id = event.get("app_id") if isinstance(event, dict) else None
    if not isinstance(app_id, str) or not app_id:
        return "App ID is required"
    if not is_app_id(app_id):
        return "App ID must be a reverse domain string"
    return None


def _refuse_oversized_batch(events: list[Any], max_events: int) -> None:
    """400 ``invalid_json_body`` for a batch longer than ``CAPGO_STATS_MAX_BATCH_EVENTS``."""
    if len(events) > max_events:
        message = f"A batch holds at most {max_events} events, this one has {len(events)}"
        raise ApiError(
            400,
            "invalid_json_body",
            message,
            {"parseResult": [{"loc": [], "msg": message}]},
        )


def _batch_app_id(events: list[Any]) -> str:
    """The one app of a request: 400 for the first event, 200 refusals for the others."""
    problem = _app_id_problem(events[0])
    if problem is not None:
        raise ApiError(400, "invalid_app_id", problem)
    app_id: str = events[0]["app_id"]
    for event in events[1:]:
        problem = _app_id_problem(event)
        if problem is not None:
            raise PluginRefusal("invalid_app_id", problem)
        if event["app_id"] != app_id:
            raise PluginRefusal("mixed_app_ids", "All events in a batch must have the same app_id")
    return app_id


# --- counting one event --------------------------------------------------------------------


def version_only(version_name: str) -> str:
    """The bundle of a composite ``<version>:<file>`` name (a ':' at index 0 is no separator)."""
    return version_name.split(":", 1)[0] if version_name.find(":") > 0 else version_name


async def _find_bundle(
    session: AsyncSession, snapshot: AppSnapshot | None, app_id: str, name: str
) -> int | None:
    """Capgo's lookup: the id of the live bundle ``name`` (``builtin``/``unknown``: the deleted
    ones), else of the app's ``unknown`` bundle under the same ``deleted`` condition. From the
    worker's snapshot of the app when it holds the app's bundle names."""
    deleted = name in INTERNAL_VERSION_NAMES
    for candidate in (name, "unknown"):
        if snapshot is not None and snapshot.bundle_names is not None:
            found = snapshot.bundle_names.get(candidate)
            bundle_id = found[0] if found is not None and found[1] == deleted else None
        else:
            bundle_id = await session.scalar(
                select(Bundle.id)
                .where(Bundle.app_id == app_id, Bundle.name == candidate, Bundle.deleted == deleted)
                .order_by(Bundle.id)
                .limit(1)
            )
        if bundle_id is not None:
            return bundle_id
    return None


def counts_download_fail(plugin_version: str | None) -> bool:
    """Old plugins reported ``download_fail`` spuriously: only 7.17.0+ and 6.14.25+ count."""
    version = SemVer.parse(fix_semver(plugin_version or "0.0.0"))
    if version is None:
        return False
    return version >= DOWNLOAD_FAIL_SINCE or (
        version.major == 6 and version >= DOWNLOAD_FAIL_SINCE_V6
    )


def _device_seen(event: StatsBody) -> DeviceSeen:
    return DeviceSeen(
        app_id=event.app_id,
        device_id=event.device_id,
        platform=event.platform,
        plugin_version=event.plugin_version or DEFAULT_PLUGIN_VERSION,
        os_version=event.version_os,
        version_build=event.version_build or "builtin",
        version_name=device_version_name(event.version_name),
        custom_id=event.custom_id or "",
        is_prod=event.is_prod,
        is_emulator=event.is_emulator,
        default_channel=event.defaultChannel or None,
        key_id=event.key_id,
    )


async def count_event(
    session: AsyncSession, event: StatsBody, snapshot: AppSnapshot | None = None
) -> Recording | EventRefusal:
    """What ``event`` records, or why it records nothing (Capgo's stats ``post``)."""
    name = version_only(event.version_name)
    bundle = await _find_bundle(session, snapshot, event.app_id, name)
    if bundle is None:
        return EventRefusal(
            "version_not_found",
            "Version not found",
            {"app_id": event.app_id, "version_name": event.version_name},
        )
    recording = Recording(event.app_id, event.device_id)
    failure = event.action.endswith("_fail")
    if event.action == "set" and not event.is_emulator and event.is_prod:
        recording.count(name, "install")
        await _count_replaced(session, snapshot, event, bundle, recording)
    elif failure and (
        event.action != "download_fail" or counts_download_fail(event.plugin_version)
    ):
        recording.count(name, "fail")
    recording.event(event.action, event.version_name)
    if not failure:
        recording.device = _device_seen(event)
    return recording


async def _count_replaced(
    session: AsyncSession,
    snapshot: AppSnapshot | None,
    event: StatsBody,
    installed: int,
    recording: Recording,
) -> None:
    """A ``set`` replacing another bundle uninstalls it."""
    if not event.old_version_name:
        return
    old_name = version_only(event.old_version_name)
    old = await _find_bundle(session, snapshot, event.app_id, old_name)
    if old is not None and old != installed:
        recording.count(old_name, "uninstall")
        recording.event("uninstall", event.old_version_name)


# --- answering -----------------------------------------------------------------------------


async def _single(
    session: AsyncSession, app: AppSnapshot | None, body: dict[str, Any]
) -> Recording:
    event = normalise_plugin_body(body, StatsBody)
    if app is None:
        raise unknown_app(event.app_id)
    outcome = await count_event(session, event, app)
    if isinstance(outcome, EventRefusal):
        raise PluginRefusal(outcome.code, outcome.message, **outcome.more_info)
    return outcome


def _batch_device(events: list[Any]) -> object:
    """The device a batch comes from: the one its first event names (lower-cased on reading)."""
    return events[0].get("device_id") if isinstance(events[0], dict) else None


async def _batch_item(
    session: AsyncSession,
    app_id: str,
    app: AppSnapshot | None,
    device: object,
    index: int,
    body: Any,
) -> tuple[dict[str, Any], Recording | None]:
    """One event's result entry and what it records; never raises for a bad event."""
    if app is None:
        refusal = unknown_app(app_id)
        return _error_entry(index, refusal.code, refusal.message), None
    named = body.get("device_id") if isinstance(body, dict) else None
    if named and named != device:
        # Every event of a batch counts against its (first) device's limits only, so one that
        # named another device would create and count that device for free.
        return _error_entry(index, "mixed_device_ids", MIXED_DEVICES), None
    try:
        event = normalise_plugin_body(body if isinstance(body, dict) else {}, StatsBody)
    except ApiError as error:
        return _error_entry(index, error.code, error.message), None
    outcome = await count_event(session, event, app)
    if isinstance(outcome, EventRefusal):
        entry = _error_entry(index, outcome.code, outcome.message)
        return {**entry, "moreInfo": outcome.more_info}, None
    return {"status": "ok", "index": index}, outcome


MIXED_DEVICES = "All events in a batch must come from the same device"


def _error_entry(index: int, code: str, message: str) -> dict[str, Any]:
    return {"status": "error", "error": code, "message": message, "index": index}


LIMIT = [Depends(device_rate_limit("stats", per_event=True))]


ROUTE: dict[str, Any] = {
    "dependencies": LIMIT,
    "openapi_extra": documented_body(StatsBody),
    "responses": STATS,
}


@stats_router.post("/stats", **ROUTE)
@stats_router.post("/plugin/stats", **ROUTE)
async def post_stats(request: Request, session: Session) -> JSONResponse:
    """Record one event (``{"status":"ok"}``) or a batch of one device's events
    (``{"status":"ok","results":[...]}`` with one ``{status, index}`` entry per event, errors
    included)."""
    body = await json_body(request)
    events = body if isinstance(body, list) else [body]
    if not events:
        return JSONResponse({"status": "ok", "results": []})
    _refuse_oversized_batch(events, request.app.state.settings.stats_max_batch_events)
    app_id = _batch_app_id(events)
    cache: UpdateCache = request.app.state.update_cache
    app = await cache.get(app_id)
    if not isinstance(body, list):
        record_later(request, await _single(session, app, body))
        return JSONResponse({"status": "ok"})
    results, recordings = [], []
    device = _batch_device(events)
    for index, item in enumerate(events):
        entry, recording = await _batch_item(session, app_id, app, device, index, item)
        results.append(entry)
        if recording is not None:
            recordings.append(recording)
    record_later(request, *recordings)
    return JSONResponse({"status": "ok", "results": results})


@stats_router.get("/stats", include_in_schema=False)
@stats_router.get("/plugin/stats", include_in_schema=False)
async def stats_alive() -> dict[str, str]:
    """Capgo's plugin functions answer ``GET`` with ``{"status":"ok"}``."""
    return {"status": "ok"}
