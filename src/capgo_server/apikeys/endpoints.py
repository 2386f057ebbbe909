"""``/apikey`` (spec §3.2): the calling user's API keys. Requires a key of mode ``all``."""

from __future__ import annotations

from fastapi import Request

from capgo_server.apikeys import service
from capgo_server.apikeys.schemas import (
    ApiKeyCreateDoc,
    ApiKeyDeleted,
    ApiKeyOut,
    ApiKeyUpdateDoc,
    key_out,
)
from capgo_server.auth.principal import AllModeKey
from capgo_server.db.session import Session
from capgo_server.openapi import API_ERRORS, error_responses
from capgo_server.parsing import documented_body, strict_json_body
from capgo_server.routing import router

apikey_router = router(
    prefix="/apikey", tags=["apikeys"], responses=API_ERRORS | error_responses(404)
)


@apikey_router.get("", response_model=list[ApiKeyOut])
async def list_keys(session: Session, principal: AllModeKey) -> list[ApiKeyOut]:
    """Every API key of the calling user, oldest first."""
    return [key_out(key) for key in await service.list_keys(session, principal)]


@apikey_router.get("/{key_id}", response_model=ApiKeyOut)
async def get_key(key_id: str, session: Session, principal: AllModeKey) -> ApiKeyOut:
    """One key, by numeric id or by value."""
    return key_out(await service.get_key(session, principal, key_id))


@apikey_router.post("", response_model=ApiKeyOut, openapi_extra=documented_body(ApiKeyCreateDoc))
async def create_key(request: Request, session: Session, principal: AllModeKey) -> ApiKeyOut:
    """Create a key. A hashed key's value is in this response only."""
    key, plain = await service.create_key(session, principal, await strict_json_body(request))
    return key_out(key, plain_value=plain)


@apikey_router.put(
    "/{key_id}", response_model=ApiKeyOut, openapi_extra=documented_body(ApiKeyUpdateDoc)
)
async def update_key(
    key_id: str, request: Request, session: Session, principal: AllModeKey
) -> ApiKeyOut:
    """Rename a key, change its mode, limits or expiry (``expires_at: null`` removes it)."""
    body = await strict_json_body(request)
    return key_out(await service.update_key(session, principal, key_id, body))


@apikey_router.delete("/{key_id}", response_model=ApiKeyDeleted)
async def delete_key(key_id: str, session: Session, principal: AllModeKey) -> ApiKeyDeleted:
    """Delete a key; it stops working at once."""
    await service.delete_key(session, principal, key_id)
    return ApiKeyDeleted()
