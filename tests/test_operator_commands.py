"""``capgo-server list-users``, ``issue-key`` and ``revoke-key``, run as real processes on the
session database of each engine; keys they issue are tried against the API.

Contract: each prints exactly one JSON object on stdout; every refusal is one ``error: ...``
line on stderr, exit code 1, nothing on stdout and nothing written.
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from capgo_server.clock import utcnow
from capgo_server.models import ApiKey, AuditLog
from tests.auth.helpers import set_org_policy
from tests.conftest import Account, create_org, make_key
from tests.live import live_server
from tests.test_cli import cli_env, describe, error_line, is_uuid, run_cli
from tests.warm_cli import run_cli_warm

ISSUED_FIELDS = {
    "user_id",
    "key_id",
    "name",
    "apikey",
    "mode",
    "hashed",
    "limited_to_orgs",
    "limited_to_apps",
    "expires_at",
    "refused_by_orgs",
}


def output_of(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The one JSON object a successful command printed (asserting the contract)."""
    assert result.returncode == 0, describe(result)
    assert result.stderr == "", describe(result)
    assert result.stdout.count("\n") == 1, describe(result)
    assert result.stdout.endswith("\n"), describe(result)
    printed = json.loads(result.stdout)
    assert isinstance(printed, dict), describe(result)
    return printed


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return cli_env(tmp_path / "unused-data", CAPGO_DATABASE_URL=database_url)


@pytest.fixture
def cli(env: dict[str, str], tmp_path: Path) -> Any:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli_warm(*args, env=env, cwd=tmp_path)

    return run


async def stored_rows(app: FastAPI) -> tuple[int, int]:
    """(API keys, audit entries) in the database, to prove a refusal wrote nothing."""
    async with app.state.sessionmaker() as session:
        keys = await session.scalar(select(func.count()).select_from(ApiKey))
        audits = await session.scalar(select(func.count()).select_from(AuditLog))
    return int(keys or 0), int(audits or 0)


async def owned_app(client: httpx.AsyncClient, owner: Account, app_id: str, org_id: str) -> None:
    body = {"app_id": app_id, "name": app_id, "owner_org": org_id}
    response = await client.post("/app", json=body, headers=owner.headers)
    assert response.status_code == 200, response.text


async def listed_key(client: httpx.AsyncClient, owner: Account, key_id: int) -> dict[str, Any]:
    """The key ``key_id`` as ``GET /apikey`` shows it to its owner."""
    response = await client.get("/apikey", headers=owner.headers)
    assert response.status_code == 200, response.text
    [key] = [key for key in response.json() if key["id"] == key_id]
    return dict(key)


class TestListUsers:
    async def test_empty_database(self, app: FastAPI, cli: Any) -> None:
        assert output_of(cli("list-users")) == {"users": []}

    async def test_users_with_their_orgs_and_keys_never_the_values(
        self, client: httpx.AsyncClient, alice: Account, bob: Account, cli: Any
    ) -> None:
        second = await create_org(client, alice, "Alice Second")
        extra = await make_key(client, alice, name="ci", mode="read")
        result = cli("list-users")
        users = output_of(result)["users"]
        assert [user["email"] for user in users] == ["alice@example.com", "bob@example.com"]
        first, other = users
        assert first["id"] == alice.user_id
        assert datetime.fromisoformat(first["created_at"]) <= utcnow()
        assert first["organizations"] == [
            {"id": alice.org_id, "name": "Alice Org", "role": "super_admin"},
            {"id": second, "name": "Alice Second", "role": "super_admin"},
        ]
        assert first["key_count"] == 2
        assert [(key["name"], key["mode"], key["expires_at"]) for key in first["keys"]] == [
            ("all", "all", None),
            ("ci", "read", None),
        ]
        assert first["keys"][1]["id"] == extra["id"]
        assert other["id"] == bob.user_id
        assert other["organizations"] == [
            {"id": bob.org_id, "name": "Bob Org", "role": "super_admin"}
        ]
        assert other["key_count"] == 1
        for secret in (alice.key, bob.key, extra["key"]):
            assert secret not in result.stdout


class TestIssueKey:
    async def test_default_key_is_mode_all_and_works(
        self, client: httpx.AsyncClient, alice: Account, cli: Any
    ) -> None:
        issued = output_of(cli("issue-key", "Alice@Example.com"))
        assert set(issued) == ISSUED_FIELDS
        assert issued["user_id"] == alice.user_id
        assert is_uuid(issued["apikey"])
        assert issued["mode"] == "all"
        assert issued["hashed"] is False
        assert (issued["limited_to_orgs"], issued["limited_to_apps"]) == ([], [])
        assert issued["expires_at"] is None
        assert issued["refused_by_orgs"] == []
        new = Account(alice.user_id, alice.org_id, issued["apikey"], alice.email)
        orgs = await client.get("/organization", headers=new.headers)
        assert orgs.status_code == 200, orgs.text
        assert [org["id"] for org in orgs.json()] == [alice.org_id]
        listed = await listed_key(client, new, issued["key_id"])
        assert listed["name"] == issued["name"]
        assert listed["key"] == issued["apikey"]

    async def test_limited_expiring_hashed_key(
        self, client: httpx.AsyncClient, alice: Account, cli: Any
    ) -> None:
        second = await create_org(client, alice, "Alice Second")
        await owned_app(client, alice, "com.example.ops", second)
        issued = output_of(
            cli(
                "issue-key", "alice@example.com", "--mode", "read", "--org", second,
                "--app", "com.example.ops", "--expires-in-days", "30", "--name", "phone",
                "--hashed",
            )
        )  # fmt: skip
        assert issued["mode"] == "read"
        assert issued["hashed"] is True
        assert issued["limited_to_orgs"] == [second]
        assert issued["limited_to_apps"] == ["com.example.ops"]
        expires = datetime.fromisoformat(issued["expires_at"])
        assert abs(expires - (utcnow() + timedelta(days=30))) < timedelta(minutes=5)
        listed = await listed_key(client, alice, issued["key_id"])
        assert listed["key"] is None
        assert listed["name"] == "phone"
        assert listed["mode"] == "read"
        reader = {"authorization": issued["apikey"]}
        apps = await client.get("/app", headers=reader)
        assert apps.status_code == 200, apps.text
        assert [app["app_id"] for app in apps.json()] == ["com.example.ops"]
        refused = await client.get("/organization", params={"orgId": alice.org_id}, headers=reader)
        assert refused.status_code in (400, 401), refused.text

    async def test_expires_at_is_taken_as_given(
        self, client: httpx.AsyncClient, alice: Account, cli: Any
    ) -> None:
        issued = output_of(
            cli("issue-key", "alice@example.com", "--expires-at", "2999-01-02T03:04:05Z")
        )
        assert issued["expires_at"] == "2999-01-02T03:04:05.000Z"

    async def test_is_recorded_in_the_org_audit_trail(
        self, client: httpx.AsyncClient, alice: Account, cli: Any
    ) -> None:
        issued = output_of(cli("issue-key", "alice@example.com", "--org", alice.org_id))
        response = await client.get(
            "/organization/audit",
            headers=alice.headers,
            params={"orgId": alice.org_id, "tableName": "apikeys"},
        )
        assert response.status_code == 200, response.text
        [entry] = response.json()["data"]
        assert (entry["operation"], entry["record_id"]) == ("INSERT", str(issued["key_id"]))
        assert entry["user_id"] == alice.user_id
        assert issued["apikey"] not in json.dumps(entry)

    async def test_org_policies_apply(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, cli: Any
    ) -> None:
        await set_org_policy(
            client,
            alice,
            alice.org_id,
            require_apikey_expiration=True,
            enforce_hashed_api_keys=True,
        )
        before = await stored_rows(app)
        line = error_line(cli("issue-key", "alice@example.com", "--org", alice.org_id, "--hashed"))
        assert "requires API keys to have an expiration date" in line
        assert "--expires-in-days" in line
        line = error_line(
            cli("issue-key", "alice@example.com", "--org", alice.org_id, "--expires-in-days", "9")
        )
        assert "requires hashed API keys" in line
        assert await stored_rows(app) == before
        issued = output_of(
            cli(
                "issue-key", "alice@example.com", "--org", alice.org_id,
                "--expires-in-days", "9", "--hashed",
            )
        )  # fmt: skip
        orgs = await client.get(
            "/organization",
            params={"orgId": alice.org_id},
            headers={"authorization": issued["apikey"]},
        )
        assert orgs.status_code == 200, orgs.text

    async def test_says_which_orgs_will_refuse_the_key(
        self, client: httpx.AsyncClient, alice: Account, cli: Any
    ) -> None:
        """The README's lock-out: the org now requires expiring keys, the only key never
        expires. A key issued the same way is refused there, and the output says so; one that
        expires is the way back in."""
        await set_org_policy(client, alice, alice.org_id, require_apikey_expiration=True)
        second = await create_org(client, alice, "Alice Second")
        locked = output_of(cli("issue-key", "alice@example.com"))
        [refusal] = locked["refused_by_orgs"]
        assert refusal["org_id"] == alice.org_id
        assert "requires API keys with an expiration date" in refusal["reason"]
        params = {"orgId": alice.org_id}
        refused = await client.get(
            "/organization", params=params, headers={"authorization": locked["apikey"]}
        )
        assert (refused.status_code, refused.json()["error"]) == (401, "org_requires_expiring_key")
        only_second = output_of(cli("issue-key", "alice@example.com", "--org", second))
        assert only_second["refused_by_orgs"] == []

        back = output_of(cli("issue-key", "alice@example.com", "--expires-in-days", "30"))
        assert back["refused_by_orgs"] == []
        org = await client.get(
            "/organization", params=params, headers={"authorization": back["apikey"]}
        )
        assert org.status_code == 200, org.text
        assert org.json()["id"] == alice.org_id

    @pytest.mark.parametrize(
        ("args", "expected"),
        [
            (["nope"], "not an e-mail address"),
            (["carol@example.com"], "no user has the e-mail carol@example.com"),
            (["alice@example.com", "--mode", "admin"], "Invalid mode"),
            (["alice@example.com", "--expires-at", "2001-01-01T00:00:00Z"], "in the future"),
            (
                ["alice@example.com", "--expires-at", "10000-01-01T00:00:00Z"],
                "before the year 10000",
            ),
            (["alice@example.com", "--expires-at", "tomorrow"], "ISO 8601"),
            (["alice@example.com", "--expires-in-days", "0"], "at least 1"),
            (["alice@example.com", "--expires-in-days", "-3"], "at least 1"),
            (["alice@example.com", "--expires-in-days", "3000000"], "beyond the year 9999"),
            (["alice@example.com", "--expires-in-days", "ten"], "whole number"),
            (
                ["alice@example.com", "--expires-in-days", "3", "--expires-at", "2999-01-01"],
                "not both",
            ),
            (["alice@example.com", "--org", "00000000-0000-4000-8000-000000000000"], "--org"),
            (["alice@example.com", "--org", "not-an-id"], "Organization not found"),
            (["alice@example.com", "--org", "BOB_ORG"], "Organization not found"),
            (["alice@example.com", "--app", "com.example.nowhere"], "not an app of"),
            (["alice@example.com", "--app", "com.example.bobs"], "not an app of"),
            (
                ["alice@example.com", "--app", "com.example.alices", "--org", "SECOND"],
                "not to any --org",
            ),
            (["alice@example.com", "--name", " "], "Name is required"),
            (["alice@example.com", "--name", "x" * 201], "at most 200"),
        ],
    )
    async def test_hostile_input_is_one_line_and_writes_nothing(
        self,
        args: list[str],
        expected: str,
        app: FastAPI,
        client: httpx.AsyncClient,
        alice: Account,
        bob: Account,
        cli: Any,
    ) -> None:
        second = await create_org(client, alice, "Alice Second")
        await owned_app(client, alice, "com.example.alices", alice.org_id)
        await owned_app(client, bob, "com.example.bobs", bob.org_id)
        args = [{"BOB_ORG": bob.org_id, "SECOND": second}.get(arg, arg) for arg in args]
        before = await stored_rows(app)
        line = error_line(cli("issue-key", *args))
        assert expected in line
        assert await stored_rows(app) == before


class TestRevokeKey:
    async def test_by_id_then_every_key_of_a_user(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account, bob: Account, cli: Any
    ) -> None:
        extra = await make_key(
            client, alice, name="ci", mode="read", limited_to_orgs=[alice.org_id]
        )
        assert output_of(cli("revoke-key", "--id", str(extra["id"]))) == {"revoked": [extra["id"]]}
        refused = await client.get("/organization", headers={"authorization": extra["key"]})
        assert (refused.status_code, refused.json()["error"]) == (401, "invalid_apikey")
        assert (await client.get("/organization", headers=alice.headers)).status_code == 200

        audit = await client.get(
            "/organization/audit",
            headers=alice.headers,
            params={"orgId": alice.org_id, "tableName": "apikeys", "operation": "DELETE"},
        )
        assert audit.status_code == 200, audit.text
        assert [entry["record_id"] for entry in audit.json()["data"]] == [str(extra["id"])]

        again = error_line(cli("revoke-key", "--id", str(extra["id"])))
        assert f"no API key has the id {extra['id']}" in again

        second = await make_key(client, alice, name="second")
        listed = output_of(cli("list-users"))["users"][0]
        revoked = output_of(cli("revoke-key", "--email", "alice@example.com", "--all"))
        assert revoked == {"revoked": [key["id"] for key in listed["keys"]]}
        assert second["id"] in revoked["revoked"]
        for key in (alice.key, second["key"]):
            response = await client.get("/organization", headers={"authorization": key})
            assert response.status_code == 401, response.text
        # Bob's key is not touched.
        assert (await client.get("/organization", headers=bob.headers)).status_code == 200
        assert output_of(cli("revoke-key", "--email", "alice@example.com", "--all")) == {
            "revoked": []
        }

    @pytest.mark.parametrize(
        ("args", "expected"),
        [
            ([], "give --id KEY_ID, or --email EMAIL --all"),
            (["--id", "abc"], "--id takes a key id"),
            (["--id", "-1"], "--id takes a key id"),
            (["--id", "9" * 19], "--id takes a key id"),
            (["--id", "999999"], "no API key has the id 999999"),
            # Found in review: \d took any script's digits (U+0661 revoked key 1), $ a newline.
            (["--id", "\u0661"], "--id takes a key id"),
            (["--id", "1\n"], "--id takes a key id"),
            (["--email", "alice@example.com"], "--email EMAIL --all"),
            (["--all"], "--email EMAIL --all"),
            (["--id", "1", "--email", "alice@example.com", "--all"], "not both"),
            (["--email", "nope", "--all"], "not an e-mail address"),
            (["--email", "carol@example.com", "--all"], "no user has the e-mail"),
        ],
    )
    async def test_hostile_input_is_one_line_and_revokes_nothing(
        self, args: list[str], expected: str, app: FastAPI, alice: Account, cli: Any
    ) -> None:
        before = await stored_rows(app)
        assert expected in error_line(cli("revoke-key", *args))
        assert await stored_rows(app) == before


class TestAgainstARunningServer:
    def test_issued_key_works_and_is_refused_once_revoked(
        self, database_url: str, tmp_path: Path
    ) -> None:
        with live_server(database_url, tmp_path) as live:
            issued = output_of(
                run_cli_warm("issue-key", "owner@example.com", env=live.env, cwd=live.cwd)
            )
            with live.http(issued["apikey"]) as http:
                assert http.get("/organization").status_code == 200
                revoked = run_cli_warm(
                    "revoke-key", "--id", str(issued["key_id"]), env=live.env, cwd=live.cwd
                )
                assert output_of(revoked) == {"revoked": [issued["key_id"]]}
                refused = http.get("/organization")
                assert refused.status_code == 401, refused.text
                assert refused.json()["error"] == "invalid_apikey"
            with live.http() as http:
                assert http.get("/organization").status_code == 200
                every = run_cli_warm(
                    "revoke-key",
                    "--email",
                    "owner@example.com",
                    "--all",
                    env=live.env,
                    cwd=live.cwd,
                )
                assert len(output_of(every)["revoked"]) == 1
                refused = http.get("/organization")
                assert refused.status_code == 401, refused.text


def test_help_lists_the_operator_commands(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "data")
    result = run_cli("--help", env=env, cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    for command in ("list-users", "issue-key", "revoke-key"):
        assert command in result.stdout
    issue = run_cli("issue-key", "--help", env=env, cwd=tmp_path)
    for option in ("--mode", "--org", "--app", "--expires-in-days", "--expires-at", "--hashed"):
        assert option in issue.stdout
    assert not (tmp_path / "data" / "capgo.db").exists()
