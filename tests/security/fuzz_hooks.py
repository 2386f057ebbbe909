"""Schemathesis hooks for the fuzz run (``tests/security/test_fuzz_openapi.py``).

Loaded by ``schemathesis run`` through ``SCHEMATHESIS_HOOKS=tests.security.fuzz_hooks``, with
``CAPGO_FUZZ_SEED`` naming a JSON file written by the test (the seeded account) and
``CAPGO_FUZZ_TALLY`` the file this module writes when the run ends (per phase: requests, the
share that reached a handler, statuses, refusal codes, server errors).

Each generated request gets, from a draw that depends only on its content (so a run is
reproducible):

* a caller: the seeded account's key (8 in 10), no key (1 in 10) or a well-formed key that does
  not exist (1 in 10);
* seeded names: in a third of the requests every field naming a thing (``app_id``, ``orgId``,
  ``channel``, ``device_id``...) is replaced by the seeded one, in another third some of them,
  so that requests get past the lookups to the code behind them.

Destructive requests never aim at what the rest of the run needs: a DELETE (or a
``PUT /organization``, which may impose key policies) naming the seeded organization or app is
sent to a spare one, and ``PUT``/``DELETE /apikey/{id}`` never names the fuzzer's own key.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import random
import threading
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import schemathesis

# tus PATCH bodies are raw bytes, serialised as octet-stream bodies are.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")

UNKNOWN_KEY = "00000000-0000-4000-8000-00000000dead"
KEY_HEADERS = ("authorization", "capgkey", "x-api-key")
SUBKEY = "x-limited-key-id"

#: 400 codes refusing a request for its shape, before the handler's logic: pydantic validation,
#: unparseable bodies, the device protocol's body checks, the tus headers.
SHAPE_REFUSALS = frozenset(
    {
        "invalid_body",
        "invalid_json_parse_body",
        "invalid_json_body",
        "invalid_query_parameters",
        "missing_app_id",
        "invalid_app_id",
        "missing_device_id",
        "semver_error",
    }
)
#: Statuses that never reach a handler: no such route or method, a body too large, the tus
#: protocol's precondition and media type.
ROUTING_STATUSES = frozenset({404, 405, 412, 413, 415})
#: Codes of a key (or sub-key header) refused before any route logic.
AUTH_REFUSALS = frozenset(
    {"no_key_provided", "no_jwt_apikey_or_subkey", "invalid_apikey", "invalid_subkey"}
)

_lock = threading.Lock()
_tally: dict[str, dict[str, Any]] = {}


@functools.cache
def _seed() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(Path(os.environ["CAPGO_FUZZ_SEED"]).read_text())
    return loaded


def _draw(case: Any) -> random.Random:
    content = repr(
        (case.method, case.path, case.path_parameters, case.query, case.headers, case.body)
    )
    return random.Random(zlib.crc32(content.encode("utf-8", "replace")))


def _substitute(data: Any, chosen: dict[str, Any]) -> Any:
    if not isinstance(data, dict):
        return data
    return {name: chosen.get(name, value) for name, value in data.items()}


def _redirect(data: Any, spare: dict[str, str]) -> Any:
    """``data`` with the seeded organization, app and key swapped for the spare ones."""
    if not isinstance(data, dict):
        return data
    return {name: spare.get(str(value), value) for name, value in data.items()}


def _destructive(case: Any) -> bool:
    return case.method == "DELETE" or (case.method == "PUT" and case.path == "/organization")


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    rng = _draw(case)
    values: dict[str, Any] = _seed()["values"]
    mode = rng.choice(["generated", "seeded", "mixed"])
    chosen = {
        name: value
        for name, value in values.items()
        if mode == "seeded" or (mode == "mixed" and rng.random() < 0.5)
    }
    case.path_parameters = _substitute(case.path_parameters, chosen)
    case.query = _substitute(case.query, chosen)
    case.body = _substitute(case.body, chosen)
    headers = _substitute(dict(case.headers or {}), chosen)
    if mode != "generated" and headers.get(SUBKEY) != values[SUBKEY]:
        # A made-up sub-key id is refused before anything else (401 invalid_subkey): keep those
        # to the generated third, so that the seeded requests reach the route.
        headers.pop(SUBKEY, None)
    if _destructive(case) or case.path.startswith("/apikey/"):
        spare: dict[str, str] = _seed()["spare"]
        case.path_parameters = _redirect(case.path_parameters, spare)
        case.query = _redirect(case.query, spare)
        case.body = _redirect(case.body, spare)
    for name in KEY_HEADERS:
        headers.pop(name, None)
    caller = rng.choices(["valid key", "no key", "unknown key"], weights=[8, 1, 1])[0]
    if caller != "no key":
        headers["authorization"] = _seed()["key"] if caller == "valid key" else UNKNOWN_KEY
    case.headers = headers
    return case


def _error_code(response: Any) -> str | None:
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None
    code = body.get("error") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


def reached_handler(status: int, code: str | None) -> bool:
    """Whether an answer came from a handler's logic rather than a refusal of the request's
    shape, route or key (the definition the figures use)."""
    if status in ROUTING_STATUSES:
        return False
    if status == 400 and code in SHAPE_REFUSALS:
        return False
    return not (status == 401 and code in AUTH_REFUSALS)


def _mode(case: Any) -> str:
    try:
        return str(case.meta.generation.mode.value)
    except AttributeError:
        return "unknown"


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    phase = case.meta.phase.name.value if case.meta is not None else "unknown"
    code = _error_code(response)
    status = int(response.status_code)
    caller = (
        "no key"
        if "authorization" not in (case.headers or {})
        else "valid key"
        if case.headers["authorization"] == _seed()["key"]
        else "unknown key"
    )
    with _lock:
        entry = _tally.setdefault(
            phase,
            {
                "requests": 0,
                "reached_handler": 0,
                "server_errors": [],
                "by_caller": Counter(),
                "statuses": Counter(),
                "refusals": Counter(),
                "by_mode": Counter(),
                "reached_by_mode": Counter(),
            },
        )
        entry["requests"] += 1
        entry["by_caller"][caller] += 1
        entry["statuses"][str(status)] += 1
        if code is not None and status >= 400:
            entry["refusals"][f"{status} {code}"] += 1
        reached = reached_handler(status, code)
        if reached:
            entry["reached_handler"] += 1
        # Per generation mode: positive data (valid per the document) should mostly reach a
        # handler; negative data (deliberately invalid) should mostly be refused.
        mode = _mode(case)
        entry["by_mode"][mode] += 1
        if reached:
            entry["reached_by_mode"][mode] += 1
        if status >= 500 and len(entry["server_errors"]) < 20:
            entry["server_errors"].append(
                f"{case.method} {case.formatted_path} -> {status} {response.content[:300]!r}"
            )


@atexit.register
def _write_tally() -> None:
    path = os.environ.get("CAPGO_FUZZ_TALLY")
    if path:
        Path(path).write_text(json.dumps(_tally, indent=2, sort_keys=True))
