"""Small helpers shared by the authentication and ``/apikey`` tests."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.conftest import Account, create_org, expire_key, in_days, make_key  # noqa: F401  (re-exported)

#: JavaScript's ``toISOString()`` shape, the timestamp format of every response.
JS_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
KEY_FIELDS = {
    "id",
    "created_at",
    "updated_at",
    "user_id",
    "key",
    "key_hash",
    "mode",
    "name",
    "limited_to_orgs",
    "limited_to_apps",
    "expires_at",
}


def iso(moment: datetime) -> str:
    """``moment`` as the API renders it (millisecond precision, ``Z``)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def is_uuid(value: object) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def auth(key: str, subkey_id: int | str | None = None) -> dict[str, str]:
    """Headers presenting ``key`` (and optionally a sub-key id)."""
    headers = {"authorization": key}
    if subkey_id is not None:
        headers["x-limited-key-id"] = str(subkey_id)
    return headers


async def set_org_policy(
    client: httpx.AsyncClient, owner: Account, org_id: str, **policy: Any
) -> None:
    """Set API-key policies of an org through ``PUT /organization``."""
    response = await client.put(
        "/organization", json={"orgId": org_id, **policy}, headers=owner.headers
    )
    assert response.status_code == 200, response.text


async def key_limited_to_org(
    client: httpx.AsyncClient, owner: Account, org_id: str, **fields: Any
) -> dict[str, Any]:
    """A key of ``owner`` limited to ``org_id`` (mode ``all`` unless given)."""
    return await make_key(client, owner, name="org limited", limited_to_orgs=[org_id], **fields)


async def org_ids(client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    """Ids of the organizations ``GET /organization`` lists for these headers."""
    response = await client.get("/organization", headers=headers)
    assert response.status_code == 200, response.text
    return [org["id"] for org in response.json()]
