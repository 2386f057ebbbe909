"""Small helpers shared by the ``/organization`` tests: everything goes through the public API,
except :func:`expire_key` (the API refuses past expiry dates, so the row is aged directly)."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.conftest import Account, create_org, expire_key, in_days  # noqa: F401  (re-exported)

JS_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
SEED_FIELDS = {
    "id",
    "created_by",
    "created_at",
    "updated_at",
    "logo",
    "name",
    "management_email",
    "customer_id",
}
POLICY_FIELDS = {
    "require_apikey_expiration",
    "max_apikey_expiration_days",
    "enforce_hashed_api_keys",
}
RANDOM_ORG = "8c0e7a3e-2b1f-4d3a-9a51-6f0f2f1c9b77"


def key_headers(key: str) -> dict[str, str]:
    return {"authorization": key}


async def invite(
    client: httpx.AsyncClient, inviter: Account, member: Account, org_id: str, role: str
) -> None:
    """``inviter`` invites ``member`` to ``org_id`` as ``role`` (pending until accepted)."""
    response = await client.post(
        "/organization/members",
        json={"orgId": org_id, "email": member.email, "invite_type": role},
        headers=inviter.headers,
    )
    assert response.status_code == 200, response.text


async def add_member(
    client: httpx.AsyncClient, inviter: Account, member: Account, org_id: str, role: str
) -> None:
    """Invite ``member`` and have them accept with their own key: they then hold ``role``."""
    await invite(client, inviter, member, org_id, role)
    response = await client.post(
        "/organization/members/accept", json={"orgId": org_id}, headers=member.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["role"] == role


async def update_org(
    client: httpx.AsyncClient, owner: Account, org_id: str, **fields: Any
) -> httpx.Response:
    return await client.put(
        "/organization", json={"orgId": org_id, **fields}, headers=owner.headers
    )


async def get_org(
    client: httpx.AsyncClient, headers: dict[str, str], org_id: str
) -> httpx.Response:
    return await client.get("/organization", params={"orgId": org_id}, headers=headers)
