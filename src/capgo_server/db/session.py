"""One database transaction per request.

:class:`TransactionalRoute` opens a session before the handler runs, commits it when the handler
returns, and rolls it back when anything raises — before the response is sent. Handlers and
services therefore only ``flush()``; they never commit. :func:`get_session` is the dependency that
hands the request's session to a handler.

The whole request body is read (and size-limited) before the session is opened, so no database
connection waits on a client that is still sending: the session takes a connection at its first
query (resolving the API key) and keeps it to the end of the request. Otherwise any valid key,
read-only included, could hold every connection of the pool by trickling its bodies, and every
other tenant's request would wait for one. A route that streams its body to storage (the tus
``PATCH``) says so with ``reads_body_first = False`` and ends its transaction itself before it
reads (:func:`release_connection`).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from capgo_server.parsing import read_body


class TransactionalRoute(APIRoute):
    #: Whether the body is read in full before the session opens (see the module docstring).
    reads_body_first = True

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return in_transaction(super().get_route_handler(), read_body_first=self.reads_body_first)


def in_transaction(
    handler: Callable[[Request], Coroutine[Any, Any, Response]],
    *,
    read_body_first: bool = True,
) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    """``handler`` with the request's session: committed when it returns, rolled back when
    anything raises, before the response is sent. With ``read_body_first``, the body is read
    (413 past ``CAPGO_MAX_BODY_BYTES``) before the session exists.

    A handler that never touched the database (``POST /stats`` answering from the worker's
    cache) has no transaction to end, and its session holds no connection: it costs neither a
    commit nor a close.
    """

    async def handle_in_transaction(request: Request) -> Response:
        if read_body_first:
            await read_body(request)  # cached on the request for the handler's own readers
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


async def release_connection(session: AsyncSession) -> None:
    """Commit what the request has done so far, which gives its connection back to the pool;
    the session takes another at its next query. For a handler that is about to wait on its
    client (streaming an upload): it must hold no connection meanwhile."""
    if session.in_transaction():
        await session.commit()


async def _request_session(request: Request) -> AsyncSession:
    # ``async`` although it awaits nothing: FastAPI runs a plain ``def`` dependency in a thread
    # pool, a thread hand-off on every request of every route.
    session = getattr(request.state, "db_session", None)
    if not isinstance(session, AsyncSession):
        raise RuntimeError("route is not a TransactionalRoute; use capgo_server.routing.router()")
    return session


Session = Annotated[AsyncSession, Depends(_request_session)]
