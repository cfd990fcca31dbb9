"""Captured wire messages and the ways a fuzz test bends them.

`captured(venue, prefix)` reads every message of the repository's fixtures and of the team's shared
copy (`../shared/fixtures`), deduplicated by content: `.json` files hold one message, `.jsonl` one
per line, `.txt` one raw text frame.

`mutated(message)` is a hypothesis strategy that keeps the message's shape but breaks it where a
decoder is most likely to trip: keys dropped or renamed, values of another type, huge or negative
numbers, "NaN"/"Infinity" strings, deep nesting, wrong enum spellings, odd unicode, and, on the
text, truncation and out-of-range number literals. `hostile_text` is arbitrary text and JSON.

The budget is `BROKERBRIDGE_FUZZ_EXAMPLES` examples per test (default a CI-sized 150; run with e.g.
2000 by hand for a longer search).
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

TESTS = Path(__file__).resolve().parents[1]
FIXTURE_ROOTS = (TESTS / "fixtures", TESTS.parents[1] / "shared" / "fixtures")
EXAMPLES = int(os.environ.get("BROKERBRIDGE_FUZZ_EXAMPLES", "150"))
DEEP = 5000  # nesting levels: far beyond any interpreter recursion limit

# Hypothesis' deadline flags an input that takes long (a near-hang); pytest-timeout catches a real one.
fuzz_settings = settings(
    max_examples=EXAMPLES,
    deadline=2000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


@dataclass(frozen=True)
class Captured:
    name: str  # file name (and line number for .jsonl)
    text: str

    def __repr__(self) -> str:  # hypothesis prints drawn values: the name finds the text
        return f"Captured({self.name!r})"


def captured(venue: str, prefix: str) -> list[Captured]:
    """Every captured message of `venue` whose file name starts with `prefix` (ws_ or http_)."""
    seen: set[str] = set()
    out: list[Captured] = []
    for root in FIXTURE_ROOTS:
        folder = root / venue
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob(f"{prefix}*")):
            for name, text in _messages(path):
                if text not in seen:
                    seen.add(text)
                    out.append(Captured(name, text))
    assert out, f"no captured {venue} {prefix}* messages under {FIXTURE_ROOTS}"
    return out


def _messages(path: Path) -> Iterator[tuple[str, str]]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                yield f"{path.name}:{number}", line
    elif path.suffix in (".json", ".txt"):
        yield path.name, text.strip() if path.suffix == ".json" else text


# ---------------------------------------------------------------- values that break decoders

ODD_STRINGS = (
    "",
    " ",
    "NaN",
    "nan",
    "sNaN",
    "Infinity",
    "-Infinity",
    "inf",
    "1e999999",
    "-1e999999",
    "1e-999999",
    "9" * 400,
    "0x10",
    "1_000",
    "\u0000",
    "\u202e\u0301💥",
    "\ud7ff\ufffe",
    "null",
    "true",
    "[]",
    "{}",
    "<html>",
)
ODD_NUMBERS: tuple[Any, ...] = (
    0,
    -0.0,
    -1,
    -1e-9,
    1e-40,
    10**40,
    -(10**40),
    2**63,
    2**64,
    -(2**63) - 1,
    1.7976931348623157e308,
    5e-324,
    123456789012345678901234567890.123,
)


def deep_text(kind: str) -> str:
    """JSON nested `DEEP` levels; built as text because encoders recurse too."""
    if kind == "list":
        return "[" * DEEP + "1" + "]" * DEEP
    return '{"a":' * DEEP + "1" + "}" * DEEP


# Stands for a deeply nested value inside a mutated tree until it is serialized.
_DEEP_MARKERS = {"\u0000deep-list": deep_text("list"), "\u0000deep-object": deep_text("object")}


odd_values = st.one_of(
    st.sampled_from(ODD_STRINGS),
    st.sampled_from(ODD_NUMBERS),
    st.sampled_from([None, True, False, [], {}, [None], {"": None}]),
    st.sampled_from(sorted(_DEEP_MARKERS)),
    st.text(max_size=30),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
)

# Wrong spellings for the enum-like strings venues send.
ENUM_SWAPS = {
    "snapshot": ["update", "Snapshot", "snap"],
    "update": ["snapshot", "UPDATE", "delta"],
    "buy": ["sell", "BUY", "long", "b"],
    "sell": ["buy", "SELL", "short", "s"],
    "BUY": ["SELL", "buy", "BID"],
    "SELL": ["BUY", "sell", "ASK"],
    "Md": ["md", "MD", "or", "smd", ""],
    "or": ["OR", "Md", "os"],
    "OK": ["ok", "ERROR", "Ok", ""],
    "ERROR": ["error", "OK", "WARN"],
    "subscribe": ["unsubscribe", "SUBSCRIBE", "pong"],
    "pong": ["ping", "PONG", "subscribe"],
    "trade": ["new", "filled", "Trade"],
    "new": ["trade", "canceled", "NEW"],
    "FILLED": ["PARTIALLY_FILLED", "CANCELLED", "filled", "NEW"],
    "NEW": ["FILLED", "REJECTED", "new"],
    "LIMIT": ["MARKET", "limit", "STOP"],
    "online": ["maintenance", "cancel_only", "post_only", "offline"],
    "book": ["ticker", "trade", "ohlc", "books"],
    "ticker": ["book", "Ticker"],
}

_NUMBER = re.compile(r"(?<![\w.\"])-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w.\"])")
NUMBER_LITERALS = ("1e999999", "-1e999999", "1e-999999", "-0", "9" * 500, "1" + "0" * 40, "-1")


# ---------------------------------------------------------------- tree mutations


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def _mutate_tree(draw: st.DrawFn, doc: Any) -> Any:
    paths = list(_paths(doc))
    path = draw(st.sampled_from(paths))
    target = _get(doc, path)
    parent = _get(doc, path[:-1]) if path else None
    kinds = ["replace"]
    if isinstance(parent, dict):
        kinds += ["drop", "rename"]
    if isinstance(parent, list):
        kinds += ["drop", "duplicate"]
    if isinstance(target, str) and target in ENUM_SWAPS:
        kinds += ["enum", "enum"]
    if isinstance(target, int | float) and not isinstance(target, bool):
        kinds += ["number", "number", "stringify"]
    if isinstance(target, str):
        kinds += ["stringify_odd"]
    if isinstance(target, dict | list):
        kinds += ["empty"]
    kind = draw(st.sampled_from(kinds))
    if kind == "drop":
        del parent[path[-1]]  # type: ignore[index]
        return doc
    if kind == "rename":
        key = path[-1]
        assert isinstance(parent, dict)
        renamed = draw(st.sampled_from([key.upper(), key + "_", key[:-1], "", "\u00e9" + key]))
        parent[renamed] = parent.pop(key)
        return doc
    if kind == "duplicate":
        assert isinstance(parent, list)
        parent.insert(path[-1], copy.deepcopy(target))
        return doc
    if kind == "enum":
        new: Any = draw(st.sampled_from(ENUM_SWAPS[target]))
    elif kind == "number":
        new = draw(st.sampled_from([*ODD_NUMBERS, -abs(target) if target else -1, target * 10**30]))
    elif kind == "stringify":
        new = draw(st.sampled_from([str(target), "NaN", "Infinity", "-Infinity", "1e999999", ""]))
    elif kind == "stringify_odd":
        new = draw(st.sampled_from(ODD_STRINGS))
    elif kind == "empty":
        new = type(target)()
    else:
        new = copy.deepcopy(draw(odd_values))  # the drawn [] / {} are shared: never mutate them
    if not path:
        return new
    parent[path[-1]] = new  # type: ignore[index]
    return doc


def _serialize(draw: st.DrawFn, doc: Any) -> str:
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()))
    for marker, deep in _DEEP_MARKERS.items():
        text = text.replace(json.dumps(marker), deep).replace(json.dumps(marker, ensure_ascii=False), deep)
    return text


@st.composite
def mutated(draw: st.DrawFn, message: Captured) -> str:
    """`message` with one to three tree mutations and, sometimes, a text-level one."""
    try:
        doc = json.loads(message.text)
    except ValueError:  # a raw text frame (Cloudflare's notice): text mutations only
        doc = None
    if doc is None:
        text = message.text
    else:
        for _ in range(draw(st.integers(1, 3))):
            doc = _mutate_tree(draw, doc)
        text = _serialize(draw, doc)
    match draw(st.sampled_from(["none", "none", "truncate", "literal", "splice"])):
        case "truncate" if text:
            text = text[: draw(st.integers(0, len(text) - 1))]
        case "literal":
            numbers = list(_NUMBER.finditer(text))
            if numbers:
                found = draw(st.sampled_from(numbers))
                literal = draw(st.sampled_from(NUMBER_LITERALS))
                text = text[: found.start()] + literal + text[found.end() :]
        case "splice" if text:
            at = draw(st.integers(0, len(text)))
            junk = draw(st.sampled_from(["\u0000", "}", "]", ",", '"', "\\", "💥", "\ufeff"]))
            text = text[:at] + junk + text[at:]
    return text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
hostile_text = st.one_of(
    st.text(max_size=300),
    json_values.map(json.dumps),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.sampled_from(["list", "object"]).map(deep_text),
)


def finite_numbers(value: Any) -> bool:
    """Every Decimal/float reachable in an event is finite (NaN would break ordering and equality)."""
    if isinstance(value, Decimal):
        return value.is_finite()
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, msgspec.Struct):
        return all(finite_numbers(getattr(value, f)) for f in value.__struct_fields__)
    if isinstance(value, tuple | list):
        return all(finite_numbers(v) for v in value)
    return True
