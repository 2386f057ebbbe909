from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from capgo_server.clock import utcnow
from capgo_server.db.base import Base, UTCDateTime


class Organization(Base):
    """An organization (Capgo's ``orgs``): owns apps; members hold roles in it."""

    __tablename__ = "orgs"
    __table_args__ = (UniqueConstraint("name", "created_by"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    logo: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str] = mapped_column(String(200))
    management_email: Mapped[str] = mapped_column(String(320))
    # Always null here: a self-hosted server has no billing (House decisions).
    customer_id: Mapped[str | None] = mapped_column(String(100))
    # API-key policies (spec §2.1, §2.4).
    require_apikey_expiration: Mapped[bool] = mapped_column(Boolean, default=False)
    max_apikey_expiration_days: Mapped[int | None] = mapped_column(Integer)
    enforce_hashed_api_keys: Mapped[bool] = mapped_column(Boolean, default=False)
    # Bundle encryption policy (read by the bundle endpoints).
    enforce_encrypted_bundles: Mapped[bool] = mapped_column(Boolean, default=False)
    required_encryption_key: Mapped[str | None] = mapped_column(Text)
