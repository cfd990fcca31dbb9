"""American options by Bjerksund–Stensland (2002), vectorized: BYMA's equity options are American.

Same arguments and units as `black_scholes`. Greeks by finite differences of the price (the
approximation has no closed-form greeks that stay consistent with its price).

The model prices a call as the value of exercising at a two-piece flat boundary (I1 until
t1 = ½(√5 - 1)·T, then I2), so it is a lower bound of the true American value; a put goes
through the put-call transformation P(S, K, r, q) = C(K, S, q, r). A call on an underlying with
no yield (q <= 0) is never exercised early: its price is the European one, exactly, as is a put
when r <= 0. The result is kept inside the no-arbitrage band [max(European, intrinsic), S for a
call / K for a put] — the flat-boundary strategy can fall a hair below the European value in
corners of the grid (short expiries at high rates), and a trader reads an American price below
the European one as a bug. Accuracy against QuantLib's finite differences and its
Andersen–Lake–Offengenden engine: docs/options-models.md (tests/options asserts that table).

Numerics: the terms of the formula are powers like (S/I)^β and (I/S)^κ times normal
probabilities; at low vol and short expiries β and κ reach the hundreds, so each term is formed
as exp(log prefactor + log probability) — a huge power times a vanishing probability is a small
number, not inf·0. The bivariate normal is Genz's double-precision Drezner–Wesolowsky method; the
correlation is always ±√(t1/T) = ±0.786, so its Gauss–Legendre sines are constants.

Cost: an evaluation is a fixed ~0.35 ms of numpy calls plus ~4–5 µs an option, mostly scalar
special functions (32 log_ndtr for the sixteen φ terms, 32 ndtr and 200 exp for the twenty
bivariate normals). So the terms of one kind are computed in one array, each row's inputs
picked by index from the few distinct arrays (a numpy call per term cost 1.8 ms fixed).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy.special import log_ndtr, ndtr

from brokerbridge.core.options.black_scholes import (
    BoolArray,
    FloatArray,
    Greeks,
    ModelInputs,
    european_greeks,
    european_price_of,
    model_inputs,
)

_T1_SHARE = 0.5 * (math.sqrt(5.0) - 1.0)  # t1 = _T1_SHARE·T: the 2002 paper's choice
_RHO = math.sqrt(_T1_SHARE)


def _bivariate_rule(points: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Gauss–Legendre sines, 1/(1 - sine²) and weights × asin(ρ)/4π for ρ = +√(t1/T); the rule
    for -ρ is the same with the sines' and weights' signs flipped (asin is odd), which
    `_bivariate_cdf` applies by negating a·b and the sum."""
    nodes, weights = np.polynomial.legendre.leggauss(points)
    angle = math.asin(_RHO)
    sines = np.sin(0.5 * angle * (nodes + 1.0))
    return sines, 1.0 / (1.0 - sines * sines), weights * angle / (4.0 * math.pi)


# Genz uses 20 points for 0.75 <= |ρ| < 0.925 to reach 1e-16; 10 give prices within 1e-11
# relative of the 20-point ones on the reference grid (6: 1e-8), at half the cost. Constants
# (read only): the correlation is the same for every option.
_SINES, _INV_COS2, _WEIGHTS = _bivariate_rule(10)
# Per node: (sine/(1 - sine²), 1/(1 - sine²), weight), as floats for the loop in _bivariate_cdf.
_NODES = tuple(zip((_SINES * _INV_COS2).tolist(), _INV_COS2.tolist(), _WEIGHTS.tolist(), strict=True))
_RHO_SIGNS = np.array([1.0, 1.0, -1.0, -1.0])[:, None, None]  # ψ's four terms: +ρ, +ρ, -ρ, -ρ


def _bivariate_cdf(a: FloatArray, b: FloatArray, cdf_a: FloatArray, cdf_b: FloatArray) -> FloatArray:
    """P(X < a, Y < b) for standard normals with correlation ±√(t1/T) (the sign per ψ term, the
    first axis of a and b), clipped at 0, given N(a) and N(b): every one of the twenty at once.

    The quadrature loops over its ten nodes on arrays the size of a: one array with the nodes
    as an axis is ten times larger, and its temporaries cost more (allocation, a short inner
    axis) than the arithmetic (measured 3× slower at 600 options)."""
    hk = _RHO_SIGNS * a * b
    hs = 0.5 * (a * a + b * b)
    total = np.zeros_like(hk)
    term = np.empty_like(hk)
    scaled = np.empty_like(hk)
    for sine_c, c, weight in _NODES:
        np.multiply(hk, sine_c, out=term)
        np.multiply(hs, c, out=scaled)
        np.subtract(term, scaled, out=term)
        np.exp(term, out=term)
        term *= weight
        total += term
    total *= _RHO_SIGNS
    total += cdf_a * cdf_b
    return np.maximum(total, 0.0, out=total)


class _Call(NamedTuple):
    """The transformed problem: an American call, every array one entry per option priced."""

    spot: FloatArray
    strike: FloatArray
    t: FloatArray
    rate: FloatArray
    carry: FloatArray  # b = r - q
    vol: FloatArray


class _Shared(NamedTuple):
    """What every term of one option's formula shares (each (n,))."""

    c: _Call
    v2: FloatArray
    ln_s: FloatArray
    beta: FloatArray


def _lam_kappa(s: _Shared, gamma: FloatArray) -> tuple[FloatArray, FloatArray]:
    """λ and κ of the paper for the exponents γ (any shape ending in n)."""
    c = s.c
    lam = -c.rate + gamma * c.carry + 0.5 * gamma * (gamma - 1.0) * s.v2
    kappa = 2.0 * c.carry / s.v2 + (2.0 * gamma - 1.0)
    return lam, kappa


def _log_ndtr(x: FloatArray) -> FloatArray:
    """ln N(x): ln of ndtr where N(x) is a normal float (exact to an ulp of N, so to ~1e-16
    absolute in the logarithm: the terms take its exp), scipy's log_ndtr only where N(x)
    underflows. ndtr + log cost 21 ns an entry against log_ndtr's 31."""
    p = ndtr(x)
    out: FloatArray = np.log(p)
    tail = p < 1e-250
    if tail.any():
        out[tail] = log_ndtr(x[tail])
    return out


def _phi_terms(
    s: _Shared,
    log_scale: FloatArray,
    t: FloatArray,
    sd: FloatArray,
    gamma: FloatArray,
    ln_h: FloatArray,
    ln_i: FloatArray,
) -> FloatArray:
    """exp(log_scale)·φ(S, t, γ, H, I) of the paper for every row at once, in log space (see the
    module's numerics)."""
    lam, kappa = _lam_kappa(s, gamma)
    log_i_s = ln_i - s.ln_s
    d = -(s.ln_s - ln_h + (s.c.carry + (gamma - 0.5) * s.v2) * t) / sd
    base = log_scale + lam * t + gamma * s.ln_s
    tails = _log_ndtr(np.stack((d, d - 2.0 * log_i_s / sd)))
    terms = np.exp(np.stack((base + tails[0], base + kappa * log_i_s + tails[1])))
    out: FloatArray = terms[0] - terms[1]
    return out


def _psi_sum(
    s: _Shared,
    log_scale: FloatArray,
    gammas: FloatArray,
    ln_h: FloatArray,
    ln_i2: FloatArray,
    ln_i1: FloatArray,
    sd1: FloatArray,
    sd: FloatArray,
    t1: FloatArray,
) -> FloatArray:
    """Σ sign·exp(log_scale)·ψ(S, T, γ, H, I2, I1, t1) over the five rows of 2002 (scale and H
    per row, γ = gammas[_PSI_GAMMA]; I1, I2, t1 the 2002 boundary's), its twenty bivariate
    normals in one array, in log space."""
    c = s.c
    drift = c.carry + (gammas - 0.5) * s.v2  # (3, n): the e terms depend on γ only
    ln_s_i1 = s.ln_s - ln_i1
    ln_i2_s_i1 = 2.0 * ln_i2 - s.ln_s - ln_i1
    dt1 = drift * t1
    e = np.stack((ln_s_i1 + dt1, ln_i2_s_i1 + dt1, ln_s_i1 - dt1, ln_i2_s_i1 - dt1)) / -sd1  # -e
    zero = np.zeros_like(s.ln_s)
    shifts = np.stack((zero, 2.0 * (ln_i2 - s.ln_s), 2.0 * (ln_i1 - s.ln_s), 2.0 * (ln_i1 - ln_i2)))
    gamma = gammas[_PSI_GAMMA]
    f = ((s.ln_s - ln_h + drift[_PSI_GAMMA] * c.t) + shifts[:, None]) / -sd  # -f
    cdf_e = ndtr(e)[:, _PSI_GAMMA]
    e = e[:, _PSI_GAMMA]
    m = _bivariate_cdf(e, f, cdf_e, ndtr(f))
    lam, kappa = _lam_kappa(s, gamma)
    base = log_scale + lam * c.t + gamma * s.ln_s
    # The four terms' powers: 1, (I2/S)^κ, (I1/S)^κ, (I1/I2)^κ, i.e. κ·(shift / 2).
    terms = np.exp(base + 0.5 * kappa * shifts[:, None] + np.log(m))
    out: FloatArray = (_PSI_SIGNS * (terms[0] - terms[1] - terms[2] + terms[3])).sum(axis=0)
    return out


# The 2002 price, its 1993 single-boundary form and the perpetual boundary's are sums of φ terms
# (rows below) and, for 2002, ψ terms; the signs and which scale, γ and H each row takes.
# φ rows, per flat boundary I (1993 formula: t = T, H = K; head of 2002: t = t1, I = I2, H = I1):
#   -α·φ(β, I, I) + φ(1, I, I) - φ(1, H, I) - K·φ(0, I, I) + K·φ(0, H, I)
_PHI_SIGNS = np.array([*(-1.0, 1.0, -1.0, -1.0, 1.0) * 3, 1.0])[:, None]
# Each row's inputs as indices into the few distinct arrays (one fancy-index each, not a stack of
# sixteen): log scale into (ln α1, ln α2, ln α1993, ln α∞, 0, ln K); ln H and ln I into
# (ln S, ln K, ln I1, ln I2, ln I1993, ln B∞); the time into (t1, T); γ into (β, 1, 0).
_PHI_SCALE = np.array([1, 4, 4, 5, 5, 2, 4, 4, 5, 5, 3, 4, 4, 5, 5, 0])
_PHI_H = np.array([3, 3, 2, 3, 2, 4, 4, 1, 4, 1, 5, 5, 1, 5, 1, 2])
_PHI_I = np.array([3] * 5 + [4] * 5 + [5] * 5 + [3])
_PHI_TIME = np.array([0] * 5 + [1] * 10 + [0])
_PHI_GAMMA = np.array([0, 1, 1, 2, 2] * 3 + [0])
# ψ rows of 2002: -α1·ψ(β, I1) + ψ(1, I1) - ψ(1, K) - K·ψ(0, I1) + K·ψ(0, K)
_PSI_SIGNS = np.array([-1.0, 1.0, -1.0, -1.0, 1.0])[:, None]
_PSI_SCALE = np.array([0, 4, 4, 5, 5])
_PSI_H = np.array([2, 2, 1, 2, 1])
_PSI_GAMMA = np.array([0, 1, 1, 2, 2])


def _call_2002(c: _Call) -> FloatArray:
    """Bjerksund–Stensland 2002 for calls with q > 0 (early exercise possible), or their 1993
    value where that is higher."""
    v2 = c.vol * c.vol
    k = c.strike
    ratio = c.carry / v2
    beta = (0.5 - ratio) + np.sqrt((ratio - 0.5) ** 2 + 2.0 * c.rate / v2)
    b_inf = beta / (beta - 1.0) * k
    b_0 = np.maximum(k, c.rate / (c.rate - c.carry) * k)
    t1 = _T1_SHARE * c.t
    sd = c.vol * np.sqrt(c.t)
    sd1 = _RHO * sd  # σ·√t1
    span = b_inf - b_0
    scale = k * k / (span * b_0)
    i1 = b_0 + span * -np.expm1(-(c.carry * t1 + 2.0 * sd1) * scale)
    i2 = b_0 + span * -np.expm1(-(c.carry * c.t + 2.0 * sd) * scale)
    # The 1993 single flat boundary: the value of "exercise when S first reaches I" is a lower
    # bound for any I >= K, so the larger of several is the better price. Two boundaries: the
    # 1993 paper's (it beats 2002 in a corner: long, deep in the money, high vol) and the
    # perpetual one B∞, which rescues the corner where both papers' boundary formula falls
    # below K (strongly negative carry at low vol — a put at r = 60 %, σ = 5 %: the papers
    # give the European ≈ 0, the true value is several ticks).
    i_1993 = b_0 + span * -np.expm1(-(c.carry * c.t + 2.0 * sd) * b_0 / span)
    logs = np.log(np.stack((c.spot, k, i1, i2, i_1993, b_inf)))
    ln_s, ln_i1, ln_i2 = logs[0], logs[2], logs[3]
    # α·S^β = (I - K)·exp(β·ln(S/I)): the power never leaves log space (NaN where I <= K).
    log_a = np.log(np.stack((i1 - k, i2 - k, i_1993 - k, b_inf - k))) - beta * logs[2:]
    scales = np.concatenate((log_a, np.zeros((1, k.size)), logs[1:2]))
    gammas = np.stack((beta, np.ones_like(k), np.zeros_like(k)))
    s = _Shared(c, v2, ln_s, beta)
    # φ rows: five per flat boundary (2002's head at t1 with I = I2, H = I1; 1993's and the
    # perpetual one's at T with H = K), then 2002's own α1·φ(t1, β, I1, I2).
    phi = _PHI_SIGNS * _phi_terms(
        s,
        scales[_PHI_SCALE],
        np.stack((t1, c.t))[_PHI_TIME],
        np.stack((sd1, sd))[_PHI_TIME],
        gammas[_PHI_GAMMA],
        logs[_PHI_H],
        logs[_PHI_I],
    )
    # α·S^β plus the boundary's five φ: the 1993 formula (or the head of 2002).
    flat = phi[:15].reshape(3, 5, -1).sum(axis=1) + np.exp(log_a[1:] + beta * ln_s)
    value = (
        flat[0] + phi[15] + _psi_sum(s, scales[_PSI_SCALE], gammas, logs[_PSI_H], ln_i2, ln_i1, sd1, sd, t1)
    )
    v2002 = np.where(c.spot >= i2, c.spot - k, value)
    v1993 = np.fmax(
        np.where(c.spot >= i_1993, c.spot - k, flat[1]), np.where(c.spot >= b_inf, c.spot - k, flat[2])
    )
    out: FloatArray = np.fmax(v2002, v1993)
    return out


def american_price(
    is_call: BoolArray,
    spot: FloatArray,
    strike: FloatArray,
    t: FloatArray,
    rate: FloatArray,
    div_yield: FloatArray,
    vol: FloatArray,
) -> FloatArray:
    """Invalid entries are NaN there and only there, as in `black_scholes`."""
    m = model_inputs(is_call, spot, strike, t, rate, div_yield, vol)
    shape = m.spot.shape
    m = m.flat()
    price = american_price_of(m)
    out = np.where(m.valid, price, np.nan) if not m.valid.all() else price
    return out.reshape(shape)


def american_price_of(m: ModelInputs) -> FloatArray:
    """`american_price` of flat inputs `model_inputs` already prepared (for a caller that has
    them, as the IV solver's rounds: no broadcast and validation per round); invalid entries
    give a number, not NaN — the caller masks them."""
    with np.errstate(all="ignore"):  # tails and powers under/overflow inside log space by design
        calls = m.phi > 0
        european = european_price_of(m)
        # The put-call transformation: a put is a call with spot and strike, rate and yield swapped.
        c_spot = np.where(calls, m.spot, m.strike)
        c_strike = np.where(calls, m.strike, m.spot)
        c_rate = np.where(calls, m.rate, m.div_yield)
        c_yield = np.where(calls, m.div_yield, m.rate)
        early = m.valid & (c_yield > 0)
        price = european.copy()
        if early.any():
            c = _Call(
                c_spot[early],
                c_strike[early],
                m.t[early],
                c_rate[early],
                c_rate[early] - c_yield[early],
                m.vol[early],
            )
            intrinsic = np.maximum(c.spot - c.strike, 0.0)
            bjs = _call_2002(c)
            bjs = np.where(np.isfinite(bjs), bjs, intrinsic)
            price[early] = np.minimum(np.maximum(bjs, np.maximum(european[early], intrinsic)), c.spot)
    return price


def american_greeks(
    is_call: BoolArray,
    spot: FloatArray,
    strike: FloatArray,
    t: FloatArray,
    rate: FloatArray,
    div_yield: FloatArray,
    vol: FloatArray,
) -> Greeks:
    """Finite differences of `american_price`, all bumps priced in one vectorized call: spot
    ±0.01 % centred (delta, gamma), then one-sided from the base price: vol +1e-5 (vega), time
    -0.01 % of t (theta, per year, as the value's change as expiry comes closer), rate +1e-5
    (rho; centred ±1e-4 where r = q, the 2002 boundary's kink in the rate). Where the option
    is never exercised early (a call with q <= 0, a put with r <= 0) the figures are the
    analytic European ones, and those entries cost no American evaluation at all."""
    full = model_inputs(is_call, spot, strike, t, rate, div_yield, vol)
    shape = full.spot.shape
    full = full.flat()
    calls = full.phi > 0
    analytic = european_greeks(calls, full.spot, full.strike, full.t, full.rate, full.div_yield, full.vol)
    out = [np.array(figure, dtype=np.float64).ravel() for figure in analytic]
    early = np.flatnonzero(full.valid & (np.where(calls, full.div_yield, full.rate) > 0))
    if early.size:
        subset = full.take(early)
        for figure, value in zip(out, _bumped_greeks(subset), strict=True):
            figure[early] = value
    return Greeks(*(np.where(full.valid, figure, np.nan).reshape(shape) for figure in out))


def _bumped_greeks(m: ModelInputs) -> Greeks:
    calls = m.phi > 0
    # The 2002 boundary has a kink in the rate where r = q (b = 0 in r/(r - b)): one side of it
    # alone is up to 80 % from the average of both, so there rho stays centred (±1e-4).
    kink = np.abs(m.rate - m.div_yield) <= 2e-4
    hs = 1e-4 * m.spot
    hv = np.minimum(1e-5, 0.5 * m.vol)
    ht = 1e-4 * m.t
    hr = np.where(kink, 1e-4, 1e-5)
    zero = np.zeros(m.spot.shape)
    # Six prices (seven near r = q), not nine: delta and gamma need the centred pair around
    # the base price; vega, theta and rho take one bump each from that base, ten times smaller
    # than the centred ones were (a one-sided difference's error is h·V''/2V', ~1e-5 relative
    # here; the centred 1e-4 vol pair straddled the switch between the 2002 and 1993 bounds in
    # places, 0.5 % off where the one-sided 1e-5 agrees with 1e-6).
    bumps = (  # (spot, vol, t, rate)
        (zero, zero, zero, zero),
        (hs, zero, zero, zero),
        (-hs, zero, zero, zero),
        (zero, hv, zero, zero),
        (zero, zero, -ht, zero),
        (zero, zero, zero, hr),
    )
    k = np.flatnonzero(kink)
    stacked = american_price(
        np.concatenate([calls] * len(bumps) + [calls[k]]),
        np.concatenate([m.spot + b[0] for b in bumps] + [m.spot[k]]),
        np.concatenate([m.strike] * len(bumps) + [m.strike[k]]),
        np.concatenate([m.t + b[2] for b in bumps] + [m.t[k]]),
        np.concatenate([m.rate + b[3] for b in bumps] + [m.rate[k] - hr[k]]),
        np.concatenate([m.div_yield] * len(bumps) + [m.div_yield[k]]),
        np.concatenate([m.vol + b[1] for b in bumps] + [m.vol[k]]),
    )
    v0, s_up, s_dn, v_up, t_dn, r_up = stacked[: len(bumps) * m.spot.size].reshape(
        (len(bumps), *m.spot.shape)
    )
    r_dn = v0.copy()  # one-sided rho: the base price; centred at the kink
    r_dn[k] = stacked[len(bumps) * m.spot.size :]
    return Greeks(
        v0,
        (s_up - s_dn) / (2.0 * hs),
        (s_up - 2.0 * v0 + s_dn) / (hs * hs),
        (v_up - v0) / hv,
        (t_dn - v0) / ht,  # the value's change as expiry comes closer, per year
        (r_up - r_dn) / np.where(kink, 2.0 * hr, hr),
    )
