"""statistics: the monthly-active-users roll-up, filled from the activity already recorded

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 10:00:00
"""

from collections.abc import Sequence
from datetime import date, timedelta
from itertools import groupby

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The window as of this revision (statistics.rollups.MAU_WINDOW_DAYS), frozen here on purpose:
# a migration must keep doing what it did when it was written.
WINDOW_DAYS = 30


def _changes_of(active_days: list[date]) -> dict[date, int]:
    """+1/-1 edges of the union of ``[day, day + 29]`` over one device's sorted active days."""
    changes: dict[date, int] = {}
    window = timedelta(days=WINDOW_DAYS)
    start = end = active_days[0]
    for day in active_days[1:]:
        if day < end + window:
            end = day
            continue
        changes[start] = changes.get(start, 0) + 1
        changes[end + window] = changes.get(end + window, 0) - 1
        start = end = day
    changes[start] = changes.get(start, 0) + 1
    changes[end + window] = changes.get(end + window, 0) - 1
    return changes


def upgrade() -> None:
    op.create_table(
        "daily_mau_change",
        sa.Column("app_id", sa.String(length=255), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("change", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["apps.app_id"],
            name=op.f("fk_daily_mau_change_app_id_apps"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("app_id", "date", name=op.f("pk_daily_mau_change")),
    )
    op.create_index(
        "ix_device_activity_device_date",
        "device_activity",
        ["app_id", "device_id", "date"],
        unique=False,
    )
    # Backfill from the activity recorded before this revision.
    activity = sa.table(
        "device_activity", sa.column("app_id"), sa.column("device_id"), sa.column("date", sa.Date)
    )
    rows = op.get_bind().execute(
        sa.select(activity.c.app_id, activity.c.device_id, activity.c.date).order_by(
            activity.c.app_id, activity.c.device_id, activity.c.date
        )
    )
    totals: dict[tuple[str, date], int] = {}
    for (app_id, _device), days in groupby(rows, key=lambda row: (row[0], row[1])):
        for day, change in _changes_of([row[2] for row in days]).items():
            totals[(app_id, day)] = totals.get((app_id, day), 0) + change
    changes = sa.table(
        "daily_mau_change", sa.column("app_id"), sa.column("date"), sa.column("change")
    )
    if totals:
        op.bulk_insert(
            changes,
            [
                {"app_id": app_id, "date": day, "change": change}
                for (app_id, day), change in totals.items()
                if change != 0
            ],
        )


def downgrade() -> None:
    op.drop_index("ix_device_activity_device_date", table_name="device_activity")
    op.drop_table("daily_mau_change")
