"""Plausible wire numbers: what a decoder accepts as a price, size, balance or time.

msgspec decodes a `Decimal` from a JSON string as readily as from a JSON number, so "NaN",
"Infinity" and "1e999999" arrive as Decimals, and `1e999` as a float becomes `inf`. NaN breaks
ordering (`<` raises) and equality; a huge exponent turns fixed-point formatting (the Kraken
checksum, `format(x, "f")`) into gigabytes; an integer of 40 digits overflows `float()`.
Decoders refuse such messages with a `ProtocolError` naming the field (`first_insane`) rather
than letting the value reach books and balances.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import msgspec

MAX_EXPONENT = 40  # |adjusted exponent| of any sane price or size
MAX_INT = 2**64  # msgspec decodes any JSON integer; `float()` of a wider one overflows


def sane(value: Decimal | None) -> bool:
    """Finite and of a plausible magnitude (None, an absent value, passes)."""
    return value is None or (value.is_finite() and -MAX_EXPONENT <= value.adjusted() <= MAX_EXPONENT)


def first_insane(value: Any, path: str = "$") -> str | None:
    """The path (`$.data.0.bid`) of the first non-finite or absurd number in a decoded message."""
    if isinstance(value, Decimal):
        return None if sane(value) else path
    if isinstance(value, float):
        return None if math.isfinite(value) else path
    if isinstance(value, int):  # ids, counts, epoch times: none is wider than 64 bits
        return None if -MAX_INT <= value <= MAX_INT else path
    items: Iterable[tuple[Any, Any]]
    if isinstance(value, msgspec.Struct):
        items = ((name, getattr(value, name)) for name in value.__struct_fields__)
    elif isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = first_insane(item, f"{path}.{key}")
        if found is not None:
            return found
    return None
