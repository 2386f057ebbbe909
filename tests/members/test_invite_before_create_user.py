"""The README's path, over a real ``serve`` and the real ``create-user`` command: invite an
e-mail that has no user yet, create that user, list their invitations, accept one."""

from __future__ import annotations

from pathlib import Path

from tests.live import live_server
from tests.test_cli import account_of
from tests.warm_cli import run_cli_warm


def test_invitation_waits_for_create_user_which_grants_it(
    database_url: str, tmp_path: Path
) -> None:
    with live_server(database_url, tmp_path) as live:
        with live.http() as owner:
            body = {"orgId": live.org_id, "email": "Dev@Example.com", "invite_type": "write"}
            response = owner.post("/organization/members", json=body)
            assert (response.status_code, response.json()) == (200, {"status": "ok"})
            [waiting] = [
                r
                for r in owner.get(f"/organization/members?orgId={live.org_id}").json()
                if r["is_tmp"]
            ]
            assert (waiting["email"], waiting["role"]) == ("dev@example.com", "invite_write")

        created = account_of(
            run_cli_warm("create-user", "dev@example.com", env=live.env, cwd=live.cwd)
        )
        assert created["invitations"] == [{"org_id": live.org_id, "role": "invite_write"}]

        with live.http(created["apikey"]) as dev:
            response = dev.get("/organization/members/invitations")
            assert response.status_code == 200, response.text
            [listed] = response.json()
            assert (listed["orgId"], listed["role"]) == (live.org_id, "invite_write")
            assert set(listed) == {"orgId", "name", "role", "invited_at"}

            response = dev.post("/organization/members/accept", json={"orgId": live.org_id})
            assert response.status_code == 200, response.text
            assert response.json() == {"status": "ok", "orgId": live.org_id, "role": "write"}
            assert dev.get("/organization/members/invitations").json() == []
            assert live.org_id in {org["id"] for org in dev.get("/organization").json()}
