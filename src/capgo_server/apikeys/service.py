"""Rules for the calling user's API keys (spec §3.2, §2.4).

Only an unlimited key of mode ``all`` manages keys (the route accepts only ``all``; limited keys
are refused here), and a key can never mint or widen a key beyond itself: every mode and limit is
at most ``all``/unlimited, and a key that expires cannot make one that outlives it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from capgo_server import audit
from capgo_server.auth.access import (
    ExpiryBreach,
    expiry_breach,
    is_uuid,
    visible_apps,
    visible_orgs,
)
from capgo_server.auth.keys import KeyMode, new_key_value, sha256_hex
from capgo_server.auth.principal import Principal
from capgo_server.clock import checked_utc, utcnow
from capgo_server.errors import ApiError
from capgo_server.models import ApiKey, App, Organization

_MODES = ", ".join(mode.value for mode in KeyMode)
_ID_PATTERN = re.compile(r"^\d{1,18}$")
_DATETIME = TypeAdapter(datetime)
#: Longest key name stored (the column's size).
MAX_NAME_LENGTH = 200
_UNSET: Any = object()


def refuse_limited(principal: Principal, status: int, code: str) -> None:
    if principal.is_limited:
        raise ApiError(status, code, "You cannot do that as a limited API key")


def _parse_expiry(value: Any) -> datetime | None:
    """``expires_at`` from a body: ``None`` (never expires) or a future timestamp."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(400, "invalid_expiration_date", "Invalid expiration date format")
    try:
        parsed = checked_utc(_DATETIME.validate_python(value))
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise ApiError(400, "invalid_expiration_date", "Invalid expiration date format") from exc
    if parsed <= utcnow():
        raise ApiError(400, "invalid_expiration_date", "Expiration date must be in the future")
    return parsed


def _parse_mode(value: Any) -> str:
    if not isinstance(value, str) or value not in {mode.value for mode in KeyMode}:
        raise ApiError(400, "invalid_mode", f"Invalid mode. Must be one of: {_MODES}")
    return str(value)


def _check_name_length(name: str) -> None:
    if len(name.strip()) > MAX_NAME_LENGTH:
        raise ApiError(
            400,
            "invalid_body",
            f"name must be at most {MAX_NAME_LENGTH} characters",
            {"field": "name"},
        )


def _parse_string_list(value: Any, field: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ApiError(
            400, f"{field}_must_be_an_array_of_strings", f"{field} must be an array of strings"
        )
    return list(dict.fromkeys(value))


async def _policy_orgs(
    session: AsyncSession, principal: Principal, org_ids: list[str]
) -> Sequence[Organization]:
    """The orgs a key is being limited to; each must be one the caller can see (else 404)."""
    if not org_ids:
        return []
    if not all(is_uuid(org_id) for org_id in org_ids):
        raise ApiError(404, "org_not_found", "Organization not found")
    orgs = (
        await session.scalars(visible_orgs(principal).where(Organization.id.in_(org_ids)))
    ).all()
    if len(orgs) != len(set(org_ids)):
        raise ApiError(404, "org_not_found", "Organization not found")
    return orgs


def _check_policies(
    orgs: Sequence[Organization], expires_at: datetime | None, hashed: bool, principal: Principal
) -> None:
    """Org key policies (§2.4), then :func:`check_within_caller_expiry`."""
    for org in orgs:
        breach = expiry_breach(org, expires_at)
        if breach is ExpiryBreach.required:
            raise ApiError(
                400,
                "expiration_required",
                "This organization requires API keys to have an expiration date",
                {"org_id": org.id},
            )
        if breach is ExpiryBreach.exceeds_max:
            limit = org.max_apikey_expiration_days
            raise ApiError(
                400,
                "expiration_exceeds_max",
                f"API key expiration cannot exceed {limit} days for this organization",
                {"org_id": org.id, "max_days": limit},
            )
        if org.enforce_hashed_api_keys and not hashed:
            raise ApiError(
                400,
                "hashed_key_required",
                "This organization requires hashed API keys",
                {"org_id": org.id},
            )
    check_within_caller_expiry(expires_at, principal)


def check_within_caller_expiry(expires_at: datetime | None, principal: Principal) -> None:
    """A key that expires may not create, or change, a key that outlives it: otherwise it
    could give itself a longer life (or a broader mode) before it runs out."""
    ceiling = principal.expires_at
    if ceiling is not None and (expires_at is None or expires_at > ceiling):
        raise ApiError(
            400,
            "expiration_exceeds_key",
            "A key cannot create or extend a key beyond its own expiration",
            {"max_expires_at": ceiling.isoformat()},
        )


def _own_key(principal: Principal, key_id: str) -> Select[ApiKey]:
    """The caller's key by numeric id, or by its value (Capgo matches ``key`` or ``id``)."""
    query = select(ApiKey).where(ApiKey.user_id == principal.user_id)
    if _ID_PATTERN.match(key_id):
        return query.where(ApiKey.id == int(key_id))
    return query.where(ApiKey.secret_sha256 == sha256_hex(key_id.lower()))


def check_key_id(key_id: str) -> None:
    if not key_id:
        raise ApiError(400, "api_key_id_required", "API key ID is required")
    if not _ID_PATTERN.match(key_id) and not is_uuid(key_id):
        raise ApiError(400, "invalid_id_format", "API key ID must be a valid UUID or number")


async def _orgs_still_joined(
    session: AsyncSession, principal: Principal, org_ids: Sequence[str]
) -> list[str]:
    """Those of ``org_ids`` where the caller is still a member (a real role, not an
    invitation), in the order given."""
    if not org_ids:
        return []
    joined = set(
        await session.scalars(
            visible_orgs(principal)
            .where(Organization.id.in_(org_ids))
            .with_only_columns(Organization.id)
        )
    )
    return [org_id for org_id in org_ids if org_id in joined]


async def _audit_key(
    session: AsyncSession,
    principal: Principal,
    key: ApiKey,
    operation: str,
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
) -> None:
    """A key limited to orgs shows in each of their trails; secrets are never recorded.

    Only in the trails of orgs its owner still belongs to: someone who left, or was removed,
    may still rename or delete their key but writes nothing into that org's trail. A key
    whose orgs are all gone (like an unlimited one) is recorded against no org.
    """
    joined = await _orgs_still_joined(session, principal, key.limited_to_orgs)
    org_ids: list[str | None] = list(joined) or [None]
    for org_id in org_ids:
        audit.record(
            session,
            table_name="apikeys",
            operation=operation,
            record_id=key.id,
            org_id=org_id,
            user_id=principal.user_id,
            old=old,
            new=new,
        )


def _key_snapshot(key: ApiKey) -> dict[str, Any]:
    return audit.snapshot(key, exclude={"key", "secret_sha256"})


async def list_keys(session: AsyncSession, principal: Principal) -> Sequence[ApiKey]:
    refuse_limited(principal, 401, "cannot_list_apikeys")
    return (
        await session.scalars(
            select(ApiKey).where(ApiKey.user_id == principal.user_id).order_by(ApiKey.id)
        )
    ).all()


async def get_key(session: AsyncSession, principal: Principal, key_id: str) -> ApiKey:
    refuse_limited(principal, 401, "cannot_get_apikey")
    check_key_id(key_id)
    key = await session.scalar(_own_key(principal, key_id))
    if key is None:
        raise ApiError(404, "failed_to_get_apikey", "Failed to get API key")
    return key


async def create_key(
    session: AsyncSession, principal: Principal, body: dict[str, Any]
) -> tuple[ApiKey, str]:
    """Create a key; returns it with its plain value (shown once for hashed keys)."""
    refuse_limited(principal, 400, "cannot_create_apikey")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, "name_is_required", "Name is required")
    _check_name_length(name)
    mode = _parse_mode(body.get("mode", KeyMode.all.value))
    expires_at = _parse_expiry(body.get("expires_at"))
    hashed = body.get("hashed", False)
    if not isinstance(hashed, bool):
        raise ApiError(400, "invalid_body", "hashed must be a boolean", {"field": "hashed"})
    limited_to_orgs = _parse_string_list(body.get("limited_to_orgs", []), "limited_to_orgs")
    limited_to_apps = _parse_string_list(body.get("limited_to_apps", []), "limited_to_apps")
    org_id = body.get("org_id")
    if org_id is not None:
        if not isinstance(org_id, str) or not await _policy_orgs(session, principal, [org_id]):
            raise ApiError(404, "org_not_found", "Organization not found")
        limited_to_orgs = [org_id]
    app_uuid = body.get("app_id")
    if app_uuid is not None:
        # ``app_id`` names the app by its uuid (``apps.id``), not its reverse-domain id (§3.2).
        app = (
            await session.scalar(visible_apps(principal).where(App.id == app_uuid))
            if is_uuid(app_uuid)
            else None
        )
        if app is None:
            raise ApiError(404, "app_not_found", "App not found")
        limited_to_apps = [app.app_id]
    orgs = await _policy_orgs(session, principal, limited_to_orgs)
    _check_policies(orgs, expires_at, hashed, principal)
    plain = new_key_value()
    key = ApiKey(
        user_id=principal.user_id,
        name=name.strip(),
        mode=mode,
        key=None if hashed else plain,
        secret_sha256=sha256_hex(plain),
        is_hashed=hashed,
        limited_to_orgs=limited_to_orgs,
        limited_to_apps=limited_to_apps,
        expires_at=expires_at,
    )
    session.add(key)
    await session.flush()
    await _audit_key(session, principal, key, "INSERT", None, _key_snapshot(key))
    return key, plain


async def update_key(
    session: AsyncSession, principal: Principal, key_id: str, body: dict[str, Any]
) -> ApiKey:
    refuse_limited(principal, 401, "cannot_update_apikey")
    check_key_id(key_id)
    changes: dict[str, Any] = {}
    if "expires_at" in body:
        changes["expires_at"] = _parse_expiry(body["expires_at"])
    if body.get("name") is not None:
        if not isinstance(body["name"], str):
            raise ApiError(400, "name_must_be_a_string", "Name must be a string")
        if body["name"].strip():
            _check_name_length(body["name"])
            changes["name"] = body["name"].strip()
    if body.get("mode") is not None:
        changes["mode"] = _parse_mode(body["mode"])
    for field in ("limited_to_apps", "limited_to_orgs"):
        if body.get(field) is not None:
            values = _parse_string_list(body[field], field)
            if values:  # as Capgo: an empty list leaves the limit unchanged
                changes[field] = values
    if not changes:
        raise ApiError(
            400, "no_valid_fields_provided_for_update", "No valid fields provided for update"
        )
    key = await session.scalar(_own_key(principal, key_id))
    if key is None:
        raise ApiError(
            404, "api_key_not_found_or_access_denied", "API key not found or access denied"
        )
    if "expires_at" in changes or "limited_to_orgs" in changes:
        # New orgs must all be the caller's (else 404); of the key's current ones, only those
        # the caller still belongs to set policies: the key cannot be used in the others.
        new_orgs: list[str] = changes.get("limited_to_orgs") or await _orgs_still_joined(
            session, principal, key.limited_to_orgs
        )
        orgs = await _policy_orgs(session, principal, new_orgs)
        _check_policies(orgs, changes.get("expires_at", key.expires_at), key.is_hashed, principal)
    else:
        check_within_caller_expiry(key.expires_at, principal)
    before = _key_snapshot(key)
    for field, value in changes.items():
        setattr(key, field, value)
    await session.flush()
    await session.refresh(key)
    await _audit_key(session, principal, key, "UPDATE", before, _key_snapshot(key))
    return key


async def delete_key(session: AsyncSession, principal: Principal, key_id: str) -> None:
    refuse_limited(principal, 401, "cannot_delete_apikey")
    check_key_id(key_id)
    key = await session.scalar(_own_key(principal, key_id))
    if key is None:
        raise ApiError(404, "api_key_not_found", "API key not found")
    await _audit_key(session, principal, key, "DELETE", _key_snapshot(key), None)
    await session.delete(key)
    await session.flush()
