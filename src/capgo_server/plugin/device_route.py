"""The route class of the device endpoints (``/updates``, ``/stats``, ``/channel_self``).

Besides the recorder's bookkeeping, it calls the hot endpoints directly. An endpoint of the
shape ``async def f(request: Request[, session: Session]) -> SomeResponse`` whose other
dependencies each take only the request (the device rate limit) needs none of FastAPI's
per-request work: no parameters to extract, no body model, no return value to serialise. The
route then runs the checks and the endpoint itself, which saves about a third of the request
path's own CPU time (182 to 127 µs in-process). Any other shape (``PUT /channel_self``
answering a ``dict``, say) goes through FastAPI's handler as usual, so a new endpoint never
silently loses a parameter.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, get_args

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.background import BackgroundTask

from capgo_server.db.session import Session, in_transaction
from capgo_server.plugin.recorder import Recorder
from capgo_server.plugin.recording import PENDING

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
#: The dependency behind :data:`~capgo_server.db.session.Session`.
_REQUEST_SESSION = get_args(Session)[1].dependency


class DeviceRoute(APIRoute):
    """The route class of the device endpoints: one transaction per request (as every route)
    when the handler asks for the request's ``Session``, none when it does not (``/updates``
    answers from the worker's cache), and the bookkeeping that lets the recorder tell when the
    server is idle."""

    def get_route_handler(self) -> Handler:
        handler = _direct_handler(self) or super().get_route_handler()
        if _uses_session(self.dependant):
            handler = in_transaction(handler)

        async def handle_device_request(request: Request) -> Response:
            recorder: Recorder = request.app.state.recorder
            recorder.request_started()
            try:
                await recorder.make_room()
                response = await handler(request)  # committed when it returns
            except BaseException:
                await recorder.request_finished()
                raise
            recorder.submit(getattr(request.state, PENDING, ()))
            response.background = BackgroundTask(
                _then_settle, response.background, recorder.request_finished
            )
            return response

        return handle_device_request


def _direct_handler(route: APIRoute) -> Handler | None:
    """The endpoint called without FastAPI's dependency solving, when its shape allows (see the
    module docstring); else ``None``."""
    dependant = route.dependant
    endpoint = route.endpoint
    returns = inspect.signature(endpoint, eval_str=True).return_annotation
    if (
        not inspect.iscoroutinefunction(endpoint)
        or not (inspect.isclass(returns) and issubclass(returns, Response))
        or dependant.request_param_name is None
        or _has_other_parameters(dependant)
    ):
        return None
    session_names = [d.name for d in dependant.dependencies if d.call is _REQUEST_SESSION]
    if len(session_names) > 1 or not all(
        _takes_only_the_request(d) for d in dependant.dependencies
    ):
        return None
    # (check, the name of its request parameter): each a request-only coroutine function.
    checks: list[tuple[Callable[..., Awaitable[Any]], str]] = [
        (d.call, d.request_param_name)
        for d in dependant.dependencies
        if d.call is not None and d.call is not _REQUEST_SESSION and d.request_param_name
    ]
    request_name = dependant.request_param_name
    session_name = session_names[0] if session_names else None

    async def call_endpoint(request: Request) -> Response:
        for check, name in checks:
            await check(**{name: request})
        arguments: dict[str, Any] = {request_name: request}
        if session_name is not None:
            arguments[session_name] = request.state.db_session
        response: Response = await endpoint(**arguments)
        return response

    return call_endpoint


def _has_other_parameters(dependant: Dependant) -> bool:
    """Whether FastAPI would hand the endpoint anything besides the request and dependencies."""
    return bool(
        dependant.path_params
        or dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or dependant.body_params
        or dependant.websocket_param_name
        or dependant.http_connection_param_name
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
    )


def _takes_only_the_request(dependant: Dependant) -> bool:
    """A dependency that is a coroutine function of the request alone (or the session)."""
    if dependant.call is _REQUEST_SESSION:
        return dependant.name is not None
    return (
        inspect.iscoroutinefunction(dependant.call)
        and dependant.request_param_name is not None
        and not dependant.dependencies
        and not _has_other_parameters(dependant)
    )


def _uses_session(dependant: Dependant) -> bool:
    """Whether the handler or any of its dependencies asks for the request session."""
    return dependant.call is _REQUEST_SESSION or any(
        _uses_session(d) for d in dependant.dependencies
    )


async def _then_settle(
    first: Callable[[], Awaitable[None]] | None, settle: Callable[[], Awaitable[None]]
) -> None:
    try:
        if first is not None:
            await first()
    finally:
        await settle()
