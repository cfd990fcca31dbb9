"""American options by Bjerksund–Stensland (2002), vectorized: BYMA's equity options are American.

Same arguments and units as `black_scholes`. Greeks by central differences of the price (the
approximation has no closed-form greeks that stay consistent with its price).
"""

from __future__ import annotations

from brokerbridge.core.options.black_scholes import BoolArray, FloatArray, Greeks


def american_price(
    is_call: BoolArray,
    spot: FloatArray,
    strike: FloatArray,
    t: FloatArray,
    rate: FloatArray,
    div_yield: FloatArray,
    vol: FloatArray,
) -> FloatArray:
    raise NotImplementedError  # issue 20, helper i20-math


def american_greeks(
    is_call: BoolArray,
    spot: FloatArray,
    strike: FloatArray,
    t: FloatArray,
    rate: FloatArray,
    div_yield: FloatArray,
    vol: FloatArray,
) -> Greeks:
    raise NotImplementedError  # issue 20, helper i20-math
