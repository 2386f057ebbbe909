"""The PostgREST parser on random junk: it answers a Query or raises Unsupported, nothing else
(no hypothesis in the dev dependencies, so a seeded generator: every worker sees the same cases).
"""

from __future__ import annotations

import random
import string
from urllib.parse import parse_qsl

from capgo_server.cli_compat.postgrest.parse import Query, Unsupported, parse
from capgo_server.cli_compat.postgrest.shapes import match

ALPHABET = string.ascii_letters + string.digits + "_.,:!()*\"\\ -=&%+;'\x00\n\té€\ud800"
KEYS = ["select", "or", "limit", "on_conflict", "order", "app_id", "name", "version", "Ab", ""]
#: Pieces of each parameter's grammar, so that junk often gets deep into the parser.
PIECES = {
    "select": ["id", "version", "app_versions", "x_fkey", ":", "!", "(", ")", ",", " ", "*"],
    "or": ["(", ")", "version", ".", "eq", "neq", "in", "1", ",", '"', " "],
    "limit": ["0", "1", "9", "-", " ", "x"],
    "on_conflict": ["name", "app_id", ",", " ", ";"],
    "filter": ["eq.", "neq.", "in.(", "like.", "a", ",", '"', "\\", "(", ")", ".", " ", "é"],
}


def _junk(rng: random.Random, key: str = "") -> str:
    if rng.random() < 0.15:
        return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 40)))
    pieces = PIECES.get(key, PIECES["filter"])
    text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 16)))
    if key == "or" and rng.random() < 0.8:
        return f"({text})"
    if key not in PIECES and rng.random() < 0.8:
        return rng.choice(["eq.", "neq.", "in.(", 'in.("']) + text + rng.choice(["", ")"])
    return text


def test_junk_raises_only_unsupported():
    """Random requests (a fixed seed, so every run and worker sees the same ones): ``parse``
    either returns a Query whose key is hashable, or raises Unsupported, nothing else."""
    rng = random.Random(16)
    parsed = 0
    for _ in range(6_000):
        items = []
        for _ in range(rng.randint(0, 6)):
            key = rng.choice(KEYS) if rng.random() < 0.95 else _junk(rng)
            items.append((key, _junk(rng, key)))
        headers = {"Accept": _junk(rng), "Prefer": _junk(rng)}
        table = (
            rng.choice(["channels", "apps", "app_versions"]) if rng.random() < 0.9 else _junk(rng)
        )
        method = rng.choice(["GET", "POST", "PATCH", "get"]) if rng.random() < 0.9 else _junk(rng)
        try:
            query = parse(method, table, items, headers)
        except Unsupported:
            continue
        parsed += 1
        assert isinstance(query, Query)
        hash(query.key)
        match(query)
    assert parsed > 100  # the junk reaches past the first checks


def test_junk_from_raw_query_strings_raises_only_unsupported():
    """Random bytes percent-encoded and decoded the way Starlette does."""
    rng = random.Random(1616)
    for _ in range(5_000):
        raw = "".join(
            rng.choice(["%", "%2", "%C3", "%00", "%FF", "&", "=", "+", "(", ")", ",", "eq.", "a"])
            for _ in range(rng.randint(0, 20))
        )
        try:
            parse("GET", "channels", parse_qsl(raw, keep_blank_values=True), {})
        except Unsupported:
            continue
