"""The route class of the device endpoints (``/updates``, ``/stats``, ``/channel_self``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, get_args

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.background import BackgroundTask

from capgo_server.db.session import Session, TransactionalRoute
from capgo_server.plugin.recorder import Recorder
from capgo_server.plugin.recording import PENDING


class DeviceRoute(TransactionalRoute):
    """The route class of the device endpoints: one transaction per request (as every route)
    when the handler asks for the request's ``Session``, none when it does not (``/updates``
    answers from the worker's cache), and the bookkeeping that lets the recorder tell when the
    server is idle."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        if _uses_session(self):
            handler = super().get_route_handler()
        else:
            handler = APIRoute.get_route_handler(self)

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


def _uses_session(route: APIRoute) -> bool:
    """Whether the route's handler or any of its dependencies asks for the request session."""
    wanted = get_args(Session)[1].dependency

    def asks(dependant: Dependant) -> bool:
        return dependant.call is wanted or any(asks(d) for d in dependant.dependencies)

    return asks(route.dependant)


async def _then_settle(
    first: Callable[[], Awaitable[None]] | None, settle: Callable[[], Awaitable[None]]
) -> None:
    try:
        if first is not None:
            await first()
    finally:
        await settle()
