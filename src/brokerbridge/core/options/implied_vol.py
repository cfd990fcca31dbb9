"""Implied volatility for a whole chain at once, robust over the whole range (deep in or out of
the money, one day to expiry): see the module's solver notes and tests/options for the numbers
that chose it.

`implied_vol` never returns NaN silently: each entry has an `IvStatus`; `vol` is NaN exactly where
the status is not OK, and `analytics` turns each status into the figure's reason.

Solver notes (European). Every option is first brought to Black's normalized form: forward
F = S·e^{(r-q)t}, x = ln(F/K), s = σ√t, β = price / (e^{-rt}·√(FK)); a put is the call at -x, and
an in-the-money call loses its forward intrinsic value (parity), so every entry becomes an
out-of-the-money call, x ≤ 0, 0 < β < e^{x/2}. Its price b(s) rises from 0 to e^{x/2}, convex
below the inflection point s_c = √(2|x|) and concave above it. Below s_c the solver runs Newton
on ln b(s) = ln β, above it on ln(e^{x/2} - b(s)) = ln(e^{x/2} - β): both are concave, so Newton
converges from either side after at most one overshoot, and the logarithms keep deep
out-of-the-money prices (β of 1e-200) and prices close to the upper bound on a scale Newton
handles. ln b comes from the scaled complementary error function (erfcx), so it never underflows
and its derivative b'/b needs no exp of a huge negative number. Each step is kept inside a bracket
that shrinks with every evaluation; a step that would leave it bisects instead. Entries leave the
loop when converged (relative step below 1e-13), so a chain costs a few passes over the entries
that still move. The alternative measured against it — a vectorized port of Jäckel's Let's Be
Rational — was not needed: the numbers are in docs/options-models.md.

American IVs invert the Bjerksund–Stensland price (american.py) by a bracketed secant on the
square root of the time value, started from the European IV of the same price (always on or
above the American one), or, for the other prices of one option asked together (bid, ask, last,
mid), from the first one's root: see `_solve_american`. With guesses (the last tick's IVs) every
price of an option starts at once and takes its first step on the cubic through its siblings'
starts, the curve they share (`_curve_root`): ~2 evaluations a price when the guesses are close.
"""

from __future__ import annotations

import enum
import math
from typing import Literal, NamedTuple

import numpy as np
import numpy.typing as npt
from scipy.special import erfcx, ndtr, ndtri

from brokerbridge.core.options.american import american_price_of
from brokerbridge.core.options.black_scholes import (
    BoolArray,
    FloatArray,
    ModelInputs,
    european_greeks,
    model_inputs,
)

MIN_VOL = 1e-4  # annual; below this an option's time value is noise on its tick
MAX_VOL = 10.0  # 1000 %: above it the price is at its no-arbitrage bound for any practical purpose

_MAX_ITERATIONS = 64  # Newton needs 3–8; bisection fallbacks may need ~50 on pathological inputs
_RELATIVE_STEP = 1e-6  # after a Halley step this small the error is ~C·(1e-6)³: below the float's noise
_AMERICAN_STEP = 1e-8  # absolute, in vol: 100× inside the European target; the model is good to ~1e-2
_AMERICAN_RESIDUAL = 1e-7  # in vol, at the European vega: see _solve_american
_PREDICTED_REGIME = 1e-3  # in vol: steps this small are where the secant's error model holds
_CURVATURE_REGIME = 0.1  # in vol: the third point's farthest for the curvature it estimates
_AMERICAN_PRICE_MATCH = 1e-12  # of max(spot, strike): a millionth of a tick at GGAL prices
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)


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


def _log_otm_call(x: FloatArray, s: FloatArray) -> tuple[FloatArray, FloatArray]:
    """ln b(x, s) and b'(s)/b(s) for the normalized out-of-the-money call, x <= 0, s < s_c.

    b = e^{x/2}N(d1) - e^{-x/2}N(d2) = ½·E·(erfcx(-d1/√2) - erfcx(-d2/√2)) with
    E = exp(-x²/2s² - s²/8) and b' = E/√(2π), so ln b and b'/b need E only as its logarithm."""
    d1 = x / s + 0.5 * s
    d2 = d1 - s
    # Below s_c, d1 < 0 (the clip only guards the unused tail of a bracket at s_c itself).
    gap: FloatArray = erfcx(-_INV_SQRT2 * np.minimum(d1, 0.0)) - erfcx(-_INV_SQRT2 * d2)
    log_e = -0.5 * (x / s) ** 2 - 0.125 * s * s
    return np.log(0.5 * gap) + log_e, (2.0 * _INV_SQRT_2PI) / gap


def _log_otm_call_gap(x: FloatArray, s: FloatArray) -> tuple[FloatArray, FloatArray]:
    """ln(e^{x/2} - b(x, s)) and its derivative, for s >= s_c (there d1 >= 0 > d2, so both terms
    are tails: e^{x/2}N(-d1) + e^{-x/2}N(d2), no cancellation)."""
    d1 = x / s + 0.5 * s
    d2 = d1 - s
    gap: FloatArray = np.exp(0.5 * x) * ndtr(-d1) + np.exp(-0.5 * x) * ndtr(d2)
    vega = _INV_SQRT_2PI * np.exp(-0.5 * (x / s) ** 2 - 0.125 * s * s)
    return np.log(gap), -vega / gap


def _otm_call(x: FloatArray, s: FloatArray) -> FloatArray:
    d1 = x / s + 0.5 * s
    b: FloatArray = np.exp(0.5 * x) * ndtr(d1) - np.exp(-0.5 * x) * ndtr(d1 - s)
    return b


def _solve_normalized(
    x: FloatArray, beta: FloatArray, s_lo: FloatArray, s_hi: FloatArray
) -> tuple[FloatArray, BoolArray]:
    """s in [s_lo, s_hi] with b(x, s) = beta, for x <= 0 and b(s_lo) < beta < b(s_hi)."""
    s_c = np.clip(np.sqrt(-2.0 * x), s_lo, s_hi)
    b_c = _otm_call(x, s_c)
    lower = beta < b_c  # the root is below the inflection point
    lo = np.where(lower, s_lo, s_c)
    hi = np.where(lower, s_c, s_hi)
    upper_bound = np.exp(0.5 * x)
    target = np.where(lower, np.log(beta), np.log(upper_bound - beta))
    # Starting points. Lower branch: ln b ≈ A - x²/2s², the leading term of the deep tail, with
    # A matching b at s_c; the true ln b has an extra ~3·ln s that is below that model left of
    # s_c, so the guess lies left of the root, where Halley on the concave ln b converges
    # monotonically (3–4 evaluations on a GGAL-like chain against 6 from the bare tail term).
    # Upper branch: the x = 0 solution 2N(-s/2) scaled to the two tails' weights.
    anchor = np.log(b_c) + 0.5 * (x / s_c) ** 2
    guess_lower = -x / np.sqrt(2.0 * (anchor - np.log(beta)))
    guess_upper = -2.0 * ndtri(np.clip((upper_bound - beta) / (upper_bound + 1.0 / upper_bound), 1e-300, 0.5))
    s = np.clip(np.where(lower, guess_lower, guess_upper), lo, hi)
    s = np.where(np.isfinite(s), s, 0.5 * (lo + hi))
    converged = np.zeros(x.shape, dtype=np.bool_)
    # The working arrays hold only the entries still moving; they shrink when some finish.
    active = np.arange(x.size)
    xa, sa, la, ta, lo_a, hi_a = x, s.copy(), lower, target, lo, hi
    for _ in range(_MAX_ITERATIONS):
        if active.size == 0:
            break
        if la.all():
            f, df = _log_otm_call(xa, sa)
        elif not la.any():
            f, df = _log_otm_call_gap(xa, sa)
        else:
            f, df = np.empty_like(sa), np.empty_like(sa)
            ua = ~la
            f[la], df[la] = _log_otm_call(xa[la], sa[la])
            f[ua], df[ua] = _log_otm_call_gap(xa[ua], sa[ua])
        f = f - ta
        # f rises with s on the lower branch and falls on the upper one: a positive f·slope
        # means the root is below s.
        above_root = (f > 0) == la
        lo_a = np.where(above_root, lo_a, sa)
        hi_a = np.where(above_root, sa, hi_a)
        # Halley: both objectives have f'' = f'·(x²/s³ - s/4) - f'² (from b'' = b'·(x²/s³ - s/4)),
        # so the third-order step costs two multiplications more than Newton's.
        newton = -f / df
        curvature = (xa * xa) / (sa * sa * sa) - 0.25 * sa
        s_new = sa + newton / np.clip(1.0 + 0.5 * newton * (curvature - df), 0.5, 2.0)
        outside = ~((s_new >= lo_a) & (s_new <= hi_a))  # NaN steps too
        s_new = np.where(outside, 0.5 * (lo_a + hi_a), s_new)
        done = (
            (~outside & (np.abs(s_new - sa) <= _RELATIVE_STEP * s_new))
            | (f == 0)
            | (hi_a - lo_a <= 4e-16 * hi_a)
        )
        if done.any():
            s[active[done]] = s_new[done]
            converged[active[done]] = True
            keep = ~done
            active, xa, s_new, la, ta, lo_a, hi_a = (
                active[keep],
                xa[keep],
                s_new[keep],
                la[keep],
                ta[keep],
                lo_a[keep],
                hi_a[keep],
            )
        sa = s_new
    return s, converged


def _european(p: _Prepared) -> tuple[FloatArray, npt.NDArray[np.int8]]:
    """The European IV and status of each prepared entry."""
    with np.errstate(all="ignore"):
        forward = p.spot * np.exp((p.rate - p.div_yield) * p.t)
        x = np.where(p.is_call, 1.0, -1.0) * np.log(forward / p.strike)  # a put is the call at -x
        beta = p.price / (np.exp(-p.rate * p.t) * np.sqrt(forward * p.strike))
        beta = np.where(x > 0, beta - (np.exp(0.5 * x) - np.exp(-0.5 * x)), beta)  # parity: ITM → OTM
        x = -np.abs(x)
        sqrt_t = np.sqrt(p.t)
        s_lo = MIN_VOL * sqrt_t
        s_hi = MAX_VOL * sqrt_t
        below = beta <= _otm_call(x, s_lo)
        above = beta >= _otm_call(x, s_hi)
        status = np.full(p.price.shape, IvStatus.OK, dtype=np.int8)
        status[below] = IvStatus.BELOW_INTRINSIC
        status[above & ~below] = IvStatus.ABOVE_MAXIMUM
        solve = np.flatnonzero(status == IvStatus.OK)
        s, converged = _solve_normalized(x[solve], beta[solve], s_lo[solve], s_hi[solve])
        status[solve[~converged]] = IvStatus.NOT_CONVERGED
        vol = np.full(p.price.shape, np.nan)
        vol[solve[converged]] = s[converged] / sqrt_t[solve[converged]]
    return vol, status


class _Prepared(NamedTuple):
    """Flat arrays of the entries that have a price and valid inputs, and where they go back."""

    idx: npt.NDArray[np.intp]
    price: FloatArray
    is_call: BoolArray
    spot: FloatArray
    strike: FloatArray
    t: FloatArray
    rate: FloatArray
    div_yield: FloatArray
    guess: FloatArray  # a starting vol inside [MIN_VOL, MAX_VOL], NaN where none


def _prepare(
    price: FloatArray, m: ModelInputs, guess: FloatArray | None
) -> tuple[_Prepared, FloatArray, npt.NDArray[np.int8]]:
    """The entries with valid inputs and a price, flat; and the outputs, flat, NaN and BAD_INPUT
    or NO_PRICE until the model fills its entries. A guess outside [MIN_VOL, MAX_VOL] or not
    finite is no guess: a hint never changes a status."""
    p = np.broadcast_to(np.asarray(price, dtype=np.float64), m.spot.shape).ravel()
    if guess is None:
        g = np.full(p.shape, np.nan)
    else:
        try:
            g = np.broadcast_to(np.asarray(guess, dtype=np.float64), m.spot.shape).ravel()
        except ValueError:
            raise ValueError(
                f"implied_vol: guess of shape {np.shape(guess)} does not fit the prices' shape "
                f"{m.spot.shape}; pass one starting vol per price (NaN where none) or None"
            ) from None
        with np.errstate(invalid="ignore"):
            g = np.where((g >= MIN_VOL) & (g <= MAX_VOL), g, np.nan)
    vol = np.full(p.shape, np.nan)
    status = np.full(p.shape, IvStatus.BAD_INPUT, dtype=np.int8)
    valid = m.valid.ravel()
    with np.errstate(invalid="ignore"):
        has_price = np.isfinite(p) & (p > 0)
    status[valid & ~has_price] = IvStatus.NO_PRICE
    idx = np.flatnonzero(valid & has_price)
    calls = m.phi.ravel()[idx] > 0
    sp, k, tt, r, q = (a.ravel()[idx] for a in (m.spot, m.strike, m.t, m.rate, m.div_yield))
    return _Prepared(idx, p[idx], calls, sp, k, tt, r, q, g[idx]), vol, status


def _american(everything: _Prepared) -> tuple[FloatArray, npt.NDArray[np.int8]]:
    """The vol at which Bjerksund–Stensland gives each prepared entry's price (`_solve_american`
    for those that may be exercised early)."""
    vol = np.full(everything.price.shape, np.nan)
    status = np.full(everything.price.shape, IvStatus.OK, dtype=np.int8)
    # A call with no yield, a put with no rate, is never exercised early: its price is the
    # European one at every vol, so is its IV (no American evaluation at all).
    european_only = np.where(everything.is_call, everything.div_yield, everything.rate) <= 0
    plain = np.flatnonzero(european_only)
    vol[plain], status[plain] = _european(_subset(everything, plain))
    early = np.flatnonzero(~european_only)
    prep = _subset(everything, early)
    with np.errstate(all="ignore"):
        # The bounds without an American evaluation: no IV at or below the exercise value (nor
        # the European value at MIN_VOL), none at or above the spot (call) or the strike (put).
        intrinsic = np.maximum(np.where(prep.is_call, prep.spot - prep.strike, prep.strike - prep.spot), 0.0)
        floor = european_greeks(
            prep.is_call,
            prep.spot,
            prep.strike,
            prep.t,
            prep.rate,
            prep.div_yield,
            np.full(prep.price.shape, MIN_VOL),
        ).price
        st = np.full(prep.idx.shape, IvStatus.OK, dtype=np.int8)
        st[prep.price <= np.maximum(intrinsic, floor)] = IvStatus.BELOW_INTRINSIC
        st[(prep.price >= np.where(prep.is_call, prep.spot, prep.strike)) & (st == IvStatus.OK)] = (
            IvStatus.ABOVE_MAXIMUM
        )
        solve = np.flatnonzero(st == IvStatus.OK)
        found, outcome = _solve_american(_subset(prep, solve))
        st[solve] = outcome
        v = np.full(prep.idx.shape, np.nan)
        v[solve[outcome == IvStatus.OK]] = found[outcome == IvStatus.OK]
    vol[early], status[early] = v, st
    return vol, status


def _subset(p: _Prepared, rows: npt.NDArray[np.intp]) -> _Prepared:
    return _Prepared(
        p.idx[rows],
        p.price[rows],
        p.is_call[rows],
        p.spot[rows],
        p.strike[rows],
        p.t[rows],
        p.rate[rows],
        p.div_yield[rows],
        p.guess[rows],
    )


def _european_vega(p: _Prepared, vol: FloatArray) -> FloatArray:
    """S·e^{-qt}·n(d1)·√t: the European vega alone (european_greeks computes all six)."""
    sd = vol * np.sqrt(p.t)
    d1 = (np.log(p.spot / p.strike) + (p.rate - p.div_yield) * p.t) / sd + 0.5 * sd
    out: FloatArray = p.spot * np.exp(-p.div_yield * p.t - 0.5 * d1 * d1) * (_INV_SQRT_2PI * np.sqrt(p.t))
    return out


def _american_at(p: _Prepared, vol: FloatArray) -> FloatArray:
    # Prepared entries are flat and valid, and vol stays inside [MIN_VOL, MAX_VOL]: the model's
    # inputs without american_price's broadcast and validation (6 % of a round's cost).
    phi = np.where(p.is_call, 1.0, -1.0)
    valid = np.ones(vol.shape, dtype=np.bool_)
    return american_price_of(ModelInputs(phi, p.spot, p.strike, p.t, p.rate, p.div_yield, vol, valid))


def _solve_american(p: _Prepared) -> tuple[FloatArray, npt.NDArray[np.int8]]:
    """The vols and, per entry, OK, BELOW_INTRINSIC / ABOVE_MAXIMUM (the root would be outside
    [MIN_VOL, MAX_VOL]: the bracket closed on an end without matching the price) or
    NOT_CONVERGED.

    A bracketed secant on g(σ) = √(A(σ) - intrinsic) - √(price - intrinsic). An in-the-money
    put's American price sits at its exercise value up to a critical vol, then rises like
    (σ - σc)²: on the price itself the secant creeps (measured: 8 rounds on the 400 chain), on
    its square root it is close to linear.

    A chain asks for several prices of one option at once (bid, ask, last, mid: every input
    but the price the same). Those siblings share one price curve A(σ), so one of them — the
    leader, the one with the most time value, the best conditioned — starts from its European
    IV, and the others start from its root as soon as it has one, where A is known without an
    evaluation (the leader's price) and so is its slope (the leader's last secant): they skip
    the first evaluation and start closer, in the same rounds as the leaders still running
    (measured on the 400 chain: 2,219 → 1,766 evaluations in 9 rounds, not 10 as one group
    after the other).

    With guesses (the last tick's IVs) every price of a group starts in the first round and
    steps on the cubic through its siblings' starts (`_curve_root`): 624 evaluations in one
    round with exact guesses, 1,412 in 3 with guesses 1e-3 off (docs/options-models.md)."""
    time_value = p.price - np.maximum(np.where(p.is_call, p.spot - p.strike, p.strike - p.spot), 0.0)
    vol, status, rest = _solve_grouped(p, time_value, _leaders(p, time_value))
    if rest.size:  # their leader found no IV or no slope: each from its own European IV
        q = _subset(p, rest)
        vol[rest], status[rest], _ = _solve_grouped(q, time_value[rest], np.arange(rest.size))
    return vol, status


def _leaders(p: _Prepared, time_value: FloatArray) -> npt.NDArray[np.intp]:
    """Per entry, the entry that leads its group of siblings (every input but the price equal):
    the one with the most time value; itself when it leads."""
    order = np.lexsort((-time_value, p.div_yield, p.rate, p.t, p.strike, p.spot, p.is_call))
    keys = (p.is_call, p.spot, p.strike, p.t, p.rate, p.div_yield)
    starts = np.ones(order.size, dtype=np.bool_)
    for key in keys:
        ordered = key[order]
        starts[1:] &= ordered[1:] == ordered[:-1]
    starts = ~starts
    starts[:1] = True
    group_leader = order[starts][np.cumsum(starts) - 1]
    leader = np.empty(order.size, dtype=np.intp)
    leader[order] = group_leader
    return leader


def _solve_grouped(
    p: _Prepared, time_value: FloatArray, leader: npt.NDArray[np.intp]
) -> tuple[FloatArray, npt.NDArray[np.int8], npt.NDArray[np.intp]]:
    """The secant for leaders (from their guess, else their European IV) and their followers
    (from the leader's root, once it has one; where the group has a guess, at once from their
    own starts); the vols, statuses, and the followers left unsolved because their leader ended
    without an IV or a slope."""
    n = p.price.size
    scale = np.maximum(p.spot, p.strike)
    nan = np.full(n, np.nan)
    st = _Secant(
        nan.copy(),
        nan.copy(),
        nan.copy(),
        nan.copy(),
        nan.copy(),
        nan.copy(),
        nan.copy(),
        nan,
        np.full(n, MIN_VOL),
        np.full(n, MAX_VOL),
        np.zeros(n, dtype=np.bool_),
        np.zeros(n, dtype=np.bool_),
    )
    x0, g0, x1, xm, gm, slope, residual, vega, lo, hi, converged, stepped = st
    # Followers not started yet. Where any price of a group has a guess, every one starts at
    # once, as leaders do, from its guess or its European IV: the group's points then serve
    # each other from the first round (a follower waiting for a guessed leader's root joined
    # four rounds late and made the last five rounds alone).
    guessed = np.zeros(n, dtype=np.bool_)
    guessed[leader[np.isfinite(p.guess)]] = True
    waiting = (leader != np.arange(n)) & ~guessed[leader]
    first = np.flatnonzero(~waiting)
    q = _subset(p, first)
    # A leader starts from its guess (the previous tick's IV: closer than anything computed
    # here), else from its European IV.
    start = q.guess.copy()
    cold = np.flatnonzero(np.isnan(start))
    if cold.size:
        european_vol, european_status = _european(_subset(q, cold))
        start[cold] = np.where(european_status == IvStatus.OK, np.clip(european_vol, MIN_VOL, MAX_VOL), 0.5)
    f0 = _american_at(q, start) - q.price
    vega[first] = european_greeks(q.is_call, q.spot, q.strike, q.t, q.rate, q.div_yield, start).vega
    # The first step is Newton's with the European vega for A' (g' = A'/2√(A - intrinsic)) ...
    tv = time_value[first]
    root0 = np.sqrt(np.maximum(tv + f0, 0.0))
    g_start = root0 - np.sqrt(tv)
    step_to = start - 2.0 * g_start * root0 / vega[first]
    # ... unless siblings started in the same round (guessed siblings all do): their points
    # are on the same curve, so the first step solves the curve through them and this one (a
    # cubic through up to four points, the American slope and bends, not the European vega:
    # its error is the product of the distances to the points, ~1e-8 of vol for guesses 1e-3
    # off), and the nearest is the third point of the secant's error model from round one.
    near = _neighbours(leader[first], start)
    own = np.flatnonzero(near[:, 0] >= 0)
    near = near[own]
    usable = near >= 0
    a_near = np.where(usable, f0[near] + q.price[near], np.nan)  # A there, known to 1e-12
    fp = a_near - q.price[own, None]
    tv_own = tv[own, None]
    gp = np.sqrt(np.maximum(tv_own + fp, 0.0)) - np.sqrt(tv_own)
    xp = np.where(usable, start[near], np.nan)
    step_to[own] = _curve_root(start[own], g_start[own], xp, gp, step_to[own])
    rows = first[own]
    xm[rows], gm[rows] = xp[:, 0], gp[:, 0]
    active = _begin(st, scale, first, start, f0, g_start, step_to, rows, xp[:, 0], fp[:, 0])
    rest: list[npt.NDArray[np.intp]] = []
    for _ in range(_MAX_ITERATIONS):
        ready = np.flatnonzero(waiting & converged[leader])
        if ready.size:
            waiting[ready] = False
            lead = leader[ready]
            usable = (_status(converged, residual, x1, scale)[lead] == IvStatus.OK) & (slope[lead] > 0)
            rest.append(ready[~usable])
            rows, lead = ready[usable], lead[usable]
            f0 = p.price[lead] - p.price[rows]  # A(x0) - price: A(x0) is the leader's price, to 1e-12
            g_start = np.sqrt(time_value[lead]) - np.sqrt(time_value[rows])
            # No residual test for them (a vega of 0): the European vega at the leader's vol may
            # be far larger than at their own root (siblings at 5 % and 100 % of vol on the test
            # grid) and would let a residual worth 1e-2 of vol pass.
            vega[rows] = 0.0
            x_lead = x1[lead]
            joined = _begin(st, scale, rows, x_lead, f0, g_start, x_lead - g_start / slope[lead])
            active = np.concatenate((active, joined))
        if active.size == 0:
            break
        f1 = _american_at(_subset(p, active), x1[active]) - p.price[active]
        g1 = np.sqrt(np.maximum(time_value[active] + f1, 0.0)) - np.sqrt(time_value[active])
        xa0, ga0, xa1 = x0[active], g0[active], x1[active]
        lo_a = np.where(f1 < 0, xa1, lo[active])
        hi_a = np.where(f1 > 0, xa1, hi[active])
        x2 = xa1 - g1 * (xa1 - xa0) / (g1 - ga0)
        xam, gam = xm[active], gm[active]
        # A safeguard after Brent's: a step not under half the larger of the last two bisects
        # instead. On a nearly flat stretch of the curve (a deep in-the-money call at r = 40 %,
        # its price flat to 2e-5 over 0.15–0.17 of vol) the secant alternated a creep from one
        # end with a leap to the other: 64 rounds, NOT_CONVERGED, from a guess 15 % low; now a
        # leap must halve the leap before it. (Brent's own rule, half the step before last,
        # refused good secant steps after a tiny first one off the flat stretch below a deep
        # in-the-money put's critical vol, and bisected for four rounds.)
        # Only where x_m → x0 was a step of this price's own: in its first round x_m is a
        # sibling's start (`_curve_root`'s nearest point), often a hair from its own (siblings
        # guessed 1e-6 apart), and "half the step before last" refused every secant — the
        # 400 chain's warm ticks then bisected [x1, 10] and crept back for 10+ rounds.
        last_two = np.maximum(np.abs(xa1 - xa0), np.abs(xa0 - xam))  # NaN before a third point
        stalled = (np.abs(x2 - xa1) >= 0.5 * last_two) & stepped[active]
        secant = (x2 > lo_a) & (x2 < hi_a) & ~stalled  # NaN too
        # No secant: a bisection, or a step out twice the last one where the bracket is open
        # (`_fallback`).
        x2 = np.where(secant, x2, _fallback(xa1, f1, lo_a, hi_a, 2.0 * np.maximum(np.abs(xa1 - xa0), 1e-4)))
        # Done when the price is matched to its rounding noise, or the secant step (or the
        # bracket) is below 1e-8 of vol, or the residual is worth less than 1e-7 of vol at the
        # European vega (the next secant step, taken, is then far closer still): where vega is
        # negligible any vol near fits. Or when the error left in x2 is predicted below 1e-9:
        # a secant step's error is e2 ≈ C·e1·e0 with C = g''/2g', estimated from the last
        # three points' divided differences (e1 ≈ |x2 - x1|, e0 ≈ |x2 - x0|); this saves the
        # round that would only confirm a step of ~1e-6.
        slope_a = (g1 - ga0) / (xa1 - xa0)
        curvature = (slope_a - (ga0 - gam) / (xa0 - xam)) / (xa1 - xam)
        step = np.abs(x2 - xa1)
        # The error model is asymptotic: trusted only for steps inside _PREDICTED_REGIME, where
        # three far-apart points (a stale guess, a leader's root far from a sibling's) around
        # a kink of the price in σ (the switch between the 2002 and 1993 bounds) predicted
        # 1e-9 for a point 2e-3 of vol from the root.
        in_regime = (
            (step <= _PREDICTED_REGIME)
            & (np.abs(x2 - xa0) <= _PREDICTED_REGIME)
            & (np.abs(xa0 - xam) <= _CURVATURE_REGIME)
        )
        predicted = (
            secant
            & in_regime
            & (np.abs(curvature / slope_a) * step * np.abs(x2 - xa0) <= 0.1 * _AMERICAN_STEP)
        )
        matched = np.abs(f1) <= _AMERICAN_PRICE_MATCH * scale[active]
        # The vega at the point measured, not at the start: from a far start (a stale guess of
        # 500 %) the start's vega is orders of magnitude too large and passed residuals worth
        # 1e-4 of vol.
        flagged = np.flatnonzero(vega[active] > 0)
        vega_a = np.zeros(active.size)
        vega_a[flagged] = _european_vega(_subset(p, active[flagged]), xa1[flagged])
        small = (step <= _AMERICAN_STEP) | (np.abs(f1) <= _AMERICAN_RESIDUAL * vega_a) | predicted
        done = matched | small | (hi_a - lo_a <= _AMERICAN_STEP)
        x2 = np.where(matched, xa1, x2)
        xm[active], gm[active], slope[active] = xa0, ga0, slope_a
        x0[active], g0[active], x1[active], residual[active] = xa1, g1, x2, f1
        lo[active], hi[active] = lo_a, hi_a
        converged[active[done]] = True
        stepped[active] = True  # x_m is now x0: this entry's own point, as x0 is
        active = active[~done]
    return x1, _status(converged, residual, x1, scale), np.concatenate([*rest, np.flatnonzero(waiting)])


def _neighbours(group: npt.NDArray[np.intp], x: FloatArray, k: int = 3) -> npt.NDArray[np.intp]:
    """Per entry, up to k entries of its group, nearest first, whose x differ from its own and
    from each other's (-1 where fewer): further points of its curve."""
    order = np.lexsort((x, group))
    g, xs = group[order], x[order]
    n = order.size
    at = np.arange(n)
    shifts = [d for step in range(1, k + 1) for d in (step, -step)]
    other = np.clip(at[:, None] + np.array(shifts), 0, n - 1)
    inside = (at[:, None] + np.array(shifts) >= 0) & (at[:, None] + np.array(shifts) < n)
    gap = np.abs(xs[other] - xs[:, None])
    # In (group, x) order equal x are adjacent: a candidate equal to the one a step nearer to
    # this entry on its side adds no point.
    nearer = np.clip(at[:, None] + np.array([d - np.sign(d) for d in shifts]), 0, n - 1)
    repeat = (xs[other] == xs[nearer]) & (np.abs(np.array(shifts)) > 1)
    gap = np.where(inside & (g[other] == g[:, None]) & (gap > 0) & ~repeat, gap, np.inf)
    pick = np.argsort(gap, axis=1, kind="stable")[:, :k]
    chosen = np.take_along_axis(other, pick, axis=1)
    found = np.isfinite(np.take_along_axis(gap, pick, axis=1))
    out = np.full((n, k), -1, dtype=np.intp)
    out[order] = np.where(found, order[chosen], -1)
    return out


def _curve_root(
    x0: FloatArray, g0: FloatArray, xp: FloatArray, gp: FloatArray, fallback: FloatArray
) -> FloatArray:
    """The root near x0 of the polynomial through (x0, g0) and the points (xp, gp) (rows,
    nearest first, NaN where none: the degree drops), by Newton on it from the secant through
    the nearest point; the secant where the polynomial's root is not finite or lies farther
    from it than the secant's own step, the fallback where the secant is not finite either."""
    nodes = np.concatenate((x0[:, None], xp), axis=1)
    coef = np.concatenate((g0[:, None], gp), axis=1)
    for level in range(1, nodes.shape[1]):  # Newton's divided differences, in place
        coef[:, level:] = (coef[:, level:] - coef[:, level - 1 : -1]) / (nodes[:, level:] - nodes[:, :-level])
    coef = np.where(np.isfinite(coef), coef, 0.0)  # a missing point: no term of its degree
    secant = x0 - g0 / coef[:, 1]
    x = secant
    for _ in range(4):
        value, slope = coef[:, -1], np.zeros_like(x)
        for level in range(nodes.shape[1] - 2, -1, -1):  # Horner on the Newton form
            slope = slope * (x - nodes[:, level]) + value
            value = value * (x - nodes[:, level]) + coef[:, level]
        x = x - value / slope
    plausible = np.isfinite(x) & (np.abs(x - secant) <= np.abs(secant - x0))
    out: FloatArray = np.where(plausible, x, np.where(np.isfinite(secant), secant, fallback))
    return out


class _Secant(NamedTuple):
    """The secant's working arrays, one entry per price, updated in place."""

    x0: FloatArray  # the last point evaluated
    g0: FloatArray  # g there
    x1: FloatArray  # the next point to evaluate (the answer, once converged)
    xm: FloatArray  # the point before x0 (NaN: none yet)
    gm: FloatArray
    slope: FloatArray  # the last secant's slope of √(A - intrinsic)
    residual: FloatArray  # A - price at x0
    vega: FloatArray  # > 0: a residual test at the European vega where measured (0: none)
    lo: FloatArray  # the bracket
    hi: FloatArray
    converged: BoolArray
    stepped: BoolArray  # x_m → x0 was a step of this entry's own secant (not a sibling's point)


def _begin(
    st: _Secant,
    scale: FloatArray,
    rows: npt.NDArray[np.intp],
    start: FloatArray,
    f0: FloatArray,
    g_start: FloatArray,
    step_to: FloatArray,
    known: npt.NDArray[np.intp] | None = None,
    x_known: FloatArray | None = None,
    f_known: FloatArray | None = None,
) -> npt.NDArray[np.intp]:
    """Sets these rows' first point (start, where A - price = f0) and bracket, and their next
    point (step_to, kept inside the bracket); the rows that still need a round. `known`
    (a subset of rows) have a second point of their curve, x_known where A - price = f_known,
    that narrows their bracket."""
    lo = np.where(f0 < 0, start, MIN_VOL)
    hi = np.where(f0 > 0, start, MAX_VOL)
    if known is not None and x_known is not None and f_known is not None and known.size:
        at = np.searchsorted(rows, known)  # rows is sorted (flatnonzero)
        lo[at] = np.where(f_known < 0, np.maximum(lo[at], x_known), lo[at])
        hi[at] = np.where(f_known > 0, np.minimum(hi[at], x_known), hi[at])
    st.lo[rows], st.hi[rows] = lo, hi
    # No usable first step (NaN too; or none at all: a start on the flat stretch below a deep
    # in-the-money put's critical vol, where A = intrinsic and the Newton step is 0): out from
    # the start by 2 % of it, or a bisection where the bracket is closed.
    inside = (step_to > lo) & (step_to < hi)
    nxt = np.where(inside, step_to, _fallback(start, f0, lo, hi, np.maximum(0.02 * start, 1e-4)))
    # Matched to the price's noise, or (leaders) a residual worth under 1e-7 of vol: an exact
    # guess (the last tick's IV of an unchanged price) costs one evaluation.
    matched = (np.abs(f0) <= _AMERICAN_PRICE_MATCH * scale[rows]) | (
        np.abs(f0) <= _AMERICAN_RESIDUAL * st.vega[rows]
    )
    st.x0[rows], st.g0[rows], st.residual[rows] = start, g_start, f0
    st.x1[rows] = np.where(matched, start, nxt)
    st.converged[rows[matched]] = True
    st.stepped[rows] = False
    return rows[~matched]


def _fallback(x: FloatArray, f: FloatArray, lo: FloatArray, hi: FloatArray, reach: FloatArray) -> FloatArray:
    """The next point where the secant (or the first Newton step) gives none: the middle of the
    bracket [lo, hi] — but where the bracket is still open on the root's side (that end is
    MIN_VOL or MAX_VOL, never evaluated), a step of `reach` out from x, towards the root.

    Bisecting an open bracket leaps: a deep in-the-money put whose warm starts sat on the flat
    stretch below its critical vol (A = intrinsic there: g0 = g1, no secant) went from 0.61 to
    5.3 with its root 6e-6 above, and halved its way back in 13 more rounds (the 400 chain's
    warm ticks: 16–18 rounds for ~50 prices, then 9–13). A step twice the last one grows
    geometrically, so a root far away is still reached in a few rounds."""
    out: FloatArray = 0.5 * (lo + hi)
    out = np.where((f < 0) & (hi >= MAX_VOL), np.minimum(out, x + reach), out)
    return np.where((f > 0) & (lo <= MIN_VOL), np.maximum(out, x - reach), out)


def _status(
    converged: BoolArray, residual: FloatArray, x1: FloatArray, scale: FloatArray
) -> npt.NDArray[np.int8]:
    status = np.full(x1.shape, IvStatus.NOT_CONVERGED, dtype=np.int8)
    status[converged] = IvStatus.OK
    # The bracket shut on an end with the price still unmatched: no IV inside [MIN_VOL, MAX_VOL].
    unmatched = converged & (np.abs(residual) > 1e-9 * scale)
    status[unmatched & (x1 <= 2.0 * MIN_VOL)] = IvStatus.BELOW_INTRINSIC
    status[unmatched & (x1 >= 0.999 * MAX_VOL)] = IvStatus.ABOVE_MAXIMUM
    return status


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
    guess: FloatArray | None = None,
) -> IvResult:
    """The annual vol at which the model prices each option at `price`; arguments as in
    `black_scholes` (arrays of one shape, or scalars that broadcast).

    Statuses, first that applies: BAD_INPUT (t, spot or strike not > 0, or any of them, the rate
    or the yield not finite); NO_PRICE (price NaN or <= 0); BELOW_INTRINSIC (the price is at or
    below the model's value at MIN_VOL — for a European option its discounted forward intrinsic
    value, S·e^{-qt} - K·e^{-rt}, plus what 1e-4 of vol adds; for an American one its exercise
    value, where the IV is not unique); ABOVE_MAXIMUM (at or above the model's value at MAX_VOL:
    about the spot for a call, the discounted strike for a European put, the strike for an
    American one); NOT_CONVERGED (never seen on the reference grid; kept so a failure is never a
    number).

    `guess`: a starting vol per price (same shape as `price`, or broadcastable to it; NaN, or a
    value outside [MIN_VOL, MAX_VOL], where there is none), typically the previous tick's IV. It
    only makes the solver faster: the answer and the status do not depend on it beyond the
    solver's tolerance."""
    if model not in ("european", "american"):
        raise ValueError(f"implied_vol: model {model!r} is not one of 'european', 'american'")
    # A vol of ones shaped like the prices makes the prices' shape part of the broadcast.
    m = model_inputs(is_call, spot, strike, t, rate, div_yield, np.ones(np.shape(price)))
    shape = m.spot.shape
    prep, vol, status = _prepare(price, m, guess)
    vol[prep.idx], status[prep.idx] = (_european if model == "european" else _american)(prep)
    return IvResult(vol.reshape(shape), status.reshape(shape))
