"""Field types shared by the API's pydantic shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, PlainSerializer

from capgo_server.clock import to_js_iso

#: A timestamp rendered as JavaScript's ``toISOString()``, the format Capgo's API returns.
JsDatetime = Annotated[datetime, PlainSerializer(to_js_iso, return_type=str)]

#: The largest page number accepted. ``page`` times the page size becomes an SQL ``OFFSET``, a
#: 64-bit integer on PostgreSQL and SQLite: a larger page would fail in the database (500).
MAX_PAGE = 1_000_000

#: A 0-based page number (50 rows a page unless the route says otherwise).
Page = Annotated[int, Field(ge=0, le=MAX_PAGE, description="0-based page number")]
