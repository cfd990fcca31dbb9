"""Bjerksund–Stensland (2002) against QuantLib's Andersen–Lake–Offengenden engine by region (the
bounds docs/options-models.md states), its no-arbitrage properties, its greeks, and the American
implied vol."""

from __future__ import annotations

import numpy as np
import pytest

from brokerbridge.core.options.american import american_greeks, american_price
from brokerbridge.core.options.black_scholes import european_greeks
from brokerbridge.core.options.implied_vol import IvStatus, implied_vol
from tests.options import american_accuracy as accuracy
from tests.options import quantlib_reference as ref

# A subset of the docs' grid (every region of its table, a few points each: QuantLib's
# high-precision engine costs ~5 ms an option); each region must stay within what the table states.
TEST_GRID = {
    "moneyness": (0.8, 1.0, 1.25),
    "days": (1, 30, 365),
    "vols": (0.05, 0.25, 1.0),
    "rates": (0.05, 0.3, 0.6),
    "yields": (0.0, 0.05),
}


@pytest.fixture(scope="module")
def measured() -> tuple[ref.Grid, np.ndarray, np.ndarray]:
    g = accuracy.early_exercise_grid(TEST_GRID)
    reference = ref.american(g, "qdfp")
    return g, reference, accuracy.errors(g, reference)


def test_accuracy_by_region_is_what_the_docs_state(measured: tuple[ref.Grid, np.ndarray, np.ndarray]) -> None:
    g, _, err = measured
    assert np.isfinite(err).all()
    rows = accuracy.table(g, err)
    assert len(rows) == len(accuracy.STATED)
    for row in rows:
        assert row.max <= accuracy.STATED[(row.rate, row.expiry, row.moneyness)], row


def test_a_lower_bound_above_european_and_intrinsic(
    measured: tuple[ref.Grid, np.ndarray, np.ndarray],
) -> None:
    g, reference, _ = measured
    ours = american_price(g.is_call, g.spot, g.strike, g.t, g.rate, g.div_yield, g.vol)
    european = european_greeks(g.is_call, g.spot, g.strike, g.t, g.rate, g.div_yield, g.vol).price
    intrinsic = np.maximum(np.where(g.is_call, g.spot - g.strike, g.strike - g.spot), 0.0)
    assert (ours >= european).all() and (ours >= intrinsic).all()
    assert (ours <= np.where(g.is_call, g.spot, g.strike)).all()
    # An exercise strategy's value: never above the true American value (QuantLib's, to its noise).
    assert (ours <= reference + 1e-9 * g.spot).all()


def test_no_early_exercise_is_exactly_european() -> None:
    strikes = np.array([5000.0, 7150.0, 9000.0])
    calls = american_greeks(True, 7150.0, strikes, 0.25, 0.3, 0.0, 0.45)  # a call, no yield
    puts = american_greeks(False, 7150.0, strikes, 0.25, 0.0, 0.05, 0.45)  # a put, no rate
    for american, is_call, r, q in ((calls, True, 0.3, 0.0), (puts, False, 0.0, 0.05)):
        european = european_greeks(is_call, 7150.0, strikes, 0.25, r, q, 0.45)
        for name in american._fields:
            assert np.array_equal(getattr(american, name), getattr(european, name)), name


def test_greeks_are_finite_and_signed_sensibly() -> None:
    g = accuracy.early_exercise_grid(TEST_GRID)
    greeks = american_greeks(g.is_call, g.spot, g.strike, g.t, g.rate, g.div_yield, g.vol)
    for name in greeks._fields:
        assert np.isfinite(getattr(greeks, name)).all(), name
    delta = greeks.delta
    assert (np.where(g.is_call, delta, -delta) >= -1e-6).all()
    assert (np.abs(delta) <= 1.0 + 1e-6).all()
    assert (greeks.vega >= -1e-6 * g.spot).all()


def test_greeks_against_quantlib_finite_differences() -> None:
    # Delta and gamma of an at-the-money put at a 30 % rate (the case BYMA trades) against
    # QuantLib's FD engine: the approximation's greeks are within a few % of the true ones.
    g = ref.grid(moneyness=(0.9, 1.0, 1.1), days=(30, 91), vols=(0.45,), rates=(0.3,), yields=(0.0,))
    puts = ~g.is_call
    g = ref.Grid(*(a[puts] for a in g))
    ours = american_greeks(g.is_call, g.spot, g.strike, g.t, g.rate, g.div_yield, g.vol)
    for i in range(len(g.spot)):
        proc = ref.process(g.spot[i], g.rate[i], g.div_yield[i], g.vol[i])
        option = ref.option(False, g.strike[i], int(g.days[i]), american=True)
        option.setPricingEngine(ref.ql.FdBlackScholesVanillaEngine(proc, 400, 400, 0))
        assert ours.delta[i] == pytest.approx(option.delta(), rel=0.05)
        assert ours.gamma[i] == pytest.approx(option.gamma(), rel=0.10)


def test_american_iv_round_trip_and_statuses() -> None:
    g = accuracy.early_exercise_grid(TEST_GRID)
    price = american_price(g.is_call, g.spot, g.strike, g.t, g.rate, g.div_yield, g.vol)
    result = implied_vol(price, g.is_call, g.spot, g.strike, g.t, g.rate, g.div_yield, model="american")
    vega = american_greeks(g.is_call, g.spot, g.strike, g.t, g.rate, g.div_yield, g.vol).vega
    meaningful = vega >= 1e-6 * np.maximum(g.spot, g.strike)
    assert meaningful.sum() > 0.5 * len(price)
    assert (result.status[meaningful] == IvStatus.OK).all()
    assert (np.abs(result.vol - g.vol)[meaningful] <= 1e-6).all()
    assert np.isnan(result.vol[result.status != IvStatus.OK]).all()
    # A put quoted under its exercise value is an arbitrage, at it there is no IV either (any low
    # vol gives it), nor at the strike or above; a price inside the band has one.
    fair = american_price(False, 7150.0, 7500.0, 0.25, 0.3, 0.0, 0.45)
    result = implied_vol(
        np.array([349.0, 350.0, 7500.0, fair]), False, 7150.0, 7500.0, 0.25, 0.3, 0.0, model="american"
    )
    assert result.status.tolist() == [
        IvStatus.BELOW_INTRINSIC,
        IvStatus.BELOW_INTRINSIC,
        IvStatus.ABOVE_MAXIMUM,
        IvStatus.OK,
    ]
    assert result.vol[3] == pytest.approx(0.45, abs=1e-6)


def test_extreme_valid_inputs_are_finite() -> None:
    # One hour to ten years, vol 1e-4 to 500 %, strikes 1000× apart, rates to 100 %: the powers
    # (S/I)^β with β in the thousands stay in log space, so nothing overflows into NaN.
    s, k, t, r, q, v = np.meshgrid(
        [100.0],
        [0.1, 50.0, 99.99, 100.0, 100.01, 200.0, 1e5],
        [1 / 8760, 1 / 365, 10.0],
        [0.0, 0.3, 1.0],
        [0.0, 0.2],
        [1e-4, 0.01, 5.0],
        indexing="ij",
    )
    for is_call in (True, False):
        price = american_price(is_call, s, k, t, r, q, v)
        greeks = american_greeks(is_call, s, k, t, r, q, v)
        for name, figure in zip(greeks._fields, greeks, strict=True):
            assert np.isfinite(figure).all(), name
        result = implied_vol(price, is_call, s, k, t, r, q, model="american")
        assert np.isfinite(result.vol[result.status == IvStatus.OK]).all()
        assert np.isnan(result.vol[result.status != IvStatus.OK]).all()
        assert result.status.shape == price.shape


def test_siblings_solved_together_match_each_solved_alone() -> None:
    # A chain's bid, ask, last and mid of one option (every input but the price equal) are
    # solved together, the others from the first one's root: the answer must be the one each
    # price gets alone, statuses included (a leader with no IV, or none of its own slope,
    # sends its siblings the long way). Puts at 30 % (early exercise), one day to a year,
    # deep out of to deep in the money, quotes 90 %–110 % of the model price and under the
    # exercise value.
    strikes = np.array([4000.0, 6500.0, 7150.0, 7800.0, 9000.0, 12000.0])
    days = np.array([1.0, 30.0, 365.0])
    k, d = (a.ravel() for a in np.meshgrid(strikes, days, indexing="ij"))
    t = d / 365.0
    fair = american_price(False, 7150.0, k, t, 0.3, 0.0, 0.45)
    intrinsic = np.maximum(k - 7150.0, 0.0)
    shares = np.array([0.9, 0.97, 1.0, 1.03, 1.1])
    prices = np.concatenate([fair * f for f in shares] + [intrinsic - 1.0, intrinsic + 0.5])
    n = len(shares) + 2
    together = implied_vol(prices, False, 7150.0, np.tile(k, n), np.tile(t, n), 0.3, 0.0, model="american")
    for i, price in enumerate(prices):
        alone = implied_vol(price, False, 7150.0, k[i % k.size], t[i % k.size], 0.3, 0.0, model="american")
        assert together.status[i] == alone.status, (i, price)
        if alone.status != IvStatus.OK:
            continue
        args = (False, 7150.0, k[i % k.size], t[i % k.size], 0.3, 0.0)
        if american_greeks(*args, float(alone.vol)).vega >= 1e-6 * max(7150.0, k[i % k.size]):
            # Both are within 1e-6 of the root (the docs' bound): neither is the other's copy.
            assert together.vol[i] == pytest.approx(float(alone.vol), abs=1e-6), (i, price)
        else:  # a negligible vega: any vol that reprices the option is its IV
            assert american_price(*args, together.vol[i]) == pytest.approx(price, abs=1e-9 * 12000.0)
    assert (together.status == IvStatus.OK).sum() > 0.6 * prices.size  # not mostly statuses


def test_american_iv_does_not_depend_on_the_guess() -> None:
    # The previous tick's IV only makes the solver faster: exact, near, stale and absurd
    # guesses (and none) give the same status and the same vol within the solver's tolerance.
    g = accuracy.early_exercise_grid(TEST_GRID)
    args = (g.is_call, g.spot, g.strike, g.t, g.rate, g.div_yield)
    price = american_price(*args, g.vol)
    # Quotes off the model price as a chain has them (bid, ask), so siblings share a curve.
    prices = np.concatenate((price, 0.97 * price, 1.03 * price))
    every = tuple(np.tile(a, 3) for a in args)
    plain = implied_vol(prices, *every, model="american")
    vega = np.tile(american_greeks(*args, g.vol).vega, 3)
    meaningful = (plain.status == IvStatus.OK) & (vega >= 1e-6 * np.maximum(every[1], every[2]))
    assert meaningful.sum() > 0.5 * prices.size
    rng = np.random.default_rng(20)
    true = np.tile(g.vol, 3)
    for guess in (
        np.where(plain.status == IvStatus.OK, plain.vol, np.nan),  # exact
        true * (1.0 + 0.01 * rng.standard_normal(prices.size)),  # a tick ago
        np.full(prices.size, 5.0),  # absurd, high
        np.full(prices.size, 2e-4),  # absurd, low
        rng.uniform(1e-4, 10.0, prices.size),  # anything
        np.where(rng.random(prices.size) < 0.5, true, np.nan),  # some guessed, some not
    ):
        hinted = implied_vol(prices, *every, model="american", guess=guess)
        assert (hinted.status == plain.status).all()
        assert np.abs(hinted.vol - plain.vol)[meaningful].max() <= 1e-6
        # Elsewhere (a negligible vega) any vol that reprices the option is its IV.
        ok = hinted.status == IvStatus.OK
        repriced = american_price(*(a[ok] for a in every), hinted.vol[ok])
        assert (np.abs(repriced - prices[ok]) <= 1e-7 * np.maximum(every[1], every[2])[ok]).all()
