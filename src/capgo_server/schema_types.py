"""Field types shared by the API's pydantic shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import PlainSerializer

from capgo_server.clock import to_js_iso

#: A timestamp rendered as JavaScript's ``toISOString()``, the format Capgo's API returns.
JsDatetime = Annotated[datetime, PlainSerializer(to_js_iso, return_type=str)]
