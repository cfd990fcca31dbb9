"""The simulated GGAL options: a volatility surface tied to GGAL, BYMA's expiry cycle, the switches.

The implied volatility is recovered here with scipy (a Black-Scholes written in this file and
Brent's root finder), not with the simulator's pricing code nor brokerbridge.core.options.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

import httpx
import numpy as np
import pytest
from primary_helpers import step
from scipy.optimize import brentq
from scipy.stats import norm

from brokerbridge.core.clock import FakeClock
from brokerbridge.core.options.calendar import MarketCalendar, byma_calendar
from brokerbridge.sim.faults import PrimaryFaults
from brokerbridge.sim.market import BookSide, StepResult
from brokerbridge.sim.primary import PrimarySimulator
from brokerbridge.sim.primary.catalog import (
    PESO_CAUCION_1D,
    PrimaryInstrument,
    byma_symbol,
    option_expiries,
    option_strikes,
    option_ticker,
)
from brokerbridge.sim.primary.exchange import PrimaryExchange
from brokerbridge.sim.primary.option_market import OptionMarket
from brokerbridge.sim.primary.vol_surface import SurfaceParams, VolSurface

GGAL_24 = byma_symbol("GGAL", "24hs")
TICK = Decimal("0.001")
ART = dt.timezone(dt.timedelta(hours=-3))
MONDAY = dt.datetime(2026, 12, 7, 14, 0, tzinfo=dt.UTC).timestamp()  # 11:00 in Buenos Aires


# -- an independent Black-Scholes --------------------------------------------------------------------
def bs(spot: float, strike: float, t: float, vol: float, rate: float, call: bool) -> float:
    sd = vol * math.sqrt(t)
    d1 = (math.log(spot / strike) + (rate + vol * vol / 2) * t) / sd
    d2 = d1 - sd
    if call:
        return float(spot * norm.cdf(d1) - strike * math.exp(-rate * t) * norm.cdf(d2))
    return float(strike * math.exp(-rate * t) * norm.cdf(-d2) - spot * norm.cdf(-d1))


def vega(spot: float, strike: float, t: float, vol: float, rate: float) -> float:
    d1 = (math.log(spot / strike) + (rate + vol * vol / 2) * t) / (vol * math.sqrt(t))
    return float(spot * norm.pdf(d1) * math.sqrt(t))


def implied_vol(price: float, spot: float, strike: float, t: float, rate: float, call: bool) -> float:
    return float(brentq(lambda v: bs(spot, strike, t, v, rate, call) - price, 1e-4, 5.0, xtol=1e-12))


def book_mid(x: PrimaryExchange, symbol: str) -> float:
    book = x.market.book(symbol)
    bid, ask = book.best(BookSide.BID), book.best(BookSide.ASK)
    assert bid is not None and ask is not None
    return float(bid + ask) / 2


def years_to(inst: PrimaryInstrument, now: float) -> float:
    day = dt.datetime.strptime(inst.maturity_date or "", "%Y%m%d").date()
    close = dt.datetime.combine(day, dt.time(17, 0), tzinfo=ART).timestamp()
    return (close - now) / (365 * 86_400)


def caucion_rate(x: PrimaryExchange) -> float:
    """The peso 1-day caución's last trade (% TNA, simple ACT/365) as a continuous rate."""
    tna = float(x.market.trades(PESO_CAUCION_1D)[-1].price)
    return math.log(1 + tna / 100 / 365) * 365


def options_of(x: PrimaryExchange) -> list[PrimaryInstrument]:
    return [inst for inst in x.catalog.instruments if inst.kind == "option"]


@pytest.fixture
def monday() -> FakeClock:
    return FakeClock(start=1_000.0, wall_start=MONDAY)


@pytest.fixture
def exchange(monday: FakeClock) -> PrimaryExchange:
    return PrimaryExchange(clock=monday, faults=PrimaryFaults(), seed=7)


# -- BYMA's cycle and the catalogue -------------------------------------------------------------------
def test_expiry_cycle_three_even_months_and_the_nearest_odd() -> None:
    byma = byma_calendar()
    d = dt.date
    assert option_expiries(d(2026, 12, 7), byma) == [
        d(2026, 12, 18),
        d(2027, 1, 15),
        d(2027, 2, 19),
        d(2027, 4, 16),
    ]
    # The December series still trades on its expiry day; the day after it is gone.
    assert option_expiries(d(2026, 12, 18), byma)[0] == d(2026, 12, 18)
    assert option_expiries(d(2026, 12, 19), byma) == [
        d(2027, 1, 15),
        d(2027, 2, 19),
        d(2027, 4, 16),
        d(2027, 6, 18),
    ]
    for day in option_expiries(d(2026, 12, 7), byma):
        assert byma.is_business_day(day) and day.weekday() == 4
    # A third Friday that is a holiday: the series expires the business day before it.
    closed = MarketCalendar({d(2026, 12, 18): "test closure", d(2026, 12, 17): "test closure"})
    assert option_expiries(d(2026, 12, 7), closed)[0] == d(2026, 12, 16)


def test_strikes_and_tickers() -> None:
    assert option_strikes(Decimal(7150)) == [6000, 6500, 7000, 7500, 8000, 8500]
    assert option_strikes(Decimal(905)) == [750, 800, 850, 900, 950, 1000, 1050]
    assert option_ticker("GFG", "C", 7000, dt.date(2026, 12, 18)) == "GFGC7000DI"
    assert option_ticker("GFG", "V", 6500, dt.date(2027, 1, 15)) == "GFGV6500EN"
    assert option_ticker("GFG", "C", 10500, dt.date(2027, 2, 19)) == "GFGC10500F"  # 10 characters


def test_option_details_carry_the_facts(exchange: PrimaryExchange) -> None:
    options = options_of(exchange)
    assert len(options) == 4 * 6 * 2
    expiries = sorted({o.maturity_date for o in options})
    assert expiries == ["20261218", "20270115", "20270219", "20270416"]
    for inst in options:
        detail = inst.detail()
        strike = int(detail["strike"])
        assert detail["cficode"] in ("OCASPS", "OPASPS")
        right = "C" if detail["cficode"] == "OCASPS" else "V"
        expiry = dt.datetime.strptime(detail["maturityDate"], "%Y%m%d").date()
        assert inst.ticker == option_ticker("GFG", right, strike, expiry)
        assert detail["roundLot"] == 100.0 and detail["contractMultiplier"] == 1.0
        assert detail["underlying"] == "Grupo Financiero Galicia Merval"
        assert detail["minPriceIncrement"] == 0.001


# -- the surface ----------------------------------------------------------------------------------------
def test_smile_puts_richer_and_term_structure() -> None:
    params = SurfaceParams()
    surface = VolSurface(params)
    spot, rate = 7000.0, 0.3
    for t in (10 / 365, 0.25, 1.0):
        forward = spot * math.exp(rate * t)
        sd = math.sqrt(t)
        strikes = forward * np.exp(np.array([-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5]) * sd)
        vols = surface.vol(spot, strikes, np.full(7, t), rate)
        atm = float(surface.atm_vol(t))
        assert vols[3] == pytest.approx(atm, abs=1e-12)  # at the forward: the term structure's vol
        for k in range(3):  # skew: a low strike (put side) is dearer than the mirror high strike
            assert vols[k] > vols[6 - k]
        assert vols[0] > vols[1] > vols[2] > vols[3]  # puts richer the further out
        assert vols[6] > vols[5]  # the call wing turns up again (a smile, not a straight skew)
        assert min(vols) > 0.5 * atm
    atms = [float(surface.atm_vol(t)) for t in (1 / 365, 0.1, 0.25, 0.5, 1.0, 5.0)]
    assert atms == sorted(atms)  # upward sloping from atm_short toward atm_long
    assert atms[0] == pytest.approx(params.atm_short, abs=0.002)
    assert atms[-1] == pytest.approx(params.atm_long, abs=0.001)
    # Seeded: the same seed, the same surface; another seed, another one.
    assert SurfaceParams.from_seed(7) == SurfaceParams.from_seed(7) != SurfaceParams.from_seed(8)


# -- the quotes -----------------------------------------------------------------------------------------
def assert_sane_book(x: PrimaryExchange, spot: float) -> None:
    for inst in options_of(x):
        book = x.market.book(inst.symbol)
        bids, asks = book.levels(BookSide.BID), book.levels(BookSide.ASK)
        assert asks, inst.symbol
        for price, qty in bids + asks:
            assert price % TICK == 0 and price > 0 and qty > 0, (inst.symbol, price)
        assert not bids or bids[0][0] < asks[0][0]
        intrinsic = max(0.0, (spot - inst.strike) if inst.cficode == "OCASPS" else (inst.strike or 0) - spot)
        assert float(asks[0][0]) > intrinsic, inst.symbol  # no arbitrage without the switch (American)
        assert not bids or float(bids[0][0]) >= intrinsic  # nobody sells below exercise (American)
        quote = x.options.quotes[inst.symbol]
        if quote.fair > float(TICK):
            assert bids and bids[0][0] >= TICK  # a bid wherever the option is worth something


def test_quotes_on_tick_bid_below_ask_and_no_arbitrage(exchange: PrimaryExchange) -> None:
    assert_sane_book(exchange, book_mid(exchange, GGAL_24))
    spreads = {}
    for inst in options_of(exchange):
        book = exchange.market.book(inst.symbol)
        bid, ask = book.best(BookSide.BID), book.best(BookSide.ASK)
        assert bid is not None and ask is not None
        spreads[inst.ticker] = float(ask - bid) / float(ask + bid) * 2
        # The last price is the surface's from the start (a trade inside the quote), not the drawn
        # history's end.
        assert bid <= exchange.market.trades(inst.symbol)[-1].price <= ask
    # Cheap (far out of the money) options have the widest spreads relative to their price.
    assert spreads["GFGC8500DI"] > 5 * spreads["GFGC7000DI"]
    assert spreads["GFGV6000DI"] > 5 * spreads["GFGV7000DI"]


@pytest.mark.parametrize("american", [True, False])
def test_european_iv_from_mid_is_the_surface_vol(exchange: PrimaryExchange, american: bool) -> None:
    """From the book's mid, GGAL's mid and the caución (what a client sees), Black-Scholes gives back
    the surface's vol within what the tick allows (the quote is symmetric around fair to a tick).
    American quotes: calls only (without dividends they are European); European ones: puts too."""
    x = exchange
    now = x.clock.time()
    x.options = OptionMarket(x.catalog, x.market, seed=7, american=american)
    x.options.step(now, x.faults)
    spot, rate = book_mid(x, GGAL_24), caucion_rate(x)
    surface = VolSurface(SurfaceParams.from_seed(7))
    checked = 0
    for inst in options_of(x):
        call = inst.cficode == "OCASPS"
        if american and not call:
            continue
        strike, t = float(inst.strike or 0), years_to(inst, now)
        mid = book_mid(x, inst.symbol)
        expected = float(surface.vol(spot, np.array([strike]), np.array([t]), rate)[0])
        fair = bs(spot, strike, t, expected, rate, call)
        if fair / 2 > fair - (0.03 * fair + 0.5) * 3:  # the cheap-option bid rule: mid is not centred
            continue
        intrinsic = max(spot - strike if call else strike - spot, 0.0)
        if american and float(x.market.book(inst.symbol).best(BookSide.BID) or 0) <= intrinsic + 0.001:
            continue  # bid raised to the intrinsic value (American): mid is not centred
        tolerance = float(TICK) / vega(spot, strike, t, expected, rate) + 1e-7
        assert implied_vol(mid, spot, strike, t, rate, call) == pytest.approx(expected, abs=tolerance), (
            inst.ticker
        )
        checked += 1
    assert checked >= (20 if american else 40)


def test_american_puts_are_worth_their_early_exercise(exchange: PrimaryExchange) -> None:
    """At a caución rate near 30 %, a deep in-the-money European put is worth less than its
    intrinsic value; the simulator's (American) put never is, and is dearer than the European."""
    x = exchange
    spot, rate, now = book_mid(x, GGAL_24), caucion_rate(x), x.clock.time()
    deep = next(o for o in options_of(x) if o.ticker == "GFGV8500AB")
    quote = x.options.quotes[deep.symbol]
    european = bs(spot, 8500, years_to(deep, now), quote.vol, rate, call=False)
    assert european < 8500 - spot < quote.fair
    assert european < quote.fair


async def test_prices_follow_the_underlying(exchange: PrimaryExchange, monday: FakeClock) -> None:
    x = exchange
    atm_call = next(o.symbol for o in options_of(x) if o.ticker == "GFGC7000DI")
    atm_put = next(o.symbol for o in options_of(x) if o.ticker == "GFGV7000DI")
    spot0, call0, put0 = book_mid(x, GGAL_24), book_mid(x, atm_call), book_mid(x, atm_put)
    changed: set[str] = set()
    for _ in range(400):
        await monday.advance(5.0, settle=0)
        changed.update(x.step().book_changes)
        if abs(book_mid(x, GGAL_24) - spot0) >= 20:
            break
    move = book_mid(x, GGAL_24) - spot0
    assert abs(move) >= 20
    sign = 1 if move > 0 else -1
    assert sign * (book_mid(x, atm_call) - call0) > 5  # delta ≈ 0.6: a call follows the share
    assert sign * (book_mid(x, atm_put) - put0) < -5  # and a put goes the other way
    assert {o.symbol for o in options_of(x)} <= changed  # every option's book moved (Md frames)
    assert_sane_book(x, book_mid(x, GGAL_24))


async def test_trades_print_near_mid_now_and_then(exchange: PrimaryExchange, monday: FakeClock) -> None:
    x = exchange
    options = {o.symbol for o in options_of(x)}
    printed = 0
    for _ in range(120):  # 10 minutes
        await monday.advance(5.0, settle=0)
        result: StepResult = x.step()
        for trade in result.trades:
            if trade.symbol in options:
                quote = x.options.quotes[trade.symbol]
                low = quote.bid if quote.bid is not None else TICK
                assert low <= trade.price <= quote.ask and trade.price % TICK == 0
                assert (
                    abs(float(trade.price) - float(low + quote.ask) / 2) <= float(quote.ask - low) / 4 + 0.001
                )
                printed += 1
    assert 48 * 600 / 90 / 2 < printed < 48 * 600 / 90 * 2  # about one per option every 90 s


# -- the switches, through the control endpoint (loopback) ----------------------------------------------
async def control(http: httpx.AsyncClient, sim: PrimarySimulator, changes: dict[str, Any]) -> httpx.Response:
    return await http.post(sim.endpoints.control + "/faults", json=changes)


async def rest_book(http: httpx.AsyncClient, auth: dict[str, str], symbol: str) -> tuple[float, float]:
    query = {"marketId": "ROFX", "symbol": symbol, "entries": "BI,OF,LA", "depth": 1}
    body = (await http.get("rest/marketdata/get", params=query, headers=auth)).json()
    assert body["status"] == "OK", body
    md = body["marketData"]
    return md["BI"][0]["price"], md["OF"][0]["price"]


async def test_arbitrage_switch_puts_an_ask_below_intrinsic(
    sim: PrimarySimulator, http: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
) -> None:
    x = sim.exchange
    calls = sorted(
        (o for o in options_of(x) if o.cficode == "OCASPS"),
        key=lambda o: (o.maturity_date or "", o.strike or 0),
    )
    target = calls[0]  # "auto": the nearest expiry's lowest strike (the deepest in the money)

    async def ask_and_intrinsic(symbol: str, strike: float) -> tuple[float, float]:
        bid, ask = await rest_book(http, auth, GGAL_24)
        _, option_ask = await rest_book(http, auth, symbol)
        return option_ask, (bid + ask) / 2 - strike

    ask, intrinsic = await ask_and_intrinsic(target.symbol, target.strike or 0)
    assert ask > intrinsic > 0
    assert (await control(http, sim, {"option_arbitrage": "auto"})).status_code == 200
    await step(clock, 0.5)
    ask, intrinsic = await ask_and_intrinsic(target.symbol, target.strike or 0)
    assert ask < intrinsic * 0.98  # an arbitrage: buy the call, exercise, sell the shares
    other = calls[1]
    ask, intrinsic = await ask_and_intrinsic(other.symbol, other.strike or 0)
    assert ask > intrinsic  # only the one named
    # By ticker: that option instead.
    assert (await control(http, sim, {"option_arbitrage": other.ticker})).status_code == 200
    await step(clock, 0.5)
    ask, intrinsic = await ask_and_intrinsic(other.symbol, other.strike or 0)
    assert ask < intrinsic * 0.98
    ask, intrinsic = await ask_and_intrinsic(target.symbol, target.strike or 0)
    assert ask > intrinsic
    bad = await control(http, sim, {"option_arbitrage": "GGAL"})
    assert bad.status_code == 400 and "option_arbitrage" in bad.text
    assert (await control(http, sim, {"option_arbitrage": None})).status_code == 200
    await step(clock, 0.5)
    ask, intrinsic = await ask_and_intrinsic(other.symbol, other.strike or 0)
    assert ask > intrinsic


async def test_freeze_underlying_holds_ggal_still(
    sim: PrimarySimulator, http: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
) -> None:
    x = sim.exchange

    def ggal_state() -> tuple[Any, ...]:
        book = x.market.book(GGAL_24)
        return (
            book.levels(BookSide.BID, 5),
            book.levels(BookSide.ASK, 5),
            x.market.trades(GGAL_24)[-1].trade_id,
        )

    assert (await control(http, sim, {"freeze_underlying": True})).status_code == 200
    frozen = ggal_state()
    await step(clock, 30)
    assert ggal_state() == frozen
    assert await rest_book(http, auth, GGAL_24) == (float(frozen[0][0][0]), float(frozen[1][0][0]))
    assert (await control(http, sim, {"freeze_underlying": False})).status_code == 200
    await step(clock, 30)
    assert ggal_state() != frozen


def test_a_series_past_its_close_is_quoted_at_intrinsic_value() -> None:
    """Started on an expiry day after 17:00 Buenos Aires: the December series is still listed (it
    expired today), priced at its intrinsic value — a sane book, no crash, no NaN."""
    evening = dt.datetime(2026, 12, 18, 21, 30, tzinfo=dt.UTC).timestamp()  # 18:30 in Buenos Aires
    x = PrimaryExchange(clock=FakeClock(start=1_000.0, wall_start=evening), faults=PrimaryFaults(), seed=7)
    spot = book_mid(x, GGAL_24)
    december = [o for o in options_of(x) if o.maturity_date == "20261218"]
    assert len(december) == 12
    for inst in december:
        quote = x.options.quotes[inst.symbol]
        intrinsic = max(
            spot - (inst.strike or 0) if inst.cficode == "OCASPS" else (inst.strike or 0) - spot, 0.0
        )
        assert quote.t == 0.0 and quote.fair == pytest.approx(intrinsic, abs=1e-9)
        assert math.isfinite(quote.vol)
    assert_sane_book(x, spot)
