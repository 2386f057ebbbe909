"""The isolation matrix's requests of the official CLI's routes (issue #16): the ``b_cli_*``
builders, as ``isolation_requests`` has them for the public API, and the checks of their
successful answers.

These routes take the key in ``capgkey`` (``isolation_routes.Route.keys_in`` moves it there);
a refused PostgREST read is "no rows", which the ``Accept: …object+json`` of T1 and T6 turns
into 406 ``PGRST116``, so a refusal is told from a success by its status.
"""

from __future__ import annotations

import httpx

from tests.security.isolation_tenants import Case, Req, ok, start_upload

OBJECT = {"accept": "application/vnd.pgrst.object+json"}


async def b_cli_functions_app(c: Case) -> Req:
    return Req("GET", f"/functions/v1/app/{c.scope.app.app_id}")


async def b_cli_default_channel(c: Case) -> Req:
    """T1."""
    app_id = c.scope.app.app_id
    params = {"select": "default_upload_channel", "app_id": f"eq.{app_id}"}
    return Req("GET", "/rest/v1/apps", params=params, headers=dict(OBJECT))


async def b_cli_channel(c: Case) -> Req:
    """T6."""
    app = c.scope.app
    params = {"select": "*", "app_id": f"eq.{app.app_id}", "name": f"eq.{app.channel}"}
    return Req("GET", "/rest/v1/channels", params=params, headers=dict(OBJECT))


def check_cli_channel(c: Case, response: httpx.Response) -> str | None:
    row = response.json()
    wanted = (c.scope.app.channel, c.scope.app.version_id)
    got = (row.get("name"), row.get("version"))
    return None if got == wanted else f"channel row {got}, expected {wanted}"


async def b_cli_self_assign(c: Case) -> Req:
    """T7: the channel's own bundle again, and self-assign on."""
    app = c.scope.app
    params = {"app_id": f"eq.{app.app_id}", "name": f"eq.{app.channel}", "select": "*"}
    body = {"version": app.version_id, "allow_device_self_set": True}
    headers = {**OBJECT, "prefer": "return=representation"}
    return Req("PATCH", "/rest/v1/channels", params=params, json=body, headers=headers)


async def b_cli_declare(c: Case) -> Req:
    """T11: a draft of a new version, naming the app's own organization and the caller."""
    app = c.scope.app
    version = f"{c.counter()}.5.0"
    params = {"on_conflict": "name,app_id", "app_id": f"eq.{app.app_id}", "name": f"eq.{version}"}
    body = {
        "name": version,
        "app_id": app.app_id,
        "storage_provider": "r2-direct",
        "native_packages": [],
        "owner_org": app.org_id,
        "user_id": c.me.account.user_id,
        "checksum": "d" * 64,
    }
    headers = {"prefer": "resolution=merge-duplicates"}
    return Req("POST", "/rest/v1/app_versions", params=params, json=body, headers=headers)


async def b_cli_delete_version(c: Case) -> Req:
    """T13 of a bundle no channel serves: a fresh one of the tenant's own, else the other
    tenant's stored bundle."""
    app = c.scope.app
    version = app.stored
    if not c.foreign:
        version = f"{c.counter()}.6.0"
        body = {
            "app_id": app.app_id,
            "version": version,
            "external_url": "https://cdn.example.com/doomed.zip",
            "checksum": "c" * 64,
        }
        await ok(await c.http.post("/bundle", json=body, headers=c.me.owner))
    params = {"app_id": f"eq.{app.app_id}", "deleted": "eq.false", "name": f"eq.{version}"}
    return Req("PATCH", "/rest/v1/app_versions", params=params, json={"deleted": True})


async def b_cli_finalize(c: Case) -> Req:
    app = c.scope.app
    body = {"app_id": app.app_id, "name": app.stored}
    return Req("POST", "/private/finalize_bundle_upload", json=body)


async def b_cli_delete_failed(c: Case) -> Req:
    """The unfinished upload of a fresh version of the tenant's own, else the other tenant's
    pending upload."""
    app = c.scope.app
    version = f"{app.version}-up"
    if not c.foreign:
        version = f"{c.counter()}.3.0"
        await start_upload(c.http, c.me.owner, app.org_id, app.app_id, version)
    body = {"app_id": app.app_id, "name": version}
    return Req("DELETE", "/private/delete_failed_version", json=body)
