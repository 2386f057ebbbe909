"""(stub, to be written) The Supabase RPCs the official CLI calls (plan §1.2)."""

from __future__ import annotations

from capgo_server.cli_compat.postgrest.context import RpcHandler

#: Handlers by function name; anything else answers 404 ``PGRST202``.
RPCS: dict[str, RpcHandler] = {}
