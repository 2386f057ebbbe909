"""The whitelist: every PostgREST table request the official CLI sends (plan §1.3, T1..T14),
written as the literal sample queries and parsed at import with ``parse.py``, so the whitelist
and the requests share one normal form."""

from __future__ import annotations

from capgo_server.cli_compat.postgrest.parse import Query


def match(query: Query) -> str | None:
    """The shape's name ("T1".."T14") when the query is on the whitelist (its ``single`` and
    ``prefer`` allowed for that shape), else None."""
    raise NotImplementedError
