"""Kraken wire types → normalized `core.events`, for WebSocket frames and REST polling alike.

REST polling must yield the same events as the WebSocket (house rule 7), so both paths end here.
REST speaks pair ids (`XXBTZUSD`, altname `XBTUSD`) and legacy asset ids (`XXBT`, `ZUSD`); WS v2
speaks `BTC/USD`. `SymbolMap` (built from AssetPairs) and `normalize_asset` translate.

Timestamps become epoch-second floats; a message without one is stamped with `received`, the wall
time the caller read when the frame arrived.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal

from brokerbridge.core.errors import ProtocolError
from brokerbridge.core.events import (
    AssetBalance,
    BalanceSnapshot,
    BalanceUpdate,
    BookSnapshot,
    Candle,
    Fill,
    Instrument,
    Level,
    OrderUpdate,
    Side,
    Source,
    Ticker,
    Trade,
)
from brokerbridge.venues.kraken import VENUE
from brokerbridge.venues.kraken.messages import (
    BalanceEntry,
    ExecutionReport,
    InstrumentData,
    LedgerEntry,
    OhlcData,
    TickerData,
    TradeData,
)
from brokerbridge.venues.kraken.rest_messages import (
    AssetPair,
    BalanceExEntry,
    DepthBook,
    OhlcResult,
    RestOrder,
    RestTrade,
    TickerInfo,
    TradesResult,
)

# ---------------------------------------------------------------- ids


# Kraken's legacy 4-letter asset ids (X = crypto, Z = fiat) and the v1 names of BTC and DOGE.
# Newer assets (SOL, USDT, ATOM.S) have no prefix, so only ids listed here are rewritten.
_LEGACY_ASSETS: dict[str, str] = {
    "XXBT": "BTC", "XBT": "BTC", "XXDG": "DOGE", "XDG": "DOGE",
    "XETH": "ETH", "XETC": "ETC", "XLTC": "LTC", "XXRP": "XRP", "XXLM": "XLM", "XXMR": "XMR",
    "XZEC": "ZEC", "XREP": "REP", "XMLN": "MLN", "XICN": "ICN", "XNMC": "NMC", "XXVN": "XVN",
    "XDAO": "DAO",
    "ZUSD": "USD", "ZEUR": "EUR", "ZGBP": "GBP", "ZJPY": "JPY", "ZCAD": "CAD", "ZAUD": "AUD",
    "ZCHF": "CHF",
}  # fmt: skip

# Quote currencies tried when a REST pair is not in the AssetPairs data (longest first).
_FALLBACK_QUOTES = (
    "ZUSD", "ZEUR", "ZGBP", "ZJPY", "ZCAD", "ZAUD", "XXBT", "XETH",
    "USDT", "USDC", "PYUSD", "DAI", "USD", "EUR", "GBP", "JPY", "CAD", "AUD", "CHF", "XBT", "BTC", "ETH",
)  # fmt: skip


def normalize_asset(asset: str) -> str:
    """Kraken REST asset id → the v2 code (`XXBT`→`BTC`, `ZUSD`→`USD`, `ATOM.S` unchanged)."""
    base, dot, suffix = asset.partition(".")
    return _LEGACY_ASSETS.get(base, base) + dot + suffix


class SymbolMap:
    """REST pair id / altname ⇄ WS v2 symbol, learned from AssetPairs.

    `wsname` is the v1 name (`XBT/USD`), so its halves go through `normalize_asset`; pairs without a
    `wsname` are named from `base`/`quote`.
    """

    def __init__(self, pairs: Mapping[str, AssetPair] | None = None) -> None:
        self._to_ws: dict[str, str] = {}
        self._to_rest: dict[str, str] = {}
        if pairs:
            self.update(pairs)

    def update(self, pairs: Mapping[str, AssetPair]) -> None:
        for pair_id, info in pairs.items():
            if info.wsname and "/" in info.wsname:
                base, _, quote = info.wsname.partition("/")
            else:
                base, quote = info.base, info.quote
            symbol = f"{normalize_asset(base)}/{normalize_asset(quote)}"
            self._to_ws[pair_id] = symbol
            self._to_ws[info.altname] = symbol
            self._to_rest.setdefault(symbol, pair_id)

    def to_ws(self, pair: str) -> str:
        """WS symbol for a REST pair id or altname; a heuristic split when AssetPairs lacks it."""
        known = self._to_ws.get(pair)
        if known is not None:
            return known
        if "/" in pair:
            base, _, quote = pair.partition("/")
            return f"{normalize_asset(base)}/{normalize_asset(quote)}"
        for quote in _FALLBACK_QUOTES:
            if pair.endswith(quote) and len(pair) > len(quote):
                return f"{normalize_asset(pair[: -len(quote)])}/{normalize_asset(quote)}"
        return pair

    def knows(self, symbol: str) -> bool:
        """`symbol` (WS v2 spelling) is a pair AssetPairs listed."""
        return symbol in self._to_rest

    def listed(self) -> frozenset[str]:
        """Every WS v2 symbol AssetPairs listed."""
        return frozenset(self._to_rest)

    def to_rest(self, symbol: str) -> str:
        """REST pair id for a WS symbol (Kraken also accepts `BTC/USD` itself as `pair`)."""
        return self._to_rest.get(symbol, symbol)

    def __len__(self) -> int:
        return len(self._to_rest)


# ---------------------------------------------------------------- helpers


def parse_timestamp(text: str) -> float:
    """RFC3339 (micro- or nanosecond fraction, `Z`) → epoch seconds."""
    try:
        moment = datetime.fromisoformat(text)
    except (ValueError, TypeError):
        raise ProtocolError(f"kraken: bad timestamp {text[:40]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


class TimestampParser:
    """`parse_timestamp` for a stream's timestamps, faster on the shape Kraken sends
    (`2026-07-07T23:00:04.031158Z`): the epoch second of the `YYYY-MM-DDTHH:MM:SS.` prefix is kept
    from the previous call (a book stream has many updates per second), and the microseconds are
    added in integer arithmetic, so the result is the same float `parse_timestamp` gives.

    Call `parse` (a bound method is cheaper to call than an instance's `__call__`)."""

    __slots__ = ("_micros", "_prefix")

    def __init__(self) -> None:
        self._prefix = ""  # "YYYY-MM-DDTHH:MM:SS." of the second in `_micros`
        self._micros = 0  # that second since the epoch, in microseconds

    def parse(self, text: str) -> float:
        # text[26:] == "Z" also says the length is 27. isdigit() alone would pass non-ASCII
        # digits, which int() reads but fromisoformat refuses; int() alone would take "+1234 ".
        if text[:20] == self._prefix and text[26:] == "Z":
            fraction = text[20:26]
            if fraction.isdigit() and fraction.isascii():
                # What datetime.timestamp() computes: integer microseconds / 10**6, rounded once.
                return (self._micros + int(fraction)) / 1_000_000
        return self._parse_new_second(text)

    __call__ = parse

    def _parse_new_second(self, text: str) -> float:
        fraction = text[20:26]
        if text[19:20] == "." and text[26:] == "Z" and fraction.isdigit() and text.isascii():
            micros = int(parse_timestamp(text[:19] + "Z")) * 1_000_000
            self._prefix, self._micros = text[:20], micros
            return (micros + int(fraction)) / 1_000_000
        return parse_timestamp(text)


def _stamp(text: str | None, received: float) -> float:
    return parse_timestamp(text) if text else received


def parse_side(text: str) -> Side:
    if text in ("buy", "b"):
        return Side.BUY
    if text in ("sell", "s"):
        return Side.SELL
    raise ProtocolError(f"kraken: unknown side {text[:20]!r}")


# ---------------------------------------------------------------- WebSocket


def ticker_from_ws(data: TickerData, *, received: float, venue: str = VENUE) -> Ticker:
    return Ticker(
        venue=venue,
        ts=_stamp(data.timestamp, received),
        symbol=data.symbol,
        bid=data.bid,
        bid_qty=data.bid_qty,
        ask=data.ask,
        ask_qty=data.ask_qty,
        last=data.last,
        volume=data.volume,
        vwap=data.vwap,
        low=data.low,
        high=data.high,
        change=data.change,
        change_pct=data.change_pct,
    )


def trade_from_ws(data: TradeData, *, venue: str = VENUE) -> Trade:
    return Trade(
        venue=venue,
        ts=parse_timestamp(data.timestamp),
        symbol=data.symbol,
        side=parse_side(data.side),
        price=data.price,
        qty=data.qty,
        trade_id=str(data.trade_id),
        order_type=data.ord_type,
    )


def candle_from_ws(data: OhlcData, *, venue: str = VENUE) -> Candle:
    return Candle(
        venue=venue,
        ts=parse_timestamp(data.timestamp) if data.timestamp else parse_timestamp(data.interval_begin),
        symbol=data.symbol,
        interval=data.interval,
        begin=parse_timestamp(data.interval_begin),
        open=data.open,
        high=data.high,
        low=data.low,
        close=data.close,
        vwap=data.vwap,
        volume=data.volume,
        trades=data.trades,
    )


def instruments_from_ws(data: InstrumentData, *, received: float, venue: str = VENUE) -> list[Instrument]:
    return [
        Instrument(
            venue=venue,
            ts=received,
            symbol=pair.symbol,
            base=pair.base,
            quote=pair.quote,
            status=pair.status,
            price_precision=pair.price_precision,
            qty_precision=pair.qty_precision,
            price_increment=_first(
                pair.price_increment, pair.tick_size, Decimal(1).scaleb(-pair.price_precision)
            ),
            qty_increment=pair.qty_increment,
            qty_min=pair.qty_min if pair.qty_min is not None else pair.qty_increment,
            cost_min=pair.cost_min,
        )
        for pair in data.pairs
    ]


def _first(*values: Decimal | None) -> Decimal:
    for value in values:
        if value is not None:
            return value
    raise ProtocolError("kraken: missing value")  # pragma: no cover - last value is never None


def balance_snapshot_from_ws(
    rows: Iterable[BalanceEntry], *, received: float, venue: str = VENUE
) -> BalanceSnapshot:
    return BalanceSnapshot(
        venue=venue,
        ts=received,
        balances=tuple(AssetBalance(asset=row.asset, total=row.balance) for row in rows),
    )


def balance_update_from_ws(row: LedgerEntry, *, received: float, venue: str = VENUE) -> BalanceUpdate:
    return BalanceUpdate(
        venue=venue,
        ts=_stamp(row.timestamp, received),
        asset=row.asset,
        amount=row.amount,
        total=row.balance,
        fee=row.fee,
        ledger_id=row.ledger_id,
        ref_id=row.ref_id,
        ledger_type=row.type,
    )


def execution_from_ws(
    report: ExecutionReport, *, snapshot: bool, received: float, venue: str = VENUE
) -> OrderUpdate | Fill:
    """`exec_type == "trade"` → `Fill`; every other report → a sparse `OrderUpdate`."""
    ts = _stamp(report.timestamp, received)
    if report.order_id is None:
        raise ProtocolError(f"kraken: execution report ({report.exec_type}) without order_id")
    if report.exec_type == "trade":
        missing = [
            name
            for name in ("exec_id", "symbol", "side", "last_price", "last_qty")
            if getattr(report, name) is None
        ]
        if missing:
            raise ProtocolError(f"kraken: trade execution {report.order_id} lacks {', '.join(missing)}")
        assert report.side is not None and report.last_price is not None and report.last_qty is not None
        fee = sum((f.qty for f in report.fees or ()), Decimal(0))
        fee_asset = report.fees[0].asset if report.fees else None
        return Fill(
            venue=venue,
            ts=ts,
            order_id=report.order_id,
            exec_id=report.exec_id or "",
            symbol=report.symbol or "",
            side=parse_side(report.side),
            price=report.last_price,
            qty=report.last_qty,
            cost=report.cost if report.cost is not None else report.last_price * report.last_qty,
            fee=fee,
            fee_asset=fee_asset,
            liquidity=report.liquidity_ind,
            trade_id=str(report.trade_id) if report.trade_id is not None else None,
            order_status=report.order_status,
            client_order_id=report.cl_ord_id,
            snapshot=snapshot,
        )
    return OrderUpdate(
        venue=venue,
        ts=ts,
        order_id=report.order_id,
        exec_type=report.exec_type,
        status=report.order_status or report.exec_type,
        symbol=report.symbol,
        side=parse_side(report.side) if report.side else None,
        order_type=report.order_type,
        qty=report.order_qty,
        limit_price=report.limit_price,
        cum_qty=report.cum_qty,
        avg_price=report.avg_price,
        client_order_id=report.cl_ord_id,
        reason=report.reason or report.cancel_reason,
        snapshot=snapshot,
    )


# ---------------------------------------------------------------- REST (polling fallback)


def ticker_from_rest(
    pair: str, info: TickerInfo, *, symbols: SymbolMap, received: float, venue: str = VENUE
) -> Ticker:
    """REST Ticker → `Ticker`. Volume/vwap/low/high are the rolling 24h values, as on WS.

    REST has no 24h change (`o` is today's open since 00:00 UTC), so `change` stays None rather
    than a number with a different meaning.
    """
    return Ticker(
        venue=venue,
        ts=received,
        symbol=symbols.to_ws(pair),
        bid=info.b[0],
        bid_qty=info.b[2],
        ask=info.a[0],
        ask_qty=info.a[2],
        last=info.c[0],
        volume=info.v[1],
        vwap=info.p[1],
        low=info.l[1],
        high=info.h[1],
        source=Source.REST,
    )


def book_from_rest(
    pair: str, book: DepthBook, *, depth: int, symbols: SymbolMap, received: float, venue: str = VENUE
) -> BookSnapshot:
    """REST Depth → `BookSnapshot` cut to `depth` (no checksum: REST has none)."""
    newest = max((row[2] for row in (*book.bids, *book.asks)), default=None)
    return BookSnapshot(
        venue=venue,
        ts=float(newest) if newest is not None else received,
        symbol=symbols.to_ws(pair),
        depth=depth,
        bids=tuple(
            Level(price, qty) for price, qty, _ in sorted(book.bids, key=lambda r: r[0], reverse=True)[:depth]
        ),
        asks=tuple(Level(price, qty) for price, qty, _ in sorted(book.asks, key=lambda r: r[0])[:depth]),
        source=Source.REST,
    )


def candles_from_rest(
    result: OhlcResult, *, interval: int, symbols: SymbolMap, venue: str = VENUE
) -> list[Candle]:
    """REST OHLC rows → `Candle`s (the last row is the still-forming candle, as on WS)."""
    symbol = symbols.to_ws(result.pair)
    return [
        Candle(
            venue=venue,
            ts=float(begin + interval * 60),
            symbol=symbol,
            interval=interval,
            begin=float(begin),
            open=open_,
            high=high,
            low=low,
            close=close,
            vwap=vwap,
            volume=volume,
            trades=count,
            source=Source.REST,
        )
        for begin, open_, high, low, close, vwap, volume, count in result.rows
    ]


def trades_from_rest(result: TradesResult, *, symbols: SymbolMap, venue: str = VENUE) -> list[Trade]:
    symbol = symbols.to_ws(result.pair)
    return [
        Trade(
            venue=venue,
            ts=float(time),
            symbol=symbol,
            side=parse_side(side),
            price=price,
            qty=qty,
            trade_id=str(trade_id),
            order_type={"m": "market", "l": "limit"}.get(kind, kind),
            source=Source.REST,
        )
        for price, qty, time, side, kind, _misc, trade_id in result.rows
    ]


def balances_from_rest(
    entries: Mapping[str, BalanceExEntry], *, received: float, venue: str = VENUE
) -> BalanceSnapshot:
    """REST BalanceEx → `BalanceSnapshot` (total = balance, hold = hold_trade)."""
    return BalanceSnapshot(
        venue=venue,
        ts=received,
        balances=tuple(
            AssetBalance(asset=normalize_asset(asset), total=entry.balance, hold=entry.hold_trade)
            for asset, entry in entries.items()
        ),
        source=Source.REST,
    )


def _rest_status(order: RestOrder) -> str:
    """REST order status in the WS `order_status` vocabulary (REST has no partially_filled)."""
    if order.status == "open":
        return "partially_filled" if order.vol_exec > 0 else "new"
    if order.status == "pending":
        return "pending_new"
    if order.status == "closed":
        return "filled"
    return order.status  # canceled, expired


def orders_from_rest(
    orders: Mapping[str, RestOrder], *, symbols: SymbolMap, venue: str = VENUE
) -> list[OrderUpdate]:
    """REST OpenOrders (or ClosedOrders) → `OrderUpdate(snapshot=True)`, one per order.

    `exec_type` is "status": a reconciliation read, not a transition seen as it happened.
    """
    return [
        OrderUpdate(
            venue=venue,
            ts=order.closetm or order.opentm,
            order_id=order_id,
            exec_type="status",
            status=_rest_status(order),
            symbol=symbols.to_ws(order.descr.pair),
            side=parse_side(order.descr.type),
            order_type=order.descr.ordertype,
            qty=order.vol,
            limit_price=order.descr.price,
            cum_qty=order.vol_exec,
            avg_price=order.price if order.vol_exec > 0 else None,
            client_order_id=order.cl_ord_id,
            reason=order.reason,
            snapshot=True,
        )
        for order_id, order in orders.items()
    ]


def fills_from_rest(trades: Mapping[str, RestTrade], *, symbols: SymbolMap, venue: str = VENUE) -> list[Fill]:
    """REST TradesHistory → `Fill(snapshot=True)`, oldest first; `exec_id` is the trade txid.

    REST does not say the fee currency (quote by default, base with `fcib`), so `fee_asset` is None.
    """
    fills = [
        Fill(
            venue=venue,
            ts=trade.time,
            order_id=trade.ordertxid,
            exec_id=txid,
            symbol=symbols.to_ws(trade.pair),
            side=parse_side(trade.type),
            price=trade.price,
            qty=trade.vol,
            cost=trade.cost,
            fee=trade.fee,
            fee_asset=None,
            liquidity=None if trade.maker is None else ("m" if trade.maker else "t"),
            trade_id=str(trade.trade_id) if trade.trade_id is not None else None,
            snapshot=True,
        )
        for txid, trade in trades.items()
    ]
    fills.sort(key=lambda fill: fill.ts)
    return fills
