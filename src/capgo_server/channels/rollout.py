"""Percentage rollout set through ``POST /channel`` (``rollout_version``, ``rollout_percentage``).

Which devices get the rollout bundle is decided by :mod:`capgo_server.plugin.rollout` (a sticky
draw per device). Here: checking what ``POST /channel`` asks for.

* ``rollout_version``: a bundle *name*, like ``version``; it must be a live (not deleted) bundle
  of the app — the internal ``builtin``/``unknown`` are refused too — else 400
  ``cannot_find_version``. ``null`` clears the rollout (and resets the percentage to 0 unless
  the same request gives one); omitted leaves it unchanged.
* ``rollout_percentage``: a JSON number from 0 to 100, else 400 ``invalid_rollout_percentage``;
  omitted leaves it unchanged.

Unlike ``version``, a rollout change records no deploy-history entry: the history lists the
bundles a channel served to all its devices. It does appear in the audit log (a channel UPDATE).
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from capgo_server.channels.schemas import ChannelSet
from capgo_server.errors import ApiError
from capgo_server.models import App, Bundle
from capgo_server.validation import is_internal_version_name


def _echo(value: Any) -> Any:
    """``value`` when it is a JSON scalar that can be sent back (not NaN/Infinity), else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value if isinstance(value, bool | int | float | str) else None


def checked_percentage(value: Any) -> float:
    """``value`` as a percentage, or 400 ``invalid_rollout_percentage``.

    Compared, never converted, before the range is known: ``float()`` of a JSON integer of a
    few hundred digits overflows, and NaN and the infinities fail the comparison.
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        raise ApiError(
            400,
            "invalid_rollout_percentage",
            "rollout_percentage must be a number from 0 to 100",
            {"rollout_percentage": _echo(value)},
        )
    return float(value)


async def _rollout_bundle(session: AsyncSession, app: App, name: str) -> Bundle:
    bundle = None
    message = f"Bundle {name} does not exist for app {app.app_id} (or is deleted): upload it first"
    if is_internal_version_name(name):
        message = f"{name} names the app's native state, not a bundle: it cannot be rolled out"
    else:
        bundle = await session.scalar(
            select(Bundle).where(
                Bundle.app_id == app.app_id, Bundle.name == name, Bundle.deleted.is_(False)
            )
        )
    if bundle is None:
        raise ApiError(400, "cannot_find_version", message, {"rollout_version": name})
    return bundle


async def rollout_changes(session: AsyncSession, app: App, body: ChannelSet) -> dict[str, Any]:
    """The ``channels`` column changes the body asks for (empty when it names no rollout field).

    400 ``cannot_find_version`` / ``invalid_rollout_percentage`` as the module says.
    """
    given = body.model_fields_set
    changes: dict[str, Any] = {}
    if "rollout_version" in given:
        if body.rollout_version is None:
            changes["rollout_version"] = None
            changes["rollout_percentage"] = 0.0
        else:
            changes["rollout_version"] = (
                await _rollout_bundle(session, app, body.rollout_version)
            ).id
    if "rollout_percentage" in given:
        changes["rollout_percentage"] = checked_percentage(body.rollout_percentage)
    return changes
