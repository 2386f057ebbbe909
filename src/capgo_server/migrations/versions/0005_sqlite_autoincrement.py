"""ids: on SQLite, tables keyed by an integer id never hand a deleted id out again (AUTOINCREMENT)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 14:00:00

Without ``AUTOINCREMENT`` SQLite gives a new row max(id) + 1, so the id of the newest row comes
back once that row is deleted (delete API key 2, create a key: key 2 again). SQLite cannot add it
to a table, so each table is rebuilt with its rows and ids. Its sequence starts at the larger of
its largest id and the largest id the audit trail remembers for it: ids of API keys, bundles,
channels and memberships deleted through the API before this revision are not given again
either; ids of other rows deleted before it may be (nothing remembers them). PostgreSQL never
reuses an id; there this revision does nothing.

Not ``batch_alter_table``: this revision was written when migrations still ran with foreign
keys on, and that rebuild drops the original table, which then deleted the rows of
``app_versions`` and ``channels`` first, cascading to their channels, overrides and deploy
history. Migrations now run with foreign keys off and checked before commit
(``db.migrate.sqlite_migration_transaction``), so batch mode would be safe today; this revision
keeps its own order, which is safe either way: the originals are renamed away first (their
children's references follow them), the new tables are created and filled, and the originals
are dropped children first, when nothing refers to them any more.

Downgrade rebuilds the same tables without ``AUTOINCREMENT`` (rows and ids kept); SQLite then
reuses the largest id again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Every table keyed by an integer id; together they hold every foreign key that points at one.
TABLES = (
    "apikeys",
    "app_versions",
    "audit_logs",
    "channel_devices",
    "channels",
    "deploy_history",
    "org_users",
    "stats",
)


def upgrade() -> None:
    _rebuild(autoincrement=True)


def downgrade() -> None:
    _rebuild(autoincrement=False)


def _rebuild(*, autoincrement: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    metadata = sa.MetaData()
    for name in TABLES:  # reflects the tables they refer to as well (apps, orgs, users)
        sa.Table(name, metadata, autoload_with=bind)
    # Parents before children: the order to create and fill in, reversed to drop.
    tables = [table for table in metadata.sorted_tables if table.name in TABLES]
    for table in tables:
        table.dialect_options["sqlite"]["autoincrement"] = autoincrement
        table.primary_key.name = f"pk_{table.name}"  # as 0001-0003 named it (lost by reflection)
        # Index names are per database: free them for the new tables (create_all remakes them).
        for index in table.indexes:
            op.execute(sa.text(f'DROP INDEX "{index.name}"'))
    for table in tables:
        op.rename_table(table.name, f"_old_{table.name}")
    metadata.create_all(bind, tables=tables)
    for table in tables:
        columns = ", ".join(f'"{column.name}"' for column in table.columns)
        op.execute(
            sa.text(
                f'INSERT INTO "{table.name}" ({columns}) SELECT {columns} FROM "_old_{table.name}"'
            )
        )
    for table in reversed(tables):
        op.drop_table(f"_old_{table.name}")
    if autoincrement:
        for table in tables:
            _start_sequence_after_known_ids(bind, table.name)


def _start_sequence_after_known_ids(bind: sa.Connection, name: str) -> None:
    """Set the table's AUTOINCREMENT counter to the largest id it or the audit trail holds.

    Copying the rows already set it to their largest id; audited deletions may have gone past.
    """
    largest = bind.execute(sa.text(f'SELECT coalesce(max(id), 0) FROM "{name}"')).scalar_one()
    audited = bind.execute(
        sa.text(
            "SELECT coalesce(max(CAST(record_id AS INTEGER)), 0) FROM audit_logs"
            " WHERE table_name = :name"
        ),
        {"name": name},
    ).scalar_one()
    start = max(largest, audited)
    # sqlite_sequence has no key on name: replace the table's row rather than upsert it.
    bind.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = :name"), {"name": name})
    if start > 0:
        bind.execute(
            sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:name, :seq)"),
            {"name": name, "seq": start},
        )
