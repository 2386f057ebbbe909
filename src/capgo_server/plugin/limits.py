"""Rate limits of the device endpoints (spec §2.5, House decisions).

Installed apps call ``/updates``, ``/stats`` and ``/channel_self`` without credentials, so the
only names a request carries are ones the client chose. Each request therefore counts against
*two* limits, and either one answers 429:

* per client IP, across all device endpoints (``CAPGO_RATE_LIMIT_IP_PER_MINUTE``): an attacker
  rotating ``device_id`` values from one address still runs into this one;
* per (endpoint, app, device) (``CAPGO_RATE_LIMIT_DEVICE_PER_MINUTE``), counted only when the
  request names both an ``app_id`` and a ``device_id``: one misbehaving device cannot use up its
  office NAT's budget for the others.

``POST /channel_self`` adds Capgo's rule that a device asks for the *same* channel at most once
per ``CAPGO_RATE_LIMIT_CHANNEL_SELF_SAME_CHANNEL_SECONDS`` (60 s by default).

The public ``/device`` routes (management, with an API key) are limited per (operation, app,
device) after the key is checked, and not per IP (the per-key limit already bounds a client).

A refusal is the public API's error shape, as every other 429 of this server::

    HTTP 429, Retry-After: <seconds>
    {"error": "too_many_requests", "message": "You are being rate limited",
     "moreInfo": {"retry_after": <seconds>, "app_id": ..., "device_id": ...}}

(``app_id``/``device_id`` only when the per-device limit refused.) Requests are counted even when
they then fail, as Capgo does. Limits live in process memory (:mod:`capgo_server.auth.ratelimit`).

How to use — on a device endpoint, one line per route::

    @updates_router.post("/updates", dependencies=[Depends(device_rate_limit("updates"))])

The dependency reads ``app_id``/``device_id`` from the JSON body if it is an object (the first
element of an array, for ``/stats`` batches), else from the query string. A ``/stats`` batch
(``per_event=True``) counts each of its events against both limits: it comes from one device
(the first event's; the handler refuses events naming another), and one request of N events
uses what N single events would. A request is let through when its window has room for its
first event, so a full batch from the plugin (up to ``CAPGO_STATS_MAX_BATCH_EVENTS``) never
waits forever; a window therefore takes at most ``limit - 1 + CAPGO_STATS_MAX_BATCH_EVENTS``
events. It never fails on bad input: the handler still answers 400 for a malformed body (the
body is cached, so the handler can read it again); a body over ``CAPGO_MAX_BODY_BYTES`` is 413
here already.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request

from capgo_server.auth.principal import ReadKey, WriteKey, client_ip, too_many_requests
from capgo_server.auth.ratelimit import RateLimiters
from capgo_server.parsing import parsed_json

#: Operation names used by the device endpoints (each its own per-device bucket).
DEVICE_OPS = frozenset(
    {
        "updates",
        "stats",
        "channel_self_set",
        "channel_self_get",
        "channel_self_delete",
        "channel_self_list",
    }
)


async def event_count(request: Request) -> int:
    """How many events the body carries: the length of a JSON array, else 1."""
    if request.method in ("GET", "HEAD"):
        return 1
    parsed = await parsed_json(request)
    return max(len(parsed), 1) if isinstance(parsed, list) else 1


async def request_fields(request: Request) -> dict[str, Any]:
    """The JSON object of the body (first element of an array), else the query parameters.

    Never raises for bad input; returns ``{}`` when nothing usable is there.
    """
    if request.method not in ("GET", "HEAD"):
        parsed = await parsed_json(request)
        if isinstance(parsed, list) and parsed:
            parsed = parsed[0]
        if isinstance(parsed, dict):
            return parsed
    return dict(request.query_params)


def _device_ids(fields: dict[str, Any]) -> tuple[str, str] | None:
    app_id, device_id = fields.get("app_id"), fields.get("device_id")
    if isinstance(app_id, str) and app_id and isinstance(device_id, str) and device_id:
        return app_id, device_id.lower()
    return None


def _limit_device(limiters: RateLimiters, op: str, fields: dict[str, Any], cost: int = 1) -> None:
    ids = _device_ids(fields)
    if ids is None:
        return
    app_id, device_id = ids
    if (wait := limiters.device_requests.hit((op, app_id, device_id), cost)) is not None:
        raise too_many_requests(wait, app_id=app_id, device_id=device_id)


def device_rate_limit(
    op: str, *, same_channel_once: bool = False, per_event: bool = False
) -> Callable[[Request], Awaitable[None]]:
    """A dependency limiting a device endpoint; ``op`` names its per-device bucket.

    Add it to every device route (both the ``/x`` and ``/plugin/x`` paths, with the same ``op``
    so they share a bucket)::

        dependencies=[Depends(device_rate_limit("updates"))]          # POST /updates
        dependencies=[Depends(device_rate_limit("stats", per_event=True))]  # POST /stats
        dependencies=[Depends(device_rate_limit("channel_self_set", same_channel_once=True))]
        dependencies=[Depends(device_rate_limit("channel_self_get"))]     # PUT /channel_self
        dependencies=[Depends(device_rate_limit("channel_self_delete"))]  # DELETE /channel_self
        dependencies=[Depends(device_rate_limit("channel_self_list"))]    # GET /channel_self

    ``same_channel_once``: also refuse a second request naming the same ``channel`` for the same
    (app, device) within ``CAPGO_RATE_LIMIT_CHANNEL_SELF_SAME_CHANNEL_SECONDS``.
    ``per_event``: a JSON array body counts one hit per element (``/stats`` batches).
    """
    if op not in DEVICE_OPS:
        raise ValueError(f"unknown device endpoint operation {op!r}")

    async def limit_device_request(request: Request) -> None:
        limiters: RateLimiters = request.app.state.rate_limiters
        cost = await event_count(request) if per_event else 1
        if (wait := limiters.device_requests_per_ip.hit(client_ip(request), cost)) is not None:
            raise too_many_requests(wait)
        fields = await request_fields(request)
        _limit_device(limiters, op, fields, cost)
        channel = fields.get("channel")
        ids = _device_ids(fields)
        if same_channel_once and ids is not None and isinstance(channel, str) and channel:
            key = (*ids, channel)
            if (wait := limiters.channel_self_same_channel.hit(key)) is not None:
                raise too_many_requests(wait, app_id=ids[0], device_id=ids[1])

    return limit_device_request


# The public ``/device`` routes: the key is checked first (FastAPI caches the principal, so the
# handler's own ``ReadKey``/``WriteKey`` does not resolve it twice), then (op, app, device).


async def device_get_rate_limit(request: Request, _: ReadKey) -> None:
    """``GET /device``: ``dependencies=[Depends(device_get_rate_limit)]``."""
    _limit_device(request.app.state.rate_limiters, "device_get", await request_fields(request))


async def device_post_rate_limit(request: Request, _: WriteKey) -> None:
    """``POST /device``: ``dependencies=[Depends(device_post_rate_limit)]``."""
    _limit_device(request.app.state.rate_limiters, "device_post", await request_fields(request))


async def device_delete_rate_limit(request: Request, _: WriteKey) -> None:
    """``DELETE /device``: ``dependencies=[Depends(device_delete_rate_limit)]``."""
    _limit_device(request.app.state.rate_limiters, "device_delete", await request_fields(request))
