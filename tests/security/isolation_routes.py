"""The route table of the isolation matrix: which routes, which kinds of key, which answers.

``PROFILES`` is the table key kind x target -> symbol, and ``ROUTES`` names each route's
request builder, profile and what its symbols mean (see ``test_isolation_matrix.py``).
``planned_cases`` expands them into the cases of one tenant's run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from capgo_server.cli_compat.config import ANON_KEY
from tests.security.isolation_cli_requests import (
    b_cli_channel,
    b_cli_declare,
    b_cli_default_channel,
    b_cli_delete_failed,
    b_cli_delete_version,
    b_cli_finalize,
    b_cli_functions_app,
    b_cli_self_assign,
    check_cli_channel,
)
from tests.security.isolation_requests import (
    b_accept,
    b_app_create,
    b_app_delete,
    b_app_get,
    b_app_list,
    b_app_list_org,
    b_app_update,
    b_audit,
    b_bundle_create,
    b_bundle_delete,
    b_bundle_list,
    b_bundle_metadata,
    b_bundle_set,
    b_channel,
    b_channel_delete,
    b_channel_save,
    b_channels,
    b_decline,
    b_device,
    b_device_link,
    b_device_unlink,
    b_devices,
    b_download_link,
    b_invite,
    b_key_create,
    b_key_delete,
    b_key_for_app_uuid,
    b_key_get,
    b_key_get_by_value,
    b_key_limited_to_org,
    b_key_update,
    b_keys,
    b_member_remove,
    b_members,
    b_my_invitations,
    b_org_create,
    b_org_delete,
    b_org_get,
    b_org_list,
    b_org_update,
    b_stats_app,
    b_stats_org,
    b_stats_user,
    b_upload_create,
    b_upload_status,
    b_upload_terminate,
    check_app_list,
    check_key_list,
    check_my_invitations,
    check_org_list,
    check_storage,
    remember_key,
    x_channel_on_foreign_bundle,
    x_delete_foreign_bundle,
    x_delete_foreign_channel,
    x_get_foreign_channel,
    x_get_foreign_device,
    x_link_to_foreign_file,
    x_metadata_of_foreign_bundle,
    x_pin_to_foreign_channel,
    x_pin_to_foreign_channel_id,
    x_set_foreign_bundle,
    x_set_on_foreign_channel,
    x_unpin_foreign_device,
    x_upload_under_foreign_org,
)
from tests.security.isolation_tenants import Build, Check

KINDS = ("all", "write", "upload", "read", "org", "app", "sub_org", "sub_app_read")
TARGETS = ("own", "sibling", "foreign")

# fmt: off
#: key kind x target -> symbol. One string per kind: a character per target (own, sibling,
#: foreign), or a single character for routes without a target.
#:                    all    write  upload read   org    app    sub_org sub_app_read
PROFILES: dict[str, tuple[str, ...]] = {
    "any":           ("+",   "+",   "+",   "+",   "+",   "+",   "+",   "+"),
    "org_create":    ("+",   "+",   "D",   "D",   "D",   "D",   "D",   "D"),
    "org_read":      ("++D", "++D", "++D", "++D", "+DD", "++D", "+DD", "++D"),
    "org_wide_read": ("++D", "++D", "++D", "++D", "+DD", "DDD", "+DD", "DDD"),
    "org_admin":     ("++D", "++D", "DDD", "DDD", "+DD", "DDD", "+DD", "DDD"),
    "org_delete":    ("+-D", "+-D", "D-D", "D-D", "D-D", "D-D", "D-D", "D-D"),
    "member_remove": ("++D", "DDD", "DDD", "DDD", "+DD", "DDD", "+DD", "DDD"),
    "member_accept": ("NNN", "NNN", "DDD", "DDD", "NDD", "DDD", "NDD", "DDD"),
    "keys":          ("+",   "M",   "M",   "M",   "L",   "L",   "L",   "S"),
    "key_one":       ("+-D", "M-M", "M-M", "M-M", "L-L", "L-L", "L-L", "S-S"),
    "key_limit":     ("++D", "MMM", "MMM", "MMM", "LLL", "LLL", "LLL", "SSS"),
    "app_list":      ("+",   "M",   "M",   "+",   "+",   "+",   "+",   "+"),
    "app_list_org":  ("++D", "MMM", "MMM", "++D", "+DD", "++D", "+DD", "++D"),
    "app_get":       ("++D", "MMM", "MMM", "++D", "+DD", "+DD", "+DD", "+DD"),
    "app_create":    ("++D", "++D", "MMM", "MMM", "+DD", "DDD", "+DD", "SSS"),
    "app_delete":    ("++D", "++D", "MMM", "MMM", "+DD", "DDD", "+DD", "SSS"),
    "read":          ("++D", "++D", "MMM", "++D", "+DD", "+DD", "+DD", "+DD"),
    "write":         ("++D", "++D", "MMM", "MMM", "+DD", "+DD", "+DD", "SSS"),
    "channel_del":   ("++D", "DDD", "MMM", "MMM", "+DD", "+DD", "+DD", "SSS"),
    "upload":        ("++D", "++D", "++D", "MMM", "+DD", "+DD", "+DD", "SSS"),
    "stats_app":     ("++D", "MMM", "MMM", "++D", "+DD", "+DD", "+DD", "+DD"),
    "stats_org":     ("++D", "MMM", "MMM", "++D", "+MM", "MMM", "+MM", "MMM"),
    "stats_user":    ("+",   "M",   "M",   "+",   "+",   "+",   "+",   "+"),
    # the tenant's own app with a reference (bundle, channel, device...) of the other tenant
    "cross_read":    ("D",   "D",   "M",   "D",   "D",   "D",   "D",   "D"),
    "cross_write":   ("D",   "D",   "M",   "M",   "D",   "D",   "D",   "S"),
    "cross_ch_del":  ("D",   "N",   "M",   "M",   "D",   "D",   "D",   "S"),
    "cross_upload":  ("D",   "D",   "D",   "M",   "D",   "D",   "D",   "S"),
    # the official CLI's routes reading the key from capgkey with any mode (then authorized)
    "cli_read":      ("++D", "++D", "++D", "++D", "+DD", "+DD", "+DD", "+DD"),
    "cli_write":     ("++D", "++D", "DDD", "DDD", "+DD", "+DD", "+DD", "DDD"),
    "cli_upload":    ("++D", "++D", "++D", "DDD", "+DD", "+DD", "+DD", "DDD"),
}
# fmt: on

COMMON_CODES: dict[str, tuple[int, str]] = {
    "M": (401, "invalid_apikey"),
    "S": (401, "invalid_subkey"),
}


@dataclass(frozen=True)
class Route:
    name: str
    build: Build
    profile: str
    denied: tuple[int, str] | None = None
    ok: int = 200
    codes: dict[str, tuple[int, str]] = field(default_factory=dict)
    check: Check | None = None
    #: Where the key goes: ``public`` as the public API reads it (the case's headers);
    #: ``supabase`` in ``capgkey`` with the anon value in ``Authorization``, as the official
    #: CLI calls ``/rest/v1`` and ``/functions/v1``; ``cli_api`` in ``capgkey`` and raw in
    #: ``Authorization``, as it calls the other routes.
    keys_in: str = "public"

    def key_headers(self, headers: dict[str, str]) -> dict[str, str]:
        if self.keys_in == "public":
            return headers
        moved = {name: value for name, value in headers.items() if name != "authorization"}
        key = headers["authorization"]
        moved["capgkey"] = key
        moved["authorization"] = key if self.keys_in == "cli_api" else f"Bearer {ANON_KEY}"
        return moved

    def expected(self, symbol: str) -> tuple[int, str | None]:
        if symbol == "+":
            return self.ok, None
        if symbol == "D":
            assert self.denied is not None, self.name
            return self.denied
        return {**COMMON_CODES, **self.codes}[symbol]


ORG_ID_DENIED = (400, "invalid_org_id")
CANNOT_ACCESS_ORG = (400, "cannot_access_organization")
CANNOT_ACCESS_APP = (400, "cannot_access_app")
UPLOAD_NOT_FOUND = (404, "upload_not_found")
NO_VERSION = (400, "cannot_find_version")
NO_CHANNEL = (404, "channel_not_found")
APP_NOT_FOUND = (404, "app_not_found")
#: PostgREST's answers (their ``code``): an object asked of no rows, a write refused.
NO_ROW = (406, "PGRST116")
RLS_DENIED = (403, "42501")

ROUTES: list[Route] = [
    # organizations, members, audit
    Route("GET /organization", b_org_list, "any", check=check_org_list),
    Route("GET /organization?orgId", b_org_get, "org_read", ORG_ID_DENIED),
    Route("POST /organization (create)", b_org_create, "org_create", (400, "cannot_create_org")),
    Route("PUT /organization (create)", b_org_create, "org_create", (400, "cannot_create_org")),
    Route("POST /organization (update)", b_org_update("POST"), "org_admin", CANNOT_ACCESS_ORG),
    Route("PUT /organization (update)", b_org_update("PUT"), "org_admin", CANNOT_ACCESS_ORG),
    Route("DELETE /organization", b_org_delete, "org_delete", (403, "invalid_org_id")),
    Route("GET /organization/members", b_members, "org_read", CANNOT_ACCESS_ORG),
    Route("POST /organization/members", b_invite, "org_admin", CANNOT_ACCESS_ORG),
    Route(
        "GET /organization/members/invitations",
        b_my_invitations,
        "any",
        check=check_my_invitations,
    ),
    Route(
        "POST /organization/members/accept",
        b_accept,
        "member_accept",
        CANNOT_ACCESS_ORG,
        codes={"N": (404, "invitation_not_found")},
    ),
    Route(
        "POST /organization/members/decline",
        b_decline,
        "member_accept",
        CANNOT_ACCESS_ORG,
        codes={"N": (404, "invitation_not_found")},
    ),
    Route("DELETE /organization/members", b_member_remove, "member_remove", CANNOT_ACCESS_ORG),
    Route("GET /organization/audit", b_audit, "org_wide_read", ORG_ID_DENIED),
    # API keys
    Route(
        "GET /apikey",
        b_keys,
        "keys",
        codes={"L": (401, "cannot_list_apikeys")},
        check=check_key_list,
    ),
    Route(
        "POST /apikey",
        b_key_create,
        "keys",
        codes={"L": (400, "cannot_create_apikey")},
        check=remember_key,
    ),
    Route(
        "POST /apikey limited_to_orgs",
        b_key_limited_to_org,
        "key_limit",
        (404, "org_not_found"),
        codes={"L": (400, "cannot_create_apikey")},
        check=remember_key,
    ),
    Route(
        "POST /apikey app_id",
        b_key_for_app_uuid,
        "key_limit",
        (404, "app_not_found"),
        codes={"L": (400, "cannot_create_apikey")},
        check=remember_key,
    ),
    Route(
        "GET /apikey/:id",
        b_key_get,
        "key_one",
        (404, "failed_to_get_apikey"),
        codes={"L": (401, "cannot_get_apikey")},
    ),
    Route(
        "GET /apikey/:key",
        b_key_get_by_value,
        "key_one",
        (404, "failed_to_get_apikey"),
        codes={"L": (401, "cannot_get_apikey")},
    ),
    Route(
        "PUT /apikey/:id",
        b_key_update,
        "key_one",
        (404, "api_key_not_found_or_access_denied"),
        codes={"L": (401, "cannot_update_apikey")},
    ),
    Route(
        "DELETE /apikey/:id",
        b_key_delete,
        "key_one",
        (404, "api_key_not_found"),
        codes={"L": (401, "cannot_delete_apikey")},
    ),
    # apps
    Route("GET /app", b_app_list, "app_list", check=check_app_list),
    Route(
        "GET /app?org_id",
        b_app_list_org,
        "app_list_org",
        (400, "user_does_not_have_access_to_this_organization"),
        check=check_app_list,
    ),
    Route("GET /app/:id", b_app_get, "app_get", (401, "cannot_access_app")),
    Route("POST /app", b_app_create, "app_create", (403, "cannot_access_organization")),
    Route("PUT /app/:id", b_app_update, "write", (401, "cannot_access_app")),
    Route("DELETE /app/:id", b_app_delete, "app_delete", (400, "cannot_delete_app")),
    # channels
    Route("GET /channel", b_channels, "read", CANNOT_ACCESS_APP),
    Route("GET /channel?channel", b_channel, "read", CANNOT_ACCESS_APP),
    Route("POST /channel", b_channel_save, "write", CANNOT_ACCESS_APP),
    Route("DELETE /channel", b_channel_delete, "channel_del", CANNOT_ACCESS_APP),
    # devices and overrides
    Route("GET /device", b_devices, "read", CANNOT_ACCESS_APP),
    Route("GET /device?device_id", b_device, "read", CANNOT_ACCESS_APP),
    Route("POST /device", b_device_link, "write", CANNOT_ACCESS_APP),
    Route("DELETE /device", b_device_unlink, "write", CANNOT_ACCESS_APP),
    # bundles, metadata, legacy /versions
    Route("GET /bundle", b_bundle_list("/bundle"), "read", (400, "cannot_get_bundle")),
    Route("GET /versions", b_bundle_list("/versions"), "read", (400, "cannot_get_bundle")),
    Route("POST /bundle", b_bundle_create, "write", (400, "cannot_create_bundle")),
    Route("PUT /bundle", b_bundle_set, "write", CANNOT_ACCESS_APP),
    Route("POST /bundle/metadata", b_bundle_metadata, "write", (400, "cannot_find_version")),
    Route("DELETE /bundle", b_bundle_delete("/bundle"), "write", (400, "cannot_delete_bundle")),
    Route("DELETE /versions", b_bundle_delete("/versions"), "write", (400, "cannot_delete_bundle")),
    # files
    Route("POST /files/download_link", b_download_link, "read", CANNOT_ACCESS_APP),
    Route(
        "POST /files/upload/attachments/",
        b_upload_create,
        "upload",
        (404, "app_not_found"),
        ok=201,
    ),
    Route("GET /files/upload/attachments/:id", b_upload_status, "upload", UPLOAD_NOT_FOUND),
    Route(
        "DELETE /files/upload/attachments/:id",
        b_upload_terminate,
        "upload",
        UPLOAD_NOT_FOUND,
        ok=204,
    ),
    # statistics
    Route(
        "GET /statistics/app/:id",
        b_stats_app(""),
        "stats_app",
        (401, "no_access_to_app"),
        check=check_storage,
    ),
    Route(
        "GET /statistics/app/:id/bundle_usage",
        b_stats_app("/bundle_usage"),
        "stats_app",
        (401, "no_access_to_app"),
    ),
    Route(
        "GET /statistics/org/:id",
        b_stats_org,
        "stats_org",
        (401, "no_access_to_organization"),
        check=check_storage,
    ),
    Route("GET /statistics/user", b_stats_user, "stats_user", check=check_storage),
    # own app, the other tenant's reference
    Route("PUT /bundle: foreign version_id", x_set_foreign_bundle, "cross_write", NO_VERSION),
    Route(
        "PUT /bundle: foreign channel_id",
        x_set_on_foreign_channel,
        "cross_write",
        (400, "cannot_find_channel"),
    ),
    Route(
        "POST /bundle/metadata: foreign version_id",
        x_metadata_of_foreign_bundle,
        "cross_write",
        NO_VERSION,
    ),
    Route(
        "POST /channel: foreign bundle name", x_channel_on_foreign_bundle, "cross_write", NO_VERSION
    ),
    Route("GET /channel: foreign channel name", x_get_foreign_channel, "cross_read", NO_VERSION),
    Route(
        "DELETE /channel: foreign channel name",
        x_delete_foreign_channel,
        "cross_ch_del",
        (400, "cannot_find_channel"),
        codes={"N": CANNOT_ACCESS_APP},
    ),
    Route(
        "POST /device: foreign channel name",
        x_pin_to_foreign_channel,
        "cross_write",
        NO_CHANNEL,
    ),
    Route(
        "POST /device: foreign channel_id",
        x_pin_to_foreign_channel_id,
        "cross_write",
        NO_CHANNEL,
    ),
    Route(
        "GET /device: foreign device_id",
        x_get_foreign_device,
        "cross_read",
        (404, "device_not_found"),
    ),
    Route(
        "DELETE /device: foreign device_id",
        x_unpin_foreign_device,
        "cross_write",
        (404, "override_not_found"),
    ),
    Route(
        "DELETE /bundle: foreign version name",
        x_delete_foreign_bundle,
        "cross_write",
        (400, "cannot_delete_version"),
    ),
    Route(
        "POST /files/download_link: foreign version name",
        x_link_to_foreign_file,
        "cross_read",
        (404, "bundle_not_found"),
    ),
    Route(
        "POST /files/upload/attachments/: own app under foreign org",
        x_upload_under_foreign_org,
        "cross_upload",
        (400, "invalid_file_path"),
    ),
    # the official CLI's routes (outside the OpenAPI document); their other requests, RPCs
    # included, are in test_cli_compat_attacks.py
    Route(
        "GET /functions/v1/app/:id",
        b_cli_functions_app,
        "cli_read",
        APP_NOT_FOUND,
        keys_in="supabase",
    ),
    Route("GET /app/:id (official CLI)", b_app_get, "cli_read", APP_NOT_FOUND, keys_in="cli_api"),
    Route("GET /rest/v1/apps (T1)", b_cli_default_channel, "cli_read", NO_ROW, keys_in="supabase"),
    Route(
        "GET /rest/v1/channels (T6)",
        b_cli_channel,
        "cli_read",
        NO_ROW,
        check=check_cli_channel,
        keys_in="supabase",
    ),
    Route(
        "PATCH /rest/v1/channels (T7)",
        b_cli_self_assign,
        "cli_write",
        RLS_DENIED,
        keys_in="supabase",
    ),
    Route(
        "POST /rest/v1/app_versions (T11)",
        b_cli_declare,
        "cli_upload",
        RLS_DENIED,
        ok=201,
        keys_in="supabase",
    ),
    Route(
        "PATCH /rest/v1/app_versions (T13)",
        b_cli_delete_version,
        "cli_write",
        RLS_DENIED,
        ok=204,
        keys_in="supabase",
    ),
    Route(
        "POST /private/finalize_bundle_upload",
        b_cli_finalize,
        "upload",
        APP_NOT_FOUND,
        keys_in="cli_api",
    ),
    Route(
        "DELETE /private/delete_failed_version",
        b_cli_delete_failed,
        "upload",
        APP_NOT_FOUND,
        keys_in="cli_api",
    ),
]

#: The sub-key of the *other* tenant, presented with this tenant's ``all`` key.
FOREIGN_SUBKEY = "sub_foreign"


def planned_cases() -> list[tuple[Route, str, str, str]]:
    """(route, key kind, target, expected symbol) of one tenant's run."""
    cases: list[tuple[Route, str, str, str]] = []
    for route in ROUTES:
        row = PROFILES[route.profile]
        assert len(row) == len(KINDS), route.name
        for kind, symbols in zip(KINDS, row, strict=True):
            targets = TARGETS if len(symbols) == 3 else ("none",)
            assert len(symbols) == len(targets), (route.name, kind)
            for target, symbol in zip(targets, symbols, strict=True):
                if symbol != "-":
                    cases.append((route, kind, target, symbol))
        width = len(row[0])
        targets = TARGETS if width == 3 else ("none",)
        for target, symbol in zip(targets, row[0], strict=True):
            if symbol != "-":
                cases.append((route, FOREIGN_SUBKEY, target, "S"))
    return cases
