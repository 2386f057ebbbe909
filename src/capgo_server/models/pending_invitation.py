from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from capgo_server.clock import utcnow
from capgo_server.db.base import Base, UTCDateTime


class PendingInvitation(Base):
    """An invitation to an e-mail that has no user yet (Capgo's ``tmp_users``).

    ``capgo-server create-user`` turns each unexpired one for the new user's e-mail into an
    ``invite_<role>`` membership, which the user then accepts or declines like any other.
    ``role`` is the role offered (``read`` … ``super_admin``), not its ``invite_`` form.
    ``email`` is stored lower-cased, as users' e-mails are, so one look-up finds it.

    ``id`` is a random UUID because ``GET /organization/members`` shows it as the ``uid`` of
    the pending entry (there is no user id yet, and Capgo's clients expect a UUID there).
    """

    __tablename__ = "pending_invitations"
    __table_args__ = (UniqueConstraint("org_id", "email"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320), index=True)
    role: Mapped[str] = mapped_column(String(32))
    # Who invited; kept as the author of the membership the invitation later becomes.
    invited_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
