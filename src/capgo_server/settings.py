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

    def resolved_secret(self) -> str:
        """The secret used to sign URLs.

        In production it must be set and not a placeholder (raises ``RuntimeError``). In
        development a random one is generated once and kept in ``data_dir/.secret`` so signed
        URLs survive restarts.
        """
        if self.secret is not None and self.secret.strip().lower() not in PLACEHOLDER_SECRETS:
            return self.secret
        if self.env == "production":
            raise RuntimeError(
                "CAPGO_SECRET is missing or a placeholder; set it to a long random value "
                "(for example: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        self.ensure_data_dir()
        secret_file = self.data_dir / ".secret"
        if not secret_file.exists():
            secret_file.write_text(secrets.token_urlsafe(48))
            secret_file.chmod(0o600)
        return secret_file.read_text().strip()
