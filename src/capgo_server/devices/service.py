"""Rules for ``/device``: reading devices and pinning them to channels (spec §3.5).

Devices themselves are created by the device protocol and never deleted here; the public API
only reads them and manages their channel overrides (``channel_devices``). ``apps.
channel_device_count`` always equals the app's number of overrides: it changes in the same
transaction as the override, by an in-place increment so concurrent requests cannot lose one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from capgo_server.auth.access import authorize_app, cannot_access_app
from capgo_server.auth.principal import WRITE_MODES, Principal
from capgo_server.auth.roles import Role
from capgo_server.clock import parse_utc_timestamp
from capgo_server.devices.overrides import pin_override, remove_override
from capgo_server.devices.schemas import DeviceOut, DevicePage
from capgo_server.errors import ApiError, invalid_body
from capgo_server.integers import parse_int
from capgo_server.models import Bundle, Channel, ChannelOverride, Device
from capgo_server.validation import checked_app_id

DEFAULT_LIMIT = 50
#: Larger ``limit`` values are served as this many rows (the cursor carries on from there).
MAX_LIMIT = 100
#: The ``device_id`` column's width; the id's format is otherwise free (spec §3.5).
MAX_DEVICE_ID_LENGTH = 64

CURSOR_SEPARATOR = "|"


# --- reading -------------------------------------------------------------------------------


def _devices_of(app_id: str) -> Select[Device, int, str]:
    """Devices of the app with the id of the bundle they run (by name) and their override."""
    return (
        select(Device, Bundle.id, Channel.name)
        .outerjoin(Bundle, and_(Bundle.app_id == Device.app_id, Bundle.name == Device.version_name))
        .outerjoin(
            ChannelOverride,
            and_(
                ChannelOverride.app_id == Device.app_id,
                ChannelOverride.device_id == Device.device_id,
            ),
        )
        .outerjoin(Channel, Channel.id == ChannelOverride.channel_id)
        .where(Device.app_id == app_id)
    )


def _out(row: Row[Device, int, str]) -> DeviceOut:
    # Outer joins: the bundle id and the channel name may be NULL.
    device, bundle_id, channel_name = row[0], row[1], row[2]
    fields: dict[str, Any] = {
        "updated_at": device.updated_at,
        "device_id": device.device_id,
        "custom_id": device.custom_id,
        "is_prod": device.is_prod,
        "is_emulator": device.is_emulator,
        "version_name": device.version_name,
        "version": bundle_id,
        "app_id": device.app_id,
        "platform": device.platform,
        "plugin_version": device.plugin_version,
        "os_version": device.os_version,
        "version_build": device.version_build,
        "key_id": device.key_id,
    }
    if channel_name is not None:
        fields["channel"] = channel_name
    return DeviceOut(**fields)


async def get_device(
    session: AsyncSession, principal: Principal, app_id: str, device_id: str
) -> DeviceOut:
    """One device of the app; 400 ``cannot_access_app`` without ``read``, 404
    ``device_not_found`` when the app has no such device."""
    await authorize_app(
        session, principal, app_id, role=Role.read, denied=cannot_access_app(app_id)
    )
    row = (await session.execute(_devices_of(app_id).where(Device.device_id == device_id))).first()
    if row is None:
        raise ApiError(404, "device_not_found", "Cannot find device", {"device_id": device_id})
    return _out(row)


def parse_limit(value: object) -> int:
    """``limit``: 50 when absent, at most 100; anything but a positive integer is 400
    ``invalid_limit``."""
    if value is None or value == "":
        return DEFAULT_LIMIT
    number = parse_int(value, minimum=1)
    if number is None:
        raise ApiError(400, "invalid_limit", "limit must be a positive integer", {"limit": value})
    return min(number, MAX_LIMIT)


def make_cursor(device: Device) -> str:
    """``<updated_at>|<device_id>`` of the last device of a page. The timestamp keeps its
    microseconds: a coarser one would skip devices updated within the same millisecond."""
    moment = device.updated_at.astimezone(UTC).isoformat(timespec="microseconds")
    return f"{moment.replace('+00:00', 'Z')}{CURSOR_SEPARATOR}{device.device_id}"


def parse_cursor(value: object) -> tuple[datetime, str]:
    """The position a cursor names, or 400 ``invalid_cursor``."""
    invalid = ApiError(400, "invalid_cursor", "Invalid cursor", {"cursor": value})
    if not isinstance(value, str):
        raise invalid
    moment, separator, device_id = value.partition(CURSOR_SEPARATOR)
    if not separator or not device_id:
        raise invalid
    try:
        updated_at = parse_utc_timestamp(moment)
    except ValueError as exc:
        raise invalid from exc
    return updated_at, device_id


async def list_devices(
    session: AsyncSession,
    principal: Principal,
    app_id: str,
    *,
    custom_id_only: bool,
    cursor: tuple[datetime, str] | None,
    limit: int,
) -> DevicePage:
    """A page of the app's devices, ``updated_at`` DESC then ``device_id`` ASC, starting after
    ``cursor``; ``custom_id_only`` keeps devices with a non-empty ``custom_id``."""
    await authorize_app(
        session, principal, app_id, role=Role.read, denied=cannot_access_app(app_id)
    )
    query = _devices_of(app_id)
    if custom_id_only:
        query = query.where(Device.custom_id.is_not(None), Device.custom_id != "")
    if cursor is not None:
        updated_at, device_id = cursor
        query = query.where(
            or_(
                Device.updated_at < updated_at,
                and_(Device.updated_at == updated_at, Device.device_id > device_id),
            )
        )
    query = query.order_by(Device.updated_at.desc(), Device.device_id.asc()).limit(limit + 1)
    rows = (await session.execute(query)).all()
    page = rows[:limit]
    has_more = len(rows) > limit
    result = DevicePage(data=[_out(row) for row in page], hasMore=has_more)
    if has_more:
        result.nextCursor = make_cursor(page[-1][0])
    return result


# --- channel overrides ---------------------------------------------------------------------


def checked_device_id(value: object) -> str:
    """A device id given as a string of at most 64 characters, else 400 ``invalid_device_id``."""
    if not isinstance(value, str) or len(value) > MAX_DEVICE_ID_LENGTH:
        raise ApiError(
            400,
            "invalid_device_id",
            f"device_id must be a string of at most {MAX_DEVICE_ID_LENGTH} characters",
            {"device_id": value},
        )
    return value


def _channel_reference(data: dict[str, Any]) -> tuple[str | int, bool]:
    """The channel a ``POST /device`` names, and whether it may be a channel id (only the legacy
    ``channel_id`` may). 400 ``missing_channel`` when none is given."""
    value, legacy = data.get("channel"), False
    if value is None or value == "":
        value, legacy = data.get("channel_id"), True
    if value is None or value == "":
        raise ApiError(400, "missing_channel", "You must provide a channel")
    if isinstance(value, str) or (
        legacy and isinstance(value, int) and not isinstance(value, bool)
    ):
        return value, legacy
    raise invalid_body([{"loc": ["channel"], "msg": "must be a channel name", "type": "string"}])


async def _find_channel(
    session: AsyncSession, app_id: str, reference: str | int, by_id: bool
) -> Channel | None:
    """The app's channel named ``reference``; with ``by_id``, a number (or a string of digits
    naming no channel) is taken as a channel id of the app."""
    if isinstance(reference, str):
        channel = await session.scalar(
            select(Channel).where(Channel.app_id == app_id, Channel.name == reference)
        )
        if channel is not None or not (by_id and reference.isascii() and reference.isdigit()):
            return channel
    channel_id = parse_int(reference, minimum=1)
    if channel_id is None:
        return None
    return await session.scalar(
        select(Channel).where(Channel.app_id == app_id, Channel.id == channel_id)
    )


async def set_override(session: AsyncSession, principal: Principal, data: dict[str, Any]) -> None:
    """Pin a device to a channel of its app (``POST /device``), creating or moving its override.

    Codes in order: 400 ``missing_device_id_or_app_id``, ``invalid_app_id``,
    ``invalid_device_id``, ``cannot_access_app`` (below ``write``), ``invalid_version_id``
    (devices follow channels, never a version), ``missing_channel``; 404 ``channel_not_found``;
    400 ``public_channel_override`` (a public channel serves every device already).
    """
    app_id_value, device_id_value = data.get("app_id"), data.get("device_id")
    if not app_id_value or not device_id_value:
        raise ApiError(
            400, "missing_device_id_or_app_id", "Missing device_id or app_id", {"body": data}
        )
    app_id = checked_app_id(app_id_value)
    device_id = checked_device_id(device_id_value)
    access = await authorize_app(
        session,
        principal,
        app_id,
        role=Role.write,
        modes=WRITE_MODES,
        denied=cannot_access_app(app_id),
    )
    if data.get("version_id"):
        raise ApiError(
            400, "invalid_version_id", "Cannot set version to device, use channel instead"
        )
    reference, by_id = _channel_reference(data)
    channel = await _find_channel(session, app_id, reference, by_id)
    if channel is None:
        raise ApiError(404, "channel_not_found", "Cannot find channel", {"channel": reference})
    if channel.public:
        raise ApiError(
            400, "public_channel_override", "Cannot set channel override for public channel"
        )
    await pin_override(session, access.app, device_id, channel)


async def delete_override(
    session: AsyncSession, principal: Principal, app_id: str, device_id: str
) -> None:
    """Remove a device's channel override (``DELETE /device``); the device stays.

    400 ``cannot_access_app`` below ``write``; 404 ``override_not_found`` when the device has
    no override (never a success for nothing done).
    """
    await authorize_app(
        session,
        principal,
        app_id,
        role=Role.write,
        modes=WRITE_MODES,
        denied=cannot_access_app(app_id),
    )
    removed = await remove_override(session, app_id, device_id)
    if not removed:
        raise ApiError(
            404,
            "override_not_found",
            "This device has no channel override",
            {"device_id": device_id},
        )
