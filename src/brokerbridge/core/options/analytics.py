"""One option chain's quotes → `OptionAnalytics` events: IVs, greeks, intrinsic and time value,
the put-call-parity rate, the covered-call rate — each with a reason where it must stay empty.

Pure: `ChainInputs` (contracts from the venue's details, the latest quotes, the spot, the rate,
the dividends, `now`, the calendar) in, events out. The service (services/options.py) keeps the
inputs current and calls `analyze_chain` on every tick; the benchmark (bench/options_chain.py)
calls it alone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

import msgspec

from brokerbridge.core.events import OptionAnalytics
from brokerbridge.core.options.calendar import MarketCalendar


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


class RateInput(msgspec.Struct, frozen=True, kw_only=True):
    rate: float  # continuous annual rate, as the model takes it
    source: str  # "caución MERV - XMEV - PESOS - 1D" or "configured"
    tna: float | None = None  # the quote it came from, % TNA


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


def analyze_chain(inputs: ChainInputs) -> list[OptionAnalytics]:
    """One event per contract, in `inputs.contracts` order."""
    raise NotImplementedError  # issue 20, helper i20-chain
