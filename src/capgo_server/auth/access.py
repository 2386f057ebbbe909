"""The one authorization helper: may this principal act with role R in organization O?

Handlers never filter by hand: they load organizations through :func:`authorize_org` (one org,
refused with the handler's own error) or :func:`visible_orgs` (a list query already scoped).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from capgo_server.auth.keys import KeyMode
from capgo_server.auth.principal import ALL_MODES, Principal
from capgo_server.auth.roles import Role
from capgo_server.clock import utcnow
from capgo_server.errors import ApiError
from capgo_server.models import App, Membership, Organization


@dataclass(frozen=True)
class OrgAccess:
    org: Organization
    role: Role


@dataclass(frozen=True)
class AppAccess:
    app: App
    org: Organization
    role: Role


def cannot_access_app(app_id: str) -> ApiError:
    """400 ``cannot_access_app``: the answer for unknown and foreign apps alike (spec §3.4)."""
    return ApiError(400, "cannot_access_app", "You can't access this app", {"app_id": app_id})


def cannot_access_organization(org_id: object) -> ApiError:
    """400 ``cannot_access_organization``: unknown and foreign orgs alike (spec §3.1)."""
    return ApiError(
        400, "cannot_access_organization", "You can't access this organization", {"orgId": org_id}
    )


def is_uuid(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class ExpiryBreach(StrEnum):
    """How a key's expiry breaks an organization's policy (named as the §2.4 refusals)."""

    required = "expiration_required"
    exceeds_max = "expiration_exceeds_max"


def expiry_breach(org: Organization, expires_at: datetime | None) -> ExpiryBreach | None:
    """Whether a key expiring at ``expires_at`` may serve ``org`` now (spec §2.4).

    One rule for creating, changing and using a key: a key is usable in an organization only if
    it could be created for it now. The maximum counts from now, so what it bounds is how long
    the key can still be used, whenever it was made; as at creation, it bounds keys that expire,
    and ``require_apikey_expiration`` is what refuses keys that never do.
    """
    if expires_at is None:
        return ExpiryBreach.required if org.require_apikey_expiration else None
    limit = org.max_apikey_expiration_days
    if limit and expires_at > utcnow() + timedelta(days=limit):
        return ExpiryBreach.exceeds_max
    return None


def enforce_org_key_policy(org: Organization, principal: Principal) -> None:
    """Refuse keys the organization's API-key policies forbid (401, spec §2.2 / §3.1).

    The policy applies to the key presented on the wire (House decision): a sub-key named in
    ``x-limited-key-id`` is no credential, so its expiry cannot make a key that never expires
    acceptable, nor a compliant key unacceptable.
    """
    key = principal.presented_key
    breach = expiry_breach(org, key.expires_at)
    if breach is ExpiryBreach.required:
        raise ApiError(
            401,
            "org_requires_expiring_key",
            "This organization requires API keys with an expiration date. Please use a "
            "different key or update this key with an expiration date.",
            {"org_id": org.id},
        )
    if breach is ExpiryBreach.exceeds_max:
        days = org.max_apikey_expiration_days
        raise ApiError(
            401,
            "org_requires_expiring_key",
            f"This organization requires API keys expiring within {days} days. Please use a "
            "different key or update this key with an earlier expiration date.",
            {"org_id": org.id, "max_days": days},
        )
    if org.enforce_hashed_api_keys and not principal.presented_key_is_hashed:
        raise ApiError(
            401,
            "org_requires_hashed_key",
            "This organization requires hashed API keys. Please use a hashed key.",
            {"org_id": org.id},
        )


async def authorize_org(
    session: AsyncSession,
    principal: Principal,
    org_id: object,
    *,
    role: Role,
    denied: ApiError,
    modes: Collection[KeyMode] = ALL_MODES,
    org_wide: bool = False,
) -> OrgAccess:
    """The organization ``org_id`` if the principal may act in it with at least ``role``.

    Refused with ``denied`` — the same answer whether the org does not exist or is foreign, so a
    caller never learns which — when: the id is not a UUID; a key in play is limited to other
    orgs; a key's mode is not in ``modes``; ``org_wide`` and a key is limited to apps (such a key
    may not manage the organization itself); the user's membership ranks below ``role`` (a
    pending invitation ranks below every real role). Then the org's key policies apply (401).
    """
    if not is_uuid(org_id) or not principal.may_use_org(str(org_id)):
        raise denied
    if not principal.has_mode(modes) or (org_wide and principal.is_app_limited):
        raise denied
    row = (
        await session.execute(
            select(Organization, Membership.user_right)
            .join(Membership, Membership.org_id == Organization.id)
            .where(Organization.id == str(org_id), Membership.user_id == principal.user_id)
        )
    ).first()
    if row is None:
        raise denied
    org, right = row
    member_role = Role(right)
    if member_role.rank < role.rank:
        raise denied
    enforce_org_key_policy(org, principal)
    return OrgAccess(org=org, role=member_role)


def visible_orgs(principal: Principal, role: Role = Role.read) -> Select[Organization]:
    """Orgs where the principal holds at least ``role`` and its keys allow, oldest first."""
    query = (
        select(Organization)
        .join(Membership, Membership.org_id == Organization.id)
        .where(Membership.user_id == principal.user_id, Membership.user_right.in_(role.at_least()))
    )
    for key in principal.keys:
        if key.limited_to_orgs:
            query = query.where(Organization.id.in_(key.limited_to_orgs))
    return query.order_by(Organization.created_at, Organization.id)


async def authorize_app(
    session: AsyncSession,
    principal: Principal,
    app_id: str,
    *,
    role: Role,
    denied: ApiError,
    modes: Collection[KeyMode] = ALL_MODES,
) -> AppAccess:
    """The app ``app_id`` if the principal may act on it with at least ``role`` in its org.

    Refused with ``denied`` — identical for unknown and foreign apps — when a key in play is
    limited to other apps or to other orgs, a key's mode is not in ``modes``, or the user's
    membership of the owning org ranks below ``role``. Then the org's key policies apply (401).
    """
    if not principal.may_use_app(app_id) or not principal.has_mode(modes):
        raise denied
    row = (
        await session.execute(
            select(App, Organization, Membership.user_right)
            .join(Organization, Organization.id == App.owner_org)
            .join(Membership, Membership.org_id == Organization.id)
            .where(App.app_id == app_id, Membership.user_id == principal.user_id)
        )
    ).first()
    if row is None:
        raise denied
    app, org, right = row
    member_role = Role(right)
    if not principal.may_use_org(org.id) or member_role.rank < role.rank:
        raise denied
    enforce_org_key_policy(org, principal)
    return AppAccess(app=app, org=org, role=member_role)


def visible_apps(principal: Principal, role: Role = Role.read) -> Select[App]:
    """Apps in orgs where the principal holds at least ``role``, allowed by its keys' limits,
    oldest first."""
    query = (
        select(App)
        .join(Membership, Membership.org_id == App.owner_org)
        .where(Membership.user_id == principal.user_id, Membership.user_right.in_(role.at_least()))
    )
    for key in principal.keys:
        if key.limited_to_orgs:
            query = query.where(App.owner_org.in_(key.limited_to_orgs))
        if key.limited_to_apps:
            query = query.where(App.app_id.in_(key.limited_to_apps))
    return query.order_by(App.created_at, App.app_id)
