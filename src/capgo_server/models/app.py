from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, ForeignKeyConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from capgo_server.clock import utcnow
from capgo_server.db.base import Base, UTCDateTime

#: Seconds a deleted bundle's file is kept (Capgo's default retention: 30 days).
DEFAULT_RETENTION_SECONDS = 2_592_000


class App(Base):
    """A Capacitor app, identified by its reverse-domain ``app_id`` (globally unique)."""

    __tablename__ = "apps"
    # An app lives only inside its id's reservation, written before it (apps.reservations):
    # no app without one, no app in another organization than the reserving one, and no
    # reservation released while its app exists.
    __table_args__ = (
        ForeignKeyConstraint(
            ["app_id", "owner_org"], ["app_id_reservations.app_id", "app_id_reservations.org_id"]
        ),
    )

    app_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    # Secondary identifier: ``POST /apikey {"app_id": <uuid>}`` names an app by it (spec §3.2).
    id: Mapped[str] = mapped_column(String(36), unique=True, default=lambda: str(uuid.uuid4()))
    owner_org: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(255))
    icon_url: Mapped[str] = mapped_column(String(2000), default="")
    last_version: Mapped[str | None] = mapped_column(String(255))
    retention: Mapped[int] = mapped_column(BigInteger, default=DEFAULT_RETENTION_SECONDS)
    default_upload_channel: Mapped[str] = mapped_column(String(255), default="production")
    channel_device_count: Mapped[int] = mapped_column(Integer, default=0)
    manifest_bundle_count: Mapped[int] = mapped_column(Integer, default=0)
    expose_metadata: Mapped[bool] = mapped_column(Boolean, default=False)
    allow_preview: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
