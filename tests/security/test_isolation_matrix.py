"""Tenant isolation matrix (issue 7): every public route x every kind of key x every target.

Two tenants, ``alfa`` and ``bravo``, are built alike: a user owning two organizations (``org``
and ``org2``), one app in each (``com.<tag>.one`` in ``org``, ``com.<tag>.two`` in ``org2``),
each app with an external bundle, a stored bundle (a file), a private channel, a device pinned
to it and a pending tus upload; and the user's keys of every kind (``KINDS`` below).

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

Expected answers are data: ``PROFILES`` is the table key kind x target -> symbol, and ``ROUTES``
names each route's profile and what its symbols mean. Symbols:

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

import base64
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
from fastapi import FastAPI

from capgo_server.app import create_app
from capgo_server.settings import Settings
from tests.bundles.helpers import insert_device, insert_stored_bundle
from tests.conftest import Account, create_org, make_account, make_key

KINDS = ("all", "write", "upload", "read", "org", "app", "sub_org", "sub_app_read")
TARGETS = ("own", "sibling", "foreign")
UPLOADS = "/files/upload/attachments/"
TUS = {"Tus-Resumable": "1.0.0"}
HUGE = 10**9

# fmt: off
#: key kind x target -> symbol. One string per kind: a character per target (own, sibling,
#: foreign), or a single character for routes without a target.
#:                    all    write  upload read   org    app    sub_org sub_app_read
PROFILES: dict[str, tuple[str, ...]] = {
    "any":           ("+",   "+",   "+",   "+",   "+",   "+",   "+",   "+"),
    "org_create":    ("+",   "+",   "D",   "D",   "D",   "D",   "D",   "D"),
    "org_read":      ("++D", "++D", "++D", "++D", "+DD", "++D", "+DD", "++D"),
    "org_wide_read": ("++D", "++D", "++D", "++D", "+DD", "DDD", "+DD", "DDD"),
    "org_admin":     ("++D", "++D", "DDD", "DDD", "+DD", "DDD", "+DD", "DDD"),
    "org_delete":    ("+-D", "+-D", "D-D", "D-D", "D-D", "D-D", "D-D", "D-D"),
    "member_remove": ("++D", "DDD", "DDD", "DDD", "+DD", "DDD", "+DD", "DDD"),
    "member_accept": ("NNN", "NNN", "DDD", "DDD", "NDD", "DDD", "NDD", "DDD"),
    "keys":          ("+",   "M",   "M",   "M",   "L",   "L",   "L",   "S"),
    "key_one":       ("+-D", "M-M", "M-M", "M-M", "L-L", "L-L", "L-L", "S-S"),
    "key_limit":     ("++D", "MMM", "MMM", "MMM", "LLL", "LLL", "LLL", "SSS"),
    "app_list":      ("+",   "M",   "M",   "+",   "+",   "+",   "+",   "+"),
    "app_list_org":  ("++D", "MMM", "MMM", "++D", "+DD", "++D", "+DD", "++D"),
    "app_get":       ("++D", "MMM", "MMM", "++D", "+DD", "+DD", "+DD", "+DD"),
    "app_create":    ("++D", "++D", "MMM", "MMM", "+DD", "DDD", "+DD", "SSS"),
    "app_delete":    ("++D", "++D", "MMM", "MMM", "+DD", "DDD", "+DD", "SSS"),
    "read":          ("++D", "++D", "MMM", "++D", "+DD", "+DD", "+DD", "+DD"),
    "write":         ("++D", "++D", "MMM", "MMM", "+DD", "+DD", "+DD", "SSS"),
    "channel_del":   ("++D", "DDD", "MMM", "MMM", "+DD", "+DD", "+DD", "SSS"),
    "upload":        ("++D", "++D", "++D", "MMM", "+DD", "+DD", "+DD", "SSS"),
    "stats_app":     ("++D", "MMM", "MMM", "++D", "+DD", "+DD", "+DD", "+DD"),
    "stats_org":     ("++D", "MMM", "MMM", "++D", "+MM", "MMM", "+MM", "MMM"),
    "stats_user":    ("+",   "M",   "M",   "+",   "+",   "+",   "+",   "+"),
    # the tenant's own app with a reference (bundle, channel, device...) of the other tenant
    "cross_read":    ("D",   "D",   "M",   "D",   "D",   "D",   "D",   "D"),
    "cross_write":   ("D",   "D",   "M",   "M",   "D",   "D",   "D",   "S"),
    "cross_ch_del":  ("D",   "N",   "M",   "M",   "D",   "D",   "D",   "S"),
    "cross_upload":  ("D",   "D",   "D",   "M",   "D",   "D",   "D",   "S"),
}
# fmt: on

COMMON_CODES: dict[str, tuple[int, str]] = {
    "M": (401, "invalid_apikey"),
    "S": (401, "invalid_subkey"),
}


# --- the tenants ----------------------------------------------------------------------------


@dataclass
class AppFixture:
    app_id: str
    uuid: str
    name: str
    org_id: str
    version: str  # an external bundle
    version_id: int
    stored: str  # a bundle with a stored file
    channel: str  # private, serves ``version``
    channel_id: int
    device: str  # pinned to ``channel``
    upload_id: str  # a pending tus upload


@dataclass
class Tenant:
    tag: str
    account: Account
    org: str
    org2: str
    apps: list[AppFixture]
    headers: dict[str, dict[str, str]]
    keys: dict[str, dict[str, Any]]
    storage_total: int
    secrets: set[str] = field(default_factory=set)

    @property
    def owner(self) -> dict[str, str]:
        return self.account.headers


@dataclass(frozen=True)
class Scope:
    """What a case acts on: an org and an app, and the tenant that owns them."""

    owner: Tenant
    org_id: str
    app: AppFixture


@dataclass
class Req:
    method: str
    url: str
    params: dict[str, Any] | None = None
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    #: request text not visible in url/params/json (e.g. a decoded tus filename)
    mentions: tuple[str, ...] = ()

    def text(self) -> str:
        return f"{self.url} {self.params!r} {self.json!r} {self.headers!r} {self.mentions!r}"


@dataclass
class Case:
    http: httpx.AsyncClient
    application: FastAPI
    me: Tenant
    other: Tenant
    kind: str
    target: str
    counter: Callable[[], int]

    @property
    def scope(self) -> Scope:
        if self.target == "own":
            return Scope(self.me, self.me.org, self.me.apps[0])
        if self.target == "sibling":
            return Scope(self.me, self.me.org2, self.me.apps[1])
        return Scope(self.other, self.other.org, self.other.apps[0])

    @property
    def foreign(self) -> bool:
        return self.target == "foreign"

    def fresh(self, prefix: str) -> str:
        return f"{prefix}{self.counter()}"


Build = Callable[[Case], Awaitable[Req]]
Check = Callable[[Case, httpx.Response], str | None]


@dataclass(frozen=True)
class Route:
    name: str
    build: Build
    profile: str
    denied: tuple[int, str] | None = None
    ok: int = 200
    codes: dict[str, tuple[int, str]] = field(default_factory=dict)
    check: Check | None = None

    def expected(self, symbol: str) -> tuple[int, str | None]:
        if symbol == "+":
            return self.ok, None
        if symbol == "D":
            assert self.denied is not None, self.name
            return self.denied
        return {**COMMON_CODES, **self.codes}[symbol]


def tus_metadata(**pairs: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in pairs.items())


async def ok(response: httpx.Response, *allowed: int) -> httpx.Response:
    assert response.status_code in (allowed or (200,)), response.text
    return response


async def start_upload(
    http: httpx.AsyncClient, headers: dict[str, str], org_id: str, app_id: str, version: str
) -> str:
    response = await http.post(
        UPLOADS,
        headers={
            **headers,
            **TUS,
            "Upload-Length": "10",
            "Upload-Metadata": tus_metadata(filename=f"orgs/{org_id}/apps/{app_id}/{version}.zip"),
        },
    )
    await ok(response, 201)
    return response.headers["location"].rsplit("/", 1)[-1]


CAROL = "carol-neutral@example.com"
SIZES = {"alfa": (314_159, 1_009), "bravo": (271_828, 1_013)}
VERSIONS = {"alfa": ("3.14.15", "3.14.16"), "bravo": ("2.71.82", "2.71.83")}
DEVICE_PREFIX = {"alfa": "a1fa00a", "bravo": "b4a0b0b"}


async def build_tenant(http: httpx.AsyncClient, application: FastAPI, tag: str) -> Tenant:
    title = tag.title()
    account = await make_account(application, f"{tag}-owner@example.com", f"{title} Main Org")
    org2 = await create_org(http, account, f"{title} Second Org")
    apps: list[AppFixture] = []
    for index, (org_id, suffix) in enumerate(((account.org_id, "one"), (org2, "two"))):
        app_id = f"com.{tag}.{suffix}"
        name = f"{title} App {suffix.title()}"
        created = await ok(
            await http.post(
                "/app",
                json={"app_id": app_id, "name": name, "owner_org": org_id},
                headers=account.headers,
            )
        )
        version, stored = VERSIONS[tag]
        bundle = await ok(
            await http.post(
                "/bundle",
                json={
                    "app_id": app_id,
                    "version": version,
                    "external_url": f"https://cdn.example.com/{tag}/{version}.zip",
                    "checksum": "a" * 64,
                },
                headers=account.headers,
            )
        )
        await insert_stored_bundle(
            application, org_id, stored, app_id, content=b"z" * SIZES[tag][index]
        )
        channel = f"{tag}-beta-{suffix}"
        await ok(
            await http.post(
                "/channel",
                json={"app_id": app_id, "channel": channel, "version": version, "public": False},
                headers=account.headers,
            )
        )
        listed = await ok(
            await http.get(
                "/channel", params={"app_id": app_id, "channel": channel}, headers=account.headers
            )
        )
        device = f"{DEVICE_PREFIX[tag]}{index}-0000-4000-8000-00000000000{index}"
        await insert_device(application, device, app_id, platform="android")
        await ok(
            await http.post(
                "/device",
                json={"app_id": app_id, "device_id": device, "channel": channel},
                headers=account.headers,
            )
        )
        upload_id = await start_upload(http, account.headers, org_id, app_id, f"{version}-up")
        apps.append(
            AppFixture(
                app_id=app_id,
                uuid=created.json()["id"],
                name=name,
                org_id=org_id,
                version=version,
                version_id=bundle.json()["bundle"]["id"],
                stored=stored,
                channel=channel,
                channel_id=listed.json()["id"],
                device=device,
                upload_id=upload_id,
            )
        )
    # carol (a user of neither tenant) is invited to the main org: a member to remove.
    await ok(
        await http.post(
            "/organization/members",
            json={"orgId": account.org_id, "email": CAROL, "invite_type": "read"},
            headers=account.headers,
        )
    )
    keys: dict[str, dict[str, Any]] = {}
    for mode in ("write", "upload", "read"):
        keys[mode] = await make_key(http, account, name=f"{tag} {mode}", mode=mode)
    keys["org"] = await make_key(http, account, name=f"{tag} org", limited_to_orgs=[account.org_id])
    keys["app"] = await make_key(http, account, name=f"{tag} app", limited_to_apps=[apps[0].app_id])
    keys["sub_org"] = await make_key(
        http, account, name=f"{tag} sub org", limited_to_orgs=[account.org_id]
    )
    keys["sub_app_read"] = await make_key(
        http, account, name=f"{tag} sub app", mode="read", limited_to_apps=[apps[0].app_id]
    )
    headers = {kind: {"authorization": keys[kind]["key"]} for kind in ("write", "upload", "read")}
    headers["all"] = account.headers
    headers["org"] = {"authorization": keys["org"]["key"]}
    headers["app"] = {"authorization": keys["app"]["key"]}
    for kind in ("sub_org", "sub_app_read"):
        headers[kind] = {**account.headers, "x-limited-key-id": str(keys[kind]["id"])}
    tenant = Tenant(
        tag=tag,
        account=account,
        org=account.org_id,
        org2=org2,
        apps=apps,
        headers=headers,
        keys=keys,
        storage_total=sum(SIZES[tag]),
    )
    tenant.secrets |= {
        account.org_id,
        org2,
        f"{title} Main Org",
        f"{title} Second Org",
        account.email,
        account.key,
        account.user_id,
        *(key["key"] for key in keys.values()),
        *(key["name"] for key in keys.values()),
        # Every name of the tenant holds its tag (orgs, apps, channels, keys, e-mail, and those
        # made during the run), so the bare tag catches any of them.
        tag,
    }
    for fixture in apps:
        tenant.secrets |= {
            fixture.app_id,
            fixture.uuid,
            fixture.name,
            fixture.version,
            fixture.stored,
            fixture.channel,
            fixture.device,
            fixture.upload_id,
        }
    return tenant


# --- what a tenant looks like to its owner (must not change while the other tenant works) ----


async def snapshot(http: httpx.AsyncClient, tenant: Tenant) -> dict[str, Any]:
    owner = tenant.owner
    reads: dict[str, Any] = {}

    async def read(label: str, url: str, **params: str) -> None:
        response = await http.get(url, params=params or None, headers=owner)
        reads[label] = (response.status_code, response.json())

    await read("orgs", "/organization")
    await read("apps", "/app")
    await read("keys", "/apikey")
    for org_id in (tenant.org, tenant.org2):
        await read(f"members {org_id}", "/organization/members", orgId=org_id)
    for fixture in tenant.apps:
        for path in ("/channel", "/bundle", "/device"):
            await read(f"{path} {fixture.app_id}", path, app_id=fixture.app_id)
        status = await http.get(f"{UPLOADS}{fixture.upload_id}", headers={**owner, **TUS})
        reads[f"upload {fixture.app_id}"] = (status.status_code, status.text)
    return reads


# --- request builders -----------------------------------------------------------------------


def today() -> str:
    return datetime.now(UTC).date().isoformat()


async def b_org_list(c: Case) -> Req:
    return Req("GET", "/organization")


async def b_org_get(c: Case) -> Req:
    return Req("GET", "/organization", params={"orgId": c.scope.org_id})


async def b_org_create(c: Case) -> Req:
    name = c.fresh(f"{c.me.tag.title()} Made Org ")
    c.me.secrets.add(name)
    return Req("POST", "/organization", json={"name": name})


def b_org_update(method: str) -> Build:
    async def build(c: Case) -> Req:
        return Req(method, "/organization", json={"orgId": c.scope.org_id, "logo": "logo.png"})

    return build


async def b_org_delete(c: Case) -> Req:
    org_id = c.scope.org_id
    if not c.foreign:
        name = c.fresh(f"{c.me.tag.title()} Doomed Org ")
        c.me.secrets.add(name)
        org_id = await create_org(c.http, c.me.account, name)
        c.me.secrets.add(org_id)
    return Req("DELETE", "/organization", params={"orgId": org_id})


async def b_members(c: Case) -> Req:
    return Req("GET", "/organization/members", params={"orgId": c.scope.org_id})


async def b_invite(c: Case) -> Req:
    if not c.foreign:  # carol must not be a member yet
        await ok(
            await c.http.delete(
                "/organization/members",
                params={"orgId": c.scope.org_id, "email": CAROL},
                headers=c.me.owner,
            ),
            200,
            404,
        )
    body = {"orgId": c.scope.org_id, "email": CAROL, "invite_type": "read"}
    return Req("POST", "/organization/members", json=body)


async def b_accept(c: Case) -> Req:
    return Req("POST", "/organization/members/accept", json={"orgId": c.scope.org_id})


async def b_member_remove(c: Case) -> Req:
    if not c.foreign:  # carol must be a member (invited) first
        await ok(
            await c.http.post(
                "/organization/members",
                json={"orgId": c.scope.org_id, "email": CAROL, "invite_type": "read"},
                headers=c.me.owner,
            ),
            200,
            400,
        )
    return Req("DELETE", "/organization/members", params={"orgId": c.scope.org_id, "email": CAROL})


async def b_audit(c: Case) -> Req:
    return Req("GET", "/organization/audit", params={"orgId": c.scope.org_id})


async def b_keys(c: Case) -> Req:
    return Req("GET", "/apikey")


async def b_key_create(c: Case) -> Req:
    return Req("POST", "/apikey", json={"name": c.fresh(f"{c.me.tag} made key ")})


def _target_key(c: Case) -> dict[str, Any]:
    return c.scope.owner.keys["read"]


async def b_key_get(c: Case) -> Req:
    return Req("GET", f"/apikey/{_target_key(c)['id']}")


async def b_key_get_by_value(c: Case) -> Req:
    return Req("GET", f"/apikey/{_target_key(c)['key']}")


async def b_key_update(c: Case) -> Req:
    key = _target_key(c)
    return Req("PUT", f"/apikey/{key['id']}", json={"name": key["name"]})


async def b_key_delete(c: Case) -> Req:
    key_id = _target_key(c)["id"]
    if not c.foreign:
        key_id = (await make_key(c.http, c.me.account, name=c.fresh("doomed key ")))["id"]
    return Req("DELETE", f"/apikey/{key_id}")


async def b_key_limited_to_org(c: Case) -> Req:
    body = {"name": c.fresh("org-limited "), "limited_to_orgs": [c.scope.org_id]}
    return Req("POST", "/apikey", json=body)


async def b_key_for_app_uuid(c: Case) -> Req:
    return Req(
        "POST", "/apikey", json={"name": c.fresh("app-limited "), "app_id": c.scope.app.uuid}
    )


async def b_app_list(c: Case) -> Req:
    return Req("GET", "/app")


async def b_app_list_org(c: Case) -> Req:
    return Req("GET", "/app", params={"org_id": c.scope.org_id})


async def b_app_get(c: Case) -> Req:
    return Req("GET", f"/app/{c.scope.app.app_id}")


async def b_app_create(c: Case) -> Req:
    app_id = c.fresh(f"com.{c.me.tag}.made")
    c.me.secrets.add(app_id)
    body = {"app_id": app_id, "name": app_id, "owner_org": c.scope.org_id}
    return Req("POST", "/app", json=body)


async def b_app_update(c: Case) -> Req:
    return Req("PUT", f"/app/{c.scope.app.app_id}", json={"name": c.scope.app.name})


async def b_app_delete(c: Case) -> Req:
    app_id = c.scope.app.app_id
    if not c.foreign:
        app_id = c.fresh(f"com.{c.me.tag}.doomed")
        c.me.secrets.add(app_id)
        await ok(
            await c.http.post(
                "/app",
                json={"app_id": app_id, "name": app_id, "owner_org": c.scope.org_id},
                headers=c.me.owner,
            )
        )
    return Req("DELETE", f"/app/{app_id}")


async def b_channels(c: Case) -> Req:
    return Req("GET", "/channel", params={"app_id": c.scope.app.app_id})


async def b_channel(c: Case) -> Req:
    app = c.scope.app
    return Req("GET", "/channel", params={"app_id": app.app_id, "channel": app.channel})


async def b_channel_save(c: Case) -> Req:
    app = c.scope.app
    body = {"app_id": app.app_id, "channel": app.channel, "version": app.version}
    return Req("POST", "/channel", json=body)


async def b_channel_delete(c: Case) -> Req:
    app = c.scope.app
    channel = app.channel
    if not c.foreign:
        channel = c.fresh(f"{c.me.tag}-doomed-")
        await ok(
            await c.http.post(
                "/channel", json={"app_id": app.app_id, "channel": channel}, headers=c.me.owner
            )
        )
    return Req("DELETE", "/channel", params={"app_id": app.app_id, "channel": channel})


async def b_devices(c: Case) -> Req:
    return Req("GET", "/device", params={"app_id": c.scope.app.app_id})


async def b_device(c: Case) -> Req:
    app = c.scope.app
    return Req("GET", "/device", params={"app_id": app.app_id, "device_id": app.device})


async def b_device_link(c: Case) -> Req:
    app = c.scope.app
    body = {"app_id": app.app_id, "device_id": app.device, "channel": app.channel}
    return Req("POST", "/device", json=body)


async def b_device_unlink(c: Case) -> Req:
    app = c.scope.app
    if not c.foreign:  # pin it again, so there is an override to remove
        await ok(
            await c.http.post("/device", json=(await b_device_link(c)).json, headers=c.me.owner)
        )
    return Req("DELETE", "/device", json={"app_id": app.app_id, "device_id": app.device})


def b_bundle_list(path: str) -> Build:
    async def build(c: Case) -> Req:
        return Req("GET", path, params={"app_id": c.scope.app.app_id})

    return build


async def b_bundle_create(c: Case) -> Req:
    body = {
        "app_id": c.scope.app.app_id,
        "version": f"{c.counter()}.0.0",
        "external_url": "https://cdn.example.com/x.zip",
        "checksum": "b" * 64,
    }
    return Req("POST", "/bundle", json=body)


async def b_bundle_set(c: Case) -> Req:
    app = c.scope.app
    body = {"app_id": app.app_id, "version_id": app.version_id, "channel_id": app.channel_id}
    return Req("PUT", "/bundle", json=body)


async def b_bundle_metadata(c: Case) -> Req:
    body = {"app_id": c.scope.app.app_id, "version_id": c.scope.app.version_id, "comment": "ok"}
    return Req("POST", "/bundle/metadata", json=body)


def b_bundle_delete(path: str) -> Build:
    async def build(c: Case) -> Req:
        app = c.scope.app
        version = app.version
        if not c.foreign:
            version = f"{c.counter()}.0.0"
            await ok(
                await c.http.post(
                    "/bundle",
                    json={
                        "app_id": app.app_id,
                        "version": version,
                        "external_url": "https://cdn.example.com/doomed.zip",
                        "checksum": "c" * 64,
                    },
                    headers=c.me.owner,
                )
            )
        return Req("DELETE", path, params={"app_id": app.app_id, "version": version})

    return build


async def b_download_link(c: Case) -> Req:
    app = c.scope.app
    return Req("POST", "/files/download_link", json={"app_id": app.app_id, "version": app.stored})


async def b_upload_create(c: Case) -> Req:
    app = c.scope.app
    filename = f"orgs/{app.org_id}/apps/{app.app_id}/{c.counter()}.1.0.zip"
    headers = {**TUS, "Upload-Length": "10", "Upload-Metadata": tus_metadata(filename=filename)}
    return Req("POST", UPLOADS, headers=headers, mentions=(filename,))


async def b_upload_status(c: Case) -> Req:
    return Req("GET", f"{UPLOADS}{c.scope.app.upload_id}", headers=dict(TUS))


async def b_upload_terminate(c: Case) -> Req:
    app = c.scope.app
    upload_id = app.upload_id
    if not c.foreign:
        version = f"{c.counter()}.2.0"
        upload_id = await start_upload(c.http, c.me.owner, app.org_id, app.app_id, version)
    return Req("DELETE", f"{UPLOADS}{upload_id}", headers=dict(TUS))


def b_stats_app(suffix: str) -> Build:
    async def build(c: Case) -> Req:
        url = f"/statistics/app/{c.scope.app.app_id}{suffix}"
        return Req("GET", url, params={"from": today(), "to": today()})

    return build


async def b_stats_org(c: Case) -> Req:
    params = {"from": today(), "to": today(), "breakdown": "true"}
    return Req("GET", f"/statistics/org/{c.scope.org_id}", params=params)


async def b_stats_user(c: Case) -> Req:
    return Req("GET", "/statistics/user", params={"from": today(), "to": today()})


def cross(c: Case) -> tuple[AppFixture, AppFixture]:
    """The tenant's own first app, and the other tenant's."""
    return c.me.apps[0], c.other.apps[0]


async def x_set_foreign_bundle(c: Case) -> Req:
    own, other = cross(c)
    body = {"app_id": own.app_id, "version_id": other.version_id, "channel_id": own.channel_id}
    return Req("PUT", "/bundle", json=body)


async def x_set_on_foreign_channel(c: Case) -> Req:
    own, other = cross(c)
    body = {"app_id": own.app_id, "version_id": own.version_id, "channel_id": other.channel_id}
    return Req("PUT", "/bundle", json=body)


async def x_metadata_of_foreign_bundle(c: Case) -> Req:
    own, other = cross(c)
    body = {"app_id": own.app_id, "version_id": other.version_id, "comment": "x"}
    return Req("POST", "/bundle/metadata", json=body)


async def x_channel_on_foreign_bundle(c: Case) -> Req:
    own, other = cross(c)
    body = {"app_id": own.app_id, "channel": own.channel, "version": other.version}
    return Req("POST", "/channel", json=body)


async def x_get_foreign_channel(c: Case) -> Req:
    own, other = cross(c)
    return Req("GET", "/channel", params={"app_id": own.app_id, "channel": other.channel})


async def x_delete_foreign_channel(c: Case) -> Req:
    own, other = cross(c)
    return Req("DELETE", "/channel", params={"app_id": own.app_id, "channel": other.channel})


async def x_pin_to_foreign_channel(c: Case) -> Req:
    own, other = cross(c)
    body = {"app_id": own.app_id, "device_id": own.device, "channel": other.channel}
    return Req("POST", "/device", json=body)


async def x_pin_to_foreign_channel_id(c: Case) -> Req:
    own, other = cross(c)
    body = {"app_id": own.app_id, "device_id": own.device, "channel_id": other.channel_id}
    return Req("POST", "/device", json=body)


async def x_get_foreign_device(c: Case) -> Req:
    own, other = cross(c)
    return Req("GET", "/device", params={"app_id": own.app_id, "device_id": other.device})


async def x_unpin_foreign_device(c: Case) -> Req:
    own, other = cross(c)
    return Req("DELETE", "/device", json={"app_id": own.app_id, "device_id": other.device})


async def x_delete_foreign_bundle(c: Case) -> Req:
    own, other = cross(c)
    return Req("DELETE", "/bundle", params={"app_id": own.app_id, "version": other.version})


async def x_link_to_foreign_file(c: Case) -> Req:
    own, other = cross(c)
    return Req("POST", "/files/download_link", json={"app_id": own.app_id, "version": other.stored})


async def x_upload_under_foreign_org(c: Case) -> Req:
    own, other = cross(c)
    filename = f"orgs/{other.org_id}/apps/{own.app_id}/{c.counter()}.3.0.zip"
    headers = {**TUS, "Upload-Length": "10", "Upload-Metadata": tus_metadata(filename=filename)}
    return Req("POST", UPLOADS, headers=headers, mentions=(filename,))


# --- checks of what a successful answer holds -----------------------------------------------

ORG_LIMITED = {"org", "sub_org"}
APP_LIMITED = {"app", "sub_app_read"}


def check_org_list(c: Case, response: httpx.Response) -> str | None:
    ids = {org["id"] for org in response.json()}
    wanted = {c.me.org} if c.kind in ORG_LIMITED else {c.me.org, c.me.org2}
    if not wanted <= ids or (c.kind in ORG_LIMITED and c.me.org2 in ids):
        return f"orgs listed {sorted(ids)}, expected {sorted(wanted)} (and no other of the key's)"
    return None


def check_app_list(c: Case, response: httpx.Response) -> str | None:
    ids = {app["app_id"] for app in response.json()}
    first, second = (fixture.app_id for fixture in c.me.apps)
    limited = c.kind in ORG_LIMITED | APP_LIMITED
    if c.target == "sibling":
        wanted, unwanted = (set(), {first, second}) if c.kind in APP_LIMITED else ({second}, set())
    elif c.target == "own":
        wanted, unwanted = {first}, {second}
    else:
        wanted, unwanted = ({first}, {second}) if limited else ({first, second}, set())
    if not wanted <= ids or ids & unwanted:
        return f"apps listed {sorted(ids)}: expected {sorted(wanted)}, never {sorted(unwanted)}"
    return None


def check_storage(c: Case, response: httpx.Response) -> str | None:
    """No point may count more stored bytes than all of the tenant's own bundles."""
    body = response.json()
    points = body if isinstance(body, list) else body["global"] + body["byApp"]
    too_big = [p for p in points if p["storage"] > c.me.storage_total]
    return f"storage above the tenant's own: {too_big}" if too_big else None


def check_key_list(c: Case, response: httpx.Response) -> str | None:
    foreign_users = {row["user_id"] for row in response.json()} - {c.me.account.user_id}
    return f"keys of other users listed: {foreign_users}" if foreign_users else None


def remember_key(c: Case, response: httpx.Response) -> str | None:
    c.me.secrets.add(response.json()["key"])
    return None


# --- the matrix ---------------------------------------------------------------------------

ORG_ID_DENIED = (400, "invalid_org_id")
CANNOT_ACCESS_ORG = (400, "cannot_access_organization")
CANNOT_ACCESS_APP = (400, "cannot_access_app")
UPLOAD_NOT_FOUND = (404, "upload_not_found")
NO_VERSION = (400, "cannot_find_version")
NO_CHANNEL = (404, "channel_not_found")

ROUTES: list[Route] = [
    # organizations, members, audit
    Route("GET /organization", b_org_list, "any", check=check_org_list),
    Route("GET /organization?orgId", b_org_get, "org_read", ORG_ID_DENIED),
    Route("POST /organization (create)", b_org_create, "org_create", (400, "cannot_create_org")),
    Route("PUT /organization (create)", b_org_create, "org_create", (400, "cannot_create_org")),
    Route("POST /organization (update)", b_org_update("POST"), "org_admin", CANNOT_ACCESS_ORG),
    Route("PUT /organization (update)", b_org_update("PUT"), "org_admin", CANNOT_ACCESS_ORG),
    Route("DELETE /organization", b_org_delete, "org_delete", (403, "invalid_org_id")),
    Route("GET /organization/members", b_members, "org_read", CANNOT_ACCESS_ORG),
    Route("POST /organization/members", b_invite, "org_admin", CANNOT_ACCESS_ORG),
    Route(
        "POST /organization/members/accept",
        b_accept,
        "member_accept",
        CANNOT_ACCESS_ORG,
        codes={"N": (404, "invitation_not_found")},
    ),
    Route("DELETE /organization/members", b_member_remove, "member_remove", CANNOT_ACCESS_ORG),
    Route("GET /organization/audit", b_audit, "org_wide_read", ORG_ID_DENIED),
    # API keys
    Route(
        "GET /apikey",
        b_keys,
        "keys",
        codes={"L": (401, "cannot_list_apikeys")},
        check=check_key_list,
    ),
    Route(
        "POST /apikey",
        b_key_create,
        "keys",
        codes={"L": (400, "cannot_create_apikey")},
        check=remember_key,
    ),
    Route(
        "POST /apikey limited_to_orgs",
        b_key_limited_to_org,
        "key_limit",
        (404, "org_not_found"),
        codes={"L": (400, "cannot_create_apikey")},
        check=remember_key,
    ),
    Route(
        "POST /apikey app_id",
        b_key_for_app_uuid,
        "key_limit",
        (404, "app_not_found"),
        codes={"L": (400, "cannot_create_apikey")},
        check=remember_key,
    ),
    Route(
        "GET /apikey/:id",
        b_key_get,
        "key_one",
        (404, "failed_to_get_apikey"),
        codes={"L": (401, "cannot_get_apikey")},
    ),
    Route(
        "GET /apikey/:key",
        b_key_get_by_value,
        "key_one",
        (404, "failed_to_get_apikey"),
        codes={"L": (401, "cannot_get_apikey")},
    ),
    Route(
        "PUT /apikey/:id",
        b_key_update,
        "key_one",
        (404, "api_key_not_found_or_access_denied"),
        codes={"L": (401, "cannot_update_apikey")},
    ),
    Route(
        "DELETE /apikey/:id",
        b_key_delete,
        "key_one",
        (404, "api_key_not_found"),
        codes={"L": (401, "cannot_delete_apikey")},
    ),
    # apps
    Route("GET /app", b_app_list, "app_list", check=check_app_list),
    Route(
        "GET /app?org_id",
        b_app_list_org,
        "app_list_org",
        (400, "user_does_not_have_access_to_this_organization"),
        check=check_app_list,
    ),
    Route("GET /app/:id", b_app_get, "app_get", (401, "cannot_access_app")),
    Route("POST /app", b_app_create, "app_create", (403, "cannot_access_organization")),
    Route("PUT /app/:id", b_app_update, "write", (401, "cannot_access_app")),
    Route("DELETE /app/:id", b_app_delete, "app_delete", (400, "cannot_delete_app")),
    # channels
    Route("GET /channel", b_channels, "read", CANNOT_ACCESS_APP),
    Route("GET /channel?channel", b_channel, "read", CANNOT_ACCESS_APP),
    Route("POST /channel", b_channel_save, "write", CANNOT_ACCESS_APP),
    Route("DELETE /channel", b_channel_delete, "channel_del", CANNOT_ACCESS_APP),
    # devices and overrides
    Route("GET /device", b_devices, "read", CANNOT_ACCESS_APP),
    Route("GET /device?device_id", b_device, "read", CANNOT_ACCESS_APP),
    Route("POST /device", b_device_link, "write", CANNOT_ACCESS_APP),
    Route("DELETE /device", b_device_unlink, "write", CANNOT_ACCESS_APP),
    # bundles, metadata, legacy /versions
    Route("GET /bundle", b_bundle_list("/bundle"), "read", (400, "cannot_get_bundle")),
    Route("GET /versions", b_bundle_list("/versions"), "read", (400, "cannot_get_bundle")),
    Route("POST /bundle", b_bundle_create, "write", (400, "cannot_create_bundle")),
    Route("PUT /bundle", b_bundle_set, "write", CANNOT_ACCESS_APP),
    Route("POST /bundle/metadata", b_bundle_metadata, "write", (400, "cannot_find_version")),
    Route("DELETE /bundle", b_bundle_delete("/bundle"), "write", (400, "cannot_delete_bundle")),
    Route("DELETE /versions", b_bundle_delete("/versions"), "write", (400, "cannot_delete_bundle")),
    # files
    Route("POST /files/download_link", b_download_link, "read", CANNOT_ACCESS_APP),
    Route(
        "POST /files/upload/attachments/",
        b_upload_create,
        "upload",
        (404, "app_not_found"),
        ok=201,
    ),
    Route("GET /files/upload/attachments/:id", b_upload_status, "upload", UPLOAD_NOT_FOUND),
    Route(
        "DELETE /files/upload/attachments/:id",
        b_upload_terminate,
        "upload",
        UPLOAD_NOT_FOUND,
        ok=204,
    ),
    # statistics
    Route(
        "GET /statistics/app/:id",
        b_stats_app(""),
        "stats_app",
        (401, "no_access_to_app"),
        check=check_storage,
    ),
    Route(
        "GET /statistics/app/:id/bundle_usage",
        b_stats_app("/bundle_usage"),
        "stats_app",
        (401, "no_access_to_app"),
    ),
    Route(
        "GET /statistics/org/:id",
        b_stats_org,
        "stats_org",
        (401, "no_access_to_organization"),
        check=check_storage,
    ),
    Route("GET /statistics/user", b_stats_user, "stats_user", check=check_storage),
    # own app, the other tenant's reference
    Route("PUT /bundle: foreign version_id", x_set_foreign_bundle, "cross_write", NO_VERSION),
    Route(
        "PUT /bundle: foreign channel_id",
        x_set_on_foreign_channel,
        "cross_write",
        (400, "cannot_find_channel"),
    ),
    Route(
        "POST /bundle/metadata: foreign version_id",
        x_metadata_of_foreign_bundle,
        "cross_write",
        NO_VERSION,
    ),
    Route(
        "POST /channel: foreign bundle name", x_channel_on_foreign_bundle, "cross_write", NO_VERSION
    ),
    Route("GET /channel: foreign channel name", x_get_foreign_channel, "cross_read", NO_VERSION),
    Route(
        "DELETE /channel: foreign channel name",
        x_delete_foreign_channel,
        "cross_ch_del",
        (400, "cannot_find_channel"),
        codes={"N": CANNOT_ACCESS_APP},
    ),
    Route(
        "POST /device: foreign channel name",
        x_pin_to_foreign_channel,
        "cross_write",
        NO_CHANNEL,
    ),
    Route(
        "POST /device: foreign channel_id",
        x_pin_to_foreign_channel_id,
        "cross_write",
        NO_CHANNEL,
    ),
    Route(
        "GET /device: foreign device_id",
        x_get_foreign_device,
        "cross_read",
        (404, "device_not_found"),
    ),
    Route(
        "DELETE /device: foreign device_id",
        x_unpin_foreign_device,
        "cross_write",
        (404, "override_not_found"),
    ),
    Route(
        "DELETE /bundle: foreign version name",
        x_delete_foreign_bundle,
        "cross_write",
        (400, "cannot_delete_version"),
    ),
    Route(
        "POST /files/download_link: foreign version name",
        x_link_to_foreign_file,
        "cross_read",
        (404, "bundle_not_found"),
    ),
    Route(
        "POST /files/upload/attachments/: own app under foreign org",
        x_upload_under_foreign_org,
        "cross_upload",
        (400, "invalid_file_path"),
    ),
]

#: The sub-key of the *other* tenant, presented with this tenant's ``all`` key.
FOREIGN_SUBKEY = "sub_foreign"


def planned_cases() -> list[tuple[Route, str, str, str]]:
    """(route, key kind, target, expected symbol) of one tenant's run."""
    cases: list[tuple[Route, str, str, str]] = []
    for route in ROUTES:
        row = PROFILES[route.profile]
        assert len(row) == len(KINDS), route.name
        for kind, symbols in zip(KINDS, row, strict=True):
            targets = TARGETS if len(symbols) == 3 else ("none",)
            assert len(symbols) == len(targets), (route.name, kind)
            for target, symbol in zip(targets, symbols, strict=True):
                if symbol != "-":
                    cases.append((route, kind, target, symbol))
        width = len(row[0])
        targets = TARGETS if width == 3 else ("none",)
        for target, symbol in zip(targets, row[0], strict=True):
            if symbol != "-":
                cases.append((route, FOREIGN_SUBKEY, target, "S"))
    return cases


#: Cases per tenant run; the test runs both tenants (twice this) on each engine.
EXPECTED_CASES = 1269


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
            headers={**headers, **request.headers},
        )
        count += 1
        label = f"{me.tag}: {route.name} [{kind} -> {target}]"
        status, code = route.expected(symbol)
        got_code = None
        if response.headers.get("content-type", "").startswith("application/json"):
            body = response.json()
            got_code = body.get("error") if isinstance(body, dict) else None
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
