from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from capgo_server.clock import utcnow
from capgo_server.db.base import NO_ID_REUSE, Base, BigIntId, UTCDateTime

#: Values of ``disable_auto_update``: the largest semver jump a channel lets devices make.
DISABLE_AUTO_UPDATE_VALUES = ("major", "minor", "patch", "version_number", "none")


class Channel(Base):
    """A release channel: which bundle devices of an app receive, and who may receive it."""

    __tablename__ = "channels"
    __table_args__ = (UniqueConstraint("name", "app_id"), NO_ID_REUSE)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255))
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.app_id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(ForeignKey("app_versions.id", ondelete="CASCADE"))
    owner_org: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    disable_auto_update_under_native: Mapped[bool] = mapped_column(Boolean, default=True)
    disable_auto_update: Mapped[str] = mapped_column(String(32), default="major")
    ios: Mapped[bool] = mapped_column(Boolean, default=True)
    android: Mapped[bool] = mapped_column(Boolean, default=True)
    electron: Mapped[bool] = mapped_column(Boolean, default=True)
    allow_device_self_set: Mapped[bool] = mapped_column(Boolean, default=False)
    allow_emulator: Mapped[bool] = mapped_column(Boolean, default=True)
    allow_device: Mapped[bool] = mapped_column(Boolean, default=True)
    allow_dev: Mapped[bool] = mapped_column(Boolean, default=True)
    allow_prod: Mapped[bool] = mapped_column(Boolean, default=True)
    # Percentage rollout: ``rollout_percentage`` % of devices (a sticky draw per device) are
    # offered ``rollout_version`` instead of ``version``.
    rollout_version: Mapped[int | None] = mapped_column(
        ForeignKey("app_versions.id", ondelete="SET NULL")
    )
    rollout_percentage: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ChannelOverride(Base):
    """A device pinned to a channel (Capgo's ``channel_devices``); one per device per app.

    Deleting the channel deletes its overrides (House decision)."""

    __tablename__ = "channel_devices"
    __table_args__ = (UniqueConstraint("app_id", "device_id"), NO_ID_REUSE)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(String(64))
    channel_id: Mapped[int] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), index=True
    )
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.app_id", ondelete="CASCADE"))
    owner_org: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class DeployHistory(Base):
    """One entry each time a channel is pointed at a bundle."""

    __tablename__ = "deploy_history"
    __table_args__ = NO_ID_REUSE

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    channel_id: Mapped[int] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), index=True
    )
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.app_id", ondelete="CASCADE"))
    version_id: Mapped[int] = mapped_column(ForeignKey("app_versions.id", ondelete="CASCADE"))
    owner_org: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    deployed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
