"""One database transaction per request.

:class:`TransactionalRoute` opens a session before the handler runs, commits it when the handler
returns, and rolls it back when anything raises — before the response is sent. Handlers and
services therefore only ``flush()``; they never commit. :func:`get_session` is the dependency that
hands the request's session to a handler.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


class TransactionalRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return in_transaction(super().get_route_handler())


def in_transaction(
    handler: Callable[[Request], Coroutine[Any, Any, Response]],
) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    """``handler`` with the request's session: committed when it returns, rolled back when
    anything raises, before the response is sent.

    A handler that never touched the database (``POST /stats`` answering from the worker's
    cache) has no transaction to end, and its session holds no connection: it costs neither a
    commit nor a close.
    """

    async def handle_in_transaction(request: Request) -> Response:
        sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
        session = sessionmaker()
        request.state.db_session = session
        try:
            response = await handler(request)
            if session.in_transaction():
                await session.commit()
            return response
        finally:
            if session.in_transaction():  # the handler raised, or the commit failed
                await session.close()  # rolls back, and releases the connection

    return handle_in_transaction


async def _request_session(request: Request) -> AsyncSession:
    # ``async`` although it awaits nothing: FastAPI runs a plain ``def`` dependency in a thread
    # pool, a thread hand-off on every request of every route.
    session = getattr(request.state, "db_session", None)
    if not isinstance(session, AsyncSession):
        raise RuntimeError("route is not a TransactionalRoute; use capgo_server.routing.router()")
    return session


Session = Annotated[AsyncSession, Depends(_request_session)]
