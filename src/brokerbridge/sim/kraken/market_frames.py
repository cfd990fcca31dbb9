"""The public channels' data as Kraken WebSocket v2 frames: book, ticker, trade, ohlc, instrument.

Frames are dicts in Kraken's key order with numbers as raw literals at pair precision
(numbers.num). A book subscription keeps its own window of the levels its client holds, so an
update sends what changed inside the subscribed depth only, with the checksum of the top ten.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from brokerbridge.sim.kraken.catalog import Catalog, KrakenPair
from brokerbridge.sim.kraken.exchange import KrakenExchange
from brokerbridge.sim.kraken.numbers import fixed, num, rfc3339, rfc3339_ns
from brokerbridge.sim.market import BookSide, Candle, Market, PublicTrade
from brokerbridge.venues.kraken.checksum import book_checksum

BestBidOffer = tuple[Decimal, Decimal, Decimal, Decimal]  # bid, bid qty, ask, ask qty


@dataclass(slots=True)
class BookSub:
    pair: KrakenPair
    depth: int
    window: dict[BookSide, dict[Decimal, Decimal]] = field(
        default_factory=lambda: {BookSide.BID: {}, BookSide.ASK: {}}
    )


def book_snapshot(exchange: KrakenExchange, sub: BookSub, *, send: bool) -> dict[str, Any] | None:
    """Fill `sub`'s window from the book; the snapshot frame if `send` (a subscribe may skip it)."""
    book = exchange.market.book(sub.pair.symbol)
    for side in (BookSide.BID, BookSide.ASK):
        sub.window[side] = dict(book.levels(side, sub.depth))
    if not send:
        return None
    pd, ld = sub.pair.pair_decimals, sub.pair.lot_decimals
    data = {
        "symbol": sub.pair.symbol,
        "bids": [{"price": num(p, pd), "qty": num(q, ld)} for p, q in book.levels(BookSide.BID, sub.depth)],
        "asks": [{"price": num(p, pd), "qty": num(q, ld)} for p, q in book.levels(BookSide.ASK, sub.depth)],
        "checksum": checksum(exchange, sub.pair),
        "timestamp": rfc3339(exchange.clock.time()),
    }
    return {"channel": "book", "type": "snapshot", "data": [data]}


def book_update(
    exchange: KrakenExchange, sub: BookSub, bid_prices: set[Decimal], ask_prices: set[Decimal]
) -> dict[str, Any] | None:
    """What changed inside `sub`'s depth window (see module notes in market), or None if nothing."""
    book = exchange.market.book(sub.pair.symbol)
    pd, ld = sub.pair.pair_decimals, sub.pair.lot_decimals
    sides: dict[BookSide, list[dict[str, Any]]] = {}
    for side, changed in ((BookSide.BID, bid_prices), (BookSide.ASK, ask_prices)):
        window = sub.window[side]
        top = book.prices(side, sub.depth)
        top_set = set(top)
        out: list[dict[str, Any]] = []
        # Deletions first: a level removed from the book inside the window goes out as qty 0.
        # A level merely pushed below the window is not sent; the client truncates to depth.
        for price in [p for p in window if p not in top_set]:
            del window[price]
            if book.qty(side, price) is None:
                out.append({"price": num(price, pd), "qty": num(0, ld)})
        # Then new or resized levels inside the window, including replacements for removed ones.
        for price in top:
            if price in changed or price not in window:
                qty = book.qty(side, price)
                assert qty is not None
                if window.get(price) != qty:
                    window[price] = qty
                    out.append({"price": num(price, pd), "qty": num(qty, ld)})
        sides[side] = out
    if not sides[BookSide.BID] and not sides[BookSide.ASK]:
        return None
    data = {
        "symbol": sub.pair.symbol,
        "bids": sides[BookSide.BID],
        "asks": sides[BookSide.ASK],
        "checksum": checksum(exchange, sub.pair),
        "timestamp": rfc3339(exchange.clock.time()),
    }
    return {"channel": "book", "type": "update", "data": [data]}


def checksum(exchange: KrakenExchange, pair: KrakenPair) -> int:
    """Kraken's CRC32 over the top ten levels; wrong on purpose while `corrupt_checksums` counts."""
    book = exchange.market.book(pair.symbol)
    pd, ld = pair.pair_decimals, pair.lot_decimals
    asks = [(fixed(p, pd), fixed(q, ld)) for p, q in book.levels(BookSide.ASK, 10)]
    bids = [(fixed(p, pd), fixed(q, ld)) for p, q in book.levels(BookSide.BID, 10)]
    value = book_checksum(asks, bids)
    if exchange.faults.take("corrupt_checksums"):
        value = (value + 1) & 0xFFFFFFFF
    return value


def best_bid_offer(market: Market, symbol: str) -> BestBidOffer:
    book = market.book(symbol)
    (bid, bid_qty), (ask, ask_qty) = book.levels(BookSide.BID, 1)[0], book.levels(BookSide.ASK, 1)[0]
    return bid, bid_qty, ask, ask_qty


def ticker_frame(exchange: KrakenExchange, pair: KrakenPair, kind: str) -> dict[str, Any]:
    market = exchange.market
    now = exchange.clock.time()
    bid, bid_qty, ask, ask_qty = best_bid_offer(market, pair.symbol)
    stats = market.stats(pair.symbol, now - 86_400)
    last = market.trades(pair.symbol)[-1].price
    pd, ld = pair.pair_decimals, pair.lot_decimals
    change = last - stats.open
    change_pct = change / stats.open * 100 if stats.open else Decimal(0)
    entry = {
        "symbol": pair.symbol,
        "bid": num(bid, pd),
        "bid_qty": num(bid_qty, ld),
        "ask": num(ask, pd),
        "ask_qty": num(ask_qty, ld),
        "last": num(last, pd),
        "volume": num(stats.volume, ld),
        "vwap": num(stats.vwap, pd),
        "low": num(stats.low, pd),
        "high": num(stats.high, pd),
        "change": num(change, pd),
        "change_pct": num(change_pct, 2),
        "trades": stats.count,
        "timestamp": rfc3339(now),
    }
    return {"channel": "ticker", "type": kind, "data": [entry]}


def trade_frame(pair: KrakenPair, kind: str, trades: list[PublicTrade]) -> dict[str, Any]:
    data = [
        {
            "symbol": pair.symbol,
            "side": trade.side.value,
            "price": num(trade.price, pair.pair_decimals),
            "qty": num(trade.qty, pair.lot_decimals),
            "ord_type": trade.ord_type,
            "trade_id": trade.trade_id,
            "timestamp": rfc3339(trade.time_ns / 1e9),
        }
        for trade in trades
    ]
    return {"channel": "trade", "type": kind, "data": data}


def ohlc_frame(
    kind: str, pair: KrakenPair, interval: int, candles: list[Candle], now: float
) -> dict[str, Any]:
    pd = pair.pair_decimals
    step = interval * 60
    data = [
        {
            "symbol": pair.symbol,
            "open": num(c.open, pd),
            "high": num(c.high, pd),
            "low": num(c.low, pd),
            "close": num(c.close, pd),
            "trades": c.count,
            "volume": num(c.volume, pair.lot_decimals),
            "vwap": num(c.vwap, pd),
            "interval_begin": rfc3339_ns(c.begin * 1_000_000_000),
            "interval": interval,
            "timestamp": rfc3339(c.begin + step),
        }
        for c in candles
    ]
    return {"channel": "ohlc", "type": kind, "timestamp": rfc3339(now, 9), "data": data}


def instruments(catalog: Catalog) -> dict[str, Any]:
    """The `instrument` channel's snapshot data: every asset and pair listed."""
    assets = [
        {
            "id": a.ws_id,
            "status": "enabled",
            "precision": a.decimals,
            "precision_display": a.display_decimals,
            "borrowable": a.borrowable,
            "collateral_value": num(1, 2),
            "margin_rate": num(a.margin_rate, 6),
        }
        for a in catalog.assets
    ]
    pairs = []
    for p in catalog.pairs:
        cost_places = max(2, len(p.costmin.split(".")[1]) if "." in p.costmin else 0)
        pairs.append(
            {
                "symbol": p.symbol,
                "base": p.base.ws_id,
                "quote": p.quote.ws_id,
                "status": "online",
                "qty_precision": p.lot_decimals,
                "qty_increment": num(Decimal(1).scaleb(-p.lot_decimals), p.lot_decimals),
                "price_precision": p.pair_decimals,
                "cost_precision": p.cost_precision_ws,
                "marginable": True,
                "has_index": True,
                "cost_min": num(p.costmin, cost_places),
                "margin_initial": num(p.margin_initial, 2),
                "position_limit_long": p.long_position_limit,
                "position_limit_short": p.short_position_limit,
                "tick_size": num(p.tick_size, p.pair_decimals),
                "price_increment": num(p.tick_size, p.pair_decimals),
                "qty_min": num(p.ordermin, p.lot_decimals),
            }
        )
    return {"assets": assets, "pairs": pairs}
