"""``POST /rest/v1/rpc/{fn}``: the Supabase RPCs the official CLI calls (plan §1.2, §4.3).

Requests carry what the CLI sends: ``capgkey`` (the caller), and the public anon value in
``apikey`` and ``Authorization``, which identifies nobody.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.auth.helpers import expire_key, make_key, set_org_policy
from tests.bundles.helpers import create_app, create_bundle, create_channel
from tests.conftest import Account, create_org
from tests.members.helpers import add_member

APP_ID = "com.alice.app"
OTHER_APP_ID = "com.alice.other"
BOB_APP_ID = "com.bob.app"
RANDOM_ORG = "8c0e7a3e-2b1f-4d3a-9a51-6f0f2f1c9b77"
OBJECT = "application/vnd.pgrst.object+json"


def sb(key: str, **more: str) -> dict[str, str]:
    """The CLI's Supabase headers around ``key``."""
    return {"capgkey": key, "apikey": "anon", "authorization": "Bearer anon", **more}


async def rpc(
    client: httpx.AsyncClient,
    fn: str,
    key: str | dict[str, str],
    body: Any = None,
    *,
    single: bool = False,
) -> httpx.Response:
    headers = sb(key) if isinstance(key, str) else key
    if single:
        headers = {**headers, "accept": OBJECT}
    return await client.post(
        f"/rest/v1/rpc/{fn}", json={} if body is None else body, headers=headers
    )


def pg_error(code: str, message: str, details: Any = None, hint: Any = None) -> dict[str, Any]:
    return {"code": code, "message": message, "details": details, "hint": hint}


async def key_of(client: httpx.AsyncClient, owner: Account, **fields: Any) -> str:
    created: dict[str, Any] = await make_key(client, owner, **fields)
    return str(created["key"])


async def check(
    client: httpx.AsyncClient,
    key: str | dict[str, str],
    permission: str,
    *,
    org_id: str | None = None,
    app_id: str | None = None,
    channel_id: Any = None,
) -> Any:
    """``cli_check_permission`` as the CLI sends it; returns the answer (asserting a 200)."""
    apikey = key if isinstance(key, str) else key["capgkey"]
    body = {
        "apikey": apikey,
        "permission_key": permission,
        "org_id": org_id,
        "app_id": app_id,
        "channel_id": channel_id,
    }
    response = await rpc(client, "cli_check_permission", key, body)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
async def apps(client: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    """Alice's two apps and Bob's, each with bundle 1.0.0."""
    for owner, app_id in ((alice, APP_ID), (alice, OTHER_APP_ID), (bob, BOB_APP_ID)):
        await create_app(client, owner, app_id)
        await create_bundle(client, owner, "1.0.0", app_id)


class TestCaller:
    async def test_request_actor_user_id_is_the_keys_user(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await rpc(client, "request_actor_user_id", alice.key)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        assert response.json() == alice.user_id

    @pytest.mark.parametrize(
        ("headers", "code", "message"),
        [
            ({}, "no_key_provided", "No key provided"),
            (
                {"authorization": "Bearer anon", "apikey": "anon"},
                "no_key_provided",
                "No key provided",
            ),
            (sb("00000000-0000-4000-8000-000000000000"), "invalid_apikey", "Invalid apikey"),
        ],
    )
    async def test_without_a_valid_capgkey_401(
        self, client: httpx.AsyncClient, headers: dict[str, str], code: str, message: str
    ) -> None:
        response = await rpc(client, "request_actor_user_id", headers)
        assert response.status_code == 401
        assert response.json() == pg_error(code, message)

    async def test_the_key_only_counts_in_capgkey(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await rpc(client, "request_actor_user_id", {"authorization": alice.key})
        assert response.status_code == 401
        assert response.json() == pg_error("no_key_provided", "No key provided")

    async def test_expired_key_401(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        created = await make_key(client, alice)
        await expire_key(app, created["id"])
        response = await rpc(client, "request_actor_user_id", created["key"])
        assert response.status_code == 401
        assert response.json() == pg_error("invalid_apikey", "Invalid apikey")

    async def test_get_user_id_for_the_key_in_capgkey(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await rpc(client, "get_user_id", alice.key, {"apikey": alice.key}, single=True)
        assert response.status_code == 200
        assert response.json() == alice.user_id

    async def test_get_user_id_of_another_key_refused(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        response = await rpc(client, "get_user_id", alice.key, {"apikey": bob.key}, single=True)
        assert response.status_code == 403
        assert response.json() == pg_error(
            "42501", "permission denied: the apikey argument is not the key in capgkey"
        )

    @pytest.mark.parametrize(
        ("body", "code"),
        [({}, "PGRST202"), ({"apikey": None}, "22P02"), ({"apikey": 5}, "22P02")],
    )
    async def test_get_user_id_without_a_text_apikey_400(
        self, client: httpx.AsyncClient, alice: Account, body: dict[str, Any], code: str
    ) -> None:
        response = await rpc(client, "get_user_id", alice.key, body)
        assert response.status_code == 400
        assert response.json()["code"] == code


class TestOrgs:
    async def test_lists_the_callers_orgs_and_roles(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
    ) -> None:
        second = await create_org(client, alice, "Alice Two")
        carol = await add_member(client, app, alice, "carol@example.com", "upload")
        response = await rpc(client, "get_orgs_v7", alice.key)
        assert response.status_code == 200
        assert response.json() == [
            {
                "gid": alice.org_id,
                "name": "Alice Org",
                "role": "super_admin",
                "enforcing_2fa": False,
                "2fa_has_access": True,
            },
            {
                "gid": second,
                "name": "Alice Two",
                "role": "super_admin",
                "enforcing_2fa": False,
                "2fa_has_access": True,
            },
        ]
        carols = (await rpc(client, "get_orgs_v7", carol.key)).json()
        assert [(org["name"], org["role"]) for org in carols] == [
            ("Alice Org", "upload"),
            ("carol's organization", "super_admin"),
        ]

    async def test_a_key_limited_to_one_org_sees_that_one(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        second = await create_org(client, alice, "Alice Two")
        key = await key_of(client, alice, limited_to_orgs=[second])
        response = await rpc(client, "get_orgs_v7", key)
        assert [org["gid"] for org in response.json()] == [second]

    async def test_membership_decides_allowed_actions(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        own = {"orgid": alice.org_id, "actions": ["storage"], "appid": APP_ID}
        foreign = {"orgid": bob.org_id, "actions": ["storage"], "appid": BOB_APP_ID}
        unknown = {"orgid": RANDOM_ORG, "actions": ["storage"]}
        answers = [
            (await rpc(client, "is_allowed_action_org_action", alice.key, body)).json()
            for body in (own, foreign, unknown)
        ]
        assert answers == [True, False, False]
        fallback = [
            (await rpc(client, "is_allowed_action_org", alice.key, {"orgid": org}, single=True))
            for org in (alice.org_id, bob.org_id, "not-a-uuid")
        ]
        assert [(r.status_code, r.json()) for r in fallback] == [
            (200, True),
            (200, False),
            (200, False),
        ]

    @pytest.mark.parametrize(
        ("body", "code"),
        [
            ({"actions": ["storage"]}, "PGRST202"),
            ({"orgid": RANDOM_ORG}, "PGRST202"),
            ({"orgid": RANDOM_ORG, "actions": "storage"}, "22P02"),
            ({"orgid": RANDOM_ORG, "actions": [1]}, "22P02"),
            ({"orgid": [RANDOM_ORG], "actions": []}, "22P02"),
            ({"orgid": RANDOM_ORG, "actions": [], "appid": {"a": 1}}, "22P02"),
        ],
    )
    async def test_allowed_action_arguments_are_typed(
        self, client: httpx.AsyncClient, alice: Account, body: dict[str, Any], code: str
    ) -> None:
        response = await rpc(client, "is_allowed_action_org_action", alice.key, body)
        assert response.status_code == 400
        assert response.json()["code"] == code

    @pytest.mark.parametrize("version", ["8.68.1", "8.35.0", "9.0.0", "10.1.0-rc.1"])
    async def test_no_warning_for_supported_cli(
        self, client: httpx.AsyncClient, alice: Account, version: str
    ) -> None:
        body = {"orgid": alice.org_id, "cli_version": version}
        response = await rpc(client, "get_organization_cli_warnings", alice.key, body)
        assert response.status_code == 200
        assert response.json() == []

    @pytest.mark.parametrize(
        "version", ["8.34.9", "8.28.2", "8.35.0-beta.1", "7.99.0", "banana", ""]
    )
    async def test_fatal_warning_for_older_or_unknown_cli(
        self, client: httpx.AsyncClient, alice: Account, version: str
    ) -> None:
        body = {"orgid": alice.org_id, "cli_version": version}
        response = await rpc(client, "get_organization_cli_warnings", alice.key, body)
        assert response.status_code == 200
        assert response.json() == [
            {
                "message": "This @capgo/cli is too old: this server supports @capgo/cli 8.35 "
                "and later: npx @capgo/cli@latest",
                "fatal": True,
            }
        ]

    async def test_no_2fa_here(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await rpc(
            client, "reject_access_due_to_2fa_for_app", alice.key, {"app_id": APP_ID}
        )
        assert (response.status_code, response.json()) == (200, False)
        response = await rpc(client, "reject_access_due_to_2fa_for_app", alice.key, {})
        assert response.status_code == 400
        assert response.json()["code"] == "PGRST202"


@pytest.mark.usefixtures("apps")
class TestCheckPermission:
    async def test_the_cli_permissions_of_an_owner(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account
    ) -> None:
        channel = await create_channel(app, "production", APP_ID, bundle="1.0.0")
        assert await check(client, alice.key, "org.create_app", org_id=alice.org_id) is True
        for permission in (
            "app.upload_bundle",
            "app.create_channel",
            "app.read",
            "app.read_bundles",
            "app.read_channels",
            "bundle.delete",
        ):
            assert await check(client, alice.key, permission, app_id=APP_ID) is True, permission
        for permission in (
            "channel.promote_bundle",
            "channel.update_settings",
            "channel.read",
            "channel.delete",
        ):
            answer = await check(client, alice.key, permission, app_id=APP_ID, channel_id=channel)
            assert answer is True, permission

    async def test_another_tenants_org_and_app_are_no(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        assert await check(client, alice.key, "org.create_app", org_id=bob.org_id) is False
        assert await check(client, alice.key, "org.create_app", org_id=RANDOM_ORG) is False
        assert await check(client, alice.key, "org.create_app", org_id="junk") is False
        assert await check(client, alice.key, "app.read", app_id=BOB_APP_ID) is False
        assert await check(client, alice.key, "app.read", app_id="com.nobody.app") is False
        assert await check(client, alice.key, "app.read", app_id=APP_ID, org_id=bob.org_id) is False

    async def test_missing_scope_is_no(self, client: httpx.AsyncClient, alice: Account) -> None:
        assert await check(client, alice.key, "org.create_app", app_id=APP_ID) is False
        assert await check(client, alice.key, "app.upload_bundle", org_id=alice.org_id) is False

    async def test_unknown_permission_is_no(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        assert await check(client, alice.key, "app.launch_rockets", app_id=APP_ID) is False
        assert await check(client, alice.key, "", org_id=alice.org_id) is False

    @pytest.mark.parametrize(
        ("mode", "expected"),
        [
            ("read", {"app.read": True, "app.upload_bundle": False, "app.create_channel": False}),
            ("upload", {"app.read": False, "app.upload_bundle": True, "app.create_channel": False}),
            ("write", {"app.read": True, "app.upload_bundle": True, "app.create_channel": True}),
        ],
    )
    async def test_key_modes(
        self, client: httpx.AsyncClient, alice: Account, mode: str, expected: dict[str, bool]
    ) -> None:
        key = await key_of(client, alice, mode=mode)
        answers = {p: await check(client, key, p, app_id=APP_ID) for p in expected}
        assert answers == expected
        assert await check(client, key, "channel.delete", app_id=APP_ID) is False
        org_answer = await check(client, key, "org.create_app", org_id=alice.org_id)
        assert org_answer is (mode == "write")

    async def test_roles(self, client: httpx.AsyncClient, app: FastAPI, alice: Account) -> None:
        reader = await add_member(client, app, alice, "reader@example.com", "read")
        uploader = await add_member(client, app, alice, "uploader@example.com", "upload")
        writer = await add_member(client, app, alice, "writer@example.com", "write")
        table = {
            account.email: [
                await check(client, account.key, p, app_id=APP_ID)
                for p in ("app.read", "app.upload_bundle", "bundle.delete", "channel.delete")
            ]
            + [await check(client, account.key, "org.create_app", org_id=alice.org_id)]
            for account in (reader, uploader, writer)
        }
        assert table == {
            "reader@example.com": [True, False, False, False, False],
            "uploader@example.com": [True, True, False, False, False],
            "writer@example.com": [True, True, True, False, False],
        }

    async def test_keys_limited_to_another_app(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        key = await key_of(client, alice, limited_to_apps=[OTHER_APP_ID])
        assert await check(client, key, "app.upload_bundle", app_id=APP_ID) is False
        assert await check(client, key, "app.upload_bundle", app_id=OTHER_APP_ID) is True
        # An app-limited key may not manage the org itself.
        assert await check(client, key, "org.create_app", org_id=alice.org_id) is False
        sub = await make_key(client, alice, name="sub", limited_to_apps=[OTHER_APP_ID])
        headers = sb(alice.key, **{"x-limited-key-id": str(sub["id"])})
        assert await check(client, headers, "app.upload_bundle", app_id=APP_ID) is False
        assert await check(client, headers, "app.upload_bundle", app_id=OTHER_APP_ID) is True

    async def test_the_channel_must_be_the_apps(
        self, client: httpx.AsyncClient, app: FastAPI, alice: Account, bob: Account
    ) -> None:
        own = await create_channel(app, "production", APP_ID, bundle="1.0.0")
        sibling = await create_channel(app, "production", OTHER_APP_ID, bundle="1.0.0")
        bobs = await create_channel(app, "production", BOB_APP_ID, bundle="1.0.0")
        answers = [
            await check(client, alice.key, "channel.promote_bundle", app_id=APP_ID, channel_id=c)
            for c in (own, str(own), sibling, bobs, 999999)
        ]
        assert answers == [True, True, False, False, False]

    @pytest.mark.parametrize(
        ("field", "value", "code"),
        [
            ("channel_id", "eleven", "22P02"),
            ("channel_id", True, "22P02"),
            ("channel_id", 0, "22P02"),
            ("channel_id", 2**63, "22P02"),
            ("channel_id", [1], "22P02"),
            ("app_id", 5, "22P02"),
            ("app_id", "a" * 5000, "22001"),
            ("app_id", "com.alice\u0000app", "22P05"),
            ("org_id", {"id": 1}, "22P02"),
            ("permission_key", None, "22P02"),
        ],
    )
    async def test_argument_types(
        self, client: httpx.AsyncClient, alice: Account, field: str, value: Any, code: str
    ) -> None:
        body = {
            "apikey": alice.key,
            "permission_key": "app.read",
            "org_id": None,
            "app_id": APP_ID,
            "channel_id": None,
            field: value,
        }
        response = await rpc(client, "cli_check_permission", alice.key, body)
        assert response.status_code == 400
        assert response.json()["code"] == code

    async def test_another_key_in_the_body_refused(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        body = {"apikey": bob.key, "permission_key": "app.read", "app_id": BOB_APP_ID}
        response = await rpc(client, "cli_check_permission", alice.key, body)
        assert response.status_code == 403
        assert response.json()["code"] == "42501"

    async def test_org_key_policy_is_told(self, client: httpx.AsyncClient, alice: Account) -> None:
        await set_org_policy(client, alice, alice.org_id, require_apikey_expiration=True)
        response = await rpc(
            client,
            "cli_check_permission",
            alice.key,
            {"apikey": alice.key, "permission_key": "app.read", "app_id": APP_ID},
        )
        assert response.status_code == 401
        body = response.json()
        assert body["code"] == "org_requires_expiring_key"
        assert body["message"].startswith("This organization requires API keys with an expiration")
        assert (body["details"], body["hint"]) == (None, None)


@pytest.mark.usefixtures("apps")
class TestVersions:
    async def test_exist_app_versions_counts_deleted_bundles(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await create_bundle(client, alice, "1.0.1", APP_ID)
        response = await client.request(
            "DELETE", "/bundle", json={"app_id": APP_ID, "version": "1.0.1"}, headers=alice.headers
        )
        assert response.status_code == 200, response.text
        answers = []
        for name in ("1.0.0", "1.0.1", "2.0.0"):
            body = {"appid": APP_ID, "name_version": name}
            response = await rpc(client, "exist_app_versions", alice.key, body, single=True)
            assert response.status_code == 200
            answers.append(response.json())
        assert answers == [True, True, False]

    async def test_get_app_versions_is_the_live_bundles_id(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        created = await create_bundle(client, alice, "1.0.1", APP_ID)
        await create_bundle(client, alice, "1.0.2", APP_ID)
        await client.request(
            "DELETE", "/bundle", json={"app_id": APP_ID, "version": "1.0.2"}, headers=alice.headers
        )
        answers = []
        for name in ("1.0.1", "1.0.2", "9.9.9", "unknown"):
            body = {"apikey": alice.key, "name_version": name, "appid": APP_ID}
            response = await rpc(client, "get_app_versions", alice.key, body, single=True)
            assert response.status_code == 200
            answers.append(response.json())
        assert answers == [created["id"], None, None, None]

    @pytest.mark.parametrize("app_id", [BOB_APP_ID, "com.nobody.app", ""])
    async def test_foreign_and_unknown_apps_look_alike(
        self, client: httpx.AsyncClient, alice: Account, app_id: str
    ) -> None:
        exist = await rpc(
            client, "exist_app_versions", alice.key, {"appid": app_id, "name_version": "1.0.0"}
        )
        assert (exist.status_code, exist.json()) == (200, False)
        body = {"apikey": alice.key, "name_version": "1.0.0", "appid": app_id}
        found = await rpc(client, "get_app_versions", alice.key, body)
        assert (found.status_code, found.json()) == (200, None)

    async def test_a_key_limited_to_another_app_sees_nothing(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        key = await key_of(client, alice, mode="upload", limited_to_apps=[OTHER_APP_ID])
        body = {"appid": APP_ID, "name_version": "1.0.0"}
        assert (await rpc(client, "exist_app_versions", key, body)).json() is False
        body = {"appid": OTHER_APP_ID, "name_version": "1.0.0"}
        assert (await rpc(client, "exist_app_versions", key, body)).json() is True

    async def test_get_app_versions_for_another_key_refused(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        body = {"apikey": bob.key, "name_version": "1.0.0", "appid": BOB_APP_ID}
        response = await rpc(client, "get_app_versions", alice.key, body)
        assert response.status_code == 403
        assert response.json()["code"] == "42501"

    @pytest.mark.parametrize(
        "body",
        [{"appid": APP_ID}, {"name_version": "1.0.0"}, {"appid": APP_ID, "name_version": 1}],
    )
    async def test_exist_app_versions_arguments(
        self, client: httpx.AsyncClient, alice: Account, body: dict[str, Any]
    ) -> None:
        response = await rpc(client, "exist_app_versions", alice.key, body)
        assert response.status_code == 400
        assert response.json()["code"] in {"PGRST202", "22P02"}


class TestDispatch:
    @pytest.mark.parametrize(
        "fn", ["is_trial_org", "is_paying_org", "has_usage_credits_org", "exist_app_v2", "x" * 300]
    )
    async def test_functions_we_do_not_have_404(
        self, client: httpx.AsyncClient, alice: Account, fn: str
    ) -> None:
        response = await rpc(client, fn, alice.key, {"orgid": alice.org_id}, single=True)
        assert response.status_code == 404
        assert response.json() == pg_error(
            "PGRST202", f"Could not find the function public.{fn[:80]} in the schema cache"
        )

    @pytest.mark.parametrize(
        "content",
        [b"[]", b'"text"', b"12", b"{not json", b"[" * 100_000 + b"]" * 100_000, b"\xff\xfe"],
    )
    async def test_junk_bodies_are_400(
        self, client: httpx.AsyncClient, alice: Account, content: bytes
    ) -> None:
        response = await client.post(
            "/rest/v1/rpc/get_user_id",
            content=content,
            headers={**sb(alice.key), "content-type": "application/json"},
        )
        assert response.status_code == 400
        assert response.json() == pg_error("PGRST102", "Empty or invalid json")

    async def test_a_huge_body_is_413(self, client: httpx.AsyncClient, alice: Account) -> None:
        body = {"apikey": alice.key, "padding": "x" * (2 * 1024 * 1024)}
        response = await rpc(client, "get_user_id", alice.key, body)
        assert response.status_code == 413
        assert response.json()["code"] == "body_too_large"

    async def test_nested_arguments_are_a_type_error(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        nested: Any = alice.key
        for _ in range(200):
            nested = {"a": [nested]}
        response = await rpc(client, "get_user_id", alice.key, {"apikey": nested})
        assert response.status_code == 400
        assert response.json()["code"] == "22P02"

    async def test_extra_arguments_are_ignored(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await rpc(client, "request_actor_user_id", alice.key, {"future": [1, {"a": 2}]})
        assert (response.status_code, response.json()) == (200, alice.user_id)
