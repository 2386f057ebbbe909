"""``/device`` (spec §3.5): read devices with a key of mode all/write/read, manage their channel
overrides with all/write."""

from __future__ import annotations

from fastapi import Depends, Request
from pydantic import BaseModel

from capgo_server.auth.principal import ReadKey, WriteKey
from capgo_server.db.session import Session
from capgo_server.devices import service
from capgo_server.devices.schemas import (
    DeviceLink,
    DeviceOut,
    DevicePage,
    DeviceQueryDoc,
    DeviceUnlink,
    StatusOk,
)
from capgo_server.errors import ApiError
from capgo_server.openapi import API_ERRORS, error_responses
from capgo_server.parsing import (
    body_or_query,
    documented_body,
    documented_body_or_query,
    documented_query,
    strict_json_body,
    validate,
)
from capgo_server.plugin.limits import (
    device_delete_rate_limit,
    device_get_rate_limit,
    device_post_rate_limit,
)
from capgo_server.routing import router
from capgo_server.validation import checked_app_id, request_app_id

devices_router = router(
    prefix="/device", tags=["devices"], responses=API_ERRORS | error_responses(404)
)


class _ListFlags(BaseModel):
    customIdMode: bool = False


@devices_router.get(
    "",
    response_model=DeviceOut | DevicePage,
    response_model_exclude_unset=True,
    openapi_extra=documented_query(DeviceQueryDoc),
    dependencies=[Depends(device_get_rate_limit)],
)
async def get_devices(
    request: Request, session: Session, principal: ReadKey
) -> DeviceOut | DevicePage:
    """One device (``device_id``), or a cursor-paginated page of the app's devices."""
    data = await body_or_query(request)
    app_id = checked_app_id(request_app_id(data), data)
    device_id = data.get("device_id")
    if device_id:
        return await service.get_device(session, principal, app_id, str(device_id))
    flags = validate(_ListFlags, {k: v for k, v in data.items() if k == "customIdMode"})
    limit = service.parse_limit(data.get("limit"))
    cursor_value = data.get("cursor")
    cursor = None if cursor_value in (None, "") else service.parse_cursor(cursor_value)
    return await service.list_devices(
        session,
        principal,
        app_id,
        custom_id_only=flags.customIdMode,
        cursor=cursor,
        limit=limit,
    )


@devices_router.post(
    "",
    response_model=StatusOk,
    openapi_extra=documented_body(DeviceLink),
    dependencies=[Depends(device_post_rate_limit)],
)
async def link_device(request: Request, session: Session, principal: WriteKey) -> StatusOk:
    """Pin a device to a channel (a private one: public channels serve every device)."""
    await service.set_override(session, principal, await strict_json_body(request))
    return StatusOk()


@devices_router.delete(
    "",
    response_model=StatusOk,
    openapi_extra=documented_body_or_query(DeviceUnlink),
    dependencies=[Depends(device_delete_rate_limit)],
)
async def unlink_device(request: Request, session: Session, principal: WriteKey) -> StatusOk:
    """Remove a device's channel override. The device itself is never deleted."""
    data = await body_or_query(request)
    app_id = checked_app_id(request_app_id(data), data)
    device_id = data.get("device_id")
    if not device_id:
        raise ApiError(
            400, "missing_device_id_or_app_id", "Missing device_id or app_id", {"body": data}
        )
    if not isinstance(device_id, str):
        device_id = service.checked_device_id(device_id)
    await service.delete_override(session, principal, app_id, device_id)
    return StatusOk()
