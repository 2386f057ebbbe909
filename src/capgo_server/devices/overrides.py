"""Device → channel overrides (``channel_devices``), shared by ``/device`` and ``/channel_self``.

The app's ``channel_device_count`` is kept equal to its number of overrides, in the same
transaction as every change: ``/updates`` skips the override look-up when it is 0.
"""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from capgo_server.models import App, Channel, ChannelOverride


async def adjust_override_count(session: AsyncSession, app_id: str, delta: int) -> None:
    """Add ``delta`` to the app's override count, in place (concurrent changes add up)."""
    if delta:
        await session.execute(
            update(App)
            .where(App.app_id == app_id)
            .values(channel_device_count=App.channel_device_count + delta)
            .execution_options(synchronize_session=False)
        )


async def pin_override(session: AsyncSession, app: App, device_id: str, channel: Channel) -> None:
    """Create the device's override on ``channel``, or move the existing one there.

    A concurrent request creating the same override is caught by the unique (app, device)
    constraint inside a savepoint, and its row is moved instead.
    """
    find = select(ChannelOverride).where(
        ChannelOverride.app_id == app.app_id, ChannelOverride.device_id == device_id
    )
    override = await session.scalar(find)
    if override is None:
        try:
            async with session.begin_nested():
                session.add(
                    ChannelOverride(
                        app_id=app.app_id,
                        device_id=device_id,
                        channel_id=channel.id,
                        owner_org=app.owner_org,
                    )
                )
        except IntegrityError:
            override = await session.scalar(find.execution_options(populate_existing=True))
            if override is None:
                raise
        else:
            await adjust_override_count(session, app.app_id, +1)
            return
    if override.channel_id != channel.id:
        override.channel_id = channel.id
        await session.flush()


async def remove_override(session: AsyncSession, app_id: str, device_id: str) -> int:
    """Delete the device's override; returns how many were removed (0 or 1)."""
    removed = (
        await session.execute(
            delete(ChannelOverride)
            .where(ChannelOverride.app_id == app_id, ChannelOverride.device_id == device_id)
            .returning(ChannelOverride.id)
        )
    ).all()
    await adjust_override_count(session, app_id, -len(removed))
    return len(removed)
