"""Who may read statistics (spec §3.3): keys of mode all or read, the caller's own apps and
organizations, narrowed by key limits; bad ranges are 400 ``invalid_body``. Unknown and foreign
resources get the same answer."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import Account, error_of, expire_key, make_key
from tests.statistics.support import APP_ID, create_app, stats

RANGE = {"from": "2026-06-01", "to": "2026-06-03"}
BOB_APP = "com.bob.app"


@pytest.fixture
async def apps(client: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    await create_app(client, alice)
    await create_app(client, bob, BOB_APP)


def routes(account: Account) -> list[str]:
    return [
        f"/app/{APP_ID}",
        f"/app/{APP_ID}/bundle_usage",
        f"/org/{account.org_id}",
        "/user",
    ]


@pytest.mark.usefixtures("apps")
class TestKeys:
    async def test_no_key_is_refused_as_capgo_does(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        for path in routes(alice):
            response = await stats(client, path, {}, **RANGE)
            assert error_of(response) == (401, "no_jwt_apikey_or_subkey"), path

    @pytest.mark.parametrize("mode", ["write", "upload"])
    async def test_write_and_upload_keys_are_refused(
        self, client: httpx.AsyncClient, alice: Account, mode: str
    ) -> None:
        key = await make_key(client, alice, mode=mode)
        for path in routes(alice):
            response = await stats(client, path, {"authorization": key["key"]}, **RANGE)
            assert error_of(response) == (401, "invalid_apikey"), path

    @pytest.mark.parametrize("mode", ["read", "all"])
    async def test_read_and_all_keys_are_served(
        self, client: httpx.AsyncClient, alice: Account, mode: str
    ) -> None:
        key = await make_key(client, alice, mode=mode)
        for path in routes(alice):
            response = await stats(client, path, {"authorization": key["key"]}, **RANGE)
            assert response.status_code == 200, (path, response.text)

    async def test_an_expired_key_is_refused(
        self, app: FastAPI, client: httpx.AsyncClient, alice: Account
    ) -> None:
        key = await make_key(client, alice, mode="read")
        await expire_key(app, key["id"])
        for path in routes(alice):
            response = await stats(client, path, {"authorization": key["key"]}, **RANGE)
            assert error_of(response) == (401, "invalid_apikey"), path


@pytest.mark.usefixtures("apps")
class TestApps:
    @pytest.mark.parametrize("suffix", ["", "/bundle_usage"])
    async def test_foreign_and_unknown_apps_get_the_same_answer(
        self, client: httpx.AsyncClient, alice: Account, suffix: str
    ) -> None:
        for app_id in (BOB_APP, "com.nobody.app"):
            response = await stats(client, f"/app/{app_id}{suffix}", alice.headers, **RANGE)
            assert response.status_code == 401
            assert response.json() == {
                "error": "no_access_to_app",
                "message": "No access to app with this apikey",
                "moreInfo": {"app_id": app_id},
            }

    async def test_access_is_checked_before_the_range(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        """Capgo's own test: a foreign app with a nonsense range is 401, not 400."""
        response = await stats(client, f"/app/{BOB_APP}", alice.headers, **{"from": "2"})
        assert error_of(response) == (401, "no_access_to_app")

    async def test_a_key_limited_to_another_app_is_refused(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await create_app(client, alice, "com.stats.other")
        key = await make_key(client, alice, mode="read", limited_to_apps=["com.stats.other"])
        response = await stats(client, f"/app/{APP_ID}", {"authorization": key["key"]}, **RANGE)
        assert error_of(response) == (401, "no_access_to_app")


@pytest.mark.usefixtures("apps")
class TestOrganizations:
    @pytest.mark.parametrize("kind", ["foreign", "unknown", "not a uuid"])
    async def test_foreign_unknown_and_malformed_orgs_get_the_same_answer(
        self, client: httpx.AsyncClient, alice: Account, bob: Account, kind: str
    ) -> None:
        org_id = {"foreign": bob.org_id, "unknown": str(uuid.uuid4()), "not a uuid": "org-1"}[kind]
        response = await stats(client, f"/org/{org_id}", alice.headers, **RANGE)
        assert response.status_code == 401
        assert response.json() == {
            "error": "no_access_to_organization",
            "message": "No access to organization",
            "moreInfo": {"org_id": org_id},
        }

    async def test_a_pending_invitation_grants_nothing(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        invite = {"orgId": alice.org_id, "email": bob.email, "invite_type": "read"}
        response = await client.post("/organization/members", json=invite, headers=alice.headers)
        assert response.status_code == 200, response.text
        response = await stats(client, f"/org/{alice.org_id}", bob.headers, **RANGE)
        assert error_of(response) == (401, "no_access_to_organization")

    async def test_an_app_limited_key_may_not_read_organization_totals(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        key = await make_key(client, alice, mode="read", limited_to_apps=[APP_ID])
        response = await stats(
            client, f"/org/{alice.org_id}", {"authorization": key["key"]}, **RANGE
        )
        assert error_of(response) == (401, "invalid_apikey")

    async def test_a_key_limited_to_another_org_is_refused(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await client.post("/organization", json={"name": "Other"}, headers=alice.headers)
        other_org = response.json()["id"]
        key = await make_key(client, alice, mode="read", limited_to_orgs=[other_org])
        response = await stats(
            client, f"/org/{alice.org_id}", {"authorization": key["key"]}, **RANGE
        )
        assert error_of(response) == (401, "invalid_apikey")
        response = await stats(client, f"/org/{other_org}", {"authorization": key["key"]}, **RANGE)
        assert response.status_code == 200, response.text


class TestUser:
    async def test_a_user_without_organizations_is_told_so(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        response = await client.request(
            "DELETE", "/organization", params={"orgId": alice.org_id}, headers=alice.headers
        )
        assert response.status_code == 200, response.text
        response = await stats(client, "/user", alice.headers, **RANGE)
        assert response.status_code == 401
        assert response.json() == {
            "error": "no_organizations_found",
            "message": "No organizations found",
            "moreInfo": {},
        }


@pytest.mark.usefixtures("apps")
class TestRange:
    @pytest.mark.parametrize(
        ("query", "problem"),
        [
            ({"to": "2026-06-03"}, "from"),
            ({"from": "2026-06-01"}, "to"),
            ({"from": "yesterday", "to": "2026-06-03"}, "from"),
            ({"from": "2026-06-01", "to": "2026-13-01"}, "to"),
            ({"from": "2026-06-03", "to": "2026-06-01"}, "`from` must not be after `to`"),
            ({"from": "2000-01-01", "to": "2026-06-01"}, "at most 3660 days"),
            ({**RANGE, "graph": "pie"}, "graph"),
        ],
    )
    async def test_a_bad_range_is_invalid_body(
        self, client: httpx.AsyncClient, alice: Account, query: dict[str, str], problem: str
    ) -> None:
        for path in (f"/app/{APP_ID}", f"/org/{alice.org_id}", "/user"):
            response = await stats(client, path, alice.headers, **query)
            assert error_of(response) == (400, "invalid_body"), (path, response.text)
            assert problem in response.text

    async def test_timestamps_name_their_utc_day(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        query = {"from": "2026-06-01T23:30:00-02:00", "to": "2026-06-03T10:00:00.000Z"}
        response = await stats(client, f"/app/{APP_ID}", alice.headers, **query)
        assert response.status_code == 200, response.text
        assert [point["date"] for point in response.json()] == [
            "2026-06-02T00:00:00.000Z",
            "2026-06-03T00:00:00.000Z",
        ]

    async def test_days_after_today_are_left_out(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        query = {"from": "2999-01-01", "to": "2999-01-31"}
        response = await stats(client, f"/app/{APP_ID}", alice.headers, **query)
        assert response.status_code == 200, response.text
        assert response.json() == []
        response = await stats(client, f"/app/{APP_ID}/bundle_usage", alice.headers, **query)
        assert response.json() == {"labels": [], "datasets": []}
