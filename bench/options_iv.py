"""Issue 20, the options math on its own: implied vols and greeks of a 400-option synthetic chain.

One round = what one underlying tick costs the math: 1,600 implied vols (bid, ask, last, mid of
400 options) and the greeks of the 400 at their mid IV. Ours is one vectorized call each
(black_scholes, implied_vol; american for the American model); the baselines do the same inputs
one option at a time: Jäckel's `lets_be_rational` (pure Python, IVs only: it has no greeks) and
QuantLib (`impliedVolatility` at accuracy 1e-12 on an AnalyticEuropeanEngine, then NPV + greeks).
p50/p99 of process CPU time per round (the machine is shared), one core. The chain is seeded:
spot 7,150 (GGAL), strikes log-uniform within ±40 %, expiries 11/39/72/102 days, a smile
0.45 + 0.3·ln(K/S)², rate 30 % continuous, no yield; bid/ask/last/mid = 0.97/1.03/1.01/1.00 of
the model price. The same run reports how far ours is from each baseline's IVs (max |Δσ| where
vega is not negligible). The American round is timed cold and warm (each price's IV of a tick
before as `guess`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from bench.common import SEED, Report, percentile
from brokerbridge.core.options.american import american_greeks, american_price
from brokerbridge.core.options.black_scholes import european_greeks
from brokerbridge.core.options.implied_vol import implied_vol

OPTIONS = 400
SPOT = 7150.0
RATE = 0.3
DAYS = (11, 39, 72, 102)
QUOTE_SHARES = (0.97, 1.03, 1.01, 1.0)  # bid, ask, last, mid of the model price


class Chain(NamedTuple):
    is_call: np.ndarray
    strike: np.ndarray
    t: np.ndarray
    vol: np.ndarray
    prices: np.ndarray  # (4, n): bid, ask, last, mid


def chain(american: bool) -> Chain:
    rng = np.random.default_rng(SEED)
    strike = SPOT * np.exp(rng.uniform(-0.4, 0.4, OPTIONS))
    t = rng.choice(np.array(DAYS, dtype=np.float64), OPTIONS) / 365.0
    is_call = rng.random(OPTIONS) < 0.5
    vol = 0.45 + 0.3 * np.log(strike / SPOT) ** 2
    price = (american_price if american else european_greeks_price)(is_call, SPOT, strike, t, RATE, 0.0, vol)
    return Chain(is_call, strike, t, vol, np.outer(QUOTE_SHARES, price))


def european_greeks_price(*args: Any) -> np.ndarray:
    return np.asarray(european_greeks(*args).price)


def ours(c: Chain, american: bool, guess: np.ndarray | None = None, spot: float = SPOT) -> np.ndarray:
    """One round; returns the 1,600 IVs (for the accuracy figures and a next tick's guesses)."""
    model = "american" if american else "european"
    n = len(c.strike)
    four = np.tile(c.is_call, 4), np.tile(c.strike, 4), np.tile(c.t, 4)
    result = implied_vol(
        c.prices.ravel(), four[0], spot, four[1], four[2], RATE, 0.0, model=model, guess=guess
    )
    mid_vol = np.where(np.isfinite(result.vol[3 * n :]), result.vol[3 * n :], 0.3)
    (american_greeks if american else european_greeks)(c.is_call, spot, c.strike, c.t, RATE, 0.0, mid_vol)
    return np.asarray(result.vol).reshape(4, n)


def lbr_loop(c: Chain) -> np.ndarray:
    from lets_be_rational import implied_volatility_from_a_transformed_rational_guess as lbr
    from lets_be_rational.exceptions import VolatilityValueException

    out = np.full(c.prices.shape, np.nan)
    for i in range(len(c.strike)):
        t = float(c.t[i])
        discount = float(np.exp(-RATE * t))
        forward = SPOT / discount
        flag = 1.0 if c.is_call[i] else -1.0
        for j in range(4):
            try:
                out[j, i] = lbr(float(c.prices[j, i]) / discount, forward, float(c.strike[i]), t, flag)
            except VolatilityValueException:  # below intrinsic / above the maximum: no IV, as ours
                pass
    return out


def quantlib_loop(c: Chain) -> np.ndarray:
    import QuantLib as ql

    today = ql.Date(7, 12, 2026)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    spot = ql.QuoteHandle(ql.SimpleQuote(SPOT))
    rate = ql.YieldTermStructureHandle(ql.FlatForward(today, RATE, dc))
    yield_ = ql.YieldTermStructureHandle(ql.FlatForward(today, 0.0, dc))
    vol_quote = ql.SimpleQuote(0.3)
    vol = ql.BlackVolTermStructureHandle(
        ql.BlackConstantVol(today, ql.NullCalendar(), ql.QuoteHandle(vol_quote), dc)
    )
    process = ql.BlackScholesMertonProcess(spot, yield_, rate, vol)
    engine = ql.AnalyticEuropeanEngine(process)
    out = np.full(c.prices.shape, np.nan)
    for i in range(len(c.strike)):
        payoff = ql.PlainVanillaPayoff(ql.Option.Call if c.is_call[i] else ql.Option.Put, float(c.strike[i]))
        option = ql.VanillaOption(payoff, ql.EuropeanExercise(today + round(float(c.t[i]) * 365)))
        option.setPricingEngine(engine)
        for j in range(4):
            try:
                out[j, i] = option.impliedVolatility(float(c.prices[j, i]), process, 1e-12, 1000, 1e-7, 10.0)
            except RuntimeError:
                pass
        vol_quote.setValue(out[3, i] if np.isfinite(out[3, i]) else 0.3)
        option.NPV(), option.delta(), option.gamma(), option.vega(), option.theta(), option.rho()
    return out


def timed(run: Callable[[], object], rounds: int) -> tuple[list[float], Any]:
    seconds, result = [], None
    for _ in range(rounds):
        start = time.process_time()
        result = run()
        seconds.append(time.process_time() - start)
    return seconds, result


def add_times(report: Report, name: str, seconds: list[float]) -> None:
    report.add(f"{name} p50 ms", percentile(seconds, 0.5) * 1e3, "ms")
    report.add(f"{name} p99 ms", percentile(seconds, 0.99) * 1e3, "ms")


def run(smoke: bool) -> list[Report]:
    rounds, baseline_rounds = (3, 1) if smoke else (300, 5)
    report = Report("options_iv")
    european = chain(american=False)
    meaningful = european_greeks(european.is_call, SPOT, european.strike, european.t, RATE, 0.0, european.vol)
    keep = meaningful.vega >= 1e-8 * np.maximum(SPOT, european.strike)
    seconds, ours_iv = timed(lambda: ours(european, american=False), rounds)
    add_times(report, "european brokerbridge", seconds)
    seconds, lbr_iv = timed(lambda: lbr_loop(european), baseline_rounds)
    add_times(report, "european lets_be_rational loop (IVs only)", seconds)
    seconds, ql_iv = timed(lambda: quantlib_loop(european), baseline_rounds)
    add_times(report, "european QuantLib loop", seconds)
    report.ratio(
        "ratio vs lets_be_rational (p50)",
        "european lets_be_rational loop (IVs only) p50 ms",
        "european brokerbridge p50 ms",
    )
    report.ratio("ratio vs QuantLib (p50)", "european QuantLib loop p50 ms", "european brokerbridge p50 ms")
    report.add("max |iv - lets_be_rational|", float(np.nanmax(np.abs(ours_iv - lbr_iv)[:, keep])))
    report.add("max |iv - QuantLib|", float(np.nanmax(np.abs(ours_iv - ql_iv)[:, keep])))
    american = chain(american=True)
    american_rounds = max(1, rounds // 3)
    seconds, _ = timed(lambda: ours(american, american=True), american_rounds)
    add_times(report, "american brokerbridge", seconds)
    # Warm: the service passes each price's IV of the previous tick as its guess. An underlying
    # tick with the options' quotes unchanged (spot 0.1 % lower a tick ago) moves IVs by up to
    # ~2e-2; quotes that moved with the spot would leave them closer.
    last_tick = ours(american, american=True, spot=SPOT * 0.999).ravel()
    seconds, _ = timed(lambda: ours(american, american=True, guess=last_tick), american_rounds)
    add_times(report, "american brokerbridge warm (last tick's IVs)", seconds)
    report.target("european brokerbridge p99 ms", "<=", 3.0)
    report.note(
        f"{OPTIONS} options × 4 prices + greeks per round; ours {rounds} rounds"
        f" (American {american_rounds}), baselines {baseline_rounds}; process CPU time, one core"
    )
    return [report]
