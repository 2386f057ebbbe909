"""Request and response shapes of ``/bundle`` and the legacy ``/versions`` (spec §3.6)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

from capgo_server.schema_types import AppIdText, JsDatetime, Page, SemverText
from capgo_server.validation import MAX_VERSION_LENGTH

#: ``key_id`` is the first 20 characters of the public key a bundle was encrypted with.
MAX_KEY_ID_LENGTH = 20


class BundleOut(BaseModel):
    """A bundle row: every field of the seeds' ``Bundle`` (``bucket_id`` is always null,
    ``minUpdateVersion`` mirrors ``min_update_version``) plus the rest of the row."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    app_id: str
    name: str
    owner_org: str
    user_id: str | None
    deleted: bool
    deleted_at: JsDatetime | None
    external_url: str | None
    r2_path: str | None
    bucket_id: str | None = None
    checksum: str | None
    session_key: str | None
    key_id: str | None
    storage_provider: str
    size: int | None
    min_update_version: str | None
    native_packages: list[Any] | None
    manifest: list[Any] | None
    manifest_count: int
    link: str | None
    comment: str | None
    cli_version: str | None
    created_at: JsDatetime
    updated_at: JsDatetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def minUpdateVersion(self) -> str | None:
        return self.min_update_version


class BundleQueryDoc(BaseModel):
    """The query of ``GET /bundle`` (``appid`` is the legacy spelling of ``app_id``)."""

    app_id: AppIdText
    page: Page = 0


class BundleListQuery(BaseModel):
    page: Page = 0


class BundleDeleteDoc(BaseModel):
    """The body (or query) of ``DELETE /bundle``: one bundle by name, or every bundle."""

    app_id: AppIdText
    version: str | None = None


class BundleCreate(BaseModel):
    """The body (or query) of ``POST /bundle``: a bundle hosted at an HTTPS URL."""

    app_id: AppIdText
    version: SemverText = Field(max_length=MAX_VERSION_LENGTH)
    external_url: str = Field(max_length=2000)
    checksum: str = Field(max_length=1000)
    session_key: str | None = Field(default=None, max_length=2000)
    key_id: str | None = Field(default=None, max_length=MAX_KEY_ID_LENGTH)


class BundleCreated(BaseModel):
    status: str = "success"
    bundle: BundleOut


class SetChannelDoc(BaseModel):
    """The body of ``PUT /bundle``: serve bundle ``version_id`` on channel ``channel_id``."""

    app_id: AppIdText
    version_id: int
    channel_id: int


class SetChannelDone(BaseModel):
    status: str = "success"
    message: str


class MetadataUpdateDoc(BaseModel):
    """The body of ``POST /bundle/metadata``: at least one of ``link`` and ``comment``."""

    app_id: AppIdText
    version_id: int
    link: str | None = None
    comment: str | None = None


class MetadataText(BaseModel):
    link: str | None = None
    comment: str | None = None


class StatusOk(BaseModel):
    status: str = "ok"
