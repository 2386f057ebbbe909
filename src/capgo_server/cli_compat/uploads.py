"""The official CLI's upload path (issue #16): its bundle drafts, finalize, and clean-up.

``@capgo/cli`` declares a bundle with a PostgREST upsert on ``app_versions`` (checksum,
encryption, native packages…), uploads the zip over tus, then finalizes. Here the upsert only
writes a :class:`~capgo_server.models.BundleDraft`: the ``Bundle`` row is created by the tus
upload when its last byte is stored (``files/service.py``), so devices, lists and downloads never
see a bundle without its file. Finalizing then checks that the file is there; a draft that was
never uploaded (``--delta-only`` while delta uploads are off) is refused and discarded, so it
never reaches a channel.

Nothing the CLI writes is trusted: ``app_id``, ``name``, ``owner_org`` and ``user_id`` must be
the filters', the app's and the caller's, and every check goes through ``authorize_app``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.background import BackgroundTask

from capgo_server.auth.access import AppAccess, authorize_app
from capgo_server.auth.keys import KeyMode
from capgo_server.auth.principal import WRITE_MODES, Principal, UploadKey
from capgo_server.auth.roles import Role
from capgo_server.bundles.service import add_external_bundle, check_encryption_policy
from capgo_server.clock import utcnow
from capgo_server.db.session import Session
from capgo_server.db.upsert import insert_into
from capgo_server.errors import ApiError
from capgo_server.files.metadata import encryption_of
from capgo_server.files.service import APP_NOT_FOUND, discard_parts
from capgo_server.models import Bundle, BundleDraft, Upload
from capgo_server.parsing import strict_json_body
from capgo_server.routing import router as transactional_router
from capgo_server.storage.base import BundleStore
from capgo_server.storage.layout import bundle_file_path
from capgo_server.validation import checked_app_id, is_semver, version_details

router = transactional_router(include_in_schema=False)

UPLOAD_MODES = frozenset({KeyMode.all, KeyMode.write, KeyMode.upload})

#: ``storage_provider`` values the CLI sends: a bundle about to be uploaded, the same bundle
#: once uploaded (CLIs that finalize with a second upsert, 8.35), and a bundle at a URL.
DRAFT_PROVIDER = "r2-direct"
UPLOADED_PROVIDER = "r2"
EXTERNAL_PROVIDER = "external"

#: The only keys the CLI's upsert may carry (plan §4.4).
DECLARABLE = frozenset(
    {
        "name",
        "app_id",
        "storage_provider",
        "native_packages",
        "owner_org",
        "user_id",
        "checksum",
        "link",
        "comment",
        "cli_version",
        "session_key",
        "key_id",
        "external_url",
        "min_update_version",
        "manifest",
    }
)
#: Longest value of each optional text key (the columns' widths; link and comment are TEXT,
#: bounded like the rest so that one upsert cannot store megabytes).
_TEXT_LIMITS = {
    "checksum": 1000,
    "session_key": 2000,
    "key_id": 20,
    "external_url": 2000,
    "min_update_version": 255,
    "link": 2000,
    "comment": 2000,
    "cli_version": 64,
}
#: A plain checksum: SHA-256 (updaters that verify it) or the CRC32 older updaters compare.
_PLAIN_CHECKSUM = re.compile(r"[0-9a-fA-F]{64}|[0-9a-fA-F]{8}")
#: What PostgreSQL text cannot hold (NUL) and no UTF-8 encodes (lone surrogates).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def refused(what: str) -> ApiError:
    """403 ``42501``, rendered as PostgreSQL's row-level security refuses a write."""
    return ApiError(403, "42501", f"permission denied: {what}")


def invalid(code: str, message: str, **more_info: Any) -> ApiError:
    return ApiError(400, code, message, more_info)


class DiscardedDraftError(ApiError):
    """A refusal that discarded the version's draft: the caller commits before answering."""


@dataclass(frozen=True)
class Declaration:
    """A checked upsert body: what the CLI declares about bundle ``name`` of ``app_id``."""

    app_id: str
    name: str
    storage_provider: str
    fields: dict[str, Any]  # the draft's columns (checksum, session_key, native_packages…)
    external_url: str | None


# --- reading the upsert -----------------------------------------------------------------------


def _storable(value: Any) -> bool:
    if isinstance(value, str):
        return _UNSTORABLE.search(value) is None
    if isinstance(value, dict):
        return all(_storable(key) and _storable(item) for key, item in value.items())
    if isinstance(value, list):
        return all(_storable(item) for item in value)
    return True


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > _TEXT_LIMITS[key]:
        raise invalid(
            "invalid_body",
            f"{key} must be a string of at most {_TEXT_LIMITS[key]} characters, or null",
            field=key,
        )
    return value or None


def read_declaration(body: object, *, app_id: str, name: str) -> Declaration:
    """The upsert body, checked against the request's ``app_id``/``name`` filters: 400 for a
    non-object, an unknown key (PostgREST's ``PGRST204``) or a value of the wrong type; 403
    ``42501`` when the body names another app or version than the filters."""
    if not isinstance(body, dict):
        raise ApiError(400, "PGRST102", "The body must be one JSON object")
    unknown = sorted(set(body) - DECLARABLE)
    if unknown:
        raise ApiError(
            400,
            "PGRST204",
            f"Could not find the '{unknown[0][:80]}' column of 'app_versions' in the schema "
            "cache: this server accepts only the fields the Capgo CLI sends",
        )
    if body.get("app_id") != app_id or body.get("name") != name:
        raise refused("app_id and name must be those of the request's filters")
    if not _storable(body):
        raise invalid("invalid_body", "Strings must not contain NUL characters or surrogates")
    provider = body.get("storage_provider")
    if provider not in (DRAFT_PROVIDER, UPLOADED_PROVIDER, EXTERNAL_PROVIDER):
        raise invalid(
            "invalid_storage_provider",
            f"storage_provider must be {DRAFT_PROVIDER!r} (an upload follows), "
            f"{UPLOADED_PROVIDER!r} (the upload is done) or {EXTERNAL_PROVIDER!r}",
            storage_provider=str(provider)[:80],
        )
    if body.get("manifest") is not None:
        raise invalid(
            "delta_not_supported",
            "This server does not take delta (partial) uploads: manifest must be null",
        )
    packages = body.get("native_packages")
    if packages is not None and not (
        isinstance(packages, list) and all(isinstance(item, dict) for item in packages)
    ):
        raise invalid("invalid_body", "native_packages must be a list of objects, or null")
    fields: dict[str, Any] = {
        key: _text(body, key) for key in _TEXT_LIMITS if key != "external_url"
    }
    fields["native_packages"] = packages
    return Declaration(app_id, name, provider, fields, _text(body, "external_url"))


def _check_name(name: str) -> None:
    if not is_semver(name):
        raise invalid(
            "invalid_version_format",
            "Version must be valid semver format (e.g., 1.0.0, 1.0.0-alpha.1)",
            **version_details(name),
        )


def _check_encryption(fields: dict[str, Any], *, uploaded_here: bool) -> None:
    """An encrypted bundle's session key, key id and RSA checksum as the CLI writes them; the
    plain checksum of a bundle ``uploaded_here`` a SHA-256 or CRC32 in hex (an external
    bundle's is the owner's business, as with ``POST /bundle``)."""
    declared = {key: fields[key] or "" for key in ("session_key", "key_id", "checksum")}
    if encryption_of(declared) is not None:
        return
    checksum = fields["checksum"]
    if uploaded_here and checksum is not None and not _PLAIN_CHECKSUM.fullmatch(checksum):
        raise invalid(
            "invalid_checksum",
            "checksum must be the zip's SHA-256 (or CRC32) in hexadecimal",
            checksum=checksum,
        )


async def _authorized(
    session: AsyncSession, principal: Principal, declared: Declaration, body: dict[str, Any]
) -> AppAccess:
    """The app, if the caller may upload to it (write, for an external bundle, as ``POST
    /bundle``); ``owner_org`` must be the app's and ``user_id`` the caller's."""
    external = declared.storage_provider == EXTERNAL_PROVIDER
    access = await authorize_app(
        session,
        principal,
        declared.app_id,
        role=Role.write if external else Role.upload,
        modes=WRITE_MODES if external else UPLOAD_MODES,
        denied=refused(f"this key may not add bundles to {declared.app_id}"),
    )
    if body.get("owner_org") != access.app.owner_org:
        raise refused("owner_org must be the organization that owns the app")
    if body.get("user_id") != principal.user_id:
        raise refused("user_id must be the user of the API key")
    return access


def already_exists(app_id: str, name: str) -> ApiError:
    """409 ``23505``: what PostgreSQL answers for the UNIQUE(name, app_id) of ``app_versions``."""
    return ApiError(
        409,
        "23505",
        f"duplicate key value violates unique constraint: bundle {name} already exists for "
        f"app {app_id} (a deleted bundle keeps its name); upload under a new version",
    )


# --- the upsert ---------------------------------------------------------------------------


async def declare_bundle(
    session: AsyncSession,
    store: BundleStore,
    principal: Principal,
    body: object,
    *,
    app_id: str,
    name: str,
) -> None:
    """The CLI's upsert on ``app_versions``: a draft for ``r2-direct``, finalize for ``r2``,
    an external bundle for ``external``. Refusals are :class:`ApiError`s (a
    :class:`DiscardedDraftError` must be committed before it is answered)."""
    declared = read_declaration(body, app_id=app_id, name=name)
    assert isinstance(body, dict)
    access = await _authorized(session, principal, declared, body)
    if declared.storage_provider == UPLOADED_PROVIDER:
        await finalize(session, store, app_id, name)
        return
    _check_name(name)
    _check_encryption(declared.fields, uploaded_here=declared.storage_provider == DRAFT_PROVIDER)
    taken = await session.scalar(
        select(Bundle.id).where(Bundle.app_id == app_id, Bundle.name == name)
    )
    if taken is not None:
        raise already_exists(app_id, name)
    if declared.storage_provider == EXTERNAL_PROVIDER:
        await _add_external(session, principal, access, declared)
        return
    check_encryption_policy(access.org, declared.fields["session_key"], declared.fields["key_id"])
    now = utcnow()
    values = {"app_id": app_id, "name": name, **declared.fields, "updated_at": now}
    statement = insert_into(session, BundleDraft).values(**values, created_at=now)
    # A later upsert replaces the whole draft: each CLI run declares everything again, and a
    # session key left from an earlier encrypted attempt must not outlive it.
    replaced = {key: statement.excluded[key] for key in values if key not in ("app_id", "name")}
    await session.execute(
        statement.on_conflict_do_update(index_elements=["app_id", "name"], set_=replaced)
    )


async def _add_external(
    session: AsyncSession, principal: Principal, access: AppAccess, declared: Declaration
) -> None:
    if declared.external_url is None:
        raise invalid("missing_external_url", "An external bundle needs its external_url")
    fields = dict(declared.fields)
    try:
        await add_external_bundle(
            session,
            principal,
            access,
            version=declared.name,
            external_url=declared.external_url,
            checksum=fields.pop("checksum"),
            session_key=fields.pop("session_key"),
            key_id=fields.pop("key_id"),
            **fields,
        )
    except ApiError as error:
        if error.code == "version_already_exists":  # taken by a concurrent request
            raise already_exists(declared.app_id, declared.name) from None
        raise
    await _drop_draft(session, declared.app_id, declared.name)


async def _draft(session: AsyncSession, app_id: str, name: str) -> BundleDraft | None:
    draft: BundleDraft | None = await session.scalar(
        select(BundleDraft).where(BundleDraft.app_id == app_id, BundleDraft.name == name)
    )
    return draft


async def _drop_draft(session: AsyncSession, app_id: str, name: str) -> bool:
    draft = await _draft(session, app_id, name)
    if draft is not None:
        await session.delete(draft)
        await session.flush()
    return draft is not None


async def _pending_upload(session: AsyncSession, app_id: str, name: str) -> Upload | None:
    upload: Upload | None = await session.scalar(
        select(Upload).where(Upload.app_id == app_id, Upload.version_name == name)
    )
    return upload


def bundle_not_found(app_id: str, name: str) -> ApiError:
    return ApiError(
        404,
        "bundle_not_found",
        f"Bundle {name} of app {app_id} does not exist (or was deleted)",
        {"app_id": app_id, "version": name},
    )


# --- finalize -------------------------------------------------------------------------------


async def finalize(session: AsyncSession, store: BundleStore, app_id: str, name: str) -> None:
    """Check that bundle ``name`` is live and its file stored (the caller authorized the app).

    404 ``bundle_not_found`` for no bundle nor draft, or a deleted bundle; 409
    ``upload_incomplete`` while its tus upload still lacks bytes; 400 ``no_bundle_content`` for
    a stored file gone, or a draft never uploaded (then discarded: :class:`DiscardedDraftError`).
    """
    bundle = await session.scalar(
        select(Bundle).where(Bundle.app_id == app_id, Bundle.name == name)
    )
    if bundle is not None and bundle.deleted:
        raise bundle_not_found(app_id, name)
    if bundle is not None:
        await _check_stored(store, bundle)
        await _drop_draft(session, app_id, name)
        return
    upload = await _pending_upload(session, app_id, name)
    if upload is not None:
        raise ApiError(
            409,
            "upload_incomplete",
            f"The upload of bundle {name} has received {upload.offset} of its {upload.length} "
            "bytes: finish it before finalizing",
            {"offset": upload.offset, "length": upload.length},
        )
    if not await _drop_draft(session, app_id, name):
        raise bundle_not_found(app_id, name)
    raise DiscardedDraftError(
        400,
        "no_bundle_content",
        f"Nothing was uploaded for bundle {name}. This server does not take delta (partial) "
        "uploads, so --delta-only uploads nothing: upload the whole bundle (without "
        "--delta-only). The bundle was not created.",
        {"app_id": app_id, "version": name},
    )


async def _check_stored(store: BundleStore, bundle: Bundle) -> None:
    if bundle.external_url is not None and bundle.r2_path is None:
        return  # hosted elsewhere: nothing is stored here
    size = await store.size(bundle.r2_path) if bundle.r2_path else None
    if size is None or (bundle.size is not None and size != bundle.size):
        raise ApiError(
            400,
            "no_bundle_content",
            f"The stored file of bundle {bundle.name} is missing or incomplete",
            {"app_id": bundle.app_id, "version": bundle.name},
        )


# --- the upload's path (r2_path) --------------------------------------------------------------


async def check_upload_path(
    session: AsyncSession, principal: Principal, body: object, *, app_id: str, name: str
) -> None:
    """The CLI telling where its tus upload went (``{r2_path}``): only checked, since the tus
    upload already named it. 403 ``42501`` for any other key or path than the version's own;
    404 when neither the bundle nor its draft exists."""
    if not isinstance(body, dict) or set(body) != {"r2_path"}:
        raise refused("only r2_path may be set, and only to the bundle's own path")
    access = await authorize_app(
        session,
        principal,
        app_id,
        role=Role.upload,
        modes=UPLOAD_MODES,
        denied=refused(f"this key may not add bundles to {app_id}"),
    )
    if body["r2_path"] != bundle_file_path(access.app.owner_org, app_id, name):
        raise refused("r2_path must be orgs/<the app's organization>/apps/<app>/<version>.zip")
    bundle = await session.scalar(
        select(Bundle).where(Bundle.app_id == app_id, Bundle.name == name)
    )
    if bundle is not None and not bundle.deleted and bundle.r2_path == body["r2_path"]:
        return
    if bundle is None and await _draft(session, app_id, name) is not None:
        return
    raise ApiError(404, "PGRST116", f"no row matches: bundle {name} of app {app_id}")


# --- the routes -----------------------------------------------------------------------------


async def _version_of(request: Request) -> tuple[str, str]:
    data = await strict_json_body(request)
    app_id = checked_app_id(data.get("app_id"), data)
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise invalid("missing_name", "name must be the bundle's version", name=name)
    return app_id, name


def _store(request: Request) -> BundleStore:
    store: BundleStore = request.app.state.bundle_store
    return store


@router.post("/private/finalize_bundle_upload")
async def finalize_bundle_upload(
    request: Request, session: Session, principal: UploadKey
) -> JSONResponse:
    """The CLI's last step of an upload (8.68 and later): the bundle must be complete."""
    app_id, name = await _version_of(request)
    await authorize_app(
        session, principal, app_id, role=Role.upload, modes=UPLOAD_MODES, denied=APP_NOT_FOUND
    )
    try:
        await finalize(session, _store(request), app_id, name)
    except DiscardedDraftError as error:
        return JSONResponse(error.body(), status_code=error.status)  # returned: committed
    return JSONResponse({"status": "ok"})


@router.delete("/private/delete_failed_version")
async def delete_failed_version(
    request: Request, session: Session, principal: UploadKey
) -> JSONResponse:
    """The CLI's clean-up after a failed upload: the draft and any unfinished tus upload of
    the version go; a bundle whose upload completed is refused (delete it with DELETE /bundle)."""
    app_id, name = await _version_of(request)
    await authorize_app(
        session, principal, app_id, role=Role.upload, modes=UPLOAD_MODES, denied=APP_NOT_FOUND
    )
    exists = await session.scalar(
        select(Bundle.id).where(Bundle.app_id == app_id, Bundle.name == name)
    )
    if exists is not None:
        raise invalid(
            "version_already_uploaded",
            f"Bundle {name} was uploaded completely (or deleted since): only unfinished uploads "
            "are discarded here; delete a bundle with DELETE /bundle",
            app_id=app_id,
            version=name,
        )
    upload = await session.scalar(
        select(Upload).where(Upload.app_id == app_id, Upload.version_name == name).with_for_update()
    )
    dropped = await _drop_draft(session, app_id, name)
    if upload is None and not dropped:
        raise bundle_not_found(app_id, name)
    if upload is None:
        return JSONResponse({"status": "ok"})
    await session.delete(upload)
    await session.flush()
    cleanup = BackgroundTask(discard_parts, _store(request), upload.id)
    return JSONResponse({"status": "ok"}, background=cleanup)
