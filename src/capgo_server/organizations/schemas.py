"""Request and response shapes of ``/organization`` and ``/organization/audit``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from capgo_server.integers import BIGINT_MAX
from capgo_server.schema_types import JsDatetime, OrgIdText, Page


class OrganizationOut(BaseModel):
    """The seeds' ``Organization`` plus the policy fields ``PUT /organization`` sets."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    created_by: str
    created_at: JsDatetime
    updated_at: JsDatetime
    logo: str | None
    name: str
    management_email: str
    customer_id: str | None
    require_apikey_expiration: bool
    max_apikey_expiration_days: int | None
    enforce_hashed_api_keys: bool
    enforce_encrypted_bundles: bool
    required_encryption_key: str | None


class OrganizationQuery(BaseModel):
    orgId: OrgIdText | None = None
    page: Page = 0


class OrganizationCreate(BaseModel):
    name: str = Field(min_length=3, max_length=200)
    email: EmailStr | None = None


class OrganizationUpdate(BaseModel):
    orgId: OrgIdText
    logo: str | None = None
    name: str | None = Field(default=None, min_length=3, max_length=200)
    management_email: EmailStr | None = None
    require_apikey_expiration: bool | None = None
    # ``null`` clears the limit; range is checked after authorization (spec §3.1).
    max_apikey_expiration_days: int | None = None
    enforce_hashed_api_keys: bool | None = None
    enforce_encrypted_bundles: bool | None = None
    required_encryption_key: str | None = None


class OrganizationCreated(BaseModel):
    status: str = "Organization created"
    id: str


class OrganizationUpdated(BaseModel):
    status: str = "Organization updated"
    id: str
    data: OrganizationOut


class OrgIdInput(BaseModel):
    orgId: OrgIdText | None = None


class AuditQuery(BaseModel):
    orgId: OrgIdText
    tableName: str | None = None
    operation: str | None = None
    page: Page = 0
    limit: int = Field(default=50, ge=1, le=BIGINT_MAX)


class AuditEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: JsDatetime
    table_name: str
    record_id: str
    operation: str
    user_id: str | None
    org_id: str | None
    old_record: dict[str, Any] | None
    new_record: dict[str, Any] | None
    changed_fields: list[str] | None


class AuditPage(BaseModel):
    data: list[AuditEntry]
    total: int
    page: int
    limit: int


class StatusOk(BaseModel):
    status: str = "ok"
