"""Rules for bundles (``app_versions``): list, soft-delete, register an external bundle, serve a
bundle on a channel, edit its link and comment (spec §3.6, House decisions).

A deleted bundle keeps its row (``deleted=true``, its name stays reserved) and loses its stored
file; the internal ``builtin``/``unknown`` bundles are deleted by design, so no route here ever
lists, deletes or edits them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from capgo_server import audit
from capgo_server.auth.access import AppAccess, authorize_app
from capgo_server.auth.principal import WRITE_MODES, Principal
from capgo_server.auth.roles import Role
from capgo_server.bundles.schemas import BundleCreate, MetadataText
from capgo_server.channels.service import set_channel_bundle
from capgo_server.clock import utcnow
from capgo_server.errors import ApiError
from capgo_server.integers import parse_int
from capgo_server.models import Bundle, Channel, Organization
from capgo_server.parsing import validate
from capgo_server.validation import (
    checked_app_id,
    is_internal_version_name,
    is_semver,
    request_app_id,
    version_details,
)

PAGE_SIZE = 50
EXTERNAL_PROVIDER = "external"


def _no_access(code: str, app_id: str) -> ApiError:
    return ApiError(400, code, "You can't access this app", {"app_id": app_id})


def positive_id(value: object) -> int | None:
    """A row id given as a JSON integer or a string of digits; ``None`` for anything else,
    including a value no ``BIGINT`` id can have (which then names no row)."""
    return parse_int(value, minimum=1)


def _live(app_id: str) -> Select[Bundle]:
    return select(Bundle).where(Bundle.app_id == app_id, Bundle.deleted.is_(False))


# --- list ----------------------------------------------------------------------------------


async def list_bundles(
    session: AsyncSession, principal: Principal, app_id: str, page: int
) -> Sequence[Bundle]:
    """The app's live bundles, newest first, 50 per page (``[]`` past the end or when the app
    has none); 400 ``cannot_get_bundle`` without ``read``."""
    await authorize_app(
        session, principal, app_id, role=Role.read, denied=_no_access("cannot_get_bundle", app_id)
    )
    query = (
        _live(app_id)
        .order_by(Bundle.created_at.desc(), Bundle.id.desc())
        .offset(page * PAGE_SIZE)
        .limit(PAGE_SIZE)
    )
    return (await session.scalars(query)).all()


# --- delete --------------------------------------------------------------------------------


async def delete_bundles(
    session: AsyncSession, principal: Principal, app_id: str, version: str | None
) -> list[str]:
    """Soft-delete the live bundle ``version``, or every live bundle of the app when ``version``
    is None; returns the storage paths of their files, to remove once the change is committed.

    400 ``cannot_delete_bundle`` below ``write``; 400 ``cannot_delete_version`` for a name that
    is not a live bundle; 400 ``cannot_delete_all_version`` when the app has no live bundle;
    400 ``cannot_delete_linked_version`` while a channel serves one of them (point the channel
    elsewhere first).
    """
    await authorize_app(
        session,
        principal,
        app_id,
        role=Role.write,
        modes=WRITE_MODES,
        denied=_no_access("cannot_delete_bundle", app_id),
    )
    query = _live(app_id).order_by(Bundle.created_at, Bundle.id).with_for_update()
    if version is not None:
        query = query.where(Bundle.name == version)
    bundles = (await session.scalars(query)).all()
    if not bundles and version is not None:
        message = f"Bundle {version} does not exist for app {app_id} (or is already deleted)"
        if is_internal_version_name(version):
            message = f"{version} names the app's native state, not a bundle: it cannot be deleted"
        raise ApiError(400, "cannot_delete_version", message, {"version": version})
    if not bundles:
        raise ApiError(
            400, "cannot_delete_all_version", "This app has no bundle to delete", {"app_id": app_id}
        )
    await _refuse_linked(session, bundles)
    now = utcnow()
    for bundle in bundles:
        before = audit.snapshot(bundle)
        bundle.deleted = True
        bundle.deleted_at = now
        await session.flush()
        audit.record_row(
            session,
            bundle,
            "UPDATE",
            org_id=bundle.owner_org,
            user_id=principal.user_id,
            old=before,
        )
    return [bundle.r2_path for bundle in bundles if bundle.r2_path]


async def _refuse_linked(session: AsyncSession, bundles: Sequence[Bundle]) -> None:
    names = {bundle.id: bundle.name for bundle in bundles}
    rows = (
        await session.execute(
            select(Channel.name, Channel.version)
            .where(Channel.version.in_(names))
            .order_by(Channel.name)
        )
    ).all()
    if rows:
        raise ApiError(
            400,
            "cannot_delete_linked_version",
            "A channel serves this bundle: set another bundle on the channel first",
            {
                "channels": [name for name, _ in rows],
                "versions": sorted({names[version] for _, version in rows}),
            },
        )


# --- create (external URL) -----------------------------------------------------------------


def check_encryption_policy(org: Organization, session_key: str | None, key_id: str | None) -> None:
    """The organization's encrypted-bundle policy (``enforce_encrypted_bundles``, and
    ``required_encryption_key``: the public key whose first 20 characters are the ``key_id``)."""
    if not org.enforce_encrypted_bundles:
        return
    if not session_key:
        raise ApiError(
            400,
            "encryption_required",
            "This organization requires all bundles to be encrypted. Upload an encrypted "
            "bundle with a session_key.",
            {"enforce_encrypted_bundles": True},
        )
    required = org.required_encryption_key
    if not required:
        return
    policy = {"enforce_encrypted_bundles": True, "required_encryption_key": True}
    if not key_id:
        raise ApiError(
            400,
            "encryption_key_required",
            "This organization requires bundles encrypted with a specific key; this bundle "
            "has no key_id.",
            policy,
        )
    if key_id != required[:20] and not key_id.startswith(required):
        raise ApiError(
            400,
            "encryption_key_mismatch",
            "This organization requires bundles encrypted with a specific key; this bundle "
            "was encrypted with a different key.",
            {**policy, "expected_key_prefix": f"{required[:4]}..."},
        )


def _checked_create_body(data: dict[str, Any]) -> tuple[str, BundleCreate]:
    """The app id and body of ``POST /bundle``, checked in Capgo's order (spec §3.6)."""
    app_id = checked_app_id(request_app_id(data), data)
    for field in ("version", "external_url", "checksum"):
        if not data.get(field):
            raise ApiError(400, f"missing_{field}", f"Missing {field}", {field: data.get(field)})
    if not is_semver(data["version"]):
        raise ApiError(
            400,
            "invalid_version_format",
            "Version must be valid semver format (e.g., 1.0.0, 1.0.0-alpha.1)",
            version_details(data["version"]),
        )
    fields = {k: data.get(k) for k in BundleCreate.model_fields if k != "app_id"}
    return app_id, validate(BundleCreate, {**fields, "app_id": app_id})


async def create_external_bundle(
    session: AsyncSession, principal: Principal, data: dict[str, Any]
) -> Bundle:
    """Register a bundle hosted at an HTTPS URL (``POST /bundle``).

    Codes in order: 400 ``missing_app_id``, ``invalid_app_id``, ``missing_version``,
    ``missing_external_url``, ``missing_checksum``, ``invalid_version_format`` (strict semver),
    ``invalid_body`` (wrong types, ``key_id`` over 20 characters), ``cannot_create_bundle``
    (below ``write``), ``invalid_protocol`` (not https), the org's encryption policy
    (``encryption_required``, ``encryption_key_required``, ``encryption_key_mismatch``), then
    ``version_already_exists`` — also for the name of a deleted bundle, which stays reserved.
    """
    app_id, body = _checked_create_body(data)
    access = await authorize_app(
        session,
        principal,
        app_id,
        role=Role.write,
        modes=WRITE_MODES,
        denied=_no_access("cannot_create_bundle", app_id),
    )
    return await add_external_bundle(
        session,
        principal,
        access,
        version=body.version,
        external_url=body.external_url,
        checksum=body.checksum,
        session_key=body.session_key or None,
        key_id=body.key_id or None,
    )


async def add_external_bundle(
    session: AsyncSession,
    principal: Principal,
    access: AppAccess,
    *,
    version: str,
    external_url: str,
    checksum: str | None,
    session_key: str | None,
    key_id: str | None,
    **columns: Any,
) -> Bundle:
    """The rules every external bundle follows once its caller is authorized and its name
    checked (``POST /bundle``, and the official CLI's ``--external`` upsert, which may carry no
    checksum and sets further ``columns``): 400 ``invalid_protocol``, the org's encryption
    policy, then ``version_already_exists``."""
    if not external_url.startswith("https://") or len(external_url) == len("https://"):
        raise ApiError(
            400,
            "invalid_protocol",
            "External URL must use HTTPS protocol",
            {"external_url": external_url},
        )
    check_encryption_policy(access.org, session_key, key_id)
    app_id = access.app.app_id
    exists = await session.scalar(
        select(Bundle.id).where(Bundle.app_id == app_id, Bundle.name == version)
    )
    already = ApiError(
        400, "version_already_exists", "Version already exists", {"version": version}
    )
    if exists is not None:
        raise already
    bundle = Bundle(
        app_id=app_id,
        name=version,
        owner_org=access.app.owner_org,
        user_id=principal.user_id,
        checksum=checksum,
        session_key=session_key,
        key_id=key_id,
        external_url=external_url,
        storage_provider=EXTERNAL_PROVIDER,
        **columns,
    )
    try:
        async with session.begin_nested():
            session.add(bundle)
    except IntegrityError as exc:  # a concurrent request took the name
        raise already from exc
    audit.record_row(session, bundle, "INSERT", org_id=bundle.owner_org, user_id=principal.user_id)
    return bundle


# --- set on a channel ----------------------------------------------------------------------


async def set_bundle_on_channel(
    session: AsyncSession, principal: Principal, data: dict[str, Any]
) -> tuple[Bundle, Channel]:
    """Serve bundle ``version_id`` on channel ``channel_id`` (``PUT /bundle``) and record the
    deployment.

    Codes in order: 400 ``missing_required_fields``, ``invalid_app_id``, ``cannot_access_app``
    (below ``write``), ``cannot_find_version`` (not a live bundle of the app),
    ``cannot_find_channel`` (not a channel of the app).
    """
    fields = {name: data.get(name) for name in ("app_id", "version_id", "channel_id")}
    if not all(fields.values()):
        raise ApiError(400, "missing_required_fields", "Missing required fields", fields)
    app_id = checked_app_id(fields["app_id"])
    access = await authorize_app(
        session,
        principal,
        app_id,
        role=Role.write,
        modes=WRITE_MODES,
        denied=_no_access("cannot_access_app", app_id),
    )
    version_id, channel_id = positive_id(fields["version_id"]), positive_id(fields["channel_id"])
    bundle = None
    if version_id is not None:
        bundle = await session.scalar(_live(app_id).where(Bundle.id == version_id))
    if bundle is None:
        raise ApiError(
            400, "cannot_find_version", "Cannot find version", {"version_id": fields["version_id"]}
        )
    channel = None
    if channel_id is not None:
        channel = await session.scalar(
            select(Channel).where(Channel.app_id == app_id, Channel.id == channel_id)
        )
    if channel is None:
        raise ApiError(
            400, "cannot_find_channel", "Cannot find channel", {"channel_id": fields["channel_id"]}
        )
    before = audit.snapshot(channel)
    if await set_channel_bundle(session, channel, bundle, principal.user_id):
        audit.record_row(
            session,
            channel,
            "UPDATE",
            org_id=access.app.owner_org,
            user_id=principal.user_id,
            old=before,
        )
    return bundle, channel


# --- metadata ------------------------------------------------------------------------------


async def update_metadata(
    session: AsyncSession, principal: Principal, data: dict[str, Any]
) -> None:
    """Set a live bundle's ``link`` and/or ``comment`` (``POST /bundle/metadata``).

    Codes in order: 400 ``missing_required_fields``, ``invalid_app_id``; 400
    ``cannot_find_version`` both without ``write`` on the app and for a bundle that is not a
    live bundle of it (one answer, so nothing leaks); 400 ``invalid_body`` for a non-string
    value; 400 ``no_fields_to_update`` when neither field is given.
    """
    app_id_value, version_value = data.get("app_id"), data.get("version_id")
    if not app_id_value or not version_value:
        raise ApiError(
            400,
            "missing_required_fields",
            "Missing required fields",
            {"app_id": app_id_value, "version_id": version_value},
        )
    app_id = checked_app_id(app_id_value)
    not_found = ApiError(
        400, "cannot_find_version", "Cannot find version", {"version_id": version_value}
    )
    await authorize_app(
        session, principal, app_id, role=Role.write, modes=WRITE_MODES, denied=not_found
    )
    version_id = positive_id(version_value)
    bundle = None
    if version_id is not None:
        bundle = await session.scalar(_live(app_id).where(Bundle.id == version_id))
    if bundle is None:
        raise not_found
    given = {k: data[k] for k in ("link", "comment") if data.get(k) is not None}
    text = validate(MetadataText, given)
    if not given:
        raise ApiError(400, "no_fields_to_update", "No fields to update")
    before = audit.snapshot(bundle)
    for field in given:
        setattr(bundle, field, getattr(text, field))
    await session.flush()
    audit.record_row(
        session, bundle, "UPDATE", org_id=bundle.owner_org, user_id=principal.user_id, old=before
    )
