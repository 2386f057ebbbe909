"""Identifier and version formats (spec §1.4).

Patterns are ASCII-only and matched with ``fullmatch``: Python's ``\\d``/``\\w`` accept Unicode
digits and letters, and ``$`` accepts a trailing newline, none of which Capgo's regexes allow.
"""

from __future__ import annotations

import re

#: The rules below as written (ASCII classes, no flags), so that ``/openapi.json`` can state them
#: as JSON Schema patterns (:mod:`capgo_server.schema_types`) exactly as they are enforced.
APP_ID_RULE = r"[a-zA-Z0-9]+(\.[a-zA-Z0-9_-]+)+"
DEVICE_ID_RULE = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
#: ``apps.app_id`` is a VARCHAR(255): a longer id can name no app, on any route.
MAX_APP_ID_LENGTH = 255

_REVERSE_DOMAIN = re.compile(APP_ID_RULE)
_DEVICE_ID = re.compile(DEVICE_ID_RULE)
_NUMERIC = r"(?:0|[1-9][0-9]*)"
_PRERELEASE_ID = r"(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)"
_SEMVER = re.compile(
    rf"(?P<major>{_NUMERIC})\.(?P<minor>{_NUMERIC})\.(?P<patch>{_NUMERIC})"
    rf"(?:-(?P<prerelease>{_PRERELEASE_ID}(?:\.{_PRERELEASE_ID})*))?"
    r"(?:\+(?P<build>[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)
#: :data:`_SEMVER` without its group names (JSON Schema patterns are ECMA 262 regexes).
SEMVER_RULE = re.sub(r"\(\?P<\w+>", "(", _SEMVER.pattern)

INTERNAL_VERSION_NAMES = frozenset({"builtin", "unknown"})

#: The width of a bundle's name column (``app_versions.name``, and an upload's ``version_name``).
BUNDLE_NAME_LENGTH = 255
#: The longest version a bundle may be given. A stored bundle's file is ``<version>.zip``, one
#: path component, and file systems hold at most 255 bytes there (semver is ASCII): a longer
#: version could be recorded but never stored, and its upload failed after its last byte.
MAX_VERSION_LENGTH = BUNDLE_NAME_LENGTH - len(".zip")


def is_app_id(value: object) -> bool:
    """A reverse-domain app id such as ``com.example.app`` (at least one dot), at most
    :data:`MAX_APP_ID_LENGTH` characters."""
    return (
        isinstance(value, str)
        and len(value) <= MAX_APP_ID_LENGTH
        and _REVERSE_DOMAIN.fullmatch(value) is not None
    )


def is_device_id(value: object) -> bool:
    return isinstance(value, str) and _DEVICE_ID.fullmatch(value) is not None


def is_semver(value: object) -> bool:
    """Strict SemVer 2.0: no ``v`` prefix, no leading zeros, optional pre-release and build;
    at most :data:`MAX_VERSION_LENGTH` characters."""
    return (
        isinstance(value, str)
        and len(value) <= MAX_VERSION_LENGTH
        and _SEMVER.fullmatch(value) is not None
    )


def version_details(version: object) -> dict[str, object]:
    """``moreInfo`` of an ``invalid_version_format`` refusal: the version, and the length limit
    when that is what it broke (a well-formed version can still be too long)."""
    details: dict[str, object] = {"version": version}
    if isinstance(version, str) and len(version) > MAX_VERSION_LENGTH:
        details["max_length"] = MAX_VERSION_LENGTH
    return details


def is_internal_version_name(name: str) -> bool:
    return name in INTERNAL_VERSION_NAMES


def request_app_id(data: dict[str, object]) -> object:
    """``app_id``, or the legacy docs' ``appid`` when ``app_id`` is absent."""
    value = data.get("app_id")
    return data.get("appid") if value is None or value == "" else value


def checked_app_id(value: object, body: object = None) -> str:
    """The request's ``app_id``, or 400 ``missing_app_id`` / ``invalid_app_id`` (spec §3.4)."""
    from capgo_server.errors import ApiError

    if value is None or value == "":
        raise ApiError(400, "missing_app_id", "Missing app_id", {"body": body} if body else {})
    if not is_app_id(value):
        raise ApiError(
            400, "invalid_app_id", "App ID must be a reverse domain string", {"app_id": value}
        )
    assert isinstance(value, str)
    return value
