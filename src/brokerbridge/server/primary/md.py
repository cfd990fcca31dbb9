"""`Md` frames of the `/primary/` WebSocket, made from the Bridge's normalized events.

One `MdView` per distinct (product, entries, depth) asked for on the server: it listens to the
Bridge streams its entries come from, keeps their newest values and, when the `marketData` it
serves changed, has one new frame — encoded once, when the first reader is written — that every
reader of the view gets. A `Md` is a snapshot of all the requested entries (Primary's own
semantics), so a reader that falls behind loses nothing by reading only the newest one: a view
holds no log, and a slow client costs nothing per update.

Where each entry comes from (the Bridge's Primary session asks upstream for what its streams need,
one `smd` per product for all the bridge's consumers — services/fanout.py counts them):

| entries | Bridge stream | shape sent |
|---|---|---|
| BI, OF | `book` at the requested depth | `[{"price", "size"}, …]` (at most `depth`), `[]` when empty |
| LA | `ticker` and `trades` (their events say when it changed) | `{"price", "size", "date"}` |
| OP, HI, LO, TV, IV, EV, NV | `stats` | a bare number |
| CL, SE | `stats` | `{"price"}` (the captured BYMA form: the bridge keeps no size or date for them) |
| OI | `stats` | `{"price": null, "size", "date": null}` |
| TC | `stats` | a bare integer |
| ACP | none (the Bridge does not carry it) | `null` |

`null` where there is nothing (yet), as Primary sends. `LA` is the product's last `LA` as Primary
sent it to the bridge (`PrimaryConnector.last_trade`: what `/primary/` REST answers too), read when
a ticker or trade event says it may have changed. A view's first frame waits until each of its book, ticker
and stats streams gave its first value, so a client's first `Md` is never a half-empty one.
Statuses and gaps of the streams are not Primary's to send: a drop upstream shows as a pause, then
frames with fresh values.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import Any, Protocol

import msgspec

from brokerbridge.bridge import Bridge, Listening
from brokerbridge.core.errors import BrokerBridgeError
from brokerbridge.core.events import (
    AnyEvent,
    BookSnapshot,
    Channel,
    Level,
    SessionStats,
    Ticker,
    Trade,
)
from brokerbridge.server.coalesce import Coalescer, Flushable
from brokerbridge.venues.primary import DEFAULT_MARKET, VENUE
from brokerbridge.venues.primary.messages import EntryValue
from brokerbridge.venues.primary.wire_format import num as primary_number

LastTrade = Callable[[str], EntryValue | None]  # a product's last `LA` as Primary sent it

BOOK_ENTRIES = frozenset({"BI", "OF"})
STATS_ENTRIES = frozenset({"OP", "CL", "SE", "HI", "LO", "TV", "OI", "IV", "EV", "NV", "TC"})
# What each entry is read from; ACP from nothing (always null).
_CHANNELS_OF: dict[str, tuple[Channel, ...]] = {
    **{entry: (Channel.BOOK,) for entry in BOOK_ENTRIES},
    "LA": (Channel.TICKER, Channel.TRADES),
    **{entry: (Channel.STATS,) for entry in STATS_ENTRIES},
    "ACP": (),
}
_FIRST_VALUE = (Channel.BOOK, Channel.TICKER, Channel.STATS)  # streams a first frame waits for

_encoder = msgspec.json.Encoder(decimal_format="number")

MdKey = tuple[str, tuple[str, ...], int]  # (symbol, entries in request order, depth)


def num(value: Decimal | None) -> int | Decimal | None:
    """A price or size as Primary prints it (`76830`, `108.25`); None stays None (`null`)."""
    return None if value is None else primary_number(value)


class MdReader(Flushable, Protocol):
    """A connection reading views (server/primary/ws.py's `PrimaryConnection`): `md_changed` holds
    the views with a frame it has not written (a view adds itself there, and asks the Coalescer for
    a flush), so a flush looks at what changed, not at every product the client reads."""

    md_changed: dict[MdView, None]

    def md_refused(self, view: MdView, error: BrokerBridgeError) -> None: ...


def _levels(levels: tuple[Level, ...], depth: int) -> list[dict[str, Any]]:
    return [{"price": num(level.price), "size": num(level.qty)} for level in levels[:depth]]


class MdView:
    """One (product, entries, depth): the newest values of its streams and its current frame."""

    def __init__(
        self,
        bridge: Bridge,
        coalescer: Coalescer,
        key: MdKey,
        on_empty: Callable[[MdView], None],
        last_trade: LastTrade,
    ) -> None:
        self.key = key
        self._last_trade = last_trade
        self.symbol, self.entries, self.depth = key
        self._bridge = bridge
        self._coalescer = coalescer
        self._on_empty = on_empty
        self.readers: dict[MdReader, None] = {}
        self.version = 0  # frames made so far (0: none yet)
        self.refused: BrokerBridgeError | None = None
        self._data: dict[str, Any] | None = None
        self._ts = 0.0
        self._frame: bytes | None = None  # encoded when first read after a change
        self._book: BookSnapshot | None = None
        self._stats: SessionStats | None = None
        channels = {channel for entry in self.entries for channel in _CHANNELS_OF[entry]}
        self._waiting = {channel for channel in channels if channel in _FIRST_VALUE}
        self._listening: list[Listening] = []
        try:
            for channel in sorted(channels):
                sub = bridge.subscription(VENUE, channel, self.symbol, depth=self.depth)
                self._listening.append(bridge.listen(sub, partial(self._on_event, channel), self._on_refused))
        except BaseException:  # a stream refused outright: let go of those already opened
            self.close()
            raise

    # -- readers -------------------------------------------------------------------------------
    def join(self, reader: MdReader) -> None:
        self.readers[reader] = None
        if self.version:
            reader.md_changed[self] = None
            self._coalescer.mark(reader)

    def leave(self, reader: MdReader) -> None:
        self.readers.pop(reader, None)
        if not self.readers:
            self.close()
            self._on_empty(self)

    def close(self) -> None:
        listening, self._listening = self._listening, []
        for handle in listening:
            handle.close()

    def frame(self) -> bytes:
        """The current `Md` (call when `version` > 0)."""
        if self._frame is None:
            self._frame = _encoder.encode(
                {
                    "type": "Md",
                    "timestamp": int(self._ts * 1000),
                    "instrumentId": {"marketId": DEFAULT_MARKET, "symbol": self.symbol},
                    "marketData": self._data,
                }
            )
        return self._frame

    # -- the Bridge's calls --------------------------------------------------------------------
    def _on_event(self, channel: Channel, event: AnyEvent) -> None:
        match event:
            case BookSnapshot():
                self._book = event
            case Ticker() | Trade():
                pass  # `LA` may have changed: read at `_market_data`
            case SessionStats():
                self._stats = event
            case _:  # statuses and gaps: Primary's clients see a pause, nothing else
                return
        self._waiting.discard(channel)
        if self._waiting:
            return
        data = self._market_data()
        if data == self._data:
            return
        self._data, self._ts, self._frame = data, event.ts, None
        self.version += 1
        readers = self.readers
        for reader in readers:
            reader.md_changed[self] = None
        self._coalescer.mark_all(readers)

    def _on_refused(self, error: BrokerBridgeError) -> None:
        self.refused = error
        for reader in list(self.readers):
            reader.md_refused(self, error)

    # -- marketData ----------------------------------------------------------------------------
    def _market_data(self) -> dict[str, Any]:
        """The `marketData` object: exactly the requested entries, in request order."""
        out: dict[str, Any] = {}
        book, stats = self._book, self._stats
        for entry in self.entries:
            value: Any = None
            if entry == "BI":
                value = _levels(book.bids, self.depth) if book is not None else []
            elif entry == "OF":
                value = _levels(book.asks, self.depth) if book is not None else []
            elif entry == "LA":
                value = self._last()
            elif stats is not None:
                value = _stat(entry, stats)
            out[entry] = value
        return out

    def _last(self) -> dict[str, Any] | None:
        last = self._last_trade(self.symbol)
        if last is None or last.price is None:
            return None
        date = None if last.date is None else int(last.date)
        return {"price": num(last.price), "size": num(last.size), "date": date}


# The entries that are one figure of the session's stats, by the `SessionStats` field they are.
_FIGURES = {
    "OP": "open",
    "HI": "high",
    "LO": "low",
    "TV": "volume",
    "IV": "index_value",
    "EV": "effective_volume",
    "NV": "nominal_volume",
}


def _stat(entry: str, stats: SessionStats) -> Any:
    field = _FIGURES.get(entry)
    if field is not None:
        return num(getattr(stats, field))
    if entry == "TC":
        return stats.trade_count
    if entry in ("CL", "SE"):
        price = stats.close if entry == "CL" else stats.settlement
        return None if price is None else {"price": num(price)}
    if entry == "OI" and stats.open_interest is not None:
        return {"price": None, "size": num(stats.open_interest), "date": None}
    return None


class MdViews:
    """The open views of the server, one per (product, entries, depth) with a reader."""

    def __init__(self, bridge: Bridge, coalescer: Coalescer, last_trade: LastTrade) -> None:
        self._bridge = bridge
        self._coalescer = coalescer
        self._last_trade = last_trade
        self._views: dict[MdKey, MdView] = {}

    def join(self, reader: MdReader, key: MdKey) -> MdView:
        """The view of `key`, with `reader` reading it (opened if need be; `BrokerBridgeError` if
        the Bridge refuses one of its streams outright)."""
        view = self._views.get(key)
        if view is None:
            view = MdView(self._bridge, self._coalescer, key, self._closed, self._last_trade)
            self._views[key] = view
        view.join(reader)
        return view

    def _closed(self, view: MdView) -> None:
        if self._views.get(view.key) is view:
            del self._views[view.key]

    def __len__(self) -> int:
        return len(self._views)
