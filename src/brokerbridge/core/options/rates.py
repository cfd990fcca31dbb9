"""Rates and dividends as the models take them: continuous annual rates, an escrowed spot.

A caución is quoted as a simple rate, % TNA on ACT/365, for its term of d days: 100 lent today
returns 100·(1 + TNA/100·d/365) in d days. The models discount continuously on ACT/365, so the
same growth over the same days gives r = ln(1 + TNA/100·d/365)·365/d. The configured
`[options] rate_tna` is read as a 1-day caución (the rate it stands in for).

Dividends (escrowed-dividend model): the models see the spot less the present value of the cash
dividends whose ex-date falls after today and on or before the expiry,
S* = S − Σ D_i·e^(−r·τ_i), τ_i = days from now to the ex-date's start / 365. A dividend already
gone ex is in the price; one after the expiry does not touch the option. The continuous dividend
yield stays 0: BYMA shares pay discrete cash dividends.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from decimal import Decimal

import msgspec

from brokerbridge.core.config import Dividend

CONFIGURED = "configured"
CONFIG_TERM_DAYS = 1


class RateInput(msgspec.Struct, frozen=True, kw_only=True):
    rate: float  # continuous annual rate, as the model takes it
    source: str  # "caución MERV - XMEV - PESOS - 1D" or "configured"
    tna: float | None = None  # the quote it came from, % TNA


def continuous_rate(tna: float, days: int) -> float:
    """% TNA simple on ACT/365 for `days` → continuous annual rate (ValueError below −100 %)."""
    if days <= 0:
        raise ValueError(f"a caución's term must be at least 1 day, got {days}")
    growth = 1.0 + tna / 100.0 * days / 365.0
    if growth <= 0.0:
        raise ValueError(f"a TNA of {tna} % over {days} days loses more than the capital")
    return math.log(growth) * 365.0 / days


def simple_tna(rate: float, days: float) -> float:
    """Continuous annual rate → % TNA simple on ACT/365 over `days` (the inverse of
    `continuous_rate`, to set a model rate against a caución quote)."""
    return (math.exp(rate * days / 365.0) - 1.0) * 365.0 / days * 100.0


def caucion_rate(symbol: str, tna: float, days: int) -> RateInput:
    return RateInput(rate=continuous_rate(tna, days), source=f"caución {symbol}", tna=tna)


def configured_rate(tna: float) -> RateInput:
    return RateInput(rate=continuous_rate(tna, CONFIG_TERM_DAYS), source=CONFIGURED, tna=tna)


def dividends_pv(
    dividends: Iterable[tuple[dt.date, Decimal]],
    *,
    today: dt.date,
    expiry: dt.date,
    now: float,
    midnight: float,
    rate: float,
) -> float:
    """Present value at `now` (epoch seconds) of the dividends going ex after `today` and on or
    before `expiry`; `midnight` is today's 00:00 in the market's time zone (epoch seconds), so an
    ex-date's time is its day's start there."""
    total = 0.0
    for ex_date, amount in dividends:
        if today < ex_date <= expiry:
            years = max(midnight + (ex_date - today).days * 86400.0 - now, 0.0) / (365.0 * 86400.0)
            total += float(amount) * math.exp(-rate * years)
    return total


def caucion_quote_tna(bid: Decimal | None, ask: Decimal | None, last: Decimal | None) -> float | None:
    """The % TNA a caución's quote stands for: its last trade, else the mid of a two-sided quote."""
    if last is not None and last > 0:
        return float(last)
    if bid is not None and ask is not None and 0 < bid <= ask:
        return float((bid + ask) / 2)
    return None


def chosen_rate(
    *,
    rate_source: str,
    rate_tna: float,
    caucion_symbol: str | None,
    caucion_days: int | None,
    tna: float | None,
) -> RateInput:
    """`[options] rate_source` applied: the caución's rate when it is the source and quoted, else the
    configured `rate_tna` (as a 1-day caución). `rate_source` on the result says which it was."""
    if rate_source == "caucion" and caucion_symbol and caucion_days and tna is not None:
        try:
            return caucion_rate(caucion_symbol, tna, caucion_days)
        except ValueError:
            pass  # a quote below −100 % TNA·d/365 is no rate: the configured one stands in
    return configured_rate(rate_tna)


def dividends_of(dividends: Iterable[Dividend], underlying: str) -> tuple[tuple[dt.date, Decimal], ...]:
    """`[options.dividends]` entries of `underlying` (its ticker) as `ChainInputs.dividends` takes them."""
    wanted = underlying.upper()
    return tuple(
        sorted((dt.date.fromisoformat(d.ex_date), d.amount) for d in dividends if d.underlying == wanted)
    )
