"""The actions a device may report to ``POST /stats`` (spec §5.4).

Capgo's ``ALLOWED_STATS_ACTIONS`` as of the API-key-mode generation: anything else (including
``rate_limit_reached``, which newer plugins send) is refused with 400 ``invalid_json_body``. The
database enum's extra values (``keyMismatch``, ``backend_refusal``, ``disablePlatformElectron``)
are written by the server itself, never accepted from a device.
"""

from __future__ import annotations

#: Every action a device may report; ``*_fail`` actions count a failure for the bundle.
ALLOWED_STATS_ACTIONS: frozenset[str] = frozenset(
    {
        "ping",
        "delete",
        "reset",
        "set",
        "get",
        "set_fail",
        "update_fail",
        "download_fail",
        "windows_path_fail",
        "canonical_path_fail",
        "directory_path_fail",
        "unzip_fail",
        "low_mem_fail",
        *(f"download_{percent}" for percent in range(0, 100, 10)),
        "download_complete",
        "download_manifest_start",
        "download_manifest_complete",
        "download_zip_start",
        "download_zip_complete",
        "download_manifest_file_fail",
        "download_manifest_checksum_fail",
        "download_manifest_brotli_fail",
        "decrypt_fail",
        "app_moved_to_foreground",
        "app_moved_to_background",
        "uninstall",
        "needPlanUpgrade",
        "missingBundle",
        "noNew",
        "disablePlatformIos",
        "disablePlatformAndroid",
        "disableAutoUpdateToMajor",
        "cannotUpdateViaPrivateChannel",
        "disableAutoUpdateToMinor",
        "disableAutoUpdateToPatch",
        "channelMisconfigured",
        "disableAutoUpdateMetadata",
        "disableAutoUpdateUnderNative",
        "disableDevBuild",
        "disableProdBuild",
        "disableEmulator",
        "disableDevice",
        "cannotGetBundle",
        "checksum_fail",
        "NoChannelOrOverride",
        "setChannel",
        "getChannel",
        "rateLimited",
        "disableAutoUpdate",
        "InvalidIp",
        "blocked_by_server_url",
    }
)
