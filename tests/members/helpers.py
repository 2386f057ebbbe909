"""Shared helpers for the ``/organization/members`` tests (data is made through the public API)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from tests.conftest import Account, make_account, make_key

MEMBERS = "/organization/members"
ACCEPT = "/organization/members/accept"
RANDOM_ORG = "2b9f6a3e-8f1d-4c1e-9a55-0c3d3f1e7a10"
NO_KEY = {"error": "no_key_provided", "message": "No key provided", "moreInfo": {}}
INVALID_KEY = {"error": "invalid_apikey", "message": "Invalid apikey", "moreInfo": {}}


def headers_of(key: str) -> dict[str, str]:
    return {"authorization": key}


def assert_error(
    response: httpx.Response, status: int, code: str, more_info: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The error envelope ``{"error", "message", "moreInfo"}`` with this status and code."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "message", "moreInfo"}, body
    assert body["error"] == code, body
    assert isinstance(body["message"], str), body
    assert body["message"]
    assert isinstance(body["moreInfo"], dict), body
    if more_info is not None:
        assert body["moreInfo"] == more_info, body
    return body


def assert_cannot_access(response: httpx.Response, org_id: str) -> None:
    body = assert_error(response, 400, "cannot_access_organization", {"orgId": org_id})
    assert body["message"] == "You can't access this organization"


def assert_invite_refused(response: httpx.Response, status: str) -> None:
    assert_error(response, 400, "error_inviting_user_to_organization", {"data": status})


def member(account: Account, role: str) -> dict[str, Any]:
    """The members-list entry of an existing user."""
    return {
        "uid": account.user_id,
        "email": account.email,
        "image_url": "",
        "role": role,
        "is_tmp": False,
    }


async def list_members(
    client: httpx.AsyncClient, org_id: str, headers: dict[str, str]
) -> list[dict[str, Any]]:
    """The members of ``org_id`` as ``headers`` sees them, sorted by e-mail."""
    response = await client.get(MEMBERS, params={"orgId": org_id}, headers=headers)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return sorted(rows, key=lambda row: row["email"])


def expected(*entries: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted(entries, key=lambda row: row["email"])


async def invite(
    client: httpx.AsyncClient,
    inviter: Account | dict[str, str],
    org_id: str,
    email: str,
    role: str,
) -> httpx.Response:
    headers = inviter.headers if isinstance(inviter, Account) else inviter
    return await client.post(
        MEMBERS, json={"orgId": org_id, "email": email, "invite_type": role}, headers=headers
    )


async def accept(client: httpx.AsyncClient, invitee: Account, org_id: str) -> httpx.Response:
    return await client.post(ACCEPT, json={"orgId": org_id}, headers=invitee.headers)


async def add_member(
    client: httpx.AsyncClient, app: FastAPI, owner: Account, email: str, role: str
) -> Account:
    """A new user who was invited to ``owner``'s org as ``role`` and accepted."""
    account = await make_account(app, email)
    response = await invite(client, owner, owner.org_id, email, role)
    assert response.status_code == 200, response.text
    response = await accept(client, account, owner.org_id)
    assert response.status_code == 200, response.text
    return account


async def key_headers(client: httpx.AsyncClient, owner: Account, **fields: Any) -> dict[str, str]:
    """Headers carrying a new key of ``owner`` (``mode``, ``limited_to_orgs``, ...)."""
    created = await make_key(client, owner, **fields)
    return headers_of(created["key"])


async def second_org(client: httpx.AsyncClient, owner: Account, name: str = "Second Org") -> str:
    response = await client.post("/organization", json={"name": name}, headers=owner.headers)
    assert response.status_code == 200, response.text
    org_id: str = response.json()["id"]
    return org_id


async def can_see_org(client: httpx.AsyncClient, account: Account, org_id: str) -> bool:
    """Whether ``org_id`` is in the account's ``GET /organization`` list."""
    response = await client.get("/organization", headers=account.headers)
    assert response.status_code == 200, response.text
    return org_id in {org["id"] for org in response.json()}


async def assert_no_org_access(client: httpx.AsyncClient, account: Account, org_id: str) -> None:
    """The account's key gets nothing from the org: not by id, not in lists, not its members."""
    response = await client.get("/organization", params={"orgId": org_id}, headers=account.headers)
    assert_error(response, 400, "invalid_org_id", {"org_id": org_id})
    assert not await can_see_org(client, account, org_id)
    response = await client.get(MEMBERS, params={"orgId": org_id}, headers=account.headers)
    assert_cannot_access(response, org_id)


async def require_expiring_keys(client: httpx.AsyncClient, owner: Account) -> None:
    """Turn on the owner's org policy ``require_apikey_expiration`` (the owner's key has none)."""
    response = await client.put(
        "/organization",
        headers=owner.headers,
        json={"orgId": owner.org_id, "require_apikey_expiration": True},
    )
    assert response.status_code == 200, response.text


def in_a_week() -> str:
    return (datetime.now(UTC) + timedelta(days=7)).isoformat()
