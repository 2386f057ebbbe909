"""How each route of the isolation matrix is called (the ``b_*`` builders, on the case's
target; the ``x_*`` builders, on the tenant's own app with one reference of the other tenant)
and what a successful answer must hold (the ``check_*`` functions). ``isolation_routes`` names
them in its table.

Builders of destructive routes make a fresh resource (as the owner) when the target is the
tenant's own, and act on the other tenant's live resource otherwise.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from tests.conftest import create_org, make_key
from tests.security.isolation_tenants import (
    CAROL,
    TUS,
    UPLOADS,
    AppFixture,
    Build,
    Case,
    Req,
    ok,
    start_upload,
    tus_metadata,
)

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


async def b_my_invitations(c: Case) -> Req:
    return Req("GET", "/organization/members/invitations")


async def b_accept(c: Case) -> Req:
    return Req("POST", "/organization/members/accept", json={"orgId": c.scope.org_id})


async def b_decline(c: Case) -> Req:
    return Req("POST", "/organization/members/decline", json={"orgId": c.scope.org_id})


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


def check_my_invitations(c: Case, response: httpx.Response) -> str | None:
    # Neither tenant is invited anywhere: carol's invitations to their orgs are carol's.
    listed = response.json()
    return None if listed == [] else f"invitations listed {listed}, expected none"


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
