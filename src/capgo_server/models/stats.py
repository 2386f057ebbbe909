from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from capgo_server.clock import utcnow
from capgo_server.db.base import NO_ID_REUSE, Base, BigIntId, UTCDateTime


class StatsEvent(Base):
    """One event a device reported or the server decided for it (Capgo's ``stats`` log):
    ``set``, ``download_fail``, ``noNew``, ``disableAutoUpdateToMajor``..."""

    __tablename__ = "stats"
    __table_args__ = (Index("ix_stats_app_created", "app_id", "created_at", "id"), NO_ID_REUSE)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.app_id", ondelete="CASCADE"))
    device_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    # Kept verbatim, including composite ``<version>:<file>`` names of per-file failures.
    version_name: Mapped[str | None] = mapped_column(String(1024))


class DailyVersion(Base):
    """Per bundle and UTC day: how many devices got it offered, installed, uninstalled it, or
    failed with it (Capgo's ``daily_version``)."""

    __tablename__ = "daily_version"

    app_id: Mapped[str] = mapped_column(
        ForeignKey("apps.app_id", ondelete="CASCADE"), primary_key=True
    )
    date: Mapped[date] = mapped_column(Date, primary_key=True)
    version_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    get: Mapped[int] = mapped_column(BigInteger, default=0)
    fail: Mapped[int] = mapped_column(BigInteger, default=0)
    install: Mapped[int] = mapped_column(BigInteger, default=0)
    uninstall: Mapped[int] = mapped_column(BigInteger, default=0)


class DeviceActivity(Base):
    """A device contacted the device endpoints on that UTC day: the input of monthly active
    users (one row per device per day, however often it called)."""

    __tablename__ = "device_activity"
    # A device's active days nearest a new one bound the MAU window it opens (statistics.rollups).
    __table_args__ = (Index("ix_device_activity_device_date", "app_id", "device_id", "date"),)

    app_id: Mapped[str] = mapped_column(
        ForeignKey("apps.app_id", ondelete="CASCADE"), primary_key=True
    )
    date: Mapped[date] = mapped_column(Date, primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)


class DailyMauChange(Base):
    """How an app's monthly active users change on that UTC day: devices whose 30-day window
    opens that day, minus those whose window closed the day before.

    MAU on day *d* is the sum of ``change`` over every day up to *d* (statistics.rollups keeps
    these rows in step with ``device_activity``), so a query reads one row per app and day
    instead of every device's activity.
    """

    __tablename__ = "daily_mau_change"

    app_id: Mapped[str] = mapped_column(
        ForeignKey("apps.app_id", ondelete="CASCADE"), primary_key=True
    )
    date: Mapped[date] = mapped_column(Date, primary_key=True)
    change: Mapped[int] = mapped_column(BigInteger, default=0)
