"""The PostgREST reads the official CLI sends (plan §1.3: T1-T6, T8-T10).

Scoped as Capgo's row-level security scopes them: the app named by the ``app_id`` filter is
authorized for reading with any key mode (as ``GET /channel``), and an unknown app, another
tenant's app or one the key is limited away from yields no rows, never an error that would tell
them apart. Each shape's rows are built column by column: the whitelist fixes the columns, so
nothing else of a row can leak. Internal bundles show as null (``rows.py``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_

from capgo_server.auth.access import authorize_app, cannot_access_app
from capgo_server.auth.roles import Role
from capgo_server.cli_compat.postgrest.context import PgContext, PgError, PgResult, TableHandler
from capgo_server.cli_compat.postgrest.parse import Filter
from capgo_server.cli_compat.rows import (
    LoadedChannel,
    RolloutBundle,
    StableBundle,
    channel_row,
    embed,
    load_channels,
    rollout_enabled,
    rollout_percentage_bps,
)
from capgo_server.errors import ApiError
from capgo_server.integers import parse_int
from capgo_server.models import App, Channel
from capgo_server.validation import INTERNAL_VERSION_NAMES

Row = dict[str, Any]


async def readable_app(ctx: PgContext, app_id: str) -> App | None:
    """The app if the caller may read it, else None (unknown, foreign, or excluded by the
    key). An organization's key-policy refusal (401) still propagates: it concerns the key."""
    denied = cannot_access_app(app_id)
    try:
        access = await authorize_app(
            ctx.session, ctx.principal, app_id, role=Role.read, denied=denied
        )
    except ApiError as error:
        if error is denied:
            return None
        raise
    return access.app


async def _channels(
    ctx: PgContext, *where: ColumnElement[bool], bundle_columns: tuple[str, ...] = ()
) -> list[LoadedChannel]:
    """The channels of the ``app_id`` filter's app matching ``where`` and, when the query
    filters on it, ``name=eq``; none when the app may not be read."""
    query = ctx.query
    app = await readable_app(ctx, query.eq("app_id"))
    if app is None:
        return []
    conditions = list(where)
    if any(item.column == "name" and item.op == "eq" for item in query.filters):
        conditions.append(Channel.name == query.eq("name"))
    return await load_channels(
        ctx.session, app.app_id, *conditions, bundle_columns=bundle_columns, limit=query.limit
    )


async def default_upload_channel(ctx: PgContext) -> PgResult:
    """T1 ``apps?select=default_upload_channel&app_id=eq.{app}``."""
    app = await readable_app(ctx, ctx.query.eq("app_id"))
    rows = [] if app is None else [{"default_upload_channel": app.default_upload_channel}]
    return PgResult(rows)


async def channel_checksum(ctx: PgContext) -> PgResult:
    """T2 ``select=version:app_versions!channels_version_fkey(checksum)``: the served bundle's
    checksum, which the CLI compares with the new one."""
    channels = await _channels(ctx, bundle_columns=("checksum",))
    return PgResult([{"version": embed(c.stable, ("checksum",))} for c in channels])


T3_BUNDLE_COLUMNS = ("id", "name", "min_update_version", "native_packages")


async def channel_auto_update(ctx: PgContext) -> PgResult:
    """T3 ``select=disable_auto_update,version(id,name,min_update_version,native_packages)``."""
    channels = await _channels(ctx, bundle_columns=T3_BUNDLE_COLUMNS)
    return PgResult(
        [
            {
                "disable_auto_update": c.channel.disable_auto_update,
                "version": embed(c.stable, T3_BUNDLE_COLUMNS),
            }
            for c in channels
        ]
    )


async def channel_native_packages(ctx: PgContext) -> PgResult:
    """T4 ``select=version:app_versions!channels_version_fkey(native_packages)``."""
    channels = await _channels(ctx, bundle_columns=("native_packages",))
    return PgResult([{"version": embed(c.stable, ("native_packages",))} for c in channels])


async def channel_link(ctx: PgContext) -> PgResult:
    """T5 ``select=id,public,version,rollout_version[,rollout_enabled,rollout_percentage_bps]``
    (8.35.0 asks without the last two): ids as integers."""
    asked = {item.name for item in ctx.query.select}
    with_rollout_state = "rollout_enabled" in asked
    rows: list[Row] = []
    for c in await _channels(ctx):
        row: Row = {
            "id": c.channel.id,
            "public": c.channel.public,
            "version": c.version,
            "rollout_version": c.rollout_version,
        }
        if with_rollout_state:
            row["rollout_enabled"] = rollout_enabled(c)
            row["rollout_percentage_bps"] = rollout_percentage_bps(c.channel)
        rows.append(row)
    return PgResult(rows)


async def channel_whole(ctx: PgContext) -> PgResult:
    """T6 ``select=*``: the whole row (``rows.channel_row``)."""
    return PgResult([channel_row(c) for c in await _channels(ctx)])


async def channel_links(ctx: PgContext) -> PgResult:
    """T8 ``select=id,name,version,rollout_version&app_id=eq``: every channel of the app, which
    ``bundle delete`` searches for the bundle it deletes."""
    return PgResult(
        [
            {
                "id": c.channel.id,
                "name": c.channel.name,
                "version": c.version,
                "rollout_version": c.rollout_version,
            }
            for c in await _channels(ctx)
        ]
    )


async def channel_bundles(ctx: PgContext) -> PgResult:
    """T9 ``select=id,version:…(id,name),rollout_version_info:…(id,name)``: the bundles
    ``channel delete --delete-bundle`` would delete."""
    return PgResult(
        [
            {
                "id": c.channel.id,
                "version": embed(c.stable, ("id", "name")),
                "rollout_version_info": embed(c.rollout, ("id", "name")),
            }
            for c in await _channels(ctx)
        ]
    )


#: ``or=(version.eq.N,rollout_version.eq.N)``: each column with the bundle it joins to.
_OR_COLUMNS = {
    "version": (Channel.version, StableBundle),
    "rollout_version": (Channel.rollout_version, RolloutBundle),
}


def _uses_bundle(alternatives: tuple[Filter, ...]) -> ColumnElement[bool]:
    """The ``or`` of T10: the channel serves (or rolls out) bundle N. An internal bundle is
    shown as null, so ``eq`` never matches it, as ``eq`` never matches null in PostgREST."""
    conditions: list[ColumnElement[bool]] = []
    for item in alternatives:
        if item.column not in _OR_COLUMNS or item.op != "eq":
            raise PgError(400, "PGRST100", "unsupported or= condition")
        column, bundle = _OR_COLUMNS[item.column]
        bundle_id = parse_int(item.value)
        if bundle_id is None:
            conditions.append(false())
            continue
        conditions.append(and_(column == bundle_id, bundle.name.not_in(INTERNAL_VERSION_NAMES)))
    return or_(*conditions) if conditions else false()


async def other_channel_using(ctx: PgContext) -> PgResult:
    """T10 ``select=id&app_id=eq&name=neq.{ch}&or=(version.eq.N,rollout_version.eq.N)&limit=1``:
    whether another channel still uses a bundle ``channel delete --delete-bundle`` would
    delete."""
    query = ctx.query
    other = Channel.name != query.filter("name").value
    alternatives = query.or_ or ()
    channels = await _channels(ctx, other, _uses_bundle(alternatives))
    return PgResult([{"id": c.channel.id} for c in channels])


#: Handlers by shape name (the names ``shapes.match`` gives).
HANDLERS: dict[str, TableHandler] = {
    "T1": default_upload_channel,
    "T2": channel_checksum,
    "T3": channel_auto_update,
    "T4": channel_native_packages,
    "T5": channel_link,
    "T6": channel_whole,
    "T8": channel_links,
    "T9": channel_bundles,
    "T10": other_channel_using,
}
