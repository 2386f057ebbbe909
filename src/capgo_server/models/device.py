from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from capgo_server.clock import utcnow
from capgo_server.db.base import Base, UTCDateTime


class Device(Base):
    """An installed app as last seen by the device endpoints. Never deleted by the API."""

    __tablename__ = "devices"
    __table_args__ = (
        # Serves GET /device's cursor order: updated_at DESC, device_id ASC.
        Index("ix_devices_app_updated", "app_id", "updated_at", "device_id"),
    )

    app_id: Mapped[str] = mapped_column(
        ForeignKey("apps.app_id", ondelete="CASCADE"), primary_key=True
    )
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    platform: Mapped[str | None] = mapped_column(String(16))
    plugin_version: Mapped[str] = mapped_column(String(32), default="2.3.3")
    os_version: Mapped[str | None] = mapped_column(String(64))
    version_build: Mapped[str] = mapped_column(String(70), default="builtin")
    version_name: Mapped[str | None] = mapped_column(String(255))
    custom_id: Mapped[str] = mapped_column(String(255), default="")
    is_prod: Mapped[bool] = mapped_column(Boolean, default=True)
    is_emulator: Mapped[bool] = mapped_column(Boolean, default=False)
    default_channel: Mapped[str | None] = mapped_column(String(255))
    key_id: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
