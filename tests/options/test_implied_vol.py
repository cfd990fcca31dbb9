"""The European implied-vol solver against the true vol and QuantLib's solver on the grid, its
statuses at the no-arbitrage bounds, and its behaviour on bad input."""

from __future__ import annotations

import numpy as np
import pytest

from brokerbridge.core.options.black_scholes import european_greeks, european_price
from brokerbridge.core.options.implied_vol import MAX_VOL, MIN_VOL, IvStatus, implied_vol
from tests.options import quantlib_reference as ref

# Vega is "negligible" below 1e-8 × max(spot, strike) per 1.00 of vol: a price carries a rounding
# error of a few ulps of its largest term (≈ 1e-15 × max(S, K)), which then moves the IV by more
# than 1e-7. Wherever vega is above that, the IV must come back within 1e-6 of the true vol.
NEGLIGIBLE_VEGA = 1e-8
TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def priced_grid() -> tuple[ref.Grid, np.ndarray]:
    g = ref.grid()
    return g, ref.european(g)


def test_iv_recovers_the_vol_wherever_vega_is_not_negligible(
    priced_grid: tuple[ref.Grid, np.ndarray],
) -> None:
    g, expected = priced_grid
    price, vega = expected[:, 0], expected[:, 3]
    result = implied_vol(price, g.is_call, g.spot, g.strike, g.t, g.rate, g.div_yield)
    meaningful = vega >= NEGLIGIBLE_VEGA * np.maximum(g.spot, g.strike)
    assert meaningful.sum() > 0.65 * len(price)  # the grid is not mostly excluded (70 % is kept)
    ok = result.status == IvStatus.OK
    assert ok[meaningful].all(), np.flatnonzero(meaningful & ~ok)[:5]
    error = np.abs(result.vol - g.vol)
    assert (error[meaningful] <= TOLERANCE).all(), error[meaningful].max()
    # Where vega is negligible the price says (almost) nothing about the vol, but the answer is
    # still a status and, when OK, a vol that reprices the option to its rounding noise.
    assert np.isnan(result.vol[~ok]).all() and np.isfinite(result.vol[ok]).all()
    repriced = european_price(g.is_call, g.spot, g.strike, g.t, g.rate, g.div_yield, result.vol)
    assert (np.abs(repriced[ok] - price[ok]) <= 1e-12 * np.maximum(g.spot, g.strike)[ok]).all()


def test_iv_agrees_with_quantlib(priced_grid: tuple[ref.Grid, np.ndarray]) -> None:
    g, expected = priced_grid
    sample = slice(None, None, 7)  # QuantLib's Brent at 1e-12 costs ~0.3 ms an option: a seventh of the grid
    sub = ref.Grid(*(a[sample] for a in g))
    price, vega = expected[sample, 0], expected[sample, 3]
    theirs = ref.european_iv(sub, price)
    mine = implied_vol(price, sub.is_call, sub.spot, sub.strike, sub.t, sub.rate, sub.div_yield).vol
    meaningful = vega >= NEGLIGIBLE_VEGA * np.maximum(sub.spot, sub.strike)
    assert np.isfinite(theirs[meaningful]).all()
    assert (np.abs(mine - theirs)[meaningful] <= TOLERANCE).all()


def test_statuses_at_the_bounds_and_on_bad_input() -> None:
    spot, strike, t, r, q = 100.0, 100.0, 0.25, 0.3, 0.0
    floor = european_price(True, spot, strike, t, r, q, MIN_VOL)
    cap = european_price(True, spot, strike, t, r, q, MAX_VOL)
    prices = np.array([np.nan, 0.0, -1.0, floor * 0.999, floor - 1e-9, cap, spot, 12.0])
    result = implied_vol(prices, True, spot, strike, t, r, q)
    assert result.status.tolist() == [
        IvStatus.NO_PRICE,
        IvStatus.NO_PRICE,
        IvStatus.NO_PRICE,
        IvStatus.BELOW_INTRINSIC,
        IvStatus.BELOW_INTRINSIC,
        IvStatus.ABOVE_MAXIMUM,
        IvStatus.ABOVE_MAXIMUM,
        IvStatus.OK,
    ]
    assert np.isnan(result.vol[:-1]).all() and 0 < result.vol[-1] < MAX_VOL
    # A put below its European bound K·e^{-rt} - S·e^{-qt} (an arbitrage): no IV.
    put_floor = strike * np.exp(-r * t) - 80.0
    assert implied_vol(put_floor - 0.01, False, 80.0, strike, t, r, q).status == IvStatus.BELOW_INTRINSIC
    assert implied_vol(put_floor + 0.01, False, 80.0, strike, t, r, q).status == IvStatus.OK
    bad = implied_vol(
        5.0,
        True,
        np.array([0.0, 100.0, 100.0, np.nan]),
        np.array([100.0, -1.0, 100.0, 100.0]),
        np.array([0.25, 0.25, 0.0, 0.25]),
        r,
        q,
    )
    assert (bad.status == IvStatus.BAD_INPUT).all() and np.isnan(bad.vol).all()


def test_one_day_and_deep_wings_round_trip() -> None:
    # One day to expiry, strikes from half to twice the spot, vols 10 %–150 %: every price with a
    # meaningful vega comes back; deep OTM prices of 1e-100 still have a (correct) IV.
    strikes = np.geomspace(50.0, 200.0, 41)
    for vol in (0.1, 0.45, 1.5):
        for is_call in (True, False):
            g = european_greeks(is_call, 100.0, strikes, 1 / 365, 0.3, 0.0, vol)
            result = implied_vol(g.price, is_call, 100.0, strikes, 1 / 365, 0.3, 0.0)
            meaningful = g.vega >= NEGLIGIBLE_VEGA * np.maximum(100.0, strikes)
            assert (np.abs(result.vol - vol)[meaningful] <= TOLERANCE).all()
    tiny = european_price(True, 100.0, 300.0, 7 / 365, 0.0, 0.0, 0.3)
    assert 0 < tiny < 1e-100
    assert implied_vol(tiny, True, 100.0, 300.0, 7 / 365, 0.0, 0.0).vol == pytest.approx(0.3, abs=1e-9)


def test_shapes_and_scalars() -> None:
    prices = np.array([[5.0, 6.0], [7.0, 8.0]])
    result = implied_vol(prices, True, 100.0, 100.0, 0.25, 0.0, 0.0)
    assert result.vol.shape == (2, 2) and result.status.shape == (2, 2)
    assert implied_vol(5.0, True, 100.0, 100.0, 0.25, 0.0, 0.0).vol.shape == ()
    with pytest.raises(ValueError, match="model"):
        implied_vol(5.0, True, 100.0, 100.0, 0.25, 0.0, 0.0, model="binomial")  # type: ignore[arg-type]


def test_a_guess_that_does_not_fit_the_prices_is_a_specific_error() -> None:
    with pytest.raises(ValueError, match="guess of shape"):
        implied_vol(np.array([5.0, 6.0]), True, 100.0, 100.0, 0.25, 0.0, 0.0, guess=np.array([0.2, 0.3, 0.4]))
    # A scalar broadcasts; NaN and out-of-range guesses are no guess, never a status.
    plain = implied_vol(np.array([5.0, 6.0]), True, 100.0, 100.0, 0.25, 0.0, 0.0)
    for guess in (0.3, np.array([np.nan, 50.0]), np.array([-1.0, np.inf])):
        hinted = implied_vol(np.array([5.0, 6.0]), True, 100.0, 100.0, 0.25, 0.0, 0.0, guess=guess)
        assert hinted.status.tolist() == plain.status.tolist()
        np.testing.assert_allclose(hinted.vol, plain.vol, rtol=0, atol=1e-12)
