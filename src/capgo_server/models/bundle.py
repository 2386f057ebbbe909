from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from capgo_server.clock import utcnow
from capgo_server.db.base import NO_ID_REUSE, Base, BigIntId, JsonValue, UTCDateTime
from capgo_server.validation import BUNDLE_NAME_LENGTH

#: Every app has these two bundles, both ``deleted`` (spec §4.3): ``unknown`` is the placeholder
#: a channel points at when it has no bundle, ``builtin`` sends devices back to the native one.
INTERNAL_BUNDLE_NAMES = ("builtin", "unknown")


class Bundle(Base):
    """A bundle of web assets (Capgo's ``app_versions``). Deleting one only marks it ``deleted``;
    its name stays reserved (UNIQUE(name, app_id)) and it is never served again."""

    __tablename__ = "app_versions"
    __table_args__ = (
        UniqueConstraint("name", "app_id"),
        Index("ix_app_versions_app_live_created", "app_id", "deleted", "created_at", "id"),
        NO_ID_REUSE,
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.app_id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(BUNDLE_NAME_LENGTH))
    owner_org: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    external_url: Mapped[str | None] = mapped_column(String(2000))
    r2_path: Mapped[str | None] = mapped_column(String(1000))
    checksum: Mapped[str | None] = mapped_column(String(1000))
    session_key: Mapped[str | None] = mapped_column(String(2000))
    key_id: Mapped[str | None] = mapped_column(String(20))
    storage_provider: Mapped[str] = mapped_column(String(32), default="local")
    size: Mapped[int | None] = mapped_column(BigInteger)
    min_update_version: Mapped[str | None] = mapped_column(String(255))
    native_packages: Mapped[list[Any] | None] = mapped_column(JsonValue)
    manifest: Mapped[list[Any] | None] = mapped_column(JsonValue)
    manifest_count: Mapped[int] = mapped_column(Integer, default=0)
    link: Mapped[str | None] = mapped_column(Text)
    comment: Mapped[str | None] = mapped_column(Text)
    cli_version: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
