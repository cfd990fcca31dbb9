"""One connection's public channel subscriptions (book, ticker, trade, ohlc, instrument) and the
frames each gets as the market moves.

A request reaches `request` (or `instrument_request`) once ws_protocol has checked the channel, its
fields and `snapshot`; what is left to check is the channel's own arguments. Each symbol of a
request is answered on its own: an unknown one gets `Currency pair not supported <symbol>` with a
top-level `symbol`, and the others are still subscribed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from brokerbridge.sim.kraken.catalog import KrakenPair
from brokerbridge.sim.kraken.exchange import KrakenExchange
from brokerbridge.sim.kraken.market_frames import (
    BestBidOffer,
    BookSub,
    best_bid_offer,
    book_snapshot,
    book_update,
    instruments,
    ohlc_frame,
    ticker_frame,
    trade_frame,
)
from brokerbridge.sim.kraken.ws_wire import BOOK_DEPTHS, Frame, Reject, Replies
from brokerbridge.sim.market import CANDLE_INTERVALS, BookSide, PublicTrade, StepResult


class MarketChannels:
    def __init__(self, exchange: KrakenExchange, send: Callable[[Frame], None], replies: Replies) -> None:
        self.exchange = exchange
        self.send = send
        self.replies = replies
        self.books: dict[tuple[str, int], BookSub] = {}
        self.tickers: dict[str, str] = {}  # symbol → event_trigger
        self._bbo: dict[str, BestBidOffer] = {}
        self.trades: set[str] = set()
        self.ohlc: set[tuple[str, int]] = set()
        self.instrument = False

    @property
    def active(self) -> bool:
        return bool(self.books or self.tickers or self.trades or self.ohlc or self.instrument)

    # -- requests ---------------------------------------------------------------------------------------
    def request(
        self, method: str, channel: str, params: dict[str, Any], snapshot: bool, req_id: Any, time_in: float
    ) -> None:
        """(Un)subscribe `channel` (book, ticker, trade or ohlc) for each of `params["symbol"]`."""
        symbols = params.get("symbol")
        if not isinstance(symbols, list) or not symbols or not all(isinstance(s, str) for s in symbols):
            raise Reject("EGeneral:Invalid arguments:symbol")
        depth = params.get("depth", 10)
        if channel == "book" and depth not in BOOK_DEPTHS:
            raise Reject("EGeneral:Invalid arguments:depth")
        interval = params.get("interval", 1)
        if channel == "ohlc" and interval not in CANDLE_INTERVALS:
            raise Reject("EGeneral:Invalid arguments:interval")
        trigger = params.get("event_trigger", "trades")
        if channel == "ticker" and trigger not in ("trades", "bbo"):
            raise Reject("EGeneral:Invalid arguments:event_trigger")
        for symbol in symbols:
            pair = self.exchange.catalog.ws_pair(symbol)
            if pair is None:
                self.replies.error(
                    f"Currency pair not supported {symbol}", method, req_id, time_in, symbol=symbol
                )
                continue
            try:
                if method == "subscribe":
                    self._subscribe(channel, pair, depth, interval, trigger, snapshot, req_id, time_in)
                else:
                    self._unsubscribe(channel, pair, depth, interval, req_id, time_in)
            except Reject as reject:
                # Captured quirk: "Subscription Not Found" comes back with method "subscribe".
                ack_method = "subscribe" if reject.error == "Subscription Not Found" else method
                self.replies.error(reject.error, ack_method, req_id, time_in, symbol=symbol)

    def _subscribe(
        self,
        channel: str,
        pair: KrakenPair,
        depth: int,
        interval: int,
        trigger: str,
        snapshot: bool,
        req_id: Any,
        time_in: float,
    ) -> None:
        symbol = pair.symbol
        market = self.exchange.market
        result: dict[str, Any] = {"channel": channel}
        if channel == "book":
            if (symbol, depth) in self.books:
                raise Reject("Already subscribed")
            sub = BookSub(pair, depth)
            self.books[(symbol, depth)] = sub
            result.update(depth=depth, snapshot=snapshot, symbol=symbol)
            self.replies.ack("subscribe", req_id, result, time_in)
            frame = book_snapshot(self.exchange, sub, send=snapshot)
            if frame is not None:
                self.send(frame)
        elif channel == "ticker":
            if symbol in self.tickers:
                raise Reject("Already subscribed")
            self.tickers[symbol] = trigger
            result.update(event_trigger=trigger, snapshot=snapshot, symbol=symbol)
            self.replies.ack("subscribe", req_id, result, time_in)
            self._bbo[symbol] = best_bid_offer(market, symbol)
            if snapshot:
                self.send(ticker_frame(self.exchange, pair, "snapshot"))
        elif channel == "trade":
            if symbol in self.trades:
                raise Reject("Already subscribed")
            self.trades.add(symbol)
            result.update(snapshot=snapshot, symbol=symbol)
            self.replies.ack("subscribe", req_id, result, time_in)
            if snapshot:
                self.send(trade_frame(pair, "snapshot", list(market.trades(symbol))[-50:]))
        elif channel == "ohlc":
            if (symbol, interval) in self.ohlc:
                raise Reject("Already subscribed")
            self.ohlc.add((symbol, interval))
            result.update(
                interval=interval,
                snapshot=snapshot,
                symbol=symbol,
                warnings=["timestamp is deprecated, use interval_begin"],
            )
            self.replies.ack("subscribe", req_id, result, time_in)
            if snapshot:
                candles = market.filled_candles(symbol, interval)[-100:]
                self.send(ohlc_frame("snapshot", pair, interval, candles, self.exchange.clock.time()))

    def _unsubscribe(
        self, channel: str, pair: KrakenPair, depth: int, interval: int, req_id: Any, time_in: float
    ) -> None:
        symbol = pair.symbol
        result: dict[str, Any] = {"channel": channel}
        if channel == "book":
            if self.books.pop((symbol, depth), None) is None:
                raise Reject("Subscription Not Found")
            result.update(depth=depth, symbol=symbol)
        elif channel == "ticker":
            trigger = self.tickers.pop(symbol, None)
            if trigger is None:
                raise Reject("Subscription Not Found")
            result.update(event_trigger=trigger, symbol=symbol)
        elif channel == "trade":
            if symbol not in self.trades:
                raise Reject("Subscription Not Found")
            self.trades.discard(symbol)
            result.update(symbol=symbol)
        elif channel == "ohlc":
            if (symbol, interval) not in self.ohlc:
                raise Reject("Subscription Not Found")
            self.ohlc.discard((symbol, interval))
            result.update(interval=interval, symbol=symbol)
        self.replies.ack("unsubscribe", req_id, result, time_in)

    def instrument_request(self, method: str, snapshot: bool, req_id: Any, time_in: float) -> None:
        if method == "unsubscribe":
            if not self.instrument:
                raise Reject("Subscription Not Found")
            self.instrument = False
            self.replies.ack(method, req_id, {"channel": "instrument"}, time_in)
            return
        if self.instrument:
            raise Reject("Already subscribed")
        self.instrument = True
        result = {
            "channel": "instrument",
            "snapshot": snapshot,
            "warnings": ["tick_size is deprecated, use price_increment"],
        }
        self.replies.ack(method, req_id, result, time_in)
        if snapshot:
            self.send(
                {"channel": "instrument", "type": "snapshot", "data": instruments(self.exchange.catalog)}
            )

    # -- the market moved -------------------------------------------------------------------------------
    def on_market(self, result: StepResult) -> None:
        by_symbol: dict[str, list[PublicTrade]] = {}
        for trade in result.trades:
            by_symbol.setdefault(trade.symbol, []).append(trade)
        for sub in self.books.values():
            changes = result.book_changes.get(sub.pair.symbol)
            if changes:
                frame = book_update(
                    self.exchange,
                    sub,
                    {c.price for c in changes if c.side is BookSide.BID},
                    {c.price for c in changes if c.side is BookSide.ASK},
                )
                if frame is not None:
                    self.send(frame)
        catalog = self.exchange.catalog
        for symbol, trigger in self.tickers.items():
            pair = catalog.ws_pair(symbol)
            assert pair is not None
            if trigger == "trades":
                if symbol in by_symbol:
                    self.send(ticker_frame(self.exchange, pair, "update"))
            else:
                bbo = best_bid_offer(self.exchange.market, symbol)
                if bbo != self._bbo.get(symbol):
                    self._bbo[symbol] = bbo
                    self.send(ticker_frame(self.exchange, pair, "update"))
        for symbol in self.trades:
            if symbol in by_symbol:
                pair = catalog.ws_pair(symbol)
                assert pair is not None
                self.send(trade_frame(pair, "update", by_symbol[symbol]))
        for symbol, interval in self.ohlc:
            if symbol in by_symbol:
                pair = catalog.ws_pair(symbol)
                candle = self.exchange.market.current_candle(symbol, interval)
                assert pair is not None and candle is not None
                self.send(ohlc_frame("update", pair, interval, [candle], self.exchange.clock.time()))
