"""Telling the official ``@capgo/cli`` apart on the core REST routes, where it needs a few
answers of its own (House decisions, plan ``docs/plans/issue-16-official-cli.md`` §1.4).

The official CLI sends its key in ``capgkey`` on every call (and the raw key again in
``Authorization``); our own ``bundle_cli`` and the public API's documented examples use
``authorization``. So a request carrying a non-blank ``capgkey`` speaks the official CLI's
dialect, and only there:

- ``GET /app/{id}`` accepts keys of any mode (the CLI checks the app before an upload, with an
  ``upload`` key too) and answers an unknown, foreign or key-excluded app 404 ``app_not_found``
  (8.35's ``app add`` needs 404 for an id that is free) instead of 401 ``cannot_access_app``;
- ``POST /app`` answers a taken id 409 ``app_id_already_exists`` instead of 400
  ``cannot_create_app`` (the CLI then reads the app and succeeds when it is already the
  caller's).

Any other caller gets the answers of ``[C]``, unchanged. Nothing here grants more than the
public API does: the role checks are the same, only the key modes of one read and the status
codes differ.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from fastapi import Request

from capgo_server.auth.keys import KeyMode
from capgo_server.auth.principal import Principal, require_key
from capgo_server.db.session import Session

#: The header only the official CLI sends (``bundle_cli`` must never send it).
OFFICIAL_CLI_HEADER = "capgkey"


def from_official_cli(request: Request) -> bool:
    """Whether the request comes from the official CLI: it carries a non-blank ``capgkey``
    (a blank one is no key at all, and the key is then read from the other headers)."""
    return bool(request.headers.get(OFFICIAL_CLI_HEADER, "").strip())


def require_key_by_dialect(
    modes: Iterable[KeyMode], official_cli_modes: Iterable[KeyMode]
) -> Callable[[Request, Session], Awaitable[Principal]]:
    """A dependency resolving the caller as :func:`require_key` does, accepting keys of
    ``official_cli_modes`` from the official CLI and of ``modes`` from anyone else (so a refused
    mode still counts as a failed authentication, as everywhere)."""
    public = require_key(modes)
    official = require_key(official_cli_modes)

    async def resolve_principal(request: Request, session: Session) -> Principal:
        resolve = official if from_official_cli(request) else public
        return await resolve(request, session)

    return resolve_principal
