"""``/statistics`` (spec §3.3): monthly active users, storage and bandwidth per day, as JSON or
as an SVG chart (``graph``), for an app, an organization or everything the caller may read.

Keys of mode ``all`` or ``read`` only; no plan gate (House decisions).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from capgo_server.auth.principal import StatsKey
from capgo_server.db.session import Session
from capgo_server.openapi import ErrorBody, error_responses
from capgo_server.parsing import validate
from capgo_server.routing import router
from capgo_server.statistics import graph, service
from capgo_server.statistics.renderer import ChartRenderer
from capgo_server.statistics.schemas import (
    BundleUsage,
    DayRangeQuery,
    OrgBreakdown,
    StatisticsQuery,
    StatsPoint,
)

statistics_router = router(prefix="/statistics", tags=["statistics"])

_REFUSALS = error_responses(
    400,
    401,
    429,
    descriptions={
        400: "`invalid_body`: missing or malformed `from`/`to`/`graph`",
        401: "`invalid_apikey`, `no_jwt_apikey_or_subkey`, or no access",
    },
)
_CHARTS_BUSY: dict[int | str, dict[str, Any]] = {
    503: {
        "model": ErrorBody,
        "description": "`charts_busy` (with `graph` only): every chart renderer of the worker "
        "stayed busy for `CAPGO_CHART_WAIT_SECONDS`; `Retry-After` says when to try again",
        "headers": {
            "Retry-After": {"description": "Seconds to wait", "schema": {"type": "string"}}
        },
    }
}
_SVG_OR_JSON: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"image/svg+xml": {"schema": {"type": "string"}}},
        "description": "The points as JSON, or an SVG chart when `graph` is given.",
    },
    **_REFUSALS,
    **_CHARTS_BUSY,
}


def _query_parameters(model: type[DayRangeQuery]) -> dict[str, Any]:
    """``openapi_extra`` listing the query fields the handler validates itself."""
    schema = model.model_json_schema(by_alias=True)
    required = set(schema.get("required", []))
    return {
        "parameters": [
            {"name": name, "in": "query", "required": name in required, "schema": field}
            for name, field in schema["properties"].items()
        ]
    }


def _query(request: Request) -> StatisticsQuery:
    return validate(StatisticsQuery, dict(request.query_params))


async def _chart(
    request: Request,
    session: Session,
    subject: service.Subject,
    query: StatisticsQuery,
    breakdown: bool = False,
) -> Response:
    """The SVG chart of ``query.graph``: one line for the subject, plus one per app (bounded,
    see graph.py) with ``breakdown``. Served a few at a time per worker, database reads included,
    and drawn in a renderer process (statistics.renderer)."""
    metric = query.graph
    assert metric is not None
    renderer: ChartRenderer = request.app.state.chart_renderer
    requested = (query.first, query.last)
    async with renderer.slot():
        days = service.requested_days(query)
        lines = await service.metric_by_app(session, subject, days, metric, per_app=breakdown)
        if breakdown:  # the total is summed in the renderer, off the event loop
            chart = graph.Chart(metric, subject.title, days.first, requested, [], apps=lines)
        else:
            chart = graph.Chart(metric, subject.title, days.first, requested, lines)
        svg = await renderer.draw(chart)
    return Response(svg, media_type="image/svg+xml")


async def _totals(
    request: Request, session: Session, subject: service.Subject, query: StatisticsQuery
) -> Response:
    """The subject's points summed over its apps, as JSON or a chart."""
    if query.graph:
        return await _chart(request, session, subject, query)
    days = service.requested_days(query)
    total = await service.total_usage(session, subject, days)
    # Built as plain dicts in the documented shape (thousands of points; see service.points).
    return JSONResponse(service.points(days, total))


@statistics_router.get(
    "/app/{app_id}",
    response_model=list[StatsPoint],
    responses=_SVG_OR_JSON,
    openapi_extra=_query_parameters(StatisticsQuery),
)
async def app_statistics(
    app_id: str, request: Request, session: Session, principal: StatsKey
) -> Response:
    """One app's points per day (401 ``no_access_to_app`` for unknown and foreign apps)."""
    subject = await service.app_subject(session, principal, app_id)
    return await _totals(request, session, subject, _query(request))


@statistics_router.get(
    "/app/{app_id}/bundle_usage",
    response_model=BundleUsage,
    responses=_REFUSALS,
    openapi_extra=_query_parameters(DayRangeQuery),
)
async def bundle_usage(
    app_id: str, request: Request, session: Session, principal: StatsKey
) -> BundleUsage:
    """Share of the app's devices on each bundle per day, with daily installs, uninstalls and
    failures."""
    await service.app_subject(session, principal, app_id)
    query = validate(DayRangeQuery, dict(request.query_params))
    return await service.app_bundle_usage(session, app_id, service.requested_days(query))


@statistics_router.get(
    "/org/{org_id}",
    response_model=list[StatsPoint] | OrgBreakdown,
    responses=_SVG_OR_JSON,
    openapi_extra=_query_parameters(StatisticsQuery),
)
async def org_statistics(
    org_id: str, request: Request, session: Session, principal: StatsKey
) -> Response:
    """An organization's points per day, summed over its apps; ``breakdown=true`` adds each
    app's (``{"global", "byApp"}``)."""
    subject = await service.org_subject(session, principal, org_id)
    query = _query(request)
    if query.graph:
        return await _chart(request, session, subject, query, breakdown=query.breakdown)
    if not query.breakdown:
        return await _totals(request, session, subject, query)
    days = service.requested_days(query)
    total, per_app = await service.usage_by_app(session, subject, days)
    return JSONResponse(service.breakdown(days, total, per_app))


@statistics_router.get(
    "/user",
    response_model=list[StatsPoint],
    responses=_SVG_OR_JSON,
    openapi_extra=_query_parameters(StatisticsQuery),
)
async def user_statistics(request: Request, session: Session, principal: StatsKey) -> Response:
    """Points per day summed over every app the key may read, in all its organizations."""
    subject = await service.user_subject(session, principal)
    return await _totals(request, session, subject, _query(request))
