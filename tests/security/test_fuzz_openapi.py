"""Fuzzing: schemathesis against our own ``/openapi.json``, every operation, with and without a
valid key (issue 7).

A realistic account is seeded through the API (a user with an ``all`` key, an app, a public and
a private channel, two bundles, a device that asked for an update and is pinned to a channel, a
second key, a sub-key limited to the organization, a pending member invitation, an unfinished
upload). For each operation of the served document, schemathesis generates
``CAPGO_FUZZ_EXAMPLES`` requests (default :data:`DEFAULT_EXAMPLES`), half from the documented
schemas (positive) and half deliberately violating them (negative). Fields naming things
(``app_id``, ``orgId``, ``channel``, ``version``, ``device_id``, ``upload_id``,
``x-limited-key-id``...) are swapped for the seeded ones in a third of the requests, and some
of them in another third, so that requests get past the lookups and reach the code behind
them. Each request is sent three times: with the account's key, with no key, and with a
well-formed key that does not exist.

Every answer must pass schemathesis' ``not_a_server_error`` (no 5xx), ``status_code_conformance``
(the status is documented for the operation), ``content_type_conformance`` and
``response_schema_conformance`` (the body matches the schema documented for that status).

Generation is derandomized, so a run is reproducible. The seed is shared by the operations and
checked after each one; an operation that damaged it (deleted the app, the organization or the
key...) gets a fresh one for the next. Run it alone with::

    .venv/bin/pytest tests/security/test_fuzz_openapi.py -q
    CAPGO_FUZZ_EXAMPLES=200 .venv/bin/pytest tests/security/test_fuzz_openapi.py -q  # longer
"""

from __future__ import annotations

import base64
import os
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import requests
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.errors import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from capgo_server.app import create_app
from capgo_server.settings import Settings
from tests.conftest import Account, empty_all_tables, make_account, make_key

DEFAULT_EXAMPLES = 30
EXAMPLES = int(os.environ.get("CAPGO_FUZZ_EXAMPLES", DEFAULT_EXAMPLES))
BASE_URL = "http://capgo.test"
UNKNOWN_KEY = "00000000-0000-4000-8000-00000000dead"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
DEVICE_ID = "00000000-f022-4000-8000-000000000001"
KEY_HEADERS = {"authorization", "capgkey", "x-api-key"}
SUBKEY = "x-limited-key-id"

# tus PATCH bodies are raw bytes, sent as octet-stream bodies are.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")


def _document() -> dict[str, Any]:
    data_dir = Path(os.environ.get("TMPDIR", "/tmp")) / "capgo-fuzz-collect"
    document: dict[str, Any] = create_app(
        Settings(data_dir=data_dir, secret="collect-" + "x" * 32)
    ).openapi()
    return document


#: (method, path) of every operation, read at collection from the document the app serves.
OPERATIONS = [
    (method.upper(), path)
    for path, operations in _document()["paths"].items()
    for method in operations
]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fuzz_app(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FastAPI]:
    """One app for every operation of an engine, with the rate limits out of the way: the
    fuzzer sends far more requests from one address and one key than any limit allows (the
    limits have their own tests), and 429 for everything would hide the code behind them."""
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path_factory.mktemp("fuzz"),
        secret="fuzz-secret-" + "f" * 32,
        rate_limit_failed_auth=10**9,
        rate_limit_api_key_per_minute=10**9,
        rate_limit_device_per_minute=10**9,
        rate_limit_ip_per_minute=10**9,
        rate_limit_channel_self_same_channel_seconds=0,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application
    await empty_all_tables(database_url)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fuzz_client(fuzz_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=fuzz_app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        yield http


@dataclass
class Seed:
    """What the valid-key requests can find; ``values`` replace generated fields."""

    owner: Account
    app_id: str
    victim_key_id: int
    values: dict[str, Any]


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


async def seed_account(app: FastAPI, client: httpx.AsyncClient, n: int) -> Seed:
    owner = await make_account(app, f"owner{n}@fuzz.example", f"Fuzz Org {n}")
    member = await make_account(app, f"member{n}@fuzz.example", f"Member Org {n}")
    app_id = f"com.fuzz.app{n}"
    headers = owner.headers
    _ok(
        await client.post(
            "/app",
            json={"app_id": app_id, "name": "Fuzz", "owner_org": owner.org_id},
            headers=headers,
        )
    )
    for version in ("1.0.0", "1.1.0"):
        bundle = {
            "app_id": app_id,
            "version": version,
            "external_url": f"https://cdn.example.com/{version}.zip",
            "checksum": "a" * 64,
        }
        _ok(await client.post("/bundle", json=bundle, headers=headers))
    for name, public, version in (("production", True, "1.1.0"), ("beta", False, "1.0.0")):
        channel = {
            "app_id": app_id,
            "channel": name,
            "version": version,
            "public": public,
            "allow_device_self_set": True,
        }
        _ok(await client.post("/channel", json=channel, headers=headers))
    device = {
        "app_id": app_id,
        "device_id": DEVICE_ID,
        "platform": "android",
        "version_name": "1.0.0",
        "version_build": "1.0.0",
        "version_os": "14",
        "plugin_version": "7.0.0",
        "is_emulator": False,
        "is_prod": True,
    }
    assert _ok(await client.post("/updates", json=device))["version"] == "1.1.0"
    pin = {"app_id": app_id, "device_id": DEVICE_ID, "channel": "beta"}
    _ok(await client.post("/device", json=pin, headers=headers))
    invite = {"orgId": owner.org_id, "email": member.email, "invite_type": "read"}
    _ok(await client.post("/organization/members", json=invite, headers=headers))
    victim = await make_key(client, owner, name="victim", mode="read")
    subkey = await make_key(client, owner, name="sub-key", limited_to_orgs=[owner.org_id])
    filename = base64.b64encode(f"orgs/{owner.org_id}/apps/{app_id}/2.0.0.zip".encode()).decode()
    upload = await client.post(
        "/files/upload/attachments/",
        headers={
            **headers,
            "Tus-Resumable": "1.0.0",
            "Upload-Length": "100",
            "Upload-Metadata": f"filename {filename}",
        },
    )
    assert upload.status_code == 201, upload.text
    values = {
        "app_id": app_id,
        "appid": app_id,
        "orgId": owner.org_id,
        "org_id": owner.org_id,
        "owner_org": owner.org_id,
        "channel": "production",
        "defaultChannel": "production",
        "version": "1.0.0",
        "device_id": DEVICE_ID,
        "email": member.email,
        "key_id": str(victim["id"]),
        "platform": "android",
        "version_name": "1.0.0",
        "version_build": "1.0.0",
        "plugin_version": "7.0.0",
        "upload_id": upload.headers["location"].rsplit("/", 1)[-1],
        "Upload-Metadata": f"filename {filename}",
        SUBKEY: str(subkey["id"]),
    }
    return Seed(owner, app_id, int(victim["id"]), values)


async def seed_is_intact(client: httpx.AsyncClient, seed: Seed) -> bool:
    """Whether the previous operation left the seed as it was made."""
    headers, app_id = seed.owner.headers, seed.app_id
    checks = [
        await client.get(f"/app/{app_id}", headers=headers),
        await client.get(f"/apikey/{seed.victim_key_id}", headers=headers),
        await client.get("/bundle", params={"app_id": app_id}, headers=headers),
        await client.get("/channel", params={"app_id": app_id}, headers=headers),
        await client.get(
            "/device", params={"app_id": app_id, "device_id": DEVICE_ID}, headers=headers
        ),
        await client.get(
            "/organization/members", params={"orgId": seed.owner.org_id}, headers=headers
        ),
    ]
    if any(response.status_code != 200 for response in checks):
        return False
    bundles, channels, device, members = (response.json() for response in checks[2:])
    return (
        len(bundles) == 2
        and {c["name"] for c in channels} == {"production", "beta"}
        and device.get("channel") == "beta"
        and len(members) == 2
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def seeds(fuzz_app: FastAPI, fuzz_client: httpx.AsyncClient) -> list[Seed]:
    """The current seed is the last one; a test replaces it when it finds it damaged."""
    return [await seed_account(fuzz_app, fuzz_client, 0)]


def _substitute(data: Any, values: dict[str, Any], mask: int) -> Any:
    """``data`` with the seeded value in the fields ``mask`` selects (one bit per field)."""
    if not isinstance(data, dict):
        return data
    result = dict(data)
    for index, name in enumerate(values):
        if name in result and mask & (1 << index):
            result[name] = values[name]
    return result


_SCHEMAS: dict[int, Any] = {}


def _operation(document: dict[str, Any], method: str, path: str) -> Any:
    """The schemathesis operation; the document is loaded once per process (it is the slow
    part of a small run)."""
    key = hash(repr(document))
    if key not in _SCHEMAS:
        _SCHEMAS.clear()
        _SCHEMAS[key] = schemathesis.openapi.from_dict(document)
    return _SCHEMAS[key][path][method]


def generate(operation: Any, seed: Seed) -> list[Case]:
    """``EXAMPLES`` cases of ``operation``, positive and negative, with seeded fields mixed in.
    Deterministic: the same document and seed give the same cases."""
    cases: list[Case] = []
    bits = len(seed.values)

    @hypothesis_settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(
        case=st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        ),
        mode=st.sampled_from(["generated", "seeded", "mixed"]),
        mask=st.integers(0, (1 << bits) - 1),
    )
    def collect(case: Case, mode: str, mask: int) -> None:
        mask = {"generated": 0, "seeded": (1 << bits) - 1}.get(mode, mask)
        case.path_parameters = _substitute(case.path_parameters, seed.values, mask)
        case.query = _substitute(case.query, seed.values, mask)
        case.body = _substitute(case.body, seed.values, mask)
        case.headers = _substitute(case.headers, seed.values, mask)
        if mode != "generated" and case.headers and case.headers.get(SUBKEY) != seed.values[SUBKEY]:
            # A made-up sub-key id is refused before anything else (401 invalid_subkey): keep
            # those to the generated third, so that the seeded requests reach the route.
            case.headers.pop(SUBKEY, None)
        cases.append(case)

    collect()
    return cases


def _request(case: Case, headers: dict[str, str]) -> requests.PreparedRequest:
    """The request schemathesis would send (its serialisation, through ``requests``)."""
    kwargs = case.as_transport_kwargs(base_url=BASE_URL, headers=headers)
    return requests.Request(
        method=kwargs["method"],
        url=kwargs["url"],
        headers=kwargs.get("headers"),
        params=kwargs.get("params"),
        json=kwargs.get("json"),
        data=kwargs.get("data"),
        files=kwargs.get("files"),
        cookies=kwargs.get("cookies"),
    ).prepare()


@dataclass
class Tally:
    """Requests sent, answers seen per (caller, status), and one example of each failure."""

    requests: int = 0
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        return ", ".join(f"{c} {s}: {n}" for (c, s), n in sorted(self.statuses.items()))


async def fuzz(client: httpx.AsyncClient, operation: Any, seed: Seed) -> Tally:
    tally = Tally()
    callers = {
        "valid key": {"authorization": seed.owner.key},
        "no key": {},
        "unknown key": {"authorization": UNKNOWN_KEY},
    }
    for case in generate(operation, seed):
        for caller, headers in callers.items():
            prepared = _request(case, headers)
            sent = {
                name: value
                for name, value in prepared.headers.items()
                # The caller's key only: none generated from the documented security schemes.
                if name.lower() not in KEY_HEADERS or name.lower() in headers
            }
            response = await client.request(
                prepared.method or "GET", prepared.url or "", headers=sent, content=prepared.body
            )
            tally.requests += 1
            tally.statuses[(caller, response.status_code)] += 1
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except FailureGroup as failure:
                names = ",".join(sorted({type(e).__name__ for e in failure.exceptions}))
                tally.failures.setdefault(
                    f"{caller} {response.status_code} {names}",
                    f"{failure}\n  answer: {response.text[:500]}",
                )
    return tally


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
async def test_operation_survives_fuzzing(
    fuzz_app: FastAPI,
    fuzz_client: httpx.AsyncClient,
    seeds: list[Seed],
    method: str,
    path: str,
    record_property: Any,
) -> None:
    if not await seed_is_intact(fuzz_client, seeds[-1]):
        seeds.append(await seed_account(fuzz_app, fuzz_client, len(seeds)))
    document = (await fuzz_client.get("/openapi.json")).json()
    tally = await fuzz(fuzz_client, _operation(document, method, path), seeds[-1])
    record_property("fuzz_requests", tally.requests)
    record_property("fuzz_statuses", tally.summary())
    assert tally.requests >= 3, tally.summary()
    assert not tally.failures, "\n\n".join(
        f"[{key}] {detail}" for key, detail in tally.failures.items()
    )
