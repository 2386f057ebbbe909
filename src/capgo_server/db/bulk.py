"""Many rows in one statement, with next to no Python work per row, on SQLite and PostgreSQL.

An executemany through SQLAlchemy runs each value of each row through the column's type
processors and builds each row's parameters in Python; for the device recorder's batches that
cost more than the database's own work, on the event loop that answers the devices. Here a
whole batch travels as a few parameters that the database unpacks into rows: on PostgreSQL one
array per column (``unnest``, encoded by asyncpg in C), on SQLite one JSON text of every row
(``json_each``, encoded by :func:`json.dumps` in C). The statement is plain SQL run on the
driver (``exec_driver_sql``), so it runs once per batch, not once per row.

Values are stored exactly as SQLAlchemy's column types store them (timestamps in UTC, as
``db.base.UTCDateTime``; on SQLite the text ``_sqlite_json`` gives them).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from capgo_server.clock import as_utc

#: What a column holds, which decides how its values travel.
Kind = Literal["text", "int", "bool", "date", "timestamp"]

_POSTGRES_ARRAYS: dict[Kind, str] = {
    "text": "text[]",
    "int": "int8[]",
    "bool": "boolean[]",
    "date": "date[]",
    "timestamp": "timestamptz[]",
}


def _sqlite_json(value: object) -> str:
    # json.dumps calls this only for the values JSON has no type for.
    if isinstance(value, datetime):
        # SQLAlchemy's DateTime on SQLite: "YYYY-MM-DD HH:MM:SS.ffffff", microseconds always.
        return as_utc(value).replace(tzinfo=None).isoformat(" ", "microseconds")
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__} in a bulk statement")


class Statement:
    """One SQL statement for the session's engine and its positional parameters.

    ``param`` and ``rows`` return the SQL text that stands for what they were given, to be
    put in the statement in the order they were called.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.postgres = session.get_bind().dialect.name == "postgresql"
        self.params: list[Any] = []
        self._session = session

    def param(self, value: Any, postgres_type: str | None = None) -> str:
        if not self.postgres:
            self.params.append(_sqlite_json(value) if isinstance(value, date) else value)
            return "?"
        self.params.append(value)
        cast = f"::{postgres_type}" if postgres_type else ""
        return f"${len(self.params)}{cast}"

    def rows(
        self, alias: str, columns: Sequence[tuple[str, Kind]], rows: Sequence[Sequence[Any]]
    ) -> str:
        """A ``FROM`` item: ``rows`` (tuples in the order of ``columns``) as the table
        ``alias`` with those column names, plus ``ordinal``, each row's position from 1.

        Datetimes are UTC (naive ones are taken as UTC), as ``UTCDateTime`` stores them.
        """
        names = [name for name, _ in columns]
        if self.postgres:
            by_column: list[Sequence[Any]] = list(zip(*rows, strict=True)) or [()] * len(columns)
            arrays = ", ".join(
                self.param(
                    [as_utc(v) if v is not None else None for v in values]
                    if kind == "timestamp"
                    else list(values),
                    _POSTGRES_ARRAYS[kind],
                )
                for values, (_, kind) in zip(by_column, columns, strict=True)
            )
            return f"unnest({arrays}) WITH ORDINALITY AS {alias}({', '.join(names)}, ordinal)"
        document = self.param(json.dumps(rows, default=_sqlite_json, separators=(",", ":")))
        picked = ", ".join(
            f"json_extract(value, '$[{index}]') AS {name}" for index, name in enumerate(names)
        )
        return f"(SELECT {picked}, key + 1 AS ordinal FROM json_each({document})) AS {alias}"

    async def execute(self, sql: str) -> Any:
        """Run ``sql`` (built with this statement's ``param`` and ``rows``) on the session's
        connection; the driver's result (rows for ``RETURNING`` or ``SELECT``)."""
        connection = await self._session.connection()
        return await connection.exec_driver_sql(sql, tuple(self.params))


async def insert_rows(
    session: AsyncSession,
    table: str,
    columns: Sequence[tuple[str, Kind]],
    rows: Sequence[Sequence[Any]],
    *,
    conflict: str = "",
    returning: str = "",
) -> Any:
    """``INSERT INTO table`` every row of ``rows`` (tuples in the order of ``columns``), in
    their order, with an optional ``ON CONFLICT ...`` clause (``conflict``, which may refer to
    ``excluded``) and ``RETURNING`` list. Returns the driver's result."""
    statement = Statement(session)
    names = ", ".join(name for name, _ in columns)
    source = statement.rows("r", columns, rows)
    # SQLite needs the WHERE of an INSERT ... SELECT before ON CONFLICT, or it would read the
    # ON as a join's.
    sql = f"INSERT INTO {table} ({names}) SELECT {names} FROM {source} WHERE true ORDER BY ordinal"
    if conflict:
        sql += f" {conflict}"
    if returning:
        sql += f" RETURNING {returning}"
    return await statement.execute(sql)


async def upsert_rows(
    session: AsyncSession,
    table: str,
    columns: Sequence[tuple[str, Kind]],
    rows: Sequence[Sequence[Any]],
    key: Sequence[str],
    *,
    replace: Sequence[str] = (),
    add: Sequence[str] = (),
) -> None:
    """Insert each row, or, where a row with the same ``key`` exists, set its ``replace``
    columns to the new values and add the new values to its ``add`` columns (counters that
    concurrent writers never lose). No two rows may share a key."""
    updates = [f"{name} = excluded.{name}" for name in replace]
    updates += [f"{name} = {table}.{name} + excluded.{name}" for name in add]
    await insert_rows(
        session,
        table,
        columns,
        rows,
        conflict=f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {', '.join(updates)}",
    )
