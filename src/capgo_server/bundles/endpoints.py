"""``/bundle`` and ``/bundle/metadata`` (spec §3.6), and the legacy ``/versions`` (the 2023 docs'
name for listing and deleting bundles, with ``appid`` accepted for ``app_id``)."""

from __future__ import annotations

from typing import Any

from fastapi import BackgroundTasks, Request

from capgo_server.auth.principal import ReadKey, WriteKey
from capgo_server.bundles import service
from capgo_server.bundles.schemas import (
    BundleCreate,
    BundleCreated,
    BundleDeleteDoc,
    BundleListQuery,
    BundleOut,
    BundleQueryDoc,
    MetadataUpdateDoc,
    SetChannelDoc,
    SetChannelDone,
    StatusOk,
)
from capgo_server.db.session import Session
from capgo_server.errors import ApiError, invalid_body
from capgo_server.openapi import API_ERRORS
from capgo_server.parsing import (
    body_or_query,
    documented_body,
    documented_body_or_query,
    documented_query,
    strict_json_body,
    validate,
)
from capgo_server.routing import router
from capgo_server.storage.cleanup import remove_stored
from capgo_server.validation import checked_app_id, request_app_id

bundles_router = router(tags=["bundles"], responses=API_ERRORS)

_LIST_QUERY = documented_query(BundleQueryDoc)


async def list_bundles(request: Request, session: Session, principal: ReadKey) -> list[BundleOut]:
    """The app's bundles, newest first, 50 per ``page`` (deleted bundles are not listed)."""
    data = await body_or_query(request)
    app_id = checked_app_id(request_app_id(data), data)
    query = validate(BundleListQuery, {k: v for k, v in data.items() if k == "page"})
    bundles = await service.list_bundles(session, principal, app_id, query.page)
    return [BundleOut.model_validate(bundle) for bundle in bundles]


async def delete_bundles(
    request: Request, session: Session, principal: WriteKey, background: BackgroundTasks
) -> StatusOk:
    """Delete one bundle (``version``) or every bundle of the app, with their stored files."""
    data = await body_or_query(request)
    app_id = checked_app_id(request_app_id(data), data)
    version: Any = data.get("version")
    if version is not None and not isinstance(version, str):
        raise invalid_body([{"loc": ["version"], "msg": "must be a bundle name", "type": "string"}])
    if version == "":  # an empty name must never mean "delete everything"
        raise ApiError(
            400,
            "cannot_delete_version",
            "An empty version names no bundle: give the bundle to delete, or leave version out "
            "to delete every bundle of the app",
            {"version": version},
        )
    paths = await service.delete_bundles(session, principal, app_id, version)
    # Files go once the deletion is committed (background tasks run after the response).
    background.add_task(remove_stored, request.app.state.bundle_store, paths=paths)
    return StatusOk()


for _path, _legacy in (("/bundle", False), ("/versions", True)):
    _name = "versions" if _legacy else "bundle"
    bundles_router.add_api_route(
        _path,
        list_bundles,
        methods=["GET"],
        response_model=list[BundleOut],
        openapi_extra=_LIST_QUERY,
        operation_id=f"get_{_name}",
        summary="List bundles" + (" (legacy path)" if _legacy else ""),
        deprecated=_legacy,
    )
    bundles_router.add_api_route(
        _path,
        delete_bundles,
        methods=["DELETE"],
        response_model=StatusOk,
        openapi_extra=documented_body_or_query(BundleDeleteDoc),
        operation_id=f"delete_{_name}",
        summary="Delete bundles" + (" (legacy path)" if _legacy else ""),
        deprecated=_legacy,
    )


@bundles_router.post(
    "/bundle", response_model=BundleCreated, openapi_extra=documented_body(BundleCreate)
)
async def create_bundle(request: Request, session: Session, principal: WriteKey) -> BundleCreated:
    """Register a bundle hosted at an external HTTPS URL (strict semver name)."""
    bundle = await service.create_external_bundle(session, principal, await body_or_query(request))
    return BundleCreated(bundle=BundleOut.model_validate(bundle))


@bundles_router.put(
    "/bundle", response_model=SetChannelDone, openapi_extra=documented_body(SetChannelDoc)
)
async def set_bundle_on_channel(
    request: Request, session: Session, principal: WriteKey
) -> SetChannelDone:
    """Serve a bundle on a channel (recorded in the channel's deploy history)."""
    data = await strict_json_body(request)
    bundle, channel = await service.set_bundle_on_channel(session, principal, data)
    return SetChannelDone(message=f"Bundle {bundle.name} set to channel {channel.name}")


@bundles_router.post(
    "/bundle/metadata", response_model=StatusOk, openapi_extra=documented_body(MetadataUpdateDoc)
)
async def update_metadata(request: Request, session: Session, principal: WriteKey) -> StatusOk:
    """Set a bundle's ``link`` and/or ``comment``."""
    await service.update_metadata(session, principal, await strict_json_body(request))
    return StatusOk()
