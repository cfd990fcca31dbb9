"""Implied volatility for a whole chain at once, robust over the whole range (deep in or out of
the money, one day to expiry): see the module's solver notes and tests/options for the numbers
that chose it.

`implied_vol` never returns NaN silently: each entry has an `IvStatus`; `vol` is NaN exactly where
the status is not OK, and `analytics` turns each status into the figure's reason.
"""

from __future__ import annotations

import enum
from typing import Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from brokerbridge.core.options.black_scholes import BoolArray, FloatArray

MIN_VOL = 1e-4  # annual; below this an option's time value is noise on its tick
MAX_VOL = 10.0  # 1000 %: above it the price is at its no-arbitrage bound for any practical purpose


class IvStatus(enum.IntEnum):
    OK = 0
    NO_PRICE = 1  # the price is missing, zero or negative
    BELOW_INTRINSIC = 2  # below the model's no-arbitrage lower bound: an arbitrage, no IV exists
    ABOVE_MAXIMUM = 3  # at or above the upper bound (the spot for a call, the strike for a put)
    NOT_CONVERGED = 4  # the solver did not reach its tolerance (a bug to report, not a market fact)
    BAD_INPUT = 5  # t <= 0, spot or strike <= 0


class IvResult(NamedTuple):
    vol: FloatArray  # NaN where status != OK
    status: npt.NDArray[np.int8]


def implied_vol(
    price: FloatArray,
    is_call: BoolArray,
    spot: FloatArray,
    strike: FloatArray,
    t: FloatArray,
    rate: FloatArray,
    div_yield: FloatArray,
    *,
    model: Literal["european", "american"] = "european",
) -> IvResult:
    raise NotImplementedError  # issue 20, helper i20-math
