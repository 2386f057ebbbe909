"""Response shapes of ``/apikey``. Inputs are checked field by field in the service, because
Capgo answers each bad field with its own error code."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from capgo_server.schema_types import JsDatetime, OrgIdText

Mode = Literal["read", "upload", "write", "all"]


class ApiKeyOut(BaseModel):
    """An API key row as Capgo returns it: ``key`` is the plain value for plain keys and
    ``null`` for hashed ones (whose value is shown once, when created)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: JsDatetime
    updated_at: JsDatetime
    user_id: str
    key: str | None
    key_hash: str | None
    mode: Mode
    name: str
    limited_to_orgs: list[str]
    limited_to_apps: list[str]
    expires_at: JsDatetime | None


class ApiKeyCreateDoc(BaseModel):
    """The body of ``POST /apikey`` (documentation; see the service for each field's code)."""

    name: str
    mode: Mode = "all"
    limited_to_orgs: list[OrgIdText] = Field(default_factory=list)
    limited_to_apps: list[str] = Field(default_factory=list)
    org_id: OrgIdText | None = Field(
        default=None, description="Limit the key to this organization."
    )
    app_id: str | None = Field(default=None, description="The app's uuid (`apps.id`).")
    expires_at: str | None = Field(default=None, description="ISO 8601; null never expires.")
    hashed: bool = Field(default=False, description="Store only a SHA-256 of the key.")


class ApiKeyUpdateDoc(BaseModel):
    """The body of ``PUT /apikey/:id``; empty lists leave limits unchanged (as Capgo)."""

    name: str | None = None
    mode: Mode | None = None
    limited_to_orgs: list[str] | None = None
    limited_to_apps: list[str] | None = None
    expires_at: str | None = None


class ApiKeyDeleted(BaseModel):
    success: bool = True
    status: str = "ok"


def key_out(key: Any, plain_value: str | None = None) -> ApiKeyOut:
    """The API view of a key row; ``plain_value`` shows a new hashed key's value once."""
    out = ApiKeyOut.model_validate(key)
    if plain_value is not None:
        out.key = plain_value
    return out
