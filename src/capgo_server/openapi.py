"""What ``/openapi.json`` says about failures, in one place.

Every router documents its refusals with :func:`error_responses` (the public API's envelope,
``{"error", "message", "moreInfo"}``) and the device routes theirs with :func:`device_responses`
(HTTP 200 ``{"error", "message", ...}`` refusals next to the answer). :func:`install_openapi`
removes FastAPI's automatic 422 ``HTTPValidationError`` (this server never answers 422, a request
that does not validate is 400 ``invalid_body``, :mod:`capgo_server.errors`) and declares the API
key on every operation that may refuse it.

The fuzz test (``tests/security/test_fuzz_openapi.py``) holds every answer to this document.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field

from capgo_server.summaries import apply_summaries

Responses = dict[int | str, dict[str, Any]]


class ErrorBody(BaseModel):
    """A refusal of the public API (spec §1.2)."""

    error: str = Field(description="Stable machine-readable code, e.g. `invalid_apikey`")
    message: str = Field(description="Human-readable explanation")
    moreInfo: dict[str, Any] = Field(
        default_factory=dict, description="Details: the offending input, limits, ids"
    )


class DeviceRefusal(BaseModel):
    """A device endpoint's refusal (spec §1.2 ``simpleError``): extra fields such as ``kind``,
    ``app_id`` or ``channel`` sit at the top level."""

    model_config = ConfigDict(extra="allow")

    error: str
    message: str


ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "The input is missing or malformed (`invalid_body`, `invalid_json_parse_body`, or the "
    "route's own code), or names an organization or app the key cannot access",
    401: "No key (`no_key_provided`, `no_jwt_apikey_or_subkey`), an unknown or expired key "
    "(`invalid_apikey`), a key whose mode or limits do not allow this, or an organization "
    "policy the key does not meet",
    403: "The caller's role does not allow this, or the download URL is forged or expired",
    404: "No such resource (or one the key cannot see: foreign and missing look alike)",
    409: "The resource is in a state that forbids this (an upload already complete or moved on)",
    412: "`Tus-Resumable` is missing or not 1.0.0",
    413: "`body_too_large` (over `CAPGO_MAX_BODY_BYTES`), or an upload over "
    "`CAPGO_MAX_UPLOAD_BYTES`",
    415: "A tus PATCH without `Content-Type: application/offset+octet-stream`",
    416: "The requested byte range is outside the file",
    429: "`too_many_requests`: a rate limit (failed authentications per address, requests per key "
    "or per device); `Retry-After` says when to try again",
}

_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "string"},
    }
}


def error_responses(*statuses: int, descriptions: dict[int, str] | None = None) -> Responses:
    """The ``responses=`` entry of a router or route refusing with these statuses (with the
    route's own wording where ``descriptions`` has one)."""
    responses: Responses = {}
    for status in statuses:
        text = (descriptions or {}).get(status, ERROR_DESCRIPTIONS[status])
        entry: dict[str, Any] = {"model": ErrorBody, "description": text}
        if status == 429:
            entry["headers"] = _RETRY_AFTER
        responses[status] = entry
    return responses


#: What every key-authenticated route may answer besides its success.
API_ERRORS = error_responses(400, 401, 413, 429)


def device_responses(answer: Any, description: str) -> Responses:
    """``responses=`` of a device route: ``answer`` or a :class:`DeviceRefusal` with HTTP 200,
    400 for a body the protocol cannot read, 413, and 429 for rate limits and for an app this
    server does not know (``on_premise_app``, so the plugin backs off)."""
    return {
        200: {"model": answer | DeviceRefusal, "description": description},
        400: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[400]},
        413: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[413]},
        429: {
            "model": DeviceRefusal,
            "description": "`too_many_requests` (rate limits, with `Retry-After`) or "
            "`on_premise_app` (an app this server does not know)",
        },
    }


#: How a key is presented (``auth.principal``): raw in ``authorization`` (``Bearer`` accepted),
#: or in ``capgkey`` or ``x-api-key``.
SECURITY_SCHEMES = {
    "authorization": {"type": "apiKey", "in": "header", "name": "authorization"},
    "capgkey": {"type": "apiKey", "in": "header", "name": "capgkey"},
    "x-api-key": {"type": "apiKey", "in": "header", "name": "x-api-key"},
}

#: A sub-key narrowing the calling key (``auth.principal``): the id of another key of the same
#: user, limited to organizations or apps.
SUBKEY_HEADER = {
    "name": "x-limited-key-id",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
    "description": "Id of a sub-key (a key of the same user limited to orgs or apps) that "
    "narrows what this request may reach",
}


#: Any route reading the database may answer this when no connection is free in time
#: (``errors.service_unavailable``); ``/ok`` reads nothing.
_OVERLOADED_TEXT = (
    "`service_unavailable`: no database connection came free within "
    "`CAPGO_DB_POOL_TIMEOUT_SECONDS` (an overload); `Retry-After` says when to try again"
)
OVERLOADED: dict[str, Any] = {
    "description": _OVERLOADED_TEXT,
    "headers": _RETRY_AFTER,
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
}


def _finish(document: dict[str, Any]) -> dict[str, Any]:
    """Summarise every operation for people; drop the 422 answers; document the overload
    answer (503); declare the key, and the sub-key header, on every operation that can refuse
    one (401)."""
    apply_summaries(document)
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            responses = operation.get("responses", {})
            responses.pop("422", None)
            if path != "/ok" and "503" in responses:  # a route's own 503 (charts_busy)
                responses["503"]["description"] += "; or " + _OVERLOADED_TEXT
            elif path != "/ok":
                responses["503"] = OVERLOADED
            if "401" in responses:
                operation["security"] = [{name: []} for name in SECURITY_SCHEMES]
                operation.setdefault("parameters", []).append(SUBKEY_HEADER)
    components = document.setdefault("components", {})
    schemas = components.get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    components["securitySchemes"] = SECURITY_SCHEMES
    return document


def install_openapi(app: FastAPI) -> None:
    """Serve the document without FastAPI's 422 answers, with the key declared and a summary
    for people on every operation (built once, then cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = _finish(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
