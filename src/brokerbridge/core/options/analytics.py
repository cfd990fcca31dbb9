"""One option chain's quotes → `OptionAnalytics` events: IVs, greeks, intrinsic and time value,
the put-call-parity rate, the covered-call rate — each with a reason where it must stay empty.

Pure: `ChainInputs` (contracts from the venue's details, the latest quotes, the spot, the rate,
the dividends, `now`, the calendar) in, events out — the same events whatever the optional
`memo` (a `ChainMemo` the caller keeps across calls on one chain) and `guesses` (the previous IVs,
the solver's starting points) hold. The service (services/options.py) keeps the inputs current and
calls `analyze_chain` on every tick, with the options that changed; the benchmark
(bench/options_chain.py) calls it alone.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

import msgspec
import numpy as np

from brokerbridge.core.events import OptionAnalytics
from brokerbridge.core.options.american import american_greeks
from brokerbridge.core.options.black_scholes import BoolArray, FloatArray, european_greeks
from brokerbridge.core.options.calendar import MarketCalendar
from brokerbridge.core.options.implied_vol import IvStatus, implied_vol
from brokerbridge.core.options.rates import CONFIGURED, RateInput, dividends_pv
from brokerbridge.core.options.views import ExpiryChain, OptionChain

__all__ = [
    "ChainInputs",
    "ChainMemo",
    "OptionContract",
    "Quote",
    "RateInput",
    "analyze_chain",
    "chain_view",
    "spot_price",
]


class OptionContract(msgspec.Struct, frozen=True, kw_only=True):
    """What the venue's instrument details say of one option (venues/primary/options.py builds it)."""

    symbol: str
    underlying: str  # the underlying's ticker (GGAL)
    option_type: str  # call | put
    strike: Decimal
    expiry: dt.date
    lot: Decimal | None = None


class Quote(msgspec.Struct, frozen=True, kw_only=True):
    """The latest top of book and last trade of an instrument, and when they arrived."""

    bid: Decimal | None = None
    ask: Decimal | None = None
    last: Decimal | None = None
    ts: float | None = None  # epoch seconds of the newest of these


@dataclass(frozen=True, slots=True)
class ChainInputs:
    venue: str
    underlying: str  # ticker
    underlying_symbol: str | None
    contracts: tuple[OptionContract, ...]  # one expiry or several
    quotes: dict[str, Quote]  # option symbol → its latest quote (absent: none yet)
    spot: Quote | None  # the underlying's latest quote
    spot_stale: str | None  # why the underlying's price is not current (None: it is)
    rate: RateInput | None
    model: str  # "american" | "european"
    now: float  # epoch seconds
    calendar: MarketCalendar
    time_basis: str = "calendar"  # "calendar" (days/365) | "business" (sessions/252)
    expiry_time: dt.time = dt.time(17, 0)  # Buenos Aires
    dividends: tuple[tuple[dt.date, Decimal], ...] = field(default=())  # (ex-date, amount per share)
    # What the previous call on this chain worked out that this one may reuse (None: nothing; the
    # figures are the same either way): see `ChainMemo`.
    memo: ChainMemo | None = None
    # Option symbol → its previous IVs of this model (bid, ask, last, mid; None or NaN: none), the
    # solver's starting points: a tick moves an IV little, so the American solver needs fewer
    # rounds. The figures do not depend on them beyond the solver's tolerance.
    guesses: Mapping[str, Sequence[float | None]] | None = None


# Argentina keeps UTC−3 all year (no daylight saving since 2009): a fixed offset, no tz database.
BUENOS_AIRES = dt.timezone(dt.timedelta(hours=-3), "ART")
DAY = 86400.0
BUSINESS_YEAR = 252.0
FIGURES = ("bid", "ask", "last", "mid")  # the prices an IV is solved from, in this order
# A covered call's TEA compounds its rate 365/days times: beyond this (% a year) a figure only
# says "the expiry is hours away", so it is left empty with that reason.
MAX_TEA = 1e6
# A price within half a tick of BYMA's options (0.001) of the model's lower bound sits on it: said
# so, rather than "below the bound by 0.000".
AT_BOUND = 0.0005
_IV_KEYS = tuple("iv_" + name for name in FIGURES)
_ZERO = Decimal(0)  # compared with, not 0: a Decimal against an int converts the int every time
_OK = int(IvStatus.OK)  # read once: an IntEnum member lookup costs ~1 µs, 1,600 times a chain
_NO_PRICE, _BELOW_INTRINSIC = int(IvStatus.NO_PRICE), int(IvStatus.BELOW_INTRINSIC)
_ABOVE_MAXIMUM, _NOT_CONVERGED = int(IvStatus.ABOVE_MAXIMUM), int(IvStatus.NOT_CONVERGED)
_TEA_TOO_CLOSE = "the TEA compounds too many times so close to the expiry to mean anything"


class _Term(NamedTuple):
    """One expiry seen from `now`."""

    days: float  # calendar days (fractional) to the expiry's close
    business_days: int
    t: float  # model years (0 when expired)
    covered: bool  # the holiday data reaches the expiry's year
    dividends_pv: float
    dividends_cash: Decimal  # the same dividends' amounts, undiscounted
    expiry: str  # ISO date, once per expiry rather than per option
    expired: bool  # the expiry's close has passed
    shown_t: float | None  # `t` as the events show it (none once expired)
    reasons: dict[str, str]  # what every option of the expiry says: the chain's, the holiday data's


class _Shape(NamedTuple):
    """What a chain's contracts say, whatever the quotes: worked out once per contracts tuple."""

    contracts: tuple[OptionContract, ...]
    symbols: list[str]
    calls: list[bool]
    is_call: BoolArray
    strike: FloatArray
    expiries: list[dt.date]  # each once, in the order they first come
    expiry_index: list[int]  # each option's, into `expiries`
    at: np.ndarray[tuple[int], np.dtype[np.intp]]  # the same as an array
    pair_calls: np.ndarray[tuple[int], np.dtype[np.intp]]  # put-call parity's pairs: the call,
    pair_puts: np.ndarray[tuple[int], np.dtype[np.intp]]  # and the put of the same expiry and strike


def _shape_of(contracts: tuple[OptionContract, ...]) -> _Shape:
    index: dict[dt.date, int] = {}
    expiry_index: list[int] = []
    calls: list[bool] = []
    call_at: dict[tuple[dt.date, Decimal], int] = {}
    put_at: dict[tuple[dt.date, Decimal], int] = {}
    for i, c in enumerate(contracts):
        k = index.get(c.expiry)
        if k is None:
            k = index[c.expiry] = len(index)
        expiry_index.append(k)
        call = c.option_type == "call"
        calls.append(call)
        (call_at if call else put_at)[c.expiry, c.strike] = i
    both = np.array([(k, put_at[key]) for key, k in call_at.items() if key in put_at], np.intp).reshape(-1, 2)
    return _Shape(
        contracts,
        [c.symbol for c in contracts],
        calls,
        np.array(calls, np.bool_),
        np.array([float(c.strike) for c in contracts], np.float64),
        list(index),
        expiry_index,
        np.array(expiry_index, np.intp),
        both[:, 0].copy(),
        both[:, 1].copy(),
    )


class ChainMemo:
    """What `analyze_chain` keeps from one call on a chain to the next: the contracts' shape (kinds,
    strikes as floats, expiries, parity pairs) and each quote's floats and exact mid, worked out
    again only for a quote that is not the very object it read last time (the service replaces an
    option's `Quote` on its tick and keeps the others). A memo never changes a figure — a fresh
    one, or none, gives the same events — it saves ~0.4 ms of Decimal conversions and dict
    building a 400-option chain. One memo per chain and caller (the service keeps one per
    underlying and model); not shared between threads."""

    __slots__ = ("_seen", "_shape", "asks", "bids", "has_mid", "lasts", "mids", "prices")

    def __init__(self) -> None:
        self._shape: _Shape | None = None
        self._seen: list[Quote | None] = []
        self.bids: list[float] = []
        self.asks: list[float] = []
        self.lasts: list[float] = []
        self.mids: list[Decimal | None] = []  # values only: `_mid` words the reason where one is needed
        self.has_mid: list[bool] = []
        self.prices: FloatArray | None = None  # FIGURES × options, read-only; None: to build again

    def shape_of(self, contracts: tuple[OptionContract, ...]) -> _Shape:
        shape = self._shape
        if shape is None or (shape.contracts is not contracts and shape.contracts != contracts):
            shape = self._shape = _shape_of(contracts)
            n = len(contracts)
            # As for an option with no quote: a quote read later is then one that changed.
            self._seen = [None] * n
            self.bids, self.asks, self.lasts = [math.nan] * n, [math.nan] * n, [math.nan] * n
            self.mids, self.has_mid = [None] * n, [False] * n
            self.prices = None
        return shape

    def read(self, shape: _Shape, quotes: dict[str, Quote]) -> list[Quote | None]:
        """Each option's quote, in `shape`'s order; the floats and mids of those that changed."""
        current = list(map(quotes.get, shape.symbols))
        # A list compares its items by identity first: an underlying's tick (no option quote
        # changed) costs one C pass, and the prices array of the last call is kept.
        if current == self._seen and self.prices is not None:
            return current
        self.prices = None
        nan = math.nan
        bids, asks, lasts, mids, has_mid = self.bids, self.asks, self.lasts, self.mids, self.has_mid
        for i, (quote, before) in enumerate(zip(current, self._seen, strict=True)):
            if quote is before:
                continue
            if quote is None:
                bids[i] = asks[i] = lasts[i] = nan
                mids[i] = None
                has_mid[i] = False
                continue
            b, a, last = quote.bid, quote.ask, quote.last
            bids[i] = nan if b is None else float(b)
            asks[i] = nan if a is None else float(a)
            lasts[i] = nan if last is None else float(last)
            # The same test as `_mid`'s, inline: no tuple per option.
            mid = (b + a) / 2 if b is not None and a is not None and _ZERO < b <= a else None
            mids[i] = mid
            has_mid[i] = mid is not None
        self._seen = current
        return current


class SpotPrice(NamedTuple):
    price: Decimal | None
    source: str  # "mid", "last", or why there is none


def buy_price(quote: Quote | None) -> Decimal | None:
    """What buying the underlying costs now: its ask, else its price (`spot_price`)."""
    if quote is not None and quote.ask is not None and quote.ask > 0:
        return quote.ask
    return spot_price(quote).price


def spot_price(quote: Quote | None) -> SpotPrice:
    """The underlying's price the models use: the mid when both sides are quoted (and not crossed),
    else the last trade."""
    if quote is None:
        return SpotPrice(None, "no price of the underlying yet")
    if quote.bid is not None and quote.ask is not None and 0 < quote.bid <= quote.ask:
        return SpotPrice((quote.bid + quote.ask) / 2, "mid")
    if quote.last is not None and quote.last > 0:
        return SpotPrice(quote.last, "last")
    return SpotPrice(None, "the underlying has no bid and ask and no last trade")


def _mid(quote: Quote | None) -> tuple[Decimal | None, str]:
    """An option's mid (exact: the venue's digits and at most one more, not rounded to the tick, so
    the IV of the mid is the IV of the true midpoint), else why not."""
    if quote is None or quote.bid is None or quote.ask is None:
        return None, "no mid: it needs both a bid and an ask"
    if quote.bid <= 0 or quote.ask <= 0:
        return None, "no mid: a side is not a positive price"
    if quote.bid > quote.ask:
        return None, f"no mid: the bid {quote.bid} is above the ask {quote.ask} (a crossed book)"
    return (quote.bid + quote.ask) / 2, ""


def _term(
    inputs: ChainInputs,
    expiry: dt.date,
    today: dt.date,
    midnight: float,
    rate: float,
    chain_reasons: dict[str, str],
) -> _Term:
    close = dt.datetime.combine(expiry, inputs.expiry_time, BUENOS_AIRES).timestamp()
    days = (close - inputs.now) / DAY
    business = inputs.calendar.business_days(today, expiry)
    if days <= 0:
        t = 0.0
    elif inputs.time_basis == "business":
        # Sessions after today, plus what is left of today (as a fraction of the calendar day up to
        # the close) when today trades: an expiry today keeps a positive t until its close.
        today_close = midnight + (close - dt.datetime.combine(expiry, dt.time(0), BUENOS_AIRES).timestamp())
        left = min(max((today_close - inputs.now) / DAY, 0.0), 1.0)
        t = (business + (left if inputs.calendar.is_business_day(today) else 0.0)) / BUSINESS_YEAR
    else:
        t = days / 365.0
    pv = dividends_pv(
        inputs.dividends, today=today, expiry=expiry, now=inputs.now, midnight=midnight, rate=rate
    )
    cash = sum((amount for ex, amount in inputs.dividends if today < ex <= expiry), Decimal(0))
    covered = inputs.calendar.covers(expiry)
    reasons = dict(chain_reasons)
    if not covered:
        reasons["business_days"] = (
            f"the holiday calendar ends with {inputs.calendar.last_year}: beyond it only weekends are "
            "counted (add the closures to [options] holidays_file)"
        )
    expired = days <= 0
    return _Term(
        days, business, t, covered, pv, cash, expiry.isoformat(), expired, None if expired else t, reasons
    )


def analyze_chain(inputs: ChainInputs) -> list[OptionAnalytics]:
    """One event per contract, in `inputs.contracts` order.

    The figures are numpy passes over the whole chain; one loop then builds the events. An option
    whose figures are all there and plain (live, four IVs, greeks, a parity pair, a covered call
    for a call) takes no reason of its own but its chain's and its expiry's (and a negative time
    value's); any other is worded by `_reasons`, which is the only place a reason is written."""
    contracts = inputs.contracts
    n = len(contracts)
    if n == 0:
        return []
    now_local = dt.datetime.fromtimestamp(inputs.now, BUENOS_AIRES)
    today = now_local.date()
    midnight = dt.datetime.combine(today, dt.time(0), BUENOS_AIRES).timestamp()
    spot = spot_price(inputs.spot)
    rate = inputs.rate.rate if inputs.rate is not None else None
    chain_reasons = _chain_reasons(inputs, spot)
    memo = inputs.memo if inputs.memo is not None else ChainMemo()
    shape = memo.shape_of(contracts)
    terms = [_term(inputs, e, today, midnight, rate or 0.0, chain_reasons) for e in shape.expiries]
    of_term = [terms[k] for k in shape.expiry_index] if len(terms) > 1 else terms * n
    quotes = memo.read(shape, inputs.quotes)
    mids = memo.mids

    # Arrays over the whole chain: every figure below is one numpy pass.
    is_call, strike, at = shape.is_call, shape.strike, shape.at
    calls = shape.calls
    days = np.array([term.days for term in terms])[at]
    t = np.array([term.t for term in terms])[at]
    pv = np.array([term.dividends_pv for term in terms])[at]
    prices = memo.prices
    if prices is None:
        bids, asks = np.array(memo.bids, np.float64), np.array(memo.asks, np.float64)
        has_mid = np.array(memo.has_mid, np.bool_)
        # The Decimal mid's float: (bid + ask) / 2 in floats, where `_mid` found one.
        mid_f = np.where(has_mid, (bids + asks) / 2, np.nan)
        prices = memo.prices = np.vstack((bids, asks, np.array(memo.lasts, np.float64), mid_f))
        prices.setflags(write=False)  # kept for the next call: read, never written
    bid_f = prices[0]
    spot_f = float(spot.price) if spot.price is not None else np.nan
    escrowed = spot_f - pv  # the spot the models see: less the dividends' present value
    live = (t > 0) & np.isfinite(escrowed) & (escrowed > 0) & (rate is not None)
    r = np.full(n, rate if rate is not None else np.nan)
    q0 = np.zeros(n)

    # The four IVs in one solver call: (4, n) flattened, only where there is a price to solve.
    iv = np.full((4, n), np.nan)
    status = np.full((4, n), -1, np.int8)
    solve = live[np.newaxis, :] & np.isfinite(prices)
    if solve.any():
        rows, cols = np.nonzero(solve)
        guess = _guesses(inputs.guesses, shape.symbols)[rows, cols] if inputs.guesses else None
        found = implied_vol(
            prices[rows, cols],
            is_call[cols],
            escrowed[cols],
            strike[cols],
            t[cols],
            r[cols],
            q0[cols],
            model=inputs.model,  # type: ignore[arg-type]
            guess=guess,
        )
        iv[rows, cols] = np.where(found.status == IvStatus.OK, found.vol, np.nan)
        status[rows, cols] = found.status

    # Greeks at the mid's IV, else the last's; none at all where the model gave any of them as NaN.
    from_mid = np.isfinite(iv[3])
    vol = np.where(from_mid, iv[3], iv[2])
    with_greeks = live & np.isfinite(vol)
    greeks = np.full((5, n), np.nan)  # delta, gamma, vega, theta, rho
    if with_greeks.any():
        g = np.nonzero(with_greeks)[0]
        greeks_of = american_greeks if inputs.model == "american" else european_greeks
        found_greeks = greeks_of(is_call[g], escrowed[g], strike[g], t[g], r[g], q0[g], vol[g])
        greeks[0, g] = found_greeks.delta
        greeks[1, g] = found_greeks.gamma
        greeks[2, g] = found_greeks.vega / 100.0  # per vol point
        greeks[3, g] = found_greeks.theta / 365.0  # per calendar day
        greeks[4, g] = found_greeks.rho / 100.0  # per rate point
    greeks_ok = with_greeks & np.isfinite(greeks).all(axis=0)
    greeks[:, ~greeks_ok] = np.nan
    # 0/1: no greeks, 2: at the last's IV, 3: at the mid's
    greeks_from = np.array([None, None, "last", "mid"], dtype=object)[2 * greeks_ok + from_mid].tolist()

    # The no-arbitrage bounds the reasons quote, in closed form (a model call at a tiny vol would cost
    # an American chain a further Bjerksund–Stensland pass): the discounted forward's payoff, and
    # for American options the exercise value now too.
    discount = np.exp(-np.nan_to_num(r) * t)
    lower = np.maximum(np.where(is_call, escrowed - strike * discount, strike * discount - escrowed), 0.0)
    if inputs.model == "american":
        lower = np.maximum(lower, np.where(is_call, escrowed - strike, strike - escrowed))
    upper = np.where(is_call, escrowed, strike if inputs.model == "american" else strike * discount)

    expired = days <= 0
    parity = _parity(shape, prices[3], escrowed, strike, days)
    parity[expired] = np.nan
    cash = np.array([float(term.dividends_cash) for term in terms])[at]
    buy = buy_price(inputs.spot)
    cc_tna, cc_tea = _covered_call(buy, is_call, cash, bid_f, strike, days, spot_f)
    # Where the covered call's cost (ask − bid, in Decimals) is worked out: a call with a positive
    # bid, not expired, and something to buy the underlying at.
    costed = (is_call & (bid_f > 0) & ~expired & (buy is not None)).tolist()
    all_ok = (status == _OK).all(axis=0)
    # The plain option: nothing of its own to say (but a negative time value, checked in Decimals).
    plain = (
        live
        & all_ok
        & greeks_ok
        & np.isfinite(parity)
        & (~is_call | (np.isfinite(cc_tna) & np.isfinite(cc_tea)))
    ).tolist()
    # Every float column as wire numbers in one pass (None where NaN).
    (iv_bid, iv_ask, iv_last, iv_mid, delta, gamma, vega, theta, rho, parity_l, tna_l, tea_l) = _values(
        np.vstack((iv, greeks, parity, cc_tna, cc_tea))
    )
    columns = _Columns(inputs, spot, buy, live, status, lower, upper)

    # The events' keywords in one dict, reused: an exact dict passed as ** reaches the constructor
    # as it is, which then reads it by field (1.0 µs an event) where 39 literal keywords are
    # matched one by one against the fields (2.1 µs). The chain's figures are written once, an
    # expiry's when it changes, an option's own for each option.
    fields: dict[str, object] = {
        "venue": inputs.venue,
        "ts": inputs.now,
        "underlying_symbol": inputs.underlying_symbol,
        "model": inputs.model,
        "spot": spot.price,
        "rate": rate,
        "rate_source": inputs.rate.source if inputs.rate is not None else "",
        "stale": bool(inputs.spot_stale),
    }
    spot_d = spot.price
    shown: _Term | None = None
    events = []
    # Every column zipped: one tuple unpacked per option rather than a dozen list reads.
    for (
        i, c, term, quote, mid, call, ok, costs, ivb, iva, ivl, ivm, gfrom, de, ga, ve, th, rh, par, tna, tea
    ) in zip(
        range(n), contracts, of_term, quotes, mids, calls, plain, costed, iv_bid, iv_ask, iv_last, iv_mid,
        greeks_from, delta, gamma, vega, theta, rho, parity_l, tna_l, tea_l, strict=True,
    ):  # fmt: skip
        bid = ask = last = None
        if quote is not None:
            bid, ask, last = quote.bid, quote.ask, quote.last
        strike_d = c.strike
        intrinsic = time_value = None
        if spot_d is not None:
            gain = spot_d - strike_d if call else strike_d - spot_d
            intrinsic = gain if gain > _ZERO else _ZERO
            price = mid if mid is not None else last
            if price is not None and not term.expired:
                time_value = price - intrinsic
        break_even = None
        if costs:
            cost = buy - bid  # type: ignore[operator]  # costed: both are there
            if cost > _ZERO:
                break_even = cost - term.dividends_cash if term.dividends_cash else cost
        reasons = term.reasons.copy()
        if not ok:
            figures = (
                mid,
                intrinsic,
                time_value,
                ivm is not None or ivl is not None,
                gfrom is not None,
                par,
                tna,
                tea,
            )
            _reasons(reasons, columns, i, c, term, quote, figures)
        elif time_value < _ZERO:  # type: ignore[operator]  # a plain option has its time value
            reasons["time_value"] = _negative_time_value(time_value, ask, intrinsic)  # type: ignore[arg-type]
        if term is not shown:
            shown = term
            fields["expiry"] = term.expiry
            fields["days"] = term.days
            fields["business_days"] = term.business_days
            fields["t"] = term.shown_t
            fields["dividends_pv"] = term.dividends_pv
        fields["symbol"] = c.symbol
        fields["underlying"] = c.underlying
        fields["option_type"] = c.option_type
        fields["strike"] = strike_d
        fields["lot"] = c.lot
        fields["bid"] = bid
        fields["ask"] = ask
        fields["last"] = last
        fields["mid"] = mid
        fields["iv_bid"] = ivb
        fields["iv_ask"] = iva
        fields["iv_last"] = ivl
        fields["iv_mid"] = ivm
        fields["greeks_from"] = gfrom
        fields["delta"] = de
        fields["gamma"] = ga
        fields["vega"] = ve
        fields["theta"] = th
        fields["rho"] = rh
        fields["intrinsic"] = intrinsic
        fields["time_value"] = time_value
        fields["parity_tna"] = par
        fields["covered_call_tna"] = tna
        fields["covered_call_tea"] = tea
        fields["break_even"] = break_even
        fields["reasons"] = reasons
        events.append(OptionAnalytics(**fields))  # type: ignore[arg-type]  # every field, checked by msgspec
    return events


def _guesses(guesses: Mapping[str, Sequence[float | None]], symbols: list[str]) -> FloatArray:
    """The guesses as a FIGURES × options array, NaN where there is none."""
    none = (math.nan, math.nan, math.nan, math.nan)
    flat = itertools.chain.from_iterable(map(guesses.get, symbols, itertools.repeat(none)))
    try:
        # Floats only (the service keeps NaN for none): read straight, 4× cheaper than np.array.
        table = np.fromiter(flat, np.float64, count=4 * len(symbols))
    except (TypeError, ValueError):  # a None (no guess) or a short tuple: the general way
        table = np.array([tuple(guesses.get(s, none)) for s in symbols], np.float64)
    return table.reshape(len(symbols), 4).T


# What `_reasons` reads of an option's own figures: mid, intrinsic, time value, whether the mid
# or the last has an IV, whether it has greeks, parity TNA, covered-call TNA and TEA.
_Figures = tuple[
    Decimal | None, Decimal | None, Decimal | None, bool, bool, float | None, float | None, float | None
]


class _Columns(NamedTuple):
    """What `_reasons` reads of the chain beyond the option's own event."""

    inputs: ChainInputs
    spot: SpotPrice
    buy: Decimal | None
    live: BoolArray
    status: np.ndarray[tuple[int, int], np.dtype[np.int8]]  # IvStatus, FIGURES × options (-1: not solved)
    lower: FloatArray  # the model's no-arbitrage bounds the IV reasons quote
    upper: FloatArray


def _chain_reasons(inputs: ChainInputs, spot: SpotPrice) -> dict[str, str]:
    """The reasons every option of the chain shares: the spot's and the rate's."""
    reasons = {}
    if spot.price is None:
        reasons["spot"] = spot.source
    elif inputs.spot_stale:
        reasons["spot"] = inputs.spot_stale
    if inputs.rate is None:
        reasons["rate"] = "no rate: no peso caución is quoted and no rate is configured"
    return reasons


def _values(table: FloatArray) -> list[list[float | None]]:
    """The table's rows as wire numbers: None where it holds NaN or inf."""
    missing = ~np.isfinite(table)
    count = int(missing.sum())
    if count > table.size // 16:  # many (no spot, no rate): boxed and masked in one pass
        boxed = table.astype(object)
        boxed[missing] = None
        return boxed.tolist()  # type: ignore[no-any-return]
    rows: list[list[float | None]] = table.tolist()
    # The common chain: the few empty entries replaced one by one (an object array of the whole
    # table would box every number once more).
    if count:
        for k, j in zip(*np.nonzero(missing), strict=True):
            rows[k][j] = None
    return rows


def _parity(
    shape: _Shape,
    mid: FloatArray,
    escrowed: FloatArray,
    strike: FloatArray,
    days: FloatArray,
) -> FloatArray:
    """Put-call parity's rate, % TNA (simple, ACT/365 like the caución), at each strike with a call
    and a put mid of the same expiry: a conversion (buy the share at S*, buy the put, sell the call)
    pays K at expiry whatever happens, for S* + P − C today, so K / (S* + P − C) − 1 over `days`
    is the rate it earns. Both options of the pair carry it."""
    out = np.full(len(mid), np.nan)
    calls, puts = shape.pair_calls, shape.pair_puts
    if calls.size == 0:
        return out
    with np.errstate(divide="ignore", invalid="ignore"):
        cost = escrowed[calls] + mid[puts] - mid[calls]
        tna = (strike[calls] / cost - 1.0) * 365.0 / days[calls] * 100.0
    tna = np.where((cost > 0) & (days[calls] > 0), tna, np.nan)
    out[calls] = tna
    out[puts] = tna
    return out


def _covered_call(
    bought: Decimal | None,
    is_call: np.ndarray[tuple[int], np.dtype[np.bool_]],
    cash: FloatArray,
    bid: FloatArray,
    strike: FloatArray,
    days: FloatArray,
    spot: float,
) -> tuple[FloatArray, FloatArray]:
    """The covered call's rate ("tasa de lanzamiento cubierto"), % TNA and % TEA, for calls: buy the
    share at its ask (else the spot), sell the call at its bid — cost C0 = ask − bid. If the share
    ends where it is now the position returns min(K, S) (exercised when K ≤ S, kept worth S
    otherwise), plus the cash dividends going ex before the expiry: TNA = (that / C0 − 1)·365/days,
    TEA = (that / C0)^(365/days) − 1."""
    buy = float(bought) if bought is not None else math.nan
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        cost = buy - bid
        growth = (np.minimum(strike, spot) + cash) / cost
        ok = is_call & (bid > 0) & (cost > 0) & (days > 0) & (growth > 0)
        tna = np.where(ok, (growth - 1.0) * 365.0 / days * 100.0, np.nan)
        tea = np.where(ok, np.expm1(np.log(growth) * 365.0 / days) * 100.0, np.nan)
    tea = np.where(np.abs(tea) <= MAX_TEA, tea, np.nan)
    return tna, tea


def _reasons(
    reasons: dict[str, str],
    columns: _Columns,
    i: int,
    contract: OptionContract,
    term: _Term,
    quote: Quote | None,
    figures: _Figures,
) -> None:
    """Why each empty figure of option `i` is empty (and a flagged one flagged), in the order the
    figures come: the only place an option's own reason is worded."""
    inputs, spot, buy = columns.inputs, columns.spot, columns.buy
    mid, intrinsic, time_value, has_iv, has_greeks, parity, cc_tna, cc_tea = figures
    bid = quote.bid if quote is not None else None
    ask = quote.ask if quote is not None else None
    last = quote.last if quote is not None else None
    if bid is None:
        reasons["bid"] = "no bid"
    if ask is None:
        reasons["ask"] = "no ask"
    if last is None:
        reasons["last"] = "no trade yet"
    if mid is None:
        reasons["mid"] = _mid(quote)[1]
    is_call = contract.option_type == "call"
    expired = term.expired
    why_not_live = ""
    if expired:
        why_not_live = (
            f"expired: the expiry's close ({term.expiry} "
            f"{inputs.expiry_time.strftime('%H:%M')} Buenos Aires) has passed; "
            "only the intrinsic value is given"
        )
        reasons["expiry"] = why_not_live
    elif spot.price is None:
        why_not_live = "no spot: " + spot.source
    elif not columns.live[i]:
        if inputs.rate is None:
            why_not_live = "no rate"
        elif term.t <= 0:
            why_not_live = "no business time is left before the expiry's close (time_basis business)"
        else:
            why_not_live = "the dividends' present value is not below the spot"

    values = (bid, ask, last, mid)
    status = columns.status[:, i].tolist()
    if why_not_live or status.count(_OK) != 4:
        lower, upper = float(columns.lower[i]), float(columns.upper[i])
        for k, name in enumerate(FIGURES):
            key, value = _IV_KEYS[k], values[k]
            if why_not_live:
                reasons[key] = why_not_live
            elif value is None:
                reasons[key] = reasons[name]
            elif status[k] != _OK:
                reasons[key] = _iv_reason(name, value, int(status[k]), intrinsic, lower, upper, is_call)
    if time_value is not None and time_value < _ZERO:
        reasons["time_value"] = _negative_time_value(time_value, ask, intrinsic)
    elif time_value is None and not expired:
        reasons["time_value"] = "no price (mid or last) or no spot"

    if why_not_live or not has_iv:
        reasons["greeks"] = why_not_live or "no implied volatility of the mid or the last to take greeks at"
    elif not has_greeks:  # the model's own arithmetic failed there: said, never a NaN
        reasons["greeks"] = f"the {inputs.model} model gave no greeks at this volatility"
    if not expired and parity is None:
        reasons["parity_tna"] = why_not_live or (
            "needs a call and a put of this strike and expiry, both with a mid, and a spot"
        )
    if is_call and not expired:
        if bid is None or bid <= _ZERO:
            reasons["covered_call"] = "no bid to sell the call at"
        elif buy is None:
            reasons["covered_call"] = why_not_live or "no ask or price of the underlying to buy it at"
        elif buy - bid <= _ZERO:
            reasons["covered_call"] = (
                f"the call's bid {bid} is not below the underlying's price {buy}: "
                "an arbitrage, no rate to quote"
            )
        elif cc_tea is None and cc_tna is not None:
            reasons["covered_call"] = _TEA_TOO_CLOSE
    if expired:
        for key in ("parity_tna", "covered_call", "greeks"):
            reasons[key] = why_not_live


def _negative_time_value(time_value: Decimal, ask: Decimal | None, intrinsic: Decimal | None) -> str:
    arbitrage = ask is not None and intrinsic is not None and ask < intrinsic
    return f"negative: the price is {-time_value} below the intrinsic value" + (
        " (an arbitrage: the ask is below it too)" if arbitrage else ""
    )


def _iv_reason(
    name: str,
    price: Decimal,
    status: int,
    intrinsic: Decimal | None,
    lower: float,
    upper: float,
    is_call: bool,
) -> str:
    if status == _NO_PRICE:
        return f"the {name} {price} is not a positive price"
    if status == _BELOW_INTRINSIC:
        if intrinsic is not None and price < intrinsic:
            # Only an ask under intrinsic is an arbitrage (buy, exercise at once); a bid or a trade
            # there is a seller's loss, not a free profit for anyone.
            what = "an arbitrage (buy and exercise), " if name == "ask" else ""
            return (
                f"the {name} {price} is below the intrinsic value {intrinsic} by {intrinsic - price}: "
                f"{what}no volatility gives this price"
            )
        if math.isfinite(lower) and lower - float(price) < AT_BOUND:
            return (
                f"the {name} {price} is at the model's lower bound {lower:.3f} (worth exercising now): "
                "every low volatility gives this price, so it implies none"
            )
        if math.isfinite(lower):
            return (
                f"the {name} {price} is below the model's lower bound {lower:.3f} "
                f"by {lower - float(price):.3f}: no volatility gives this price"
            )
        return f"the {name} {price} is below the model's lower bound: no volatility gives this price"
    if status == _ABOVE_MAXIMUM:
        bound = "the spot" if is_call else "the strike"
        return (
            f"the {name} {price} is at or above the upper bound {upper:.3f} ({bound}): "
            "no volatility gives this price"
        )
    if status == _NOT_CONVERGED:
        return "the solver did not converge: a bug, please report it with this option's inputs"
    return "the model's inputs are out of range (time, spot or strike not positive)"


def chain_view(inputs: ChainInputs, events: list[OptionAnalytics], *, simulated: bool = False) -> OptionChain:
    """The API's answer for one underlying: `events` (from `analyze_chain(inputs)`) grouped by
    expiry, each expiry by strike with the call before the put, and the expiry's parity rate (the
    median over its strikes: one stale pair does not move it) to set against the caución."""
    by_expiry: dict[str, list[OptionAnalytics]] = {}
    for event in events:
        by_expiry.setdefault(event.expiry, []).append(event)
    expiries = []
    for expiry in sorted(by_expiry):
        options = sorted(by_expiry[expiry], key=lambda e: (e.strike, e.option_type != "call"))
        rates = [e.parity_tna for e in options if e.option_type == "call" and e.parity_tna is not None]
        expiries.append(
            ExpiryChain(
                expiry=expiry,
                days=options[0].days,
                business_days=options[0].business_days,
                parity_tna=statistics.median(rates) if rates else None,
                options=tuple(options),
            )
        )
    spot = spot_price(inputs.spot)
    reasons = _chain_reasons(inputs, spot)
    uncovered = sorted({c.expiry for c in inputs.contracts if not inputs.calendar.covers(c.expiry)})
    if uncovered:
        reasons["business_days"] = (
            f"the holiday calendar ends with {inputs.calendar.last_year}: the business days to "
            f"{', '.join(d.isoformat() for d in uncovered)} count weekends only"
        )
    rate = inputs.rate
    return OptionChain(
        venue=inputs.venue,
        underlying=inputs.underlying,
        underlying_symbol=inputs.underlying_symbol,
        ts=inputs.now,
        model=inputs.model,
        spot=spot.price,
        spot_stale=bool(inputs.spot_stale),
        rate=rate.rate if rate is not None else None,
        rate_source=rate.source if rate is not None else "",
        caucion_tna=rate.tna if rate is not None and rate.source != CONFIGURED else None,
        simulated=simulated,
        expiries=tuple(expiries),
        reasons=reasons,
    )
