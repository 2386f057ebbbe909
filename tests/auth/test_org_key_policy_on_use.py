"""An organization's API-key policies apply to the key presented on the wire, at every use.

House decision: a key is usable in an organization only if it could be created for that
organization now (spec §2.4 applied at use): with ``require_apikey_expiration`` it must expire,
and with ``max_apikey_expiration_days`` = N its expiry must be at most N days from now. A sub-key
(``x-limited-key-id``) is not a credential: its expiry neither satisfies nor breaks the policy.
Refusal: Capgo's 401 ``org_requires_expiring_key`` (spec §3.1).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from capgo_server.clock import frozen_at
from tests.apps.helpers import create_app
from tests.auth.helpers import auth, in_days, key_limited_to_org, set_org_policy
from tests.conftest import Account, error_of, make_key

YEAR_9999 = "9999-12-31T00:00:00.000Z"


def assert_requires_expiring_key(response: httpx.Response, org_id: str) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert set(body) == {"error", "message", "moreInfo"}, body
    assert body["error"] == "org_requires_expiring_key", body
    assert body["moreInfo"]["org_id"] == org_id, body


async def get_org(
    client: httpx.AsyncClient, org_id: str, headers: dict[str, str]
) -> httpx.Response:
    return await client.get("/organization", params={"orgId": org_id}, headers=headers)


class TestExpiringSubKeyDoesNotCoverTheKey:
    async def test_org_route(self, client: httpx.AsyncClient, alice: Account) -> None:
        await set_org_policy(client, alice, alice.org_id, require_apikey_expiration=True)
        # Made with Alice's own key after the policy: its owner key no longer works in the org,
        # but key management is not "in" the org.
        sub = await key_limited_to_org(client, alice, alice.org_id, expires_at=in_days(5))
        response = await get_org(client, alice.org_id, auth(alice.key, sub["id"]))
        assert_requires_expiring_key(response, alice.org_id)
        members = await client.get(
            "/organization/members",
            params={"orgId": alice.org_id},
            headers=auth(alice.key, sub["id"]),
        )
        assert_requires_expiring_key(members, alice.org_id)

    async def test_app_route(self, client: httpx.AsyncClient, alice: Account) -> None:
        await create_app(client, alice, "com.example.policy")
        await set_org_policy(client, alice, alice.org_id, require_apikey_expiration=True)
        sub = await make_key(
            client,
            alice,
            name="app sub",
            limited_to_apps=["com.example.policy"],
            expires_at=in_days(5),
        )
        response = await client.get("/app/com.example.policy", headers=auth(alice.key, sub["id"]))
        assert_requires_expiring_key(response, alice.org_id)
        # The expiring key itself, presented on the wire, is accepted.
        allowed = await client.get("/app/com.example.policy", headers=auth(sub["key"]))
        assert allowed.status_code == 200, allowed.text

    async def test_non_expiring_subkey_of_a_compliant_key_is_accepted(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        parent = await make_key(client, alice, name="parent", expires_at=in_days(5))
        sub = await key_limited_to_org(client, alice, alice.org_id)
        await set_org_policy(client, alice, alice.org_id, require_apikey_expiration=True)
        response = await get_org(client, alice.org_id, auth(parent["key"], sub["id"]))
        assert response.status_code == 200, response.text


class TestMaximumExpiry:
    async def test_key_expiring_in_year_9999_is_refused(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        far = await make_key(client, alice, name="far", expires_at=YEAR_9999)
        near = await make_key(client, alice, name="near", expires_at=in_days(20))
        await set_org_policy(
            client,
            alice,
            alice.org_id,
            require_apikey_expiration=True,
            max_apikey_expiration_days=30,
        )
        response = await get_org(client, alice.org_id, auth(far["key"]))
        assert_requires_expiring_key(response, alice.org_id)
        assert response.json()["moreInfo"] == {"org_id": alice.org_id, "max_days": 30}
        assert "30 days" in response.json()["message"]
        allowed = await get_org(client, alice.org_id, auth(near["key"]))
        assert allowed.status_code == 200, allowed.text

    async def test_far_subkey_does_not_matter_but_far_key_does(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        far = await make_key(client, alice, name="far", expires_at=YEAR_9999)
        near_sub = await key_limited_to_org(client, alice, alice.org_id, expires_at=in_days(3))
        await set_org_policy(client, alice, alice.org_id, max_apikey_expiration_days=30)
        response = await get_org(client, alice.org_id, auth(far["key"], near_sub["id"]))
        assert_requires_expiring_key(response, alice.org_id)

    async def test_the_maximum_counts_from_now(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        """A key made for 60 days is refused under a 30-day maximum until 30 days remain."""
        key = await make_key(client, alice, name="sixty", expires_at=in_days(60))
        await set_org_policy(client, alice, alice.org_id, max_apikey_expiration_days=30)
        assert_requires_expiring_key(
            await get_org(client, alice.org_id, auth(key["key"])), alice.org_id
        )
        with frozen_at(datetime.now(UTC) + timedelta(days=31)):
            later = await get_org(client, alice.org_id, auth(key["key"]))
        assert later.status_code == 200, later.text

    async def test_maximum_alone_leaves_non_expiring_keys_as_creation_does(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        """Without ``require_apikey_expiration`` the maximum bounds keys that expire (as at
        creation, spec §2.4); a key that never expires is the org's choice to allow."""
        far = await make_key(client, alice, name="far", expires_at=YEAR_9999)
        await set_org_policy(client, alice, alice.org_id, max_apikey_expiration_days=30)
        assert_requires_expiring_key(
            await get_org(client, alice.org_id, auth(far["key"])), alice.org_id
        )
        allowed = await get_org(client, alice.org_id, alice.headers)
        assert allowed.status_code == 200, allowed.text

    async def test_other_orgs_are_unaffected(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        far = await make_key(client, bob, name="far", expires_at=YEAR_9999)
        await set_org_policy(client, alice, alice.org_id, max_apikey_expiration_days=30)
        response = await get_org(client, bob.org_id, auth(far["key"]))
        assert response.status_code == 200, response.text


class TestKeyChangesRespectTheMaximum:
    async def test_create_limited_key_expiring_in_year_9999(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await set_org_policy(client, alice, alice.org_id, max_apikey_expiration_days=30)
        response = await client.post(
            "/apikey",
            json={"name": "far", "limited_to_orgs": [alice.org_id], "expires_at": YEAR_9999},
            headers=alice.headers,
        )
        assert error_of(response) == (400, "expiration_exceeds_max")

    async def test_update_extending_a_limited_key_beyond_the_maximum(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await set_org_policy(client, alice, alice.org_id, max_apikey_expiration_days=30)
        key = await key_limited_to_org(client, alice, alice.org_id, expires_at=in_days(10))
        response = await client.put(
            f"/apikey/{key['id']}", json={"expires_at": YEAR_9999}, headers=alice.headers
        )
        assert error_of(response) == (400, "expiration_exceeds_max")
        response = await client.put(
            f"/apikey/{key['id']}", json={"expires_at": in_days(29)}, headers=alice.headers
        )
        assert response.status_code == 200, response.text

    async def test_update_limiting_a_far_key_to_the_org(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        await set_org_policy(client, alice, alice.org_id, max_apikey_expiration_days=30)
        far = await make_key(client, alice, name="far", expires_at=YEAR_9999)
        response = await client.put(
            f"/apikey/{far['id']}", json={"limited_to_orgs": [alice.org_id]}, headers=alice.headers
        )
        assert error_of(response) == (400, "expiration_exceeds_max")
