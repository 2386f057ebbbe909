"""The official CLI's compatibility routes attacked (issue #16): another tenant's data, keys of
every mode and limit, forged references. Input abuse, limits and races are in
``test_cli_compat_abuse.py``.

These routes are outside the OpenAPI document and answer in PostgREST's or Supabase's shapes,
so the isolation matrix (``test_isolation_matrix.py``) covers the ones whose answers its
symbols can express; the rest are here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from capgo_server.models import Bundle
from tests.apps.helpers import add_bundle, create_app, rows, store_file, stored_paths
from tests.auth.helpers import set_org_policy
from tests.cli_compat.table_data import channel_of, post_channel, sb
from tests.conftest import Account, create_org, expire_key, in_days, make_key
from tests.files.support import add_member

APP = "com.alice.attacked"
SECOND_APP = "com.alice.second"
BOB_APP = "com.bob.attacked"
UNKNOWN_APP = "com.nobody.attacked"
UNKNOWN_ORG = "8c0e7a3e-2b1f-4d3a-9a51-6f0f2f1c9b77"
T7 = "/rest/v1/channels?app_id=eq.{app}&name=eq.prod&select=*"
T13 = "/rest/v1/app_versions?app_id=eq.{app}&deleted=eq.false&name=eq.{ver}"


def api(key: str) -> dict[str, str]:
    """The CLI's plain HTTP calls: the raw key in Authorization and in capgkey."""
    return {"authorization": key, "capgkey": key}


@dataclass(frozen=True)
class Call:
    """One request of the CLI, aimed at ``app`` (or ``org``) by the caller."""

    name: str
    method: str
    url: str
    body: Any = None
    headers: str = "sb"  # sb: anon + capgkey; object: the same asking for one object; api
    prefer: str | None = None
    #: Asks about an organization: a key limited to an app of it is not excluded from it.
    org_scoped: bool = False


def _fill(value: Any, app: str, org: str, me: Account) -> Any:
    if isinstance(value, str):
        return value.format(app=app, org=org, my_org=me.org_id, me=me.user_id)
    if isinstance(value, dict):
        return {key: _fill(item, app, org, me) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, app, org, me) for item in value]
    return value


RPC = "/rest/v1/rpc/"
DECLARED = {
    "name": "2.0.0",
    "app_id": "{app}",
    "storage_provider": "r2-direct",
    "native_packages": [],
    "owner_org": "{my_org}",
    "user_id": "{me}",
    "checksum": "0" * 64,
}
CHANNELS = "/rest/v1/channels?app_id=eq.{app}&"
VERSIONS = "/rest/v1/app_versions?"
UPSERT = VERSIONS + "on_conflict=name,app_id&app_id=eq.{app}&"
EMBED = "version:app_versions!channels_version_fkey"
ROLLOUT_EMBED = "rollout_version_info:app_versions!channels_rollout_version_fkey"
MERGE = "resolution=merge-duplicates"
#: Every CLI request naming an app or an org, with the answer's shape.
CALLS = [
    Call("T1", "GET", "/rest/v1/apps?select=default_upload_channel&app_id=eq.{app}", None,
         "object"),
    Call("T2", "GET", CHANNELS + f"name=eq.prod&select={EMBED}(checksum)", None, "object"),
    Call("T3", "GET", CHANNELS + "name=eq.prod&select=disable_auto_update,"
         "version(id,name,min_update_version,native_packages)"),
    Call("T4", "GET", CHANNELS + f"name=eq.prod&select={EMBED}(native_packages)"),
    Call("T5", "GET", CHANNELS + "name=eq.prod&select=id,public,version,rollout_version,"
         "rollout_enabled,rollout_percentage_bps"),
    Call("T6", "GET", CHANNELS + "name=eq.prod&select=*", None, "object"),
    Call("T8", "GET", CHANNELS + "select=id,name,version,rollout_version"),
    Call("T9", "GET", CHANNELS + f"name=eq.prod&select=id,{EMBED}(id,name),"
         f"{ROLLOUT_EMBED}(id,name)"),
    Call("T10", "GET", CHANNELS + "select=id&name=neq.beta&or=(version.eq.3,rollout_version.eq.3)"
         "&limit=1"),
    Call("T7", "PATCH", T7, {"version": 3, "allow_device_self_set": True}, "object",
         "return=representation"),
    Call("T11", "POST", UPSERT + "name=eq.2.0.0", DECLARED, prefer=MERGE),
    Call("T11 finalize", "POST", UPSERT + "name=eq.1.0.0",
         {**DECLARED, "name": "1.0.0", "storage_provider": "r2"}, prefer=MERGE),
    Call("T12", "PATCH", VERSIONS + "name=eq.1.0.0&app_id=eq.{app}",
         {"r2_path": "orgs/{org}/apps/{app}/1.0.0.zip"}),
    Call("T13", "PATCH", T13.replace("{ver}", "1.0.0"), {"deleted": True}),
    Call("T14", "PATCH", VERSIONS + "app_id=eq.{app}&name=in.(1.0.0)", {"deleted": False}),
    Call("exist_app_versions", "POST", RPC + "exist_app_versions",
         {"appid": "{app}", "name_version": "1.0.0"}),
    Call("get_app_versions", "POST", RPC + "get_app_versions",
         {"appid": "{app}", "name_version": "1.0.0"}),
    Call("check app", "POST", RPC + "cli_check_permission",
         {"permission_key": "app.read", "app_id": "{app}"}),
    Call("check channel", "POST", RPC + "cli_check_permission",
         {"permission_key": "channel.delete", "app_id": "{app}", "channel_id": 1}),
    Call("check org", "POST", RPC + "cli_check_permission",
         {"permission_key": "org.create_app", "org_id": "{org}"}, org_scoped=True),
    Call("allowed action", "POST", RPC + "is_allowed_action_org_action",
         {"orgid": "{org}", "actions": ["mau"], "appid": "{app}"}, org_scoped=True),
    Call("allowed", "POST", RPC + "is_allowed_action_org", {"orgid": "{org}"}, org_scoped=True),
    Call("functions app", "GET", "/functions/v1/app/{app}"),
    Call("GET /app", "GET", "/app/{app}", None, "api"),
    Call("POST /channel null", "POST", "/channel",
         {"app_id": "{app}", "channel": "prod", "version": None}, "api"),
    Call("DELETE /channel", "DELETE", "/channel",
         {"app_id": "{app}", "channel": "prod", "delete_bundle": True}, "api"),
    Call("finalize", "POST", "/private/finalize_bundle_upload",
         {"app_id": "{app}", "name": "1.0.0"}, "api"),
    Call("delete failed", "DELETE", "/private/delete_failed_version",
         {"app_id": "{app}", "name": "1.0.0"}, "api"),
]  # fmt: skip


async def send(
    client: httpx.AsyncClient,
    call: Call,
    me: Account,
    key_headers: dict[str, str],
    app: str,
    org: str,
) -> httpx.Response:
    if call.headers == "api":
        headers = {**api(key_headers["capgkey"]), **key_headers}
    else:
        headers = {**sb(key_headers["capgkey"], single=call.headers == "object"), **key_headers}
    if call.prefer:
        headers["prefer"] = call.prefer
    body = _fill(call.body, app, org, me)
    return await client.request(
        call.method,
        _fill(call.url, app, org, me),
        json=body,
        headers=headers,
    )


@dataclass(frozen=True)
class Tenants:
    v100: int  # alice's bundle 1.0.0, served by her channel prod
    bob_v100: int


@pytest.fixture
async def tenants(app: FastAPI, client: httpx.AsyncClient, alice: Account, bob: Account) -> Tenants:
    for owner, app_id in ((alice, APP), (alice, SECOND_APP), (bob, BOB_APP)):
        await create_app(client, owner, app_id)
    v100 = await add_bundle(app, APP, "1.0.0")
    bob_v100 = await add_bundle(app, BOB_APP, "1.0.0")
    await store_file(app, f"orgs/{bob.org_id}/apps/{BOB_APP}/1.0.0.zip")
    await post_channel(client, alice, APP, "prod", version="1.0.0")
    await post_channel(client, bob, BOB_APP, "prod", version="1.0.0")
    return Tenants(v100, bob_v100)


async def bundles_of(app: FastAPI, app_id: str) -> list[tuple[Any, ...]]:
    found = await rows(app, Bundle, app_id=app_id)
    return [(b.id, b.name, b.deleted, b.r2_path, b.checksum) for b in found]


def normalised(response: httpx.Response, *names: str) -> tuple[int, str]:
    text = response.text
    for name in names:
        text = text.replace(name, "<target>")
    return response.status_code, text


async def test_foreign_unknown_and_excluded_targets_look_alike(
    app: FastAPI, client: httpx.AsyncClient, alice: Account, bob: Account, tenants: Tenants
) -> None:
    """Every CLI request answers another tenant's app or org exactly as one that does not
    exist, and as the caller's own app when its key (or sub-key) is limited away from it: no
    difference tells an attacker which ids exist, and nothing of the other tenant is shown.
    Nothing of the other tenant changes either."""
    app_limited = await make_key(client, alice, name="second only", limited_to_apps=[SECOND_APP])
    second_org = await create_org(client, alice, "Alice Second Org")
    sub_org = await make_key(client, alice, name="sub", limited_to_orgs=[second_org])
    alice_key = {"capgkey": alice.key}
    excluded = {
        "app-limited key": {"capgkey": app_limited["key"]},
        "org-limited sub-key": {**alice_key, "x-limited-key-id": str(sub_org["id"])},
    }
    bob_secrets = [bob.org_id, bob.user_id, bob.key, "bob"]
    bob_before = await bundles_of(app, BOB_APP)
    failures = []
    for call in CALLS:
        unknown = await send(client, call, alice, alice_key, UNKNOWN_APP, UNKNOWN_ORG)
        expected = normalised(unknown, UNKNOWN_APP, UNKNOWN_ORG)
        # The request reached its authorization: not a 500, nor refused before (off the
        # whitelist, a body the route does not take), which would make every answer alike.
        assert expected[0] < 500, (call.name, unknown.text)
        assert not any(code in unknown.text for code in ("PGRST10", "invalid_")), unknown.text
        answers = {
            "foreign": normalised(
                await send(client, call, alice, alice_key, BOB_APP, bob.org_id),
                BOB_APP,
                bob.org_id,
            )
        }
        for label, headers in excluded.items():
            if call.org_scoped and label == "app-limited key":
                continue
            response = await send(client, call, alice, headers, APP, alice.org_id)
            answers[label] = normalised(response, APP, alice.org_id)
        for label, answer in answers.items():
            if answer != expected:
                failures.append(f"{call.name} {label}: {answer} != unknown {expected}")
            if leaked := [secret for secret in bob_secrets if secret in answer[1]]:
                failures.append(f"{call.name} {label}: shows {leaked}")
    assert not failures, "\n".join(failures)
    assert await bundles_of(app, BOB_APP) == bob_before
    assert (await channel_of(client, bob, BOB_APP, "prod"))["version"]["name"] == "1.0.0"
    assert await stored_paths(app, f"orgs/{bob.org_id}/") != []


T7_FORGED = ["bob's bundle", "deleted", "unknown", "builtin", "absent"]


@pytest.mark.parametrize("forged", T7_FORGED)
async def test_t7_serves_only_a_live_bundle_of_the_channels_app(
    app: FastAPI,
    client: httpx.AsyncClient,
    alice: Account,
    bob: Account,
    tenants: Tenants,
    forged: str,
) -> None:
    """A forged ``version`` id (another tenant's bundle, a deleted one, the internal ones, an
    id of nothing) is refused alike, and the channel keeps its bundle."""
    deleted = await add_bundle(app, APP, "0.9.0", deleted=True)
    internal = {b.name: b.id for b in await rows(app, Bundle, app_id=APP)}
    version = {
        "bob's bundle": tenants.bob_v100,
        "deleted": deleted,
        "unknown": internal["unknown"],
        "builtin": internal["builtin"],
        "absent": 10**12,
    }[forged]
    body = {"version": version, "owner_org": alice.org_id, "allow_device_self_set": True}
    response = await client.patch(
        T7.format(app=APP),
        json=body,
        headers=sb(alice.key, single=True, prefer="return=representation"),
    )
    assert (response.status_code, response.json()) == (
        403,
        {
            "code": "42501",
            "message": "permission denied: version must be a live bundle of this channel's app",
            "details": None,
            "hint": None,
        },
    )
    channel = await channel_of(client, alice, APP, "prod")
    assert (channel["version"]["id"], channel["allow_device_self_set"]) == (tenants.v100, False)


class TestDeletingAServedBundle:
    """T13 on a bundle a channel serves. ``DELETE /bundle`` refuses a served bundle; the CLI
    deletes one only right before deleting its channel, which needs admin and a key of mode
    ``all``. A write key (or a member below admin) used to be able to delete it anyway: the
    channel then served a deleted bundle whose file was gone, and its devices got nothing."""

    @staticmethod
    async def delete(client: httpx.AsyncClient, key: str, version: str) -> httpx.Response:
        return await client.patch(
            T13.format(app=APP, ver=version), json={"deleted": True}, headers=sb(key)
        )

    @staticmethod
    def refused(version: str) -> dict[str, Any]:
        return {
            "code": "42501",
            "message": f"permission denied: channel prod serves bundle {version}: deleting it "
            "needs the rights to delete that channel (admin, a key of mode all)",
            "details": None,
            "hint": None,
        }

    @pytest.mark.parametrize("who", ["write key", "write member"])
    async def test_without_the_rights_to_delete_the_channel(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        alice: Account,
        bob: Account,
        tenants: Tenants,
        who: str,
    ) -> None:
        path = f"orgs/{alice.org_id}/apps/{APP}/1.0.0.zip"
        await store_file(app, path)
        if who == "write key":
            key = (await make_key(client, alice, mode="write"))["key"]
        else:
            await add_member(app, alice.org_id, bob, "write")
            key = bob.key
        response = await self.delete(client, key, "1.0.0")
        assert (response.status_code, response.json()) == (403, self.refused("1.0.0"))
        [bundle] = await rows(app, Bundle, id=tenants.v100)
        assert not bundle.deleted
        assert await stored_paths(app, f"orgs/{alice.org_id}/apps/{APP}/") == [path]
        # What DELETE /bundle lets the same key do, T13 does: delete a bundle nothing serves.
        await add_bundle(app, APP, "1.0.1")
        assert (await self.delete(client, key, "1.0.1")).status_code == 204

    async def test_with_them(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, tenants: Tenants
    ) -> None:
        response = await self.delete(client, alice.key, "1.0.0")
        assert (response.status_code, response.content) == (204, b"")
        [bundle] = await rows(app, Bundle, id=tenants.v100)
        assert bundle.deleted


KEYED = [
    ("GET", "/rest/v1/channels?select=*&app_id=eq.{app}&name=eq.prod", None, "object"),
    ("POST", "/rest/v1/app_versions?on_conflict=name,app_id&app_id=eq.{app}&name=eq.2.0.0",
     DECLARED, "sb"),
    ("POST", RPC + "get_app_versions", {"appid": "{app}", "name_version": "1.0.0"}, "sb"),
    ("GET", "/functions/v1/app/{app}", None, "sb"),
    ("POST", "/private/finalize_bundle_upload", {"app_id": "{app}", "name": "1.0.0"}, "api"),
]  # fmt: skip


async def test_an_expired_key_and_an_orgs_key_policy(
    app: FastAPI, client: httpx.AsyncClient, alice: Account, bob: Account, tenants: Tenants
) -> None:
    """An expired key is no key on any CLI route. An organization's key policy refuses its own
    members' keys (401, with the reason), while to anyone else its apps stay what they are to
    everyone: unknown, so the policy tells nothing about the org."""
    expired = await make_key(client, alice, name="old", expires_at=in_days(1))
    await expire_key(app, expired["id"])
    await set_org_policy(client, alice, alice.org_id, enforce_hashed_api_keys=True)
    for method, url, body, headers in KEYED:
        call = Call(url, method, url, body, headers, MERGE if "on_conflict" in url else None)
        old = await send(client, call, alice, {"capgkey": expired["key"]}, APP, alice.org_id)
        assert (old.status_code, old.json().get("code", old.json().get("error"))) == (
            401,
            "invalid_apikey",
        ), url
        member = await send(client, call, alice, {"capgkey": alice.key}, APP, alice.org_id)
        assert member.status_code == 401, (url, member.text)
        assert "requires hashed API keys" in member.text
        outsider = await send(client, call, bob, {"capgkey": bob.key}, APP, alice.org_id)
        unknown = await send(client, call, bob, {"capgkey": bob.key}, UNKNOWN_APP, alice.org_id)
        assert normalised(outsider, APP) == normalised(unknown, UNKNOWN_APP), url


@pytest.mark.parametrize(
    "name", ["1" * 300, "1.0.0-" + "a" * 300, "1.0", "v1.0.0", "1.0.0/../2.0.0", "builtin"]
)
async def test_a_draft_needs_a_semver_name_short_enough_to_store(
    app: FastAPI, client: httpx.AsyncClient, alice: Account, tenants: Tenants, name: str
) -> None:
    encoded = name.replace("/", "%2F")
    response = await client.post(
        f"/rest/v1/app_versions?on_conflict=name,app_id&app_id=eq.{APP}&name=eq.{encoded}",
        json=_fill({**DECLARED, "name": name}, APP, alice.org_id, alice),
        headers=sb(alice.key, prefer=MERGE),
    )
    assert (response.status_code, response.json()["code"]) == (400, "invalid_version_format")
    assert [b.name for b in await rows(app, Bundle, app_id=APP, deleted=False)] == ["1.0.0"]
