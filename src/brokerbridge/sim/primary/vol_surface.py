"""The simulated option market's fair values: a volatility surface around the live underlying.

The surface is an SVI-like smile times a term structure, in the forward log-moneyness
k = ln(K / F) scaled by the square root of the time left (z = k / sqrt(t), so the smile of a short
expiry is as wide in standard deviations as that of a long one):

    atm(t)  = atm_long + (atm_short - atm_long) * exp(-t / term_decay)
    var     = atm(t)**2 * (1 + wing * (rho * z + sqrt(z**2 + eta**2) - eta))
    vol     = sqrt(var)

`rho` < 0 makes puts (low strikes) richer than calls, `wing` and `eta` set the curvature (the
variance grows linearly in |z| far out, as SVI's does). The parameters are drawn once from the
simulator's seed (`SurfaceParams.from_seed`), so a seed gives the same surface every run.

Premiums use this module's own Black-Scholes (European) and a binomial tree (American) — on
purpose not `brokerbridge.core.options`: the simulator is the reference the analytics are tested
against, so it must not share their code. No dividends (none are simulated); the rate is a
continuous ACT/365 rate (the caller converts the caución's TNA with `continuous_rate`).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
# Steps of the American binomial tree. With the European control variate (tree error of the
# American price corrected by the tree's own error on the European one) 100 steps put GGAL-like puts
# (11 days to 1 year, r ≈ 30 %) within 0.2 % of QuantLib's QD+ American engine, inside the quoted
# spread (≥ 3 %), at ≈ 2.5 ms for the chain's 24 puts (150 steps: 0.15 %, ≈ 4 ms).
TREE_STEPS = 100
MIN_T = 1.0 / (365.0 * 24.0)  # one hour: below it the option is priced at intrinsic value
_ERFC = np.frompyfunc(math.erfc, 1, 1)


def ndtr(x: FloatArray) -> FloatArray:
    """The standard normal CDF, element-wise. By math.erfc rather than scipy.special.ndtr: the
    simulator prices ≈ 100 values at a time, and importing scipy.special cost its start 0.3 s."""
    return np.asarray(0.5 * _ERFC(-np.asarray(x) / math.sqrt(2.0)), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class SurfaceParams:
    atm_short: float = 0.40  # ATM vol as t → 0
    atm_long: float = 0.50  # ATM vol the term structure tends to (upward sloping, calm market)
    term_decay: float = 0.30  # years: how fast the ATM vol moves from short to long
    wing: float = 0.55  # curvature of the smile (variance multiple per standard deviation)
    rho: float = -0.45  # skew: negative = puts richer
    eta: float = 0.60  # smoothness of the smile's bottom

    @classmethod
    def from_seed(cls, seed: int) -> SurfaceParams:
        """The defaults nudged by up to ±10 % each (a seed gives one surface, every run)."""
        rng = random.Random(f"{seed}/vol-surface")
        base = cls()

        def nudge(value: float) -> float:
            return round(value * rng.uniform(0.9, 1.1), 4)

        return cls(
            atm_short=nudge(base.atm_short),
            atm_long=nudge(base.atm_long),
            term_decay=nudge(base.term_decay),
            wing=nudge(base.wing),
            rho=nudge(base.rho),
            eta=nudge(base.eta),
        )


class VolSurface:
    """Implied volatility by strike and time, and the premiums it implies."""

    def __init__(self, params: SurfaceParams) -> None:
        self.params = params

    def atm_vol(self, t: FloatArray | float) -> FloatArray:
        p = self.params
        t_arr = np.maximum(np.asarray(t, dtype=np.float64), MIN_T)
        return np.asarray(p.atm_long + (p.atm_short - p.atm_long) * np.exp(-t_arr / p.term_decay))

    def vol(self, spot: float, strike: FloatArray, t: FloatArray, rate: float) -> FloatArray:
        """The surface's vol for each (strike, t), around the forward of `spot` at `rate`."""
        p = self.params
        t_arr = np.maximum(np.asarray(t, dtype=np.float64), MIN_T)
        forward = spot * np.exp(rate * t_arr)
        z = np.log(np.asarray(strike, dtype=np.float64) / forward) / np.sqrt(t_arr)
        smile = 1.0 + p.wing * (p.rho * z + np.sqrt(z * z + p.eta * p.eta) - p.eta)
        return np.asarray(self.atm_vol(t_arr) * np.sqrt(smile))

    def premiums(
        self,
        spot: float,
        strike: FloatArray,
        t: FloatArray,
        is_call: NDArray[np.bool_],
        rate: float,
        *,
        american: bool = True,
    ) -> tuple[FloatArray, FloatArray]:
        """(fair premium, vol) of each option; American puts from the tree (calls without
        dividends are never exercised early, so theirs is the European price)."""
        vol = self.vol(spot, strike, t, rate)
        price = european_price(spot, strike, t, vol, rate, is_call)
        if american:
            puts = ~is_call & (t > MIN_T)
            if puts.any():
                price[puts] = american_put(spot, strike[puts], t[puts], vol[puts], rate)
        return price, vol


def continuous_rate(tna_percent: float, days: int = 1) -> float:
    """A caución's simple TNA (% ACT/365 over `days`) → the continuous annual rate."""
    return math.log1p(tna_percent / 100.0 * days / 365.0) * 365.0 / days


def european_price(
    spot: float, strike: FloatArray, t: FloatArray, vol: FloatArray, rate: float, is_call: NDArray[np.bool_]
) -> FloatArray:
    """Black-Scholes without dividends; at or past expiry (t < one hour) the intrinsic value."""
    k = np.asarray(strike, dtype=np.float64)
    t_arr = np.asarray(t, dtype=np.float64)
    live = t_arr >= MIN_T
    ts = np.where(live, t_arr, 1.0)  # the expired ones are replaced below; avoid 0 in the sqrt
    sd = vol * np.sqrt(ts)
    d1 = (np.log(spot / k) + (rate + 0.5 * vol * vol) * ts) / sd
    d2 = d1 - sd
    disc = k * np.exp(-rate * ts)
    call = spot * ndtr(d1) - disc * ndtr(d2)
    put = disc * ndtr(-d2) - spot * ndtr(-d1)
    price = np.where(is_call, call, put)
    intrinsic = np.where(is_call, np.maximum(spot - k, 0.0), np.maximum(k - spot, 0.0))
    return np.asarray(np.where(live, np.maximum(price, 0.0), intrinsic))


def american_put(spot: float, strike: FloatArray, t: FloatArray, vol: FloatArray, rate: float) -> FloatArray:
    """American puts: a Cox-Ross-Rubinstein tree, one row per option, corrected by the same tree's
    error on the European put (control variate)."""
    n = TREE_STEPS
    dt = t / n
    up = np.exp(vol * np.sqrt(dt))
    down = 1.0 / up
    growth = np.exp(rate * dt)
    p_up = np.clip((growth - down) / (up - down), 0.0, 1.0)[:, None]
    disc = (1.0 / growth)[:, None]
    k = strike[:, None]
    j = np.arange(n + 1, dtype=np.float64)[None, :]
    nodes = spot * np.exp(np.log(up)[:, None] * (2.0 * j - n))  # node j at maturity: j ups, n - j downs
    american = np.maximum(k - nodes, 0.0)
    european = american.copy()
    p_down, up_col = 1.0 - p_up, up[:, None]
    for step in range(n - 1, -1, -1):
        american = disc * (p_up * american[:, 1 : step + 2] + p_down * american[:, : step + 1])
        european = disc * (p_up * european[:, 1 : step + 2] + p_down * european[:, : step + 1])
        nodes = nodes[:, : step + 1] * up_col  # S·u^(2j−step): one up move fewer down than a step later
        american = np.maximum(american, k - nodes)
    exact = european_price(spot, strike, t, vol, rate, np.zeros(strike.shape, dtype=np.bool_))
    return np.asarray(np.maximum(american[:, 0] - european[:, 0] + exact, np.maximum(strike - spot, 0.0)))
