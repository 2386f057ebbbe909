"""Request and response shapes of ``/channel`` (spec §3.4; seeds ``Channel`` / ``ChannelSet``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from capgo_server.schema_types import AppIdText, JsDatetime, Page

DisableAutoUpdate = Literal["major", "minor", "patch", "version_number", "none"]


class ChannelVersion(BaseModel):
    """The bundle a channel serves."""

    id: int
    name: str


class ChannelOut(BaseModel):
    """A channel as ``GET /channel`` returns it: Capgo's projection, the legacy
    ``disableAutoUpdateToMajor`` and the platform flags."""

    id: int
    created_at: JsDatetime
    name: str
    app_id: str
    created_by: str | None
    updated_at: JsDatetime
    public: bool
    allow_device_self_set: bool
    allow_emulator: bool
    allow_device: bool
    allow_dev: bool
    allow_prod: bool
    version: ChannelVersion
    disableAutoUpdateUnderNative: bool
    disableAutoUpdate: DisableAutoUpdate
    disableAutoUpdateToMajor: bool = Field(
        description="Legacy: true when disableAutoUpdate is 'major'."
    )
    ios: bool
    android: bool
    electron: bool
    rollout_version: ChannelVersion | None = Field(
        description="The second bundle of a percentage rollout, or null (no rollout)."
    )
    rollout_percentage: float = Field(
        description="Percentage (0..100) of devices offered rollout_version instead of version; "
        "each device's draw is sticky."
    )


class ChannelQuery(BaseModel):
    """``GET /channel`` input (query string or body); ``appid`` is the legacy ``app_id``."""

    app_id: AppIdText | None = None
    appid: AppIdText | None = None
    channel: str | None = Field(default=None, description="One channel by name.")
    page: Page = 0


class ChannelSet(BaseModel):
    """The body of ``POST /channel``: create the channel, or update the fields given."""

    app_id: AppIdText
    channel: str | None = Field(default=None, max_length=255, description="The channel's name.")
    version: str | None = Field(
        default=None,
        description="A bundle name (a live bundle, or 'builtin'/'unknown'); null: the channel "
        "serves 'unknown' (no bundle: it unlinks an existing channel); omitted: a new channel "
        "gets 'unknown', an existing one keeps its bundle.",
    )
    public: bool | None = Field(
        default=None,
        description="Devices without an override or defaultChannel get the public channel of "
        "their platform. A public channel makes the other public channels open to its iOS or "
        "Android private (docs/channels.md).",
    )
    disableAutoUpdateUnderNative: bool | None = None
    disableAutoUpdate: DisableAutoUpdate | None = None
    ios: bool | None = Field(default=None, description="Open to iOS devices (new: true).")
    android: bool | None = Field(default=None, description="Open to Android devices (new: true).")
    electron: bool | None = Field(
        default=None,
        description="Open to Electron devices (new: true). Electron never makes a channel "
        "private: Electron devices get the oldest public channel open to it; true here on a "
        "public channel takes Electron from the other public channels.",
    )
    allow_device_self_set: bool | None = None
    allow_emulator: bool | None = None
    allow_device: bool | None = None
    allow_dev: bool | None = None
    allow_prod: bool | None = None
    rollout_version: str | None = Field(
        default=None,
        description="Percentage rollout: a live bundle name offered to rollout_percentage % of "
        "the devices instead of version; null clears the rollout; omitted: unchanged.",
    )
    # Checked by the service (400 invalid_rollout_percentage), so typed loosely here.
    rollout_percentage: Any = Field(
        default=None,
        json_schema_extra={"type": "number", "minimum": 0, "maximum": 100},
        description="0..100: the share of devices offered rollout_version (sticky per device; "
        "raising it only adds devices). Omitted: unchanged.",
    )


class ChannelDelete(BaseModel):
    """``DELETE /channel`` input (body or query string)."""

    app_id: AppIdText | None = None
    appid: AppIdText | None = None
    channel: str | None = None
    delete_bundle: bool = Field(
        default=False,
        description="Also delete the bundle the channel serves, as DELETE /bundle would "
        "(refused if another channel serves it; the app's 'unknown'/'builtin' are never "
        "deleted). Needs the rights of both routes.",
    )

    @field_validator("delete_bundle", mode="plain", json_schema_input_type=bool)
    @classmethod
    def _boolean(cls, value: object) -> bool:
        """A JSON boolean, or its text in a query string (where every value is text); nothing
        else, so that ``1`` or ``"yes"`` never deletes a bundle by accident."""
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
        raise ValueError("delete_bundle must be true or false")


class StatusOk(BaseModel):
    status: str = "ok"


class ChannelSaved(StatusOk):
    """``POST /channel``'s answer: ``status`` and the channel's ``id`` and ``public`` as saved
    (the official CLI reads them)."""

    id: int
    public: bool
