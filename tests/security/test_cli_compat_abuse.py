"""The official CLI's compatibility routes under abusive input (issue #16): deeply nested and
unstorable JSON, query strings past every bound, other methods, the failed-authentication block
and the per-key limit on the ``capgkey`` routes, and concurrent writes of one version.

Tenant isolation of these routes is in ``test_cli_compat_attacks.py``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from capgo_server.models import Bundle, BundleDraft
from tests.apps.helpers import add_bundle, create_app, rows
from tests.cli_compat.table_data import post_channel, sb
from tests.conftest import Account, MonotonicClock, make_account
from tests.files.support import Tus, sha256, web_bundle
from tests.security.support import configured_app

APP = "com.alice.abused"
UPSERT = "/rest/v1/app_versions?on_conflict=name,app_id&app_id=eq.{app}&name=eq.{ver}"
MERGE = {"prefer": "resolution=merge-duplicates"}
JSON = {"content-type": "application/json"}


def api(key: str) -> dict[str, str]:
    return {"authorization": key, "capgkey": key, **JSON}


def declaration(owner: Account, version: str, **changes: Any) -> dict[str, Any]:
    return {
        "name": version,
        "app_id": APP,
        "storage_provider": "r2-direct",
        "native_packages": [],
        "owner_org": owner.org_id,
        "user_id": owner.user_id,
        "checksum": "0" * 64,
        **changes,
    }


def code_of(response: httpx.Response) -> tuple[int, Any]:
    """(status, code): ``code`` in PostgREST's shape, ``error`` in the API's."""
    body = response.json() if response.content else None
    if isinstance(body, dict) and ("code" in body or "error" in body):
        return response.status_code, body.get("code", body.get("error"))
    return response.status_code, body


@pytest.fixture
async def served(app: FastAPI, client: httpx.AsyncClient, alice: Account) -> int:
    """Alice's app, its bundle 1.0.0 served by channel prod."""
    await create_app(client, alice, APP)
    bundle_id = await add_bundle(app, APP, "1.0.0")
    await post_channel(client, alice, APP, "prod", version="1.0.0")
    return bundle_id


# --- nesting --------------------------------------------------------------------------------


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(("depth", "status"), [(3, 201), (4, 400), (500, 400)])
async def test_a_declaration_nests_at_most_six_levels(
    app: FastAPI, client: httpx.AsyncClient, alice: Account, served: int, depth: int, status: int
) -> None:
    """``native_packages`` holds flat objects. Walking a body nested some 450 levels deep
    recursed past Python's stack: a 500 for any key of any mode."""
    body = json.dumps(declaration(alice, "1.0.1", native_packages="PACKAGES"))
    raw = body.replace('"PACKAGES"', '[{"x": ' + nested(depth) + "}]")
    response = await client.post(
        UPSERT.format(app=APP, ver="1.0.1"), content=raw, headers={**sb(alice.key), **MERGE, **JSON}
    )
    if status == 201:
        assert (response.status_code, response.content) == (201, b"")
        return
    assert (response.status_code, response.json()) == (
        400,
        {
            "code": "invalid_body",
            "message": "Values must not nest deeper than 6 levels",
            "details": None,
            "hint": None,
        },
    )
    assert await rows(app, BundleDraft) == []


def deep_requests(alice: Account, deep: str) -> list[tuple[str, str, str, dict[str, str]]]:
    """A deeply nested value where each route reads one (method, url, raw body, headers)."""
    sb_json = {**sb(alice.key), **JSON}
    declared = json.dumps(declaration(alice, "1.0.1", native_packages="DEEP"))
    return [
        ("POST", UPSERT.format(app=APP, ver="1.0.1"), declared, {**sb_json, **MERGE}),
        (
            "PATCH",
            f"/rest/v1/channels?app_id=eq.{APP}&name=eq.prod&select=*",
            '{"version": "DEEP"}',
            {**sb(alice.key, single=True, prefer="return=representation"), **JSON},
        ),
        (
            "PATCH",
            f"/rest/v1/app_versions?name=eq.1.0.0&app_id=eq.{APP}",
            '{"r2_path": "DEEP"}',
            sb_json,
        ),
        (
            "PATCH",
            f"/rest/v1/app_versions?app_id=eq.{APP}&deleted=eq.false&name=eq.1.0.0",
            '{"deleted": "DEEP"}',
            sb_json,
        ),
        ("POST", "/rest/v1/rpc/cli_check_permission", '{"permission_key": "DEEP"}', sb_json),
        (
            "POST",
            "/rest/v1/rpc/is_allowed_action_org_action",
            json.dumps({"orgid": alice.org_id, "actions": "DEEP"}),
            sb_json,
        ),
        (
            "POST",
            "/private/finalize_bundle_upload",
            f'{{"app_id": "{APP}", "name": "DEEP"}}',
            api(alice.key),
        ),
        (
            "DELETE",
            "/private/delete_failed_version",
            f'{{"app_id": "{APP}", "name": "DEEP"}}',
            api(alice.key),
        ),
        ("POST", "/private/events", '{"event": "DEEP"}', JSON),
        ("POST", "/app", '{"app_id": "DEEP"}', api(alice.key)),
        (
            "POST",
            "/channel",
            f'{{"app_id": "{APP}", "channel": "prod", "version": "DEEP"}}',
            api(alice.key),
        ),
        (
            "DELETE",
            "/channel",
            f'{{"app_id": "{APP}", "channel": "prod", "delete_bundle": "DEEP"}}',
            api(alice.key),
        ),
    ]


#: What each of ``deep_requests`` answers to a value nested 600 levels deep (it parses); nested
#: 5,000 deep the body is no JSON at all.
DEEP_ANSWERS = [
    (400, "invalid_body"),
    (400, "22P02"),
    (403, "42501"),
    (400, "PGRST100"),
    (400, "22P02"),
    (400, "22P02"),
    (400, "missing_name"),
    (400, "missing_name"),
    (200, {"status": "ok"}),
    (400, "invalid_body"),
    (400, "invalid_body"),
    (400, "invalid_body"),
]
NOT_JSON = [
    *[(400, "PGRST102")] * 6,
    *[(400, "invalid_json_parse_body")] * 2,
    (200, {"status": "ok"}),
    *[(400, "invalid_json_parse_body")] * 3,
]


async def test_deeply_nested_values_are_refused_on_every_route(
    client: httpx.AsyncClient, alice: Account, served: int
) -> None:
    failures = []
    for depth, answers in ((600, DEEP_ANSWERS), (5000, NOT_JSON)):
        for (method, url, body, headers), expected in zip(
            deep_requests(alice, nested(depth)), answers, strict=True
        ):
            raw = body.replace('"DEEP"', nested(depth))
            got = code_of(await client.request(method, url, content=raw, headers=headers))
            if got != expected:
                failures.append(f"{method} {url} nested {depth}: {got}, expected {expected}")
    assert not failures, "\n".join(failures)
    channel = await client.get("/channel", params={"app_id": APP}, headers=alice.headers)
    assert [c["name"] for c in channel.json()] == ["prod"]


@pytest.mark.parametrize("bad", ["nul\x00", "lone\ud800"])
async def test_unstorable_strings_are_refused(
    app: FastAPI, client: httpx.AsyncClient, alice: Account, served: int, bad: str
) -> None:
    """NUL (PostgreSQL text cannot hold it) and lone surrogates (no UTF-8 encodes them) in a
    value the route stores or looks up: refused, nothing written."""
    encoded = json.dumps(bad)  # "\\u0000" / "\\ud800" escapes, as a client would send them
    sb_json = {**sb(alice.key), **JSON}
    declared = json.dumps(declaration(alice, "1.0.1", comment="BAD"))
    calls = [
        (
            "POST",
            UPSERT.format(app=APP, ver="1.0.1"),
            declared,
            {**sb_json, **MERGE},
            "invalid_body",
        ),
        (
            "POST",
            "/rest/v1/rpc/exist_app_versions",
            f'{{"appid": "{APP}", "name_version": "BAD"}}',
            sb_json,
            "22P05",
        ),
        (
            "POST",
            "/rest/v1/rpc/cli_check_permission",
            '{"permission_key": "BAD"}',
            sb_json,
            "22P05",
        ),
        (
            "POST",
            "/private/finalize_bundle_upload",
            f'{{"app_id": "{APP}", "name": "BAD"}}',
            api(alice.key),
            "invalid_body",
        ),
        (
            "DELETE",
            "/private/delete_failed_version",
            f'{{"app_id": "{APP}", "name": "BAD"}}',
            api(alice.key),
            "invalid_body",
        ),
    ]
    for method, url, body, headers, code in calls:
        raw = body.replace('"BAD"', encoded)
        response = await client.request(method, url, content=raw, headers=headers)
        assert code_of(response) == (400, code), (url, response.text)
    t7 = await client.patch(
        f"/rest/v1/channels?app_id=eq.{APP}&name=eq.prod&select=*",
        content=f'{{"name": {encoded}, "version": {served}}}',
        headers={**sb(alice.key, single=True, prefer="return=representation"), **JSON},
    )
    assert code_of(t7) == (403, "42501")  # not the channel's own name: nothing written
    in_query = await client.get(
        f"/rest/v1/channels?select=*&app_id=eq.{APP}&name=eq.{bad[:-1]}%00",
        headers=sb(alice.key, single=True),
    )
    assert code_of(in_query) == (400, "PGRST100")
    assert await rows(app, BundleDraft) == []


# --- query strings and methods ----------------------------------------------------------------

T8 = f"/rest/v1/channels?select=id,name,version,rollout_version&app_id=eq.{APP}"
T10 = (
    f"/rest/v1/channels?select=id&app_id=eq.{APP}&name=neq.x"
    "&or=(version.eq.1,rollout_version.eq.1)&limit={limit}"
)
T14 = f"/rest/v1/app_versions?app_id=eq.{APP}&name=in.({{names}})"
UNSUPPORTED = (
    "unsupported query ({}); this server supports @capgo/cli 8.35 and later: npx @capgo/cli@latest"
)


@pytest.mark.parametrize(
    ("method", "url", "why"),
    [
        # 5,000 parameters (a real server's request line stops far fewer: h11 takes 16 KiB)
        ("GET", T8 + "&" + "&".join(f"p{i}=eq.1" for i in range(5000)), "more than 16 filters"),
        ("GET", T8 + "&app_id=eq.com.bob.app", "parameter app_id given twice"),
        ("GET", T8 + "&select=id", "parameter select given twice"),
        (
            "GET",
            T10.format(limit="99999999999999999999"),
            "limit must be an integer from 0 to 1000",
        ),
        ("GET", T10.format(limit="-1"), "limit must be an integer from 0 to 1000"),
        (
            "PATCH",
            T14.format(names=",".join(str(i) for i in range(3000))),
            "a value is longer than 1024 characters",
        ),
        (
            "PATCH",
            T14.format(names=",".join("1" for _ in range(101))),
            "an in list has more than 100 values",
        ),
        ("GET", T8 + "&order=id.desc", "parameter order not supported"),
        ("GET", T8 + "&name=like.*", "unsupported operator on name (only eq, in, neq)"),
    ],
)
async def test_query_strings_past_the_bounds_are_unsupported(
    client: httpx.AsyncClient, alice: Account, served: int, method: str, url: str, why: str
) -> None:
    response = await client.request(method, url, json={"deleted": False}, headers=sb(alice.key))
    assert (response.status_code, response.json()) == (
        400,
        {"code": "PGRST100", "message": UNSUPPORTED.format(why), "details": None, "hint": None},
    )


@pytest.mark.parametrize("method", ["HEAD", "PUT", "DELETE", "OPTIONS"])
async def test_other_methods_are_not_allowed(
    client: httpx.AsyncClient, alice: Account, served: int, method: str
) -> None:
    for url in (T8, "/rest/v1/rpc/get_orgs_v7", "/functions/v1/app/" + APP):
        response = await client.request(method, url, headers=sb(alice.key))
        assert response.status_code == 405, (url, response.text)
        if method != "HEAD":
            assert response.json()["error"] == "method_not_allowed"
    listed = await client.get("/channel", params={"app_id": APP}, headers=alice.headers)
    assert [c["name"] for c in listed.json()] == ["prod"]


# --- the limits of the public API apply ---------------------------------------------------


async def test_bodies_past_the_limit_are_413_on_every_route(
    app: FastAPI, database_url: str, tmp_path: Path
) -> None:
    """``CAPGO_MAX_BODY_BYTES`` bounds every CLI route's JSON, declared or streamed;
    ``/private/events``, which only drops its body, has its own 64 KiB."""
    async with configured_app(database_url, tmp_path / "limits", max_body_bytes=2048) as (
        application,
        http,
    ):
        owner = await make_account(application, "hal@example.com", "Hal Org")
        padding = "x" * 3000
        body = json.dumps({"app_id": APP, "name": "1.0.0", "comment": padding}).encode()
        for method, url, headers in [
            ("POST", UPSERT.format(app=APP, ver="1.0.0"), {**sb(owner.key), **MERGE}),
            ("PATCH", f"/rest/v1/app_versions?name=eq.1.0.0&app_id=eq.{APP}", sb(owner.key)),
            ("POST", "/rest/v1/rpc/get_orgs_v7", sb(owner.key)),
            ("POST", "/private/finalize_bundle_upload", api(owner.key)),
            ("DELETE", "/private/delete_failed_version", api(owner.key)),
            ("POST", "/app", api(owner.key)),
            ("DELETE", "/channel", api(owner.key)),
        ]:
            declared = await http.request(method, url, content=body, headers={**headers, **JSON})
            assert code_of(declared) == (413, "body_too_large"), (url, declared.text)

            async def streamed() -> Any:
                yield body

            chunked = await http.request(method, url, content=streamed(), headers=headers)
            assert code_of(chunked) == (413, "body_too_large"), (url, chunked.text)
        events = await http.post("/private/events", content=b"{" + b" " * 70_000 + b"}")
        assert code_of(events) == (413, "body_too_large")


async def test_failed_authentications_block_the_capgkey_routes_too(
    app: FastAPI, database_url: str, tmp_path: Path, limiter_clock: MonotonicClock
) -> None:
    """A wrong ``capgkey``, or none beside the public anon value, counts as a failed
    authentication; once blocked, the right key is refused too, on every CLI route."""
    async with configured_app(database_url, tmp_path / "limits", rate_limit_failed_auth=2) as (
        application,
        http,
    ):
        owner = await make_account(application, "fay@example.com", "Fay Org")
        wrong = await http.post("/rest/v1/rpc/get_orgs_v7", headers=sb(str(uuid.uuid4())))
        assert code_of(wrong) == (401, "invalid_apikey")
        anon_only = await http.get(
            "/functions/v1/app/com.fay.app", headers={"authorization": "Bearer capgo-server-anon"}
        )
        assert code_of(anon_only) == (401, "no_key_provided")
        for method, url in [
            ("POST", "/rest/v1/rpc/get_orgs_v7"),
            ("GET", f"/rest/v1/apps?select=default_upload_channel&app_id=eq.{APP}"),
            ("GET", "/functions/v1/app/com.fay.app"),
            ("POST", "/private/finalize_bundle_upload"),
        ]:
            blocked = await http.request(method, url, headers=api(owner.key), json={})
            assert code_of(blocked) == (429, "too_many_requests"), url
            assert int(blocked.headers["retry-after"]) > 0


async def test_the_per_key_limit_applies(
    app: FastAPI, database_url: str, tmp_path: Path, limiter_clock: MonotonicClock
) -> None:
    async with configured_app(
        database_url, tmp_path / "limits", rate_limit_api_key_per_minute=3
    ) as (application, http):
        owner = await make_account(application, "gus@example.com", "Gus Org")
        for _ in range(3):
            allowed = await http.post(
                "/rest/v1/rpc/request_actor_user_id", json={}, headers=sb(owner.key)
            )
            assert (allowed.status_code, allowed.json()) == (200, owner.user_id)
        limited = await http.post(
            "/rest/v1/rpc/request_actor_user_id", json={}, headers=sb(owner.key)
        )
        assert code_of(limited) == (429, "too_many_requests")
        assert limited.headers["retry-after"]


# --- one version written concurrently ---------------------------------------------------------


async def test_concurrent_declarations_and_the_upload_make_one_bundle(
    app: FastAPI, client: httpx.AsyncClient, alice: Account, served: int
) -> None:
    """Upserts of one version race each other, then the tus upload's last bytes: no 500, one
    draft, then exactly one bundle, which finalize accepts; no draft outlives it."""
    data = web_bundle()
    body = declaration(alice, "1.0.1", checksum=sha256(data))

    async def declare() -> httpx.Response:
        return await client.post(
            UPSERT.format(app=APP, ver="1.0.1"), json=body, headers={**sb(alice.key), **MERGE}
        )

    first = await asyncio.gather(*(declare() for _ in range(4)))
    assert [r.status_code for r in first] == [201] * 4
    assert [(d.app_id, d.name) for d in await rows(app, BundleDraft)] == [(APP, "1.0.1")]

    tus = Tus(client, {"authorization": alice.key})
    url = await tus.start(f"orgs/{alice.org_id}/apps/{APP}/1.0.1.zip", len(data))
    assert (await tus.patch(url, 0, data[:-10])).status_code == 204
    last, *racing = await asyncio.gather(
        tus.patch(url, len(data) - 10, data[-10:]), declare(), declare()
    )
    assert last.status_code == 204, last.text
    for response in racing:  # before the bundle exists, or after: never a 500
        assert response.status_code in (201, 409), response.text
    assert [b.name for b in await rows(app, Bundle, app_id=APP, name="1.0.1")] == ["1.0.1"]
    done = await client.post(
        "/private/finalize_bundle_upload",
        json={"app_id": APP, "name": "1.0.1"},
        headers=api(alice.key),
    )
    assert (done.status_code, done.json()) == (200, {"status": "ok"})
    assert await rows(app, BundleDraft) == []
    again = await declare()
    assert code_of(again) == (409, "23505")
