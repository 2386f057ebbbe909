"""Calls to the server's public API, and the one-line message for each refusal."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx

from capgo_server import __version__
from capgo_server.tus_client import TusError

PAGE_SIZE = 50
#: Error codes by which the routes refuse an unknown app or one the key may not use.
APP_REFUSALS = frozenset(
    {
        "cannot_access_app",
        "cannot_find_app",
        "app_not_found",
        "cannot_get_bundle",
        "cannot_delete_bundle",
        "insufficient_permissions",
        "owner_org_mismatch",
        "invalid_app_id",
    }
)
KEY_REFUSALS = frozenset({"invalid_apikey", "no_key_provided"})
T = TypeVar("T")


class CliError(Exception):
    """A failure reported to the user as one ``error: ...`` line."""


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str | None
    message: str

    @classmethod
    def of(cls, response: httpx.Response) -> Refusal:
        error = TusError.from_response(response)
        return cls(error.status, error.code, error.message)


class ApiClient:
    """JSON calls to the server's public API with ``authorization: <key>``."""

    def __init__(
        self,
        api: str,
        apikey: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 60.0,
    ) -> None:
        parts = urlsplit(api)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise CliError(
                f"--api must be an http(s) URL such as https://capgo.example.com: {api!r}"
            )
        if not apikey.strip():
            raise CliError("--apikey is empty")
        self.base = api.rstrip("/")
        self.http = httpx.AsyncClient(
            headers={"authorization": apikey, "user-agent": f"capgo-server-cli/{__version__}"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
            transport=transport,
        )

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.http.aclose()

    def url(self, path: str) -> str:
        return self.base + path

    async def guard(self, call: Awaitable[T]) -> T:
        """Await an HTTP call, turning network failures into a one-line ``CliError``."""
        try:
            return await call
        except httpx.TimeoutException as exc:
            raise CliError(f"the server at {self.base} did not answer in time") from exc
        except httpx.TransportError as exc:
            reason = str(exc).strip() or type(exc).__name__
            raise CliError(f"cannot reach the server at {self.base}: {reason}") from exc

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> httpx.Response:
        return await self.guard(self.http.request(method, self.url(path), params=params, json=body))

    async def key_is_valid(self) -> bool:
        """Whether the key exists at all (``GET /organization`` accepts every key mode)."""
        response = await self.call("GET", "/organization")
        return response.status_code != 401


def _json(response: httpx.Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise CliError(
            f"{what}: the server at {response.request.url.host} did not answer JSON "
            f"(HTTP {response.status_code}); is --api the capgo-server API URL?"
        ) from exc


async def explain(
    client: ApiClient,
    refusal: Refusal,
    *,
    app_id: str,
    action: str,
    modes: str,
    version: str | None = None,
) -> CliError:
    """The one-line error for a refused request."""
    if refusal.code in KEY_REFUSALS or (refusal.status == 401 and refusal.code is None):
        if not await client.key_is_valid():
            return CliError("invalid API key")
        return CliError(f"this API key may not {action} (it needs a key of mode {modes})")
    if refusal.code == "version_already_exists":
        return CliError(f"version {version} already exists for {app_id}")
    if refusal.code in APP_REFUSALS:
        return CliError(f"app {app_id} not found or not accessible with this key")
    if refusal.status == 413:
        return CliError(f"cannot {action}: {refusal.message}")
    if refusal.status == 429:
        return CliError(f"cannot {action}: the server is rate limiting this key; retry later")
    if refusal.code is None:
        return CliError(
            f"cannot {action}: HTTP {refusal.status} ({refusal.message}); "
            "is --api the capgo-server API URL?"
        )
    return CliError(f"cannot {action}: {refusal.message} ({refusal.code})")


@dataclass(frozen=True)
class AppInfo:
    """What the CLI needs of an app: its organization, and its default upload channel when the
    key may read the app (keys of mode write or upload may not: ``None``)."""

    owner_org: str
    default_upload_channel: str | None


async def read_app(client: ApiClient, app_id: str, org_id: str | None = None) -> AppInfo:
    """``GET /app/:id``. A key that may not read apps (mode write or upload) gets ``org_id``,
    else the key's only organization, and no default channel."""
    response = await client.call("GET", f"/app/{quote(app_id, safe='')}")
    if response.status_code == 200:
        app = _json(response, "reading the app")
        org = app.get("owner_org") if isinstance(app, dict) else None
        if not isinstance(org, str) or not org:
            raise CliError(f"GET /app/{app_id} answered without an owner_org")
        default = app.get("default_upload_channel")
        # Capgo's CLI reads a null default as "production".
        channel = default if isinstance(default, str) and default else "production"
        return AppInfo(org_id or org, channel)
    refusal = Refusal.of(response)
    if refusal.status != 401 or refusal.code not in KEY_REFUSALS:
        raise await explain(
            client, refusal, app_id=app_id, action="read the app", modes="all or read"
        )
    orgs = await client.call("GET", "/organization")
    if orgs.status_code == 401:
        raise CliError("invalid API key")
    if org_id:
        return AppInfo(org_id, None)
    listed = _json(orgs, "listing organizations") if orgs.status_code == 200 else None
    if isinstance(listed, list) and len(listed) == 1 and isinstance(listed[0], dict):
        return AppInfo(str(listed[0]["id"]), None)
    raise CliError(
        f"this API key may not read app {app_id} (mode upload or write): "
        "pass --org-id with the id of the app's organization"
    )


async def list_bundles(client: ApiClient, app_id: str) -> list[dict[str, Any]]:
    """Every live bundle of the app, newest first (all pages of ``GET /bundle``)."""
    rows: list[dict[str, Any]] = []
    for page in range(10_000):
        response = await client.call("GET", "/bundle", params={"app_id": app_id, "page": page})
        if response.status_code != 200:
            raise await explain(
                client,
                Refusal.of(response),
                app_id=app_id,
                action="list bundles",
                modes="all, write or read",
            )
        batch = _json(response, "listing bundles")
        if not isinstance(batch, list):
            raise CliError("GET /bundle did not answer a list")
        rows.extend(batch)
        if len(batch) < PAGE_SIZE:
            break
    return rows


async def list_channels(client: ApiClient, app_id: str, action: str) -> list[str]:
    """The names of the app's channels, oldest first (all pages of ``GET /channel``)."""
    names: list[str] = []
    for page in range(10_000):
        response = await client.call("GET", "/channel", params={"app_id": app_id, "page": page})
        if response.status_code != 200:
            raise await explain(
                client, Refusal.of(response), app_id=app_id, action=action, modes="all or write"
            )
        batch = _json(response, "listing channels")
        if not isinstance(batch, list):
            raise CliError("GET /channel did not answer a list")
        names.extend(str(row.get("name")) for row in batch if isinstance(row, dict))
        if len(batch) < PAGE_SIZE:
            break
    return names


async def served_version(client: ApiClient, app_id: str, channel: str, action: str) -> str | None:
    """The version channel ``channel`` serves now, or None when the app has no such channel.

    A key that may not read channels (mode upload) is refused with the reason, as ``action``.
    """
    found = await client.call("GET", "/channel", params={"app_id": app_id, "channel": channel})
    if found.status_code == 200:
        body = _json(found, "reading the channel")
        version = body.get("version") if isinstance(body, dict) else None
        name = version.get("name") if isinstance(version, dict) else None
        return str(name) if name is not None else "unknown"
    refusal = Refusal.of(found)
    if refusal.code == "cannot_find_version":  # Capgo's code for a missing channel
        return None
    raise await explain(client, refusal, app_id=app_id, action=action, modes="all or write")


async def set_channel(client: ApiClient, app_id: str, channel: str, version: str) -> None:
    """Point ``channel`` at bundle ``version`` (``POST /channel``; creates a missing channel)."""
    body = {"app_id": app_id, "channel": channel, "version": version}
    response = await client.call("POST", "/channel", body=body)
    if response.status_code == 200:
        return
    refusal = Refusal.of(response)
    if refusal.code == "cannot_find_version":
        raise CliError(
            f"version {version} not found for {app_id} "
            f"(`capgo-server bundle list --app-id {app_id}` lists its bundles)"
        )
    raise await explain(
        client, refusal, app_id=app_id, action=f"set channel {channel}", modes="all or write"
    )
