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
from capgo_server.openapi import error_responses
from capgo_server.parsing import validate
from capgo_server.routing import router
from capgo_server.statistics import graph, service
from capgo_server.statistics.measures import Usage
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
_SVG_OR_JSON: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"image/svg+xml": {"schema": {"type": "string"}}},
        "description": "The points as JSON, or an SVG chart when `graph` is given.",
    },
    **_REFUSALS,
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


def _svg(query: StatisticsQuery, title: str, series: list[tuple[str, Usage]]) -> Response:
    assert query.graph is not None
    days = service.requested_days(query)
    svg = graph.render(query.graph, title, days, series, (query.first, query.last))
    return Response(svg, media_type="image/svg+xml")


async def _totals(session: Session, subject: service.Subject, query: StatisticsQuery) -> Response:
    """The subject's points summed over its apps, as JSON or a chart."""
    days = service.requested_days(query)
    total = await service.total_usage(session, subject, days)
    if query.graph:
        return _svg(query, subject.title, [(subject.title, total)])
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
    return await _totals(session, subject, _query(request))


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
    if not query.breakdown:
        return await _totals(session, subject, query)
    days = service.requested_days(query)
    total, per_app = await service.usage_by_app(session, subject, days)
    if query.graph:
        return _svg(query, subject.title, [("All apps", total), *per_app.items()])
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
    return await _totals(session, subject, _query(request))
