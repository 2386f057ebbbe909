"""The PostgREST parser and the whitelist (pure: no database, no HTTP).

The requests are the ones the CLI sends (shared/spec/cli-traces-8.68.1.txt, plan §1.3), split
into decoded items as Starlette does (``parse_qsl`` with blank values kept).
"""

from __future__ import annotations

import itertools
import re
from urllib.parse import parse_qsl, urlencode

import pytest
from starlette.requests import Request

from capgo_server.cli_compat.postgrest.parse import (
    MAX_VALUE,
    Filter,
    SelectItem,
    Unsupported,
    parse,
)
from capgo_server.cli_compat.postgrest.shapes import SHAPES, WHITELIST, match

OBJ = {"Accept": "application/vnd.pgrst.object+json"}
JSON = {"Accept": "application/json"}
APP = "app_id=eq.com.rec.demo"

#: (shape, method, table, query string as sent, headers), 8.68.1 unless marked.
CLI_REQUESTS = [
    ("T1", "GET", "apps", f"select=default_upload_channel&{APP}", OBJ),
    (
        "T2",
        "GET",
        "channels",
        "select=version:app_versions!channels_version_fkey(checksum)&name=eq.production&" + APP,
        OBJ,
    ),
    (
        "T3",
        "GET",
        "channels",
        "select=disable_auto_update,version(id,name,min_update_version,native_packages)"
        f"&name=eq.production&{APP}",
        JSON,
    ),
    (
        "T4",
        "GET",
        "channels",
        f"select=version:app_versions!channels_version_fkey(native_packages)&name=eq.beta&{APP}",
        JSON,
    ),
    (  # 8.35.0 sends T4 with the object Accept header
        "T4",
        "GET",
        "channels",
        f"select=version:app_versions!channels_version_fkey(native_packages)&name=eq.beta&{APP}",
        OBJ,
    ),
    (
        "T5",
        "GET",
        "channels",
        "select=id,public,version,rollout_version,rollout_enabled,rollout_percentage_bps"
        f"&{APP}&name=eq.production",
        JSON,
    ),
    (  # 8.35.0: the shorter select
        "T5",
        "GET",
        "channels",
        f"select=id,public,version,rollout_version&{APP}&name=eq.production",
        {},
    ),
    ("T6", "GET", "channels", f"select=*&{APP}&name=eq.beta", OBJ),
    (
        "T7",
        "PATCH",
        "channels",
        f"{APP}&name=eq.beta&select=*",
        {**OBJ, "Prefer": "return=representation"},
    ),
    ("T8", "GET", "channels", f"select=id,name,version,rollout_version&{APP}", JSON),
    (
        "T9",
        "GET",
        "channels",
        "select=id,version:app_versions!channels_version_fkey(id,name),"
        "rollout_version_info:app_versions!channels_rollout_version_fkey(id,name)"
        f"&{APP}&name=eq.gamma",
        JSON,
    ),
    (
        "T10",
        "GET",
        "channels",
        f"select=id&{APP}&name=neq.gamma&or=(version.eq.103,rollout_version.eq.103)&limit=1",
        JSON,
    ),
    (
        "T11",
        "POST",
        "app_versions",
        f"on_conflict=name,app_id&{APP}&name=eq.1.0.1",
        {"Prefer": "resolution=merge-duplicates"},
    ),
    ("T12", "PATCH", "app_versions", f"name=eq.1.0.3&{APP}", {}),
    ("T13", "PATCH", "app_versions", f"{APP}&deleted=eq.false&name=eq.1.0.5", {}),
    ("T14", "PATCH", "app_versions", f'{APP}&name=in.(1.0.5,"1.0,6")', {}),
]
IDS = [f"{shape}-{index}" for index, (shape, *_) in enumerate(CLI_REQUESTS)]


def items_of(query_string: str) -> list[tuple[str, str]]:
    return parse_qsl(query_string, keep_blank_values=True)


def spaced(select: str) -> str:
    """``select`` with spaces around every token, as a hand-written request might have."""
    return "  " + re.sub(r"([,:!()])", r" \1  ", select) + " "


@pytest.mark.parametrize(("shape", "method", "table", "query", "headers"), CLI_REQUESTS, ids=IDS)
def test_every_cli_request_matches_its_shape(shape, method, table, query, headers):
    assert match(parse(method, table, items_of(query), headers)) == shape


@pytest.mark.parametrize(("shape", "method", "table", "query", "headers"), CLI_REQUESTS, ids=IDS)
def test_parameter_order_and_select_whitespace_do_not_matter(shape, method, table, query, headers):
    items = items_of(query)
    reference = parse(method, table, items, headers)
    respaced = [(key, spaced(value) if key == "select" else value) for key, value in items]
    for order in itertools.permutations(respaced):
        parsed = parse(method.lower(), table, list(order), headers)
        assert parsed == reference
        assert match(parsed) == shape


@pytest.mark.parametrize(("shape", "method", "table", "query", "headers"), CLI_REQUESTS, ids=IDS)
def test_a_starlette_request_encoded_as_the_cli_does_matches(shape, method, table, query, headers):
    """supabase-js builds the query with URLSearchParams: ``(),:!"`` percent-encoded, ``*``
    kept; the endpoint hands over Starlette's decoded items and headers."""
    encoded = urlencode(items_of(query), safe="*").encode()
    raw_headers = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    raw_headers.append((b"prefer", b"return=minimal") if method == "POST" else (b"x-other", b"1"))
    request = Request(
        {"type": "http", "method": method, "query_string": encoded, "headers": raw_headers}
    )
    parsed = parse(request.method, table, request.query_params.multi_items(), request.headers)
    assert match(parsed) == shape


def test_header_names_are_case_insensitive_and_prefer_tokens_normalised():
    headers = {"ACCEPT": "application/vnd.pgrst.object+json", "prefer": " Return=representation ,"}
    query = parse("PATCH", "channels", items_of(f"{APP}&name=eq.beta&select=*"), headers)
    assert query.single is True
    assert query.prefer == frozenset({"return=representation"})
    assert match(query) == "T7"


def test_values_are_kept_out_of_the_key_and_read_back():
    query = parse(
        "GET",
        "channels",
        items_of(
            f"select=id&{APP}&name=neq.gamma&or=(version.eq.103,rollout_version.eq.7)&limit=1"
        ),
        {},
    )
    assert query.eq("app_id") == "com.rec.demo"
    assert query.filter("name") == Filter("name", "neq", ("gamma",))
    with pytest.raises(KeyError):
        query.eq("name")
    with pytest.raises(KeyError):
        query.filter("version")
    assert query.filters == (
        Filter("app_id", "eq", ("com.rec.demo",)),
        Filter("name", "neq", ("gamma",)),
    )
    assert query.or_ == (
        Filter("version", "eq", ("103",)),
        Filter("rollout_version", "eq", ("7",)),
    )
    assert query.limit == 1
    assert "gamma" not in repr(query.key)
    assert "103" not in repr(query.key)
    other = parse(
        "GET",
        "channels",
        items_of("select=id&app_id=eq.b&name=neq.c&or=(rollout_version.eq.1,version.eq.2)&limit=9"),
        {},
    )
    assert other.key == query.key


def test_select_tree_and_in_list_are_parsed():
    query = parse(
        "PATCH",
        "app_versions",
        items_of(f'select=a:b!c_fkey(d,e(f)),*&{APP}&name=in.(x,"y,z","q\\"r",",")'),
        {},
    )
    assert query.select == (
        SelectItem(
            "b", "a", "c_fkey", (SelectItem("d"), SelectItem("e", children=(SelectItem("f"),)))
        ),
        SelectItem("*"),
    )
    assert query.filters[1] == Filter("name", "in", ("x", "y,z", 'q"r', ","))


def test_on_conflict_and_no_select():
    query = parse("POST", "app_versions", items_of("on_conflict= name , app_id"), {})
    assert query.on_conflict == ("name", "app_id")
    assert query.select == ()
    assert query.key.on_conflict == ("app_id", "name")


def test_the_whitelist_covers_t1_to_t14_with_both_t5_variants():
    assert sorted({shape.name for shape in WHITELIST}, key=lambda name: int(name[1:])) == [
        f"T{number}" for number in range(1, 15)
    ]
    assert [shape.name for shape in SHAPES.values()].count("T5") == 2
    assert len(SHAPES) == len(WHITELIST)


# --- refused by the parser ------------------------------------------------------------------

UNSUPPORTED = [
    ("unknown column in select", "GET", "channels", f"select=id,Secret&{APP}"),
    ("operator like", "GET", "channels", "select=id&app_id=like.com*"),
    ("operator ilike", "GET", "channels", "select=id&app_id=ilike.com*"),
    ("operator gt", "GET", "channels", "select=id&version=gt.1"),
    ("operator is", "GET", "channels", "select=id&version=is.null"),
    ("negated operator", "GET", "channels", "select=id&name=not.eq.x"),
    ("no operator", "GET", "channels", "select=id&name=production"),
    ("param order", "GET", "channels", f"select=id&{APP}&order=id.desc"),
    ("param offset", "GET", "channels", f"select=id&{APP}&offset=5"),
    ("param columns", "POST", "app_versions", "columns=name&app_id=eq.x"),
    ("param and", "GET", "channels", "select=id&and=(id.eq.1,name.eq.x)"),
    ("param not.or", "GET", "channels", "select=id&not.or=(id.eq.1,name.eq.x)"),
    ("embedded filter", "GET", "channels", "select=id&version.name=eq.x"),
    ("uppercase param", "GET", "channels", "Select=id&app_id=eq.x"),
    ("duplicate select", "GET", "channels", "select=id&select=name&app_id=eq.x"),
    ("duplicate filter", "GET", "channels", "select=id&app_id=eq.a&app_id=eq.b"),
    ("duplicate or", "GET", "channels", "select=id&or=(id.eq.1)&or=(id.eq.2)"),
    ("or without parentheses", "GET", "channels", "select=id&or=version.eq.1"),
    ("or nested", "GET", "channels", "select=id&or=(and(version.eq.1,id.eq.2))"),
    ("or with in", "GET", "channels", "select=id&or=(version.in.(1,2))"),
    ("or with gt", "GET", "channels", "select=id&or=(version.gt.1,rollout_version.eq.1)"),
    ("or empty condition", "GET", "channels", "select=id&or=(version.eq.1,)"),
    ("or without operator", "GET", "channels", "select=id&or=(version,rollout_version)"),
    ("or bad column", "GET", "channels", "select=id&or=(Version.eq.1)"),
    ("or quoted", "GET", "channels", 'select=id&or=(version.eq."1")'),
    ("in without parentheses", "PATCH", "app_versions", "name=in.a,b"),
    ("in unterminated quote", "PATCH", "app_versions", 'name=in.(a,"b)'),
    ("in text after quote", "PATCH", "app_versions", 'name=in.("a"b,c)'),
    ("in empty list", "PATCH", "app_versions", "name=in.()"),
    ("in empty value", "PATCH", "app_versions", "name=in.(a,,b)"),
    ("in trailing comma", "PATCH", "app_versions", "name=in.(a,)"),
    ("in nested", "PATCH", "app_versions", "name=in.((a),b)"),
    ("in trailing backslash", "PATCH", "app_versions", 'name=in.("a\\)'),
    ("nested too deep", "GET", "channels", "select=a(b(c(d)))"),
    ("empty select", "GET", "channels", "select=&app_id=eq.x"),
    ("blank select", "GET", "channels", "select=%20%20&app_id=eq.x"),
    ("select trailing comma", "GET", "channels", "select=id,&app_id=eq.x"),
    ("select leading comma", "GET", "channels", "select=,id"),
    ("select empty embed", "GET", "channels", "select=version()"),
    ("select unclosed embed", "GET", "channels", "select=version(id"),
    ("select extra parenthesis", "GET", "channels", "select=version(id))"),
    ("select cast", "GET", "channels", "select=id::text"),
    ("select json path", "GET", "channels", "select=data->a"),
    ("select spread", "GET", "channels", "select=...version(id)"),
    ("select count", "GET", "channels", "select=count()"),
    ("select aliased star", "GET", "channels", "select=a:*"),
    ("select star embed", "GET", "channels", "select=*(id)"),
    ("select hint without embed", "GET", "channels", "select=version!fkey"),
    ("select two words", "GET", "channels", "select=disable auto"),
    ("select quoted", "GET", "channels", 'select="id"'),
    ("select long name", "GET", "channels", "select=" + "a" * 64),
    ("limit negative", "GET", "channels", "select=id&limit=-1"),
    ("limit huge", "GET", "channels", "select=id&limit=" + "9" * 50),
    ("limit not a number", "GET", "channels", "select=id&limit=one"),
    ("limit empty", "GET", "channels", "select=id&limit="),
    ("on_conflict bad", "POST", "app_versions", "on_conflict=name;drop"),
    ("on_conflict empty", "POST", "app_versions", "on_conflict="),
    ("on_conflict twice the column", "POST", "app_versions", "on_conflict=name,name"),
    ("10k value", "GET", "channels", "select=id&app_id=eq." + "x" * 10_000),
    ("value past the bound", "GET", "channels", "select=id&app_id=eq." + "x" * MAX_VALUE),
    ("17 filters", "GET", "channels", "&".join(f"c{n}=eq.1" for n in range(17))),
    (
        "16 filters and or",
        "GET",
        "channels",
        "&".join(f"c{n}=eq.1" for n in range(16)) + "&or=(a.eq.1)",
    ),
    ("many params", "GET", "channels", "&".join(f"order{n}=eq.1" for n in range(30))),
    ("NUL in a value", "GET", "channels", "select=id&app_id=eq.a%00b"),
    ("newline in a value", "GET", "channels", "select=id&app_id=eq.a%0Ab"),
    ("tab in select", "GET", "channels", "select=id,%09name"),
    ("encoded key with brackets", "GET", "channels", "select=id&app_id%5B%5D=eq.x"),
    ("encoded space in key", "GET", "channels", "select=id&app%20id=eq.x"),
    ("encoded dot in key", "GET", "channels", "select=id&app_id%2Ename=eq.x"),
    ("non-ascii key", "GET", "channels", "select=id&%C3%A9=eq.x"),
    ("empty key", "GET", "channels", "select=id&=eq.x"),
    ("encoded semicolon in select", "GET", "channels", "select=id%3Bdrop"),
    ("unicode in select", "GET", "channels", "select=%C3%A9"),
    ("bad table", "GET", "Channels", "select=id"),
    ("table with a dot", "GET", "public.channels", "select=id"),
    ("method DELETE", "DELETE", "channels", f"{APP}&name=eq.x"),
    ("method PUT", "PUT", "channels", f"{APP}&name=eq.x"),
]


@pytest.mark.parametrize(
    ("method", "table", "query"),
    [case[1:] for case in UNSUPPORTED],
    ids=[case[0] for case in UNSUPPORTED],
)
def test_outside_the_grammar_is_unsupported(method, table, query):
    with pytest.raises(Unsupported):
        parse(method, table, items_of(query), {})


def test_the_value_bound_is_inclusive():
    value = "eq." + "x" * (MAX_VALUE - 3)
    assert parse("GET", "channels", [("app_id", value)], {}).eq("app_id") == value[3:]


@pytest.mark.parametrize(
    "headers",
    [{"Prefer": "x" * (MAX_VALUE + 1)}, {"Prefer": ",".join(f"p{n}=1" for n in range(17))}],
    ids=["long", "many"],
)
def test_prefer_past_the_bounds_is_unsupported(headers):
    with pytest.raises(Unsupported):
        parse("GET", "channels", [], headers)


def test_messages_never_echo_values():
    secret = "s3cr3t-value"
    cases = [
        [("app_id", f"like.{secret}")],
        [("select", f"id,{secret}!")],
        [("app_id", f"eq.{secret}" * 200)],
        [("or", f"({secret})")],
        [("name", f"in.({secret}")],
        [("limit", secret)],
        [(f"{secret}!", "eq.1")],
        [("on_conflict", f"{secret};")],
    ]
    for items in cases:
        with pytest.raises(Unsupported) as raised:
            parse("GET", "channels", items, {})
        assert secret not in str(raised.value)


# --- parsed, but off the whitelist ----------------------------------------------------------

OFF_WHITELIST = [
    ("unknown column in select", "GET", "channels", f"select=id,secret&{APP}&name=eq.x", {}),
    ("select reordered", "GET", "channels", f"select=name,id,version,rollout_version&{APP}", {}),
    ("unknown filter column", "GET", "channels", f"select=*&{APP}&name=eq.x&owner_org=eq.y", OBJ),
    ("missing filter", "GET", "channels", "select=*&name=eq.x", OBJ),
    ("other operator", "GET", "channels", f"select=*&{APP}&name=neq.x", OBJ),
    ("other table", "GET", "app_versions", f"select=*&{APP}&name=eq.x", OBJ),
    ("T6 without obj", "GET", "channels", f"select=*&{APP}&name=eq.x", JSON),
    ("T1 without obj", "GET", "apps", f"select=default_upload_channel&{APP}", {}),
    ("T3 with obj", "GET", "channels", f"{CLI_REQUESTS[2][3]}", OBJ),
    (
        "T5 with obj",
        "GET",
        "channels",
        f"select=id,public,version,rollout_version&{APP}&name=eq.x",
        OBJ,
    ),
    ("T6 as PATCH", "PATCH", "channels", f"select=*&{APP}&name=eq.x", OBJ),
    (
        "T7 as GET",
        "GET",
        "channels",
        f"{APP}&name=eq.x&select=*",
        {**OBJ, "Prefer": "return=representation"},
    ),
    ("T7 without return", "PATCH", "channels", f"{APP}&name=eq.x&select=*", OBJ),
    (
        "T7 without obj",
        "PATCH",
        "channels",
        f"{APP}&name=eq.x&select=*",
        {"Prefer": "return=representation"},
    ),
    (
        "T7 with tx=rollback",
        "PATCH",
        "channels",
        f"{APP}&name=eq.x&select=*",
        {**OBJ, "Prefer": "return=representation,tx=rollback"},
    ),
    (
        "T10 without limit",
        "GET",
        "channels",
        f"select=id&{APP}&name=neq.g&or=(version.eq.1,rollout_version.eq.1)",
        {},
    ),
    (
        "T10 other or",
        "GET",
        "channels",
        f"select=id&{APP}&name=neq.g&or=(version.eq.1,id.eq.1)&limit=1",
        {},
    ),
    ("T10 one or", "GET", "channels", f"select=id&{APP}&name=neq.g&or=(version.eq.1)&limit=1", {}),
    (
        "T11 as PATCH",
        "PATCH",
        "app_versions",
        f"on_conflict=name,app_id&{APP}&name=eq.1",
        {"Prefer": "resolution=merge-duplicates"},
    ),
    (
        "T11 without resolution",
        "POST",
        "app_versions",
        f"on_conflict=name,app_id&{APP}&name=eq.1",
        {},
    ),
    (
        "T11 ignoring duplicates",
        "POST",
        "app_versions",
        f"on_conflict=name,app_id&{APP}&name=eq.1",
        {"Prefer": "resolution=ignore-duplicates"},
    ),
    (
        "T11 with count",
        "POST",
        "app_versions",
        f"on_conflict=name,app_id&{APP}&name=eq.1",
        {"Prefer": "resolution=merge-duplicates,count=exact"},
    ),
    (
        "T11 other conflict",
        "POST",
        "app_versions",
        f"on_conflict=name&{APP}&name=eq.1",
        {"Prefer": "resolution=merge-duplicates"},
    ),
    ("T12 as POST", "POST", "app_versions", f"name=eq.1&{APP}", {}),
    (
        "T12 with representation",
        "PATCH",
        "app_versions",
        f"name=eq.1&{APP}",
        {"Prefer": "return=representation"},
    ),
    ("T12 with obj", "PATCH", "app_versions", f"name=eq.1&{APP}", OBJ),
    ("T13 deleted true", "PATCH", "app_versions", f"{APP}&deleted=eq.true&name=eq.1", {}),
    ("T13 deleted neq", "PATCH", "app_versions", f"{APP}&deleted=neq.false&name=eq.1", {}),
    ("T14 with eq", "PATCH", "app_versions", f"{APP}&name=in.(1)&deleted=eq.true", {}),
    ("T14 as GET", "GET", "app_versions", f"{APP}&name=in.(1)", {}),
    ("no params", "GET", "channels", "", {}),
]


@pytest.mark.parametrize(
    ("method", "table", "query", "headers"),
    [case[1:] for case in OFF_WHITELIST],
    ids=[case[0] for case in OFF_WHITELIST],
)
def test_off_the_whitelist_matches_nothing(method, table, query, headers):
    assert match(parse(method, table, items_of(query), headers)) is None
