from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Date, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from capgo_server.db.base import Base


class DailyBandwidth(Base):
    """Bytes of bundle downloads served per app per UTC day (kept current as bytes are sent)."""

    __tablename__ = "daily_bandwidth"

    app_id: Mapped[str] = mapped_column(
        ForeignKey("apps.app_id", ondelete="CASCADE"), primary_key=True
    )
    date: Mapped[date] = mapped_column(Date, primary_key=True)
    bandwidth: Mapped[int] = mapped_column(BigInteger, default=0)
