"""Every setting of the server, read from environment variables prefixed ``CAPGO_``."""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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
#: Shortest ``CAPGO_SECRET`` accepted in production (characters).
MIN_SECRET_LENGTH = 32


def is_placeholder_secret(value: str) -> bool:
    text = value.strip().lower()
    return text in PLACEHOLDER_SECRETS or any(word in text for word in PLACEHOLDER_WORDS)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CAPGO_", extra="ignore")

    env: Literal["development", "production"] = "development"
    data_dir: Path = Path("./data")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL; defaults to a SQLite file under data_dir.",
    )
    public_url: str = "http://127.0.0.1:8000"
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
    download_url_ttl_seconds: int = Field(
        default=7 * 24 * 3600, description="How long a signed bundle download URL stays valid."
    )

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'capgo.db').resolve()}"

    def ensure_data_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

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
            secret_file.write_text(secrets.token_urlsafe(48))
            secret_file.chmod(0o600)
        return secret_file.read_text().strip()
