"""``/app`` (spec §3.7): read with a key of mode all/read, change with all/write."""

from __future__ import annotations

from fastapi import BackgroundTasks, Request

from capgo_server.apps import service
from capgo_server.apps.schemas import AppCreate, AppListQuery, AppOut, AppUpdate, StatusOk
from capgo_server.auth.principal import AppReadKey, WriteKey
from capgo_server.db.session import Session
from capgo_server.openapi import API_ERRORS, error_responses
from capgo_server.parsing import (
    body_or_query,
    documented_body,
    documented_query,
    strict_json_body,
    validate,
)
from capgo_server.routing import router
from capgo_server.schema_types import AppIdText
from capgo_server.storage.cleanup import remove_stored

apps_router = router(prefix="/app", tags=["apps"], responses=API_ERRORS | error_responses(403))


@apps_router.get("", response_model=list[AppOut], openapi_extra=documented_query(AppListQuery))
async def list_apps(request: Request, session: Session, principal: AppReadKey) -> list[AppOut]:
    """The apps the key may read, oldest first (``page``, ``limit`` up to 100, ``org_id``)."""
    query = validate(AppListQuery, await body_or_query(request))
    return [
        AppOut.model_validate(app) for app in await service.list_apps(session, principal, query)
    ]


@apps_router.get("/{app_id}", response_model=AppOut)
async def get_app(app_id: AppIdText, session: Session, principal: AppReadKey) -> AppOut:
    """One app by its reverse-domain id."""
    return AppOut.model_validate(await service.get_app(session, principal, app_id))


@apps_router.post("", response_model=AppOut, openapi_extra=documented_body(AppCreate))
async def create_app(request: Request, session: Session, principal: WriteKey) -> AppOut:
    """Create an app in an organization where the key's user is admin."""
    body = validate(AppCreate, await strict_json_body(request))
    return AppOut.model_validate(await service.create_app(session, principal, body))


@apps_router.put("/{app_id}", response_model=AppOut, openapi_extra=documented_body(AppUpdate))
async def update_app(
    app_id: AppIdText, request: Request, session: Session, principal: WriteKey
) -> AppOut:
    """Rename an app, change its icon, retention or ``expose_metadata``."""
    body = validate(AppUpdate, await strict_json_body(request))
    return AppOut.model_validate(await service.update_app(session, principal, app_id, body))


@apps_router.delete("/{app_id}", response_model=StatusOk)
async def delete_app(
    app_id: AppIdText,
    request: Request,
    session: Session,
    principal: WriteKey,
    background: BackgroundTasks,
) -> StatusOk:
    """Delete an app with its bundles, stored files, channels, devices and statistics."""
    prefixes = await service.delete_app(session, principal, app_id)
    # Background tasks run after the response, so after the commit.
    background.add_task(remove_stored, request.app.state.bundle_store, prefixes=prefixes)
    return StatusOk()
