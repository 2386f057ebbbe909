"""The ``/updates`` decision (spec §5.3): from a device's request, its channel and the channel's
bundle to either a refusal or an offer.

Every gate is one small function returning a :class:`Refusal` or ``None``; :func:`decide` runs
them in Capgo's order. Nothing here touches the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from capgo_server.models import App, Bundle, Channel
from capgo_server.models.bundle import INTERNAL_BUNDLE_NAMES
from capgo_server.plugin.common import SemVer
from capgo_server.schema_types import AppIdText, DeviceUuid
from capgo_server.validation import is_app_id, is_device_id

DEFAULT_PLUGIN_VERSION = "2.3.3"

Kind = Literal["up_to_date", "blocked", "failed"]

#: What each refusal means to a dashboard: the device is current, a policy holds it back, or the
#: server could not serve it. Every refusal body carries its ``kind``.
REFUSAL_KINDS: dict[str, Kind] = {
    "no_new_version_available": "up_to_date",
    "already_on_builtin": "up_to_date",
    "unsupported_plugin_version": "blocked",
    "no_channel": "blocked",
    "key_id_mismatch": "blocked",
    "disabled_platform_ios": "blocked",
    "disabled_platform_android": "blocked",
    "disabled_platform_electron": "blocked",
    "disable_auto_update_to_major": "blocked",
    "cannot_update_via_private_channel": "blocked",
    "disable_auto_update_to_minor": "blocked",
    "disable_auto_update_to_patch": "blocked",
    "misconfigured_channel": "blocked",
    "disable_auto_update_to_metadata": "blocked",
    "disable_auto_update_under_native": "blocked",
    "disable_prod_build": "blocked",
    "disable_dev_build": "blocked",
    "disable_device": "blocked",
    "disable_emulator": "blocked",
    "revert_to_builtin_plugin_version_too_old": "blocked",
    "no_bundle": "failed",
    "no_bundle_url": "failed",
}


class UpdateRequest(BaseModel):
    """The ``/updates`` body after §5.2 normalisation (extra fields ignored). String lengths
    are checked before, by :mod:`.fields`."""

    app_id: AppIdText
    device_id: DeviceUuid
    version_name: str = Field(min_length=1)
    version_build: str = Field(min_length=1)
    is_emulator: bool
    is_prod: bool
    platform: Literal["ios", "android", "electron"]
    plugin_version: str = DEFAULT_PLUGIN_VERSION
    defaultChannel: str | None = None
    key_id: str | None = None
    custom_id: str | None = None
    version_os: str | None = None

    @field_validator("app_id")
    @classmethod
    def _app_id(cls, value: str) -> str:
        if not is_app_id(value):
            raise ValueError("app_id must be a reverse domain string")
        return value

    @field_validator("device_id")
    @classmethod
    def _device_id(cls, value: str) -> str:
        if not is_device_id(value):
            raise ValueError("device_id must be a UUID")
        return value.lower()

    @field_validator("plugin_version")
    @classmethod
    def _plugin_version(cls, value: str) -> str:
        if SemVer.parse(value) is None:
            raise ValueError("plugin_version must be a semantic version")
        return value

    @cached_property
    def plugin(self) -> SemVer:
        parsed = SemVer.parse(self.plugin_version)
        assert parsed is not None  # validated above
        return parsed

    @cached_property
    def native(self) -> SemVer:
        parsed = SemVer.parse(self.version_build)
        assert parsed is not None  # normalised by normalise_plugin_body
        return parsed


@dataclass(frozen=True)
class Refusal:
    """An HTTP 200 ``{"error", "message", "kind", **extra}`` and the stats action it logs."""

    code: str
    message: str
    action: str | None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> Kind:
        return REFUSAL_KINDS[self.code]

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, "kind": self.kind, **self.extra}


@dataclass(frozen=True)
class Situation:
    """Everything a gate may look at."""

    request: UpdateRequest
    channel: Channel
    from_override: bool
    bundle: Bundle | None

    @property
    def internal(self) -> bool:
        return self.bundle is not None and self.bundle.name in INTERNAL_BUNDLE_NAMES

    @property
    def name(self) -> str:
        assert self.bundle is not None
        return self.bundle.name

    def target(self) -> SemVer | None:
        """The channel bundle as a version (``None`` for internal or non-semver names)."""
        return None if self.internal else SemVer.parse(self.name)

    def versions(self, old: str) -> dict[str, Any]:
        return {"version": self.name, "old": old}


def _at_least(plugin: SemVer, floors: dict[int, tuple[int, int, int]], newer: int) -> bool:
    """``plugin`` >= the floor of its major (majors >= ``newer`` always pass; others fail)."""
    if plugin.major >= newer:
        return True
    floor = floors.get(plugin.major)
    return floor is not None and (plugin.major, plugin.minor, plugin.patch) >= floor


def gets_manifest(plugin: SemVer) -> bool:
    return _at_least(plugin, {5: (5, 10, 0), 6: (6, 25, 0), 7: (7, 0, 35)}, newer=8)


def gets_metadata(plugin: SemVer) -> bool:
    floors = {major: (major, 35, 0) for major in (5, 6, 7, 8)}
    return _at_least(plugin, floors, newer=9)


# --- gates before the channel ----------------------------------------------------------------


def unsupported_plugin(request: UpdateRequest) -> Refusal | None:
    plugin = request.plugin
    if plugin.major != 4:
        return None
    return Refusal(
        "unsupported_plugin_version",
        f"Plugin version {request.plugin_version} (v4) is no longer supported. "
        "Please upgrade to v5.10.0 or later.",
        "backend_refusal",
    )


def no_channel() -> Refusal:
    return Refusal("no_channel", "no default channel or override", "NoChannelOrOverride")


# --- the gates of a resolved channel, in order -----------------------------------------------


def _no_bundle(s: Situation) -> Refusal | None:
    bundle = s.bundle
    if bundle is None:
        return Refusal("no_bundle", "Cannot get bundle", "missingBundle")
    no_file = not bundle.external_url and not bundle.r2_path and not bundle.manifest
    if not s.internal and (bundle.deleted or no_file):
        return Refusal("no_bundle", "Cannot get bundle", "missingBundle")
    return None


def _key_mismatch(s: Situation) -> Refusal | None:
    device_key, bundle_key = s.request.key_id, s.bundle.key_id if s.bundle else None
    differ = bool(device_key and bundle_key and device_key != bundle_key)
    if differ and s.request.plugin > SemVer(8, 40, 7):
        return Refusal(
            "key_id_mismatch",
            "Device encryption key does not match bundle encryption key. "
            "The bundle was encrypted with another key than the one configured in the app.",
            "keyMismatch",
            {"deviceKeyId": device_key, "bundleKeyId": bundle_key},
        )
    return None


def _no_new(s: Situation) -> Refusal | None:
    if s.request.version_name == s.name:
        return Refusal("no_new_version_available", "No new version available", "noNew")
    return None


_PLATFORM_REFUSALS = {
    "ios": ("Cannot update, ios it's disabled", "disablePlatformIos"),
    "android": ("Cannot update, android is disabled", "disablePlatformAndroid"),
    "electron": ("Cannot update, electron is disabled", "disablePlatformElectron"),
}


def _platform(s: Situation) -> Refusal | None:
    platform = s.request.platform
    if getattr(s.channel, platform):
        return None
    message, action = _PLATFORM_REFUSALS[platform]
    return Refusal(
        f"disabled_platform_{platform}", message, action, s.versions(s.request.version_name)
    )


def _jump(s: Situation, mode: str) -> Refusal | None:
    """The ``disable_auto_update`` gates comparing the bundle with the native version."""
    target = s.target()
    if target is None or s.channel.disable_auto_update != mode:
        return None
    native = s.request.native
    blocked = {
        "major": target.major > native.major,
        "minor": (target.major, target.minor) != (native.major, native.minor),
        "patch": (target.major, target.minor, target.patch)
        != (native.major, native.minor, native.patch),
    }[mode]
    if not blocked:
        return None
    action = f"disableAutoUpdateTo{mode.capitalize()}"
    extra = {"major": True, **s.versions(s.request.version_build)}
    return Refusal(
        f"disable_auto_update_to_{mode}", f"Cannot upgrade {mode} version", action, extra
    )


def _major(s: Situation) -> Refusal | None:
    return _jump(s, "major")


def _private_channel(s: Situation) -> Refusal | None:
    channel = s.channel
    if channel.allow_device_self_set or channel.public or s.from_override:
        return None
    start = (
        f'Cannot update via a private channel. The channel "{channel.name}" does not allow '
        "device self-assignment."
    )
    default = s.request.defaultChannel
    if default:
        end = (
            f' Please ensure your defaultChannel "{default}" has "Allow devices to self '
            'dissociate/associate" set to true.'
        )
    else:
        end = (
            ' Please set a defaultChannel with "Allow devices to self dissociate/associate" '
            "enabled."
        )
    action = "cannotUpdateViaPrivateChannel"
    return Refusal("cannot_update_via_private_channel", start + end, action)


def _minor(s: Situation) -> Refusal | None:
    return _jump(s, "minor")


def _patch(s: Situation) -> Refusal | None:
    return _jump(s, "patch")


def _version_number(s: Situation) -> Refusal | None:
    if s.internal or s.channel.disable_auto_update != "version_number":
        return None
    assert s.bundle is not None
    old = s.versions(s.request.version_build)
    minimum = SemVer.parse(s.bundle.min_update_version)
    if minimum is None:
        return Refusal(
            "misconfigured_channel",
            f"Channel {s.channel.name} is misconfigured",
            "channelMisconfigured",
            old,
        )
    if minimum > s.request.native:
        return Refusal(
            "disable_auto_update_to_metadata",
            "Cannot upgrade version, min update version > current version",
            "disableAutoUpdateMetadata",
            {"major": True, **old},
        )
    return None


def _under_native(s: Situation) -> Refusal | None:
    target = s.target()
    if target is None or not s.channel.disable_auto_update_under_native:
        return None
    if target < s.request.native:
        return Refusal(
            "disable_auto_update_under_native",
            "Cannot revert under native version",
            "disableAutoUpdateUnderNative",
            s.versions(s.request.version_name),
        )
    return None


def _build_kind(s: Situation) -> Refusal | None:
    request, channel = s.request, s.channel
    old = s.versions(request.version_name)
    if not channel.allow_prod and request.is_prod:
        return Refusal(
            "disable_prod_build", "Cannot update, prod build is disabled", "disableProdBuild", old
        )
    if not channel.allow_dev and not request.is_prod:
        return Refusal(
            "disable_dev_build", "Cannot update, dev build is disabled", "disableDevBuild", old
        )
    if not channel.allow_device and not request.is_emulator:
        return Refusal("disable_device", "Cannot update, device is disabled", "disableDevice", old)
    if not channel.allow_emulator and request.is_emulator:
        return Refusal(
            "disable_emulator", "Cannot update, emulator is disabled", "disableEmulator", old
        )
    return None


def _builtin(s: Situation) -> Refusal | None:
    if s.name != "builtin":
        return None
    if s.request.plugin >= SemVer(6, 2, 0):
        extra = {} if s.request.version_name == "builtin" else {"version": "builtin"}
        return Refusal("already_on_builtin", "Already on builtin", None, extra)
    return Refusal(
        "revert_to_builtin_plugin_version_too_old",
        "revert_to_builtin used, but plugin version is too old",
        None,
    )


GATES: tuple[Callable[[Situation], Refusal | None], ...] = (
    _no_bundle,
    _key_mismatch,
    _no_new,
    _platform,
    _major,
    _private_channel,
    _minor,
    _patch,
    _version_number,
    _under_native,
    _build_kind,
    _builtin,
)


def decide(situation: Situation) -> Refusal | None:
    """The first gate that refuses, or ``None``: the bundle may be offered."""
    for gate in GATES:
        refusal = gate(situation)
        if refusal is not None:
            return refusal
    return None


# --- the offer --------------------------------------------------------------------------------


def no_bundle_url() -> Refusal:
    return Refusal("no_bundle_url", "Cannot get bundle url", "cannotGetBundle")


def manifest_entries(
    bundle: Bundle, plugin: SemVer, sign: Callable[[str], str]
) -> list[dict[str, Any]]:
    """The bundle's per-file entries with signed URLs, for plugins that understand them."""
    if not bundle.manifest or not gets_manifest(plugin):
        return []
    return [
        {
            "file_name": entry.get("file_name"),
            "file_hash": entry.get("file_hash"),
            "download_url": sign(str(entry["s3_path"])),
        }
        for entry in bundle.manifest
        if isinstance(entry, dict) and entry.get("s3_path")
    ]


def offer(
    request: UpdateRequest,
    app: App,
    bundle: Bundle,
    url: str,
    manifest: list[dict[str, Any]],
) -> dict[str, Any] | Refusal:
    """The success body, or ``no_bundle_url`` when there is nothing to download."""
    if not url.startswith(("https://", "http://")):
        url = ""
    if not url and not manifest:
        return no_bundle_url()
    body: dict[str, Any] = {
        "version": bundle.name,
        "url": url or "https://404.capgo.app/no.zip",
        "session_key": bundle.session_key or "",
        "checksum": bundle.checksum,
    }
    if manifest:
        body["manifest"] = manifest
    if app.expose_metadata and gets_metadata(request.plugin):
        if bundle.link:
            body["link"] = bundle.link
        if bundle.comment:
            body["comment"] = bundle.comment
    return body
