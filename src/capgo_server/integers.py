"""Integers from request input: the one place that turns digits into numbers.

``int()`` on request text fails two ways: past 4,300 digits Python refuses the conversion
(``ValueError``, to bound its quadratic cost), and a value past the database's integer width
makes PostgreSQL (asyncpg) refuse the statement. Either was an unhandled exception, a 500.
Here the digits are counted before anything is converted, and every value is range-checked
against the column it is meant for; callers turn ``None`` into their own refusal.
"""

from __future__ import annotations

#: The largest value of a ``BIGINT`` column (PostgreSQL; SQLite integers are 64-bit too): every
#: row id and byte count.
BIGINT_MAX = 2**63 - 1
#: The largest value of an ``INTEGER`` column on PostgreSQL.
INTEGER_MAX = 2**31 - 1


def digits_at_most(text: str, maximum: int) -> int | None:
    """The value of ``text``, a string of ASCII digits (leading zeros allowed), when it is at
    most ``maximum``; ``None`` for anything else, including a value above ``maximum``.

    No more digits are converted than ``maximum`` has, however long ``text`` is.
    """
    if not text or not text.isascii() or not text.isdigit():
        return None
    significant = text.lstrip("0") or "0"
    if len(significant) > len(str(maximum)):
        return None
    value = int(significant)
    return value if value <= maximum else None


def parse_int(value: object, *, minimum: int = 0, maximum: int = BIGINT_MAX) -> int | None:
    """``value`` as an integer from ``minimum`` to ``maximum``: a JSON integer (not a boolean)
    or a string of ASCII digits; ``None`` for anything else or out of range."""
    number: int | None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        number = digits_at_most(value, maximum)
    else:
        return None
    return number if number is not None and minimum <= number <= maximum else None
