"""Which client address a request has: the peer's, unless the peer is a proxy the operator named.

The failed-authentication lockout, the per-IP device limit and the access log all key on the
client address (``auth.principal.client_ip``), so a client that could choose it would escape
the first two and write what it likes into the third. ``X-Forwarded-For`` and
``X-Forwarded-Proto`` are therefore believed only from a peer inside
``CAPGO_TRUSTED_PROXIES`` (empty by default: from no one). The app decides this itself
(:class:`ForwardedHeadersMiddleware`), so it holds however the app is served: ``serve`` turns
uvicorn's own proxy handling off, which would otherwise trust any loopback peer.

Plain ``uvicorn capgo_server.app:create_app`` still runs uvicorn's handling before the app,
and rewrites the address of a loopback peer to whatever its ``X-Forwarded-For`` says; the
real peer is then lost. The app recognises that case (the address it is given is one the
header names, and the app does not trust the peer) and counts such a request as from an
unknown client: one shared bucket, so rotating the header buys nothing. Nothing in the app
reads ``Forwarded`` (RFC 7239) or ``X-Forwarded-Host``; URLs the server hands out are built
from ``CAPGO_PUBLIC_URL``.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Sequence
from typing import Any, cast

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from capgo_server.settings import IPNetwork

logger = logging.getLogger("uvicorn.error")


def _is_in(host: str, networks: Sequence[IPNetwork]) -> bool:
    if not networks:  # the default: no parsing on the hot path
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:  # a unix socket path, or a name
        return False
    return any(address in network for network in networks)


def _forwarded_for_hosts(headers: Iterable[tuple[bytes, bytes]]) -> set[str]:
    """The hosts ``X-Forwarded-For`` names (without ports), read as uvicorn reads them."""
    hosts = set()
    for name, value in headers:
        if name != b"x-forwarded-for":
            continue
        for entry in value.decode("latin-1").split(","):
            entry = entry.strip()
            if entry.startswith("[") and "]" in entry:  # [v6]:port
                entry = entry[1 : entry.index("]")]
            elif entry.count(":") == 1:  # v4:port
                entry = entry.split(":", 1)[0]
            hosts.add(entry)
    return hosts


class ForwardedHeadersMiddleware:
    """Sets the request's client (and scheme) from forwarded headers sent by a trusted proxy
    (uvicorn's :class:`ProxyHeadersMiddleware`: the right-most address not itself trusted), and
    drops a client address that an outer layer took from the header without the app's trust.

    Changes ``scope["client"]`` in place, so uvicorn's access log shows the same address.
    """

    def __init__(
        self,
        app: ASGIApp,
        trusted_proxies: Sequence[IPNetwork],
        proxy_headers_outside: bool = True,
    ) -> None:
        self.app = app
        self.trusted_proxies = tuple(trusted_proxies)
        # Under ``serve`` nothing outside rewrites addresses: a client naming itself in the
        # header is just that client (moving it to the shared "unknown" bucket would give it a
        # fresh lockout budget, and let it lock every "unknown" client out).
        self.proxy_headers_outside = proxy_headers_outside
        # Starlette's and uvicorn's ASGI types describe the same callables (uvicorn's in more
        # detail), hence the Any.
        self.from_trusted_proxy: Any = (
            ProxyHeadersMiddleware(
                cast(Any, app), [str(network) for network in self.trusted_proxies]
            )
            if self.trusted_proxies
            else app
        )
        self.warned = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not scope.get("client"):
            await self.app(scope, receive, send)
            return
        host = scope["client"][0]
        if _is_in(host, self.trusted_proxies):
            await self.from_trusted_proxy(scope, receive, send)
            return
        if self.proxy_headers_outside and host in _forwarded_for_hosts(scope["headers"]):
            self._warn_once(host)
            scope["client"] = None  # client_ip() answers "unknown"
        await self.app(scope, receive, send)

    def _warn_once(self, host: str) -> None:
        if not self.warned:
            self.warned = True
            logger.warning(
                "a request came from %r, an address its own X-Forwarded-For names: counted as "
                "an unknown client (and so are the next ones). Either uvicorn took the address "
                "from the header (plain uvicorn trusts loopback peers: serve with "
                "`capgo-server serve`, or pass --no-proxy-headers, and name the proxies in "
                "CAPGO_TRUSTED_PROXIES) or the client named itself",
                host,
            )
