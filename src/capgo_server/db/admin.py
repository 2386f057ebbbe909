"""One statement on a PostgreSQL server outside any session: the scratch databases of the tests
and benchmarks (``CREATE DATABASE`` / ``DROP DATABASE`` cannot run inside a transaction)."""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url


async def admin_execute(url: str, statement: str) -> None:
    """Run ``statement`` on its own asyncpg connection to the server and database ``url`` names.

    ``url`` is a SQLAlchemy URL (``postgresql+asyncpg://user:password@host:port/db``; the driver
    part is ignored); host, port and database default to ``127.0.0.1``, ``5432`` and
    ``postgres``. Connecting gives up after 5 seconds. Raises ``OSError`` (or
    ``asyncio.TimeoutError``) when the server cannot be reached, and ``asyncpg.PostgresError``
    when it refuses the login or the statement.
    """
    parsed = make_url(url)
    connection = await asyncpg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        database=parsed.database or "postgres",
        timeout=5,
    )
    try:
        await connection.execute(statement)
    finally:
        await connection.close()
