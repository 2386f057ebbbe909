"""app ids: a deleted app's id stays reserved for its organization (app_id_reservations)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 12:00:00

Devices in the field keep calling ``/updates`` with a deleted app's id; another organization
that could take the id would serve them its bundles. ``app_id_reservations`` remembers which
organization each app id belongs to; ``apps`` refers to it by ``(app_id, owner_org)``, so an
app can only exist inside its reservation and a reservation cannot be released while its app
exists.

Filled from the live apps, then from the audit trail: every app created, changed or deleted
through the API left a row there naming its id and organization, so ids deleted before this
revision (with their app or with their whole organization) are reserved for the organization
that last held them. An id a live app holds belongs to that app's organization, even if the
trail says another held it first. Ids of apps written straight to the database and deleted
before this revision are not remembered (nothing else knows them).

Downgrade drops the table and the foreign key: deleted ids are free again (and upgrading once
more reserves them again from the audit trail, ids an operator had released included).
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import capgo_server.db.base

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_AUDIT = sa.table(
    "audit_logs",
    sa.column("id", sa.BigInteger),
    sa.column("created_at", capgo_server.db.base.UTCDateTime()),
    sa.column("table_name", sa.String),
    sa.column("org_id", sa.String),
    sa.column("old_record", sa.JSON),
    sa.column("new_record", sa.JSON),
)


def upgrade() -> None:
    reservations = op.create_table(
        "app_id_reservations",
        sa.Column("app_id", sa.String(length=255), nullable=False),
        sa.Column("org_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", capgo_server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("app_id", name=op.f("pk_app_id_reservations")),
        sa.UniqueConstraint("app_id", "org_id", name=op.f("uq_app_id_reservations_app_id_org_id")),
    )
    bind = op.get_bind()
    op.execute(
        "INSERT INTO app_id_reservations (app_id, org_id, created_at)"
        " SELECT app_id, owner_org, created_at FROM apps"
    )
    live = set(bind.execute(sa.text("SELECT app_id FROM apps")).scalars())
    remembered = {
        app_id: row
        for app_id, row in _last_audited_org_of_each_app_id(bind).items()
        if app_id not in live
    }
    if remembered:
        op.bulk_insert(reservations, list(remembered.values()))
    # Filled first: the foreign key is checked against the rows already there.
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_apps_app_id_app_id_reservations"),
            "app_id_reservations",
            ["app_id", "owner_org"],
            ["app_id", "org_id"],
        )


def _last_audited_org_of_each_app_id(bind: sa.Connection) -> dict[str, dict[str, Any]]:
    """app id → the reservation row of the organization its newest audit entry names."""
    query = (
        sa.select(_AUDIT.c.created_at, _AUDIT.c.org_id, _AUDIT.c.old_record, _AUDIT.c.new_record)
        .where(_AUDIT.c.table_name == "apps", _AUDIT.c.org_id.is_not(None))
        .order_by(_AUDIT.c.id)
    )
    newest: dict[str, dict[str, Any]] = {}
    for created_at, org_id, old, new in bind.execute(query):
        record = new or old
        app_id = record.get("app_id") if isinstance(record, dict) else None
        if isinstance(app_id, str) and app_id:
            newest[app_id] = {"app_id": app_id, "org_id": org_id, "created_at": created_at}
    return newest


def downgrade() -> None:
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_apps_app_id_app_id_reservations"), type_="foreignkey"
        )
    op.drop_table("app_id_reservations")
