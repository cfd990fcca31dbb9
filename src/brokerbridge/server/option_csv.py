"""An option chain as CSV (`GET /api/options/{venue}/{underlying}?format=csv`): one row per option.

Machine-readable, not a spreadsheet's locale: a header row, `.` as the decimal mark, ISO dates,
prices with the venue's own digits, floats in their shortest exact form (`repr`), `true`/`false`.
An empty figure is an empty cell, and the `reasons` column says why (`figure: why`, `; `
between them) — the same words as the JSON's `reasons`. Chain-wide facts a row needs on its own
(the caución's quote, whether the venue is a simulator) are repeated on every row, so a row cut
out of the file still says what it is.
"""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal

from brokerbridge.core.events import OptionAnalytics
from brokerbridge.core.options.views import OptionChain

# Figures in the order an options screen reads them: the contract, its quotes, IVs, greeks, values,
# rates, then the model's inputs.
CSV_COLUMNS = (
    "expiry",
    "days",
    "business_days",
    "symbol",
    "underlying",
    "underlying_symbol",
    "option_type",
    "strike",
    "lot",
    "model",
    "spot",
    "bid",
    "ask",
    "last",
    "mid",
    "iv_bid",
    "iv_ask",
    "iv_last",
    "iv_mid",
    "greeks_from",
    "delta",
    "gamma",
    "vega",
    "theta",
    "rho",
    "intrinsic",
    "time_value",
    "parity_tna",
    "caucion_tna",
    "covered_call_tna",
    "covered_call_tea",
    "break_even",
    "rate",
    "rate_source",
    "t",
    "dividends_pv",
    "stale",
    "simulated",
    "ts",
    "reasons",
)

Cell = Decimal | str | float | int | bool | None


def cell(value: Cell) -> str:
    """One value as text: empty for None; floats exact and shortest (`repr`: never locale-formatted)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def reasons_text(reasons: dict[str, str]) -> str:
    return "; ".join(f"{figure}: {why}" for figure, why in reasons.items())


def option_row(option: OptionAnalytics, chain: OptionChain) -> list[str]:
    o = option
    values: tuple[Cell, ...] = (
        o.expiry,
        o.days,
        o.business_days,
        o.symbol,
        o.underlying,
        o.underlying_symbol,
        o.option_type,
        o.strike,
        o.lot,
        o.model,
        o.spot,
        o.bid,
        o.ask,
        o.last,
        o.mid,
        o.iv_bid,
        o.iv_ask,
        o.iv_last,
        o.iv_mid,
        o.greeks_from,
        o.delta,
        o.gamma,
        o.vega,
        o.theta,
        o.rho,
        o.intrinsic,
        o.time_value,
        o.parity_tna,
        chain.caucion_tna,
        o.covered_call_tna,
        o.covered_call_tea,
        o.break_even,
        o.rate,
        o.rate_source,
        o.t,
        o.dividends_pv,
        o.stale,
        chain.simulated,
        o.ts,
        reasons_text(o.reasons),
    )
    return [cell(value) for value in values]


def chain_csv(chain: OptionChain) -> str:
    """The whole chain, by expiry, each expiry's options in the chain's order (strike, call first)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for expiry in chain.expiries:
        for option in expiry.options:
            writer.writerow(option_row(option, chain))
    return out.getvalue()


def csv_filename(chain: OptionChain, expiry: str | None) -> str:
    """`brokerbridge-options-primary-GGAL-2026-12-18-american.csv`: only safe characters, since
    the underlying is the caller's text."""
    parts = [chain.venue, chain.underlying, *([expiry] if expiry else []), chain.model]
    return (
        "brokerbridge-options-" + "-".join(re.sub(r"[^A-Za-z0-9._-]+", "_", part) for part in parts) + ".csv"
    )
