"""Black–Scholes–Merton prices and greeks against QuantLib's AnalyticEuropeanEngine on the grid
(moneyness 0.5–2 × 1 day–2 years × vol 5–150 % × rate 0–60 % × yield 0/5 % × call/put), and the
contract for invalid entries (NaN there and only there) and extreme valid ones (never NaN/inf)."""

from __future__ import annotations

import numpy as np
import pytest

from brokerbridge.core.options.black_scholes import european_greeks, european_price
from tests.options import quantlib_reference as ref

# Within 1e-8 relative of QuantLib, or within an absolute floor of 1e-12 × the figure's scale
# (spot for price, vega, theta and rho; 1 for delta; 1/spot for gamma): below it a figure is
# rounding noise of two terms of the spot's size (deep in/out of the money, theta crossing zero).
RELATIVE = 1e-8
FLOOR = 1e-12


@pytest.fixture(scope="module")
def grid_and_reference() -> tuple[ref.Grid, np.ndarray]:
    g = ref.grid()
    return g, ref.european(g)


def test_price_and_greeks_match_quantlib_on_the_grid(grid_and_reference: tuple[ref.Grid, np.ndarray]) -> None:
    g, expected = grid_and_reference
    got = european_greeks(g.is_call, g.spot, g.strike, g.t, g.rate, g.div_yield, g.vol)
    scales = {
        "price": g.spot,
        "delta": 1.0,
        "gamma": 1.0 / g.spot,
        "vega": g.spot,
        "theta": g.spot,
        "rho": g.spot,
    }
    for column, (name, scale) in enumerate(scales.items()):
        mine = getattr(got, name)
        theirs = expected[:, column]
        assert np.isfinite(mine).all(), name
        bad = np.abs(mine - theirs) > RELATIVE * np.abs(theirs) + FLOOR * scale
        assert not bad.any(), (name, np.flatnonzero(bad)[:5], mine[bad][:5], theirs[bad][:5])
    price = european_price(g.is_call, g.spot, g.strike, g.t, g.rate, g.div_yield, g.vol)
    assert np.array_equal(price, got.price)


def test_invalid_entries_are_nan_there_and_only_there() -> None:
    spot = np.array([100.0, 0.0, 100.0, 100.0, 100.0, 100.0, -5.0, 100.0])
    strike = np.array([100.0, 100.0, 0.0, 100.0, 100.0, 100.0, 100.0, 100.0])
    t = np.array([0.5, 0.5, 0.5, 0.0, 0.5, -1.0, 0.5, 0.5])
    vol = np.array([0.3, 0.3, 0.3, 0.3, 0.0, 0.3, 0.3, np.nan])
    g = european_greeks(True, spot, strike, t, 0.3, 0.0, vol)
    for figure in g:
        assert np.isfinite(figure[0])
        assert np.isnan(figure[1:]).all()
    assert not np.isnan(european_price(True, 100.0, 100.0, 0.5, np.array([0.3, np.inf]), 0.0, 0.3)[0])


def test_extreme_valid_inputs_are_finite() -> None:
    # One hour to expiry at 1 % vol, ten years at 500 %, strikes 1000× apart, rates to 100 %.
    s, k, t, r, q, v = np.meshgrid(
        [100.0],
        [0.1, 50.0, 99.99, 100.0, 100.01, 200.0, 1e5],
        [1 / 8760, 1 / 365, 10.0],
        [0.0, 1.0],
        [0.0, 0.2],
        [1e-4, 0.01, 5.0],
        indexing="ij",
    )
    for is_call in (True, False):
        g = european_greeks(is_call, s, k, t, r, q, v)
        for name, figure in zip(g._fields, g, strict=True):
            assert np.isfinite(figure).all(), name
        assert (g.price >= 0).all() and (g.gamma >= 0).all() and (g.vega >= 0).all()


def test_scalars_broadcast_and_shapes_are_kept() -> None:
    strikes = np.array([[90.0, 100.0], [110.0, 120.0]])
    price = european_price(np.array([[True, False], [True, False]]), 100.0, strikes, 0.25, 0.3, 0.0, 0.4)
    assert price.shape == (2, 2)
    one = european_price(True, 100.0, 110.0, 0.25, 0.3, 0.0, 0.4)
    assert float(one) == pytest.approx(price[1, 0], rel=1e-15)
