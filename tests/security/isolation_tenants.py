"""The two tenants of the isolation matrix (``test_isolation_matrix.py``) and what a case is.

``build_tenant`` makes one tenant through the API: a user owning two organizations (``org``
and ``org2``), one app in each (``com.<tag>.one`` in ``org``, ``com.<tag>.two`` in ``org2``),
each app with an external bundle, a stored bundle (a file), a private channel, a device pinned
to it and a pending tus upload; and the user's keys of every kind. ``Tenant.secrets`` collects
every identifier of the tenant, which no answer to the other tenant may mention. ``snapshot``
is the tenant's data as its owner reads it (it must not change during the other's run).

A ``Case`` is one call: a tenant (``me``) with one kind of key against one target; a ``Build``
turns it into a ``Req`` (``isolation_requests``).
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI

from tests.bundles.helpers import insert_device, insert_stored_bundle
from tests.conftest import Account, create_org, make_account, make_key

UPLOADS = "/files/upload/attachments/"
TUS = {"Tus-Resumable": "1.0.0"}


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
