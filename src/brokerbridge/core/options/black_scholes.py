"""Black–Scholes–Merton for a whole chain at once: prices and analytic greeks on numpy arrays.

Every argument is an array of one shape (or a scalar that broadcasts): `is_call` bool, `spot`,
`strike`, `t` (years, > 0), `rate` (continuous, annual), `div_yield` (continuous, annual), `vol`
(annual, > 0). Units are the model's own, as QuantLib gives them (the reference in
tests/options): `vega` per 1.00 of vol, `theta` per year, `rho` per 1.00 of rate.
`analytics` converts to the display units of `OptionAnalytics`.

Invalid entries — `t <= 0`, `spot <= 0`, `strike <= 0`, `vol <= 0`, or any input NaN/inf — give
NaN in every output at that position and only there (no warning, no exception): the caller sees
which entries they are with `np.isnan` and owes its user a reason for each. Valid entries never
give NaN or inf: a tiny `vol·√t` (one day, 1 % vol) or a huge one saturates the normal CDF to
0/1 instead of dividing by zero, and the deep out-of-the-money tails come from `scipy.special.ndtr`,
exact to about an ulp far into the tail (no `1 - N(d)` cancellation).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class Greeks(NamedTuple):
    price: FloatArray
    delta: FloatArray
    gamma: FloatArray
    vega: FloatArray  # per 1.00 of vol
    theta: FloatArray  # per year
    rho: FloatArray  # per 1.00 of rate


class ModelInputs(NamedTuple):
    """The seven arguments broadcast to one shape, invalid entries replaced by harmless values
    (so no warning fires), and `valid` saying which they were."""

    phi: FloatArray  # +1 call, -1 put
    spot: FloatArray
    strike: FloatArray
    t: FloatArray
    rate: FloatArray
    div_yield: FloatArray
    vol: FloatArray
    valid: BoolArray

    def take(self, rows: npt.NDArray[np.intp]) -> ModelInputs:
        """These entries only (of the flat arrays)."""
        return ModelInputs(
            self.phi[rows],
            self.spot[rows],
            self.strike[rows],
            self.t[rows],
            self.rate[rows],
            self.div_yield[rows],
            self.vol[rows],
            self.valid[rows],
        )

    def flat(self) -> ModelInputs:
        """1-d views (copies only if not contiguous), so entries can be assigned even for scalars."""
        return ModelInputs(
            self.phi.ravel(),
            self.spot.ravel(),
            self.strike.ravel(),
            self.t.ravel(),
            self.rate.ravel(),
            self.div_yield.ravel(),
            self.vol.ravel(),
            self.valid.ravel(),
        )


def model_inputs(
    is_call: BoolArray,
    spot: FloatArray,
    strike: FloatArray,
    t: FloatArray,
    rate: FloatArray,
    div_yield: FloatArray,
    vol: FloatArray,
) -> ModelInputs:
    c, s, k, tt, r, q, v = np.broadcast_arrays(
        np.asarray(is_call, dtype=np.bool_),
        *(np.asarray(a, dtype=np.float64) for a in (spot, strike, t, rate, div_yield, vol)),
    )
    with np.errstate(invalid="ignore"):
        valid = (s > 0) & (k > 0) & (tt > 0) & (v > 0)
    valid &= (
        np.isfinite(s) & np.isfinite(k) & np.isfinite(tt) & np.isfinite(r) & np.isfinite(q) & np.isfinite(v)
    )
    if valid.all():
        return ModelInputs(np.where(c, 1.0, -1.0), s, k, tt, r, q, v, valid)
    # where() copies, so the caller's arrays are never written to.
    return ModelInputs(
        np.where(c, 1.0, -1.0),
        np.where(valid, s, 1.0),
        np.where(valid, k, 1.0),
        np.where(valid, tt, 1.0),
        np.where(valid, r, 0.0),
        np.where(valid, q, 0.0),
        np.where(valid, v, 1.0),
        valid,
    )


def _invalid_to_nan(values: FloatArray, valid: BoolArray) -> FloatArray:
    return values if valid.all() else np.where(valid, values, np.nan)


def european_price(
    is_call: BoolArray,
    spot: FloatArray,
    strike: FloatArray,
    t: FloatArray,
    rate: FloatArray,
    div_yield: FloatArray,
    vol: FloatArray,
) -> FloatArray:
    m = model_inputs(is_call, spot, strike, t, rate, div_yield, vol)
    with np.errstate(all="ignore"):  # tails underflow to 0 by design; a caller's "raise" must not fire
        return _invalid_to_nan(_price(m), m.valid)


def european_price_of(m: ModelInputs) -> FloatArray:
    """`european_price` of inputs `model_inputs` already prepared (for a caller that has them:
    no second broadcast and validation; invalid entries give a number, not NaN, as they hold
    harmless values — the caller masks them)."""
    with np.errstate(all="ignore"):
        return _price(m)


def _price(m: ModelInputs) -> FloatArray:
    sd = m.vol * np.sqrt(m.t)
    d1 = (np.log(m.spot / m.strike) + (m.rate - m.div_yield) * m.t) / sd + 0.5 * sd
    d2 = d1 - sd
    spot_pv = m.spot * np.exp(-m.div_yield * m.t)
    strike_pv = m.strike * np.exp(-m.rate * m.t)
    price: FloatArray = m.phi * (spot_pv * ndtr(m.phi * d1) - strike_pv * ndtr(m.phi * d2))
    return price


def european_greeks(
    is_call: BoolArray,
    spot: FloatArray,
    strike: FloatArray,
    t: FloatArray,
    rate: FloatArray,
    div_yield: FloatArray,
    vol: FloatArray,
) -> Greeks:
    m = model_inputs(is_call, spot, strike, t, rate, div_yield, vol)
    with np.errstate(all="ignore"):  # as in european_price
        return _greeks(m)


def _greeks(m: ModelInputs) -> Greeks:
    sqrt_t = np.sqrt(m.t)
    sd = m.vol * sqrt_t
    d1 = (np.log(m.spot / m.strike) + (m.rate - m.div_yield) * m.t) / sd + 0.5 * sd
    d2 = d1 - sd
    div_df = np.exp(-m.div_yield * m.t)
    spot_pv = m.spot * div_df
    strike_pv = m.strike * np.exp(-m.rate * m.t)
    n_d1 = ndtr(m.phi * d1)
    n_d2 = ndtr(m.phi * d2)
    density = _INV_SQRT_2PI * np.exp(-0.5 * d1 * d1)  # underflows to 0 in the far tails: fine
    price = m.phi * (spot_pv * n_d1 - strike_pv * n_d2)
    delta = m.phi * div_df * n_d1
    gamma = div_df * density / (m.spot * sd)
    vega = spot_pv * density * sqrt_t
    theta = -0.5 * spot_pv * density * m.vol / sqrt_t + m.phi * (
        m.div_yield * spot_pv * n_d1 - m.rate * strike_pv * n_d2
    )
    rho = m.phi * m.t * strike_pv * n_d2
    v = m.valid
    return Greeks(
        _invalid_to_nan(price, v),
        _invalid_to_nan(delta, v),
        _invalid_to_nan(gamma, v),
        _invalid_to_nan(vega, v),
        _invalid_to_nan(theta, v),
        _invalid_to_nan(rho, v),
    )
