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
    if isinstance(value, str):
        text = value
    else:
        # str() is 2-3x faster than format(…, "f") and the same text unless it chose exponent form.
        text = str(value)
        if "E" in text:
            text = format(value, "f")
    return text.replace(".", "").lstrip("0")


def level_digits(price: Decimal, qty: Decimal) -> str:
    """One level's share of the checksum text; a book caches it per level (`OrderBook(level_text=)`;
    `KrakenBook` works out the same text inline)."""
    price_text, qty_text = str(price), str(qty)
    if "E" in price_text or "E" in qty_text:
        return _digits(price) + _digits(qty)
    return price_text.replace(".", "").lstrip("0") + qty_text.replace(".", "").lstrip("0")


def checksum_text(asks: Iterable[PriceQty], bids: Iterable[PriceQty]) -> str:
    """The string that is CRC'd; `asks` best (lowest) first, `bids` best (highest) first."""
    top_asks = sorted(asks, key=lambda level: Decimal(level[0]))[:10]
    top_bids = sorted(bids, key=lambda level: Decimal(level[0]), reverse=True)[:10]
    return "".join(_digits(p) + _digits(q) for p, q in [*top_asks, *top_bids])


def book_checksum(asks: Iterable[PriceQty], bids: Iterable[PriceQty]) -> int:
    return zlib.crc32(checksum_text(asks, bids).encode("ascii"))
