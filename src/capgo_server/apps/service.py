"""Rules for apps: list, read, create (with the two internal bundles), update, delete."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from capgo_server import audit
from capgo_server.apps.reservations import reserve_app_id
from capgo_server.apps.schemas import MAX_RETENTION_SECONDS, AppCreate, AppListQuery, AppUpdate
from capgo_server.auth.access import authorize_app, authorize_org, visible_apps
from capgo_server.auth.principal import WRITE_MODES, Principal
from capgo_server.auth.roles import Role
from capgo_server.errors import ApiError
from capgo_server.models import App, Bundle, Upload
from capgo_server.models.bundle import INTERNAL_BUNDLE_NAMES
from capgo_server.storage.layout import app_files_prefix, upload_parts_prefix
from capgo_server.validation import checked_app_id

LIST_MAX_LIMIT = 100
#: ``default_upload_channel`` of an app created through the public API (as Capgo's POST /app).
DEFAULT_UPLOAD_CHANNEL = "dev"
#: ``apps.app_id`` is a VARCHAR(255); longer ids are refused before they reach the database.
MAX_APP_ID_LENGTH = 255


def _cannot_access_app(app_id: str) -> ApiError:
    return ApiError(401, "cannot_access_app", "You can't access this app", {"app_id": app_id})


def app_not_found(app_id: str) -> ApiError:
    """404 ``app_not_found``: the official CLI's answer for an app it cannot read, the same
    whether the app is unknown, another tenant's or excluded by the key (no existence leak)."""
    return ApiError(
        404,
        "app_not_found",
        f"No app {app_id} that this key can read: create it first (POST /app, or the CLI's "
        "app add), or use a key of its organization",
        {"app_id": app_id},
    )


def _checked_path_app_id(app_id: str) -> str:
    checked = checked_app_id(app_id)
    if len(checked) > MAX_APP_ID_LENGTH:
        raise ApiError(
            400, "invalid_app_id", "App ID must be a reverse domain string", {"app_id": app_id}
        )
    return checked


async def list_apps(
    session: AsyncSession, principal: Principal, query: AppListQuery
) -> Sequence[App]:
    """One page of the apps the principal may read, oldest first.

    ``org_id`` narrows it to one organization the user is a member of; else 400
    ``user_does_not_have_access_to_this_organization``, also for unknown and foreign orgs.
    """
    apps = visible_apps(principal)
    if query.org_id is not None:
        denied = ApiError(
            400,
            "user_does_not_have_access_to_this_organization",
            "User does not have access to this organization",
            {"org_id": query.org_id},
        )
        access = await authorize_org(
            session, principal, query.org_id, role=Role.read, denied=denied
        )
        apps = apps.where(App.owner_org == access.org.id)
    limit = min(query.limit, LIST_MAX_LIMIT)
    return (await session.scalars(apps.offset(query.page * limit).limit(limit))).all()


async def get_app(
    session: AsyncSession, principal: Principal, app_id: str, *, official_cli: bool = False
) -> App:
    """The app, or 401 ``cannot_access_app`` — the same for unknown, foreign and key-excluded
    apps (Capgo answers 404 ``cannot_find_app`` for unknown ones, which tells a caller which ids
    exist in other tenants). For the official CLI (``official_cli``, House decision) that one
    answer is 404 ``app_not_found``: its ``app add`` (8.35) reads an app it cannot see as free."""
    app_id = _checked_path_app_id(app_id)
    denied = app_not_found(app_id) if official_cli else _cannot_access_app(app_id)
    access = await authorize_app(session, principal, app_id, role=Role.read, denied=denied)
    return access.app


async def ensure_internal_bundles(
    session: AsyncSession, app: App, user_id: str | None = None
) -> dict[str, Bundle]:
    """The app's ``builtin`` and ``unknown`` bundles (spec §4.3), created — ``deleted`` — when
    missing. Returns them by name. ``deleted_at`` stays empty: they are never purged."""
    existing = {
        bundle.name: bundle
        for bundle in await session.scalars(
            select(Bundle).where(
                Bundle.app_id == app.app_id, Bundle.name.in_(INTERNAL_BUNDLE_NAMES)
            )
        )
    }
    for name in INTERNAL_BUNDLE_NAMES:
        if name not in existing:
            bundle = Bundle(
                app_id=app.app_id,
                name=name,
                owner_org=app.owner_org,
                user_id=user_id,
                deleted=True,
            )
            session.add(bundle)
            existing[name] = bundle
    await session.flush()
    return existing


async def create_app(
    session: AsyncSession, principal: Principal, body: AppCreate, *, official_cli: bool = False
) -> App:
    """Create an app in ``owner_org`` with its two internal bundles.

    Codes in order: 400 ``missing_app_id`` / ``invalid_app_id`` / ``missing_name``; 400
    ``cannot_create_app`` without ``owner_org``; 403 ``cannot_access_organization`` unless the
    user is ``admin`` of the org and no key in play is limited to other orgs or to apps (an
    app-limited key could not reach the new app); 400 ``cannot_create_app`` when the app id is
    taken (app ids are global) or reserved for another organization (a deleted app's id stays
    its organization's: :mod:`capgo_server.apps.reservations`) — one answer for both. For the
    official CLI (``official_cli``, House decision) a taken id is 409 ``app_id_already_exists``
    with the same message: the CLI then reads the app and succeeds if it is already the caller's.
    """
    app_id = checked_app_id(body.app_id, body.model_dump(exclude_none=True))
    app_id = _checked_path_app_id(app_id)
    # One message whether a live app (anyone's) or a reservation holds the id: it tells the
    # caller to pick another id, never whose it is or whether that app still exists.
    status, code = (409, "app_id_already_exists") if official_cli else (400, "cannot_create_app")
    cannot_create = ApiError(
        status,
        code,
        f"The app id {app_id} is already taken on this server (by an app, or kept for the "
        "organization of a deleted app): choose another app id",
    )
    if not body.name:
        raise ApiError(400, "missing_name", "Missing name")
    if not body.owner_org:
        raise ApiError(
            400,
            "cannot_create_app",
            "owner_org is required: the id of the organization the app will belong to "
            "(GET /organization lists yours)",
        )
    denied = ApiError(
        403,
        "cannot_access_organization",
        "You can't access this organization",
        {"org_id": body.owner_org},
    )
    access = await authorize_org(
        session,
        principal,
        body.owner_org,
        role=Role.admin,
        modes=WRITE_MODES,
        org_wide=True,
        denied=denied,
    )
    if await session.get(App, app_id) is not None:
        raise cannot_create
    await reserve_app_id(session, app_id, access.org.id, refused=cannot_create)
    app = App(
        app_id=app_id,
        owner_org=access.org.id,
        user_id=principal.user_id,
        name=body.name,
        icon_url=body.icon or "",
        default_upload_channel=DEFAULT_UPLOAD_CHANNEL,
    )
    session.add(app)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent request took the id, or it was just released
        raise cannot_create from exc
    await ensure_internal_bundles(session, app, principal.user_id)
    audit.record_row(session, app, "INSERT", org_id=app.owner_org, user_id=principal.user_id)
    return app


async def update_app(
    session: AsyncSession, principal: Principal, app_id: str, body: AppUpdate
) -> App:
    """Change name, icon, retention or ``expose_metadata``.

    401 ``cannot_access_app`` below ``write`` (and for unknown/foreign apps); 400
    ``cannot_update_app`` for a ``write`` member (Capgo's row-level security lets only admins
    update apps; we refuse instead of failing later); 400 ``retention_to_big`` /
    ``retention_to_small`` outside 0..63113903 seconds.
    """
    app_id = _checked_path_app_id(app_id)
    access = await authorize_app(
        session, principal, app_id, role=Role.write, denied=_cannot_access_app(app_id)
    )
    if access.role.rank < Role.admin.rank:
        raise ApiError(400, "cannot_update_app", "Cannot update app", {"app_id": app_id})
    if body.retention is not None and body.retention >= MAX_RETENTION_SECONDS:
        raise ApiError(
            400,
            "retention_to_big",
            f"Retention must be lower than {MAX_RETENTION_SECONDS} seconds",
            {"retention": body.retention},
        )
    if body.retention is not None and body.retention < 0:
        raise ApiError(
            400,
            "retention_to_small",
            "Retention must be 0 or more",
            {"retention": body.retention},
        )
    changes = {
        "name": body.name,
        "icon_url": body.icon,
        "retention": body.retention,
        "expose_metadata": body.expose_metadata,
    }
    changes = {field: value for field, value in changes.items() if value is not None}
    app = access.app
    if not changes:
        return app
    before = audit.snapshot(app)
    for field, value in changes.items():
        setattr(app, field, value)
    await session.flush()
    await session.refresh(app)
    audit.record_row(
        session, app, "UPDATE", org_id=app.owner_org, user_id=principal.user_id, old=before
    )
    return app


async def delete_app(session: AsyncSession, principal: Principal, app_id: str) -> list[str]:
    """Delete the app and everything it owns; 400 ``cannot_delete_app`` below ``write`` (and
    for unknown/foreign apps). Returns the storage prefixes of its files: its bundles and the
    parts of its unfinished uploads.

    Bundles, channels, overrides, devices, deploy history, bandwidth and uploads follow through
    ``ON DELETE CASCADE``. The caller removes the files once the deletion is committed
    (:func:`capgo_server.storage.cleanup.remove_stored`). The id stays reserved for the
    organization (:mod:`capgo_server.apps.reservations`).
    """
    app_id = _checked_path_app_id(app_id)
    denied = ApiError(400, "cannot_delete_app", "You can't delete this app", {"app_id": app_id})
    access = await authorize_app(session, principal, app_id, role=Role.write, denied=denied)
    app = access.app
    # Read before the delete: the upload rows go with the app, their parts do not.
    uploads = await session.scalars(select(Upload.id).where(Upload.app_id == app_id))
    prefixes = [app_files_prefix(access.org.id, app_id)]
    prefixes += [upload_parts_prefix(upload_id) for upload_id in uploads]
    before = audit.snapshot(app)
    await session.execute(delete(App).where(App.app_id == app.app_id))
    audit.record_row(
        session, app, "DELETE", org_id=access.org.id, user_id=principal.user_id, old=before
    )
    await session.flush()
    return prefixes
