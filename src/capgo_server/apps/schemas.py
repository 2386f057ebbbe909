"""Request and response shapes of ``/app`` (spec §3.7)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from capgo_server.integers import BIGINT_MAX
from capgo_server.schema_types import AppIdText, JsDatetime, OrgIdText, Page

#: Longest ``retention`` accepted (seconds, two years): ``PUT /app`` refuses this and above.
MAX_RETENTION_SECONDS = 63_113_904


class AppOut(BaseModel):
    """An ``apps`` row as Capgo returns it."""

    model_config = ConfigDict(from_attributes=True)

    app_id: str
    id: str
    owner_org: str
    user_id: str | None
    name: str
    icon_url: str
    last_version: str | None
    retention: int
    default_upload_channel: str
    channel_device_count: int
    manifest_bundle_count: int
    expose_metadata: bool
    allow_preview: bool
    created_at: JsDatetime
    updated_at: JsDatetime


class AppListQuery(BaseModel):
    page: Page = 0
    limit: int = Field(default=50, ge=1, le=BIGINT_MAX, description="Rows per page (at most 100).")
    org_id: OrgIdText | None = Field(
        default=None, description="Only the apps of this organization."
    )


class AppCreate(BaseModel):
    """The body of ``POST /app``; a missing ``app_id``/``name``/``owner_org`` has its own code."""

    app_id: AppIdText | None = Field(
        default=None, description="Reverse-domain id, e.g. com.example.app"
    )
    name: str | None = Field(default=None, max_length=255)
    owner_org: OrgIdText | None = Field(default=None, description="The organization's id.")
    icon: str | None = Field(default=None, max_length=2000, description="Icon URL.")


class AppUpdate(BaseModel):
    """The body of ``PUT /app/:id``: only the fields given change."""

    name: str | None = Field(default=None, min_length=1, max_length=255)
    icon: str | None = Field(default=None, max_length=2000, description="Icon URL.")
    retention: int | None = Field(
        default=None,
        description="Seconds a deleted bundle's file is kept (0 to 63113903).",
    )
    expose_metadata: bool | None = None


class StatusOk(BaseModel):
    status: str = "ok"
