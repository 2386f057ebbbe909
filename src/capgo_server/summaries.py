"""One line per operation, written for people, as ``/docs`` and ``/redoc`` list them.

Without a ``summary=`` FastAPI titles each operation after its function ("Post Stats"). A route
either is declared with its own ``summary=`` or has its line in :data:`SUMMARIES` (kept in one
place so that the whole API reads alike). ``tests/test_docs_offline.py`` fails for an
operation that has neither, or shares its summary with another.
"""

from __future__ import annotations

from typing import Any

_PLUGIN_ALIAS = " (under /plugin)"

#: (method, path) -> summary. The device endpoints answer under ``/plugin`` too.
_DEVICE = {
    ("POST", "/updates"): "Check for an update",
    ("POST", "/stats"): "Report device events",
    ("POST", "/channel_self"): "Choose the device's channel",
    ("PUT", "/channel_self"): "Get the device's channel",
    ("DELETE", "/channel_self"): "Forget the device's chosen channel",
    ("GET", "/channel_self"): "List the channels a device may choose",
}

SUMMARIES: dict[tuple[str, str], str] = {
    ("GET", "/ok"): "Check that the server is up",
    ("POST", "/ok"): "Check that the server is up (POST)",
    **_DEVICE,
    **{
        (method, f"/plugin{path}"): text + _PLUGIN_ALIAS for (method, path), text in _DEVICE.items()
    },
    ("GET", "/organization"): "Get an organization or list organizations",
    ("DELETE", "/organization"): "Delete an organization",
    ("GET", "/organization/audit"): "List an organization's audit log",
    ("GET", "/organization/members"): "List members and invitations",
    ("POST", "/organization/members"): "Invite a member",
    ("DELETE", "/organization/members"): "Remove a member or withdraw an invitation",
    ("POST", "/organization/members/accept"): "Accept an invitation",
    ("POST", "/organization/members/decline"): "Decline an invitation",
    ("GET", "/apikey"): "List API keys",
    ("POST", "/apikey"): "Create an API key",
    ("GET", "/apikey/{key_id}"): "Get an API key",
    ("PUT", "/apikey/{key_id}"): "Update an API key",
    ("DELETE", "/apikey/{key_id}"): "Delete an API key",
    ("GET", "/app"): "List apps",
    ("POST", "/app"): "Create an app",
    ("GET", "/app/{app_id}"): "Get an app",
    ("PUT", "/app/{app_id}"): "Update an app",
    ("DELETE", "/app/{app_id}"): "Delete an app",
    ("GET", "/channel"): "Get a channel or list channels",
    ("POST", "/channel"): "Create or update a channel",
    ("DELETE", "/channel"): "Delete a channel",
    ("GET", "/device"): "Get a device or list devices",
    ("POST", "/device"): "Pin a device to a channel",
    ("DELETE", "/device"): "Unpin a device from its channel",
    ("POST", "/bundle"): "Register a bundle hosted elsewhere",
    ("PUT", "/bundle"): "Set a bundle on a channel",
    ("POST", "/bundle/metadata"): "Set a bundle's link and comment",
    ("GET", "/statistics/app/{app_id}"): "Get an app's statistics",
    ("GET", "/statistics/app/{app_id}/bundle_usage"): "Get an app's bundle usage",
    ("GET", "/statistics/org/{org_id}"): "Get an organization's statistics",
    ("GET", "/statistics/user"): "Get the user's statistics",
    ("GET", "/files/config"): "Get upload limits",
    ("OPTIONS", "/files/upload/attachments/"): "Discover tus upload support",
    ("POST", "/files/upload/attachments/"): "Start a bundle upload",
    ("GET", "/files/upload/attachments/{upload_id}"): "Get an upload's progress",
    ("HEAD", "/files/upload/attachments/{upload_id}"): "Get an upload's offset (tus HEAD)",
    ("PATCH", "/files/upload/attachments/{upload_id}"): "Send a part of an upload",
    ("DELETE", "/files/upload/attachments/{upload_id}"): "Cancel an upload",
    ("GET", "/files/read/attachments/{path}"): "Download a bundle file",
    ("HEAD", "/files/read/attachments/{path}"): "Check a bundle file (HEAD)",
    ("POST", "/files/download_link"): "Get a bundle's download link",
}


def apply_summaries(document: dict[str, Any]) -> None:
    """Give the operations :data:`SUMMARIES` names their line in the OpenAPI document."""
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            summary = SUMMARIES.get((method.upper(), path))
            if summary is not None and isinstance(operation, dict):
                operation["summary"] = summary
