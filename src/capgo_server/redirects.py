"""Slash redirects that never name the host a request claims.

Starlette answers ``/docs/`` with a 307 to ``/docs`` (and ``/docs/static`` to
``/docs/static/``) and builds that ``Location`` as an absolute URL from the request's ``Host``
header: any client could make this server redirect to a host of its choosing, which a shared
cache in front of it would then serve to everyone. This server makes no other redirect, so
every redirect's ``Location`` is cut down to its path and query, which browsers and HTTP
clients resolve against the address they actually asked.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def relative_location(location: str) -> str:
    """``location``'s path and query. Leading slashes collapse to one, so that the result is
    never a protocol-relative URL (``//other.host/``) nor read as one (``/\\other.host``)."""
    parts = urlsplit(location)
    path = "/" + parts.path.lstrip("/\\")
    return f"{path}?{parts.query}" if parts.query else path


class RelativeRedirectsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_relative(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in _REDIRECTS:
                message["headers"] = [
                    (name, relative_location(value.decode("latin-1")).encode("latin-1"))
                    if name.lower() == b"location"
                    else (name, value)
                    for name, value in message.get("headers", [])
                ]
            await send(message)

        await self.app(scope, receive, send_relative)
