"""The simulated GGAL option books: quoted from the volatility surface around GGAL's live price.

On every market step the option market reads GGAL's book (the 24hs one, the options' own
settlement: its mid) and the peso 1-day caución (its last trade's TNA, else its mid, converted to a
continuous rate, so put-call parity holds at the caución's rate), prices every option from the
surface (vol_surface.py) and sets its book: a bid and an ask around the fair premium, then four
more levels on each side.

The quoting rule (all prices exactly on the 0.001 tick):
* spread s = (3 % of fair + ARS 0.50) × (1 + 0.25 × min(|z|, 4)), z = ln(K/F) / (vol × sqrt(t)) —
  cheap options get a wide spread relative to their price, far-from-the-money ones a wider one;
* bid = max(fair − s/2, fair/2) rounded down to the tick, ask = fair + s/2 rounded up: bid < fair <
  ask; a bid below one tick becomes one tick while the option is worth more than a tick, and
  there is no bid at all (an empty side) for an option worth less — never a zero or negative bid;
  American quotes (the default) never bid below the intrinsic value (rounded up to the tick), and
  no trade prints below it (a holder would exercise instead): there the bid is the intrinsic value
  and the ask 2·fair − bid (at least a tick above), so mid stays fair;
* deeper levels every max(tick, s/4) (rounded up to the tick); sizes fixed per option and level
  (drawn from the seed), so a requote moves prices, not sizes.
Now and then (about once every 90 s per option, and once each at the start) a trade prints inside
the spread, near mid.

Fault switches (PrimaryFaults): `option_arbitrage` quotes one option's ask 3 % below its intrinsic
value (an arbitrage the analytics must flag) while it is in the money; `freeze_underlying` holds
GGAL's books still (a stale underlying), the options keep being quoted from the frozen price.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import numpy as np

from brokerbridge.sim.faults import PrimaryFaults
from brokerbridge.sim.market import BookSide, Market, Side, StepResult
from brokerbridge.sim.primary.catalog import (
    OPTION_UNDERLYING,
    PESO_CAUCION_1D,
    Catalog,
    PrimaryInstrument,
    byma_symbol,
)
from brokerbridge.sim.primary.vol_surface import SurfaceParams, VolSurface, continuous_rate
from brokerbridge.venues.primary.wire_format import ART

LEVELS = 5  # per side: BYMA option books are thin
EXPIRY_TIME = dt.time(17, 0)  # Buenos Aires: the close of the expiry day's session
TRADE_EVERY_S = 90.0  # mean time between two trades of one option
ARBITRAGE_DISCOUNT = 0.03  # the arbitraged ask sits this share below intrinsic value
FALLBACK_TNA = 30.0  # % TNA if the caución's book is empty on both sides
SPREAD_SHARE = 0.03
SPREAD_MIN = 0.5  # ARS
SPREAD_FAR = 0.25  # extra spread per standard deviation away from the money (up to 4)
YEAR_S = 365.0 * 86_400.0


@dataclass(frozen=True, slots=True)
class OptionQuote:
    """What the option market quotes for one option, and why (the surface's numbers)."""

    symbol: str
    intrinsic: float  # on `spot`
    spot: float
    rate: float  # continuous
    t: float  # years to the expiry's close
    vol: float  # the surface's vol
    fair: float
    bid: Decimal | None
    ask: Decimal
    arbitrage: bool = False  # the `option_arbitrage` switch put the ask below intrinsic


class OptionMarket:
    def __init__(self, catalog: Catalog, market: Market, *, seed: int, american: bool = True) -> None:
        self.market = market
        self.surface = VolSurface(SurfaceParams.from_seed(seed))
        self.american = american
        self.options = quoted_options(catalog)
        self.underlying_symbol = byma_symbol(OPTION_UNDERLYING, "24hs")
        self.underlying_symbols = frozenset(
            byma_symbol(OPTION_UNDERLYING, settlement) for settlement in ("CI", "24hs")
        )
        self.rate_symbol = PESO_CAUCION_1D if catalog.get(PESO_CAUCION_1D) else None
        self._strikes = np.array([float(o.strike or 0.0) for o in self.options])
        self._is_call = np.array([o.cficode == "OCASPS" for o in self.options])
        self._expiry_s = np.array([_expiry_seconds(o.maturity_date or "") for o in self.options])
        self._rng = random.Random(f"primary-options-{seed}")
        self._sizes = {
            o.symbol: [
                max(1, round(float(o.level_qty) * math.exp(self._rng.gauss(-0.3, 0.6))))
                for _ in range(LEVELS)
            ]
            for o in self.options
        }
        self._key: tuple[float, float, int, str | None] | None = None
        self._last_s: float | None = None
        self.quotes: dict[str, OptionQuote] = {}

    # -- inputs ------------------------------------------------------------------------------------------
    def spot(self) -> float:
        """GGAL's live price: its 24hs book's mid (one side's best if the other is empty)."""
        return _mid(self.market, self.underlying_symbol) or self.market.fair(self.underlying_symbol)

    def tna(self) -> float:
        """The peso 1-day caución's TNA (%): its last trade, else its book's mid — the rule the
        options analytics read the rate by, so that parity holds at the rate they use."""
        if self.rate_symbol is None:
            return FALLBACK_TNA
        trades = self.market.trades(self.rate_symbol)
        if trades:
            return float(trades[-1].price)
        return _mid(self.market, self.rate_symbol) or FALLBACK_TNA

    # -- quoting -----------------------------------------------------------------------------------------
    def step(self, now: float, faults: PrimaryFaults) -> StepResult:
        """Quote every option from the current spot and rate; now and then a trade near mid."""
        result = StepResult()
        if not self.options:
            return result
        spot, tna = self.spot(), self.tna()
        key = (spot, tna, int(now // 60), faults.option_arbitrage)  # time moves the fair a minute at a time
        if key != self._key:  # else the books stand (≈ 9 steps in 10 at a 0.1 s tick)
            self._key = key
            self.quotes = self._quote(spot, tna, now, faults.option_arbitrage)
            for option in self.options:
                bids, asks = self._levels(option, self.quotes[option.symbol])
                result.merge(self.market.requote(option.symbol, bids, asks, now))
        # The first step prints one trade per option: the last price (LA) is the surface's from the
        # start, not the end of the drawn history (a walk of its own that may sit below intrinsic).
        elapsed = math.inf if self._last_s is None else max(0.0, min(now - self._last_s, 5.0))
        chance = 1.0 - math.exp(-elapsed / TRADE_EVERY_S)
        self._last_s = now
        for option in self.options:
            if self._rng.random() < chance:
                self._print_trade(option, self.quotes[option.symbol], now, result)
        return result

    def _quote(self, spot: float, tna: float, now: float, arbitrage: str | None) -> dict[str, OptionQuote]:
        rate = continuous_rate(tna)
        t = np.maximum((self._expiry_s - now) / YEAR_S, 0.0)
        fair, vol = self.surface.premiums(spot, self._strikes, t, self._is_call, rate, american=self.american)
        forward = spot * np.exp(rate * t)
        sd = np.maximum(vol * np.sqrt(np.maximum(t, 1e-9)), 1e-9)
        far = np.minimum(np.abs(np.log(self._strikes / forward)) / sd, 4.0)
        spread = (SPREAD_SHARE * fair + SPREAD_MIN) * (1.0 + SPREAD_FAR * far)
        target = self._arbitrage_target(arbitrage)
        quotes: dict[str, OptionQuote] = {}
        for index, option in enumerate(self.options):
            tick = option.tick
            f, s = float(fair[index]), float(spread[index])
            bid: Decimal | None = _to_tick(max(f - s / 2, f / 2), tick, ROUND_FLOOR)
            if bid is not None and bid < tick:
                bid = tick if f > float(tick) else None
            ask = _to_tick(f + s / 2, tick, ROUND_CEILING)
            strike = float(self._strikes[index])
            intrinsic = spot - strike if self._is_call[index] else strike - spot
            if self.american and intrinsic > 0:  # nobody sells an American option below exercise
                floor = _to_tick(intrinsic, tick, ROUND_CEILING)
                if bid is None or bid < floor:  # the bid rises to it, the ask keeps fair the mid
                    bid = floor
                    ask = max(_to_tick(2 * f - float(floor), tick, ROUND_CEILING), floor + tick)
            arb = False
            if option.symbol == target:
                cheap = _to_tick(intrinsic * (1 - ARBITRAGE_DISCOUNT), tick, ROUND_FLOOR)
                if intrinsic > 0 and cheap > tick:
                    ask, arb = cheap, True
                    bid = _to_tick(float(cheap) - s, tick, ROUND_FLOOR)
                    bid = bid if bid >= tick else None
            quotes[option.symbol] = OptionQuote(
                symbol=option.symbol,
                intrinsic=max(intrinsic, 0.0),
                spot=spot,
                rate=rate,
                t=float(t[index]),
                vol=float(vol[index]),
                fair=f,
                bid=bid,
                ask=ask,
                arbitrage=arb,
            )
        return quotes

    def _arbitrage_target(self, arbitrage: str | None) -> str | None:
        """The option the switch names: "auto" = the nearest expiry's lowest-strike call (the
        deepest in the money), else the option whose ticker or symbol it is (None if not listed)."""
        if arbitrage is None:
            return None
        if arbitrage == "auto":
            calls = [o for o in self.options if o.cficode == "OCASPS"]
            best = min(calls, key=lambda o: (o.maturity_date or "", o.strike or 0.0), default=None)
            return None if best is None else best.symbol
        return next((o.symbol for o in self.options if arbitrage in (o.ticker, o.symbol)), None)

    def _levels(
        self, option: PrimaryInstrument, quote: OptionQuote
    ) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        tick = option.tick
        width = quote.ask - quote.bid if quote.bid is not None else quote.ask
        gap = max(tick, _to_tick(float(width) / 4, tick, ROUND_CEILING))
        sizes = self._sizes[option.symbol]
        bids: list[tuple[Decimal, Decimal]] = []
        if quote.bid is not None:
            for level in range(LEVELS):
                price = quote.bid - gap * level
                if price < tick:
                    break
                bids.append((price, Decimal(sizes[level])))
        asks = [(quote.ask + gap * level, Decimal(sizes[-1 - level])) for level in range(LEVELS)]
        return bids, asks

    def _print_trade(
        self, option: PrimaryInstrument, quote: OptionQuote, now: float, result: StepResult
    ) -> None:
        low = quote.bid if quote.bid is not None else option.tick
        if self.american and not quote.arbitrage:
            low = max(low, _to_tick(quote.intrinsic, option.tick, ROUND_CEILING))
        mid = (float(low) + float(quote.ask)) / 2
        price = _to_tick(
            mid + self._rng.uniform(-0.25, 0.25) * float(quote.ask - low), option.tick, ROUND_FLOOR
        )
        price = min(max(price, low), quote.ask)
        taker = Side.BUY if float(price) >= mid else Side.SELL
        qty = Decimal(self._rng.randint(1, 20))
        result.trades.append(self.market.print_trade(option.symbol, taker, price, qty, now))


def quoted_options(catalog: Catalog) -> list[PrimaryInstrument]:
    """The options the surface quotes: all of them when GGAL 24hs is listed, else none (a trimmed
    catalogue's options walk on their own, as the market moves any instrument)."""
    if catalog.get(byma_symbol(OPTION_UNDERLYING, "24hs")) is None:
        return []
    return [inst for inst in catalog.instruments if inst.kind == "option"]


def _mid(market: Market, symbol: str) -> float | None:
    book = market.book(symbol)
    bid, ask = book.best(BookSide.BID), book.best(BookSide.ASK)
    if bid is not None and ask is not None:
        return float(bid + ask) / 2
    best = bid if bid is not None else ask
    return None if best is None else float(best)


def _to_tick(value: float, tick: Decimal, rounding: str) -> Decimal:
    return (Decimal(repr(value)) / tick).to_integral_value(rounding=rounding) * tick


def _expiry_seconds(maturity: str) -> float:
    """Epoch seconds of the expiry day's close in Buenos Aires ("YYYYMMDD")."""
    day = dt.datetime.strptime(maturity, "%Y%m%d").date()
    return dt.datetime.combine(day, EXPIRY_TIME, tzinfo=ART).timestamp()
