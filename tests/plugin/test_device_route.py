"""``DeviceRoute``: the endpoints it calls directly keep their checks and their transaction, and
the ones it cannot call directly keep FastAPI's parameter handling.

Each test mounts a few throwaway device endpoints on the test app and drives them over HTTP.
"""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import func, select

from capgo_server.db.session import Session
from capgo_server.errors import ApiError
from capgo_server.models import User
from capgo_server.plugin.device_route import DeviceRoute, _direct_handler
from capgo_server.plugin.stats import stats_router
from capgo_server.plugin.updates import updates_router


async def refuse_when_asked(request: Request) -> None:
    if request.headers.get("x-refuse"):
        raise ApiError(429, "too_many_requests", "refused by the check")


def probe_router() -> APIRouter:
    router = APIRouter(route_class=DeviceRoute)

    @router.post("/probe/plain", dependencies=[Depends(refuse_when_asked)])
    async def plain(request: Request) -> JSONResponse:
        return JSONResponse({"body": (await request.json())["say"]})

    @router.post("/probe/write", dependencies=[Depends(refuse_when_asked)])
    async def write(request: Request, session: Session) -> JSONResponse:
        body = await request.json()
        session.add(User(email=body["email"]))
        await session.flush()
        if body.get("fail_after_writing"):
            raise ApiError(400, "invalid_body", "failed after writing")
        return JSONResponse({"written": body["email"]})

    @router.get("/probe/query")
    async def with_query(request: Request, count: int) -> dict[str, int]:
        return {"count": count}

    return router


@pytest.fixture
def probed(app: FastAPI) -> FastAPI:
    app.include_router(probe_router())
    return app


async def users_named(app: FastAPI, email: str) -> int:
    async with app.state.sessionmaker() as session:
        found: int = await session.scalar(
            select(func.count()).select_from(User).where(User.email == email)
        )
        return found


def test_the_hot_endpoints_are_called_directly() -> None:
    for router in (updates_router, stats_router):
        posts = [r for r in router.routes if "POST" in getattr(r, "methods", ())]
        assert posts
        assert all(_direct_handler(route) is not None for route in posts)  # type: ignore[arg-type]
    routes = {r.path: r for r in probe_router().routes}  # type: ignore[attr-defined]
    assert _direct_handler(routes["/probe/plain"]) is not None
    assert _direct_handler(routes["/probe/write"]) is not None
    # A query parameter is FastAPI's to extract and validate.
    assert _direct_handler(routes["/probe/query"]) is None


async def test_direct_endpoint_runs_its_checks_first(
    probed: FastAPI, client: httpx.AsyncClient
) -> None:
    answered = await client.post("/probe/plain", json={"say": "hello"})
    assert answered.status_code == 200
    assert answered.json() == {"body": "hello"}

    refused = await client.post("/probe/plain", json={"say": "hello"}, headers={"x-refuse": "1"})
    assert refused.status_code == 429
    assert refused.json()["error"] == "too_many_requests"


async def test_direct_endpoint_with_a_session_commits_or_rolls_back(
    probed: FastAPI, client: httpx.AsyncClient
) -> None:
    kept = await client.post("/probe/write", json={"email": "kept@example.com"})
    assert kept.status_code == 200
    assert kept.json() == {"written": "kept@example.com"}
    assert await users_named(probed, "kept@example.com") == 1

    failed = await client.post(
        "/probe/write", json={"email": "lost@example.com", "fail_after_writing": True}
    )
    assert failed.status_code == 400
    assert failed.json()["error"] == "invalid_body"
    assert await users_named(probed, "lost@example.com") == 0

    # Refused by its check: the endpoint never ran.
    refused = await client.post(
        "/probe/write", json={"email": "never@example.com"}, headers={"x-refuse": "1"}
    )
    assert refused.status_code == 429
    assert await users_named(probed, "never@example.com") == 0

    # The failed request's session let its connection go: the next write still works.
    again = await client.post("/probe/write", json={"email": "again@example.com"})
    assert again.status_code == 200
    assert await users_named(probed, "again@example.com") == 1


async def test_other_shapes_keep_fastapis_parameters(
    probed: FastAPI, client: httpx.AsyncClient
) -> None:
    answered = await client.get("/probe/query", params={"count": "3"})
    assert answered.status_code == 200
    assert answered.json() == {"count": 3}

    refused = await client.get("/probe/query", params={"count": "three"})
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_body"
