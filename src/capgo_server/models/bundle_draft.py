from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from capgo_server.clock import utcnow
from capgo_server.db.base import Base, JsonValue, UTCDateTime
from capgo_server.validation import BUNDLE_NAME_LENGTH


class BundleDraft(Base):
    """What the official ``@capgo/cli`` declared about a bundle before uploading it (its
    PostgREST upsert on ``app_versions``, issue #16), kept apart from ``app_versions``.

    No ``Bundle`` row exists until the tus upload of ``(app_id, name)`` completes, so devices,
    lists and downloads never see a bundle without its file. The upload then takes its checksum
    and encryption from here (when its own metadata names none) and copies the other fields into
    the bundle it creates, deleting the draft. One draft per version; a later upsert replaces it.
    """

    __tablename__ = "bundle_drafts"

    app_id: Mapped[str] = mapped_column(
        ForeignKey("apps.app_id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(BUNDLE_NAME_LENGTH), primary_key=True)
    # A sha256 (verified when the upload completes), a CLI crc32 for old updaters, or an
    # encrypted bundle's RSA-encrypted checksum.
    checksum: Mapped[str | None] = mapped_column(String(1000))
    session_key: Mapped[str | None] = mapped_column(String(2000))
    key_id: Mapped[str | None] = mapped_column(String(20))
    native_packages: Mapped[list[Any] | None] = mapped_column(JsonValue)
    min_update_version: Mapped[str | None] = mapped_column(String(255))
    link: Mapped[str | None] = mapped_column(Text)
    comment: Mapped[str | None] = mapped_column(Text)
    cli_version: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
