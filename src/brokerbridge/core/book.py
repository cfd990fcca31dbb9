"""A price-level order book cut to a fixed depth, venue-independent.

Prices and quantities are the `Decimal`s parsed from the venue's text and are kept as received:
Kraken's checksum is computed over the exact digits (trailing zeros included), so a level updated
with `0.01500000` must keep that text, not `0.015`. Two Decimals that differ only in trailing zeros
compare and hash equal, so lookups work whatever the formatting; on update the newest key object
replaces the old one.

Each side is a dict price→qty plus a sorted list of prices (bisect): updates are O(log n) search plus
a list shift, reads of the top levels are slices — fast enough for depth ≤ 1000 without depending on
sortedcontainers.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable
from decimal import Decimal
from typing import Protocol

from brokerbridge.core.events import Level


class PriceLevel(Protocol):
    """Anything with `price` and `qty` (core `Level`, a venue wire level)."""

    @property
    def price(self) -> Decimal: ...

    @property
    def qty(self) -> Decimal: ...


class _Side:
    __slots__ = ("_prices", "_qty", "descending")

    def __init__(self, descending: bool) -> None:
        self.descending = descending  # bids: best is the highest price
        self._qty: dict[Decimal, Decimal] = {}
        self._prices: list[Decimal] = []  # ascending

    def clear(self) -> None:
        self._qty.clear()
        self._prices.clear()

    def set(self, price: Decimal, qty: Decimal) -> None:
        if qty.is_zero():
            if price in self._qty:
                del self._qty[price]
                del self._prices[bisect_left(self._prices, price)]
            return
        if price in self._qty:
            # Re-key with the object just received so its text (digits) is the one we keep.
            del self._qty[price]
            self._qty[price] = qty
            self._prices[bisect_left(self._prices, price)] = price
        else:
            self._qty[price] = qty
            insort(self._prices, price)

    def truncate(self, depth: int) -> None:
        excess = len(self._prices) - depth
        if excess <= 0:
            return
        if self.descending:  # worst bids are the lowest prices, at the front
            dropped = self._prices[:excess]
            del self._prices[:excess]
        else:
            dropped = self._prices[depth:]
            del self._prices[depth:]
        for price in dropped:
            del self._qty[price]

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

    def __init__(self, depth: int) -> None:
        if depth < 1:
            raise ValueError(f"book depth must be positive, got {depth}")
        self.depth = depth
        self._bids = _Side(descending=True)
        self._asks = _Side(descending=False)

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
        for level in bids:
            self._bids.set(level.price, level.qty)
        for level in asks:
            self._asks.set(level.price, level.qty)
        self._bids.truncate(self.depth)
        self._asks.truncate(self.depth)

    def bids_levels(self, limit: int | None = None) -> tuple[Level, ...]:
        """Bids best (highest) first."""
        return self._bids.levels(limit)

    def asks_levels(self, limit: int | None = None) -> tuple[Level, ...]:
        """Asks best (lowest) first."""
        return self._asks.levels(limit)

    def best_bid(self) -> Level | None:
        return self._bids.best()

    def best_ask(self) -> Level | None:
        return self._asks.best()

    def __len__(self) -> int:
        return len(self._bids) + len(self._asks)

    def __repr__(self) -> str:
        return f"OrderBook(depth={self.depth}, bids={len(self._bids)}, asks={len(self._asks)})"
