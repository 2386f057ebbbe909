"""The documented shapes of the device endpoints' answers (``/openapi.json`` only).

The handlers build their answers as plain dicts on the hot path; these models describe them so
that the document, and the fuzz test holding the server to it, know what a device receives.
Refusals (HTTP 200 ``{"error", "message", ...}``) are :class:`capgo_server.openapi.DeviceRefusal`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from capgo_server.openapi import Responses, device_responses


class ManifestEntry(BaseModel):
    file_name: str | None
    file_hash: str | None
    download_url: str


class UpdateOffer(BaseModel):
    """``POST /updates``: the bundle to download."""

    version: str
    url: str
    session_key: str
    checksum: str | None
    manifest: list[ManifestEntry] | None = None
    link: str | None = None
    comment: str | None = None


class StatsEntry(BaseModel):
    """One event of a batch: ``ok``, or why it was refused."""

    status: Literal["ok", "error"]
    index: int
    error: str | None = None
    message: str | None = None
    moreInfo: dict[str, Any] | None = None


class StatsAnswer(BaseModel):
    """``POST /stats``: ``results`` only for a batch (an array body)."""

    status: Literal["ok"]
    results: list[StatsEntry] | None = None


class ChannelSet(BaseModel):
    """``POST /channel_self``."""

    status: Literal["ok"]
    allowSet: bool | None = None


class CurrentChannel(BaseModel):
    """``PUT /channel_self``."""

    channel: str
    status: Literal["override", "default"]
    allowSet: bool | None = None


class ChannelUnset(BaseModel):
    """``DELETE /channel_self``."""

    status: Literal["ok"]


class SelectableChannel(BaseModel):
    """``GET /channel_self``: one channel the device may pick."""

    id: int
    name: str
    public: bool
    allow_self_set: bool


UPDATES: Responses = device_responses(
    UpdateOffer, "The bundle to download, or why there is none (`kind` says which)"
)
STATS: Responses = device_responses(StatsAnswer, "Recorded (per event for a batch)")
CHANNEL_SET: Responses = device_responses(ChannelSet, "The device may use the channel")
CHANNEL_CURRENT: Responses = device_responses(CurrentChannel, "The device's channel")
CHANNEL_UNSET: Responses = device_responses(ChannelUnset, "The device's channel is forgotten")
CHANNEL_LIST: Responses = device_responses(
    list[SelectableChannel], "The channels this kind of device may pick"
)
