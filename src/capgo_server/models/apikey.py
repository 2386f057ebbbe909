from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from capgo_server.clock import utcnow
from capgo_server.db.base import NO_ID_REUSE, Base, BigIntId, JsonValue, UTCDateTime


class ApiKey(Base):
    """An API key (spec §2.1).

    Every key is found by ``secret_sha256`` (hex SHA-256 of the presented value), so look-up is
    the same for plain and hashed keys. A plain key also keeps its value in ``key`` so it can be
    shown again, as Capgo does; a hashed key (``is_hashed``) keeps nothing recoverable.
    """

    __tablename__ = "apikeys"
    __table_args__ = NO_ID_REUSE

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key: Mapped[str | None] = mapped_column(String(64))
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    is_hashed: Mapped[bool] = mapped_column(Boolean, default=False)
    mode: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    limited_to_orgs: Mapped[list[str]] = mapped_column(JsonValue, default=list)
    limited_to_apps: Mapped[list[str]] = mapped_column(JsonValue, default=list)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def key_hash(self) -> str | None:
        """The SHA-256 the API shows for hashed keys (``null`` for plain ones, as Capgo)."""
        return self.secret_sha256 if self.is_hashed else None
