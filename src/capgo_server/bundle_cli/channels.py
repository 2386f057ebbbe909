"""Which channel a bundle goes to, checked before the upload, and ``bundle promote``.

A release must not vanish: an upload without ``--channel`` goes to the app's
``default_upload_channel`` (as Capgo's CLI does) or says plainly that no channel serves it, and
a channel is only created when ``--create-channel`` says so (a typo such as ``prod`` would
otherwise become a new private channel that no device reaches).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any, Literal

from capgo_server.bundle_cli.api import (
    ApiClient,
    AppInfo,
    CliError,
    list_channels,
    served_version,
    set_channel,
)

#: Where the target channel came from: ``--channel``, or the app's default upload channel.
Source = Literal["option", "default"]


@dataclass(frozen=True)
class ChannelPlan:
    """The channel to set once the bundle is stored, decided before any byte is sent.

    ``name`` None: no channel will serve the bundle (``warning`` says why, unless
    ``--no-channel`` asked for that). ``previous`` is the version the channel serves now, None
    when the channel is to be created.
    """

    name: str | None
    source: Source | None
    previous: str | None = None
    warning: str | None = None

    @property
    def creates(self) -> bool:
        return self.name is not None and self.previous is None


def promote_hint(app_id: str, version: str, channel: str, *, create: bool = False) -> str:
    command = (
        f"capgo-server bundle promote --app-id {app_id} --version {version} --channel {channel}"
    )
    return f"`{command}{' --create-channel' if create else ''}`"


def _closest(wanted: str, names: list[str]) -> str | None:
    """The channel a mistyped name most likely meant: same letters in another case, a prefix
    (``prod``), else a close spelling."""
    folded = wanted.casefold()
    for name in names:
        if name.casefold() == folded:
            return name
    for name in names:
        if name.casefold().startswith(folded) or folded.startswith(name.casefold()):
            return name
    close = difflib.get_close_matches(wanted, names, n=1)
    return close[0] if close else None


def _channels_named(app_id: str, names: list[str], wanted: str) -> str:
    if not names:
        return f"{app_id} has no channels yet"
    close = _closest(wanted, names)
    guess = f"; did you mean {close!r}?" if close else ""
    return f"channels of {app_id}: {', '.join(names)}{guess}"


async def plan_channel(
    client: ApiClient,
    app: AppInfo,
    *,
    app_id: str,
    version: str,
    channel: str | None,
    create: bool,
    no_channel: bool,
) -> ChannelPlan:
    """Decide the channel before uploading; a ``CliError`` here means nothing was uploaded."""
    if no_channel:
        return ChannelPlan(None, None)
    source: Source = "option" if channel else "default"
    name = channel or app.default_upload_channel
    if name is None:
        return ChannelPlan(
            None,
            None,
            warning=f"no channel serves {version}: this API key may not read {app_id}'s default "
            "upload channel (keys of mode write or upload cannot read apps); name it with "
            "--channel (a key of mode write may), or run "
            f"{promote_hint(app_id, version, 'NAME')} with a key of mode all or write; "
            "--no-channel says that no channel is wanted",
        )
    action = f"set channel {name}"
    try:
        previous = await served_version(client, app_id, name, action)
    except CliError as exc:
        raise CliError(f"{exc}; nothing was uploaded") from exc
    if previous is not None or create:
        return ChannelPlan(name, source, previous)
    names = await list_channels(client, app_id, action)
    if source == "option":
        raise CliError(
            f"channel {name!r} does not exist ({_channels_named(app_id, names, name)}); "
            "nothing was uploaded: check the name, or pass --create-channel to create it"
        )
    existing = f"; or {promote_hint(app_id, version, names[0])}" if names else ""
    return ChannelPlan(
        None,
        None,
        warning=f"no channel serves {version}: {app_id}'s default upload channel {name!r} does "
        f"not exist ({_channels_named(app_id, names, name)}); to serve this bundle run "
        f"{promote_hint(app_id, version, name, create=True)}{existing}",
    )


def private_channel_notes(app_id: str, channel: str) -> list[str]:
    """What a new channel means, told when one is created (it is private)."""
    public = json.dumps({"app_id": app_id, "channel": channel, "public": True})
    return [
        f"created channel {channel!r} of {app_id}: it is private, so only devices with an "
        f"override to it (POST /device) or defaultChannel {channel!r} in their app's "
        "capacitor.config get its bundles",
        f"to serve every device from it, make it public: POST /channel {public}",
    ]


@dataclass(frozen=True)
class Promotion:
    app_id: str
    channel: str
    version: str
    previous: str | None
    changed: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "app_id": self.app_id,
            "channel": self.channel,
            "version": self.version,
            "previous_version": self.previous,
            "changed": self.changed,
            "channel_created": self.changed and self.previous is None,
        }


async def promote(
    client: ApiClient, app_id: str, version: str, channel: str, *, create: bool
) -> Promotion:
    """Set the existing bundle ``version`` on the channel ``channel`` (which must exist unless
    ``create``)."""
    action = f"set channel {channel}"
    previous = await served_version(client, app_id, channel, action)
    if previous is None and not create:
        names = await list_channels(client, app_id, action)
        raise CliError(
            f"channel {channel!r} does not exist ({_channels_named(app_id, names, channel)}); "
            "check the name, or pass --create-channel to create it"
        )
    if previous == version:
        return Promotion(app_id, channel, version, previous, changed=False)
    await set_channel(client, app_id, channel, version)
    return Promotion(app_id, channel, version, previous, changed=True)
