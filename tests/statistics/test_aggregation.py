"""``/statistics/org/:org_id`` (with ``breakdown``) and ``/statistics/user``: sums over apps and
organizations, narrowed by the key's limits."""

from __future__ import annotations

import httpx

from tests.conftest import Account, create_org, make_key
from tests.statistics.support import (
    DEVICE_A,
    DEVICE_B,
    DEVICE_C,
    check_for_update,
    column,
    create_app,
    june,
    on,
    point_date,
    points,
    stats,
    upload,
)

FIRST_APP = "com.stats.first"
SECOND_APP = "com.stats.second"
OTHER_ORG_APP = "com.stats.other"
BOB_APP = "com.stats.bob"
RANGE = {"from": "2026-06-01", "to": "2026-06-03"}


async def _two_orgs_of_activity(client: httpx.AsyncClient, alice: Account, bob: Account) -> str:
    """Alice: two apps in her org, one in a second org; Bob: one app. Returns the second org.

    June 1: first app A, B; second app A (another app's device with the same id counts again);
    other-org app C. June 2: first app C. Bob's app: three devices every day.
    Storage: one bundle in the second app (uploaded June 2).
    """
    second_org = await create_org(client, alice, "Second org")
    await create_app(client, alice, FIRST_APP)
    await create_app(client, alice, SECOND_APP)
    await create_app(client, alice, OTHER_ORG_APP, org_id=second_org)
    await create_app(client, bob, BOB_APP)
    with on(june(1)):
        for device in (DEVICE_A, DEVICE_B):
            await check_for_update(client, device, FIRST_APP)
        await check_for_update(client, DEVICE_A, SECOND_APP)
        await check_for_update(client, DEVICE_C, OTHER_ORG_APP)
    with on(june(2)):
        await check_for_update(client, DEVICE_C, FIRST_APP)
        await upload(client, alice, "1.0.0", SECOND_APP)
    for day in (1, 2, 3):
        with on(june(day)):
            for device in (DEVICE_A, DEVICE_B, DEVICE_C):
                await check_for_update(client, device, BOB_APP)
    return second_org


class TestOrganization:
    async def test_sums_the_apps_of_the_organization(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        await _two_orgs_of_activity(client, alice, bob)
        with on(june(3)):
            body = await points(client, f"/org/{alice.org_id}", alice, june(1), june(3))
            first_app = await points(client, f"/app/{FIRST_APP}", alice, june(1), june(3))
            second_app = await points(client, f"/app/{SECOND_APP}", alice, june(1), june(3))

        assert column(first_app, "mau") == [2, 3, 3]
        assert column(second_app, "mau") == [1, 1, 1]
        assert column(body, "mau") == [3, 4, 4]
        size = column(second_app, "storage")[1]
        assert size > 0
        assert column(body, "storage") == [0, size, size]

    async def test_breakdown_adds_each_apps_points(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        await _two_orgs_of_activity(client, alice, bob)
        with on(june(3)):
            response = await stats(
                client, f"/org/{alice.org_id}", alice.headers, breakdown="true", **RANGE
            )

        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"global", "byApp"}
        assert column(body["global"], "mau") == [3, 4, 4]
        by_app = {(p["app_id"], p["date"]): p["mau"] for p in body["byApp"]}
        days = [point_date(june(n)) for n in (1, 2, 3)]
        assert by_app == {
            **{(FIRST_APP, day): mau for day, mau in zip(days, [2, 3, 3], strict=True)},
            **{(SECOND_APP, day): 1 for day in days},
        }

    async def test_breakdown_false_is_the_plain_list(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        await _two_orgs_of_activity(client, alice, bob)
        with on(june(3)):
            response = await stats(
                client, f"/org/{alice.org_id}", alice.headers, breakdown="false", **RANGE
            )
        assert response.status_code == 200, response.text
        assert column(response.json(), "mau") == [3, 4, 4]


class TestUser:
    async def test_sums_every_organization_of_the_user_and_nobody_elses(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        await _two_orgs_of_activity(client, alice, bob)
        with on(june(3)):
            body = await points(client, "/user", alice, june(1), june(3))
            bobs = await points(client, "/user", bob, june(1), june(3))

        # first app 2, 3, 3 + second app 1, 1, 1 + other org's app 1, 1, 1
        assert column(body, "mau") == [4, 5, 5]
        assert column(bobs, "mau") == [3, 3, 3]
        assert column(bobs, "storage") == [0, 0, 0]

    async def test_an_org_limited_key_sums_only_its_organizations(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        second_org = await _two_orgs_of_activity(client, alice, bob)
        key = await make_key(client, alice, mode="read", limited_to_orgs=[second_org])
        with on(june(3)):
            response = await stats(client, "/user", {"authorization": key["key"]}, **RANGE)
        assert response.status_code == 200, response.text
        assert column(response.json(), "mau") == [1, 1, 1]

    async def test_an_app_limited_key_sums_only_its_apps(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        await _two_orgs_of_activity(client, alice, bob)
        key = await make_key(client, alice, mode="read", limited_to_apps=[FIRST_APP])
        with on(june(3)):
            response = await stats(client, "/user", {"authorization": key["key"]}, **RANGE)
        assert response.status_code == 200, response.text
        assert column(response.json(), "mau") == [2, 3, 3]

    async def test_a_sub_key_narrows_the_calling_key(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        await _two_orgs_of_activity(client, alice, bob)
        subkey = await make_key(client, alice, mode="read", limited_to_apps=[SECOND_APP])
        headers = {**alice.headers, "x-limited-key-id": str(subkey["id"])}
        with on(june(3)):
            user = await stats(client, "/user", headers, **RANGE)
            app = await stats(client, f"/app/{SECOND_APP}", headers, **RANGE)
            other_app = await stats(client, f"/app/{FIRST_APP}", headers, **RANGE)
        assert user.status_code == 200, user.text
        assert column(user.json(), "mau") == [1, 1, 1]
        assert app.status_code == 200, app.text
        assert column(app.json(), "mau") == [1, 1, 1]
        assert other_app.status_code == 401
        assert other_app.json()["error"] == "no_access_to_app"
