from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from capgo_server.clock import utcnow
from capgo_server.db.base import NO_ID_REUSE, Base, BigIntId, JsonValue, UTCDateTime


class AuditLog(Base):
    """One change to an organization, a membership or an API key (``GET /organization/audit``).

    No foreign keys: the trail outlives what it describes.
    """

    __tablename__ = "audit_logs"
    __table_args__ = (Index("ix_audit_logs_org_created", "org_id", "created_at", "id"), NO_ID_REUSE)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    table_name: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[str] = mapped_column(String(64))
    operation: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str | None] = mapped_column(String(36))
    org_id: Mapped[str | None] = mapped_column(String(36))
    old_record: Mapped[dict[str, Any] | None] = mapped_column(JsonValue)
    new_record: Mapped[dict[str, Any] | None] = mapped_column(JsonValue)
    changed_fields: Mapped[list[str] | None] = mapped_column(JsonValue)
