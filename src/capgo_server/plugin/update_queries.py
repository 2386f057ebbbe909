"""The reads behind ``/updates`` (spec §5.3, ``requestInfosPostgres``): the app, the device's
channel (override, then ``defaultChannel``, then the platform's public channel) and its bundle."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from capgo_server.models import App, Bundle, Channel, ChannelOverride
from capgo_server.plugin.rollout import rollout_bundle_id


@dataclass(frozen=True)
class ResolvedChannel:
    channel: Channel
    from_override: bool


async def load_app(session: AsyncSession, app_id: str) -> App | None:
    return await session.get(App, app_id)


async def _override(session: AsyncSession, app: App, device_id: str) -> Channel | None:
    if app.channel_device_count <= 0:  # no overrides at all: skip the lookup (as Capgo)
        return None
    found: Channel | None = await session.scalar(
        select(Channel)
        .join(ChannelOverride, ChannelOverride.channel_id == Channel.id)
        .where(ChannelOverride.app_id == app.app_id, ChannelOverride.device_id == device_id)
        .limit(1)
    )
    return found


async def _by_name(session: AsyncSession, app_id: str, name: str) -> Channel | None:
    found: Channel | None = await session.scalar(
        select(Channel).where(Channel.app_id == app_id, Channel.name == name).limit(1)
    )
    return found


async def _public_for(session: AsyncSession, app_id: str, platform: str) -> Channel | None:
    found: Channel | None = await session.scalar(
        select(Channel)
        .where(
            Channel.app_id == app_id,
            Channel.public.is_(True),
            getattr(Channel, platform).is_(True),
        )
        .order_by(Channel.id)
        .limit(1)
    )
    return found


async def resolve_channel(
    session: AsyncSession, app: App, device_id: str, default_channel: str | None, platform: str
) -> ResolvedChannel | None:
    """The device's override wins entirely; else the named default channel (any channel); else
    the first public channel enabled for the platform (lowest id). ``None``: no channel."""
    override = await _override(session, app, device_id)
    if override is not None:
        return ResolvedChannel(override, from_override=True)
    if default_channel:
        channel = await _by_name(session, app.app_id, default_channel)
    else:
        channel = await _public_for(session, app.app_id, platform)
    return None if channel is None else ResolvedChannel(channel, from_override=False)


async def bundle_for_device(
    session: AsyncSession, channel: Channel, app_id: str, device_id: str
) -> Bundle | None:
    """The bundle ``channel`` offers this device: its rollout bundle when the device's sticky draw
    falls inside the rollout (and that bundle is live), else its main bundle."""
    rollout_deleted = True
    if channel.rollout_version is not None:
        rollout = await session.get(Bundle, channel.rollout_version)
        rollout_deleted = rollout is None or rollout.deleted
    bundle_id = rollout_bundle_id(channel, app_id, device_id, rollout_deleted=rollout_deleted)
    return await session.get(Bundle, bundle_id)
