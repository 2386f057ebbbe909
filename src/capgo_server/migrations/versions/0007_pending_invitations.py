"""pending invitations: invitations to an e-mail that has no user yet (pending_invitations)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 15:30:00

``POST /organization/members`` with an e-mail of no user used to answer 400 ``NO_EMAIL``; it
now keeps the invitation here (Capgo's ``tmp_users``) until ``capgo-server create-user``
creates that user and turns it into an ``invite_<role>`` membership. Unique per (org, e-mail);
deleted with its organization. The table starts empty: no invitation was ever kept before.

Downgrade drops the table and the invitations still pending in it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import capgo_server.db.base

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pending_invitations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("invited_by", sa.String(length=36), nullable=True),
        sa.Column("created_at", capgo_server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["invited_by"],
            ["users.id"],
            name=op.f("fk_pending_invitations_invited_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["orgs.id"],
            name=op.f("fk_pending_invitations_org_id_orgs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_invitations")),
        sa.UniqueConstraint("org_id", "email", name=op.f("uq_pending_invitations_org_id_email")),
    )
    with op.batch_alter_table("pending_invitations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pending_invitations_email"), ["email"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("pending_invitations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pending_invitations_email"))
    op.drop_table("pending_invitations")
