"""The whitelist: every PostgREST table request the official CLI sends (plan §1.3, T1..T14),
written as the literal sample queries and parsed at import with ``parse.py``, so the whitelist
and the requests share one normal form.

A sample's values (``eq.x``, ``in.(a,b)``) only make it parse: the key ignores them. Where a
value changes what a request means, the shape pins it (``pinned``) instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from capgo_server.cli_compat.postgrest.parse import Query, QueryKey, parse

OBJECT = frozenset({True})  # sent with Accept: application/vnd.pgrst.object+json
ARRAY = frozenset({False})
EITHER = frozenset({True, False})
#: The default of a write without a select; harmless to accept when a client spells it out.
RETURN_MINIMAL = "return=minimal"


@dataclass(frozen=True)
class Shape:
    """One whitelisted request: its name, a sample as the CLI sends it, and the headers the
    shape allows (``Prefer`` must hold every ``prefer_required`` token and nothing outside
    ``prefer_required | prefer_allowed``)."""

    name: str
    method: str
    table: str
    sample: str
    single: frozenset[bool]
    prefer_required: frozenset[str] = frozenset()
    prefer_allowed: frozenset[str] = frozenset()
    #: ``column=eq.value`` filters whose value is part of the shape.
    pinned: tuple[tuple[str, str], ...] = field(default=())

    def query(self) -> Query:
        items = parse_qsl(self.sample, keep_blank_values=True, strict_parsing=True)
        return parse(self.method, self.table, items, {})

    def allows(self, query: Query) -> bool:
        return (
            query.single in self.single
            and self.prefer_required <= query.prefer
            and query.prefer <= self.prefer_required | self.prefer_allowed
            and all(query.eq(column) == value for column, value in self.pinned)
        )


_VERSION_EMBED = "version:app_versions!channels_version_fkey"

WHITELIST: tuple[Shape, ...] = (
    # upload without --channel: the app's default channel
    Shape("T1", "GET", "apps", "select=default_upload_channel&app_id=eq.x", OBJECT),
    # upload: the checksum of the channel's bundle
    Shape(
        "T2",
        "GET",
        "channels",
        f"select={_VERSION_EMBED}(checksum)&name=eq.x&app_id=eq.x",
        OBJECT,
    ),
    # upload: the channel's bundle (maybeSingle, so sent as an array request)
    Shape(
        "T3",
        "GET",
        "channels",
        "select=disable_auto_update,version(id,name,min_update_version,native_packages)"
        "&name=eq.x&app_id=eq.x",
        ARRAY,
    ),
    # upload and channel set: native packages of the channel's bundle; 8.35 sends it as obj
    Shape(
        "T4",
        "GET",
        "channels",
        f"select={_VERSION_EMBED}(native_packages)&name=eq.x&app_id=eq.x",
        EITHER,
    ),
    # upload: the channel's ids and rollout (8.68.1)
    Shape(
        "T5",
        "GET",
        "channels",
        "select=id,public,version,rollout_version,rollout_enabled,rollout_percentage_bps"
        "&app_id=eq.x&name=eq.x",
        ARRAY,
    ),
    # the same, 8.35.0 (without the rollout settings)
    Shape(
        "T5",
        "GET",
        "channels",
        "select=id,public,version,rollout_version&app_id=eq.x&name=eq.x",
        ARRAY,
    ),
    # channel set/delete/add (duplicate), upload --self-assign: the whole channel row
    Shape("T6", "GET", "channels", "select=*&app_id=eq.x&name=eq.x", OBJECT),
    # upload --self-assign on an existing channel
    Shape(
        "T7",
        "PATCH",
        "channels",
        "app_id=eq.x&name=eq.x&select=*",
        OBJECT,
        prefer_required=frozenset({"return=representation"}),
    ),
    # bundle delete: every channel of the app
    Shape("T8", "GET", "channels", "select=id,name,version,rollout_version&app_id=eq.x", ARRAY),
    # channel delete --delete-bundle: the channel's bundles
    Shape(
        "T9",
        "GET",
        "channels",
        f"select=id,{_VERSION_EMBED}(id,name),"
        "rollout_version_info:app_versions!channels_rollout_version_fkey(id,name)"
        "&app_id=eq.x&name=eq.x",
        ARRAY,
    ),
    # channel delete --delete-bundle: another channel still using the bundle?
    Shape(
        "T10",
        "GET",
        "channels",
        "select=id&app_id=eq.x&name=neq.x&or=(version.eq.1,rollout_version.eq.1)&limit=1",
        ARRAY,
    ),
    # upload: the bundle row (twice on 8.35, the second time to finalize)
    Shape(
        "T11",
        "POST",
        "app_versions",
        "on_conflict=name,app_id&app_id=eq.x&name=eq.x",
        ARRAY,
        prefer_required=frozenset({"resolution=merge-duplicates"}),
        prefer_allowed=frozenset({RETURN_MINIMAL}),
    ),
    # upload (TUS): the bundle's r2_path
    Shape(
        "T12",
        "PATCH",
        "app_versions",
        "name=eq.x&app_id=eq.x",
        ARRAY,
        prefer_allowed=frozenset({RETURN_MINIMAL}),
    ),
    # channel delete --delete-bundle: soft-delete a live bundle
    Shape(
        "T13",
        "PATCH",
        "app_versions",
        "app_id=eq.x&deleted=eq.false&name=eq.x",
        ARRAY,
        prefer_allowed=frozenset({RETURN_MINIMAL}),
        pinned=(("deleted", "false"),),
    ),
    # rollback of T13 (in the CLI's code only)
    Shape(
        "T14",
        "PATCH",
        "app_versions",
        "app_id=eq.x&name=in.(a,b)",
        ARRAY,
        prefer_allowed=frozenset({RETURN_MINIMAL}),
    ),
)


def _index(shapes: tuple[Shape, ...]) -> dict[QueryKey, Shape]:
    index: dict[QueryKey, Shape] = {}
    for shape in shapes:
        key = shape.query().key
        if key in index:  # two samples with one key would make match() ambiguous
            raise RuntimeError(f"shapes {index[key].name} and {shape.name} have the same key")
        index[key] = shape
    return index


#: Every whitelisted shape by its key (built once, at import).
SHAPES: dict[QueryKey, Shape] = _index(WHITELIST)


def match(query: Query) -> str | None:
    """The shape's name ("T1".."T14") when the query is on the whitelist (its ``single`` and
    ``prefer`` allowed for that shape), else None."""
    shape = SHAPES.get(query.key)
    if shape is None or not shape.allows(query):
        return None
    return shape.name
