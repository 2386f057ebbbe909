"""(stub, to be written) PostgREST table handlers: see plan §1.3 and shapes.py."""

from __future__ import annotations

from capgo_server.cli_compat.postgrest.context import TableHandler

#: Handlers by shape name ("T1".."T14").
HANDLERS: dict[str, TableHandler] = {}
