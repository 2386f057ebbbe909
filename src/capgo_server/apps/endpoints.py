"""``/app`` (spec §3.7): read with a key of mode all/read, change with all/write."""

from __future__ import annotations

from typing import Annotated

from fastapi import BackgroundTasks, Depends, Request

from capgo_server.apps import service
from capgo_server.apps.schemas import AppCreate, AppListQuery, AppOut, AppUpdate, StatusOk
from capgo_server.auth.keys import KeyMode
from capgo_server.auth.principal import ALL_MODES, AppReadKey, Principal, WriteKey
from capgo_server.cli_compat.dialect import from_official_cli, require_key_by_dialect
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

#: ``GET /app/{id}``'s caller: a key of mode all or read (``AppReadKey``), or any mode from the
#: official CLI, which checks the app with whatever key it uploads with
#: (:mod:`capgo_server.cli_compat.dialect`).
AppReadOrCliKey = Annotated[
    Principal,
    Depends(require_key_by_dialect({KeyMode.all, KeyMode.read}, official_cli_modes=ALL_MODES)),
]
_NOT_FOUND_FOR_THE_CLI = error_responses(
    404,
    descriptions={
        404: "`app_not_found`, to the official CLI only (a `capgkey` header): no app of this "
        "id that the key can read (unknown, foreign or excluded look alike)"
    },
)
_TAKEN_FOR_THE_CLI = error_responses(
    409,
    descriptions={
        409: "`app_id_already_exists`, to the official CLI only (a `capgkey` header): the id is "
        "taken (others get 400 `cannot_create_app`)"
    },
)


@apps_router.get("", response_model=list[AppOut], openapi_extra=documented_query(AppListQuery))
async def list_apps(request: Request, session: Session, principal: AppReadKey) -> list[AppOut]:
    """The apps the key may read, oldest first (``page``, ``limit`` up to 100, ``org_id``)."""
    query = validate(AppListQuery, await body_or_query(request))
    return [
        AppOut.model_validate(app) for app in await service.list_apps(session, principal, query)
    ]


@apps_router.get("/{app_id}", response_model=AppOut, responses=_NOT_FOUND_FOR_THE_CLI)
async def get_app(
    app_id: AppIdText, request: Request, session: Session, principal: AppReadOrCliKey
) -> AppOut:
    """One app by its reverse-domain id."""
    app = await service.get_app(session, principal, app_id, official_cli=from_official_cli(request))
    return AppOut.model_validate(app)


@apps_router.post(
    "",
    response_model=AppOut,
    openapi_extra=documented_body(AppCreate),
    responses=_TAKEN_FOR_THE_CLI,
)
async def create_app(request: Request, session: Session, principal: WriteKey) -> AppOut:
    """Create an app in an organization where the key's user is admin."""
    body = validate(AppCreate, await strict_json_body(request))
    app = await service.create_app(
        session, principal, body, official_cli=from_official_cli(request)
    )
    return AppOut.model_validate(app)


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
