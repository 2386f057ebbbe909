"""The reads behind ``/updates`` (spec §5.3, ``requestInfosPostgres``): the device's channel
(override, then ``defaultChannel``, then the platform's public channel) and its bundle.

They answer from the worker's :class:`~.update_cache.AppSnapshot` of the app; only the override
of an app with too many overrides to cache is read from the database per request.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from capgo_server.models import Bundle, Channel, ChannelOverride
from capgo_server.plugin.rollout import rollout_bundle_id
from capgo_server.plugin.update_cache import AppSnapshot


@dataclass(frozen=True)
class ResolvedChannel:
    channel: Channel
    from_override: bool


async def _override(
    sessionmaker: async_sessionmaker[AsyncSession], snapshot: AppSnapshot, device_id: str
) -> Channel | None:
    if snapshot.app.channel_device_count <= 0:  # no overrides at all: skip the lookup (as Capgo)
        return None
    if snapshot.overrides is not None:
        channel_id = snapshot.overrides.get(device_id)
    else:  # too many overrides to keep in memory: ask the database
        async with sessionmaker() as session:
            channel_id = await session.scalar(
                select(ChannelOverride.channel_id)
                .where(
                    ChannelOverride.app_id == snapshot.app.app_id,
                    ChannelOverride.device_id == device_id,
                )
                .limit(1)
            )
    return None if channel_id is None else snapshot.channels_by_id.get(channel_id)


async def resolve_channel(
    sessionmaker: async_sessionmaker[AsyncSession],
    snapshot: AppSnapshot,
    device_id: str,
    default_channel: str | None,
    platform: str,
) -> ResolvedChannel | None:
    """The device's override wins entirely; else the named default channel (any channel); else
    the first public channel enabled for the platform (lowest id). ``None``: no channel."""
    override = await _override(sessionmaker, snapshot, device_id)
    if override is not None:
        return ResolvedChannel(override, from_override=True)
    if default_channel:
        channel = snapshot.channels_by_name.get(default_channel)
    else:
        channel = snapshot.public_by_platform.get(platform)
    return None if channel is None else ResolvedChannel(channel, from_override=False)


def bundle_for_device(
    snapshot: AppSnapshot, channel: Channel, app_id: str, device_id: str
) -> Bundle | None:
    """The bundle ``channel`` offers this device: its rollout bundle when the device's sticky draw
    falls inside the rollout (and that bundle is live), else its main bundle."""
    rollout_deleted = True
    if channel.rollout_version is not None:
        rollout = snapshot.bundles.get(channel.rollout_version)
        rollout_deleted = rollout is None or rollout.deleted
    bundle_id = rollout_bundle_id(channel, app_id, device_id, rollout_deleted=rollout_deleted)
    return snapshot.bundles.get(bundle_id)
