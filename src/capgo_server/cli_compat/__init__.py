"""Compatibility with the official ``@capgo/cli`` (issue #16), as a layer over the services.

The official CLI talks to Capgo's cloud through three doors besides the public REST API: its
bootstrap (``/private/config``), Supabase's PostgREST (``/rest/v1/{table}`` and
``/rest/v1/rpc/{fn}``) and Supabase functions (``/functions/v1/...``). This package answers
exactly the requests the CLI sends (``shared/spec/capgo-cli-contract.md``), each through the same
authorization and services as the public API, and nothing more: no generic PostgREST engine.
Kept apart from the core routes so those stay readable; see CONTRIBUTING.md.
"""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Mount the routes the official CLI needs (none of them in the OpenAPI document)."""
    from capgo_server.cli_compat import config, functions, uploads
    from capgo_server.cli_compat.postgrest import endpoints

    app.include_router(config.router)
    app.include_router(functions.router)
    app.include_router(uploads.router)
    app.include_router(endpoints.router)
