"""Rules for channels: read, create-or-update, delete; the bundle a channel serves and its deploy
history; public channels exclusive per platform."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, Select, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from capgo_server import audit
from capgo_server.apps.service import ensure_internal_bundles
from capgo_server.auth.access import authorize_app, cannot_access_app
from capgo_server.auth.keys import KeyMode
from capgo_server.auth.principal import Principal
from capgo_server.auth.roles import Role
from capgo_server.channels.rollout import rollout_changes
from capgo_server.channels.schemas import ChannelOut, ChannelSet, ChannelVersion
from capgo_server.devices.overrides import adjust_override_count
from capgo_server.errors import ApiError
from capgo_server.models import App, Bundle, Channel, ChannelOverride, DeployHistory
from capgo_server.validation import is_internal_version_name

PAGE_SIZE = 50
MISSING_CHANNEL_NAME = ApiError(400, "missing_channel_name", "You must provide a channel name")

#: ``POST /channel`` body field → ``channels`` column.
SETTABLE_FIELDS = {
    "public": "public",
    "disableAutoUpdateUnderNative": "disable_auto_update_under_native",
    "disableAutoUpdate": "disable_auto_update",
    "ios": "ios",
    "android": "android",
    "electron": "electron",
    "allow_device_self_set": "allow_device_self_set",
    "allow_emulator": "allow_emulator",
    "allow_device": "allow_device",
    "allow_dev": "allow_dev",
    "allow_prod": "allow_prod",
}


def channel_out(
    channel: Channel, bundle_id: int, bundle_name: str, rollout: ChannelVersion | None = None
) -> ChannelOut:
    return ChannelOut(
        id=channel.id,
        created_at=channel.created_at,
        name=channel.name,
        app_id=channel.app_id,
        created_by=channel.created_by,
        updated_at=channel.updated_at,
        public=channel.public,
        allow_device_self_set=channel.allow_device_self_set,
        allow_emulator=channel.allow_emulator,
        allow_device=channel.allow_device,
        allow_dev=channel.allow_dev,
        allow_prod=channel.allow_prod,
        version=ChannelVersion(id=bundle_id, name=bundle_name),
        disableAutoUpdateUnderNative=channel.disable_auto_update_under_native,
        disableAutoUpdate=channel.disable_auto_update,
        disableAutoUpdateToMajor=channel.disable_auto_update == "major",
        ios=channel.ios,
        android=channel.android,
        electron=channel.electron,
        rollout_version=rollout,
        rollout_percentage=channel.rollout_percentage,
    )


_RolloutBundle = aliased(Bundle)


def _with_bundle(app_id: str) -> Select[Channel, int, str, str | None]:
    """Channels of the app with their bundle's id and name and the rollout bundle's name."""
    return (
        select(Channel, Bundle.id, Bundle.name, _RolloutBundle.name)
        .join(Bundle, Bundle.id == Channel.version)
        .outerjoin(_RolloutBundle, _RolloutBundle.id == Channel.rollout_version)
        .where(Channel.app_id == app_id)
    )


def _out(row: Row[Channel, int, str, str | None]) -> ChannelOut:
    channel, bundle_id, bundle_name, rollout_name = row
    rollout = None
    if channel.rollout_version is not None and rollout_name is not None:
        rollout = ChannelVersion(id=channel.rollout_version, name=rollout_name)
    return channel_out(channel, bundle_id, bundle_name, rollout)


async def get_channel(
    session: AsyncSession, principal: Principal, app_id: str, name: str
) -> ChannelOut:
    """One channel by name; 400 ``cannot_find_version`` (sic, Capgo's code) when missing."""
    await authorize_app(
        session, principal, app_id, role=Role.read, denied=cannot_access_app(app_id)
    )
    row = (await session.execute(_with_bundle(app_id).where(Channel.name == name))).first()
    if row is None:
        raise ApiError(
            400,
            "cannot_find_version",
            f"Channel {name} does not exist for app {app_id}",
            {"channel": name},
        )
    return _out(row)


async def list_channels(
    session: AsyncSession, principal: Principal, app_id: str, page: int
) -> list[ChannelOut]:
    """One page of the app's channels, oldest first."""
    await authorize_app(
        session, principal, app_id, role=Role.read, denied=cannot_access_app(app_id)
    )
    rows = await session.execute(
        _with_bundle(app_id)
        .order_by(Channel.created_at, Channel.id)
        .offset(page * PAGE_SIZE)
        .limit(PAGE_SIZE)
    )
    return [_out(row) for row in rows]


async def find_bundle_for_channel(session: AsyncSession, app: App, name: str) -> Bundle:
    """The bundle ``name`` of ``app`` a channel may point at: a live bundle, or one of the
    internal ``builtin``/``unknown`` (which are ``deleted`` by design). Otherwise 400
    ``cannot_find_version``."""
    if is_internal_version_name(name):
        return (await ensure_internal_bundles(session, app))[name]
    bundle = await session.scalar(
        select(Bundle).where(
            Bundle.app_id == app.app_id, Bundle.name == name, Bundle.deleted.is_(False)
        )
    )
    if bundle is None:
        raise ApiError(
            400,
            "cannot_find_version",
            f"Bundle {name} does not exist for app {app.app_id} (or is deleted): upload it first",
            {"version": name},
        )
    return bundle


def _record_deploy(
    session: AsyncSession, channel: Channel, bundle: Bundle, user_id: str | None
) -> None:
    session.add(
        DeployHistory(
            channel_id=channel.id,
            app_id=channel.app_id,
            version_id=bundle.id,
            owner_org=channel.owner_org,
            created_by=user_id,
        )
    )


async def set_channel_bundle(
    session: AsyncSession, channel: Channel, bundle: Bundle, user_id: str | None
) -> bool:
    """Point ``channel`` at ``bundle`` and record a deploy-history entry; returns False (and
    records nothing) when the channel already serves that bundle.

    The caller has authorized the change and checked that ``bundle`` may be served (not
    deleted, unless internal). Raises ``ValueError`` when the bundle belongs to another app.
    Only flushes.
    """
    if bundle.app_id != channel.app_id:
        raise ValueError("a channel can only serve a bundle of its own app")
    if channel.version == bundle.id:
        return False
    channel.version = bundle.id
    _record_deploy(session, channel, bundle, user_id)
    await session.flush()
    return True


async def enforce_public_exclusivity(
    session: AsyncSession, channel: Channel, *, claims_electron: bool = False
) -> None:
    """Keep the public channels from fighting over a device (House decision, docs/channels.md).

    When ``channel`` is public:

    - iOS and Android follow Capgo (spec §3.4, ``on_channel_update``): every other public
      channel open to a mobile platform ``channel`` is open to becomes private.
    - Electron never makes a channel private: ``electron`` defaults to true on every channel
      and the public API documents only ``ios``/``android``, so counting it made the most
      common layout (one public channel per mobile platform) privatize the first one. Electron
      devices get the oldest public channel open to Electron. ``channel`` takes Electron from
      the other public channels when the request set ``electron: true`` (``claims_electron``)
      or when Electron is the only platform it is open to; another public channel left open to
      no platform then becomes private (it would serve no device) and keeps its flags.

    Capgo also made a public channel open to neither iOS nor Android privatize every other
    public channel, and be privatized by any public mobile channel: before Electron such a
    channel served no device. It serves Electron now, so it only takes part in the Electron
    rule above.
    """
    if not channel.public:
        return
    others = [
        Channel.app_id == channel.app_id,
        Channel.id != channel.id,
        Channel.public.is_(True),
    ]
    mobile = [getattr(Channel, p).is_(True) for p in ("ios", "android") if getattr(channel, p)]
    if mobile:
        await _bulk_update(session, [*others, or_(*mobile)], public=False)
    only_electron = channel.electron and not (channel.ios or channel.android)
    if channel.electron and (claims_electron or only_electron):
        electron_only = Channel.ios.is_(False) & Channel.android.is_(False)
        await _bulk_update(
            session, [*others, Channel.electron.is_(True), electron_only], public=False
        )
        await _bulk_update(session, [*others, Channel.electron.is_(True)], electron=False)


async def _bulk_update(session: AsyncSession, where: list[Any], **values: Any) -> None:
    await session.execute(
        update(Channel)
        .where(*where)
        .values(**values)
        .execution_options(synchronize_session="fetch")
    )


async def _insert_channel(session: AsyncSession, values: dict[str, Any]) -> int | None:
    """INSERT the channel unless (name, app_id) exists; its id, or None when a concurrent
    request created it first (an ordinary INSERT would then fail the whole transaction)."""
    insert: Any = (
        postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    )
    statement = (
        insert(Channel)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["name", "app_id"])
        .returning(Channel.id)
    )
    channel_id: int | None = (await session.execute(statement)).scalar_one_or_none()
    return channel_id


async def _find(session: AsyncSession, app_id: str, name: str) -> Channel | None:
    return await session.scalar(
        select(Channel)
        .where(Channel.app_id == app_id, Channel.name == name)
        .execution_options(populate_existing=True)
    )


async def save_channel(session: AsyncSession, principal: Principal, body: ChannelSet) -> Channel:
    """Create the channel ``body.channel`` or update the fields given (``POST /channel``).

    400 ``missing_channel_name`` without a name; 400 ``cannot_access_app`` below ``write``
    (and for unknown/foreign apps); 400 ``cannot_find_version`` for a ``version``
    that is not a live bundle of the app (nor ``builtin``/``unknown``). A new channel without
    ``version`` serves ``unknown``; an existing one keeps its bundle (House decision), and
    ``"version": null`` makes it serve ``unknown`` (so ``channel add`` of the official CLI, which
    sends it, unlinks an existing channel). A bundle change records a deploy-history entry. A
    public channel then takes its platforms from the other public channels
    (:func:`enforce_public_exclusivity`).
    ``rollout_version``/``rollout_percentage``: see :mod:`capgo_server.channels.rollout` (no
    deploy-history entry for them).
    """
    if not body.channel:
        raise MISSING_CHANNEL_NAME
    access = await authorize_app(
        session, principal, body.app_id, role=Role.write, denied=cannot_access_app(body.app_id)
    )
    app = access.app
    bundle = None
    if body.version is not None:
        bundle = await find_bundle_for_channel(session, app, body.version)
    elif "version" in body.model_fields_set:
        # An explicit null unlinks the channel (the official CLI does so before deleting the
        # bundle): it serves the app's internal 'unknown', as a new channel without a version.
        bundle = (await ensure_internal_bundles(session, app))["unknown"]
    changes = {
        column: getattr(body, field)
        for field, column in SETTABLE_FIELDS.items()
        if getattr(body, field) is not None
    }
    changes.update(await rollout_changes(session, app, body))
    claims_electron = body.electron is True
    channel = await _find(session, app.app_id, body.channel)
    if channel is None:
        channel = await _create(session, principal, app, body.channel, bundle, changes)
        if channel is not None:
            await enforce_public_exclusivity(session, channel, claims_electron=claims_electron)
            return channel
        channel = await _find(session, app.app_id, body.channel)
        assert channel is not None
    before = audit.snapshot(channel)
    changed = False
    for column, value in changes.items():
        if getattr(channel, column) != value:
            setattr(channel, column, value)
            changed = True
    if bundle is not None:
        changed = await set_channel_bundle(session, channel, bundle, principal.user_id) or changed
    if changed:
        await session.flush()
        await session.refresh(channel)
        audit.record_row(
            session,
            channel,
            "UPDATE",
            org_id=channel.owner_org,
            user_id=principal.user_id,
            old=before,
        )
    await enforce_public_exclusivity(session, channel, claims_electron=claims_electron)
    return channel


async def _create(
    session: AsyncSession,
    principal: Principal,
    app: App,
    name: str,
    bundle: Bundle | None,
    changes: dict[str, Any],
) -> Channel | None:
    """Insert a new channel with its first deploy-history entry; None if it appeared
    concurrently."""
    if bundle is None:
        bundle = (await ensure_internal_bundles(session, app))["unknown"]
    channel_id = await _insert_channel(
        session,
        {
            **changes,
            "name": name,
            "app_id": app.app_id,
            "owner_org": app.owner_org,
            "version": bundle.id,
            "created_by": principal.user_id,
        },
    )
    if channel_id is None:
        return None
    channel = await session.get(Channel, channel_id)
    assert channel is not None
    _record_deploy(session, channel, bundle, principal.user_id)
    await session.flush()
    audit.record_row(
        session, channel, "INSERT", org_id=channel.owner_org, user_id=principal.user_id
    )
    return channel


async def delete_channel(
    session: AsyncSession,
    principal: Principal,
    app_id: str,
    name: str | None,
    *,
    delete_bundle: bool = False,
) -> str | None:
    """Delete a channel with its device overrides and deploy history (foreign-key cascades).

    Needs ``admin`` and a key of mode ``all`` (Capgo's row-level security), else 400
    ``cannot_access_app``; then 400 ``missing_channel_name`` / ``cannot_find_channel``.

    With ``delete_bundle``, returns the name of the live bundle the channel served, which the
    caller then deletes in the same transaction as ``DELETE /bundle`` does
    (:func:`capgo_server.bundles.service.delete_bundles`, with that route's rights check);
    ``None`` when there is none to delete: the app's internal ``unknown``/``builtin`` are never
    deleted. When another channel serves that bundle too, 400 ``cannot_delete_linked_version``
    before anything is deleted.
    """
    await authorize_app(
        session,
        principal,
        app_id,
        role=Role.admin,
        modes={KeyMode.all},
        denied=cannot_access_app(app_id),
    )
    if not name:
        raise MISSING_CHANNEL_NAME
    channel = await _find(session, app_id, name)
    if channel is None:
        raise ApiError(
            400,
            "cannot_find_channel",
            f"Channel {name} does not exist for app {app_id}",
            {"channel": name},
        )
    served = await _bundle_to_delete(session, channel) if delete_bundle else None
    before = audit.snapshot(channel)
    overrides = await session.scalar(
        select(func.count())
        .select_from(ChannelOverride)
        .where(ChannelOverride.channel_id == channel.id)
    )
    await session.execute(delete(Channel).where(Channel.id == channel.id))
    # The overrides went with the channel (cascade); /updates reads this counter.
    await adjust_override_count(session, app_id, -(overrides or 0))
    audit.record_row(
        session, channel, "DELETE", org_id=channel.owner_org, user_id=principal.user_id, old=before
    )
    await session.flush()
    return served


async def _bundle_to_delete(session: AsyncSession, channel: Channel) -> str | None:
    """The name of the live bundle ``channel`` serves, if only it serves it (see
    :func:`delete_channel`); ``None`` for an internal bundle (or one already deleted)."""
    bundle = await session.get(Bundle, channel.version)
    # The internal bundles are ``deleted`` by design; checked by name too, as DELETE /bundle does.
    if bundle is None or bundle.deleted or is_internal_version_name(bundle.name):
        return None
    others = (
        await session.scalars(
            select(Channel.name)
            .where(Channel.version == bundle.id, Channel.id != channel.id)
            .order_by(Channel.name)
        )
    ).all()
    if others:
        listed = ", ".join(others)
        raise ApiError(
            400,
            "cannot_delete_linked_version",
            f"Bundle {bundle.name} is also served by channel {listed}: nothing was deleted. "
            f"Set another bundle on {listed} first, or delete channel {channel.name} without "
            "delete_bundle",
            {"channel": channel.name, "version": bundle.name, "channels": list(others)},
        )
    return bundle.name
