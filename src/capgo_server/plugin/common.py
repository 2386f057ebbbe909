"""What every device endpoint shares (spec §5.2): body normalisation, refusals, versions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from capgo_server.errors import ApiError
from capgo_server.integers import digits_at_most
from capgo_server.plugin.fields import DEVICE_FIELD_LIMITS, refuse_oversized

ModelT = TypeVar("ModelT", bound=BaseModel)

PLATFORMS = ("ios", "android", "electron")
#: The bound JavaScript's semver parsers put on numbers (``Number.MAX_SAFE_INTEGER``): a larger
#: major, minor or patch is no version, a larger numeric pre-release part compares as text.
MAX_SAFE_INTEGER = 2**53 - 1
_SEMVER = re.compile(
    r"[v=]?(?P<major>0|[1-9][0-9]*)\.(?P<minor>0|[1-9][0-9]*)\.(?P<patch>0|[1-9][0-9]*)"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)


@dataclass(frozen=True)
class SemVer:
    """A semantic version, ordered by SemVer 2.0 precedence (build metadata ignored)."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[int | str, ...] = ()

    @classmethod
    def parse(cls, text: object) -> SemVer | None:
        return _parse_semver(text) if isinstance(text, str) else None

    def _key(self) -> tuple[Any, ...]:
        # A release sorts after its pre-releases; numeric identifiers before alphanumeric ones.
        pre = tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in self.prerelease)
        return (self.major, self.minor, self.patch, not self.prerelease, pre)

    def __lt__(self, other: SemVer) -> bool:
        return self._key() < other._key()

    def __le__(self, other: SemVer) -> bool:
        return self._key() <= other._key()

    def __gt__(self, other: SemVer) -> bool:
        return self._key() > other._key()

    def __ge__(self, other: SemVer) -> bool:
        return self._key() >= other._key()

    def __str__(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return f"{core}-{'.'.join(str(p) for p in self.prerelease)}" if self.prerelease else core


@lru_cache(maxsize=4096)
def _parse_semver(text: str) -> SemVer | None:
    # Cached: a device request parses its plugin, native and bundle versions, and a fleet
    # sends the same few strings over and over (SemVer is immutable, so sharing one is safe).
    match = _SEMVER.fullmatch(text.strip())
    if match is None:
        return None
    major, minor, patch = (
        digits_at_most(match[part], MAX_SAFE_INTEGER) for part in ("major", "minor", "patch")
    )
    if major is None or minor is None or patch is None:
        return None
    pre = tuple(_identifier(part) for part in (match["pre"] or "").split(".") if part)
    return SemVer(major, minor, patch, pre)


def _identifier(part: str) -> int | str:
    """A pre-release identifier: numeric ones compare as numbers, unless too large to."""
    number = digits_at_most(part, MAX_SAFE_INTEGER)
    return part if number is None else number


def fix_semver(version: str) -> str:
    """Capgo's ``fixSemver``: ``builtin``/``unknown`` → ``0.0.0``, ``1`` → ``1.0.0``, ``1.2`` →
    ``1.2.0``; anything else unchanged (native build versions are often short)."""
    if version in ("builtin", "unknown"):
        return "0.0.0"
    if re.fullmatch(r"[0-9]+", version):
        return f"{version}.0.0"
    if re.fullmatch(r"[0-9]+\.[0-9]+", version):
        return f"{version}.0"
    return version


#: The type of a validation error written for the device's developer (:func:`explained`).
EXPLAINED = "explained"


def explained(reason: str) -> PydanticCustomError:
    """A validation error whose text says what is wrong: the answer's message instead of
    Capgo's bare "Cannot parse body" (the code stays)."""
    return PydanticCustomError(EXPLAINED, "{reason}", {"reason": reason})


class PluginRefusal(Exception):
    """An answer to a device that is not an update: ``{"error", "message", **extra}`` with the
    extra fields at the top level (spec §1.2, ``simpleError200``), HTTP 200 unless told."""

    def __init__(self, code: str, message: str, status: int = 200, **extra: Any) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.extra = extra

    def response(self) -> JSONResponse:
        return JSONResponse(
            {"error": self.code, "message": self.message, **self.extra}, status_code=self.status
        )


def unknown_app(app_id: str) -> PluginRefusal:
    """429 for an app this server does not know, so the plugin backs off (House decisions).

    Capgo's message ("On-premise app detected") means nothing to a self-hoster; this one says
    what is wrong and what to do. ``app_id`` is the device's own value, so echoing it tells
    nothing about other tenants (a deleted app's reserved id answers the same)."""
    return PluginRefusal(
        "on_premise_app",
        f"The app id {app_id} is not registered on this server: create the app (POST /app, "
        "or the Capgo CLI's app add) before devices can get updates from it",
        status=429,
    )


def normalise_plugin_body(
    body: dict[str, Any], model: type[ModelT], *, require_device: bool = True, query: bool = False
) -> ModelT:
    """Capgo's ``parsePluginBody`` (§5.2): the checks in order, then ``model`` validation.

    400 ``invalid_json_body`` (``invalid_query_parameters`` for query-string input) for an empty
    or ill-shaped body, ``missing_device_id``, ``missing_app_id``, a string longer than its
    column (:mod:`.fields`, checked before any other version is parsed, and again after
    normalisation, which may lengthen ``version_build``), ``semver_error`` for a native version
    that is not semver even after :func:`fix_semver`, or longer than its column.
    """
    unparseable = "invalid_query_parameters" if query else "invalid_json_body"
    if not body:
        raise ApiError(400, unparseable, "Cannot parse body")
    if require_device and not body.get("device_id"):
        raise ApiError(400, "missing_device_id", "Cannot find device_id")
    if not body.get("app_id"):
        raise ApiError(400, "missing_app_id", "Cannot find app_id")
    version_build = body.get("version_build")
    normalised_build: str | None = None
    if version_build:
        # Capgo checks the native version before the schema: one too long for its column is
        # no version this server can keep, so it gets the same answer (without echoing it).
        too_long = len(str(version_build)) > DEVICE_FIELD_LIMITS["version_build"]
        parsed = None if too_long else SemVer.parse(fix_semver(str(version_build)))
        if parsed is None:
            shown = f"{str(version_build)[:32]}..." if too_long else version_build
            raise ApiError(
                400,
                "semver_error",
                f"Native version: {shown} doesn't follow semver convention, please "
                "check https://capgo.app/semver_tester/ to learn more about semver usage in Capgo",
            )
        normalised_build = str(parsed)
    refuse_oversized(body, query=query)
    body = dict(body)
    if normalised_build is not None:
        body["version_build"] = normalised_build
    body.setdefault("is_emulator", False)
    body.setdefault("is_prod", True)
    if body.get("version_name") == "builtin" and body.get("version_build"):
        body["version_name"] = body["version_build"]
    refuse_oversized(body, query=query)
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        reasons = [e["msg"] for e in exc.errors() if e["type"] == EXPLAINED]
        message = reasons[0] if reasons else "Cannot parse body"
        raise ApiError(400, unparseable, message, {"parseResult": errors}) from exc
