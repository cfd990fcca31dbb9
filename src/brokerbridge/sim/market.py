"""A living, seeded, venue-agnostic market: books, trades, candles and matching of account orders.

Nothing here knows a wire format. A venue front (sim/kraken/) asks the market to `step(now)` on its
clock, reads books/trades/candles, and submits account orders; every step returns what changed so
the front can publish it. All randomness comes from one `random.Random(seed)`, and all time is passed
in (`now` = wall seconds), so a seed plus a sequence of step times reproduces a run exactly.

Model, per instrument:
* a "fair" price doing a geometric random walk; when it leaves the spread, takers trade through
  the book toward it (public trades, levels consumed) and makers refill the other side;
* a multi-level book (about `levels` per side, one tick apart at the top, wider further out) whose
  top levels keep changing size, appearing and disappearing;
* occasional small market orders at the touch;
* account orders: takers walk the book (and consume it), resting limit orders fill when the market
  trades at or through their price. Account orders are not shown in the public book.

A venue front may quote some instruments itself (`quoted`: e.g. options priced from a volatility
surface): `step` leaves them alone, the front sets their whole book with `requote` and prints
their trades with `print_trade`. `step(frozen=…)` holds instruments still (a stale price).
"""

from __future__ import annotations

import enum
import math
import random
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

CANDLE_INTERVALS = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)  # minutes
# History is bounded by what a venue front serves from it, not by how long the market has run: a
# market nobody reads trades on all day (the Primary one lists 358 instruments), and an unbounded or
# loosely bounded history was an idle `serve` growing by megabytes a minute.
MAX_CANDLES = 721  # per instrument and interval: the 720 rows OHLC answers + the forming one
# Public trades per instrument unless the venue front says otherwise: five of Kraken's 1,000-trade
# `Trades` pages, so a reconnect's backfill (`since` = when the stream went down) is whole for a gap
# of up to ≈ 25 minutes at ≈ 3 trades/s — ≈ 1.6 MB per instrument.
TRADES_KEPT = 5_000
STATS_INTERVAL = 5  # minutes: `stats()` sums candles of this interval (Kraken's ticker: 24 h)


class Side(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class BookSide(enum.StrEnum):
    BID = "bid"
    ASK = "ask"


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    symbol: str  # "BTC/USD"
    base: str  # "BTC"
    quote: str  # "USD"
    price_decimals: int
    qty_decimals: int
    tick: Decimal
    qty_min: Decimal
    cost_min: Decimal
    start_price: Decimal
    level_qty: Decimal  # typical size of one book level
    volatility: float = 0.03  # relative std-dev of the price over one day (random walk)

    def price(self, value: Decimal | float) -> Decimal:
        return (Decimal(str(value)) / self.tick).to_integral_value() * self.tick

    def qty(self, value: Decimal | float) -> Decimal:
        return Decimal(str(value)).quantize(Decimal(1).scaleb(-self.qty_decimals), rounding=ROUND_DOWN)


@dataclass(frozen=True, slots=True)
class LevelChange:
    side: BookSide
    price: Decimal
    qty: Decimal  # new absolute quantity, 0 = removed


@dataclass(frozen=True, slots=True)
class PublicTrade:
    symbol: str
    side: Side  # taker side
    price: Decimal
    qty: Decimal
    ord_type: str  # taker order type: "market" | "limit"
    trade_id: int
    time_ns: int

    @property
    def time(self) -> float:
        return self.time_ns / 1e9


@dataclass(frozen=True, slots=True)
class Fill:
    """An account order traded: `liquidity` is "t" (taker) or "m" (maker)."""

    order_ref: str
    symbol: str
    side: Side
    price: Decimal
    qty: Decimal
    liquidity: str
    trade_id: int
    time_ns: int


@dataclass(slots=True)
class Candle:
    begin: int  # epoch seconds
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    count: int = 0

    def add(self, price: Decimal, qty: Decimal) -> None:
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.close = price
        self.volume += qty
        self.cost += price * qty
        self.count += 1

    def extend(self, later: Candle) -> None:
        """Add the trades of `later`, a candle of the same interval that began trading after this."""
        self.high = max(self.high, later.high)
        self.low = min(self.low, later.low)
        self.close = later.close
        self.volume += later.volume
        self.cost += later.cost
        self.count += later.count

    @property
    def vwap(self) -> Decimal:
        return self.cost / self.volume if self.volume else Decimal(0)


@dataclass(frozen=True, slots=True)
class Stats:
    volume: Decimal
    vwap: Decimal
    count: int
    low: Decimal
    high: Decimal
    open: Decimal


@dataclass(frozen=True, slots=True)
class HistorySize:
    """How much the market holds, summed over its instruments (history not yet drawn counts 0)."""

    trades: int
    candles: int
    book_levels: int
    book_stamps: int
    resting_orders: int


@dataclass(slots=True)
class StepResult:
    """What one step changed, in order: book changes per symbol, public trades, account fills."""

    book_changes: dict[str, list[LevelChange]] = field(default_factory=dict)
    trades: list[PublicTrade] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)

    def merge(self, other: StepResult) -> None:
        for symbol, changes in other.book_changes.items():
            self.book_changes.setdefault(symbol, []).extend(changes)
        self.trades.extend(other.trades)
        self.fills.extend(other.fills)


class OrderBook:
    """Price levels per side with sorted prices; `stamp` keeps when each level last changed."""

    def __init__(self) -> None:
        self._qty: dict[BookSide, dict[Decimal, Decimal]] = {BookSide.BID: {}, BookSide.ASK: {}}
        # Ascending prices; bids are read from the end.
        self._prices: dict[BookSide, list[Decimal]] = {BookSide.BID: [], BookSide.ASK: []}
        self.stamp: dict[tuple[BookSide, Decimal], float] = {}

    def set(self, side: BookSide, price: Decimal, qty: Decimal, now: float) -> LevelChange:
        levels = self._qty[side]
        prices = self._prices[side]
        if qty <= 0:
            if price in levels:
                del levels[price]
                prices.pop(bisect_left(prices, price))
                self.stamp.pop((side, price), None)
            return LevelChange(side, price, Decimal(0))
        if price not in levels:
            insort(prices, price)
        levels[price] = qty
        self.stamp[(side, price)] = now
        return LevelChange(side, price, qty)

    def qty(self, side: BookSide, price: Decimal) -> Decimal | None:
        return self._qty[side].get(price)

    def count(self, side: BookSide) -> int:
        return len(self._prices[side])

    def best(self, side: BookSide) -> Decimal | None:
        prices = self._prices[side]
        if not prices:
            return None
        return prices[-1] if side is BookSide.BID else prices[0]

    def prices(self, side: BookSide, depth: int | None = None) -> list[Decimal]:
        """Prices best first, at most `depth` of them."""
        prices = self._prices[side]
        if side is BookSide.ASK:
            return prices[:depth] if depth is not None else list(prices)
        if depth is None:
            return prices[::-1]
        return prices[: -depth - 1 : -1] if depth < len(prices) else prices[::-1]

    def levels(self, side: BookSide, depth: int | None = None) -> list[tuple[Decimal, Decimal]]:
        levels = self._qty[side]
        return [(price, levels[price]) for price in self.prices(side, depth)]


@dataclass(slots=True)
class RestingOrder:
    ref: str
    symbol: str
    side: Side
    limit: Decimal
    remaining: Decimal


@dataclass(slots=True)
class _Instrument:
    spec: InstrumentSpec
    book: OrderBook
    fair: float
    trades: deque[PublicTrade]
    candles: dict[int, dict[int, Candle]]  # interval → begin → candle (insertion ordered)
    next_trade_id: int
    # The history not yet drawn (see `_history_rows`): where it ends, its lengths, its own generator.
    pending_history: _PendingHistory | None = None
    # The same, kept once drawn: the past's prices can be drawn again (the trades kept are bounded).
    history_source: _PendingHistory | None = None


@dataclass(slots=True, frozen=True)
class _PendingHistory:
    now: float
    history_s: float
    dense_s: float
    rng: random.Random
    first_live_id: int  # the id of the first trade after `now`; the past takes the ids below it


@dataclass(slots=True, frozen=True)
class _HistoryRow:
    when: float
    price: float
    buy: bool
    market: bool
    qty_factor: float


class Market:
    """The simulated market behind a venue front. Not thread-safe; drive it from one event loop."""

    def __init__(
        self,
        specs: Iterable[InstrumentSpec],
        *,
        seed: int = 0,
        now: float,
        levels: int = 120,
        history_s: float = 2 * 86_400,
        dense_history_s: float = 2 * 3_600,
        taker_rate: float = 3.0,
        trades_kept: int = TRADES_KEPT,
        candle_intervals: tuple[int, ...] = CANDLE_INTERVALS,
        candles_kept: int = MAX_CANDLES,
        stats_interval: int = STATS_INTERVAL,
        quoted: Iterable[str] = (),
    ) -> None:
        """`trades_kept` public trades per instrument (the newest), `candles_kept` candles per
        instrument and interval (the newest, the forming one included) for each of
        `candle_intervals`; `stats()` reads the `stats_interval` candles, so those must span the
        longest window it is asked about. `quoted` symbols are the venue front's to quote
        (`requote`); `step` does not move them."""
        if stats_interval not in candle_intervals:
            raise ValueError(
                f"stats_interval {stats_interval} is not one of the candle intervals {candle_intervals}"
            )
        if trades_kept < 1 or candles_kept < 2:
            raise ValueError("keep at least one trade (the last price) and two candles per interval")
        self.rng = random.Random(seed)
        self._seed = seed
        self._taker_rate = taker_rate  # taker arrivals per second and instrument
        self._levels = levels
        self._candles_kept = candles_kept
        self._stats_interval = stats_interval
        self._instruments: dict[str, _Instrument] = {}
        self._resting: dict[str, RestingOrder] = {}
        self._last_step = now
        self._quoted = frozenset(quoted)
        for spec in specs:
            inst = _Instrument(
                spec=spec,
                book=OrderBook(),
                fair=float(spec.start_price),
                trades=deque(maxlen=trades_kept),
                candles={interval: {} for interval in candle_intervals},
                next_trade_id=self.rng.randrange(1_000_000, 90_000_000),
            )
            self._instruments[spec.symbol] = inst
            # Each instrument's past comes from a generator of its own, seeded by the market's seed
            # and its symbol, and is drawn when first read: the same history whatever is read first,
            # and start-up costs nothing for the hundreds of instruments nobody reads (drawing them
            # all took over a second).
            inst.pending_history = inst.history_source = _PendingHistory(
                now, history_s, dense_history_s, random.Random(f"{seed}/{spec.symbol}"), inst.next_trade_id
            )
            self._build_book(inst, now)

    # -- reading -----------------------------------------------------------------------------------------
    @property
    def symbols(self) -> list[str]:
        return list(self._instruments)

    def spec(self, symbol: str) -> InstrumentSpec:
        return self._instruments[symbol].spec

    def book(self, symbol: str) -> OrderBook:
        return self._instruments[symbol].book

    def trades(self, symbol: str) -> deque[PublicTrade]:
        return self._ready(symbol).trades

    def candles(self, symbol: str, interval: int) -> list[Candle]:
        """Candles oldest first; the last one is still forming."""
        return list(self._ready(symbol).candles[interval].values())

    def current_candle(self, symbol: str, interval: int) -> Candle | None:
        series = self._ready(symbol).candles[interval]
        return next(reversed(series.values())) if series else None

    def stats(self, symbol: str, since: float) -> Stats:
        """Volume/vwap/count/low/high/open of the trades since `since`, at the resolution of the
        stats interval and as far back as its kept candles reach."""
        inst = self._ready(symbol)
        step = self._stats_interval * 60
        window = [c for c in inst.candles[self._stats_interval].values() if c.begin + step > since]
        if not window:
            last = inst.trades[-1].price
            return Stats(Decimal(0), last, 0, last, last, last)
        volume = sum((c.volume for c in window), Decimal(0))
        cost = sum((c.cost for c in window), Decimal(0))
        return Stats(
            volume=volume,
            vwap=cost / volume if volume else window[-1].close,
            count=sum(c.count for c in window),
            low=min(c.low for c in window),
            high=max(c.high for c in window),
            open=window[0].open,
        )

    def filled_candles(self, symbol: str, interval: int) -> list[Candle]:
        """Candles with a row for every interval: quiet ones repeat the last close with zero volume."""
        step = interval * 60
        out: list[Candle] = []
        for candle in self._ready(symbol).candles[interval].values():
            if out:
                begin = out[-1].begin + step
                close = out[-1].close
                while begin < candle.begin:
                    out.append(Candle(begin, close, close, close, close))
                    begin += step
            out.append(candle)
        return out

    def last_price_before(self, symbol: str, when: float) -> Decimal | None:
        """The price of the last trade before `when` (without building a history not yet read).
        Before the history's end it is read from the history's path, drawn again if need be: the
        trades kept may no longer reach back that far."""
        inst = self._instruments[symbol]
        source = inst.history_source
        if inst.pending_history is not None or (source is not None and when <= source.now):
            price = None
            for at, past in self._history_path(inst)[0]:
                if at >= when:
                    break
                price = past
            return None if price is None else inst.spec.price(price)
        last = None
        for trade in inst.trades:
            if trade.time_ns >= when * 1e9:
                break
            last = trade.price
        return last

    def trades_since(self, symbol: str, since_s: float) -> Iterator[PublicTrade]:
        """Trades newer than `since_s`, oldest first (scans from the newest end)."""
        trades = self._ready(symbol).trades
        since_ns = int(since_s * 1e9)
        newer: list[PublicTrade] = []
        for trade in reversed(trades):
            if trade.time_ns <= since_ns:
                break
            newer.append(trade)
        return reversed(newer)

    def resting(self, ref: str) -> RestingOrder | None:
        return self._resting.get(ref)

    def history_size(self) -> HistorySize:
        """What every container of the market holds now (without drawing any history)."""
        insts = self._instruments.values()
        return HistorySize(
            trades=sum(len(inst.trades) for inst in insts),
            candles=sum(len(series) for inst in insts for series in inst.candles.values()),
            book_levels=sum(inst.book.count(side) for inst in insts for side in BookSide),
            book_stamps=sum(len(inst.book.stamp) for inst in insts),
            resting_orders=len(self._resting),
        )

    # -- account orders ------------------------------------------------------------------------------------
    def sweep_cost(
        self, symbol: str, side: Side, qty: Decimal, limit: Decimal | None
    ) -> tuple[Decimal, Decimal]:
        """(qty, cost) a taker order would fill now against the book, without trading."""
        book = self._instruments[symbol].book
        book_side = BookSide.ASK if side is Side.BUY else BookSide.BID
        filled = cost = Decimal(0)
        for price, level_qty in book.levels(book_side):
            if filled >= qty or (limit is not None and not _crosses(side, limit, price)):
                break
            take = min(qty - filled, level_qty)
            filled += take
            cost += take * price
        return filled, cost

    def crosses(self, symbol: str, side: Side, limit: Decimal) -> bool:
        book = self._instruments[symbol].book
        best = book.best(BookSide.ASK if side is Side.BUY else BookSide.BID)
        return best is not None and _crosses(side, limit, best)

    def submit(
        self,
        ref: str,
        symbol: str,
        side: Side,
        qty: Decimal,
        limit: Decimal | None,
        now: float,
        *,
        rest: bool = True,
    ) -> StepResult:
        """Match an account order now: take liquidity up to `limit` (None = market), rest the rest.

        A market order (or `rest=False`, e.g. IOC) never rests; what could not fill is the caller's
        to cancel (the remaining quantity is `qty` minus the fills).
        """
        inst = self._instruments[symbol]
        result = StepResult()
        remaining = qty
        book_side = BookSide.ASK if side is Side.BUY else BookSide.BID
        ord_type = "market" if limit is None else "limit"
        for price, level_qty in inst.book.levels(book_side):
            if remaining <= 0 or (limit is not None and not _crosses(side, limit, price)):
                break
            take = min(remaining, level_qty)
            remaining -= take
            result.book_changes.setdefault(symbol, []).append(
                inst.book.set(book_side, price, level_qty - take, now)
            )
            trade = self._record_trade(inst, side, price, take, ord_type, now)
            result.trades.append(trade)
            result.fills.append(Fill(ref, symbol, side, price, take, "t", trade.trade_id, trade.time_ns))
        if remaining > 0 and limit is not None and rest:
            self._resting[ref] = RestingOrder(ref, symbol, side, limit, remaining)
        if result.book_changes.get(symbol):
            self._refill(inst, book_side, now, result)
        return result

    def cancel(self, ref: str) -> RestingOrder | None:
        return self._resting.pop(ref, None)

    # -- time passes -------------------------------------------------------------------------------------
    def step(self, now: float, frozen: frozenset[str] = frozenset()) -> StepResult:
        """Advance the market to wall time `now`; returns everything that changed. The `frozen`
        symbols (and the quoted ones) do not move: no walk, no book change, no trade."""
        dt = max(0.0, min(now - self._last_step, 5.0))
        self._last_step = now
        result = StepResult()
        taker_chance = 1 - math.exp(-self._taker_rate * dt)
        for inst in self._instruments.values():
            if inst.spec.symbol in self._quoted or inst.spec.symbol in frozen:
                continue
            self._walk(inst, dt)
            if self.rng.random() < taker_chance:
                self._taker(inst, now, result)
            for _ in range(self.rng.choice((1, 1, 2, 2, 3))):
                self._churn(inst, now, result)
            self._follow_fair(inst, now, result)
            self._fill_resting(inst, now, result)
        return result

    def requote(
        self,
        symbol: str,
        bids: list[tuple[Decimal, Decimal]],
        asks: list[tuple[Decimal, Decimal]],
        now: float,
    ) -> StepResult:
        """Set a quoted instrument's book to exactly these (price, qty) levels (only the levels that
        differ change), then fill the resting account orders the new book reaches."""
        inst = self._instruments[symbol]
        result = StepResult()
        for side, levels in ((BookSide.BID, bids), (BookSide.ASK, asks)):
            wanted = dict(levels)
            for price in inst.book.prices(side):
                if price not in wanted:
                    self._change(inst, side, price, Decimal(0), now, result)
            for price, qty in levels:
                if inst.book.qty(side, price) != qty:
                    self._change(inst, side, price, qty, now, result)
        self._fill_resting(inst, now, result)
        return result

    def print_trade(self, symbol: str, taker: Side, price: Decimal, qty: Decimal, now: float) -> PublicTrade:
        """A public trade the venue front decided on (a quoted instrument's trade inside its spread)."""
        return self._record_trade(self._instruments[symbol], taker, price, qty, "limit", now)

    def fair(self, symbol: str) -> float:
        """The instrument's hidden fair price (the walk's value)."""
        return self._instruments[symbol].fair

    # -- internals -----------------------------------------------------------------------------------------
    def _walk(self, inst: _Instrument, dt: float) -> None:
        sigma = inst.spec.volatility * math.sqrt(dt / 86_400)
        inst.fair *= math.exp(self.rng.gauss(0.0, sigma))

    def _record_trade(
        self, inst: _Instrument, side: Side, price: Decimal, qty: Decimal, ord_type: str, now: float
    ) -> PublicTrade:
        trade = PublicTrade(
            symbol=inst.spec.symbol,
            side=side,
            price=price,
            qty=qty,
            ord_type=ord_type,
            trade_id=inst.next_trade_id,
            time_ns=int(now * 1e9),
        )
        inst.next_trade_id += 1
        self._add_trade(inst, trade)
        return trade

    def _add_trade(self, inst: _Instrument, trade: PublicTrade) -> None:
        inst.trades.append(trade)  # the deque drops the oldest beyond `trades_kept`
        price, qty, now = trade.price, trade.qty, trade.time_ns / 1e9
        for interval, series in inst.candles.items():
            begin = int(now // (interval * 60)) * interval * 60
            candle = series.get(begin)
            if candle is None:
                candle = Candle(begin, price, price, price, price)
                series[begin] = candle
                while len(series) > self._candles_kept:  # insertion order is time order
                    del series[next(iter(series))]
            candle.add(price, qty)

    def _level_qty(self, inst: _Instrument) -> Decimal:
        # Heavy-tailed sizes: many tiny levels, a few large ones, like a real book.
        factor = math.exp(self.rng.gauss(-0.5, 1.3))
        return max(inst.spec.qty(inst.spec.level_qty * Decimal(str(round(factor, 8)))), inst.spec.qty_min)

    def _gap(self, inst: _Instrument, index: int) -> Decimal:
        """Distance in ticks between level `index` and the next, wider further from the touch."""
        spread_ticks = max(1, int(inst.fair * 0.000005 / float(inst.spec.tick)))
        return inst.spec.tick * self.rng.randint(1, spread_ticks * (1 + index // 10))

    def _build_book(self, inst: _Instrument, now: float) -> None:
        spec, book = inst.spec, inst.book
        mid = spec.price(inst.fair)
        bid, ask = mid - spec.tick, mid
        for index in range(self._levels):
            book.set(BookSide.BID, bid, self._level_qty(inst), now)
            book.set(BookSide.ASK, ask, self._level_qty(inst), now)
            bid -= self._gap(inst, index)
            ask += self._gap(inst, index)

    def _history_path(self, inst: _Instrument) -> tuple[list[tuple[float, float]], random.Random]:
        """The instrument's past prices (time, price), drawn from its own generator (the same path
        every time) and scaled to end at the start price: the book starts where history ends.
        Also returns the generator, positioned after the path, for the trades' other draws."""
        pending = inst.history_source
        assert pending is not None
        rng = random.Random()
        rng.setstate(pending.rng.getstate())
        spec, now = inst.spec, pending.now
        t = now - pending.history_s
        price = float(spec.start_price)
        path: list[tuple[float, float]] = []
        while t < now:
            path.append((t, price))
            gap = rng.expovariate(1 / 3.0) if now - t < pending.dense_s else rng.expovariate(1 / 300.0)
            t += max(gap, 0.001)
            price *= math.exp(rng.gauss(0.0, spec.volatility * math.sqrt(gap / 86_400)))
        scale = float(spec.start_price) / price
        return [(when, p * scale) for when, p in path], rng

    def _history_rows(self, inst: _Instrument) -> list[_HistoryRow]:
        """The instrument's past trades (REST/OHLC have history)."""
        path, rng = self._history_path(inst)
        return [
            _HistoryRow(
                when,
                price,
                buy=rng.random() < 0.5,
                market=rng.random() < 0.3,
                qty_factor=math.exp(rng.gauss(-1.5, 1.2)),
            )
            for when, price in path
        ]

    def _ready(self, symbol: str) -> _Instrument:
        """The instrument, with its history built (trades recorded since then kept after it)."""
        inst = self._instruments[symbol]
        pending = inst.pending_history
        if pending is not None:
            rows = self._history_rows(inst)
            inst.pending_history = None
            # Live trades took ids from `first_live_id` on; the past takes the ids just below it,
            # so ids still grow with time (the oldest live trades may be gone from `trades`).
            first_id = pending.first_live_id - len(rows)
            # The past goes in first; what the market did since then stays after it, candles
            # included: they may hold more than the trades still kept.
            live = list(inst.trades)
            live_candles = inst.candles
            inst.trades.clear()
            inst.candles = {interval: {} for interval in live_candles}
            spec = inst.spec
            for offset, row in enumerate(rows):
                trade = PublicTrade(
                    symbol=spec.symbol,
                    side=Side.BUY if row.buy else Side.SELL,
                    price=spec.price(row.price),
                    qty=self._qty_of(inst, row.qty_factor),
                    ord_type="market" if row.market else "limit",
                    trade_id=first_id + offset,
                    time_ns=int(row.when * 1e9),
                )
                self._add_trade(inst, trade)
            inst.trades.extend(live)
            for interval, series in live_candles.items():
                merged = inst.candles[interval]
                for begin, candle in series.items():
                    past = merged.get(begin)
                    if past is None:
                        merged[begin] = candle
                    else:  # the interval the market started in: its past part came first
                        past.extend(candle)
                while len(merged) > self._candles_kept:
                    del merged[next(iter(merged))]
        return inst

    def _taker_factor(self) -> float:
        return math.exp(self.rng.gauss(-1.5, 1.2))

    @staticmethod
    def _qty_of(inst: _Instrument, factor: float) -> Decimal:
        return max(inst.spec.qty(inst.spec.level_qty * Decimal(str(round(factor, 8)))), inst.spec.qty_min)

    def _taker_qty(self, inst: _Instrument) -> Decimal:
        return self._qty_of(inst, self._taker_factor())

    def _taker(self, inst: _Instrument, now: float, result: StepResult) -> None:
        """A taker arrives: if fair left the spread it sweeps toward fair, else a small market order."""
        spec, book = inst.spec, inst.book
        fair = spec.price(inst.fair)
        best_bid, best_ask = book.best(BookSide.BID), book.best(BookSide.ASK)
        if best_ask is not None and fair > best_ask:
            side, book_side = Side.BUY, BookSide.ASK
        elif best_bid is not None and fair < best_bid:
            side, book_side = Side.SELL, BookSide.BID
        else:
            book_side = BookSide.BID if self.rng.random() < 0.5 else BookSide.ASK
            best = book.best(book_side)
            if best is None:
                return
            level_qty = book.qty(book_side, best) or Decimal(0)
            qty = min(level_qty, self._taker_qty(inst))
            self._change(inst, book_side, best, level_qty - qty, now, result)
            taker = Side.SELL if book_side is BookSide.BID else Side.BUY
            result.trades.append(self._record_trade(inst, taker, best, qty, "market", now))
            self._refill(inst, book_side, now, result)
            return
        ord_type = "limit" if self.rng.random() < 0.6 else "market"
        for _ in range(3):  # a sweep takes at most a few levels; the rest of the move is makers' job
            best = book.best(book_side)
            if best is None or not _crosses(side, fair, best) or best == fair:
                break
            qty = book.qty(book_side, best) or Decimal(0)
            self._change(inst, book_side, best, Decimal(0), now, result)
            result.trades.append(self._record_trade(inst, side, best, qty, ord_type, now))
        self._refill(inst, book_side, now, result)

    def _follow_fair(self, inst: _Instrument, now: float, result: StepResult) -> None:
        """Makers keep quoting around fair: stale quotes on the wrong side of fair get pulled."""
        spec, book = inst.spec, inst.book
        fair = spec.price(inst.fair)
        best_ask = book.best(BookSide.ASK)
        if (
            best_ask is not None
            and best_ask < fair
            and self.rng.random() < 0.3
            and book.count(BookSide.ASK) > 1
        ):
            self._change(inst, BookSide.ASK, best_ask, Decimal(0), now, result)
        best_bid = book.best(BookSide.BID)
        if (
            best_bid is not None
            and best_bid > fair
            and self.rng.random() < 0.3
            and book.count(BookSide.BID) > 1
        ):
            self._change(inst, BookSide.BID, best_bid, Decimal(0), now, result)
        best_bid, best_ask = book.best(BookSide.BID), book.best(BookSide.ASK)
        if best_bid is not None and best_ask is not None and best_ask - best_bid > spec.tick * 3:
            if self.rng.random() < 0.5:  # someone improves the touch toward fair
                if fair > best_bid and fair - spec.tick > best_bid:
                    price = min(fair - spec.tick, best_ask - spec.tick)
                    if price > best_bid:
                        self._change(inst, BookSide.BID, price, self._level_qty(inst), now, result)
                elif fair < best_ask:
                    price = max(fair, best_bid + spec.tick)
                    if price < best_ask:
                        self._change(inst, BookSide.ASK, price, self._level_qty(inst), now, result)
        for book_side in (BookSide.BID, BookSide.ASK):
            if book.count(book_side) < self._levels // 2:
                self._refill(inst, book_side, now, result)

    def _churn(self, inst: _Instrument, now: float, result: StepResult) -> None:
        """One random book event, mostly near the touch (that is where real books change)."""
        book = inst.book
        spec = inst.spec
        book_side = BookSide.BID if self.rng.random() < 0.5 else BookSide.ASK
        top = book.prices(book_side, 15)
        if not top:
            return
        roll = self.rng.random()
        if roll < 0.45:  # resize a level near the top
            price = top[min(int(self.rng.expovariate(0.3)), len(top) - 1)]
            self._change(inst, book_side, price, self._level_qty(inst), now, result)
        elif roll < 0.62:  # a new level between existing ones (or improving the touch)
            anchor = top[min(int(self.rng.expovariate(0.25)), len(top) - 1)]
            offset = spec.tick * self.rng.randint(-3, 3)
            price = anchor + offset
            other = book.best(BookSide.ASK if book_side is BookSide.BID else BookSide.BID)
            if price <= 0 or (other is not None and not _inside(book_side, price, other)):
                return
            if book.qty(book_side, price) is None:
                self._change(inst, book_side, price, self._level_qty(inst), now, result)
        elif roll < 0.80:  # a level near the top is pulled (keep the book deep)
            if book.count(book_side) > self._levels // 2:
                price = top[min(int(self.rng.expovariate(0.3)), len(top) - 1)]
                self._change(inst, book_side, price, Decimal(0), now, result)
        elif roll < 0.88:  # the touch itself changes size (the busiest level of a real book)
            self._change(inst, book_side, top[0], self._level_qty(inst), now, result)
        else:  # deep book maintenance: keep roughly `levels` per side
            if book.count(book_side) < self._levels:
                self._refill(inst, book_side, now, result)
            else:
                prices = book.prices(book_side)
                price = prices[self.rng.randrange(len(prices) // 2, len(prices))]
                self._change(inst, book_side, price, Decimal(0), now, result)

    def _refill(self, inst: _Instrument, book_side: BookSide, now: float, result: StepResult) -> None:
        book = inst.book
        while book.count(book_side) < self._levels:
            prices = book.prices(book_side)
            worst = prices[-1] if prices else inst.spec.price(inst.fair)
            gap = self._gap(inst, book.count(book_side))
            price = worst - gap if book_side is BookSide.BID else worst + gap
            if price <= 0:
                break
            self._change(inst, book_side, price, self._level_qty(inst), now, result)

    def _change(
        self, inst: _Instrument, side: BookSide, price: Decimal, qty: Decimal, now: float, result: StepResult
    ) -> None:
        result.book_changes.setdefault(inst.spec.symbol, []).append(inst.book.set(side, price, qty, now))

    def _fill_resting(self, inst: _Instrument, now: float, result: StepResult) -> None:
        """Resting account orders fill (as makers) when the market trades at or through their price."""
        if not self._resting:
            return
        symbol = inst.spec.symbol
        step_trades = [t for t in result.trades if t.symbol == symbol]
        best_bid, best_ask = inst.book.best(BookSide.BID), inst.book.best(BookSide.ASK)
        for order in [o for o in self._resting.values() if o.symbol == symbol]:
            through = (order.side is Side.BUY and best_ask is not None and best_ask < order.limit) or (
                order.side is Side.SELL and best_bid is not None and best_bid > order.limit
            )
            if through:
                qty = order.remaining
            else:
                touched = sum(
                    (
                        t.qty
                        for t in step_trades
                        if t.side is order.side.opposite
                        and _crosses(order.side.opposite, t.price, order.limit)
                    ),
                    Decimal(0),
                )
                qty = min(order.remaining, touched)
            if qty <= 0:
                continue
            order.remaining -= qty
            trade = self._record_trade(inst, order.side.opposite, order.limit, qty, "market", now)
            result.trades.append(trade)
            result.fills.append(
                Fill(order.ref, symbol, order.side, order.limit, qty, "m", trade.trade_id, trade.time_ns)
            )
            if order.remaining <= 0:
                del self._resting[order.ref]


def _crosses(side: Side, limit: Decimal, price: Decimal) -> bool:
    """Would a `side` order limited at `limit` trade at `price`?"""
    return price <= limit if side is Side.BUY else price >= limit


def _inside(side: BookSide, price: Decimal, other_best: Decimal) -> bool:
    """A level at `price` on `side` keeps the book uncrossed against the other side's best."""
    return price < other_best if side is BookSide.BID else price > other_best
