"""Field types shared by the API's pydantic shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, PlainSerializer

from capgo_server.clock import to_js_iso
from capgo_server.validation import (
    APP_ID_RULE,
    DEVICE_ID_RULE,
    MAX_APP_ID_LENGTH,
    SEMVER_RULE,
)

#: A timestamp rendered as JavaScript's ``toISOString()``, the format Capgo's API returns.
JsDatetime = Annotated[datetime, PlainSerializer(to_js_iso, return_type=str)]

#: The largest page number accepted. ``page`` times the page size becomes an SQL ``OFFSET``, a
#: 64-bit integer on PostgreSQL and SQLite: a larger page would fail in the database (500).
MAX_PAGE = 1_000_000

#: A 0-based page number (50 rows a page unless the route says otherwise).
Page = Annotated[int, Field(ge=0, le=MAX_PAGE, description="0-based page number")]

# Documented constraints. Each states, in ``/openapi.json``, a rule the server enforces where
# the field is read (most fields are checked by the services, each with Capgo's own error code,
# so these annotations only describe: they do not validate, and the codes stay Capgo's).


def _documents(examples: list[Any], **schema: Any) -> Any:
    return Field(examples=examples, json_schema_extra=schema)


#: A reverse-domain app id (``validation.is_app_id``: 400 ``invalid_app_id`` otherwise).
AppIdText = Annotated[
    str,
    _documents(["com.example.app"], pattern=f"^{APP_ID_RULE}$", maxLength=MAX_APP_ID_LENGTH),
]
#: A device id of the device protocol: a UUID (``validation.is_device_id``).
DeviceUuid = Annotated[
    str, _documents(["00000000-f022-4000-8000-000000000001"], pattern=f"^{DEVICE_ID_RULE}$")
]
#: A device id of the public API: free text as wide as ``devices.device_id`` (400
#: ``invalid_device_id`` past it).
DeviceIdText = Annotated[
    str, _documents(["00000000-f022-4000-8000-000000000001"], minLength=1, maxLength=64)
]
#: A strict SemVer 2.0 version name (``validation.is_semver``).
SemverText = Annotated[str, _documents(["1.0.0"], pattern=f"^{SEMVER_RULE}$")]
#: An organization id: a UUID (anything else is refused as an organization the key cannot access).
OrgIdText = Annotated[str, _documents(["8f14e45f-ceea-4e7a-9b3b-1c3a3d5c9a11"], format="uuid")]
