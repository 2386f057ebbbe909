"""``/organization`` and ``/organization/audit`` (spec §3.1)."""

from __future__ import annotations

from typing import Any

from fastapi import BackgroundTasks, Request

from capgo_server.auth.principal import AnyModeKey
from capgo_server.db.session import Session
from capgo_server.errors import ApiError
from capgo_server.openapi import API_ERRORS, error_responses
from capgo_server.organizations import service
from capgo_server.organizations.schemas import (
    AuditEntry,
    AuditPage,
    AuditQuery,
    OrganizationCreate,
    OrganizationCreated,
    OrganizationOut,
    OrganizationQuery,
    OrganizationUpdate,
    OrganizationUpdated,
    OrgIdInput,
    StatusOk,
)
from capgo_server.parsing import (
    body_or_query,
    documented_body,
    documented_body_or_query,
    documented_query,
    validate,
)
from capgo_server.routing import router
from capgo_server.storage.cleanup import remove_stored

organization_router = router(prefix="/organization", tags=["organizations"], responses=API_ERRORS)


@organization_router.get(
    "",
    response_model=OrganizationOut | list[OrganizationOut],
    openapi_extra=documented_query(OrganizationQuery),
)
async def get_organizations(request: Request, session: Session, principal: AnyModeKey) -> Any:
    """One organization (``orgId``), or every organization the key may see (50 per ``page``)."""
    query = validate(OrganizationQuery, await body_or_query(request))
    if query.orgId is not None:
        org = await service.get_organization(session, principal, query.orgId)
        return OrganizationOut.model_validate(org)
    orgs = await service.list_organizations(session, principal, query.page)
    return [OrganizationOut.model_validate(org) for org in orgs]


async def _save_organization(
    request: Request, session: Session, principal: AnyModeKey
) -> OrganizationCreated | OrganizationUpdated:
    data = await body_or_query(request)
    if "orgId" in data:
        update = validate(OrganizationUpdate, data)
        org = await service.update_organization(session, principal, update)
        return OrganizationUpdated(id=org.id, data=OrganizationOut.model_validate(org))
    create = validate(OrganizationCreate, data)
    org = await service.create_organization(session, principal, create)
    return OrganizationCreated(id=org.id)


_SAVE_DOC = documented_body(OrganizationCreate) | {
    "description": "A body with `orgId` updates that organization (`OrganizationUpdate`, "
    "admin role); a body without it creates one. POST and PUT behave alike."
}
_SAVE_RESPONSE = OrganizationCreated | OrganizationUpdated

organization_router.add_api_route(
    "",
    _save_organization,
    methods=["POST"],
    response_model=_SAVE_RESPONSE,
    summary="Create or update an organization",
    openapi_extra=_SAVE_DOC,
    operation_id="post_organization",
)
organization_router.add_api_route(
    "",
    _save_organization,
    methods=["PUT"],
    response_model=_SAVE_RESPONSE,
    summary="Create or update an organization (PUT)",
    openapi_extra=_SAVE_DOC,
    operation_id="put_organization",
)


@organization_router.delete(
    "",
    response_model=StatusOk,
    responses=error_responses(403),
    openapi_extra=documented_body_or_query(OrgIdInput),
)
async def delete_organization(
    request: Request, session: Session, principal: AnyModeKey, background: BackgroundTasks
) -> StatusOk:
    """Delete an organization and everything it owns (``super_admin`` only)."""
    data = validate(OrgIdInput, await body_or_query(request))
    if not data.orgId:
        raise ApiError(400, "missing_org_id", "Missing orgId")
    prefixes = await service.delete_organization(session, principal, data.orgId)
    # Background tasks run after the response, so after the commit.
    background.add_task(remove_stored, request.app.state.bundle_store, prefixes=prefixes)
    return StatusOk()


@organization_router.get(
    "/audit", response_model=AuditPage, openapi_extra=documented_query(AuditQuery)
)
async def get_audit_logs(request: Request, session: Session, principal: AnyModeKey) -> AuditPage:
    """The organization's audit trail, newest first (``page``, ``limit`` up to 100)."""
    query = validate(AuditQuery, await body_or_query(request))
    rows, total, limit = await service.audit_page(session, principal, query)
    return AuditPage(
        data=[AuditEntry.model_validate(row) for row in rows],
        total=total,
        page=query.page,
        limit=limit,
    )
