"""Resumable bundle uploads: the rules behind the tus endpoints.

Received bytes are stored as one object per PATCH, ``uploads/<upload_id>/<offset:020d>``, and the
upload's ``offset`` in the database counts only bytes that are stored. A PATCH cut short by the
client keeps what arrived (the part is written with the bytes received and the offset advances
by that much); a PATCH that fails for any other reason stores nothing and leaves the offset as it
was. Either way the client asks HEAD for the offset and continues from there.

A PATCH holds no database connection while its body arrives: it checks the offset in a first
short transaction, streams the body into its part, then moves the offset in a second one. PATCHes
of one upload are serialized by a lock in this process (which is all a SQLite deployment has);
across processes the second transaction takes the row lock (PostgreSQL) and moves the offset only
from where the PATCH started, so of two PATCHes at the same offset one is answered 409, and a
part is only ever replaced by a PATCH at the same offset.

When the last byte arrives the parts are streamed, concatenated, into the bundle's file while its
SHA-256 is computed; the checksum and the zip layout are checked, then the bundle row replaces the
upload row. The parts are removed once that has been committed.

The official ``@capgo/cli`` declares its bundle (checksum, encryption, metadata) in a
:class:`~capgo_server.models.BundleDraft` before it uploads, and its tus metadata names only the
file: an upload whose metadata names no checksum or key takes them from the version's draft, and
the bundle it creates takes the draft's other fields and consumes it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import hashlib
import json
import re
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any, cast
from weakref import WeakValueDictionary

from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from capgo_server.auth.access import authorize_app, is_uuid
from capgo_server.auth.principal import Principal
from capgo_server.auth.roles import Role
from capgo_server.bundles.service import check_encryption_policy
from capgo_server.clock import utcnow
from capgo_server.errors import ApiError
from capgo_server.files.metadata import (
    BundleTarget,
    Encryption,
    check_ciphertext_length,
    encryption_of,
    invalid_file_path,
    parse_target,
    plain_checksum_of,
)
from capgo_server.files.zipcheck import bundle_zip_problem
from capgo_server.files.zipsafety import ZipLimits
from capgo_server.models import Bundle, BundleDraft, Upload
from capgo_server.storage.base import BundleStore
from capgo_server.storage.layout import upload_parts_prefix

_PART_NAME = re.compile(r"[0-9]{20}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
#: What an upload's metadata may say that a draft says otherwise.
_DECLARED_IN_METADATA = ("checksum", "session_key", "key_id")
#: The draft's fields a finished upload copies into its bundle.
_DRAFT_METADATA = ("native_packages", "min_update_version", "link", "comment", "cli_version")

APP_NOT_FOUND = ApiError(404, "app_not_found", "App not found")
UPLOAD_NOT_FOUND = ApiError(404, "upload_not_found", "Upload not found")


class UploadFailedError(ApiError):
    """The finished upload was refused and discarded; the refusal must still be committed."""

    def __init__(self, error: ApiError, upload_id: str) -> None:
        super().__init__(error.status, error.code, error.message, error.more_info, error.headers)
        self.upload_id = upload_id


class _BodyTooLongError(Exception):
    pass


def part_path(upload_id: str, offset: int) -> str:
    return f"{upload_parts_prefix(upload_id)}{offset:020d}"


#: The first bytes of a zip file (a local file header).
ZIP_SIGNATURE = b"PK\x03\x04"


def _encryption_path(upload_id: str) -> str:
    return f"{upload_parts_prefix(upload_id)}encryption.json"


_locks: WeakValueDictionary[str, asyncio.Lock] = WeakValueDictionary()


def upload_lock(upload_id: str) -> asyncio.Lock:
    """The in-process lock of one upload (kept only while someone holds a reference)."""
    lock = _locks.get(upload_id)
    if lock is None:
        lock = asyncio.Lock()
        _locks[upload_id] = lock
    return lock


# --- creation -----------------------------------------------------------------------------


def version_already_exists(version: str, **more: Any) -> ApiError:
    return ApiError(
        400, "version_already_exists", "Version already exists", {"version": version, **more}
    )


async def _ensure_version_free(session: AsyncSession, target: BundleTarget, location: str) -> None:
    """A version name is used once per app, deleted bundles included (UNIQUE(name, app_id))."""
    taken = await session.scalar(
        select(Bundle.id)
        .where(Bundle.app_id == target.app_id, Bundle.name == target.version)
        .limit(1)
    )
    if taken is not None:
        raise version_already_exists(target.version)
    pending = await session.scalar(
        select(Upload).where(Upload.app_id == target.app_id, Upload.version_name == target.version)
    )
    if pending is not None:
        # The caller holds upload rights on the app, so it may resume or terminate this upload
        # anyway (HEAD/PATCH/DELETE); its URL lets a client that lost it do so.
        raise version_already_exists(
            target.version, upload_in_progress=True, upload_url=f"{location}{pending.id}"
        )


async def create_upload(
    session: AsyncSession,
    store: BundleStore,
    principal: Principal,
    *,
    length: int,
    metadata: dict[str, str],
    location: str,
) -> Upload:
    """Validate a tus creation request and record the upload. Nothing is stored for a refused
    upload; ``location`` is the collection URL (for the ``upload_url`` of a pending duplicate)."""
    target = parse_target(metadata.get("filename"))
    encryption = encryption_of(metadata)
    if encryption is not None:
        check_ciphertext_length(length)
    checksum = None if encryption else plain_checksum_of(metadata)
    access = await authorize_app(
        session, principal, target.app_id, role=Role.upload, denied=APP_NOT_FOUND
    )
    if access.app.owner_org != target.org_id:
        raise invalid_file_path(metadata.get("filename"))
    if not any(metadata.get(field) for field in _DECLARED_IN_METADATA):
        draft = await _draft_of(session, target.app_id, target.version)
        if draft is not None:
            encryption, checksum = _declared_by(draft)
            if encryption is not None:
                check_ciphertext_length(length)
    # The organization's encrypted-bundle policy, exactly as ``POST /bundle`` applies it.
    check_encryption_policy(
        access.org,
        encryption.session_key if encryption else None,
        encryption.key_id if encryption else None,
    )
    await _ensure_version_free(session, target, location)
    upload = Upload(
        id=str(uuid.uuid4()),
        app_id=target.app_id,
        owner_org=access.app.owner_org,
        user_id=principal.user_id,
        version_name=target.version,
        path=target.path,
        length=length,
        offset=0,
        checksum=checksum,
    )
    session.add(upload)
    try:
        await session.flush()
    except IntegrityError:  # a concurrent creation for the same version won
        raise version_already_exists(target.version, upload_in_progress=True) from None
    if encryption is not None:
        document = json.dumps(dataclasses.asdict(encryption)).encode()
        await store.write(_encryption_path(upload.id), _once(document))
    return upload


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _draft_of(session: AsyncSession, app_id: str, version: str) -> BundleDraft | None:
    draft: BundleDraft | None = await session.scalar(
        select(BundleDraft).where(BundleDraft.app_id == app_id, BundleDraft.name == version)
    )
    return draft


def _declared_by(draft: BundleDraft) -> tuple[Encryption | None, str | None]:
    """The encryption, or else the checksum, a draft declares (their shapes were checked when
    it was written). A plain checksum that is not a SHA-256 (the CLI's crc32 for old updaters)
    is kept as the bundle's checksum, unverified: it is what those devices compare."""
    if draft.session_key and draft.checksum:
        return Encryption(draft.session_key, draft.key_id, draft.checksum), None
    return None, draft.checksum.lower() if draft.checksum else None


# --- status, termination --------------------------------------------------------------------


async def load_upload(
    session: AsyncSession, principal: Principal, upload_id: str, *, lock: bool = False
) -> Upload:
    """The upload if the caller holds ``upload`` on its app, else 404 ``upload_not_found`` (the
    same answer for unknown and foreign uploads). ``lock`` takes the row lock (PostgreSQL)."""
    if not is_uuid(upload_id):
        raise UPLOAD_NOT_FOUND
    upload = await session.scalar(select(Upload).where(Upload.id == upload_id))
    if upload is None:
        raise UPLOAD_NOT_FOUND
    await authorize_app(
        session, principal, upload.app_id, role=Role.upload, denied=UPLOAD_NOT_FOUND
    )
    if lock:
        upload = await session.scalar(
            select(Upload)
            .where(Upload.id == upload_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if upload is None:
            raise UPLOAD_NOT_FOUND
    return upload


async def terminate(session: AsyncSession, upload: Upload) -> None:
    """Forget the upload; the caller removes its parts once this is committed."""
    await session.delete(upload)
    await session.flush()


async def discard_parts(store: BundleStore, upload_id: str) -> None:
    await store.delete_prefix(upload_parts_prefix(upload_id))


# --- receiving bytes ------------------------------------------------------------------------


def offset_mismatch(current: int) -> ApiError:
    return ApiError(
        409,
        "offset_mismatch",
        "Upload-Offset does not match the server's offset; ask HEAD and resume from there",
        {"offset": current},
        headers={"Upload-Offset": str(current)},
    )


def length_exceeded(upload: Upload) -> ApiError:
    return ApiError(
        413,
        "upload_length_exceeded",
        "The body goes past the Upload-Length declared when the upload was created",
        {"upload_length": upload.length, "offset": upload.offset},
    )


async def _limited(body: AsyncIterable[bytes], limit: int) -> AsyncIterator[bytes]:
    received = 0
    async for chunk in body:
        received += len(chunk)
        if received > limit:
            raise _BodyTooLongError
        if chunk:
            yield chunk


def check_offset(upload: Upload, *, offset: int, declared_length: int | None) -> None:
    """Refuse a PATCH before its body is read: 409 when ``offset`` is not the upload's, 413
    when the declared length goes past the upload's end."""
    if offset != upload.offset:
        raise offset_mismatch(upload.offset)
    if declared_length is not None and declared_length > upload.length - upload.offset:
        raise length_exceeded(upload)


async def store_part(
    store: BundleStore, upload: Upload, *, offset: int, body: AsyncIterable[bytes]
) -> int:
    """Stream one PATCH body into the part at ``offset``; returns the bytes stored. Called
    holding no database connection: a client sends its chunk as slowly as it likes."""
    key = part_path(upload.id, offset)
    try:
        written = await store.write(key, _limited(body, upload.length - offset))
    except _BodyTooLongError:
        raise length_exceeded(upload) from None
    if written == 0:
        await store.delete(key)
    return written


async def record_part(
    session: AsyncSession,
    store: BundleStore,
    upload: Upload,
    *,
    offset: int,
    written: int,
    limits: ZipLimits,
) -> tuple[int, Bundle | None]:
    """Move the offset past a part :func:`store_part` stored; returns the new offset and, when
    that was the last byte, the bundle just created. ``upload`` was read again under the row
    lock after the part was stored, so another process's PATCH at the same offset that got
    there first is answered 409 here."""
    if offset != upload.offset:
        raise offset_mismatch(upload.offset)
    if written == 0:
        return upload.offset, None
    new_offset = offset + written
    if new_offset == upload.length:
        return new_offset, await _finish(session, store, upload, limits)
    moved = cast(
        CursorResult[Any],
        await session.execute(
            update(Upload)
            .where(Upload.id == upload.id, Upload.offset == offset)
            .values(offset=new_offset, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        ),
    )
    if moved.rowcount != 1:  # another process moved the offset first
        raise offset_mismatch(offset)
    return new_offset, None


# --- the last byte --------------------------------------------------------------------------


async def _stored_parts(store: BundleStore, upload: Upload) -> list[str]:
    """The upload's parts in order, checked to cover exactly ``[0, length)``."""
    names = [
        path
        for path in await store.list_prefix(upload_parts_prefix(upload.id))
        if _PART_NAME.fullmatch(path.rsplit("/", 1)[-1])
    ]
    expected = 0
    for path in names:
        size = await store.size(path)
        if int(path.rsplit("/", 1)[-1]) != expected or size is None:
            break
        expected += size
    if expected != upload.length:
        raise ApiError(
            409,
            "upload_incomplete",
            "The stored parts of this upload do not add up; start the upload again",
            {"stored": expected, "upload_length": upload.length},
        )
    return names


async def _fail(
    session: AsyncSession,
    store: BundleStore,
    upload: Upload,
    error: ApiError,
    *,
    written: bool = True,
) -> UploadFailedError:
    """Discard the upload (row now, parts after the commit) and the file it wrote."""
    if written:
        await store.delete(upload.path)
    await session.delete(upload)
    await session.flush()
    return UploadFailedError(error, upload.id)


async def _read_encryption(store: BundleStore, upload: Upload) -> Encryption | None:
    path = _encryption_path(upload.id)
    if await store.size(path) is None:
        return None
    raw = b"".join([chunk async for chunk in store.read(path)])
    return Encryption(**json.loads(raw))


async def _finish(
    session: AsyncSession, store: BundleStore, upload: Upload, limits: ZipLimits
) -> Bundle:
    """Assemble the bundle file, check it, and turn the upload into a bundle."""
    try:
        parts = await _stored_parts(store, upload)
    except ApiError as incomplete:
        raise await _fail(session, store, upload, incomplete, written=False) from None
    taken = await session.scalar(
        select(Bundle.id).where(Bundle.app_id == upload.app_id, Bundle.name == upload.version_name)
    )
    if taken is not None:  # registered through another route while this upload ran
        taken_error = version_already_exists(upload.version_name)
        raise await _fail(session, store, upload, taken_error, written=False)

    digest = hashlib.sha256()
    head = bytearray()  # the file's first bytes: a zip's signature, or ciphertext

    async def concatenated() -> AsyncIterator[bytes]:
        for part in parts:
            async for chunk in store.read(part):
                digest.update(chunk)
                if len(head) < len(ZIP_SIGNATURE):
                    head.extend(chunk[: len(ZIP_SIGNATURE) - len(head)])
                yield chunk

    try:
        size = await store.write(upload.path, concatenated())
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            raise  # the upload stays as it was: the client sends its last bytes again
        # Never storable (a file system holding shorter names than MAX_VERSION_LENGTH allows):
        # kept, the upload would refuse every retry and hold the version forever.
        too_long = ApiError(
            400,
            "invalid_version_format",
            "The version is too long for this server's storage",
            {"version": upload.version_name},
        )
        raise await _fail(session, store, upload, too_long, written=False) from None
    sha256 = digest.hexdigest()
    checksum = sha256
    encryption = await _read_encryption(store, upload)
    if encryption is not None and bytes(head) == ZIP_SIGNATURE:
        # Declared encrypted, sent in clear (a CLI run without its key, say): every device
        # would fail to decrypt it. Ciphertext starts with these 4 bytes once in 2**32.
        plain = ApiError(
            400,
            "invalid_bundle_zip",
            "The upload was declared encrypted (session_key) but is a plain zip",
            {"path": upload.path},
        )
        raise await _fail(session, store, upload, plain)
    if encryption is None:
        if upload.checksum is not None and _SHA256_HEX.fullmatch(upload.checksum) is None:
            checksum = upload.checksum  # a draft's crc32, unverifiable (see _declared_by)
        elif upload.checksum is not None and upload.checksum != sha256:
            mismatch = ApiError(
                400,
                "checksum_mismatch",
                "The uploaded file does not match the checksum given when the upload began",
                {"expected": upload.checksum, "actual": sha256},
            )
            raise await _fail(session, store, upload, mismatch)
        # An encrypted bundle is ciphertext: only its length can be checked, at creation.
        problem = await bundle_zip_problem(store, upload.path, size, limits)
        if problem is not None:
            refused = ApiError(
                400, "invalid_bundle_zip", problem.message, {"path": upload.path, **problem.details}
            )
            raise await _fail(session, store, upload, refused)
    bundle = Bundle(
        app_id=upload.app_id,
        name=upload.version_name,
        owner_org=upload.owner_org,
        user_id=upload.user_id,
        r2_path=upload.path,
        checksum=encryption.checksum if encryption else checksum,
        session_key=encryption.session_key if encryption else None,
        key_id=encryption.key_id if encryption else None,
        storage_provider=store.provider,
        size=size,
    )
    draft = await _draft_of(session, upload.app_id, upload.version_name)
    if draft is not None:
        for field in _DRAFT_METADATA:
            setattr(bundle, field, getattr(draft, field))
        await session.delete(draft)  # consumed: the bundle now says what it said
    session.add(bundle)
    await session.delete(upload)
    try:
        await session.flush()
    except IntegrityError:
        await store.delete(upload.path)
        raise version_already_exists(upload.version_name) from None
    return bundle
