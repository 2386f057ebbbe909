"""``GET /functions/v1/app/{app_id}``: the app as the official CLI checks it before most bundle
and channel commands (plan §1.4).

The caller is the key in ``capgkey`` (any mode: the CLI checks with whatever key it uploads
with), which needs the read role on the app, as ``GET /app/{id}`` does for the CLI. The answer is
that route's JSON; an app the key cannot read, unknown, another tenant's or excluded by the key
alike, is 404 ``app_not_found`` (the CLI reads 404 as "no such app, run app add"). Errors keep
the public API's ``{error, message, moreInfo}``.
"""

from __future__ import annotations

from capgo_server.apps import service
from capgo_server.apps.schemas import AppOut
from capgo_server.cli_compat.auth import CliKey
from capgo_server.db.session import Session
from capgo_server.routing import router as transactional_router
from capgo_server.schema_types import AppIdText

router = transactional_router(include_in_schema=False)


@router.get("/functions/v1/app/{app_id}", response_model=AppOut)
async def get_app(app_id: AppIdText, session: Session, principal: CliKey) -> AppOut:
    """One app by its id, for the official CLI."""
    app = await service.get_app(session, principal, app_id, official_cli=True)
    return AppOut.model_validate(app)
