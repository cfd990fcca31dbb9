"""A price-level order book cut to a fixed depth, venue-independent.

Prices and quantities are the `Decimal`s parsed from the venue's text and are kept as received:
Kraken's checksum is computed over the exact digits (trailing zeros included), so a level updated
with `0.01500000` must keep that text, not `0.015`. Two Decimals that differ only in trailing zeros
compare equal, so lookups work whatever the formatting; on update the newest price object replaces
the old one.

Each side is a sorted list of prices with the quantities in a parallel list (bisect): updates are
O(log n) search plus a list shift, reads of the top levels are slices — fast enough for depth ≤ 1000
without depending on sortedcontainers.

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


class BookSide:
    """One side: `prices` ascending, with `qtys` and (for a book given `level_text`) `texts` in
    parallel lists of the same length.

    The lists are public for venue code that applies its wire levels in one pass of its own
    (`venues.kraken.book`: the checksum digits are worked out while the level is applied, not in a
    call per level); whoever writes them keeps the three aligned and `prices` sorted."""

    __slots__ = ("_level_text", "descending", "prices", "qtys", "texts")

    def __init__(self, descending: bool, level_text: LevelText | None = None) -> None:
        self.descending = descending  # bids: best is the highest price
        # Parallel lists found by bisect. No dict keyed by price: hashing a freshly decoded
        # non-integer Decimal costs ~0.25 µs, more than the bisect and compare.
        self.prices: list[Decimal] = []
        self.qtys: list[Decimal] = []
        self._level_text = level_text
        # level_text(price, qty) aligned with prices, so the top levels' texts are one slice.
        self.texts: list[str] = []

    def clear(self) -> None:
        self.prices.clear()
        self.qtys.clear()
        self.texts.clear()

    def apply(self, levels: Iterable[PriceLevel]) -> None:
        """Set each level to its new absolute quantity, in order (0 deletes).

        One loop per side rather than a call per level: this runs for every level of every update.
        """
        prices = self.prices
        qtys = self.qtys
        texts = self.texts
        level_text = self._level_text
        for level in levels:
            price = level.price
            qty = level.qty
            index = bisect_left(prices, price)
            known = index < len(prices) and prices[index] == price
            if not qty:
                if known:
                    del prices[index]
                    del qtys[index]
                    if level_text is not None:
                        del texts[index]
            elif known:
                # Keep the object just received: its text (digits) is the one the checksum needs.
                prices[index] = price
                qtys[index] = qty
                if level_text is not None:
                    texts[index] = level_text(price, qty)
            else:
                prices.insert(index, price)
                qtys.insert(index, qty)
                if level_text is not None:
                    texts.insert(index, level_text(price, qty))

    def truncate(self, depth: int) -> None:
        excess = len(self.prices) - depth
        if excess <= 0:
            return
        if self.descending:  # worst bids are the lowest prices, at the front
            del self.prices[:excess]
            del self.qtys[:excess]
            del self.texts[:excess]
        else:
            del self.prices[depth:]
            del self.qtys[depth:]
            del self.texts[depth:]

    def levels(self, limit: int | None = None) -> tuple[Level, ...]:
        prices, qtys = self.prices, self.qtys
        if self.descending:
            chosen = slice(None, None, -1) if limit is None else slice(None, -limit - 1, -1)
        else:
            chosen = slice(None) if limit is None else slice(limit)
        return tuple(map(Level, prices[chosen], qtys[chosen]))

    def best(self) -> Level | None:
        if not self.prices:
            return None
        index = -1 if self.descending else 0
        return Level(self.prices[index], self.qtys[index])

    def __len__(self) -> int:
        return len(self.prices)


class OrderBook:
    """Bids and asks at most `depth` levels each; `apply` levels in order, then cut to depth."""

    __slots__ = ("_asks", "_bids", "depth")

    def __init__(self, depth: int, *, level_text: LevelText | None = None) -> None:
        if depth < 1:
            raise ValueError(f"book depth must be positive, got {depth}")
        self.depth = depth
        self._bids = BookSide(descending=True, level_text=level_text)
        self._asks = BookSide(descending=False, level_text=level_text)

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
        depth = self.depth
        bid_side, ask_side = self._bids, self._asks
        bid_side.apply(bids)
        ask_side.apply(asks)
        if len(bid_side.prices) > depth:
            bid_side.truncate(depth)
        if len(ask_side.prices) > depth:
            ask_side.truncate(depth)

    def bids_levels(self, limit: int | None = None) -> tuple[Level, ...]:
        """Bids best (highest) first."""
        return self._bids.levels(limit)

    def asks_levels(self, limit: int | None = None) -> tuple[Level, ...]:
        """Asks best (lowest) first."""
        return self._asks.levels(limit)

    def top_text(self, limit: int) -> tuple[str, str]:
        """(asks, bids): the cached `level_text` of the best `limit` levels of each side, best first,
        joined. Raises ValueError when the book was built without `level_text`."""
        bids = self._bids
        if bids._level_text is None:
            raise ValueError("top_text needs a book built with level_text")
        # Both sides read here, not through a call per side: Kraken checks this on every update.
        return "".join(self._asks.texts[:limit]), "".join(bids.texts[: -limit - 1 : -1])

    def best_bid(self) -> Level | None:
        return self._bids.best()

    def best_ask(self) -> Level | None:
        return self._asks.best()

    def __len__(self) -> int:
        return len(self._bids) + len(self._asks)

    def __repr__(self) -> str:
        return f"OrderBook(depth={self.depth}, bids={len(self._bids)}, asks={len(self._asks)})"
