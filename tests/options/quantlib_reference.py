"""QuantLib as the independent reference for the options math: one option at a time, the way a
user of the library would price it (flat continuous rate and yield on ACT/365F, constant vol)."""

from __future__ import annotations

import itertools
from typing import Any, NamedTuple

import numpy as np
import pytest

ql: Any = pytest.importorskip("QuantLib")

TODAY = ql.Date(7, 12, 2026)
DAY_COUNT = ql.Actual365Fixed()


class Grid(NamedTuple):
    """One array per model argument, one entry per option (days: whole days to expiry)."""

    is_call: np.ndarray
    spot: np.ndarray
    strike: np.ndarray
    days: np.ndarray
    rate: np.ndarray
    div_yield: np.ndarray
    vol: np.ndarray

    @property
    def t(self) -> np.ndarray:
        return self.days / 365.0


# moneyness S/K 0.5–2 × 1 day–2 years × vol 5 %–150 % × rate 0–60 % (Argentine rates are ~30 %)
# × dividend yield 0 and 5 % × call/put.
MONEYNESS = (0.5, 0.67, 0.8, 0.9, 0.97, 1.0, 1.03, 1.1, 1.25, 1.5, 2.0)
DAYS = (1, 2, 7, 30, 91, 182, 365, 730)
VOLS = (0.05, 0.1, 0.25, 0.5, 1.0, 1.5)
RATES = (0.0, 0.05, 0.3, 0.6)
YIELDS = (0.0, 0.05)
SPOT = 7150.0  # GGAL's order of magnitude: the absolute floors below scale with it


def grid(
    moneyness: tuple[float, ...] = MONEYNESS,
    days: tuple[int, ...] = DAYS,
    vols: tuple[float, ...] = VOLS,
    rates: tuple[float, ...] = RATES,
    yields: tuple[float, ...] = YIELDS,
) -> Grid:
    rows = list(itertools.product((True, False), moneyness, days, vols, rates, yields))
    a = np.array(rows, dtype=np.float64)
    return Grid(
        is_call=a[:, 0].astype(np.bool_),
        spot=np.full(len(rows), SPOT),
        strike=SPOT / a[:, 1],
        days=a[:, 2],
        rate=a[:, 4],
        div_yield=a[:, 5],
        vol=a[:, 3],
    )


def process(spot: float, rate: float, div_yield: float, vol: float) -> Any:
    ql.Settings.instance().evaluationDate = TODAY
    return ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(spot)),
        ql.YieldTermStructureHandle(ql.FlatForward(TODAY, div_yield, DAY_COUNT)),
        ql.YieldTermStructureHandle(ql.FlatForward(TODAY, rate, DAY_COUNT)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(TODAY, ql.NullCalendar(), vol, DAY_COUNT)),
    )


def option(is_call: bool, strike: float, days: int, *, american: bool = False) -> Any:
    payoff = ql.PlainVanillaPayoff(ql.Option.Call if is_call else ql.Option.Put, strike)
    if american:
        return ql.VanillaOption(payoff, ql.AmericanExercise(TODAY, TODAY + int(days)))
    return ql.VanillaOption(payoff, ql.EuropeanExercise(TODAY + int(days)))


def european(g: Grid) -> np.ndarray:
    """(n, 6): NPV, delta, gamma, vega, theta (per year), rho — QuantLib's AnalyticEuropeanEngine."""
    out = np.empty((len(g.spot), 6))
    for i in range(len(g.spot)):
        o = option(bool(g.is_call[i]), g.strike[i], int(g.days[i]))
        o.setPricingEngine(ql.AnalyticEuropeanEngine(process(g.spot[i], g.rate[i], g.div_yield[i], g.vol[i])))
        out[i] = (o.NPV(), o.delta(), o.gamma(), o.vega(), o.theta(), o.rho())
    return out


def european_iv(g: Grid, prices: np.ndarray) -> np.ndarray:
    """QuantLib's implied vol of each price (NaN where it refuses), at accuracy 1e-12 in [1e-7, 10]."""
    out = np.full(len(g.spot), np.nan)
    for i in range(len(g.spot)):
        proc = process(g.spot[i], g.rate[i], g.div_yield[i], 0.3)
        o = option(bool(g.is_call[i]), g.strike[i], int(g.days[i]))
        o.setPricingEngine(ql.AnalyticEuropeanEngine(proc))
        try:
            out[i] = o.impliedVolatility(float(prices[i]), proc, 1e-12, 1000, 1e-7, 10.0)
        except RuntimeError:  # QuantLib: root not bracketed (a price at a bound)
            pass
    return out


def american(g: Grid, engine: str = "qdfp") -> np.ndarray:
    """QuantLib's American NPV: "qdfp" Andersen–Lake–Offengenden (QdFpAmericanEngine,
    highPrecisionScheme) or "fd" finite differences (FdBlackScholesVanillaEngine, 800×800); the
    other approximations for comparison, "ju" (JuQuadraticApproximationEngine, Ju–Zhong 1999) and
    "baw" (BaroneAdesiWhaleyApproximationEngine), NaN where QuantLib refuses an option."""
    out = np.empty(len(g.spot))
    for i in range(len(g.spot)):
        proc = process(g.spot[i], g.rate[i], g.div_yield[i], g.vol[i])
        o = option(bool(g.is_call[i]), g.strike[i], int(g.days[i]), american=True)
        if engine == "fd":
            o.setPricingEngine(ql.FdBlackScholesVanillaEngine(proc, 800, 800, 0))
        elif engine == "ju":
            o.setPricingEngine(ql.JuQuadraticApproximationEngine(proc))
        elif engine == "baw":
            o.setPricingEngine(ql.BaroneAdesiWhaleyApproximationEngine(proc))
        else:
            o.setPricingEngine(ql.QdFpAmericanEngine(proc, ql.QdFpAmericanEngine.highPrecisionScheme()))
        try:
            out[i] = o.NPV()
        except RuntimeError:  # Ju–Zhong at r >= 30 %, long expiries: "forward + displacement (0 + 0)"
            out[i] = np.nan
    return out
