"""Tenant isolation matrix (issue 7): every public route x every kind of key x every target.

Two tenants, ``alfa`` and ``bravo``, are built alike: a user owning two organizations (``org``
and ``org2``), one app in each (``com.<tag>.one`` in ``org``, ``com.<tag>.two`` in ``org2``),
each app with an external bundle, a stored bundle (a file), a private channel, a device pinned
to it and a pending tus upload; and the user's keys of every kind (``KINDS``). The tenants and
what a case is are in ``isolation_tenants.py``.

Each route is then called by each kind of key of one tenant against three targets:

* ``own``: the tenant's first org / app (everything a key of the tenant may reach);
* ``sibling``: the tenant's *other* org / app (outside what org- and app-limited keys allow);
* ``foreign``: the other tenant's org / app (never reachable).

Routes that take several references are also called on the tenant's own app with one
reference of the other tenant (its bundle id or name, channel id or name, device id, org in a
file path): ``cross_*`` profiles, one column, refused with the "not found" of the route.

Routes that destroy their target (``DELETE``) act on a fresh resource the owner makes just
before the call when the target is the tenant's own, and on the other tenant's live resource
otherwise (so a wrong success shows both in the answer and in the snapshot check below).

The official CLI's routes (issue #16, outside the OpenAPI document) are rows too: their key
goes in ``capgkey`` (``Route.keys_in``) and their PostgREST refusals carry the code in ``code``
(a refused read is "no rows", which the object ``Accept`` of T1 and T6 makes a 406). Their RPCs
answer ``false``/``null`` either way, which a symbol cannot tell apart: those, and the rest of
their requests, are in ``test_cli_compat_attacks.py``.

Expected answers are data, in ``isolation_routes.py``: ``PROFILES`` is the table key kind x
target -> symbol, and ``ROUTES`` names each route's request (built by ``isolation_requests.py``),
profile and what its symbols mean. Symbols:

* ``+`` the call succeeds (the route's ``ok`` status);
* ``D`` the route's own refusal (``denied``: the same answer for unknown and foreign targets);
* ``M`` 401 ``invalid_apikey`` (the key's mode is not accepted by the route);
* ``S`` 401 ``invalid_subkey`` (a sub-key of a mode the route refuses);
* ``L``, ``N`` route-specific answers given in the row (``codes``);
* ``-`` no such case (e.g. "sibling" of an API key).

On top of its status and code, every answer (body and headers) is searched for every
identifier of the other tenant — org ids and names, app ids, uuids and names, bundle and
channel names, device ids, upload ids, key values, e-mail, stored bytes — except those the
request itself carried (an error may echo what it was asked). A key made of the other
tenant's sub-key (``x-limited-key-id``) is refused with 401 ``invalid_subkey`` on every route
and target (``sub_foreign``). Answers to org- and app-limited keys must not mention what the
limit excludes either (the second app; for org-limited keys also the second org). Finally the
other tenant's data, as its owner reads it, must be exactly the same before and after a
tenant's whole run.

Failures are collected, not raised one by one, and reported together with the route, the key
kind and the target. The number of cases is checked against ``EXPECTED_CASES``.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest_asyncio
from fastapi import FastAPI

from capgo_server.app import create_app
from capgo_server.settings import Settings
from tests.conftest import Account, make_account, make_key
from tests.security.isolation_requests import APP_LIMITED, ORG_LIMITED, today
from tests.security.isolation_routes import FOREIGN_SUBKEY, PROFILES, ROUTES, planned_cases
from tests.security.isolation_tenants import CAROL, Case, Req, Tenant, build_tenant, snapshot

HUGE = 10**9


#: Cases per tenant run; the test runs both tenants (twice this) on each engine.
EXPECTED_CASES = 1548


def test_the_matrix_is_complete() -> None:
    """Every route has a row for every kind of key and the count is the documented one."""
    assert len({route.name for route in ROUTES}) == len(ROUTES)
    cases = planned_cases()
    assert len(cases) == EXPECTED_CASES, len(cases)
    for route in ROUTES:
        for symbol in "".join(PROFILES[route.profile]):
            if symbol not in "+-":
                route.expected(symbol)  # every symbol has a meaning in its row


# --- the run -----------------------------------------------------------------------------


def beyond_limits(me: Tenant, kind: str) -> set[str]:
    """Identifiers of the tenant's own data that a limited key must never be shown: the second
    app for app-limited keys; the second org and its app for org-limited keys."""
    second = me.apps[1]
    app_tokens = {second.app_id, second.uuid, second.name, second.channel, second.device}
    app_tokens.add(second.upload_id)
    if kind in APP_LIMITED:
        return app_tokens
    if kind in ORG_LIMITED:
        return app_tokens | {me.org2, f"{me.tag.title()} Second Org"}
    return set()


def leaked(text: str, secrets: set[str], request: Req) -> list[str]:
    asked = request.text()
    return sorted(token for token in secrets if token in text and token not in asked)


async def run_tenant(
    http: httpx.AsyncClient, application: FastAPI, me: Tenant, other: Tenant
) -> tuple[int, list[str]]:
    failures: list[str] = []
    counter = itertools.count(1)
    count = 0
    for route, kind, target, symbol in planned_cases():
        case = Case(http, application, me, other, kind, target, lambda: next(counter))
        request = await route.build(case)
        if kind == FOREIGN_SUBKEY:
            headers = {**me.owner, "x-limited-key-id": str(other.keys["sub_org"]["id"])}
        else:
            headers = me.headers[kind]
        response = await http.request(
            request.method,
            request.url,
            params=request.params,
            json=request.json,
            headers={**route.key_headers(headers), **request.headers},
        )
        count += 1
        label = f"{me.tag}: {route.name} [{kind} -> {target}]"
        status, code = route.expected(symbol)
        got_code = None
        if response.headers.get("content-type", "").startswith("application/json"):
            body = response.json()
            # ``code``: the PostgREST shape of the official CLI's routes.
            got_code = body.get("error", body.get("code")) if isinstance(body, dict) else None
        if response.status_code != status or (code is not None and got_code != code):
            failures.append(
                f"{label}: expected {status} {code or ''}, got {response.status_code} "
                f"{response.text[:200]}"
            )
            continue
        answer = response.text + " " + " ".join(response.headers.values())
        if found := leaked(answer, other.secrets, request):
            failures.append(f"{label}: answer mentions the other tenant's {found}")
        if found := leaked(answer, beyond_limits(me, kind), request):
            failures.append(f"{label}: answer mentions what the key is limited away from: {found}")
        if symbol == "+" and route.check is not None and (problem := route.check(case, response)):
            failures.append(f"{label}: {problem}")
    return count, failures


@pytest_asyncio.fixture(loop_scope="session")
async def matrix_app(app: FastAPI, database_url: str, tmp_path: Path) -> AsyncIterator[FastAPI]:
    """An app whose rate limits stay out of the way (refusals count as failed authentications).

    Depends on ``app`` so the shared database is emptied afterwards.
    """
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path / "matrix",
        secret="matrix-secret-" + "m" * 32,
        rate_limit_failed_auth=HUGE,
        rate_limit_api_key_per_minute=HUGE,
        rate_limit_device_per_minute=HUGE,
        rate_limit_ip_per_minute=HUGE,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


async def test_tenant_isolation_matrix(matrix_app: FastAPI, database_url: str) -> None:
    started = time.monotonic()
    transport = httpx.ASGITransport(app=matrix_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://capgo.test") as http:
        await make_account(matrix_app, CAROL, "Carol Org")
        alfa = await build_tenant(http, matrix_app, "alfa")
        bravo = await build_tenant(http, matrix_app, "bravo")
        # The stored bytes show in the owner's statistics (so check_storage can fail).
        for tenant in (alfa, bravo):
            response = await http.get(
                "/statistics/user", params={"from": today(), "to": today()}, headers=tenant.owner
            )
            assert [p["storage"] for p in response.json()] == [tenant.storage_total]
        assert not alfa.secrets & bravo.secrets
        assert not any(a in b or b in a for a in alfa.secrets for b in bravo.secrets)

        failures: list[str] = []
        total = 0
        for me, other in ((alfa, bravo), (bravo, alfa)):
            before = await snapshot(http, other)
            count, found = await run_tenant(http, matrix_app, me, other)
            total += count
            failures += found
            after = await snapshot(http, other)
            for label in before:
                if before[label] != after[label]:
                    failures.append(
                        f"{me.tag}'s run changed {other.tag}'s {label}: "
                        f"{before[label]!r} -> {after[label]!r}"
                    )
    assert total == 2 * EXPECTED_CASES
    engine = database_url.split(":", 1)[0]
    elapsed = time.monotonic() - started
    summary = f"{len(failures)} of {total} cases failed on {engine} ({elapsed:.1f}s)"
    assert not failures, summary + ":\n" + "\n".join(failures)


async def test_keys_limited_to_apps_do_not_manage_memberships(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    """Accepting an invitation and leaving an org are org-wide acts: a key limited to apps (or
    such a sub-key) may do neither, not even for its own user; an unlimited key may."""
    await client.post(
        "/app",
        json={"app_id": "com.alice.ci", "name": "CI", "owner_org": alice.org_id},
        headers=alice.headers,
    )
    app_key = await make_key(client, alice, name="ci", limited_to_apps=["com.alice.ci"])
    sub = await make_key(client, alice, name="ci sub", limited_to_apps=["com.alice.ci"])
    limited = [
        {"authorization": app_key["key"]},
        {**alice.headers, "x-limited-key-id": str(sub["id"])},
    ]
    invited = await client.post(
        "/organization/members",
        json={"orgId": bob.org_id, "email": alice.email, "invite_type": "read"},
        headers=bob.headers,
    )
    assert invited.status_code == 200, invited.text
    for headers in limited:
        refused = await client.post(
            "/organization/members/accept", json={"orgId": bob.org_id}, headers=headers
        )
        assert refused.status_code == 400
        assert refused.json()["error"] == "cannot_access_organization"
    accepted = await client.post(
        "/organization/members/accept", json={"orgId": bob.org_id}, headers=alice.headers
    )
    assert accepted.status_code == 200, accepted.text
    leave = {"orgId": bob.org_id, "email": alice.email}
    for headers in limited:
        refused = await client.delete("/organization/members", params=leave, headers=headers)
        assert refused.status_code == 400
        assert refused.json()["error"] == "cannot_access_organization"
    members = await client.get(
        "/organization/members", params={"orgId": bob.org_id}, headers=bob.headers
    )
    assert alice.email in {member["email"] for member in members.json()}
    left = await client.delete("/organization/members", params=leave, headers=alice.headers)
    assert left.status_code == 200, left.text
