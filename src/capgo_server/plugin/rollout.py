"""Percentage rollout: which of a channel's two bundles a device is offered.

A channel may carry a second bundle (``rollout_version``) and a percentage
(``rollout_percentage``, 0..100). Each device gets a *sticky draw* in ``[0, 100)``: a hash of the
app, the device and the rollout bundle's id. The device is offered the rollout bundle when its
draw is under the percentage, otherwise the channel's main bundle (``version``). So:

* the same device always gets the same answer for the same rollout (no flapping between checks);
* raising the percentage only adds devices (``draw < pct`` is monotone in ``pct``);
* 0 % offers the rollout bundle to nobody, 100 % to everybody;
* a new rollout bundle re-draws every device (its id is part of the hash), so the devices that got
  the previous rollout first are not always the same ones.

Deleted bundles are never offered (House decision): a caller that knows the rollout bundle is
deleted passes ``rollout_deleted=True`` and the device falls back to the main bundle. (The
foreign key is ``ON DELETE SET NULL``, so a hard-deleted rollout bundle clears the rollout by
itself; the flag covers soft-deleted bundles, ``Bundle.deleted``.)
"""

from __future__ import annotations

from hashlib import sha256

from capgo_server.models import Channel

_SCALE = 2**64


def rollout_draw(app_id: str, device_id: str, rollout_version: int) -> float:
    """The device's sticky draw for this rollout bundle, uniform in ``[0, 100)``.

    Device ids are compared lower-cased (the plugin normalises them the same way).
    """
    seed = f"{app_id}|{device_id.lower()}|{rollout_version}".encode()
    return int.from_bytes(sha256(seed).digest()[:8], "big") / _SCALE * 100


def in_rollout(channel: Channel, app_id: str, device_id: str) -> bool:
    """True when this device falls inside the channel's rollout (ignoring deleted bundles)."""
    if channel.rollout_version is None or not channel.rollout_percentage > 0:
        return False
    return rollout_draw(app_id, device_id, channel.rollout_version) < channel.rollout_percentage


def rollout_bundle_id(
    channel: Channel, app_id: str, device_id: str, *, rollout_deleted: bool = False
) -> int:
    """The id of the bundle ``channel`` offers to this device.

    ``channel.rollout_version`` when a rollout is set, its percentage is above 0, the rollout
    bundle is not deleted (``rollout_deleted``: the caller checks ``Bundle.deleted``) and the
    device's sticky draw is under the percentage; ``channel.version`` otherwise. Pure: no I/O.
    """
    if not rollout_deleted and in_rollout(channel, app_id, device_id):
        assert channel.rollout_version is not None
        return channel.rollout_version
    return channel.version
