"""Request and response shapes of ``/device`` (spec §3.5)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from capgo_server.integers import BIGINT_MAX
from capgo_server.schema_types import AppIdText, DeviceIdText, JsDatetime


class DeviceOut(BaseModel):
    """A device as ``GET /device`` shows it. ``version`` is the id of the bundle the device
    reports running (matched by name); ``channel`` is present only when the device has a
    channel override."""

    updated_at: JsDatetime
    device_id: str
    custom_id: str
    is_prod: bool
    is_emulator: bool
    version_name: str | None
    version: int | None
    app_id: str
    platform: str | None
    plugin_version: str
    os_version: str | None
    version_build: str
    key_id: str | None
    channel: str | None = None


class DevicePage(BaseModel):
    """One page of devices, newest first. Pass ``nextCursor`` back as ``cursor`` for the next
    page; it is absent on the last one."""

    data: list[DeviceOut]
    nextCursor: str | None = None
    hasMore: bool


class DeviceQueryDoc(BaseModel):
    """The query of ``GET /device`` (documentation; read by the service field by field)."""

    app_id: AppIdText
    device_id: DeviceIdText | None = None
    customIdMode: bool = False
    cursor: str | None = Field(default=None, description="`nextCursor` of the previous page")
    limit: int = Field(
        default=50, ge=1, le=BIGINT_MAX, description="Page size; values above 100 give 100"
    )


class DeviceLink(BaseModel):
    """The body of ``POST /device``: pin a device to a (non-public) channel. The legacy
    ``channel_id`` (a channel name, or a channel id) is accepted when ``channel`` is absent."""

    app_id: AppIdText
    device_id: DeviceIdText
    channel: str | None = None
    channel_id: str | int | None = None


class DeviceUnlink(BaseModel):
    """The body (or query) of ``DELETE /device``: remove a device's channel override."""

    app_id: AppIdText
    device_id: DeviceIdText


class StatusOk(BaseModel):
    status: str = "ok"
