"""PostgREST requests parsed into a normal form, so a shape matches whatever the parameter order
or whitespace (issue #16: matched on the parsed form, never on the raw query string).

Only what the official CLI sends is understood: ``select`` trees (``[alias:]name[!hint][(…)]``),
filters with ``eq``, ``neq`` and ``in``, one ``or=(a.eq.N,b.eq.N)``, ``limit``, ``on_conflict``,
the object ``Accept`` header and ``Prefer``. Anything else raises :class:`Unsupported`.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass


class Unsupported(ValueError):
    """A request outside the grammar the CLI uses (rendered 400 ``PGRST100`` by the caller)."""


@dataclass(frozen=True)
class SelectItem:
    """One entry of ``select``: a column, ``*``, or an embedded relation with its own items."""

    name: str
    alias: str | None = None
    hint: str | None = None  # the foreign key after ``!`` (``channels_version_fkey``)
    children: tuple[SelectItem, ...] | None = None  # None for a plain column


@dataclass(frozen=True)
class Filter:
    """``column=op.value``; ``values`` holds one value for eq/neq, the list for ``in``."""

    column: str
    op: str  # "eq" | "neq" | "in"
    values: tuple[str, ...]

    @property
    def value(self) -> str:
        return self.values[0]


@dataclass(frozen=True)
class Query:
    """A PostgREST request in normal form. ``key`` is its shape: everything but the values."""

    method: str  # GET | POST | PATCH
    table: str
    select: tuple[SelectItem, ...]  # () when no select was given
    filters: tuple[Filter, ...]  # sorted by column, each column at most once
    or_: tuple[Filter, ...] | None
    limit: int | None
    on_conflict: tuple[str, ...] | None
    single: bool  # Accept: application/vnd.pgrst.object+json
    prefer: frozenset[str]  # e.g. {"return=representation", "resolution=merge-duplicates"}

    @property
    def key(self) -> Hashable:
        """The shape: method, table, select tree, filter columns and operators, the ``or``
        columns and operators, whether a limit is set, on_conflict. Not ``single`` or ``prefer``
        (a shape says which it allows), never a value."""
        raise NotImplementedError

    def eq(self, column: str) -> str:
        """The value of the ``column=eq.…`` filter (the shape guarantees it exists)."""
        for item in self.filters:
            if item.column == column and item.op == "eq":
                return item.value
        raise KeyError(column)


def parse(
    method: str, table: str, params: Iterable[tuple[str, str]], headers: Mapping[str, str]
) -> Query:
    """``params`` are the decoded query items in order; ``headers`` the request's (any case).
    Raises :class:`Unsupported` for duplicates, unknown parameters or operators, unparsable
    trees, or values past the bounds."""
    raise NotImplementedError
