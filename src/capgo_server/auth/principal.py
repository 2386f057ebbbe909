"""Resolving the caller of a public API route from its headers (spec §2.2).

A route states what it needs in its signature, e.g. ``principal: AnyModeKey``; a route without
such a parameter is visibly public. Resolution order:

1. a client IP blocked for repeated failed authentications → 429 ``too_many_requests``;
2. the key from ``capgkey``, else ``authorization`` (raw, an optional ``Bearer `` is tolerated),
   else ``x-api-key``; none → 401 (``no_key_provided``, or the route's own code);
3. unknown, expired, or of a mode the route does not accept → 401 ``invalid_apikey``;
4. more than ``CAPGO_RATE_LIMIT_API_KEY_PER_MINUTE`` requests for the key → 429;
5. optional ``x-limited-key-id``: a sub-key of the same user, unexpired, of an accepted mode and
   limited to some orgs or apps, else 401 ``invalid_subkey``. The principal is then bounded by
   both keys (House decision: a sub-key narrows every route).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import select

from capgo_server.auth.keys import KeyMode, find_usable_key, is_expired
from capgo_server.auth.ratelimit import RateLimiters
from capgo_server.db.session import Session
from capgo_server.errors import ApiError
from capgo_server.models import ApiKey

ALL_MODES: frozenset[KeyMode] = frozenset(KeyMode)
WRITE_MODES: frozenset[KeyMode] = frozenset({KeyMode.write, KeyMode.all})

_SUBKEY_ID = re.compile(r"^[1-9]\d{0,17}$")


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: the key it presented and, optionally, a sub-key narrowing it.

    Every check against keys goes through the methods here, which apply *all* of the keys in
    play, so a sub-key can only ever narrow what the calling key may do.
    """

    user_id: str
    presented_key: ApiKey
    subkey: ApiKey | None = None

    @property
    def keys(self) -> tuple[ApiKey, ...]:
        return (self.presented_key,) if self.subkey is None else (self.presented_key, self.subkey)

    @property
    def effective_key(self) -> ApiKey:
        return self.subkey or self.presented_key

    @property
    def mode(self) -> KeyMode:
        return KeyMode(self.effective_key.mode)

    def has_mode(self, modes: Collection[KeyMode]) -> bool:
        return all(KeyMode(key.mode) in modes for key in self.keys)

    @property
    def is_limited(self) -> bool:
        """True when any key in play is limited to some orgs or apps."""
        return any(key.limited_to_orgs or key.limited_to_apps for key in self.keys)

    @property
    def is_app_limited(self) -> bool:
        return any(key.limited_to_apps for key in self.keys)

    def may_use_org(self, org_id: str) -> bool:
        return all(not key.limited_to_orgs or org_id in key.limited_to_orgs for key in self.keys)

    def may_use_app(self, app_id: str) -> bool:
        return all(not key.limited_to_apps or app_id in key.limited_to_apps for key in self.keys)

    @property
    def expires_at(self) -> datetime | None:
        """The earliest expiry of the keys in play (``None``: never expires)."""
        expiries = [key.expires_at for key in self.keys if key.expires_at is not None]
        return min(expiries) if expiries else None

    @property
    def presented_key_is_hashed(self) -> bool:
        return self.presented_key.is_hashed


def client_ip(request: Request) -> str:
    """The peer address, or the address a proxy named in ``CAPGO_TRUSTED_PROXIES`` forwarded
    (``capgo_server.forwarded`` settles it); never read from the headers here (a client could
    forge them)."""
    return request.client.host if request.client else "unknown"


#: Where the public API reads the key, first match wins.
KEY_HEADERS = ("capgkey", "authorization", "x-api-key")


def _presented_key(request: Request, headers: Iterable[str] = KEY_HEADERS) -> str | None:
    for header in headers:
        value = request.headers.get(header, "").strip()
        if value.lower().startswith("bearer "):
            value = value[7:].strip()
        if value:
            return value
    return None


def too_many_requests(retry_after: int, **more_info: Any) -> ApiError:
    """429 ``too_many_requests`` with ``Retry-After`` (every rate limit of the server)."""
    return ApiError(
        429,
        "too_many_requests",
        "You are being rate limited",
        {"retry_after": retry_after, **more_info},
        headers={"Retry-After": str(retry_after)},
    )


INVALID_APIKEY = ApiError(401, "invalid_apikey", "Invalid apikey")
NO_KEY = ApiError(401, "no_key_provided", "No key provided")
NO_KEY_V2 = ApiError(401, "no_jwt_apikey_or_subkey", "No JWT, apikey or subkey provided")


async def _resolve_subkey(
    session: Session, parent: ApiKey, header: str, modes: Collection[KeyMode]
) -> ApiKey:
    invalid = ApiError(401, "invalid_subkey", "Invalid subkey")
    if not _SUBKEY_ID.match(header):
        raise invalid
    subkey = await session.scalar(
        select(ApiKey).where(ApiKey.id == int(header), ApiKey.user_id == parent.user_id)
    )
    if subkey is None or is_expired(subkey) or KeyMode(subkey.mode) not in modes:
        raise invalid
    if not subkey.limited_to_orgs and not subkey.limited_to_apps:
        raise ApiError(401, "invalid_subkey", "Invalid subkey, no limited apps or orgs")
    return subkey


def require_key(
    modes: Iterable[KeyMode], missing: ApiError = NO_KEY, headers: Iterable[str] = KEY_HEADERS
) -> Callable[[Request, Session], Awaitable[Principal]]:
    """A dependency resolving the caller; only keys of ``modes`` are accepted, read from the
    first of ``headers`` present (the official CLI's Supabase routes read ``capgkey`` only)."""
    accepted = frozenset(modes)
    key_headers = tuple(headers)

    async def resolve_principal(request: Request, session: Session) -> Principal:
        limiters: RateLimiters = request.app.state.rate_limiters
        ip = client_ip(request)
        if (wait := limiters.failed_auth_per_ip.retry_after(ip)) is not None:
            raise too_many_requests(wait)
        presented = _presented_key(request, key_headers)
        if presented is None:
            limiters.failed_auth_per_ip.hit(ip)
            raise missing
        key = await find_usable_key(session, presented)
        if key is None or KeyMode(key.mode) not in accepted:
            limiters.failed_auth_per_ip.hit(ip)
            raise INVALID_APIKEY
        if (wait := limiters.requests_per_key.hit(str(key.id))) is not None:
            raise too_many_requests(wait)
        header = request.headers.get("x-limited-key-id")
        if header is None:
            return Principal(user_id=key.user_id, presented_key=key)
        subkey = await _resolve_subkey(session, key, header.strip(), accepted)
        return Principal(user_id=key.user_id, presented_key=key, subkey=subkey)

    return resolve_principal


#: Any valid key (``/organization`` routes).
AnyModeKey = Annotated[Principal, Depends(require_key(ALL_MODES))]
#: A key of mode ``all`` (``/apikey`` routes, which Capgo guards with ``middlewareV2(['all'])``).
AllModeKey = Annotated[Principal, Depends(require_key({KeyMode.all}, missing=NO_KEY_V2))]
#: Keys of mode all, write or read (``GET /channel``, ``/device``, ``/bundle``).
ReadKey = Annotated[Principal, Depends(require_key({KeyMode.all, KeyMode.write, KeyMode.read}))]
#: Keys of mode all or write (changes to channels, devices, bundles, apps).
WriteKey = Annotated[Principal, Depends(require_key(WRITE_MODES))]
#: Keys of mode all or read (``GET /app``).
AppReadKey = Annotated[Principal, Depends(require_key({KeyMode.all, KeyMode.read}))]
#: Keys of mode all, write or upload (bundle uploads).
UploadKey = Annotated[Principal, Depends(require_key({KeyMode.all, KeyMode.write, KeyMode.upload}))]
#: Keys of mode all or read, missing key answered as ``middlewareV2`` does (``/statistics``).
StatsKey = Annotated[
    Principal, Depends(require_key({KeyMode.all, KeyMode.read}, missing=NO_KEY_V2))
]
