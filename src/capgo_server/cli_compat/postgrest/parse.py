"""PostgREST requests parsed into a normal form, so a shape matches whatever the parameter order
or whitespace (issue #16: matched on the parsed form, never on the raw query string).

Only what the official CLI sends is understood: ``select`` trees (``[alias:]name[!hint][(…)]``),
filters with ``eq``, ``neq`` and ``in``, one ``or=(col.op.value,…)``, ``limit``, ``on_conflict``,
the object ``Accept`` header and ``Prefer``. Anything else raises :class:`Unsupported`.

The messages of :class:`Unsupported` are answered to the client and logged, so they never carry
a value from the request: at most a parameter or column name that passed the name check.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from capgo_server.integers import digits_at_most

#: A table or column name as the CLI's tables spell them (PostgreSQL's 63-byte identifiers).
NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
#: The methods the PostgREST router serves.
METHODS = frozenset({"GET", "POST", "PATCH"})
#: PostgREST's own parameters this parser understands; any other name is a column filter.
RESERVED = frozenset({"select", "or", "limit", "on_conflict"})
#: PostgREST parameters the CLI never sends: refused by name rather than read as a filter.
REFUSED = frozenset({"order", "offset", "columns", "and"})
OPERATORS = frozenset({"eq", "neq", "in"})
#: Operators inside ``or=(…)`` (an ``in`` list there would need nested parentheses).
OR_OPERATORS = frozenset({"eq", "neq"})
OBJECT_MEDIA_TYPE = "application/vnd.pgrst.object+json"

MAX_VALUE = 1024  # characters of any one parameter value or header
MAX_PARAMS = 24  # every reserved parameter once plus MAX_FILTERS, with room to spare
MAX_FILTERS = 16  # column filters plus the conditions inside ``or``
MAX_IN_VALUES = 100
MAX_SELECT_DEPTH = 3  # top level is 1; the CLI's embeds reach 2
MAX_SELECT_ITEMS = 64
MAX_LIMIT = 1000
MAX_PREFER_TOKENS = 16


class Unsupported(ValueError):
    """A request outside the grammar the CLI uses (rendered 400 ``PGRST100`` by the caller)."""


@dataclass(frozen=True)
class SelectItem:
    """One entry of ``select``: a column, ``*``, or an embedded relation with its own items."""

    name: str
    alias: str | None = None
    hint: str | None = None  # the foreign key after ``!`` (``channels_version_fkey``)
    children: tuple[SelectItem, ...] | None = None  # None for a plain column

    def render(self) -> str:
        """The item as PostgREST spells it, without whitespace (the normal form)."""
        text = self.name if self.alias is None else f"{self.alias}:{self.name}"
        if self.hint is not None:
            text += f"!{self.hint}"
        if self.children is not None:
            text += f"({render_select(self.children)})"
        return text


def render_select(items: Iterable[SelectItem]) -> str:
    return ",".join(item.render() for item in items)


@dataclass(frozen=True)
class Filter:
    """``column=op.value``; ``values`` holds one value for eq/neq, the list for ``in``."""

    column: str
    op: str  # "eq" | "neq" | "in"
    values: tuple[str, ...]

    @property
    def value(self) -> str:
        return self.values[0]


class QueryKey(NamedTuple):
    """A request's shape: what the whitelist compares, never a value.

    - ``method``, ``table``;
    - ``select``: the select tree in normal form (``render_select``: no whitespace, items in
      the order sent, since they order the reply's keys), ``""`` when no select was given;
    - ``filters``: the (column, operator) pairs, sorted by column;
    - ``or_``: the (column, operator) pairs inside ``or=(…)``, sorted, or None without ``or``;
    - ``limited``: whether ``limit`` is set (its value is the handler's to use);
    - ``on_conflict``: its columns, sorted (they name one unique constraint), or None.

    ``single`` and ``prefer`` are not in it: a shape says which of them it allows.
    """

    method: str
    table: str
    select: str
    filters: tuple[tuple[str, str], ...]
    or_: tuple[tuple[str, str], ...] | None
    limited: bool
    on_conflict: tuple[str, ...] | None


@dataclass(frozen=True)
class Query:
    """A PostgREST request in normal form. ``key`` is its shape: everything but the values."""

    method: str  # GET | POST | PATCH
    table: str
    select: tuple[SelectItem, ...]  # () when no select was given
    filters: tuple[Filter, ...]  # sorted by column, each column at most once
    or_: tuple[Filter, ...] | None  # in the order sent
    limit: int | None
    on_conflict: tuple[str, ...] | None  # in the order sent
    single: bool  # Accept: application/vnd.pgrst.object+json
    prefer: frozenset[str]  # e.g. {"return=representation", "resolution=merge-duplicates"}

    @property
    def key(self) -> QueryKey:
        """The shape (see :class:`QueryKey`): method, table, select tree, filter columns and
        operators, the ``or`` columns and operators, whether a limit is set, on_conflict. Not
        ``single`` or ``prefer`` (a shape says which it allows), never a value."""
        return QueryKey(
            method=self.method,
            table=self.table,
            select=render_select(self.select),
            filters=tuple((item.column, item.op) for item in self.filters),
            or_=None if self.or_ is None else tuple(sorted((f.column, f.op) for f in self.or_)),
            limited=self.limit is not None,
            on_conflict=None if self.on_conflict is None else tuple(sorted(self.on_conflict)),
        )

    def filter(self, column: str) -> Filter:
        """The filter on ``column`` (the shape guarantees it exists, and its operator)."""
        for item in self.filters:
            if item.column == column:
                return item
        raise KeyError(column)

    def eq(self, column: str) -> str:
        """The value of the ``column=eq.…`` filter (the shape guarantees it exists)."""
        item = self.filter(column)
        if item.op != "eq":
            raise KeyError(column)
        return item.value


def _name(text: str, what: str) -> str:
    if NAME.fullmatch(text) is None:
        raise Unsupported(f"{what} is not a lowercase identifier")
    return text


def _safe(text: str) -> str:
    """``text`` when it may appear in a message (an identifier), else a placeholder."""
    return text if NAME.fullmatch(text) else "?"


# --- select ---------------------------------------------------------------------------------

_SELECT_TOKEN = re.compile(r"\s*(?:([A-Za-z0-9_]+)|([*:!(),]))\s*")


def _select_tokens(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    while position < len(text):
        found = _SELECT_TOKEN.match(text, position)
        if found is None or found.end() == position:
            raise Unsupported("select holds a character outside the supported grammar")
        tokens.append(found.group(1) or found.group(2))
        position = found.end()
    return tokens


class _SelectParser:
    """Recursive descent over ``items := item (',' item)*``,
    ``item := '*' | [alias ':'] name ['!' hint] ['(' items ')']``."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.position = 0
        self.count = 0

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise Unsupported("select ends early")
        self.position += 1
        return token

    def identifier(self, what: str) -> str:
        return _name(self.take(), f"a select {what}")

    def items(self, depth: int) -> tuple[SelectItem, ...]:
        if depth > MAX_SELECT_DEPTH:
            raise Unsupported(f"select nests deeper than {MAX_SELECT_DEPTH} levels")
        items = [self.item(depth)]
        while self.peek() == ",":
            self.position += 1
            items.append(self.item(depth))
        return tuple(items)

    def item(self, depth: int) -> SelectItem:
        self.count += 1
        if self.count > MAX_SELECT_ITEMS:
            raise Unsupported(f"select has more than {MAX_SELECT_ITEMS} items")
        if self.peek() == "*":
            self.position += 1
            return SelectItem("*")
        alias = None
        name = self.identifier("name")
        if self.peek() == ":":
            self.position += 1
            alias, name = name, self.identifier("name")
        hint = None
        if self.peek() == "!":
            self.position += 1
            hint = self.identifier("hint")
        children = None
        if self.peek() == "(":
            self.position += 1
            children = self.items(depth + 1)
            if self.take() != ")":
                raise Unsupported("select has an unclosed parenthesis")
        if hint is not None and children is None:
            raise Unsupported("a select hint without an embed")
        return SelectItem(name, alias, hint, children)


def parse_select(text: str) -> tuple[SelectItem, ...]:
    if not text.strip():
        raise Unsupported("select is empty")
    parser = _SelectParser(_select_tokens(text))
    items = parser.items(1)
    if parser.peek() is not None:
        raise Unsupported("select has unexpected text after its items")
    return items


# --- filters --------------------------------------------------------------------------------


def _in_values(text: str) -> tuple[str, ...]:
    """PostgREST's list ``(a,b,"c,d")``: double quotes protect commas and parentheses, and a
    backslash inside them escapes the next character."""
    if len(text) < 2 or text[0] != "(" or text[-1] != ")":
        raise Unsupported("an in list must be in parentheses")
    inner = text[1:-1]
    values: list[str] = []
    position = 0
    while True:
        if position < len(inner) and inner[position] == '"':
            position += 1
            value: list[str] = []
            while True:
                if position >= len(inner):
                    raise Unsupported("an in list has an unterminated quote")
                char = inner[position]
                if char == "\\":
                    if position + 1 >= len(inner):
                        raise Unsupported("an in list ends in a backslash")
                    value.append(inner[position + 1])
                    position += 2
                elif char == '"':
                    position += 1
                    break
                else:
                    value.append(char)
                    position += 1
            values.append("".join(value))
        else:
            end = inner.find(",", position)
            end = len(inner) if end < 0 else end
            token = inner[position:end]
            if not token or any(char in token for char in '"()'):
                raise Unsupported("an in list has an empty or malformed value")
            values.append(token)
            position = end
        if len(values) > MAX_IN_VALUES:
            raise Unsupported(f"an in list has more than {MAX_IN_VALUES} values")
        if position == len(inner):
            return tuple(values)
        if inner[position] != ",":
            raise Unsupported("an in list has text after a quoted value")
        position += 1


def _filter(column: str, text: str, operators: frozenset[str]) -> Filter:
    op, dot, rest = text.partition(".")
    if not dot or op not in operators:
        raise Unsupported(f"unsupported operator on {column} (only {', '.join(sorted(operators))})")
    if op == "in":
        return Filter(column, op, _in_values(rest))
    return Filter(column, op, (rest,))


def _or_filters(text: str) -> tuple[Filter, ...]:
    """``(col.op.value,…)``: a flat list of eq/neq conditions, values without ``,()"``."""
    if len(text) < 2 or text[0] != "(" or text[-1] != ")":
        raise Unsupported("or must be a parenthesised list")
    conditions: list[Filter] = []
    for item in text[1:-1].split(","):
        condition = item.strip()
        column, dot, rest = condition.partition(".")
        if not dot or any(char in rest for char in '"()'):
            raise Unsupported("or holds a malformed condition")
        conditions.append(_filter(_name(column, "an or column"), rest, OR_OPERATORS))
        if len(conditions) > MAX_FILTERS:
            raise Unsupported(f"more than {MAX_FILTERS} filters")
    return tuple(conditions)


# --- the request ----------------------------------------------------------------------------


def _check_value(text: str) -> None:
    if len(text) > MAX_VALUE:
        raise Unsupported(f"a value is longer than {MAX_VALUE} characters")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in text):
        raise Unsupported("a value holds a control character")


def _header(headers: Mapping[str, str], name: str) -> list[str]:
    """Every value of header ``name``, whatever the case of the names in ``headers``."""
    return [value for key, value in headers.items() if key.lower() == name]


def _prefer(values: list[str]) -> frozenset[str]:
    """``Prefer`` tokens: stripped, the name before ``=`` lowercased (``return=representation``)."""
    tokens: set[str] = set()
    for value in values:
        if len(value) > MAX_VALUE:
            raise Unsupported("the Prefer header is too long")
        for part in value.split(","):
            name, equals, argument = part.strip().partition("=")
            if name.strip():
                tokens.add(f"{name.strip().lower()}{equals}{argument.strip()}")
            if len(tokens) > MAX_PREFER_TOKENS:
                raise Unsupported("the Prefer header has too many preferences")
    return frozenset(tokens)


def parse(
    method: str, table: str, params: Iterable[tuple[str, str]], headers: Mapping[str, str]
) -> Query:
    """``params`` are the decoded query items in order; ``headers`` the request's (any case).
    Raises :class:`Unsupported` for duplicates, unknown parameters or operators, unparsable
    trees, or values past the bounds."""
    method = method.upper()
    if method not in METHODS:
        raise Unsupported("method not supported")
    table = _name(table, "the table")
    seen: set[str] = set()
    select: tuple[SelectItem, ...] = ()
    filters: list[Filter] = []
    or_: tuple[Filter, ...] | None = None
    limit: int | None = None
    on_conflict: tuple[str, ...] | None = None
    for count, (key, value) in enumerate(params, start=1):
        if count > MAX_PARAMS:
            raise Unsupported(f"more than {MAX_PARAMS} parameters")
        key = _name(key, "a parameter name")
        if key in seen:
            raise Unsupported(f"parameter {key} given twice")
        seen.add(key)
        _check_value(value)
        if key in REFUSED:
            raise Unsupported(f"parameter {key} not supported")
        if key == "select":
            select = parse_select(value)
        elif key == "or":
            or_ = _or_filters(value)
        elif key == "limit":
            limit = digits_at_most(value, MAX_LIMIT)
            if limit is None:
                raise Unsupported(f"limit must be an integer from 0 to {MAX_LIMIT}")
        elif key == "on_conflict":
            columns = tuple(
                _name(part.strip(), "an on_conflict column") for part in value.split(",")
            )
            if len(set(columns)) != len(columns):
                raise Unsupported("on_conflict names a column twice")
            on_conflict = columns
        else:
            filters.append(_filter(key, value, OPERATORS))
        if len(filters) + len(or_ or ()) > MAX_FILTERS:
            raise Unsupported(f"more than {MAX_FILTERS} filters")
    accept = _header(headers, "accept")
    return Query(
        method=method,
        table=table,
        select=select,
        filters=tuple(sorted(filters, key=lambda item: item.column)),
        or_=or_,
        limit=limit,
        on_conflict=on_conflict,
        single=any(OBJECT_MEDIA_TYPE in value.lower() for value in accept),
        prefer=_prefer(_header(headers, "prefer")),
    )
