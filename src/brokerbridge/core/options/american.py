"""American options by Bjerksund–Stensland (2002), vectorized: BYMA's equity options are American.

Same arguments and units as `black_scholes`. Greeks by central differences of the price (the
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
correlation is always ±√(t1/T) = ±0.786, so its 20-point Gauss–Legendre sines are constants.
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
    european_greeks,
    model_inputs,
)

_T1_SHARE = 0.5 * (math.sqrt(5.0) - 1.0)  # t1 = _T1_SHARE·T: the 2002 paper's choice
_RHO = math.sqrt(_T1_SHARE)


class _BivariateRule(NamedTuple):
    sines: tuple[float, ...]
    weights: tuple[float, ...]  # Gauss–Legendre weights × asin(ρ)/4π


def _bivariate_rule(rho: float) -> _BivariateRule:
    nodes, weights = np.polynomial.legendre.leggauss(20)  # Genz: 20 points for 0.75 <= |ρ| < 0.925
    angle = math.asin(rho)
    sines = np.sin(0.5 * angle * (nodes + 1.0))
    return _BivariateRule(tuple(sines.tolist()), tuple((weights * angle / (4.0 * math.pi)).tolist()))


_RULES = {1: _bivariate_rule(_RHO), -1: _bivariate_rule(-_RHO)}


def _bivariate_cdf(a: FloatArray, b: FloatArray, sign: int) -> FloatArray:
    """P(X < a, Y < b) for standard normals with correlation sign·√(t1/T), clipped at 0."""
    rule = _RULES[sign]
    sines = np.asarray(rule.sines)
    hk = (a * b)[:, None]
    hs = (0.5 * (a * a + b * b))[:, None]
    terms = np.exp((sines * hk - hs) / (1.0 - sines * sines))
    total: FloatArray = terms @ np.asarray(rule.weights) + ndtr(a) * ndtr(b)
    return np.maximum(total, 0.0)


class _Call(NamedTuple):
    """The transformed problem: an American call, every array one entry per option priced."""

    spot: FloatArray
    strike: FloatArray
    t: FloatArray
    rate: FloatArray
    carry: FloatArray  # b = r - q
    vol: FloatArray


def _phi(
    c: _Call, log_scale: FloatArray, t: FloatArray, gamma: FloatArray | float, h: FloatArray, i: FloatArray
) -> FloatArray:
    """exp(log_scale)·φ(S, t, γ, H, I) of the paper, in log space (see the module's numerics)."""
    v2 = c.vol * c.vol
    sd = c.vol * np.sqrt(t)
    lam = -c.rate + gamma * c.carry + 0.5 * gamma * (gamma - 1.0) * v2
    kappa = 2.0 * c.carry / v2 + (2.0 * gamma - 1.0)
    log_i_s = np.log(i / c.spot)
    d = -(np.log(c.spot / h) + (c.carry + (gamma - 0.5) * v2) * t) / sd
    base = log_scale + lam * t + gamma * np.log(c.spot)
    out: FloatArray = np.exp(base + log_ndtr(d)) - np.exp(
        base + kappa * log_i_s + log_ndtr(d - 2.0 * log_i_s / sd)
    )
    return out


def _psi(
    c: _Call,
    log_scale: FloatArray,
    gamma: FloatArray | float,
    h: FloatArray,
    i2: FloatArray,
    i1: FloatArray,
    t1: FloatArray,
) -> FloatArray:
    """exp(log_scale)·ψ(S, T, γ, H, I2, I1, t1) of the paper, in log space."""
    v2 = c.vol * c.vol
    drift = c.carry + (gamma - 0.5) * v2
    sd1 = c.vol * np.sqrt(t1)
    sd = c.vol * np.sqrt(c.t)
    ln_s_i1 = np.log(c.spot / i1)
    ln_i2_s_i1 = 2.0 * np.log(i2) - np.log(c.spot) - np.log(i1)
    e1 = (ln_s_i1 + drift * t1) / sd1
    e2 = (ln_i2_s_i1 + drift * t1) / sd1
    e3 = (ln_s_i1 - drift * t1) / sd1
    e4 = (ln_i2_s_i1 - drift * t1) / sd1
    ln_s_h = np.log(c.spot / h)
    f1 = (ln_s_h + drift * c.t) / sd
    f2 = (2.0 * np.log(i2 / c.spot) + ln_s_h + drift * c.t) / sd
    f3 = (2.0 * np.log(i1 / c.spot) + ln_s_h + drift * c.t) / sd
    f4 = (2.0 * np.log(i1 / i2) + ln_s_h + drift * c.t) / sd
    lam = -c.rate + gamma * c.carry + 0.5 * gamma * (gamma - 1.0) * v2
    kappa = 2.0 * c.carry / v2 + (2.0 * gamma - 1.0)
    base = log_scale + lam * c.t + gamma * np.log(c.spot)

    def term(log_power: FloatArray | float, a: FloatArray, b: FloatArray, sign: int) -> FloatArray:
        m = _bivariate_cdf(-a, -b, sign)
        out: FloatArray = np.exp(base + log_power + np.log(m))
        return out

    return (
        term(0.0, e1, f1, 1)
        - term(kappa * np.log(i2 / c.spot), e2, f2, 1)
        - term(kappa * np.log(i1 / c.spot), e3, f3, -1)
        + term(kappa * np.log(i1 / i2), e4, f4, -1)
    )


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
    scale = k * k / ((b_inf - b_0) * b_0)
    i1 = b_0 + (b_inf - b_0) * -np.expm1(-(c.carry * t1 + 2.0 * c.vol * np.sqrt(t1)) * scale)
    i2 = b_0 + (b_inf - b_0) * -np.expm1(-(c.carry * c.t + 2.0 * c.vol * np.sqrt(c.t)) * scale)
    # α·S^β·(…) = (I - K)·exp(β·ln(S/I))·(…): the power never leaves log space.
    log_a1 = np.log(i1 - k) - beta * np.log(i1)
    log_a2 = np.log(i2 - k) - beta * np.log(i2)
    zero = np.zeros_like(k)
    log_k = np.log(k)
    value = (
        np.exp(log_a2 + beta * np.log(c.spot))
        - _phi(c, log_a2, t1, beta, i2, i2)
        + _phi(c, zero, t1, 1.0, i2, i2)
        - _phi(c, zero, t1, 1.0, i1, i2)
        - _phi(c, log_k, t1, 0.0, i2, i2)
        + _phi(c, log_k, t1, 0.0, i1, i2)
        + _phi(c, log_a1, t1, beta, i1, i2)
        - _psi(c, log_a1, beta, i1, i2, i1, t1)
        + _psi(c, zero, 1.0, i1, i2, i1, t1)
        - _psi(c, zero, 1.0, k, i2, i1, t1)
        - _psi(c, log_k, 0.0, i1, i2, i1, t1)
        + _psi(c, log_k, 0.0, k, i2, i1, t1)
    )
    v2002 = np.where(c.spot >= i2, c.spot - k, value)
    # The 1993 single flat boundary: the value of "exercise when S first reaches I" is a lower
    # bound for any I >= K, so the larger of several is the better price. Two boundaries: the
    # 1993 paper's (it beats 2002 in a corner: long, deep in the money, high vol) and the
    # perpetual one B∞, which rescues the corner where both papers' boundary formula falls
    # below K (strongly negative carry at low vol — a put at r = 60 %, σ = 5 %: the papers
    # give the European ≈ 0, the true value is several ticks). Six cheap terms each, next to
    # 2002's twenty bivariate ones.
    i_1993 = b_0 + (b_inf - b_0) * -np.expm1(
        -(c.carry * c.t + 2.0 * c.vol * np.sqrt(c.t)) * b_0 / (b_inf - b_0)
    )
    v1993 = np.fmax(_flat_boundary(c, beta, i_1993), _flat_boundary(c, beta, b_inf))
    out: FloatArray = np.fmax(v2002, v1993)
    return out


def _flat_boundary(c: _Call, beta: FloatArray, i: FloatArray) -> FloatArray:
    """Bjerksund–Stensland 1993 with the boundary I given (NaN where I <= K)."""
    k = c.strike
    zero = np.zeros_like(k)
    log_k = np.log(k)
    log_a = np.log(i - k) - beta * np.log(i)
    t = c.t
    value = (
        np.exp(log_a + beta * np.log(c.spot))
        - _phi(c, log_a, t, beta, i, i)
        + _phi(c, zero, t, 1.0, i, i)
        - _phi(c, zero, t, 1.0, k, i)
        - _phi(c, log_k, t, 0.0, i, i)
        + _phi(c, log_k, t, 0.0, k, i)
    )
    out: FloatArray = np.where(c.spot >= i, c.spot - k, value)
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
    with np.errstate(all="ignore"):  # tails and powers under/overflow inside log space by design
        calls = m.phi > 0
        european = european_greeks(calls, m.spot, m.strike, m.t, m.rate, m.div_yield, m.vol).price
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
    out = np.where(m.valid, price, np.nan) if not m.valid.all() else price
    return out.reshape(shape)


def american_greeks(
    is_call: BoolArray,
    spot: FloatArray,
    strike: FloatArray,
    t: FloatArray,
    rate: FloatArray,
    div_yield: FloatArray,
    vol: FloatArray,
) -> Greeks:
    """Central differences of `american_price`, all bumps priced in one vectorized call: spot
    ±0.01 % (delta, gamma), vol ±1e-4 (vega), time ±0.1 % of t (theta, per year, as the value's
    change as expiry comes closer), rate ±1e-4 (rho). Where the option is never exercised early
    (a call with q <= 0, a put with r <= 0) the figures are the analytic European ones."""
    m = model_inputs(is_call, spot, strike, t, rate, div_yield, vol)
    shape = m.spot.shape
    calls = m.phi > 0
    hs = 1e-4 * m.spot
    hv = np.minimum(1e-4, 0.5 * m.vol)
    ht = 1e-3 * m.t
    hr = np.full(shape, 1e-4)
    zero = np.zeros(shape)
    bumps = (
        (zero, zero, zero, zero),
        (hs, zero, zero, zero),
        (-hs, zero, zero, zero),
        (zero, hv, zero, zero),
        (zero, -hv, zero, zero),
        (zero, zero, ht, zero),
        (zero, zero, -ht, zero),
        (zero, zero, zero, hr),
        (zero, zero, zero, -hr),
    )
    stacked = american_price(
        np.concatenate([calls] * len(bumps)),
        np.concatenate([m.spot + b[0] for b in bumps]),
        np.concatenate([m.strike] * len(bumps)),
        np.concatenate([m.t + b[2] for b in bumps]),
        np.concatenate([m.rate + b[3] for b in bumps]),
        np.concatenate([m.div_yield] * len(bumps)),
        np.concatenate([m.vol + b[1] for b in bumps]),
    ).reshape((len(bumps), *shape))
    v0, s_up, s_dn, v_up, v_dn, t_up, t_dn, r_up, r_dn = stacked
    with np.errstate(all="ignore"):
        numeric = Greeks(
            v0,
            (s_up - s_dn) / (2.0 * hs),
            (s_up - 2.0 * v0 + s_dn) / (hs * hs),
            (v_up - v_dn) / (2.0 * hv),
            -(t_up - t_dn) / (2.0 * ht),
            (r_up - r_dn) / (2.0 * hr),
        )
        analytic = european_greeks(calls, m.spot, m.strike, m.t, m.rate, m.div_yield, m.vol)
    european_only = np.where(calls, m.div_yield, m.rate) <= 0
    out = Greeks(*(np.where(european_only, a, n) for a, n in zip(analytic, numeric, strict=True)))
    if m.valid.all():
        return out
    return Greeks(*(np.where(m.valid, g, np.nan) for g in out))
