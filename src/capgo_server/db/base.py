"""The declarative base every table derives from, and the column types shared by both engines."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer, MetaData
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from capgo_server.clock import as_utc

# Named constraints: Alembic's SQLite batch mode can only alter constraints that have names.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: An auto-incrementing 64-bit id; SQLite only auto-increments a column typed INTEGER.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")

#: Table options every table keyed by a :data:`BigIntId` carries (in ``__table_args__``). Without
#: ``AUTOINCREMENT`` SQLite hands out max(id) + 1, so once the row holding the largest id is
#: deleted the next insert gets that id again (delete key 2, create one: key 2 again), and a
#: client deleting by id twice could delete the newer row. PostgreSQL never reuses an id.
NO_ID_REUSE: dict[str, Any] = {"sqlite_autoincrement": True}

#: A JSON document (used for short string lists such as a key's ``limited_to_orgs``).
JsonValue = JSON()


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, on SQLite and PostgreSQL.

    SQLite has no timezone support, so values are stored there as naive UTC; they come back
    with ``tzinfo=UTC`` attached. Naive values handed in are taken to be UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return as_utc(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
