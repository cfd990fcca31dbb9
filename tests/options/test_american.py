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
        # With guesses anywhere in the range (siblings share no curve here: one price each, but
        # the extremes' flat and exercise-corner curves are where a far start misleads).
        guess = np.random.default_rng(7).uniform(1e-4, 10.0, price.shape)
        hinted = implied_vol(price, is_call, s, k, t, r, q, model="american", guess=guess)
        # A price made at exactly MIN_VOL has its root on the bracket's end: OK there or
        # BELOW_INTRINSIC (at the bound) are both its answer, cold too (rounding decides).
        at_end = v == 1e-4
        same = hinted.status == result.status
        assert same[~at_end].all()
        ends = (IvStatus.OK, IvStatus.BELOW_INTRINSIC)
        assert (same | (np.isin(hinted.status, ends) & np.isin(result.status, ends)))[at_end].all()
        ok = (result.status == IvStatus.OK) & (hinted.status == IvStatus.OK)
        repriced = american_price(is_call, s, k, t, r, q, hinted.vol)
        assert (np.abs(repriced - price)[ok] <= 1e-7 * np.maximum(s, k)[ok]).all()


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
        # Each answer is within 1e-6 of the root (the docs' bound; the model's own prices have
        # a known root, the true vol), so two answers are within 2e-6 of each other.
        assert np.abs(hinted.vol - true)[: price.size][meaningful[: price.size]].max() <= 1e-6
        assert np.abs(hinted.vol - plain.vol)[meaningful].max() <= 2e-6
        # Elsewhere (a negligible vega) any vol that reprices the option is its IV.
        ok = hinted.status == IvStatus.OK
        repriced = american_price(*(a[ok] for a in every), hinted.vol[ok])
        assert (np.abs(repriced - prices[ok]) <= 1e-7 * np.maximum(every[1], every[2])[ok]).all()


def test_american_iv_from_below_a_flat_stretch_converges() -> None:
    # A deep in-the-money call at r = 40 % whose price is flat to 2e-5 between 0.145 and 0.170
    # of vol: from a guess 15 % low the secant crept from one end and leapt to the other for
    # 64 rounds (NOT_CONVERGED); Brent's safeguard bisects a step not under half the one
    # before last. Alone and with its siblings.
    args = (True, 100.0, 81.12200497968112, 2.2425519540381056, 0.40348113835529476, 0.005309071380192854)
    fair = american_price(*args, 0.17019018006730904)
    alone = implied_vol(fair, *args, model="american", guess=0.1451315)
    assert alone.status == IvStatus.OK and alone.vol == pytest.approx(0.17019018006730904, abs=1e-6)
    prices = fair * np.array([0.97, 1.03, 1.01, 1.0])
    cold = implied_vol(prices, *args, model="american")
    warm = implied_vol(prices, *args, model="american", guess=np.array([np.nan, 0.5565, 0.4406, 0.1451315]))
    assert warm.status.tolist() == cold.status.tolist()
    np.testing.assert_allclose(warm.vol, cold.vol, rtol=0, atol=1e-6)


def test_warm_siblings_take_a_few_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    # The service's case on every underlying tick: an option's prices solved together with the
    # IVs of the tick before as guesses — here a deep in-the-money put of the bench's 400 chain
    # (its ask, last and mid; the bid is under the exercise value), taken from a warm tick.
    # Its last and mid, a hair apart, were guessed 1.3e-6 apart: the Brent safeguard compared
    # the first secant step with that hair (the nearest sibling's start, not a step of its own),
    # bisected [x1, 10] to 5.3 and crept back — 14 rounds where 4 do. Counted by the model's
    # evaluations (one vectorized call a round).
    from brokerbridge.core.options import implied_vol as module

    rounds: list[int] = []
    real = module.american_price_of

    def counted(m: module.ModelInputs) -> np.ndarray:
        rounds.append(m.spot.size)
        return real(m)

    # A second one (its last and mid guessed equal): the start on the flat stretch below its
    # critical vol gives no first step, and the bracket above it is open — bisecting it leapt
    # to 5.3 too (`_fallback` steps out from the start instead).
    cases = (
        (
            [1607.507, 1575.988, 1575.9875000000002],
            [0.6568078276939419, 0.5894355047401776, 0.5894341807258789],
            (False, 7140.0, 8692.9, 0.11552511415525113, 0.2948808518654777, 0.0),
        ),
        (
            [2632.377, 2580.762, 2580.7619999999997],
            [0.616992097683314, 0.5660743129078267, 0.5660743129078266],
            (False, 7155.0, 9708.9, 0.6963470319634703, 0.2948808518654777, 0.0),
        ),
    )
    for prices, guess, args in cases:
        cold = implied_vol(np.array(prices), *args, model="american")
        rounds.clear()
        monkeypatch.setattr(module, "american_price_of", counted)
        warm = implied_vol(np.array(prices), *args, model="american", guess=np.array(guess))
        monkeypatch.undo()
        assert (warm.status == IvStatus.OK).all() and (cold.status == IvStatus.OK).all()
        np.testing.assert_allclose(warm.vol, cold.vol, rtol=0, atol=2e-6)
        assert len(rounds) <= 5, (args, rounds)
