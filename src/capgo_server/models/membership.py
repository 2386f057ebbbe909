from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from capgo_server.clock import utcnow
from capgo_server.db.base import NO_ID_REUSE, Base, BigIntId, UTCDateTime


class Membership(Base):
    """A user's role in an organization (Capgo's ``org_users``).

    ``user_right`` is one of the ten roles of :class:`capgo_server.auth.roles.Role`; an
    ``invite_*`` value is a pending invitation and grants nothing until accepted.
    """

    __tablename__ = "org_users"
    __table_args__ = (UniqueConstraint("org_id", "user_id"), NO_ID_REUSE)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    user_right: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
