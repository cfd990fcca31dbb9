"""The simulators' markets hold a bounded history however long they run: an idle `serve` stepped
both of them for hours and grew by megabytes a minute (every trade of 358 Primary instruments kept
up to 20,000 per instrument, nine candle series of 721 each).

Each exchange is stepped on a FakeClock for more simulated hours than its longest bound takes to
fill; its containers are counted (not the process's memory) at two points and must have stopped
growing, each within its bound."""

from __future__ import annotations

import random
from decimal import Decimal

from brokerbridge.core.clock import FakeClock
from brokerbridge.sim.faults import KrakenFaults, PrimaryFaults
from brokerbridge.sim.kraken import account as kraken_account
from brokerbridge.sim.kraken.exchange import DEMO_BALANCES, KrakenExchange
from brokerbridge.sim.market import MAX_CANDLES, TRADES_KEPT, HistorySize, Market, Side
from brokerbridge.sim.primary import account as primary_account
from brokerbridge.sim.primary import exchange as primary_exchange
from brokerbridge.sim.primary.catalog import Catalog, default_catalog
from brokerbridge.sim.primary.exchange import PrimaryExchange
from brokerbridge.venues.primary.wire_format import local_date

HOUR = 3_600.0


async def run_market(clock: FakeClock, step: object, hours: float, every: float) -> None:
    """Step the exchange every `every` fake seconds for `hours` (its server's market loop, inline)."""
    assert callable(step)
    for _ in range(int(hours * HOUR / every)):
        await clock.advance(every, settle=0)
        step()


def held(market: Market, interval: int) -> set[tuple[int, int]]:
    """(trades, candles of `interval`) each instrument holds — reading them draws its past, which
    goes in before what the market did since and must not push any of that out."""
    out = set()
    for symbol in market.symbols:
        trades, candles = market.trades(symbol), market.candles(symbol, interval)
        ids = [trade.trade_id for trade in trades]
        assert ids == sorted(set(ids)), symbol  # ids grow with time, none repeated
        begins = [candle.begin for candle in candles]
        assert begins == sorted(set(begins)) and begins[-1] >= trades[-1].time - interval * 60
        out.add((len(trades), len(candles)))
    return out


async def test_kraken_market_history_stops_growing_at_what_its_rest_serves() -> None:
    clock = FakeClock()
    exchange = KrakenExchange(clock=clock, faults=KrakenFaults(), seed=3)
    market = exchange.market
    market.trades("BTC/USD")  # one instrument's past drawn at once, the others' when first read
    await run_market(clock, exchange.step, hours=12.5, every=5.0)
    assert held(market, 1) == {(TRADES_KEPT, MAX_CANDLES)}  # both bounds reached, every instrument
    before = market.history_size()
    await run_market(clock, exchange.step, hours=1.0, every=5.0)
    after = market.history_size()
    assert after.trades == before.trades == TRADES_KEPT * len(market.symbols)
    for symbol in market.symbols:
        assert all(len(market.candles(symbol, interval)) <= MAX_CANDLES for interval in (1, 5, 15, 60))
        assert market.candles(symbol, 1)[-1].begin >= clock.time() - 60  # still the newest ones
    assert_book_bounded(after, levels=120, instruments=len(market.symbols))
    # What REST serves from it is still whole: 720 one-minute rows, a ticker over the last 24 h.
    assert len(market.filled_candles("ETH/USD", 1)) >= 720
    assert market.stats("ETH/USD", clock.time() - 86_400).count > 0


async def test_primary_market_history_stops_growing_at_what_its_rest_serves() -> None:
    clock = FakeClock()
    full = default_catalog(local_date(clock.time()))
    kinds: dict[str, object] = {}
    for inst in full.instruments:  # one instrument of each kind: the bounds are per instrument
        kinds.setdefault(inst.kind, inst)
    catalog = Catalog(tuple(inst for inst in full.instruments if inst in kinds.values()))
    exchange = PrimaryExchange(clock=clock, faults=PrimaryFaults(), seed=3, catalog=catalog)
    market = exchange.market
    market.trades(catalog.instruments[0].symbol)
    hours = primary_exchange.CANDLES_KEPT + 1.0
    # 30-s steps: the market moves at most 5 s per step, so this is a slower market on the clock,
    # with the same number of trades per step — plenty to fill 100 per instrument.
    await run_market(clock, exchange.step, hours=hours, every=30.0)
    interval = primary_exchange.STATS_INTERVAL
    kept = (primary_exchange.TRADES_KEPT, primary_exchange.CANDLES_KEPT)
    assert held(market, interval) == {kept}
    before = market.history_size()
    await run_market(clock, exchange.step, hours=3.0, every=30.0)
    after = market.history_size()
    assert (after.trades, after.candles) == (before.trades, before.candles)
    assert after.trades == primary_exchange.TRADES_KEPT * len(market.symbols)
    assert after.candles == primary_exchange.CANDLES_KEPT * len(market.symbols)  # one series each
    assert_book_bounded(after, levels=primary_exchange.BOOK_LEVELS, instruments=len(market.symbols))
    # What it serves from the history still works: the session figures and the last trade.
    symbol = catalog.instruments[0].symbol
    assert exchange.stats(symbol).count > 0 and market.trades(symbol)[-1].time >= clock.time() - HOUR


def assert_book_bounded(size: HistorySize, *, levels: int, instruments: int) -> None:
    # The book is kept near `levels` a side; its change stamps follow its levels one for one.
    assert size.book_levels <= 2 * instruments * (levels + 20)
    assert size.book_stamps == size.book_levels and size.resting_orders == 0


def test_kraken_account_keeps_its_newest_closed_orders_and_trades_and_every_open_one() -> None:
    exchange = KrakenExchange(clock=FakeClock(), faults=KrakenFaults(), seed=3)
    ids = kraken_account.IdMaker(random.Random(1))
    account = kraken_account.Account(
        exchange.catalog, exchange.market, ids, DEMO_BALANCES, closed_kept=5, trades_kept=8
    )
    pair = exchange.catalog.ws_pair("BTC/USD")
    assert pair is not None
    now = exchange.clock.time()
    resting, _ = account.place(
        kraken_account.OrderRequest(pair, Side.BUY, "limit", Decimal("0.001"), Decimal("20000")), now
    )
    for n in range(30):
        side = Side.BUY if n % 2 == 0 else Side.SELL
        account.place(kraken_account.OrderRequest(pair, side, "market", Decimal("0.001"), None), now + n)
    closed = account.closed_orders()
    assert len(closed) == 5 and closed[0].closetm_ns == int((now + 29) * 1e9)  # the newest five
    assert account.open_orders() == [resting]  # open orders are never dropped
    assert len(account.trades) == 8 and len(account.ledger) == 16
    assert max(t.time_ns for t in account.trades.values()) == int((now + 29) * 1e9)
    assert kraken_account.CLOSED_ORDERS_KEPT == kraken_account.OWN_TRADES_KEPT == 10_000  # the defaults


def test_primary_account_keeps_its_newest_ended_requests_and_every_active_one() -> None:
    exchange = PrimaryExchange(clock=FakeClock(), faults=PrimaryFaults(), seed=3)
    ids = primary_account.IdMaker(random.Random(1))
    account = primary_account.Account(
        "REM1", "PBCP", exchange.catalog, exchange.market, ids, {"ARS": Decimal(10**9)}, ended_kept=4
    )
    future = next(inst for inst in exchange.catalog.instruments if inst.kind == "future")
    now = exchange.clock.time()

    def request(
        side: str, ord_type: str, price: Decimal | None, tif: str = "DAY"
    ) -> primary_account.OrderRequest:
        return primary_account.OrderRequest(future, "REM1", side, ord_type, tif, Decimal(1), price)

    reports: list[dict[str, object]] = []
    account.listeners.append(lambda _account, report: reports.append(report))
    resting, _ = account.new_order(request("BUY", "LIMIT", future.tick), now)
    for n in range(12):  # takes the touch (the rest cancelled), or rejected (no price): each ends
        account.new_order(request("SELL" if n % 2 else "BUY", "MARKET_TO_LIMIT", None, "IOC"), now + n)
        account.new_order(request("BUY", "LIMIT", None), now + n)
    ended = [order for order in account.orders.values() if not order.active]
    assert len(ended) == 4 and [o.transact for o in ended] == [now + 10, now + 10, now + 11, now + 11]
    assert resting.active and account.orders[resting.cl_ord_id] is resting
    assert resting.order_id is not None and account.by_order_id(resting.order_id) is resting
    kept = {id(order) for order in account.orders.values()}
    for order in {id(o): o for o in [resting, *ended]}.values():
        assert account.by_exec_id(str(order.reports[-1]["execId"])) is order.reports[-1]
    dropped = [r for r in reports if r.get("execId") and r["clOrdId"] not in account.orders]
    assert dropped and all(account.by_exec_id(str(r["execId"])) is None for r in dropped)
    assert len(kept) == 5
    assert primary_account.ENDED_KEPT == 5_000  # the default


async def test_the_previous_close_is_the_same_however_late_it_is_asked_for() -> None:
    # Drawn when first asked for (not for 358 instruments at start-up): asked after the history was
    # read and the trades kept moved past the session's open, it is still the same close.
    early = PrimaryExchange(clock=FakeClock(), faults=PrimaryFaults(), seed=3)
    late_clock = FakeClock()
    late = PrimaryExchange(clock=late_clock, faults=PrimaryFaults(), seed=3)
    symbols = [inst.symbol for inst in early.catalog.instruments][:20]
    closes = {symbol: early.previous_close(symbol) for symbol in symbols}
    for symbol in symbols:
        late.market.trades(symbol)  # the past drawn, then pushed out by the live market
    await run_market(late_clock, late.step, hours=3.0, every=60.0)
    assert all(trade.time > late.session_open for trade in late.market.trades(symbols[0]))
    assert {symbol: late.previous_close(symbol) for symbol in symbols} == closes
