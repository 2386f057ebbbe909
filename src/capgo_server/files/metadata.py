"""What an upload's tus ``Upload-Metadata`` may say: the bundle it targets, its checksum, and
the encryption fields of an encrypted bundle."""

from __future__ import annotations

import dataclasses
import re

from capgo_server.auth.access import is_uuid
from capgo_server.errors import ApiError
from capgo_server.storage.layout import bundle_file_path
from capgo_server.storage.local import safe_relative
from capgo_server.validation import is_app_id, is_semver, version_details

_BUNDLE_PATH = re.compile(r"orgs/(?P<org>[^/]+)/apps/(?P<app>[^/]+)/(?P<version>[^/]+)\.zip")
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_SESSION_KEY = re.compile(r"[A-Za-z0-9+/=_-]+:[A-Za-z0-9+/=_-]+")


@dataclasses.dataclass(frozen=True)
class BundleTarget:
    org_id: str
    app_id: str
    version: str

    @property
    def path(self) -> str:
        return bundle_file_path(self.org_id, self.app_id, self.version)


@dataclasses.dataclass(frozen=True)
class Encryption:
    session_key: str
    key_id: str | None
    checksum: str


def invalid_file_path(filename: object) -> ApiError:
    return ApiError(
        400,
        "invalid_file_path",
        "The file name must be orgs/<org_id>/apps/<app_id>/<version>.zip",
        {"filename": filename},
    )


def parse_target(filename: str | None) -> BundleTarget:
    """The bundle an upload's ``filename`` names; 400 ``invalid_file_path`` for any other shape,
    400 ``invalid_version_format`` when the version is not strict semver."""
    match = _BUNDLE_PATH.fullmatch(filename or "")
    if filename is None or match is None or ".." in filename:
        raise invalid_file_path(filename)
    try:
        safe_relative(filename)
    except ValueError:
        raise invalid_file_path(filename) from None
    if not is_uuid(match["org"]) or not is_app_id(match["app"]):
        raise invalid_file_path(filename)
    if not is_semver(match["version"]):
        raise ApiError(
            400,
            "invalid_version_format",
            "The version must follow semantic versioning (for example 1.2.3)",
            version_details(match["version"]),
        )
    return BundleTarget(org_id=match["org"], app_id=match["app"], version=match["version"])


def encryption_of(metadata: dict[str, str]) -> Encryption | None:
    session_key = metadata.get("session_key") or None
    key_id = metadata.get("key_id") or None
    checksum = metadata.get("checksum") or None
    if session_key is None:
        if key_id is not None:
            raise ApiError(400, "invalid_session_key", "key_id is only valid with a session_key")
        return None
    if len(session_key) > 2000 or not _SESSION_KEY.fullmatch(session_key):
        raise ApiError(400, "invalid_session_key", "session_key must be '<iv>:<encrypted key>'")
    if key_id is not None and len(key_id) > 20:
        raise ApiError(400, "invalid_key_id", "key_id must be at most 20 characters")
    if checksum is None or len(checksum) > 1000:
        raise ApiError(
            400,
            "invalid_checksum",
            "An encrypted bundle needs its encrypted checksum (at most 1000 characters)",
        )
    return Encryption(session_key=session_key, key_id=key_id, checksum=checksum)


def plain_checksum_of(metadata: dict[str, str]) -> str | None:
    checksum = metadata.get("checksum") or None
    if checksum is not None and not _SHA256_HEX.fullmatch(checksum):
        raise ApiError(
            400,
            "invalid_checksum",
            "checksum must be the SHA-256 of the zip in hexadecimal",
            {"checksum": checksum},
        )
    return checksum.lower() if checksum else None
