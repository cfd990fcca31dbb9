"""Options analytics (issue 20): a whole chain recomputed on an underlying's tick.

Two chains: the GGAL chain of the Primary simulator's catalogue (every listed option; `ChainInputs` built
from its instrument details through `venues/primary/options.py`, quotes around its start prices, no
server) and a 400-option synthetic chain (10 expiries × 20 strikes × call/put, a smile priced by
the model under test, a bid/ask spread). Each round moves the spot by a tick and calls
`analyze_chain` whole —
4 IVs (bid, ask, last, mid) and greeks per option, intrinsic, parity, covered call, the events —
for both models. Figures are process CPU time per chain (p50/p99), pinned to one core.

Two ways, both printed: cold — each round from scratch (no memo, no guesses: a chain's first
computation); warm — what the service does on every tick after its first: the chain's
`ChainMemo` kept across rounds and each round's guesses the previous round's IVs. The issue's
target line judges warm (the service's real case). An option's tick is timed too: the service
then computes that option and its parity partner only (services/options.py), with guesses.

Baseline in the same run: a per-option QuantLib loop on the same inputs — per option, 4
`impliedVolatility` (Brent on the analytic European engine, accuracy 1e-8) and the greeks at the
mid's IV (`AnalyticEuropeanEngine`): European only, QuantLib's American IV runs a finite-difference
grid per iteration and is no fair comparison. Skipped with a note when QuantLib is not installed.
The math alone (the solver on the same 4 prices per option, the greeks at the mids' IVs) is timed
too, so the chain's own work (arrays, bounds, parity, covered call, reasons, events) shows apart.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import time
from decimal import Decimal
from typing import Any

import msgspec
import numpy as np

from bench.common import Report, percentile
from brokerbridge.core.events import OptionAnalytics
from brokerbridge.core.options.american import american_greeks, american_price
from brokerbridge.core.options.analytics import (
    BUENOS_AIRES,
    ChainInputs,
    ChainMemo,
    OptionContract,
    Quote,
    analyze_chain,
)
from brokerbridge.core.options.black_scholes import european_greeks, european_price
from brokerbridge.core.options.calendar import byma_calendar
from brokerbridge.core.options.implied_vol import implied_vol
from brokerbridge.core.options.rates import caucion_rate
from brokerbridge.sim.primary.catalog import default_catalog
from brokerbridge.venues.primary import rest_messages as rm
from brokerbridge.venues.primary.catalog import Catalog
from brokerbridge.venues.primary.options import option_facts

TODAY = dt.date(2026, 12, 7)
NOW = dt.datetime(2026, 12, 7, 13, 0, tzinfo=BUENOS_AIRES).timestamp()
SPREAD = 0.02  # each side, of the mid
TARGET_MS = 5.0  # issue 20: 400 options ≤ 5 ms p99 against a py_vollib/QuantLib loop, judged warm


def _pin_one_core() -> None:
    """The figures are per core: numpy on small arrays is single-threaded anyway."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def _quote(mid: float, tick: float = 0.001) -> Quote:
    def price(x: float) -> Decimal:
        return Decimal(round(round(x / tick) * tick, 3)).quantize(Decimal("0.001"))

    return Quote(bid=price(mid * (1 - SPREAD)), ask=price(mid * (1 + SPREAD)), last=price(mid), ts=NOW)


def _spot(price: float) -> Quote:
    return Quote(bid=Decimal(price - 5), ask=Decimal(price + 5), last=Decimal(price), ts=NOW)


def ggal_inputs(model: str) -> ChainInputs:
    """The simulator's GGAL chain as the service would build it: its details through the wire
    decoder, the facts from them, quotes around the listed start prices."""
    sim = default_catalog(TODAY)
    details = [inst.detail() for inst in sim.instruments]
    catalog = Catalog.from_wire(
        msgspec.json.decode(msgspec.json.encode(details), type=list[rm.InstrumentDetailWire])
    )
    facts = option_facts(catalog, "GGAL")
    assert facts.rate is not None and facts.underlying_symbol is not None
    start = {inst.symbol: float(inst.start_price) for inst in sim.instruments}
    return ChainInputs(
        venue="primary",
        underlying=facts.underlying,
        underlying_symbol=facts.underlying_symbol,
        contracts=facts.contracts,
        quotes={c.symbol: _quote(start[c.symbol]) for c in facts.contracts},
        spot=_spot(start[facts.underlying_symbol]),
        spot_stale=None,
        rate=caucion_rate(facts.rate.symbol, start[facts.rate.symbol], facts.rate.days),
        model=model,
        now=NOW,
        calendar=byma_calendar(),
    )


def synthetic_inputs(model: str, spot: float = 7150.0) -> ChainInputs:
    """400 options: 10 monthly expiries × 20 strikes (60 %–150 % of spot) × call/put, priced by
    the model under test on a smile (σ 45 % at the money, rising on both wings, falling with time)."""
    rate = caucion_rate("MERV - XMEV - PESOS - 1D", 29.5, 1)
    contracts = []
    expiries = [dt.date(2026 + (11 + m) // 12, (11 + m) % 12 + 1, 18) for m in range(1, 11)]
    strikes = np.linspace(0.6 * spot, 1.5 * spot, 20).round(1)
    for expiry in expiries:
        for k in strikes:
            for kind in ("call", "put"):
                contracts.append(
                    OptionContract(
                        symbol=f"SYN {kind[0].upper()} {k:.1f} {expiry.isoformat()}",
                        underlying="GGAL",
                        option_type=kind,
                        strike=Decimal(f"{k:.1f}"),
                        expiry=expiry,
                        lot=Decimal(100),
                    )
                )
    is_call = np.array([c.option_type == "call" for c in contracts])
    strike = np.array([float(c.strike) for c in contracts])
    t = np.array([((c.expiry - TODAY).days + 4 / 24) / 365 for c in contracts])
    vol = 0.45 + 0.6 * np.log(strike / spot) ** 2 + 0.05 / np.sqrt(t)
    n = len(contracts)
    # Priced by the model under test: a European price can sit below an American put's intrinsic.
    price_of = american_price if model == "american" else european_price
    mids = price_of(is_call, np.full(n, spot), strike, t, np.full(n, rate.rate), np.zeros(n), vol)
    quotes = {c.symbol: _quote(max(float(m), 0.01)) for c, m in zip(contracts, mids, strict=True)}
    return ChainInputs(
        venue="primary",
        underlying="GGAL",
        underlying_symbol="MERV - XMEV - GGAL - 24hs",
        contracts=tuple(contracts),
        quotes=quotes,
        spot=_spot(spot),
        spot_stale=None,
        rate=rate,
        model=model,
        now=NOW,
        calendar=byma_calendar(),
    )


def time_ticks(inputs: ChainInputs, rounds: int, *, warm: bool = False) -> list[float]:
    """CPU seconds of `analyze_chain` per underlying tick (the spot moves by 5 each round). Warm:
    one `ChainMemo` across rounds and each round's guesses the previous round's IVs (the service's
    way; building the guesses, the service's work, is outside the timing)."""
    assert inputs.spot is not None and inputs.spot.last is not None
    base = float(inputs.spot.last)
    events = analyze_chain(inputs)  # warm-up: imports, first allocations
    memo = ChainMemo() if warm else None
    times = []
    for i in range(rounds):
        guesses = _guesses(events) if warm else None
        moved = ChainInputs(
            **{**_fields(inputs), "spot": _spot(base + 5 * ((i % 7) - 3)), "memo": memo, "guesses": guesses}
        )
        started = time.process_time()
        events = analyze_chain(moved)
        times.append(time.process_time() - started)
    return times


def _guesses(events: list[OptionAnalytics]) -> dict[str, tuple[float, ...]]:
    """Each option's IVs, NaN for none: as the service keeps them."""
    nan = math.nan
    return {
        e.symbol: tuple(nan if v is None else v for v in (e.iv_bid, e.iv_ask, e.iv_last, e.iv_mid))
        for e in events
    }


def time_option_ticks(inputs: ChainInputs, rounds: int) -> list[float]:
    """CPU seconds of what the service computes on one option's tick: that option (its bid up a
    tick) and its parity partner, with the chain's IVs as guesses."""
    guesses = _guesses(analyze_chain(inputs))
    by_key = {(c.expiry, c.strike, c.option_type): c for c in inputs.contracts}
    pairs = [
        (c, by_key[(c.expiry, c.strike, "put")])
        for c in inputs.contracts
        if c.option_type == "call" and (c.expiry, c.strike, "put") in by_key
    ]
    times = []
    for i in range(rounds):
        call, put = pairs[i % len(pairs)]
        quote = inputs.quotes[call.symbol]
        assert quote.bid is not None
        ticked = Quote(bid=quote.bid + Decimal("0.001"), ask=quote.ask, last=quote.last, ts=quote.ts)
        subset = ChainInputs(
            **{
                **_fields(inputs),
                "contracts": (call, put),
                "quotes": {**inputs.quotes, call.symbol: ticked},
                "guesses": guesses,
            }
        )
        started = time.process_time()
        analyze_chain(subset)
        times.append(time.process_time() - started)
    return times


def time_math(inputs: ChainInputs, rounds: int) -> list[float]:
    """CPU seconds of the math alone on the same chain: the solver on the 4 prices of every option
    and the greeks at the mids' IVs — what `analyze_chain` costs beyond this is its own work."""
    assert inputs.spot is not None and inputs.spot.last is not None and inputs.rate is not None
    contracts = inputs.contracts
    n = len(contracts)
    quotes = [inputs.quotes[c.symbol] for c in contracts]
    is_call = np.array([c.option_type == "call" for c in contracts])
    strike = np.array([float(c.strike) for c in contracts])
    close = [dt.datetime.combine(c.expiry, dt.time(17), BUENOS_AIRES).timestamp() for c in contracts]
    t = (np.array(close) - inputs.now) / 86400 / 365
    bid = np.array([float(q.bid) if q.bid is not None else np.nan for q in quotes])
    ask = np.array([float(q.ask) if q.ask is not None else np.nan for q in quotes])
    last = np.array([float(q.last) if q.last is not None else np.nan for q in quotes])
    prices = np.concatenate((bid, ask, last, (bid + ask) / 2))
    spot, r, q0 = np.full(4 * n, float(inputs.spot.last)), np.full(4 * n, inputs.rate.rate), np.zeros(4 * n)
    calls, strikes, years = np.tile(is_call, 4), np.tile(strike, 4), np.tile(t, 4)
    greeks_of = american_greeks if inputs.model == "american" else european_greeks
    times = []
    for _ in range(rounds):
        started = time.process_time()
        vol = implied_vol(prices, calls, spot, strikes, years, r, q0, model=inputs.model).vol  # type: ignore[arg-type]
        mid_vol = vol[3 * n :]
        ok = np.isfinite(mid_vol)
        greeks_of(is_call[ok], spot[:n][ok], strike[ok], t[ok], r[:n][ok], q0[:n][ok], mid_vol[ok])
        times.append(time.process_time() - started)
    return times


def _fields(inputs: ChainInputs) -> dict[str, object]:
    return {name: getattr(inputs, name) for name in inputs.__slots__}


def quantlib_loop(inputs: ChainInputs, rounds: int, *, american: bool = False) -> list[float] | None:
    """The baseline: per option, QuantLib's 4 IVs and the greeks at the mid's IV; the spot quote is
    moved each round as a QuantLib user would (objects built once, outside the timing).

    American: the same model as ours (QuantLib's `BjerksundStenslandApproximationEngine`, whose
    greeks are analytic), each IV by QuantLib's Brent on the engine's NPV to 1e-8 — not
    `impliedVolatility`, which for an American exercise runs a finite-difference engine per
    iteration (another model, and ~100× slower)."""
    try:
        import QuantLib as ql
    except ImportError:
        return None
    assert inputs.rate is not None and inputs.spot is not None and inputs.spot.last is not None
    today = ql.Date(TODAY.day, TODAY.month, TODAY.year)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    spot = ql.SimpleQuote(float(inputs.spot.last))
    vol = ql.SimpleQuote(0.45)
    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(spot),
        ql.YieldTermStructureHandle(ql.FlatForward(today, 0.0, dc)),
        ql.YieldTermStructureHandle(ql.FlatForward(today, inputs.rate.rate, dc)),
        ql.BlackVolTermStructureHandle(
            ql.BlackConstantVol(today, ql.NullCalendar(), ql.QuoteHandle(vol), dc)
        ),
    )
    engine = (
        ql.BjerksundStenslandApproximationEngine(process) if american else ql.AnalyticEuropeanEngine(process)
    )
    brent = ql.Brent()
    options = []
    for c in inputs.contracts:
        expiry = ql.Date(c.expiry.day, c.expiry.month, c.expiry.year)
        kind = ql.Option.Call if c.option_type == "call" else ql.Option.Put
        exercise = ql.AmericanExercise(today, expiry) if american else ql.EuropeanExercise(expiry)
        option = ql.VanillaOption(ql.PlainVanillaPayoff(kind, float(c.strike)), exercise)
        option.setPricingEngine(engine)
        q = inputs.quotes[c.symbol]
        prices = [float(p) for p in (q.bid, q.ask, q.last) if p is not None]
        if q.bid is not None and q.ask is not None:
            prices.append(float(q.bid + q.ask) / 2)
        options.append((option, prices))
    base = float(inputs.spot.last)
    times = []
    for i in range(rounds):
        started = time.process_time()
        spot.setValue(base + 5 * ((i % 7) - 3))
        for option, prices in options:
            ivs = []
            for p in prices:
                try:
                    if american:
                        ivs.append(
                            brent.solve(
                                lambda v, o=option, p=p: _npv_at(vol, o, v) - p, 1e-8, 0.45, 1e-4, 10.0
                            )
                        )
                    else:
                        ivs.append(option.impliedVolatility(p, process, 1e-8, 100, 1e-4, 10.0))
                except RuntimeError:  # no IV for this price (QuantLib raises): counted, as ours reasons it
                    ivs.append(math.nan)
            if ivs and math.isfinite(ivs[-1]):
                vol.setValue(ivs[-1])
                option.delta(), option.gamma(), option.vega(), option.theta(), option.rho()
        times.append(time.process_time() - started)
    return times


def _npv_at(vol: Any, option: Any, v: float) -> float:
    vol.setValue(v)
    npv: float = option.NPV()
    return npv


def run(smoke: bool) -> list[Report]:
    _pin_one_core()
    rounds = 5 if smoke else 300
    baseline_rounds = 2 if smoke else 20
    report = Report("options_chain")
    for name, build in (("ggal", ggal_inputs), ("synthetic400", synthetic_inputs)):
        for model in ("american", "european"):
            inputs = build(model)
            times = time_ticks(inputs, rounds)
            report.add(f"{name} {model} p50 ms", percentile(times, 0.5) * 1e3, "ms")
            report.add(f"{name} {model} p99 ms", percentile(times, 0.99) * 1e3, "ms")
            warm = time_ticks(inputs, rounds, warm=True)
            report.add(f"{name} {model} warm p50 ms", percentile(warm, 0.5) * 1e3, "ms")
            report.add(f"{name} {model} warm p99 ms", percentile(warm, 0.99) * 1e3, "ms")
            math_p50 = percentile(time_math(inputs, rounds), 0.5) * 1e3
            report.add(f"{name} {model} math alone p50 ms", math_p50, "ms")
            report.add(
                f"{name} {model} chain's own work p50 ms", percentile(times, 0.5) * 1e3 - math_p50, "ms"
            )
            tick = time_option_ticks(inputs, rounds)
            report.add(f"{name} {model} option tick p50 ms", percentile(tick, 0.5) * 1e3, "ms")
            report.add(f"{name} {model} option tick p99 ms", percentile(tick, 0.99) * 1e3, "ms")
            if name == "synthetic400" and model == "american":
                events = analyze_chain(inputs)
                report.add(
                    "synthetic400 american options with iv_mid", sum(e.iv_mid is not None for e in events)
                )
        baseline = quantlib_loop(build("european"), baseline_rounds)
        if baseline is None:
            report.note("QuantLib not installed: no baseline (pip install -e '.[test]')")
            continue
        report.add(f"{name} quantlib loop p50 ms", percentile(baseline, 0.5) * 1e3, "ms")
        report.ratio(
            f"{name} european speed-up vs quantlib", f"{name} quantlib loop p50 ms", f"{name} european p50 ms"
        )
        american = quantlib_loop(build("american"), max(1, baseline_rounds // 4), american=True)
        assert american is not None
        report.add(f"{name} quantlib american loop p50 ms", percentile(american, 0.5) * 1e3, "ms")
        report.ratio(
            f"{name} american speed-up vs quantlib",
            f"{name} quantlib american loop p50 ms",
            f"{name} american warm p50 ms",
        )
    # The target line read on the computation its baseline makes (a per-option loop of
    # py_vollib or QuantLib "on the same inputs"; py_vollib prices European options only), and on
    # the default model too: both judged, neither hidden. Why the American model cannot reach
    # 5 ms in numpy: docs/options-models.md ("Cost").
    report.target("synthetic400 european warm p99 ms", "<=", TARGET_MS)
    report.target("synthetic400 american warm p99 ms", "<=", TARGET_MS)
    report.note("process CPU time per chain, one core; quotes ±2 % around the mid, the spot moved 5 a round")
    report.note(
        "cold: each tick from scratch; warm (the target's): the service's ChainMemo and the previous "
        "tick's IVs as guesses; option tick: the option and its parity partner, as the service computes it"
    )
    return [report]
