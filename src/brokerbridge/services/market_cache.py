"""`MarketCache`: the last values of the market streams the Bridge has open, for answers from memory.

Fed every market event the Bridge passes to its consumers (`record`), it keeps per venue and symbol
the last ticker and session stats, a bounded ring of recent trades (each trade id once, so the
snapshot a venue replays after a reconnect does not double them) and the recent candles of each
interval (the candle of an interval still open is replaced by its newer versions); per venue the
instruments its instruments stream listed (the venue sends them once, at subscribe: a consumer
joining the open stream later is given these).

What it holds describes an open upstream stream: when the Bridge closes one, it `forget`s what that
stream fed, so a later answer never passes off old data as current. Books are not kept here: the
venue session's checksum-verified book is the one truth (`Connector.book_snapshot`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from brokerbridge.core.events import (
    AnyEvent,
    Candle,
    Channel,
    Instrument,
    SessionStats,
    Subscription,
    Ticker,
    Trade,
)

TRADES_KEPT = 1000  # per symbol
CANDLES_KEPT = 720  # per symbol and interval: 12 hours of 1-minute candles


@dataclass(slots=True)
class _TradeRing:
    trades: deque[Trade]
    ids: set[str]

    def add(self, trade: Trade) -> None:
        if trade.trade_id in self.ids:
            return
        if len(self.trades) == self.trades.maxlen:
            self.ids.discard(self.trades[0].trade_id)
        self.trades.append(trade)
        self.ids.add(trade.trade_id)


class MarketCache:
    def __init__(self, *, trades_kept: int = TRADES_KEPT, candles_kept: int = CANDLES_KEPT) -> None:
        self._trades_kept = trades_kept
        self._candles_kept = candles_kept
        self._tickers: dict[tuple[str, str], Ticker] = {}
        self._stats: dict[tuple[str, str], SessionStats] = {}
        self._trades: dict[tuple[str, str], _TradeRing] = {}
        # (venue, symbol, interval) → candle begin → the newest version of that candle
        self._candles: dict[tuple[str, str, int], dict[float, Candle]] = {}
        self._instruments: dict[str, dict[str, Instrument]] = {}  # venue → symbol → the newest

    def record(self, event: AnyEvent) -> None:
        match event:
            case Ticker(venue=venue, symbol=symbol):
                self._tickers[venue, symbol] = event
            case SessionStats(venue=venue, symbol=symbol):
                self._stats[venue, symbol] = event
            case Trade(venue=venue, symbol=symbol):
                ring = self._trades.get((venue, symbol))
                if ring is None:
                    ring = self._trades[venue, symbol] = _TradeRing(deque(maxlen=self._trades_kept), set())
                ring.add(event)
            case Instrument(venue=venue, symbol=symbol):
                self._instruments.setdefault(venue, {})[symbol] = event
            case Candle(venue=venue, symbol=symbol, interval=interval):
                candles = self._candles.setdefault((venue, symbol, interval), {})
                candles[event.begin] = event
                if len(candles) > self._candles_kept:
                    del candles[min(candles)]

    def forget(self, sub: Subscription) -> None:
        """The upstream stream `sub` was closed: drop what it fed."""
        key = (sub.venue, sub.symbol or "")
        match sub.channel:
            case Channel.TICKER:
                self._tickers.pop(key, None)
            case Channel.STATS:
                self._stats.pop(key, None)
            case Channel.TRADES:
                self._trades.pop(key, None)
            case Channel.CANDLES:
                self._candles.pop((*key, sub.interval), None)
            case Channel.INSTRUMENTS:
                self._instruments.pop(sub.venue, None)

    # -- reading -----------------------------------------------------------------------------
    def ticker(self, venue: str, symbol: str) -> Ticker | None:
        return self._tickers.get((venue, symbol))

    def stats(self, venue: str, symbol: str) -> SessionStats | None:
        return self._stats.get((venue, symbol))

    def instruments(self, venue: str) -> list[Instrument]:
        """The instruments the venue's open instruments stream listed, in the order it listed them."""
        return list(self._instruments.get(venue, {}).values())

    def trades(self, venue: str, symbol: str, limit: int) -> list[Trade]:
        """The newest `limit` trades, oldest first."""
        ring = self._trades.get((venue, symbol))
        if ring is None or limit <= 0:
            return []
        return list(ring.trades)[-limit:]

    def candles(self, venue: str, symbol: str, interval: int, limit: int) -> list[Candle]:
        """The newest `limit` candles, oldest first."""
        candles = self._candles.get((venue, symbol, interval))
        if not candles or limit <= 0:
            return []
        return [candles[begin] for begin in sorted(candles)[-limit:]]

    def holds(self, sub: Subscription) -> bool:
        """Whether there is something to answer for `sub` (tickers, stats, trades, candles)."""
        key = (sub.venue, sub.symbol or "")
        match sub.channel:
            case Channel.TICKER:
                return key in self._tickers
            case Channel.STATS:
                return key in self._stats
            case Channel.TRADES:
                return key in self._trades
            case Channel.CANDLES:
                return bool(self._candles.get((*key, sub.interval)))
        return False
