"""Primary wire types → normalized `core.events`, for the WebSocket and REST polling alike.

Market data (`Md` and `marketdata/get` carry the same `marketData` object):
* `Ticker`: best bid/offer (`BI[0]`, `OF[0]`) and `LA.price`; None where Primary has nothing
  (an empty side is `[]` or `null`). `volume`/`high`/`low` come from TV/HI/LO when requested.
* `BookSnapshot`: `BI`/`OF` cut to the subscription's depth. Primary sends whole snapshots, no checksum.
* `Trade`: Primary has no trade stream, only the last trade (`LA`). `TradeTracker` emits a Trade
  when `LA`'s (date, price, size) differs from the previous message for that symbol — the first `LA`
  seen is a baseline, not a trade (it may be hours old). Two identical consecutive trades within
  one `LA` update are indistinguishable and yield one Trade. Primary does not say the aggressor
  side; it is inferred (quote rule against the previous bid/offer, then the tick rule).
* `SessionStats`: OP, CL, HI, LO, SE, TV, EV, NV, OI (its `size`), TC, IV.

Orders (`or` reports over WS, and REST order endpoints): `OrderTracker` turns each report into an
`OrderUpdate` and, when `cumQty` grew, a `Fill` for the difference (price `lastPx`, exec_id
`execId`; a replayed report repeats its execId and cumQty, so replays neither add fills nor
change the journal). Order identity: the **client order id of the original request** — what
`newSingleOrder` answers (`clientId`), what every report carries from PENDING_NEW on (Primary's
`orderId` is null until the market accepts), and what cancel/status calls take. Cancel and
replace requests get a new `clOrdId` with `origClOrdId` pointing back; the tracker follows the
chain to the root, and knows the chain's live request (the newest replace), which cancel and
replace must name. A replaced request's `CANCELLED` "Reemplazada" (or `REPLACED`) report is not the
order's end, and a refused follow-up (a cancel of an order no longer active) says nothing about the
order: neither yields an `OrderUpdate`. `client_order_id` is the caller's id where one is known
(the `wsClOrdId` of the order's first report, or what the connector names after a REST submit),
else the request's `clOrdId`. Status: Primary's upper-case status lower-cased (`CANCELLED` →
`canceled`, the core spelling).

Balances (`rest/risk/accountReport`): see `balance_snapshot_from_report`.
Positions: see `positions_from_rest`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from msgspec import UNSET

from brokerbridge.core.errors import ProtocolError
from brokerbridge.core.events import (
    AssetBalance,
    BalanceSnapshot,
    BookSnapshot,
    Fill,
    Level,
    OrderUpdate,
    Position,
    SessionStats,
    Side,
    Source,
    Ticker,
    Trade,
)
from brokerbridge.core.hours import BUENOS_AIRES
from brokerbridge.venues.primary import VENUE
from brokerbridge.venues.primary.messages import (
    SANE_HIGH,
    SANE_LOW,
    EntryValue,
    Levels,
    MarketData,
    MdEntries,
    OrderReport,
    scalar_of,
)
from brokerbridge.venues.primary.rest_messages import AccountData, PositionRow

TICKER_ENTRIES = ("BI", "OF", "LA")
BOOK_ENTRIES = ("BI", "OF")
TRADE_ENTRIES = ("LA",)
STATS_ENTRIES = ("OP", "CL", "HI", "LO", "SE", "TV", "OI", "EV", "NV", "TC", "IV")

ARGENTINA = BUENOS_AIRES  # Primary's transactTime offset when it omits one


# ---------------------------------------------------------------- helpers


def ms_to_seconds(value: float | None, default: float) -> float:
    return value / 1000.0 if value is not None else default


def parse_transact_time(text: str | None) -> float | None:
    """`20220516-11:47:02.226-0300` / `20160304-17:37:35` (Buenos Aires time) → epoch seconds."""
    if not text:
        return None
    for fmt in ("%Y%m%d-%H:%M:%S.%f%z", "%Y%m%d-%H:%M:%S%z", "%Y%m%d-%H:%M:%S.%f", "%Y%m%d-%H:%M:%S"):
        try:
            moment = datetime.strptime(text.strip(), fmt)
        except ValueError:
            continue
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ARGENTINA)
        return moment.timestamp()
    return None


def parse_side(text: str | None) -> Side | None:
    if text is None:
        return None
    upper = text.strip().upper()
    if upper == "BUY":
        return Side.BUY
    if upper == "SELL":
        return Side.SELL
    raise ProtocolError(f"primary: unknown side {text[:20]!r}")


# How far along its life an order is: reports may arrive out of order (a REST read taken before a
# socket report), and an order never goes back to an earlier state.
_STATUS_RANK = {
    "pending_new": 0,
    "new": 1,
    "pending_replace": 1,
    "pending_cancel": 1,
    "partially_filled": 2,
    "filled": 3,
    "canceled": 3,
    "rejected": 3,
    "expired": 3,
    "replaced": 3,
}


def parse_status(text: str | None) -> str:
    if not text:
        return "unknown"
    status = text.strip().lower()
    return "canceled" if status == "cancelled" else status


def checked_levels(rows: Levels) -> tuple[Level, ...] | None:
    """All of `rows` as `Level`s when every row has a price and a size in the range where every
    positive number is sane (`messages.SANE_LOW`/`SANE_HIGH`); else None: then the exact check
    (`check_market_data`) decides and `valid_levels` builds. `()` for an absent or null side.

    The session's number check and level building in one loop; the levels are then
    `valid_levels(rows)`, `[:depth]` a book of that depth, `[0]` the top of book."""
    if not isinstance(rows, list):  # absent or null
        return ()
    low, high = SANE_LOW, SANE_HIGH
    out = []
    try:
        for row in rows:
            price, size = row.price, row.size
            if price is None or size is None or not (low <= price < high and low <= size < high):
                return None
            out.append(Level(price, size))
    except ArithmeticError:  # comparing a NaN
        return None
    return tuple(out)


def valid_levels(rows: Levels) -> tuple[Level, ...]:
    """The rows that have both a price and a size, as `Level`s in the venue's order: `[:depth]` of
    them is the book at that depth (a row without price or size is skipped, the next fills in)."""
    if not isinstance(rows, list):
        return ()
    return tuple(Level(row.price, row.size) for row in rows if row.price is not None and row.size is not None)


_NO_TOP: tuple[None, None] = (None, None)


def top_of(rows: Levels) -> tuple[Decimal | None, Decimal | None]:
    """(price, size) of the first row with a price: the ticker's side of the quote."""
    if isinstance(rows, list):
        for row in rows:
            if row.price is not None:
                return row.price, row.size
    return _NO_TOP


# ---------------------------------------------------------------- market data


Quote = tuple[Decimal | None, Decimal | None, Decimal | None, Decimal | None, Decimal | None]


def ticker_quote(data: MarketData) -> Quote:
    """(bid, bid size, ask, ask size, last): what a `Ticker` of `data` quotes, without building it
    (the session emits a Ticker only when this changed)."""
    last = data.LA
    return (*top_of(data.BI), *top_of(data.OF), last.price if isinstance(last, EntryValue) else None)


def ticker_from_md(
    symbol: str,
    data: MarketData,
    *,
    ts: float,
    venue: str = VENUE,
    source: Source = Source.WS,
    quote: Quote | None = None,
) -> Ticker:
    """The Ticker of `data`; `quote` is `ticker_quote(data)` when the caller has it already."""
    return ticker_of(
        symbol, ticker_quote(data) if quote is None else quote, data, ts=ts, venue=venue, source=source
    )


def ticker_of(
    symbol: str, quote: Quote, data: MdEntries, *, ts: float, venue: str = VENUE, source: Source = Source.WS
) -> Ticker:
    """The Ticker of a message whose `ticker_quote` is `quote` (volume, high, low from `data`)."""
    bid, bid_qty, ask, ask_qty, last = quote
    volume, high, low = data.TV, data.HI, data.LO
    return Ticker(
        venue=venue,
        ts=ts,
        symbol=symbol,
        bid=bid,
        bid_qty=bid_qty,
        ask=ask,
        ask_qty=ask_qty,
        last=last,
        # usually absent (the ticker asks for BI, OF, LA): no call then
        volume=None if volume is UNSET else scalar_of(volume),
        high=None if high is UNSET else scalar_of(high),
        low=None if low is UNSET else scalar_of(low),
        source=source,
    )


def book_from_md(
    symbol: str,
    data: MarketData,
    *,
    depth: int,
    ts: float,
    venue: str = VENUE,
    source: Source = Source.WS,
) -> BookSnapshot:
    return BookSnapshot(
        venue=venue,
        ts=ts,
        symbol=symbol,
        depth=depth,
        bids=valid_levels(data.BI)[: max(depth, 1)],
        asks=valid_levels(data.OF)[: max(depth, 1)],
        source=source,
    )


def stats_from_md(
    symbol: str, data: MdEntries, *, ts: float, venue: str = VENUE, source: Source = Source.WS
) -> SessionStats:
    count = scalar_of(data.TC)
    return SessionStats(
        venue=venue,
        ts=ts,
        symbol=symbol,
        open=scalar_of(data.OP),
        close=scalar_of(data.CL),
        high=scalar_of(data.HI),
        low=scalar_of(data.LO),
        settlement=scalar_of(data.SE),
        volume=scalar_of(data.TV),
        effective_volume=scalar_of(data.EV),
        nominal_volume=scalar_of(data.NV),
        open_interest=scalar_of(data.OI, prefer_size=True),
        trade_count=int(count) if count is not None else None,
        index_value=scalar_of(data.IV),
        source=source,
    )


@dataclass(slots=True)
class _LastSeen:
    trade: tuple[float | None, Decimal | None, Decimal | None] | None = None
    trade_side: Side = Side.BUY
    bid: Decimal | None = None
    ask: Decimal | None = None


class TradeTracker:
    """Trades from successive `LA` values, per symbol (see the module docstring)."""

    def __init__(self, max_symbols: int = 100_000) -> None:
        self._seen: OrderedDict[str, _LastSeen] = OrderedDict()
        self._max = max_symbols

    def observe(
        self,
        symbol: str,
        data: MarketData,
        *,
        ts: float,
        venue: str = VENUE,
        source: Source = Source.WS,
        quote: Quote | None = None,
    ) -> Trade | None:
        """Feed one message's `marketData`; the Trade its `LA` reveals, if any. `quote` is
        `ticker_quote(data)` when the caller has it already."""
        last = data.LA
        if data.BI is not UNSET or data.OF is not UNSET:  # data.has("BI", "OF"), without the call
            if quote is None:
                quote = ticker_quote(data)
        else:
            quote = None
        return self.observe_last(
            symbol, last if isinstance(last, EntryValue) else None, quote, ts, venue, source
        )

    def observe_last(
        self,
        symbol: str,
        last: EntryValue | None,
        quote: Quote | None,
        ts: float,
        venue: str = VENUE,
        source: Source = Source.WS,
    ) -> Trade | None:
        """`observe` for a caller that has taken the message apart already: `last` is its `LA`
        (None when absent or null), `quote` its `ticker_quote` when it has `BI` or `OF`, else None."""
        seen = self._seen.get(symbol)
        if seen is None:
            seen = self._seen[symbol] = _LastSeen()
            if len(self._seen) > self._max:
                self._seen.popitem(last=False)
        trade = None
        if last is not None and last.price is not None:
            date, price, size = last.date, last.price, last.size
            key = (date, price, size)
            if seen.trade is not None and key != seen.trade:
                side = _infer_side(last, seen)
                seen.trade_side = side
                # `!s`: a Decimal's str() and format(…, "") are the same text; str() is 3x faster
                trade = Trade(
                    venue=venue,
                    ts=ts if date is None else date / 1000.0,
                    symbol=symbol,
                    side=side,
                    price=price,
                    qty=size if size is not None else Decimal(0),
                    trade_id=f"{int(date) if date is not None else ''}:{price!s}:{size!s}",
                    source=source,
                )
            seen.trade = key
        if quote is not None:
            seen.bid, seen.ask = quote[0], quote[2]
        return trade

    def forget(self, symbol: str) -> None:
        self._seen.pop(symbol, None)

    def last(self, symbol: str) -> EntryValue | None:
        """The product's `LA` as the venue last sent it (date, price, size), None before one came:
        what the Primary-compatible endpoint answers `marketdata/get`'s `LA` with."""
        seen = self._seen.get(symbol)
        if seen is None or seen.trade is None:
            return None
        date, price, size = seen.trade
        return EntryValue(price=price, size=size, date=date)


def _infer_side(last: EntryValue, seen: _LastSeen) -> Side:
    price = last.price
    assert price is not None
    if seen.ask is not None and price >= seen.ask:
        return Side.BUY
    if seen.bid is not None and price <= seen.bid:
        return Side.SELL
    previous = seen.trade[1] if seen.trade is not None else None
    if previous is not None and price > previous:
        return Side.BUY
    if previous is not None and price < previous:
        return Side.SELL
    return seen.trade_side


# ---------------------------------------------------------------- orders


def _id(value: str | int | None) -> str | None:
    return None if value is None else str(value)


_ACTIVE_STATUSES = frozenset({"pending_new", "new", "partially_filled"})


def _bounded_put(table: OrderedDict[str, Any], key: str, value: Any, limit: int) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > limit:
        table.popitem(last=False)


class OrderTracker:
    """Order reports → `OrderUpdate` (+ `Fill` when `cumQty` grew). Shared by WS and REST polling.

    State (client-id chains, cumulative quantities) is kept per session, not per connection, so a
    snapshot replayed after a reconnect adds nothing. Memory is bounded (oldest orders dropped).
    """

    def __init__(self, max_orders: int = 100_000) -> None:
        self._root: OrderedDict[str, str] = OrderedDict()  # clOrdId → original clOrdId
        self._cum: OrderedDict[str, Decimal] = OrderedDict()  # original clOrdId → cumQty seen
        self._rank: OrderedDict[str, int] = OrderedDict()  # original clOrdId → furthest status seen
        self._avg: dict[str, Decimal] = {}  # original clOrdId → avgPx at the last fill seen
        self._caller: OrderedDict[str, str] = OrderedDict()  # original clOrdId → the caller's id
        self._live: OrderedDict[str, str] = OrderedDict()  # original clOrdId → live request (replaced)
        self._terms: OrderedDict[str, tuple[Decimal | None, Decimal | None]] = OrderedDict()
        self._proprietary: OrderedDict[str, str] = OrderedDict()  # original clOrdId → its proprietary
        self._replacements: OrderedDict[str, None] = OrderedDict()  # replace requests reported
        self._max = max_orders

    def restore(self, order_id: str, cum_qty: Decimal) -> None:
        """Start `order_id` at `cum_qty` already reported (fills journaled by an earlier run)."""
        self._root.setdefault(order_id, order_id)
        self._cum[order_id] = max(cum_qty, self._cum.get(order_id, Decimal(0)))

    def seen(self, client_order_id: str) -> bool:
        """Whether any report of this request (or of one chained to it) was processed."""
        return client_order_id in self._root

    def name(self, order_id: str, caller_id: str) -> None:
        """`order_id` (the original request's clOrdId) was placed under the caller's `caller_id`:
        its updates and fills carry it as `client_order_id` from now on."""
        _bounded_put(self._caller, order_id, caller_id, self._max)

    def caller_id(self, order_id: str) -> str | None:
        return self._caller.get(order_id)

    def order_of_caller(self, caller_id: str) -> str | None:
        """The order id (root clOrdId) placed under `caller_id`, if a report or a submit said so."""
        return next((root for root, named in reversed(self._caller.items()) if named == caller_id), None)

    def live_request(self, order_id: str) -> str:
        """The clOrdId to cancel or replace `order_id` by: its newest replace, else itself."""
        return self._live.get(order_id, order_id)

    def replaced(self, order_id: str, request: str) -> None:
        """`request` (a replaceById answer) is the live request of `order_id` from now on."""
        self._root[request] = order_id
        _bounded_put(self._live, order_id, request, self._max)

    def proprietary_of(self, order_id: str) -> str | None:
        """The `proprietary` the order's reports carry (cancel and replace must name it)."""
        return self._proprietary.get(order_id)

    def terms(self, order_id: str) -> tuple[Decimal | None, Decimal | None] | None:
        """(quantity, limit price) of the order's live request as last reported, if any was."""
        return self._terms.get(order_id)

    def order_id_of(self, report: OrderReport) -> str:
        """The stable order id: the original request's clOrdId (see the module docstring)."""
        cl = _id(report.clOrdId)
        orig = _id(report.origClOrdId)
        if orig is not None:
            root = self._root.get(orig, orig)
        elif cl is not None:
            root = self._root.get(cl, cl)
        else:
            root = _id(report.orderId) or _id(report.execId) or ""
            if not root:
                raise ProtocolError("primary: order report without clOrdId, orderId or execId")
        for key in (cl, orig):
            if key is not None:
                self._root[key] = root
                self._root.move_to_end(key)
        while len(self._root) > self._max:
            self._root.popitem(last=False)
        return root

    def events(
        self,
        report: OrderReport,
        *,
        ts: float,
        venue: str = VENUE,
        snapshot: bool = False,
    ) -> list[OrderUpdate | Fill]:
        order_id = self.order_id_of(report)
        stamp = parse_transact_time(report.transactTime) or ts
        side = parse_side(report.side)
        symbol = report.instrumentId.symbol if report.instrumentId is not None else None
        status = parse_status(report.status)
        text = (report.text or "").strip() or None
        if report.wsClOrdId:  # only on a WS order's first report: the caller's id for it
            self.name(order_id, report.wsClOrdId)
        if report.proprietary and self._proprietary.get(order_id) != report.proprietary:
            _bounded_put(self._proprietary, order_id, report.proprietary, self._max)
        cl = _id(report.clOrdId)
        follow_up = report.origClOrdId is not None
        if status == "replaced" or (status == "canceled" and (text or "").lower().startswith("reemplazada")):
            # The request was replaced, not the order ended: the replacement's report follows.
            return []
        if follow_up and status == "rejected":
            # A cancel or replace refused ("Orden no activa"): the order is as it was.
            return []
        # A replacement is NEW again, also after partial fills: not a step back. Its first report
        # says "replaced" (the order's terms changed), so it is not taken for the order's first NEW.
        replacement = follow_up and status in _ACTIVE_STATUSES
        exec_type = status
        if replacement and cl is not None and cl not in self._replacements:
            exec_type = "replaced"
            _bounded_put(self._replacements, cl, None, self._max)
        if cl is not None and status in _ACTIVE_STATUSES:
            if follow_up or cl == self._live.get(order_id, order_id):
                _bounded_put(self._live, order_id, cl, self._max)
                _bounded_put(self._terms, order_id, (report.orderQty, report.price), self._max)
        rank = _STATUS_RANK.get(status, 1)
        stale = (rank < self._rank.get(order_id, -1) and exec_type != "replaced") or (
            report.cumQty is not None and report.cumQty < self._cum.get(order_id, Decimal(0))
        )
        if not stale:
            self._rank[order_id] = rank
            self._rank.move_to_end(order_id)
            while len(self._rank) > self._max:
                self._rank.popitem(last=False)
        out: list[OrderUpdate | Fill] = (
            []
            if stale
            else [
                OrderUpdate(
                    venue=venue,
                    ts=stamp,
                    order_id=order_id,
                    exec_type=exec_type,
                    status=status,
                    symbol=symbol,
                    side=side,
                    order_type=report.ordType.lower() if report.ordType else None,
                    qty=report.orderQty,
                    limit_price=report.price,
                    cum_qty=report.cumQty,
                    avg_price=report.avgPx if report.avgPx else None,
                    client_order_id=self._caller.get(order_id, cl),
                    reason=text if status in ("rejected", "canceled", "expired") else None,
                    snapshot=snapshot,
                )
            ]
        )
        cum = report.cumQty
        if cum is None:
            return out
        previous = self._cum.get(order_id, Decimal(0))
        if cum > previous:
            self._cum[order_id] = cum
            self._cum.move_to_end(order_id)
            while len(self._cum) > self._max:
                self._cum.popitem(last=False)
            qty = cum - previous
            previous_avg = self._avg.get(order_id)
            if report.avgPx:
                self._avg[order_id] = report.avgPx
            price: Decimal | None
            if report.lastPx and report.lastQty == qty:
                price = report.lastPx
            elif report.avgPx and previous and previous_avg is not None:
                # Reports were missed: the quantity since the last one seen traded at the price
                # that moves the average from what we knew to what it is now.
                price = (report.avgPx * cum - previous_avg * previous) / qty
            else:
                price = report.lastPx if report.lastPx else report.avgPx
            if price is None or side is None or symbol is None:
                raise ProtocolError(f"primary: fill on {order_id} without price, side or symbol")
            out.append(
                Fill(
                    venue=venue,
                    ts=stamp,
                    order_id=order_id,
                    exec_id=_id(report.execId) or f"{order_id}:{cum}",
                    symbol=symbol,
                    side=side,
                    price=price,
                    qty=qty,
                    cost=price * qty,
                    fee=Decimal(0),  # Primary reports no fees on executions
                    fee_asset=None,
                    order_status=status,
                    client_order_id=self._caller.get(order_id, cl),
                    snapshot=snapshot,
                )
            )
        return out


# ---------------------------------------------------------------- risk (polled)


def positions_from_rest(
    rows: Iterable[PositionRow], *, account: str, ts: float, venue: str = VENUE
) -> list[Position]:
    """One `Position` per row: qty = buySize − sellSize, pnl = totalDiff (Primary's P&L)."""
    out = []
    for row in rows:
        symbol = row.symbol or row.tradingSymbol
        if symbol is None and row.instrument is not None:
            symbol = row.instrument.symbolReference
        if symbol is None:
            raise ProtocolError("primary: position row without symbol")
        out.append(
            Position(
                venue=venue,
                ts=ts,
                account=account,
                symbol=symbol,
                qty=row.buySize - row.sellSize,
                buy_qty=row.buySize,
                buy_price=row.buyPrice if row.buySize else None,
                sell_qty=row.sellSize,
                sell_price=row.sellPrice if row.sellSize else None,
                pnl=row.totalDiff,
            )
        )
    return out


def balance_snapshot_from_report(data: AccountData, *, ts: float, venue: str = VENUE) -> BalanceSnapshot:
    """`accountReport` → `BalanceSnapshot`, one `AssetBalance` per currency.

    Mapping: the report for the earliest settlement term (key "0", spot) is used. For each
    currency in `currencyBalance.detailedCurrencyBalance`: total = available + consumed, hold =
    consumed (what orders and positions use), so `total − hold` is what Primary calls available.
    Currencies only in `availableToOperate.cash.detailedCash` get total = that cash, hold None.
    Currency names are Primary's keys (`ARS`, `USD D`, `USD C`, `USD MtR`, …), unchanged.
    """
    reports = data.detailedAccountReports
    if not reports:
        return BalanceSnapshot(venue=venue, ts=ts, balances=(), source=Source.REST)
    key = min(reports, key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0, k))
    report = reports[key]
    balances: dict[str, AssetBalance] = {}
    if report.currencyBalance is not None:
        for currency, amounts in report.currencyBalance.detailedCurrencyBalance.items():
            available = amounts.available or Decimal(0)
            consumed = amounts.consumed or Decimal(0)
            balances[currency] = AssetBalance(asset=currency, total=available + consumed, hold=consumed)
    cash = report.availableToOperate.cash if report.availableToOperate is not None else None
    if cash is not None:
        for currency, amount in cash.detailedCash.items():
            balances.setdefault(currency, AssetBalance(asset=currency, total=amount))
    stamp = ms_to_seconds(float(data.lastCalculation), ts) if data.lastCalculation else ts
    return BalanceSnapshot(venue=venue, ts=stamp, balances=tuple(balances.values()), source=Source.REST)


def events_from_market_data(
    symbol: str,
    data: MarketData,
    *,
    ticker: bool = False,
    book_depths: Iterable[int] = (),
    stats: bool = False,
    trades: TradeTracker | None = None,
    ts: float,
    venue: str = VENUE,
    source: Source = Source.REST,
) -> list[Ticker | BookSnapshot | Trade | SessionStats]:
    """What a REST poll (`marketdata/get`) yields: the same events as the socket, source REST.

    Pass the session's `TradeTracker` as `trades` to get Trades from `LA` changes consistently with
    the socket (a poll right after a reconnect then adds no duplicate).
    """
    out: list[Ticker | BookSnapshot | Trade | SessionStats] = []
    if ticker:
        out.append(ticker_from_md(symbol, data, ts=ts, venue=venue, source=source))
    for depth in sorted(set(book_depths)):
        out.append(book_from_md(symbol, data, depth=depth, ts=ts, venue=venue, source=source))
    if trades is not None:
        trade = trades.observe(symbol, data, ts=ts, venue=venue, source=source)
        if trade is not None:
            out.append(trade)
    if stats:
        out.append(stats_from_md(symbol, data, ts=ts, venue=venue, source=source))
    return out
