"""The Supabase RPCs the official CLI calls (plan §1.2), each answered from our own rules.

The caller is the ``capgkey`` key (``CliKey``, already checked by the dispatcher). Apps and orgs
are read through ``auth.access``: an unknown, foreign or key-excluded one answers ``false``,
``null`` or ``[]``, the same for all three, so no answer reveals that an id exists elsewhere.
The functions we do not have (``is_trial_org``, ``is_paying_org``, ``has_usage_credits_org``:
billing, which this server has none of) are absent here, and the dispatcher answers them 404
``PGRST202``, which the CLI ignores.

Arguments are checked as PostgreSQL would type them: a wrong type is 400 ``22P02`` and a
missing argument 400 ``PGRST202`` (PostgREST finds no function of that signature), never a 500.
Unknown extra arguments are ignored, so a newer CLI adding one keeps working.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from capgo_server.auth.access import authorize_app, authorize_org, visible_orgs
from capgo_server.auth.principal import ALL_MODES
from capgo_server.auth.roles import Role
from capgo_server.cli_compat.auth import same_key
from capgo_server.cli_compat.permissions import has_permission
from capgo_server.cli_compat.postgrest.context import (
    SUPPORTED_CLI,
    PgError,
    RpcContext,
    RpcHandler,
    permission_denied,
)
from capgo_server.errors import ApiError
from capgo_server.integers import parse_int
from capgo_server.models import Bundle, Membership
from capgo_server.plugin.common import SemVer

#: The oldest CLI this server answers correctly (plan §2): older ones send queries we refuse.
OLDEST_SUPPORTED_CLI = SemVer(8, 35, 0)
#: No argument the CLI sends is longer (app ids, org uuids, version names, keys).
MAX_TEXT_LENGTH = 1024
#: PostgreSQL text holds no NUL, and asyncpg cannot encode a lone surrogate: either would fail
#: the statement (a 500), so both are refused as PostgreSQL refuses ``\u0000`` in JSON.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

#: The refusal the ``authorize_*`` calls below raise, caught by identity: a refused app or org
#: is a "no" answer; any other ApiError (an org's key policy, 401) reaches the caller.
_REFUSED = ApiError(403, "42501", "permission denied")


class Args:
    """An RPC's named arguments, read with the type PostgreSQL would give them."""

    def __init__(self, fn: str, values: dict[str, Any]) -> None:
        self.fn = fn
        self.values = values

    def _missing(self, name: str) -> PgError:
        return PgError(
            400,
            "PGRST202",
            f"Could not find the function public.{self.fn} without the argument {name}",
            hint=f"public.{self.fn} needs the argument {name}",
        )

    def _wrong(self, name: str, expected: str) -> PgError:
        return PgError(400, "22P02", f"invalid input for argument {name}: expected {expected}")

    def text(self, name: str) -> str:
        value = self.optional_text(name)
        if value is None:
            raise self._missing(name) if name not in self.values else self._wrong(name, "text")
        return value

    def optional_text(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self._wrong(name, "text")
        if len(value) > MAX_TEXT_LENGTH:
            raise PgError(
                400, "22001", f"value too long for argument {name} (at most {MAX_TEXT_LENGTH})"
            )
        if _UNSTORABLE.search(value):
            raise PgError(400, "22P05", f"unsupported Unicode character in argument {name}")
        return value

    def optional_bigint(self, name: str) -> int | None:
        value = self.values.get(name)
        if value is None:
            return None
        number = parse_int(value, minimum=1)
        if number is None:
            raise self._wrong(name, "a positive bigint")
        return number

    def text_array(self, name: str) -> list[str]:
        if name not in self.values:
            raise self._missing(name)
        value = self.values[name]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self._wrong(name, "an array of text")
        return value


def _args(ctx: RpcContext, fn: str) -> Args:
    return Args(fn, ctx.args)


def _check_body_key(ctx: RpcContext, args: Args, *, required: bool) -> None:
    """A key named in the body must be the caller's own (``capgkey``): nobody asks about
    another key's user or rights through this server."""
    claimed = args.text("apikey") if required else args.optional_text("apikey")
    if claimed is not None and not same_key(claimed, ctx.request):
        raise permission_denied("the apikey argument is not the key in capgkey")


async def request_actor_user_id(ctx: RpcContext) -> str:
    return ctx.principal.user_id


async def get_user_id(ctx: RpcContext) -> str:
    """8.35's ``request_actor_user_id``: the same answer, for the key it names."""
    _check_body_key(ctx, _args(ctx, "get_user_id"), required=True)
    return ctx.principal.user_id


async def get_orgs_v7(ctx: RpcContext) -> list[dict[str, Any]]:
    """The caller's organizations and role in each; no 2FA here, so never enforced."""
    query = visible_orgs(ctx.principal).add_columns(Membership.user_right)
    rows = (await ctx.session.execute(query)).all()
    return [
        {
            "gid": org.id,
            "name": org.name,
            "role": Role(right).value,
            "enforcing_2fa": False,
            "2fa_has_access": True,
        }
        for org, right in rows
    ]


async def cli_check_permission(ctx: RpcContext) -> bool:
    args = _args(ctx, "cli_check_permission")
    _check_body_key(ctx, args, required=False)
    return await has_permission(
        ctx.session,
        ctx.principal,
        args.text("permission_key"),
        org_id=args.optional_text("org_id"),
        app_id=args.optional_text("app_id"),
        channel_id=args.optional_bigint("channel_id"),
    )


async def reject_access_due_to_2fa_for_app(ctx: RpcContext) -> bool:
    """No 2FA on this server: nobody is refused for it (the key was checked already)."""
    _args(ctx, "reject_access_due_to_2fa_for_app").text("app_id")
    return False


async def _may_read_app(ctx: RpcContext, app_id: str) -> bool:
    # Any key mode: an upload-only key runs ``bundle upload``, which asks these questions.
    try:
        await authorize_app(
            ctx.session, ctx.principal, app_id, role=Role.read, modes=ALL_MODES, denied=_REFUSED
        )
    except ApiError as error:
        if error is _REFUSED:
            return False
        raise
    return True


async def exist_app_versions(ctx: RpcContext) -> bool:
    """Whether the app has a bundle of that name, deleted ones included: a name is never
    reused, so the CLI stops before uploading it again."""
    args = _args(ctx, "exist_app_versions")
    app_id, name = args.text("appid"), args.text("name_version")
    if not await _may_read_app(ctx, app_id):
        return False
    found = await ctx.session.scalar(
        select(Bundle.id).where(Bundle.app_id == app_id, Bundle.name == name).limit(1)
    )
    return found is not None


async def get_app_versions(ctx: RpcContext) -> int | None:
    """The id of the app's live bundle of that name, else ``null``."""
    args = _args(ctx, "get_app_versions")
    _check_body_key(ctx, args, required=False)
    app_id, name = args.text("appid"), args.text("name_version")
    if not await _may_read_app(ctx, app_id):
        return None
    found: int | None = await ctx.session.scalar(
        select(Bundle.id).where(
            Bundle.app_id == app_id, Bundle.name == name, Bundle.deleted.is_(False)
        )
    )
    return found


async def _is_member(ctx: RpcContext, org_id: str) -> bool:
    try:
        await authorize_org(ctx.session, ctx.principal, org_id, role=Role.read, denied=_REFUSED)
    except ApiError as error:
        if error is _REFUSED:
            return False
        raise
    return True


async def is_allowed_action_org_action(ctx: RpcContext) -> bool:
    """No plans or quotas here: every action is allowed to the org's members."""
    args = _args(ctx, "is_allowed_action_org_action")
    org_id = args.text("orgid")
    args.text_array("actions")
    args.optional_text("appid")
    return await _is_member(ctx, org_id)


async def is_allowed_action_org(ctx: RpcContext) -> bool:
    """The CLI's fallback for ``is_allowed_action_org_action``: the same answer."""
    return await _is_member(ctx, _args(ctx, "is_allowed_action_org").text("orgid"))


async def get_organization_cli_warnings(ctx: RpcContext) -> list[dict[str, Any]]:
    """A fatal warning for a CLI older than this server supports, which stops ``bundle
    upload`` with our message before it sends queries we would refuse."""
    # Imported here: the dispatcher imports this module, and owns the wording.

    args = _args(ctx, "get_organization_cli_warnings")
    args.optional_text("orgid")
    version = SemVer.parse(args.text("cli_version"))
    if version is not None and version >= OLDEST_SUPPORTED_CLI:
        return []
    return [{"message": f"This @capgo/cli is too old: {SUPPORTED_CLI}", "fatal": True}]


#: Handlers by function name; anything else answers 404 ``PGRST202``.
RPCS: dict[str, RpcHandler] = {
    "request_actor_user_id": request_actor_user_id,
    "get_user_id": get_user_id,
    "get_orgs_v7": get_orgs_v7,
    "cli_check_permission": cli_check_permission,
    "reject_access_due_to_2fa_for_app": reject_access_due_to_2fa_for_app,
    "exist_app_versions": exist_app_versions,
    "get_app_versions": get_app_versions,
    "is_allowed_action_org_action": is_allowed_action_org_action,
    "is_allowed_action_org": is_allowed_action_org,
    "get_organization_cli_warnings": get_organization_cli_warnings,
}
