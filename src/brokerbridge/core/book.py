"""A price-level order book cut to a fixed depth, venue-independent.

Prices and quantities are the `Decimal`s parsed from the venue's text and are kept as received:
Kraken's checksum is computed over the exact digits (trailing zeros included), so a level updated
with `0.01500000` must keep that text, not `0.015`. Two Decimals that differ only in trailing zeros
compare and hash equal, so lookups work whatever the formatting; on update the newest key object
replaces the old one.

Each side is a dict price→qty plus a sorted list of prices (bisect): updates are O(log n) search plus
a list shift, reads of the top levels are slices — fast enough for depth ≤ 1000 without depending on
sortedcontainers.

A book may be given `level_text`, a function of (price, qty) computed once when a level is set and
kept with it; `top_text` joins the cached strings of the best levels. Kraken verifies every update
with a CRC32 over the top levels' digits: rebuilding those 20 strings per update cost ~17 µs, reading
them from the cache costs well under 1 µs.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Protocol

from brokerbridge.core.events import Level


class PriceLevel(Protocol):
    """Anything with `price` and `qty` (core `Level`, a venue wire level)."""

    @property
    def price(self) -> Decimal: ...

    @property
    def qty(self) -> Decimal: ...


LevelText = Callable[[Decimal, Decimal], str]


class _Side:
    __slots__ = ("_level_text", "_prices", "_qty", "_texts", "descending")

    def __init__(self, descending: bool, level_text: LevelText | None = None) -> None:
        self.descending = descending  # bids: best is the highest price
        self._qty: dict[Decimal, Decimal] = {}
        self._prices: list[Decimal] = []  # ascending
        self._level_text = level_text
        # level_text(price, qty) aligned with _prices, so the top levels' texts are one slice.
        self._texts: list[str] = []

    def clear(self) -> None:
        self._qty.clear()
        self._prices.clear()
        self._texts.clear()

    def set(self, price: Decimal, qty: Decimal) -> None:
        known = self._qty
        prices = self._prices
        level_text = self._level_text
        if not qty:
            if price in known:
                del known[price]
                index = bisect_left(prices, price)
                del prices[index]
                if level_text is not None:
                    del self._texts[index]
            return
        index = bisect_left(prices, price)
        if price in known:
            # Re-key with the object just received so its text (digits) is the one we keep.
            del known[price]
            known[price] = qty
            prices[index] = price
            if level_text is not None:
                self._texts[index] = level_text(price, qty)
        else:
            known[price] = qty
            prices.insert(index, price)
            if level_text is not None:
                self._texts.insert(index, level_text(price, qty))

    def truncate(self, depth: int) -> None:
        excess = len(self._prices) - depth
        if excess <= 0:
            return
        if self.descending:  # worst bids are the lowest prices, at the front
            dropped = self._prices[:excess]
            del self._prices[:excess]
            del self._texts[:excess]
        else:
            dropped = self._prices[depth:]
            del self._prices[depth:]
            del self._texts[depth:]
        for price in dropped:
            del self._qty[price]

    def top_text(self, limit: int) -> str:
        texts = self._texts
        return "".join(texts[: -limit - 1 : -1] if self.descending else texts[:limit])

    def levels(self, limit: int | None = None) -> tuple[Level, ...]:
        prices = self._prices
        if self.descending:
            chosen = prices[::-1] if limit is None else prices[: -limit - 1 : -1]
        else:
            chosen = prices if limit is None else prices[:limit]
        qty = self._qty
        return tuple(Level(p, qty[p]) for p in chosen)

    def best(self) -> Level | None:
        if not self._prices:
            return None
        price = self._prices[-1] if self.descending else self._prices[0]
        return Level(price, self._qty[price])

    def __len__(self) -> int:
        return len(self._prices)


class OrderBook:
    """Bids and asks at most `depth` levels each; `apply` levels in order, then cut to depth."""

    __slots__ = ("_asks", "_bids", "depth")

    def __init__(self, depth: int, *, level_text: LevelText | None = None) -> None:
        if depth < 1:
            raise ValueError(f"book depth must be positive, got {depth}")
        self.depth = depth
        self._bids = _Side(descending=True, level_text=level_text)
        self._asks = _Side(descending=False, level_text=level_text)

    def replace(self, bids: Iterable[PriceLevel], asks: Iterable[PriceLevel]) -> None:
        """Start again from a snapshot."""
        self._bids.clear()
        self._asks.clear()
        self.apply(bids, asks)

    def apply(self, bids: Iterable[PriceLevel], asks: Iterable[PriceLevel]) -> None:
        """Set each level to its new absolute quantity (0 deletes), in order, then truncate.

        Truncation happens after the whole message, as Kraken specifies: a level pushed out by an
        insert is not announced with qty 0 and must not come back later.
        """
        set_bid, set_ask = self._bids.set, self._asks.set
        for level in bids:
            set_bid(level.price, level.qty)
        for level in asks:
            set_ask(level.price, level.qty)
        self._bids.truncate(self.depth)
        self._asks.truncate(self.depth)

    def bids_levels(self, limit: int | None = None) -> tuple[Level, ...]:
        """Bids best (highest) first."""
        return self._bids.levels(limit)

    def asks_levels(self, limit: int | None = None) -> tuple[Level, ...]:
        """Asks best (lowest) first."""
        return self._asks.levels(limit)

    def top_text(self, limit: int) -> tuple[str, str]:
        """(asks, bids): the cached `level_text` of the best `limit` levels of each side, best first,
        joined. Raises ValueError when the book was built without `level_text`."""
        if self._bids._level_text is None:
            raise ValueError("top_text needs a book built with level_text")
        return self._asks.top_text(limit), self._bids.top_text(limit)

    def best_bid(self) -> Level | None:
        return self._bids.best()

    def best_ask(self) -> Level | None:
        return self._asks.best()

    def __len__(self) -> int:
        return len(self._bids) + len(self._asks)

    def __repr__(self) -> str:
        return f"OrderBook(depth={self.depth}, bids={len(self._bids)}, asks={len(self._asks)})"
