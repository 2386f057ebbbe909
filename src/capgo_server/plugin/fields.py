"""How long each string a device sends may be: one table for ``/updates``, ``/stats`` and
``/channel_self``.

The device endpoints are unauthenticated, and what they accept ends up in the device row, the
event log and the worker's recorder. A value longer than its column would grow the database
without bound (SQLite does not enforce ``VARCHAR`` widths) or, on PostgreSQL, fail the batched
write of every other device's records with it. So a body naming any field of
:data:`DEVICE_FIELD_LIMITS` with a longer string is refused whole, before anything is parsed,
cached or recorded: 400 ``invalid_json_body`` (``invalid_query_parameters`` for query-string
input), ``"Cannot parse body"``, with the field in ``moreInfo.parseResult`` — the answer a body
that fails the plugin schema gets (spec §5.2; Capgo's own schema caps ``device_id`` and
``key_id`` the same way).

The widths are read from the models, so a column and its limit cannot drift apart. Fields a
device sends that are never stored (``version_code``, ``install_source``, ``metadata``...) are
bounded by the request body limit (``CAPGO_MAX_BODY_BYTES``) only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import InstrumentedAttribute

from capgo_server.errors import ApiError
from capgo_server.models import App, Channel, Device, StatsEvent

#: A device id is a UUID (spec §1.4); its columns are wider.
DEVICE_ID_LENGTH = 36


def column_width(column: InstrumentedAttribute[Any]) -> int:
    """The declared length of a ``String(n)`` column."""
    length = getattr(column.property.columns[0].type, "length", None)
    if not isinstance(length, int):
        raise TypeError(f"{column} has no declared length")
    return length


#: field of a device body -> the longest string accepted, and the column it is bounded by.
#: ``version_name`` (and ``old_version_name``) may be a composite ``<version>:<file>`` name,
#: logged verbatim; the device row keeps its first :data:`DEVICE_VERSION_NAME_LENGTH`.
DEVICE_FIELD_LIMITS: Mapping[str, int] = {
    "app_id": column_width(App.app_id),
    "device_id": DEVICE_ID_LENGTH,
    "platform": column_width(Device.platform),
    "plugin_version": column_width(Device.plugin_version),
    "version_os": column_width(Device.os_version),
    "version_build": column_width(Device.version_build),
    "version_name": column_width(StatsEvent.version_name),
    "old_version_name": column_width(StatsEvent.version_name),
    "custom_id": column_width(Device.custom_id),
    "defaultChannel": column_width(Device.default_channel),
    "key_id": column_width(Device.key_id),
    "channel": column_width(Channel.name),
}
#: The device row's ``version_name`` width.
DEVICE_VERSION_NAME_LENGTH = column_width(Device.version_name)


def device_version_name(version_name: str) -> str:
    """What the device row keeps of a (possibly composite) ``version_name``."""
    return version_name[:DEVICE_VERSION_NAME_LENGTH]


def oversized_fields(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``parseResult`` entries of the fields of ``body`` longer than their limit."""
    return [
        {"loc": [name], "msg": f"String should have at most {limit} characters"}
        for name, limit in DEVICE_FIELD_LIMITS.items()
        if isinstance(value := body.get(name), str) and len(value) > limit
    ]


def refuse_oversized(body: Mapping[str, Any], *, query: bool = False) -> None:
    """400 ``invalid_json_body`` (``invalid_query_parameters``) when a field is too long."""
    problems = oversized_fields(body)
    if problems:
        code = "invalid_query_parameters" if query else "invalid_json_body"
        raise ApiError(400, code, "Cannot parse body", {"parseResult": problems})
