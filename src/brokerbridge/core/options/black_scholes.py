"""Black–Scholes–Merton for a whole chain at once: prices and analytic greeks on numpy arrays.

Every argument is an array of one shape (or a scalar that broadcasts): `is_call` bool, `spot`,
`strike`, `t` (years, > 0), `rate` (continuous, annual), `div_yield` (continuous, annual), `vol`
(annual, > 0). Units are the model's own, as QuantLib gives them (the reference in
tests/options): `vega` per 1.00 of vol, `theta` per year, `rho` per 1.00 of rate.
`analytics` converts to the display units of `OptionAnalytics`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


class Greeks(NamedTuple):
    price: FloatArray
    delta: FloatArray
    gamma: FloatArray
    vega: FloatArray  # per 1.00 of vol
    theta: FloatArray  # per year
    rho: FloatArray  # per 1.00 of rate


def european_price(
    is_call: BoolArray,
    spot: FloatArray,
    strike: FloatArray,
    t: FloatArray,
    rate: FloatArray,
    div_yield: FloatArray,
    vol: FloatArray,
) -> FloatArray:
    raise NotImplementedError  # issue 20, helper i20-math


def european_greeks(
    is_call: BoolArray,
    spot: FloatArray,
    strike: FloatArray,
    t: FloatArray,
    rate: FloatArray,
    div_yield: FloatArray,
    vol: FloatArray,
) -> Greeks:
    raise NotImplementedError  # issue 20, helper i20-math
