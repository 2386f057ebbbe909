"""Reading request input the way Capgo does (spec §1.1), with the House decisions applied.

Two readers:

* :func:`body_or_query` — JSON body if it parses to an object, else the query string. For GET
  the query string alone. An empty result on a non-GET request is 400 ``invalid_json_parse_body``.
* :func:`strict_json_body` — the body must be a JSON object (an empty ``{}`` is allowed).

Both lower-case ``device_id`` and refuse bodies larger than ``CAPGO_MAX_BODY_BYTES`` (413).
Query-string values stay strings here; the pydantic models coerce them (``?page=1`` is 1).
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect

from capgo_server.errors import ApiError, invalid_body
from capgo_server.integers import digits_at_most

ModelT = TypeVar("ModelT", bound=BaseModel)

INVALID_JSON = ApiError(400, "invalid_json_parse_body", "Invalid JSON body")


async def read_body(request: Request) -> bytes:
    """The raw body; 413 ``body_too_large`` past ``CAPGO_MAX_BODY_BYTES``.

    The size is checked while streaming, so a body without ``Content-Length`` cannot exhaust
    memory. The body is then cached on the request (Starlette's own cache, which ``stream()``
    and ``body()`` return), so a dependency and the handler can both read it.
    """
    limit: int = request.app.state.settings.max_body_bytes
    declared = request.headers.get("content-length", "")
    too_large = ApiError(
        413, "body_too_large", f"Request body exceeds {limit} bytes", {"max_bytes": limit}
    )
    # Digits past the limit (however many) are too large; anything else is left to the stream.
    if declared.isascii() and declared.isdigit() and digits_at_most(declared, limit) is None:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
    except ClientDisconnect:
        # Phones lose their connection mid-request all the time: an answer nobody receives,
        # not a logged server exception.
        raise ApiError(
            400, "client_disconnected", "The client closed the connection before its body ended"
        ) from None
    raw = b"".join(chunks)
    request._body = raw
    return raw


def _lower_device_id(data: dict[str, Any]) -> dict[str, Any]:
    device_id = data.get("device_id")
    if isinstance(device_id, str) and device_id:
        data["device_id"] = device_id.lower()
    return data


#: What :func:`parsed_json` returns for an empty or unparseable body.
NOT_JSON: Any = object()
#: Where :func:`parsed_json` keeps its result in the request's ASGI scope ...
_PARSED = "capgo.parsed_json"
#: ... and whether the body spells a NUL character. Parsed JSON can hold one only where the
#: body has the escape ``\\u0000`` (a raw NUL byte is not valid JSON), so without it there is
#: no need to walk the value looking for one.
_MAY_HOLD_NUL = "capgo.body_may_hold_nul"


async def parsed_json(request: Request) -> Any:
    """The body as a JSON value, or :data:`NOT_JSON`; parsed once per request.

    A device request is read twice, by its rate limit and by its handler, and both get the same
    value (the readers below only lower-case ``device_id`` in it, which is idempotent).
    """
    if _PARSED in request.scope:
        return request.scope[_PARSED]
    raw = await read_body(request)
    parsed: Any = NOT_JSON
    if raw.strip():
        try:
            parsed = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            # RecursionError: absurdly deep nesting ("[[[[...") is unparseable, not a crash.
            parsed = NOT_JSON
    request.scope[_PARSED] = parsed
    # Only a JSON escape (or UTF-8-encoded surrogates, which json.loads lets through) can put
    # NUL or a lone surrogate in a string: the scan is skipped for the usual body.
    request.scope[_MAY_HOLD_NUL] = b"\\u" in raw or b"\xed" in raw
    return parsed


async def _json_object(request: Request) -> dict[str, Any] | None:
    parsed = await parsed_json(request)
    return parsed if isinstance(parsed, dict) else None


def _reject_nul_in_body(request: Request, value: Any) -> None:
    """:func:`_reject_nul` for a value :func:`parsed_json` returned."""
    if request.scope.get(_MAY_HOLD_NUL, True):
        _reject_nul(value)


#: Characters no stored string may hold: NUL (PostgreSQL text cannot hold it) and lone UTF-16
#: surrogates (no UTF-8 encodes them: SQLite stored them as bytes no later read could decode,
#: so one device request broke its app's device list for good).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _reject_nul(value: Any) -> None:
    """400 for NUL characters and lone surrogates (:data:`_UNSTORABLE`): no field needs them."""
    if isinstance(value, str):
        found = _UNSTORABLE.search(value)
        if found is not None:
            what = "NUL characters" if found.group() == "\x00" else "unpaired surrogates"
            raise ApiError(400, "invalid_body", f"Strings must not contain {what}")
    elif isinstance(value, dict):
        for key, item in value.items():
            _reject_nul(key)
            _reject_nul(item)
    elif isinstance(value, list):
        for item in value:
            _reject_nul(item)


async def body_or_query(request: Request) -> dict[str, Any]:
    """Capgo's ``getBodyOrQuery``: see the module docstring."""
    if request.method == "GET":
        data: dict[str, Any] | None = dict(request.query_params)
    else:
        data = await _json_object(request)
        if data is None:
            data = dict(request.query_params)
        if not data:
            raise INVALID_JSON
    assert data is not None
    _reject_nul(data)
    return _lower_device_id(data)


async def json_body(request: Request) -> Any:
    """Any JSON value (``POST /stats`` takes an object or an array of them), else 400
    ``invalid_json_parse_body``; NUL characters refused, ``device_id`` lower-cased in objects
    and in arrays of objects."""
    value = await parsed_json(request)
    if value is NOT_JSON:
        raise INVALID_JSON
    _reject_nul_in_body(request, value)
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, dict):
            _lower_device_id(item)
    return value


async def strict_json_body(request: Request) -> dict[str, Any]:
    """Capgo's ``parseBody``: a JSON object or 400 ``invalid_json_parse_body``."""
    data = await _json_object(request)
    if data is None:
        raise INVALID_JSON
    _reject_nul_in_body(request, data)
    return _lower_device_id(data)


def validate(model: type[ModelT], data: dict[str, Any]) -> ModelT:
    """Validate ``data`` against ``model``; a mismatch is 400 ``invalid_body``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_body(
            [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        ) from exc


def documented_body(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """``openapi_extra`` describing a JSON body that a handler reads itself.

    Handlers read bodies through :func:`body_or_query` / :func:`strict_json_body` (Capgo's
    semantics), so FastAPI cannot infer the body; this keeps ``/openapi.json`` accurate.
    """
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


def documented_query(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """``openapi_extra`` listing ``model``'s fields as query parameters, for handlers that read
    the query string themselves (:func:`body_or_query` on GET). ``required=False`` marks every
    parameter optional (a route that takes the same fields from its body or its query)."""
    schema = model.model_json_schema(by_alias=True)
    needed = set(schema.get("required", [])) if required else set()
    return {
        "parameters": [
            {"name": name, "in": "query", "required": name in needed, "schema": field}
            for name, field in schema["properties"].items()
        ]
    }


def documented_body_or_query(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` of a non-GET :func:`body_or_query` route: a JSON body, or the same
    fields in the query string when there is none."""
    body = documented_body(model, required=False)
    return body | documented_query(model, required=False)
