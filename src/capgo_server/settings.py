"""Every setting of the server, read from environment variables prefixed ``CAPGO_``."""

from __future__ import annotations

import ipaddress
import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from capgo_server.private_files import FOLDER_MODE, publish_private_text

#: Values an operator might leave in a config file by mistake; never accepted as a real secret.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "placeholder", "xxx"})
#: Words that mark a secret copied from an example rather than generated.
PLACEHOLDER_WORDS = (
    "changeme",
    "change-me",
    "change_me",
    "change me",
    "replaceme",
    "replace-me",
    "replace_me",
    "your-secret",
    "your_secret",
    "yoursecret",
    "placeholder",
)
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Shortest ``CAPGO_SECRET`` accepted in production (characters).
MIN_SECRET_LENGTH = 32


def is_placeholder_secret(value: str) -> bool:
    text = value.strip().lower()
    return text in PLACEHOLDER_SECRETS or any(word in text for word in PLACEHOLDER_WORDS)


def parse_trusted_proxies(value: str) -> tuple[IPNetwork, ...]:
    """``CAPGO_TRUSTED_PROXIES``: comma-separated IP addresses or CIDR networks (``""``: none).

    Raises ``ValueError`` naming the first entry that is neither (uvicorn would take it as a
    literal that matches nothing, and the operator would not learn why).
    """
    networks = []
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or network") from None
    return tuple(networks)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CAPGO_", extra="ignore")

    env: Literal["development", "production"] = "development"
    data_dir: Path = Path("./data")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL; defaults to a SQLite file under data_dir.",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Where clients reach the server: download and upload URLs are built on it. "
        "`serve` without it uses the address it serves (--host, --port).",
    )
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated IP addresses or CIDR networks of the reverse proxies whose "
        "X-Forwarded-For and X-Forwarded-Proto are believed; empty: no one's (capgo_server."
        "forwarded).",
    )
    secret: str | None = Field(
        default=None,
        description="Signs download URLs. Required in production; generated and kept "
        "under data_dir in development.",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024, description="Largest JSON request body accepted (413 past it)."
    )
    rate_limit_failed_auth: int = Field(
        default=20, description="Failed authentications per client IP per window before 429."
    )
    rate_limit_failed_auth_window_seconds: int = 15 * 60
    rate_limit_api_key_per_minute: int = Field(
        default=2000, description="Requests per API key per minute before 429."
    )
    rate_limit_device_per_minute: int = Field(
        default=60,
        description="Device endpoint requests per (app, device, endpoint) per minute before 429.",
    )
    rate_limit_ip_per_minute: int = Field(
        default=6000,
        description="Device endpoint requests per client IP per minute before 429 (all device "
        "endpoints together; generous because many devices can share one NAT address).",
    )
    rate_limit_channel_self_same_channel_seconds: int = Field(
        default=60,
        description="A device may ask POST /channel_self for the same channel at most once in "
        "this many seconds (429 otherwise); 0 disables the rule.",
    )
    stats_max_batch_events: int = Field(
        default=200,
        ge=1,
        description="Most events one POST /stats batch may carry (400 invalid_json_body past "
        "it). The plugin sends its queue of at most 200 events as one batch.",
    )
    record_interval_seconds: float = Field(
        default=1.0,
        gt=0,
        description="While device requests keep coming, each worker writes what they recorded "
        "(device rows, events, counters) at least this often; a crash loses at most about this "
        "much of it.",
    )
    record_idle_delay_seconds: float = Field(
        default=1.0,
        ge=0,
        description="When no other device request is in progress, a worker writes what was "
        "recorded within this many seconds of its last write (0: at once after each response, "
        "what the tests use). Each write is a transaction, so a shorter delay costs CPU under a "
        "steady moderate load: at 500 requests a second, 0.05 s cost about 0.45 ms of CPU per "
        "request more than 1 s.",
    )

    chart_renderers: int = Field(
        default=1,
        ge=1,
        description="Charts (?graph= on /statistics) each worker draws at once, each in a "
        "process of its own beside the worker (pygal is pure Python: drawn in the worker, a "
        "chart would stop every other request). Their database reads count too.",
    )
    chart_wait_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long a chart request waits for a free renderer before it is answered "
        "503 charts_busy with Retry-After.",
    )
    db_pool_size: int = Field(
        default=5, ge=1, description="Database connections each worker keeps open."
    )
    db_max_overflow: int = Field(
        default=10,
        ge=0,
        description="Connections a worker may open beyond CAPGO_DB_POOL_SIZE under load.",
    )
    db_pool_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How long a request waits for a free database connection before it is "
        "answered 503 service_unavailable with Retry-After.",
    )
    header_timeout_seconds: float = Field(
        default=20.0,
        gt=0,
        description="A request's headers must all arrive within this many seconds of its first "
        "byte (of the connection opening, for the first request); else the connection is closed.",
    )
    body_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Longest pause between two pieces of a request body, and the grace before "
        "CAPGO_BODY_MIN_BYTES_PER_SECOND applies; else the connection is closed.",
    )
    body_min_bytes_per_second: float = Field(
        default=500.0,
        ge=0,
        description="After its first CAPGO_BODY_TIMEOUT_SECONDS, a request body must average at "
        "least this rate (the time the server itself is not reading is not counted); else the "
        "connection is closed. 0 turns the rule off.",
    )

    storage_url: str | None = Field(
        default=None,
        description="Where bundle files live: unset for files under data_dir/bundles, or "
        "s3://bucket/prefix for any S3-compatible object store.",
    )
    s3_endpoint_url: str | None = Field(default=None, description="S3 endpoint (non-AWS stores).")
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    max_upload_bytes: int = Field(
        default=1024 * 1024 * 1024, description="Largest bundle accepted by the upload (413)."
    )
    bundle_max_uncompressed_bytes: int = Field(
        default=512 * 1024 * 1024,
        ge=1,
        description="Largest total a bundle zip may unpack to, counted while unpacking it "
        "(400 invalid_bundle_zip past it). A web bundle unpacks to a few MB to a few hundred MB.",
    )
    bundle_max_compression_ratio: int = Field(
        default=100,
        ge=1,
        description="Largest ratio of a bundle zip's unpacked total to its size (400 "
        "invalid_bundle_zip past it). Minified JavaScript, CSS and HTML compress 3 to 10 times; "
        "a zip bomb 1000 times.",
    )
    bundle_max_entries: int = Field(
        default=20_000,
        ge=1,
        description="Most entries (files and folders) a bundle zip may hold (400 "
        "invalid_bundle_zip past it). Web bundles hold hundreds to a few thousand files.",
    )
    download_url_ttl_seconds: int = Field(
        default=7 * 24 * 3600, description="How long a signed bundle download URL stays valid."
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_trusted_proxies(cls, value: str) -> str:
        parse_trusted_proxies(value)
        return value

    @cached_property
    def trusted_proxy_networks(self) -> tuple[IPNetwork, ...]:
        return parse_trusted_proxies(self.trusted_proxies)

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'capgo.db').resolve()}"

    def ensure_data_dir(self) -> None:
        """Create ``data_dir`` (owner-only: it holds the database, the secret and bundles)."""
        self.data_dir.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)

    def secret_problem(self) -> str | None:
        """Why ``CAPGO_SECRET`` cannot sign URLs in production, or ``None`` when it can."""
        if self.secret is None or not self.secret.strip():
            return "CAPGO_SECRET is missing"
        if is_placeholder_secret(self.secret):
            return "CAPGO_SECRET is a placeholder, not a secret"
        if len(self.secret.strip()) < MIN_SECRET_LENGTH:
            return (
                f"CAPGO_SECRET is too short ({len(self.secret.strip())} characters, "
                f"at least {MIN_SECRET_LENGTH})"
            )
        return None

    def resolved_secret(self) -> str:
        """The secret used to sign URLs.

        In production it must be set, not a placeholder and at least ``MIN_SECRET_LENGTH``
        characters (else ``RuntimeError`` saying which). In development a random one is
        generated once and kept in ``data_dir/.secret`` so signed URLs survive restarts.
        """
        if self.env == "production":
            problem = self.secret_problem()
            if problem is not None:
                raise RuntimeError(
                    f"{problem}; CAPGO_ENV=production needs a long random value "
                    "(for example: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
                )
            assert self.secret is not None
            return self.secret
        if self.secret is not None and not is_placeholder_secret(self.secret):
            return self.secret
        self.ensure_data_dir()
        secret_file = self.data_dir / ".secret"
        if not secret_file.exists():
            publish_private_text(secret_file, secrets.token_urlsafe(48))
        return secret_file.read_text().strip()
