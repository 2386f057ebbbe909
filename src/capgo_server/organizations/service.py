"""Rules for organizations: list, read, create, update, delete, and the audit trail."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from capgo_server import audit
from capgo_server.auth.access import authorize_org, cannot_access_organization, visible_orgs
from capgo_server.auth.principal import WRITE_MODES, Principal
from capgo_server.auth.roles import Role
from capgo_server.errors import ApiError
from capgo_server.models import AuditLog, Membership, Organization, Upload, User
from capgo_server.organizations.schemas import AuditQuery, OrganizationCreate, OrganizationUpdate
from capgo_server.storage.layout import org_files_prefix, upload_parts_prefix

PAGE_SIZE = 50
AUDIT_MAX_LIMIT = 100
MAX_EXPIRATION_DAYS_RANGE = range(1, 366)


def _invalid_org_id(org_id: object) -> ApiError:
    return ApiError(400, "invalid_org_id", "You can't access this organization", {"org_id": org_id})


async def list_organizations(
    session: AsyncSession, principal: Principal, page: int
) -> Sequence[Organization]:
    query = visible_orgs(principal).offset(page * PAGE_SIZE).limit(PAGE_SIZE)
    return (await session.scalars(query)).all()


async def get_organization(
    session: AsyncSession, principal: Principal, org_id: str
) -> Organization:
    access = await authorize_org(
        session, principal, org_id, role=Role.read, denied=_invalid_org_id(org_id)
    )
    return access.org


async def create_organization(
    session: AsyncSession, principal: Principal, body: OrganizationCreate
) -> Organization:
    """Create an org owned (``super_admin``) by the key's user.

    Refused with 400 ``cannot_create_org`` for read/upload keys and for limited keys (a key
    limited to some orgs or apps could not reach the new org anyway), and for a name the user
    already uses.
    """
    refused = ApiError(400, "cannot_create_org", "Cannot create organization")
    if not principal.has_mode(WRITE_MODES) or principal.is_limited:
        raise refused
    user = await session.get(User, principal.user_id)
    if user is None:
        raise ApiError(400, "cannot_get_user", "Cannot get user")
    taken = await session.scalar(
        select(Organization.id).where(
            Organization.name == body.name, Organization.created_by == user.id
        )
    )
    if taken is not None:
        raise ApiError(
            400,
            "cannot_create_org",
            "An organization with this name already exists",
            {"name": body.name},
        )
    try:
        return await found_organization(session, user, body.name, str(body.email or user.email))
    except IntegrityError as exc:  # a concurrent request took the name
        raise refused from exc


async def found_organization(
    session: AsyncSession, founder: User, name: str, management_email: str
) -> Organization:
    """Insert an org with ``founder`` as its ``super_admin``, and their audit entries.

    The caller has checked the name is free; a concurrent duplicate raises ``IntegrityError``.
    """
    org = Organization(name=name, created_by=founder.id, management_email=management_email)
    session.add(org)
    await session.flush()
    membership = Membership(org_id=org.id, user_id=founder.id, user_right=Role.super_admin.value)
    session.add(membership)
    await session.flush()
    for row in (org, membership):
        audit.record_row(session, row, "INSERT", org_id=org.id, user_id=founder.id)
    return org


async def update_organization(
    session: AsyncSession, principal: Principal, body: OrganizationUpdate
) -> Organization:
    access = await authorize_org(
        session,
        principal,
        body.orgId,
        role=Role.admin,
        modes=WRITE_MODES,
        org_wide=True,
        denied=cannot_access_organization(body.orgId),
    )
    org = access.org
    changes = body.model_dump(exclude_unset=True, exclude={"orgId"})
    days = changes.get("max_apikey_expiration_days")
    if days is not None and days not in MAX_EXPIRATION_DAYS_RANGE:
        raise ApiError(
            400, "invalid_max_expiration_days", "Maximum expiration days must be between 1 and 365"
        )
    # ``null`` is meaningful only where the column may be empty.
    nullable = {"logo", "max_apikey_expiration_days", "required_encryption_key"}
    changes = {k: v for k, v in changes.items() if v is not None or k in nullable}
    if "management_email" in changes:
        changes["management_email"] = str(changes["management_email"])
    if not changes:
        return org
    if "name" in changes and changes["name"] != org.name:
        taken = await session.scalar(
            select(Organization.id).where(
                Organization.name == changes["name"], Organization.created_by == org.created_by
            )
        )
        if taken is not None:
            raise ApiError(
                400,
                "cannot_update_org",
                "An organization with this name already exists",
                {"name": changes["name"]},
            )
    before = audit.snapshot(org)
    for field, value in changes.items():
        setattr(org, field, value)
    await session.flush()
    await session.refresh(org)
    audit.record_row(session, org, "UPDATE", org_id=org.id, user_id=principal.user_id, old=before)
    return org


async def delete_organization(
    session: AsyncSession, principal: Principal, org_id: str
) -> list[str]:
    """Delete an org and, through foreign-key cascades, everything it owns. Returns the storage
    prefixes of its files (its apps' bundles and the parts of their unfinished uploads), for
    the caller to remove once the deletion is committed."""
    denied = ApiError(
        403, "invalid_org_id", "You can't delete this organization", {"org_id": org_id}
    )
    access = await authorize_org(
        session,
        principal,
        org_id,
        role=Role.super_admin,
        modes=WRITE_MODES,
        org_wide=True,
        denied=denied,
    )
    # Read before the delete: the upload rows go with the org, their parts do not.
    uploads = await session.scalars(select(Upload.id).where(Upload.owner_org == access.org.id))
    prefixes = [org_files_prefix(access.org.id)]
    prefixes += [upload_parts_prefix(upload_id) for upload_id in uploads]
    before = audit.snapshot(access.org)
    await session.execute(delete(Organization).where(Organization.id == access.org.id))
    audit.record_row(
        session, access.org, "DELETE", org_id=access.org.id, user_id=principal.user_id, old=before
    )
    return prefixes


async def audit_page(
    session: AsyncSession, principal: Principal, query: AuditQuery
) -> tuple[Sequence[AuditLog], int, int]:
    """One page of an org's audit trail, newest first; returns (rows, total, limit applied).

    The trail records every app of the org, so a key limited to some apps may not read it (400
    ``invalid_org_id``, as for a foreign org), as it may not read the org's statistics.
    """
    access = await authorize_org(
        session,
        principal,
        query.orgId,
        role=Role.read,
        org_wide=True,
        denied=_invalid_org_id(query.orgId),
    )
    limit = min(query.limit, AUDIT_MAX_LIMIT)
    conditions = [AuditLog.org_id == access.org.id]
    if query.tableName:
        conditions.append(AuditLog.table_name == query.tableName)
    if query.operation:
        conditions.append(AuditLog.operation == query.operation.upper())
    total = await session.scalar(select(func.count()).select_from(AuditLog).where(*conditions))
    rows = await session.scalars(
        select(AuditLog)
        .where(*conditions)
        .order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
        .offset(query.page * limit)
        .limit(limit)
    )
    return rows.all(), total or 0, limit
