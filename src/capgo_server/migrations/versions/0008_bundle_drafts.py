"""bundle drafts: what the official CLI declares about a bundle before its upload (bundle_drafts)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 19:00:00

``@capgo/cli`` writes its bundle row through PostgREST (``POST /rest/v1/app_versions``) before
it uploads the zip (issue #16). That row is kept here, not in ``app_versions``, so nothing that
reads bundles (devices, lists, downloads) sees a bundle whose file is not stored yet; the tus
upload of that version turns it into the bundle. One row per (app, version); deleted with its
app. The table starts empty.

Downgrade drops the table and the drafts in it: uploads begun by the official CLI then complete
without the checksum, encryption and metadata it declared.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import capgo_server.db.base

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bundle_drafts",
        sa.Column("app_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("checksum", sa.String(length=1000), nullable=True),
        sa.Column("session_key", sa.String(length=2000), nullable=True),
        sa.Column("key_id", sa.String(length=20), nullable=True),
        sa.Column("native_packages", sa.JSON(), nullable=True),
        sa.Column("min_update_version", sa.String(length=255), nullable=True),
        sa.Column("link", sa.Text(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("cli_version", sa.String(length=64), nullable=True),
        sa.Column("created_at", capgo_server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", capgo_server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["apps.app_id"],
            name=op.f("fk_bundle_drafts_app_id_apps"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("app_id", "name", name=op.f("pk_bundle_drafts")),
    )


def downgrade() -> None:
    op.drop_table("bundle_drafts")
