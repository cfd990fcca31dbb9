"""`KrakenBook`: the core `OrderBook` with each level's checksum digits, applied from wire levels.

Kraken verifies every book message with a CRC32 over the top ten levels' digits (`checksum.py`).
`apply_wire` is the hot path of a market-data connection (issue 8), so one loop per side does
what used to be four passes over the same levels — the number check of the decoder, the book
update, a `level_digits` call per level and the re-wrapping into the event's `Level`s:

* the digits come from `str(Decimal)`, and the same text proves the number sane: when the level's
  digits are ASCII digits only, both numbers are finite, non-negative and in plain notation
  (`str` switches to exponent form below 1E-6), and at most 41 digits mean below 1E+41. Anything
  else (exponent form, a sign, NaN, a huge number) gets the exact check and fixed-point digits.
  The verdict is that of `messages.level_is_sane`, for every input.
* the `Level`s of the update event are built while the level is in hand.

A level is checked just before it is applied, so a refused message leaves the book with part of
it: `KrakenBookError` says so, and the session drops that book and resyncs it.

A book also serves consumers of shallower depths (one book subscription per symbol on the wire, at
the deepest depth wanted): `window(depth)` keeps its best levels before a message, and
`changes_since(window)` gives what a consumer of that depth must apply to get the best levels after
it — the levels that changed, entered (a replacement for a deleted one, as Kraken sends it) or left.
"""

from __future__ import annotations

import zlib
from bisect import bisect_left
from decimal import Decimal
from typing import NamedTuple

from brokerbridge.core.book import BookSide, OrderBook
from brokerbridge.core.errors import ProtocolError
from brokerbridge.core.events import Level
from brokerbridge.venues.kraken.checksum import level_digits
from brokerbridge.venues.kraken.messages import BookLevel, level_is_sane

CHECKSUM_LEVELS = 10  # Kraken's checksum covers the top 10 of each side, whatever the depth
# Digits of a level in plain notation that certainly keep both numbers below 1E+41 (the sane
# bound): a number's integer part never has more digits than its whole digit text.
_PLAIN_DIGITS = 41
_ZERO = Decimal(0)


class BookWindow(NamedTuple):
    """A book's best `depth` levels at one moment: each side's prices ascending with their checksum
    digits (bids: worst first, as `BookSide` keeps them)."""

    depth: int
    bid_prices: list[Decimal]
    bid_texts: list[str]
    ask_prices: list[Decimal]
    ask_texts: list[str]


class KrakenBookError(ProtocolError):
    """A book level that is not a sane positive number: the message is refused, and the book has
    taken part of it (resync it)."""

    default_remedy = "the book is rebuilt from a fresh snapshot; report it if it repeats"


class KrakenBook(OrderBook):
    """An `OrderBook` that keeps Kraken's checksum digits per level (`level_digits`)."""

    __slots__ = ()

    def __init__(self, depth: int) -> None:
        super().__init__(depth, level_text=level_digits)

    def apply_wire(
        self, bids: list[BookLevel], asks: list[BookLevel]
    ) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        """Apply a message's wire levels in order (qty 0 deletes), then cut to depth; the levels as
        events carry them (bids, asks). Raises `KrakenBookError` for a level that is not sane."""
        bid_levels = _apply_side(self._bids, bids) if bids else ()
        ask_levels = _apply_side(self._asks, asks) if asks else ()
        depth = self.depth
        if len(self._bids.prices) > depth:
            self._bids.truncate(depth)
        if len(self._asks.prices) > depth:
            self._asks.truncate(depth)
        return bid_levels, ask_levels

    def touched_by(self, depth: int, bids: list[BookLevel], asks: list[BookLevel]) -> bool:
        """Whether applying these wire levels may change the best `depth` levels: a level worse than
        the worst of a full window cannot (so a shallow consumer of a deep book is mostly left out)."""
        try:
            if bids:
                prices = self._bids.prices
                if len(prices) < depth:
                    return True
                worst = prices[-depth]
                if any(level.price >= worst for level in bids):
                    return True
            if asks:
                prices = self._asks.prices
                if len(prices) < depth:
                    return True
                worst = prices[depth - 1]
                if any(level.price <= worst for level in asks):
                    return True
        except ArithmeticError:  # a NaN price does not order: `apply_wire` refuses it
            return True
        return False

    def window(self, depth: int) -> BookWindow:
        """The best `depth` levels of each side as they are now (for `changes_since`)."""
        bids, asks = self._bids, self._asks
        return BookWindow(
            depth, bids.prices[-depth:], bids.texts[-depth:], asks.prices[:depth], asks.texts[:depth]
        )

    def changes_since(self, before: BookWindow) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        """(bids, asks), best first: what turns the best `before.depth` levels of `before` into the
        best levels now — new or resized levels, and qty 0 for those no longer among them. Applied
        in order and cut to the depth, they give exactly the best levels of this book."""
        depth = before.depth
        bids, asks = self._bids, self._asks
        bid_changes = _window_changes(
            before.bid_prices,
            before.bid_texts,
            bids.prices[-depth:],
            bids.qtys[-depth:],
            bids.texts[-depth:],
        )
        ask_changes = _window_changes(
            before.ask_prices, before.ask_texts, asks.prices[:depth], asks.qtys[:depth], asks.texts[:depth]
        )
        bid_changes.reverse()
        return tuple(bid_changes), tuple(ask_changes)

    def checksum(self) -> int:
        """Kraken's CRC32 of the book: top asks low→high, then top bids high→low."""
        # One crc32 call over the joined text: each call costs ~130 ns before its first byte.
        texts = self._asks.texts[:CHECKSUM_LEVELS] + self._bids.texts[: -CHECKSUM_LEVELS - 1 : -1]
        return zlib.crc32("".join(texts).encode())


def _apply_side(side: BookSide, wire: list[BookLevel]) -> tuple[Level, ...]:
    # The BookSide.apply loop with the digits and the sanity check written in (see the module
    # docstring); core.book's generic loop with level_text=level_digits gives the same book.
    prices, qtys, texts = side.prices, side.qtys, side.texts
    applied = []
    for level in wire:
        price = level.price
        qty = level.qty
        if qty:
            price_digits = str(price).replace(".", "").lstrip("0")
            text = price_digits + str(qty).replace(".", "").lstrip("0")
            if not (price_digits and text.isdigit() and len(text) <= _PLAIN_DIGITS):
                text = _checked_digits(price, qty)
        elif not level_is_sane(price, qty):  # a delete: its price still has to order
            raise _insane(price, qty)
        index = bisect_left(prices, price)
        known = index < len(prices) and prices[index] == price
        if not qty:
            if known:
                del prices[index]
                del qtys[index]
                del texts[index]
        elif known:
            # Keep the object just received: its digits are the ones the checksum needs.
            prices[index] = price
            qtys[index] = qty
            texts[index] = text
        else:
            prices.insert(index, price)
            qtys.insert(index, qty)
            texts.insert(index, text)
        applied.append(Level(price, qty))
    return tuple(applied)


def _window_changes(
    old_prices: list[Decimal],
    old_texts: list[str],
    prices: list[Decimal],
    qtys: list[Decimal],
    texts: list[str],
) -> list[Level]:
    """One side's changes between two windows (prices ascending), ascending: a merge of the two."""
    if old_texts == texts and old_prices == prices:
        return []
    changes: list[Level] = []
    i = j = 0
    old_count, count = len(old_prices), len(prices)
    while i < old_count and j < count:
        old, new = old_prices[i], prices[j]
        if old < new:
            changes.append(Level(old, _ZERO))  # left the window
            i += 1
        elif new < old:
            changes.append(Level(new, qtys[j]))  # entered it
            j += 1
        else:
            if old_texts[i] != texts[j]:  # same price: the digits say whether its qty changed
                changes.append(Level(new, qtys[j]))
            i += 1
            j += 1
    changes.extend(Level(price, _ZERO) for price in old_prices[i:])
    changes.extend(map(Level, prices[j:], qtys[j:]))
    return changes


def _checked_digits(price: Decimal, qty: Decimal) -> str:
    """The slow route: exponent form, or a number that is not sane (refused)."""
    if not level_is_sane(price, qty):
        raise _insane(price, qty)
    return level_digits(price, qty)


def _insane(price: Decimal, qty: Decimal) -> KrakenBookError:
    # str() of a Decimal is short unless it has many digits (then exponent form would not apply).
    return KrakenBookError(
        f"kraken ws: book level price {str(price)[:40]}, qty {str(qty)[:40]} is not a sane positive number"
    )
