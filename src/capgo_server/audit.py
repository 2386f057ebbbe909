"""Writing the audit trail read by ``GET /organization/audit``.

Capgo fills ``audit_logs`` from database triggers; here services call :func:`record` in the same
transaction as the change, so a rolled-back change leaves no trail either.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession

from capgo_server.clock import to_js_iso
from capgo_server.db.base import Base
from capgo_server.models import AuditLog


def snapshot(row: Base, exclude: Collection[str] = ()) -> dict[str, Any]:
    """The row's column values as a JSON document (timestamps as ISO strings)."""
    values: dict[str, Any] = {}
    for column in inspect(type(row)).columns:
        if column.key in exclude:
            continue
        value = getattr(row, column.key)
        values[column.key] = to_js_iso(value) if isinstance(value, datetime) else value
    return values


def record(
    session: AsyncSession,
    *,
    table_name: str,
    operation: str,
    record_id: object,
    org_id: str | None,
    user_id: str | None,
    old: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
) -> None:
    """Add one audit entry; ``changed_fields`` is derived when both snapshots are given."""
    changed = None
    if old is not None and new is not None:
        changed = sorted(k for k in new if k != "updated_at" and old.get(k) != new[k])
    session.add(
        AuditLog(
            table_name=table_name,
            operation=operation,
            record_id=str(record_id),
            org_id=org_id,
            user_id=user_id,
            old_record=old,
            new_record=new,
            changed_fields=changed,
        )
    )


def record_row(
    session: AsyncSession,
    row: Base,
    operation: str,
    *,
    org_id: str | None,
    user_id: str | None,
    old: dict[str, Any] | None = None,
) -> None:
    """Audit ``operation`` on ``row`` (a table with an ``id`` column).

    After an INSERT or UPDATE the row's current values are the new record; a DELETE records
    only ``old``. Take ``old`` with :func:`snapshot` before changing the row.
    """
    new = None if operation == "DELETE" else snapshot(row)
    # Audited tables all have an ``id`` column, which is not always the primary key: apps are
    # keyed by app_id but audited by their uuid (app ids can outgrow ``record_id``).
    record_id = getattr(row, "id")  # noqa: B009
    record(
        session,
        table_name=row.__tablename__,
        operation=operation,
        record_id=record_id,
        org_id=org_id,
        user_id=user_id,
        old=old,
        new=new,
    )
