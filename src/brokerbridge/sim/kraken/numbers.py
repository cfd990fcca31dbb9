"""Kraken number and time formatting: fixed point at the venue's precision, never exponent notation.

Kraken sends JSON numbers with trailing zeros (`0.10000000`, `63502.0`) and its book checksum is
computed over exactly those digits; REST sends the same as strings. `fixed()` gives the text,
`num()` wraps it as a raw JSON literal for msgspec (a Python float or `Decimal` would lose zeros
or turn into `1E-8`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

import msgspec


def fixed(value: Decimal | int | str, places: int) -> str:
    """`value` with exactly `places` decimals, no exponent: fixed(Decimal("1E-8"), 8) == "0.00000001"."""
    quantum = Decimal(1).scaleb(-places)
    text = format(Decimal(value).quantize(quantum, rounding=ROUND_HALF_EVEN), "f")
    return "0" + text[2:] if text.startswith("-0") and Decimal(text) == 0 else text


def num(value: Decimal | int | str, places: int) -> msgspec.Raw:
    """A JSON number literal with `places` decimals (trailing zeros kept)."""
    return msgspec.Raw(fixed(value, places).encode())


def rfc3339(wall: float, digits: int = 6) -> str:
    """`2024-05-19T16:27:13.694962Z` (digits=6) or nanoseconds (digits=9) for a wall time in seconds."""
    whole = int(wall // 1)
    frac_ns = round((wall - whole) * 1e9)
    if frac_ns >= 1_000_000_000:
        whole, frac_ns = whole + 1, frac_ns - 1_000_000_000
    stamp = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{frac_ns:09d}"[:digits]
    return f"{stamp}.{frac}Z" if digits else f"{stamp}Z"


def rfc3339_ns(time_ns: int) -> str:
    whole, frac = divmod(time_ns, 1_000_000_000)
    return datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def rfc1123(wall: float) -> str:
    """The `rfc1123` field of REST Time: `Thu, 06 Jul 23 18:50:48 +0000` (two-digit year, as Kraken)."""
    return datetime.fromtimestamp(int(wall), UTC).strftime("%a, %d %b %y %H:%M:%S +0000")


def seconds_literal(time_ns: int, places: int = 7) -> msgspec.Raw:
    """REST trade/order times: seconds as a JSON float with sub-second digits (`1688669597.8277369`)."""
    whole, frac = divmod(time_ns, 1_000_000_000)
    digits = f"{frac:09d}"[:places].rstrip("0") or "0"
    return msgspec.Raw(f"{whole}.{digits}".encode())
