"""Kraken WS v2 book checksum: CRC32 over the top 10 asks (low→high) then bids (high→low),
each level as price then qty with '.' removed and leading zeros stripped.

It is computed over the exact text of the numbers (trailing zeros count), so callers pass the
Decimal parsed from the wire (which keeps its digits) or text formatted at the pair's precision.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from decimal import Decimal

PriceQty = tuple[Decimal | str, Decimal | str]


def _digits(value: Decimal | str) -> str:
    text = value if isinstance(value, str) else format(value, "f")
    return text.replace(".", "").lstrip("0")


def checksum_text(asks: Iterable[PriceQty], bids: Iterable[PriceQty]) -> str:
    """The string that is CRC'd; `asks` best (lowest) first, `bids` best (highest) first."""
    top_asks = sorted(asks, key=lambda level: Decimal(level[0]))[:10]
    top_bids = sorted(bids, key=lambda level: Decimal(level[0]), reverse=True)[:10]
    return "".join(_digits(p) + _digits(q) for p, q in [*top_asks, *top_bids])


def book_checksum(asks: Iterable[PriceQty], bids: Iterable[PriceQty]) -> int:
    return zlib.crc32(checksum_text(asks, bids).encode("ascii"))
