"""Channels as Capgo's PostgREST shows them to the official CLI (plan §1.3, §4.5).

Our channels always point at a bundle: one without a real bundle serves the app's internal
``unknown`` (or ``builtin``). Capgo's column is nullable instead, and the CLI reads any non-null
``version`` as "linked" (it would offer to unlink, compare checksums, check native packages).
So wherever a channel's bundle is internal it is shown as ``null``, both as the integer column
and as an embedded ``app_versions`` object.

Capgo stores the rollout as ``rollout_enabled`` and ``rollout_percentage_bps`` (basis points);
we store ``rollout_percentage`` (0..100), from which both are derived.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from capgo_server.clock import to_js_iso
from capgo_server.models import Bundle, Channel
from capgo_server.validation import INTERNAL_VERSION_NAMES

#: The bundle a channel serves (``channels_version_fkey``) and its rollout bundle
#: (``channels_rollout_version_fkey``), as joined by :func:`load_channels`; conditions on them
#: may be passed to it.
StableBundle = aliased(Bundle, name="stable_bundle")
RolloutBundle = aliased(Bundle, name="rollout_bundle")

#: ``app_versions`` columns an embed may show (what the CLI's selects name).
EMBEDDABLE = ("id", "name", "checksum", "min_update_version", "native_packages")
_ALWAYS = ("id", "name")  # what deciding "internal" needs


@dataclass(frozen=True)
class LoadedChannel:
    """A channel with the loaded columns of its bundles; a bundle is None when internal (or,
    for the rollout, absent)."""

    channel: Channel
    stable: dict[str, Any] | None
    rollout: dict[str, Any] | None

    @property
    def version(self) -> int | None:
        """The ``version`` column as the CLI sees it."""
        return None if self.stable is None else int(self.stable["id"])

    @property
    def rollout_version(self) -> int | None:
        return None if self.rollout is None else int(self.rollout["id"])


def _shown(values: dict[str, Any]) -> dict[str, Any] | None:
    """The bundle's columns, or None when there is no bundle or it is an internal one."""
    if values["id"] is None or values["name"] in INTERNAL_VERSION_NAMES:
        return None
    return values


async def load_channels(
    session: AsyncSession,
    app_id: str,
    *where: ColumnElement[bool],
    bundle_columns: Sequence[str] = (),
    limit: int | None = None,
) -> list[LoadedChannel]:
    """The app's channels matching ``where`` (oldest first), each with ``bundle_columns`` of
    both its bundles loaded (only those, besides id and name: ``native_packages`` can be big).

    The caller has authorized reading the app.
    """
    columns = tuple(dict.fromkeys((*_ALWAYS, *bundle_columns)))
    unknown = set(columns) - set(EMBEDDABLE)
    if unknown:
        raise ValueError(f"not an embeddable bundle column: {sorted(unknown)}")
    statement = (
        select(
            Channel,
            *(getattr(StableBundle, column) for column in columns),
            *(getattr(RolloutBundle, column) for column in columns),
        )
        .join(StableBundle, StableBundle.id == Channel.version)
        .outerjoin(RolloutBundle, RolloutBundle.id == Channel.rollout_version)
        .where(Channel.app_id == app_id, *where)
        .order_by(Channel.id)
    )
    if limit is not None:
        statement = statement.limit(limit)
    loaded = []
    width = len(columns)
    for row in await session.execute(statement):
        stable = dict(zip(columns, row[1 : 1 + width], strict=True))
        rollout = dict(zip(columns, row[1 + width :], strict=True))
        loaded.append(LoadedChannel(row[0], _shown(stable), _shown(rollout)))
    return loaded


def embed(bundle: dict[str, Any] | None, columns: Sequence[str]) -> dict[str, Any] | None:
    """An embedded ``app_versions`` object with exactly ``columns``, or None."""
    if bundle is None:
        return None
    return {column: bundle[column] for column in columns}


def rollout_percentage_bps(channel: Channel) -> int:
    """The rollout share in basis points (0..10000), as Capgo stores it."""
    return round(channel.rollout_percentage * 100)


def rollout_enabled(loaded: LoadedChannel) -> bool:
    """A rollout is on when it names a bundle and offers it to some devices."""
    return loaded.rollout_version is not None and loaded.channel.rollout_percentage > 0


def channel_row(loaded: LoadedChannel) -> dict[str, Any]:
    """The whole ``channels`` row (``select=*``, and what the T7 PATCH returns): the columns of
    Capgo's table that the CLI reads, with Capgo's names (plan §4.5)."""
    channel = loaded.channel
    return {
        "id": channel.id,
        "created_at": to_js_iso(channel.created_at),
        "name": channel.name,
        "app_id": channel.app_id,
        "version": loaded.version,
        "created_by": channel.created_by,
        "updated_at": to_js_iso(channel.updated_at),
        "public": channel.public,
        "disable_auto_update_under_native": channel.disable_auto_update_under_native,
        "disable_auto_update": channel.disable_auto_update,
        "ios": channel.ios,
        "android": channel.android,
        "electron": channel.electron,
        "allow_device_self_set": channel.allow_device_self_set,
        "allow_emulator": channel.allow_emulator,
        "allow_device": channel.allow_device,
        "allow_dev": channel.allow_dev,
        "allow_prod": channel.allow_prod,
        "owner_org": channel.owner_org,
        "rollout_version": loaded.rollout_version,
        "rollout_enabled": rollout_enabled(loaded),
        "rollout_percentage_bps": rollout_percentage_bps(channel),
    }
