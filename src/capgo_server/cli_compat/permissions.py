"""What ``rpc/cli_check_permission`` answers: may this key do ``permission_key`` (plan §4.3)?

The official CLI asks before each step of a command whether its key holds a named Capgo
permission. Each name maps to the role and key modes of the public route that will do the step,
checked by ``authorize_org`` / ``authorize_app``, so the answer cannot drift from what the route
then allows. "No" is ``False``, never an error: the CLI treats an error as fatal. The one
exception is an organization's key policy (an expiring or hashed key required), a 401 whose
message tells the user which key to use.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from capgo_server.auth.access import authorize_app, authorize_org
from capgo_server.auth.keys import KeyMode
from capgo_server.auth.principal import ALL_MODES, WRITE_MODES, Principal
from capgo_server.auth.roles import Role
from capgo_server.errors import ApiError
from capgo_server.models import Channel

logger = logging.getLogger("capgo_server.cli_compat")

READ_MODES: frozenset[KeyMode] = frozenset({KeyMode.read, KeyMode.write, KeyMode.all})
UPLOAD_MODES: frozenset[KeyMode] = frozenset({KeyMode.upload, KeyMode.write, KeyMode.all})
ALL_MODE_ONLY: frozenset[KeyMode] = frozenset({KeyMode.all})


class Scope(StrEnum):
    """What a permission is checked on: the ``org_id`` or the ``app_id`` of the call."""

    org = "org"
    app = "app"


@dataclass(frozen=True)
class Requirement:
    scope: Scope
    role: Role
    modes: frozenset[KeyMode] = ALL_MODES
    #: An org permission a key limited to some apps may not hold (it may not manage the org).
    org_wide: bool = False


#: Each permission the CLI asks about, as the public route doing that step authorizes it.
REQUIREMENTS: dict[str, Requirement] = {
    # POST /app
    "org.create_app": Requirement(Scope.org, Role.admin, WRITE_MODES, org_wide=True),
    # tus upload (files/service.py)
    "app.upload_bundle": Requirement(Scope.app, Role.upload, UPLOAD_MODES),
    # POST /channel, PUT /bundle, DELETE /bundle
    "app.create_channel": Requirement(Scope.app, Role.write, WRITE_MODES),
    "channel.promote_bundle": Requirement(Scope.app, Role.write, WRITE_MODES),
    "channel.update_settings": Requirement(Scope.app, Role.write, WRITE_MODES),
    "bundle.delete": Requirement(Scope.app, Role.write, WRITE_MODES),
    # GET /app/{id}, GET /bundle, GET /channel
    "app.read": Requirement(Scope.app, Role.read, READ_MODES),
    "app.read_bundles": Requirement(Scope.app, Role.read, READ_MODES),
    "app.read_channels": Requirement(Scope.app, Role.read, READ_MODES),
    "channel.read": Requirement(Scope.app, Role.read, READ_MODES),
    # DELETE /channel
    "channel.delete": Requirement(Scope.app, Role.admin, ALL_MODE_ONLY),
}

#: The refusal ``authorize_*`` raise here; caught by identity, so that any other ApiError (the
#: org's key policy) still reaches the caller.
_DENIED = ApiError(403, "42501", "permission denied")


async def has_permission(
    session: AsyncSession,
    principal: Principal,
    permission_key: str,
    *,
    org_id: str | None,
    app_id: str | None,
    channel_id: int | None,
) -> bool:
    """Whether ``principal`` holds ``permission_key`` on the org or app named (and, when
    ``channel_id`` is given, on that channel of the app)."""
    requirement = REQUIREMENTS.get(permission_key)
    if requirement is None:
        logger.warning("cli_check_permission: unknown permission %r", permission_key[:80])
        return False
    try:
        if requirement.scope is Scope.org:
            return org_id is not None and await _org_allows(session, principal, org_id, requirement)
        if app_id is None:
            return False
        access = await authorize_app(
            session,
            principal,
            app_id,
            role=requirement.role,
            modes=requirement.modes,
            denied=_DENIED,
        )
    except ApiError as error:
        if error is _DENIED:
            return False
        raise
    if org_id is not None and org_id != access.org.id:
        return False
    return channel_id is None or await _channel_of_app(session, channel_id, app_id)


async def _org_allows(
    session: AsyncSession, principal: Principal, org_id: str, requirement: Requirement
) -> bool:
    await authorize_org(
        session,
        principal,
        org_id,
        role=requirement.role,
        modes=requirement.modes,
        org_wide=requirement.org_wide,
        denied=_DENIED,
    )
    return True


async def _channel_of_app(session: AsyncSession, channel_id: int, app_id: str) -> bool:
    """Whether the channel exists and is the (already authorized) app's."""
    found = await session.scalar(
        select(Channel.id).where(Channel.id == channel_id, Channel.app_id == app_id)
    )
    return found is not None
