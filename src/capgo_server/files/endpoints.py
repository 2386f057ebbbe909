"""``/files``: resumable (tus 1.0) bundle upload and signed, counted bundle download."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect

from capgo_server.auth.principal import ReadKey, UploadKey
from capgo_server.db.session import Session, TransactionalRoute, release_connection
from capgo_server.errors import ApiError
from capgo_server.files import downloads, service, signing, tus
from capgo_server.files.schemas import DownloadLink, DownloadLinkRequest, FilesConfig, UploadStatus
from capgo_server.files.zipsafety import ZipLimits
from capgo_server.openapi import API_ERRORS, Responses, error_responses
from capgo_server.parsing import documented_body, strict_json_body, validate
from capgo_server.routing import router
from capgo_server.settings import Settings
from capgo_server.storage.base import BundleStore
from capgo_server.storage.local import safe_relative
from capgo_server.validation import checked_app_id

files_router = router(prefix="/files", tags=["files"])

UPLOADS = "/upload/attachments/"
#: Capgo's CLI sends chunks of this size (its default) when ``TUSUploadForced`` is on.
MAX_CHUNK_SIZE = 99 * 1024 * 1024
ALERT_UPLOAD_SIZE = 20 * 1024 * 1024

#: Refusals of the tus routes (412 without ``Tus-Resumable``; 409 for an upload that moved on).
TUS_ERRORS = error_responses(400, 401, 404, 409, 412, 413, 429)
_ZIP: dict[str, Any] = {
    "content": {
        "application/zip": {"schema": {"type": "string", "format": "binary"}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    }
}


def _header(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": True,
        "schema": schema,
        "description": description,
    }


_TUS_RESUMABLE = _header("Tus-Resumable", {"type": "string", "enum": [tus.TUS_VERSION]}, "tus 1.0")
_OFFSET = {"type": "integer", "minimum": 0}
_TUS_ONLY: dict[str, Any] = {"parameters": [_TUS_RESUMABLE]}
_TUS_CREATE: dict[str, Any] = {
    "parameters": [
        _TUS_RESUMABLE,
        _header("Upload-Length", _OFFSET, "The bundle's size in bytes"),
        _header(
            "Upload-Metadata",
            {"type": "string"},
            "tus metadata: `filename` (base64 of `orgs/<org_id>/apps/<app_id>/<version>.zip`), "
            "optional `checksum`, `session_key`, `key_id`",
        ),
    ]
}
_TUS_PATCH: dict[str, Any] = {
    "parameters": [_TUS_RESUMABLE, _header("Upload-Offset", _OFFSET, "Where these bytes go")],
    "requestBody": {
        "required": True,
        "content": {
            "application/offset+octet-stream": {"schema": {"type": "string", "format": "binary"}}
        },
    },
}
_NO_CONTENT: Responses = {
    204: {"description": "Done; see the tus headers (`Upload-Offset`)"},
}


class UploadLockedRoute(TransactionalRoute):
    """Holds the upload's lock from before its transaction opens until after it commits, so the
    next PATCH of the same upload in this process sees the committed offset. The PATCH streams
    its body itself, after giving its connection back (``patch_upload``)."""

    reads_body_first = False

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def locked(request: Request) -> Response:
            async with service.upload_lock(str(request.path_params.get("upload_id", ""))):
                return await handler(request)

        return locked


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _zip_limits(settings: Settings) -> ZipLimits:
    return ZipLimits(
        max_entries=settings.bundle_max_entries,
        max_uncompressed_bytes=settings.bundle_max_uncompressed_bytes,
        max_compression_ratio=settings.bundle_max_compression_ratio,
    )


def _store(request: Request) -> BundleStore:
    store: BundleStore = request.app.state.bundle_store
    return store


def _tus_headers(**extra: str) -> dict[str, str]:
    return {"Tus-Resumable": tus.TUS_VERSION, **extra}


def _uploads_url(request: Request) -> str:
    """Where uploads live: under ``CAPGO_PUBLIC_URL``, as download URLs are. Never from the
    request's ``Host``, which the client chooses: a forged one would send the uploader's next
    PATCH (with its API key) wherever it names."""
    return f"{_settings(request).public_url.rstrip('/')}/files{UPLOADS}"


async def _received_body(request: Request) -> AsyncIterator[bytes]:
    """The request body as it arrives; a client that disconnects just ends it, so the bytes
    that did arrive are stored and counted (the tus client resumes after them)."""
    try:
        async for chunk in request.stream():
            yield chunk
    except ClientDisconnect:
        return


@files_router.get("/config", response_model=FilesConfig)
async def files_config(request: Request) -> FilesConfig:
    """Upload capabilities: tus only, the largest bundle accepted, the chunk size to use."""
    limit = _settings(request).max_upload_bytes
    return FilesConfig(
        maxUploadLength=limit,
        maxChunkSize=min(MAX_CHUNK_SIZE, limit),
        alertUploadSize=ALERT_UPLOAD_SIZE,
    )


@files_router.options(UPLOADS, status_code=204)
@files_router.options(UPLOADS.rstrip("/"), status_code=204, include_in_schema=False)
@files_router.options(UPLOADS + "{upload_id}", status_code=204, include_in_schema=False)
async def tus_options(request: Request) -> Response:
    """tus discovery: protocol version, extensions and the largest upload accepted."""
    headers = _tus_headers(
        **{
            "Tus-Version": tus.TUS_VERSION,
            "Tus-Extension": tus.TUS_EXTENSIONS,
            "Tus-Max-Size": str(_settings(request).max_upload_bytes),
        }
    )
    return Response(status_code=204, headers=headers)


@files_router.post(
    UPLOADS,
    status_code=201,
    response_class=Response,
    responses={201: {"description": "Created; `Location` names the upload"}, **TUS_ERRORS},
    openapi_extra=_TUS_CREATE,
)
@files_router.post(UPLOADS.rstrip("/"), status_code=201, include_in_schema=False)
async def create_upload(request: Request, session: Session, principal: UploadKey) -> Response:
    """Start an upload (tus creation). ``Upload-Metadata`` ``filename`` is
    ``orgs/<org_id>/apps/<app_id>/<version>.zip``; optional ``checksum`` (SHA-256 hex), or
    ``session_key``, ``key_id`` and the encrypted ``checksum`` for an encrypted bundle."""
    tus.require_tus_resumable(request)
    length = tus.upload_length(request, _settings(request).max_upload_bytes)
    metadata = tus.upload_metadata(request.headers.get("upload-metadata"))
    location = _uploads_url(request)
    upload = await service.create_upload(
        session,
        _store(request),
        principal,
        length=length,
        metadata=metadata,
        location=location,
    )
    headers = _tus_headers(Location=f"{location}{upload.id}", **{"Upload-Offset": "0"})
    return Response(status_code=201, headers=headers)


@files_router.head(
    UPLOADS + "{upload_id}",
    operation_id="upload_status_head",
    response_class=Response,
    responses={200: {"description": "See `Upload-Offset`"}, **TUS_ERRORS},
    openapi_extra=_TUS_ONLY,
)
@files_router.get(
    UPLOADS + "{upload_id}",
    operation_id="upload_status",
    response_model=UploadStatus,
    responses=TUS_ERRORS,
    openapi_extra=_TUS_ONLY,
)
async def upload_status(
    upload_id: str, request: Request, session: Session, principal: UploadKey
) -> Response:
    """How many bytes of the upload are stored (``Upload-Offset``): resume from there."""
    tus.require_tus_resumable(request)
    upload = await service.load_upload(session, principal, upload_id)
    headers = _tus_headers(
        **{
            "Upload-Offset": str(upload.offset),
            "Upload-Length": str(upload.length),
            "Cache-Control": "no-store",
        }
    )
    if request.method == "HEAD":
        return Response(status_code=200, headers=headers)
    body = {"id": upload.id, "offset": upload.offset, "length": upload.length}
    return JSONResponse(body, headers=headers)


async def patch_upload(
    upload_id: str, request: Request, session: Session, principal: UploadKey
) -> Response:
    """Append bytes at ``Upload-Offset``. The request carrying the last byte creates the bundle
    (or answers why it was refused: the upload is then discarded)."""
    tus.require_tus_resumable(request)
    tus.require_offset_content_type(request)
    offset = tus.upload_offset(request)
    store = _store(request)
    upload = await service.load_upload(session, principal, upload_id)
    service.check_offset(upload, offset=offset, declared_length=tus.content_length(request))
    # The body may take minutes: no database connection waits for it (db.session).
    await release_connection(session)
    written = await service.store_part(store, upload, offset=offset, body=_received_body(request))
    try:
        upload = await service.load_upload(session, principal, upload_id, lock=True)
    except ApiError:  # terminated (or the key lost the app) while the body arrived
        await store.delete(service.part_path(upload_id, offset))
        raise
    try:
        new_offset, bundle = await service.record_part(
            session,
            store,
            upload,
            offset=offset,
            written=written,
            limits=_zip_limits(_settings(request)),
        )
    except service.UploadFailedError as failed:
        # A normal return, so that discarding the upload row is committed.
        cleanup = BackgroundTask(service.discard_parts, store, failed.upload_id)
        return JSONResponse(
            failed.body(), status_code=failed.status, headers=_tus_headers(), background=cleanup
        )
    headers = _tus_headers(**{"Upload-Offset": str(new_offset)})
    if bundle is None:
        return Response(status_code=204, headers=headers)
    cleanup = BackgroundTask(service.discard_parts, store, upload_id)
    return Response(status_code=204, headers=headers, background=cleanup)


async def terminate_upload(
    upload_id: str, request: Request, session: Session, principal: UploadKey
) -> Response:
    """Abandon an upload (tus termination): its stored bytes are removed."""
    tus.require_tus_resumable(request)
    upload = await service.load_upload(session, principal, upload_id, lock=True)
    await service.terminate(session, upload)
    cleanup = BackgroundTask(service.discard_parts, _store(request), upload.id)
    return Response(status_code=204, headers=_tus_headers(), background=cleanup)


for _endpoint, _method, _doc in (
    (patch_upload, "PATCH", _TUS_PATCH),
    (terminate_upload, "DELETE", _TUS_ONLY),
):
    files_router.add_api_route(
        UPLOADS + "{upload_id}",
        _endpoint,
        methods=[_method],
        status_code=204,
        response_class=Response,
        responses={**_NO_CONTENT, **TUS_ERRORS, **error_responses(415)},
        openapi_extra=_doc,
        route_class_override=UploadLockedRoute,
    )


_DOWNLOAD: Responses = {
    200: {"description": "The bundle's zip", **_ZIP},
    206: {"description": "The requested byte range of the zip", **_ZIP},
    **error_responses(400, 403, 404, 416),
}


@files_router.head(
    "/read/attachments/{path:path}",
    operation_id="read_bundle_file_head",
    response_class=Response,
    responses=_DOWNLOAD,
)
@files_router.get(
    "/read/attachments/{path:path}",
    operation_id="read_bundle_file",
    response_class=Response,
    responses=_DOWNLOAD,
)
async def read_bundle_file(
    path: str,
    request: Request,
    session: Session,
    exp: str | None = None,
    sig: str | None = None,
    device_id: str | None = None,
) -> Response:
    """Download a bundle's zip on a signed URL (no key). Supports one byte range; every byte
    sent is counted as the app's bandwidth."""
    try:
        safe_relative(path)
    except ValueError:
        raise downloads.NOT_FOUND from None
    settings = _settings(request)
    signing.verify(settings, path, exp, sig, device_id)
    bundle = await downloads.live_bundle_at(session, path)
    store = _store(request)
    size = await store.size(path)
    if size is None:
        raise downloads.NOT_FOUND
    wanted = downloads.requested_range(request.headers.get("range"), size)
    byte_range = wanted or downloads.ByteRange(0, size - 1)
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(byte_range.length),
        "Cache-Control": "private, no-transform",
    }
    status = 200
    if wanted is not None:
        status = 206
        headers["Content-Range"] = f"bytes {wanted.start}-{wanted.end}/{size}"
    media_type = "application/zip" if path.endswith(".zip") else "application/octet-stream"
    if request.method == "HEAD" or size == 0:
        return Response(status_code=status, headers=headers, media_type=media_type)
    stream = downloads.counted_stream(
        store,
        path,
        byte_range,
        sessionmaker=request.app.state.sessionmaker,
        app_id=bundle.app_id,
    )
    return StreamingResponse(stream, status_code=status, headers=headers, media_type=media_type)


@files_router.post(
    "/download_link",
    response_model=DownloadLink,
    responses=API_ERRORS | error_responses(404),
    openapi_extra=documented_body(DownloadLinkRequest),
)
async def download_link(request: Request, session: Session, principal: ReadKey) -> DownloadLink:
    """A signed download URL for one of your bundles, valid ``CAPGO_DOWNLOAD_URL_TTL_SECONDS``."""
    data = await strict_json_body(request)
    app_id = checked_app_id(data.get("app_id"), data)
    body = validate(DownloadLinkRequest, data)
    bundle = await downloads.bundle_for_link(session, principal, app_id, body.version)
    if bundle.r2_path is None:  # excluded by the query; keeps the type checker informed
        raise ApiError(404, "bundle_not_found", "Bundle not found")
    signed = signing.sign_path(_settings(request), bundle.r2_path)
    return DownloadLink(url=signed.url, expires_at=signed.expires_at)
