"""What the operator, who holds the database, does for users from the command line
(``capgo-server list-users``, ``issue-key``, ``revoke-key``): the way back from a lost key.

Keys are issued and revoked through the same rules as ``POST /apikey`` and
``DELETE /apikey/{id}`` (:mod:`capgo_server.apikeys.service`), by the user themselves holding
an unlimited ``all`` key that never expires: the operator can give a user any key the user could
make, and nothing more (no org the user is not in, no key an org's policy refuses). The audit
trail records these as the user's own changes, as the API would.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from capgo_server.apikeys.service import create_key, delete_key
from capgo_server.auth.access import enforce_org_key_policy, visible_apps, visible_orgs
from capgo_server.auth.keys import KeyMode
from capgo_server.auth.principal import Principal
from capgo_server.clock import to_js_iso
from capgo_server.errors import ApiError
from capgo_server.models import ApiKey, App, Membership, Organization, User


class OperatorError(Exception):
    """A refusal the command prints as its one-line error (nothing was written)."""


@dataclass(frozen=True)
class KeyRequest:
    """``issue-key``'s options, unparsed: the service's rules judge them as a request body."""

    mode: str
    org_ids: list[str]
    app_ids: list[str]
    expires_at: str | None
    name: str
    hashed: bool


def acting_as(user_id: str) -> Principal:
    """The user holding an unlimited ``all`` key that never expires (never stored): the most
    any key of theirs may do, so the service's ceilings are the user's own."""
    unlimited = ApiKey(
        user_id=user_id,
        mode=KeyMode.all.value,
        limited_to_orgs=[],
        limited_to_apps=[],
        expires_at=None,
        is_hashed=True,
    )
    return Principal(user_id=user_id, presented_key=unlimited)


async def list_users(session: AsyncSession) -> list[dict[str, Any]]:
    """Every user, oldest first, with their organizations (a pending invitation shows its
    ``invite_*`` role) and their keys: how many, and each one's id, name, mode and expiry (the
    id is what ``revoke-key --id`` takes), never a key's value."""
    users = (await session.scalars(select(User).order_by(User.created_at, User.id))).all()
    memberships = (
        await session.execute(
            select(Membership.user_id, Organization.id, Organization.name, Membership.user_right)
            .join(Organization, Organization.id == Membership.org_id)
            .order_by(Organization.created_at, Organization.id)
        )
    ).all()
    keys = (
        await session.execute(
            select(ApiKey.user_id, ApiKey.id, ApiKey.name, ApiKey.mode, ApiKey.expires_at).order_by(
                ApiKey.id
            )
        )
    ).all()
    orgs_of: dict[str, list[dict[str, str]]] = {}
    for user_id, org_id, name, role in memberships:
        orgs_of.setdefault(user_id, []).append({"id": org_id, "name": name, "role": role})
    keys_of: dict[str, list[dict[str, Any]]] = {}
    for user_id, key_id, name, mode, expires_at in keys:
        keys_of.setdefault(user_id, []).append(
            {"id": key_id, "name": name, "mode": mode, "expires_at": _iso_or_none(expires_at)}
        )
    return [
        {
            "id": user.id,
            "email": user.email,
            "created_at": to_js_iso(user.created_at),
            "organizations": orgs_of.get(user.id, []),
            "key_count": len(keys_of.get(user.id, [])),
            "keys": keys_of.get(user.id, []),
        }
        for user in users
    ]


async def find_user(session: AsyncSession, email: str) -> User:
    user = await session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise OperatorError(f"no user has the e-mail {email} (see `capgo-server list-users`)")
    return user


async def issue_key(session: AsyncSession, email: str, request: KeyRequest) -> dict[str, Any]:
    """A new key for the user of ``email``; raises :class:`OperatorError`, or the service's
    :class:`~capgo_server.errors.ApiError`, before anything is written."""
    user = await find_user(session, email)
    principal = acting_as(user.id)
    await _check_apps(session, principal, request, email)
    body: dict[str, Any] = {
        "name": request.name,
        "mode": request.mode,
        "hashed": request.hashed,
        "limited_to_orgs": request.org_ids,
        "limited_to_apps": request.app_ids,
        "expires_at": request.expires_at,
    }
    key, plain = await create_key(session, principal, body)
    holder = Principal(user_id=user.id, presented_key=key)
    return {
        "user_id": user.id,
        "key_id": key.id,
        "name": key.name,
        "apikey": plain,
        "mode": key.mode,
        "hashed": key.is_hashed,
        "limited_to_orgs": key.limited_to_orgs,
        "limited_to_apps": key.limited_to_apps,
        "expires_at": _iso_or_none(key.expires_at),
        "refused_by_orgs": await _orgs_refusing(session, holder),
    }


async def _orgs_refusing(session: AsyncSession, holder: Principal) -> list[dict[str, str]]:
    """The user's orgs, among those the key may serve, whose key policies will refuse it on
    every request (as :func:`enforce_org_key_policy` does): ``POST /apikey`` checks the policies
    of the orgs a key is limited to only, so an unlimited key that never expires is made, and
    then locked out of an org that requires expiring keys. The operator is told which."""
    refusing = []
    for org in await session.scalars(visible_orgs(holder)):
        try:
            enforce_org_key_policy(org, holder)
        except ApiError as refusal:
            refusing.append({"org_id": org.id, "reason": refusal.message})
    return refusing


async def _check_apps(
    session: AsyncSession, principal: Principal, request: KeyRequest, email: str
) -> None:
    """Limited apps must be apps of the user's organizations, and of the limited orgs if any
    (else the key could never be used). ``POST /apikey`` takes any app ids, as Capgo does; the
    operator is told at once."""
    if not request.app_ids:
        return
    owners = dict(
        (
            await session.execute(
                visible_apps(principal)
                .where(App.app_id.in_(request.app_ids))
                .with_only_columns(App.app_id, App.owner_org)
            )
        )
        .tuples()
        .all()
    )
    for app_id in request.app_ids:
        if app_id not in owners:
            raise OperatorError(f"{app_id!r} is not an app of {email}'s organizations")
        if request.org_ids and owners[app_id] not in request.org_ids:
            raise OperatorError(
                f"app {app_id!r} belongs to organization {owners[app_id]}, not to any --org given"
            )


async def revoke_key(session: AsyncSession, key_id: int) -> list[int]:
    """Delete the key ``key_id``, whoever holds it."""
    owner = await session.scalar(select(ApiKey.user_id).where(ApiKey.id == key_id))
    if owner is None:
        raise OperatorError(f"no API key has the id {key_id} (see `capgo-server list-users`)")
    await delete_key(session, acting_as(owner), str(key_id))
    return [key_id]


async def revoke_all_keys(session: AsyncSession, email: str) -> list[int]:
    """Delete every key of the user of ``email``; returns their ids."""
    user = await find_user(session, email)
    key_ids = list(
        await session.scalars(
            select(ApiKey.id).where(ApiKey.user_id == user.id).order_by(ApiKey.id)
        )
    )
    principal = acting_as(user.id)
    for key_id in key_ids:
        await delete_key(session, principal, str(key_id))
    return key_ids


def _iso_or_none(value: datetime | None) -> str | None:
    return None if value is None else to_js_iso(value)
