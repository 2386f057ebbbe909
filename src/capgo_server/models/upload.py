from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from capgo_server.clock import utcnow
from capgo_server.db.base import Base, UTCDateTime
from capgo_server.validation import BUNDLE_NAME_LENGTH


class Upload(Base):
    """A resumable (tus) bundle upload in progress.

    Received bytes are kept in the bundle store as one object per PATCH, named by offset, so any
    worker can continue an upload. When the last byte arrives the parts become the bundle's file
    and this row is deleted. One upload per (app, version) at a time.
    """

    __tablename__ = "uploads"
    __table_args__ = (UniqueConstraint("app_id", "version_name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.app_id", ondelete="CASCADE"))
    owner_org: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    version_name: Mapped[str] = mapped_column(String(BUNDLE_NAME_LENGTH))
    path: Mapped[str] = mapped_column(String(1000))
    length: Mapped[int] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    checksum: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
