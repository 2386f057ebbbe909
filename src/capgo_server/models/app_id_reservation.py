from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from capgo_server.clock import utcnow
from capgo_server.db.base import Base, UTCDateTime


class AppIdReservation(Base):
    """The organization an app id belongs to: written when the app is first created there and
    kept when the app, or the whole organization, is deleted (House decisions: devices in the
    field keep calling with the id). Only ``capgo-server release-app-id`` removes one.

    ``org_id`` has no foreign key: the reservation outlives the organization. Organization ids
    are random UUIDs the server makes, so a deleted organization's id never comes back and its
    reservations stay unclaimable until an operator releases them. ``apps`` refers to
    ``(app_id, org_id)``, so the database itself keeps every live app inside its reservation.
    """

    __tablename__ = "app_id_reservations"
    # The target of the apps' composite foreign key (``app_id`` alone is the primary key).
    __table_args__ = (UniqueConstraint("app_id", "org_id"),)

    app_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
