"""T7: ``PATCH /rest/v1/channels?app_id=eq.{app}&name=eq.{ch}&select=*`` (plan §4.4).

``bundle upload --self-assign`` on an existing channel sends the channel's own identity with
the bundle to serve: ``{name, app_id, created_by, version: <int id>, owner_org,
allow_device_self_set: true}``. Nothing in that body is trusted: the identity fields must be
the row's own (a forged ``owner_org`` or a rename is refused, 403 ``42501``), ``created_by`` is
ignored, and ``version`` must be a live bundle of the same app, set through the channel service
so the deploy history, the audit trail and the update cache follow as for ``POST /channel``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from capgo_server import audit
from capgo_server.auth.access import authorize_app, cannot_access_app
from capgo_server.auth.keys import KeyMode
from capgo_server.auth.roles import Role
from capgo_server.channels.service import set_channel_bundle
from capgo_server.cli_compat.postgrest.context import (
    PgContext,
    PgError,
    PgResult,
    TableHandler,
    no_matching_row,
    permission_denied,
)
from capgo_server.cli_compat.rows import channel_row, load_channels
from capgo_server.errors import ApiError
from capgo_server.integers import parse_int
from capgo_server.models import Bundle, Channel
from capgo_server.validation import INTERNAL_VERSION_NAMES

#: The columns the CLI's body names. Only ``version`` and ``allow_device_self_set`` change the
#: row; the identity columns are checked, ``created_by`` is ignored.
BODY_COLUMNS = frozenset(
    {"name", "app_id", "owner_org", "created_by", "version", "allow_device_self_set"}
)
#: Write access as ``POST /channel`` has it.
WRITE_MODES = frozenset({KeyMode.write, KeyMode.all})


def _checked_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise PgError(400, "PGRST102", "Empty or invalid json")
    if not body.keys() <= BODY_COLUMNS:
        raise PgError(
            400,
            "PGRST100",
            "unsupported update: this server changes only version and allow_device_self_set "
            "of a channel through PostgREST (use POST /channel)",
        )
    return body


def _check_identity(body: dict[str, Any], channel: Channel) -> None:
    """The body's identity columns must be the row's: no rename, no move to another app or
    organization."""
    for column in ("name", "app_id", "owner_org"):
        if column in body and body[column] != getattr(channel, column):
            raise permission_denied(f"{column} must be the channel's own")


async def _servable_bundle(ctx: PgContext, channel: Channel, value: Any) -> Bundle:
    """The bundle ``version`` names: a live bundle of the channel's app, not an internal one.
    The same refusal for an unknown id, another app's bundle, a deleted or an internal one."""
    refused = permission_denied("version must be a live bundle of this channel's app")
    if value is None:
        raise refused
    bundle_id = parse_int(value, minimum=1)
    if bundle_id is None:
        raise PgError(400, "22P02", "invalid input syntax for type bigint (version)")
    bundle = await ctx.session.scalar(
        select(Bundle).where(
            Bundle.id == bundle_id,
            Bundle.app_id == channel.app_id,
            Bundle.deleted.is_(False),
            Bundle.name.not_in(INTERNAL_VERSION_NAMES),
        )
    )
    if bundle is None:
        raise refused
    return bundle


def _self_set(value: Any) -> bool:
    if not isinstance(value, bool):
        raise PgError(400, "22P02", "invalid input syntax for type boolean (allow_device_self_set)")
    return value


async def _authorize_write(ctx: PgContext, app_id: str) -> None:
    """Write access to the app as ``POST /channel`` needs it, refused as a write is in
    PostgREST; an organization's key-policy refusal (401) propagates."""
    denied = cannot_access_app(app_id)
    try:
        await authorize_app(
            ctx.session, ctx.principal, app_id, role=Role.write, modes=WRITE_MODES, denied=denied
        )
    except ApiError as error:
        if error is denied:
            raise permission_denied("this key may not change the channels of this app") from None
        raise


async def patch_channel(ctx: PgContext) -> PgResult:
    """T7: set the channel's bundle and ``allow_device_self_set``; the whole row back (200)
    when ``return=representation`` is asked, else 204.

    403 ``42501`` for an app the caller may not write with a write/all key (unknown and
    foreign alike), a forged identity column or an unservable ``version``; 404 when the app
    has no such channel.
    """
    body = _checked_body(ctx.body)
    app_id = ctx.query.eq("app_id")
    name = ctx.query.eq("name")
    await _authorize_write(ctx, app_id)
    channel = await ctx.session.scalar(
        select(Channel)
        .where(Channel.app_id == app_id, Channel.name == name)
        .execution_options(populate_existing=True)
    )
    if channel is None:
        raise no_matching_row("the app has no channel of that name")
    _check_identity(body, channel)
    bundle = None
    if "version" in body:
        bundle = await _servable_bundle(ctx, channel, body["version"])
    self_set = _self_set(body["allow_device_self_set"]) if "allow_device_self_set" in body else None

    before = audit.snapshot(channel)
    changed = False
    if self_set is not None and channel.allow_device_self_set != self_set:
        channel.allow_device_self_set = self_set
        changed = True
    if bundle is not None:
        changed = (
            await set_channel_bundle(ctx.session, channel, bundle, ctx.principal.user_id) or changed
        )
    if changed:
        await ctx.session.flush()
        await ctx.session.refresh(channel)
        audit.record_row(
            ctx.session,
            channel,
            "UPDATE",
            org_id=channel.owner_org,
            user_id=ctx.principal.user_id,
            old=before,
        )
    if "return=representation" not in ctx.query.prefer:
        return PgResult(None, 204)
    (loaded,) = await load_channels(ctx.session, app_id, Channel.id == channel.id)
    return PgResult([channel_row(loaded)], 200)


#: Handlers by shape name (the names ``shapes.match`` gives).
HANDLERS: dict[str, TableHandler] = {"T7": patch_channel}
