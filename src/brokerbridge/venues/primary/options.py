"""What Primary's catalogue says about an underlying's options: contracts, spot, lot, rate instrument.

Pure (no I/O): the `Catalog` of instrument details in, an `OptionFacts` out, for the options
service (services/options.py) and the benchmark. Every fact comes from the details, never from the
ticker text (`GFGC82777F` is strike 8277.7 only because its detail says `strike: 8277.7`):

- strike = `strike`, expiry = `maturityDate`, call/put = CFI `OCASPS`/`OPASPS`;
- the underlying's ticker: the stock (or CEDEAR, bond) whose detail has the same free-text
  `underlying` as the option (`Grupo Financiero Galicia Merval` → GGAL); when several instruments
  share the text (AL30, AL30D, AL30C), the one in the options' currency, then the shortest ticker;
- the lot: `roundLot` (100 on xOMS; its `contractMultiplier` is 1.0); when `roundLot` is missing
  or 1 and `contractMultiplier` is above 1 (Matba Rofex options on futures), the multiplier;
- the spot: the underlying listed in the options' own settlement (a premium paid in 24hs is set
  against a share bought in 24hs), else 24hs, else CI;
- the rate: the peso caución (CFI `RPXXXX`, currency ARS) of 1 day, else the shortest listed. Its
  term is the one fact only the symbol carries (`MERV - XMEV - PESOS - 1D`: the details have no
  maturity), so it is parsed from there.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date
from decimal import Decimal

import msgspec

from brokerbridge.core.errors import UnknownSymbol
from brokerbridge.core.options.analytics import OptionContract
from brokerbridge.venues.primary import VENUE
from brokerbridge.venues.primary.catalog import Catalog, InstrumentDetail, Kind, OptionType

_TERM = re.compile(r" - (\d+)D$")
# Where a spot may be listed, by preference once the options' own settlement is not listed.
_SPOT_SETTLEMENTS = ("24hs", "CI")
# Kinds that can underlie a BYMA option (equity options, CEDEAR options, bond options).
_UNDERLYING_KINDS = (Kind.STOCK, Kind.CEDEAR, Kind.BOND)


class RateInstrument(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str  # MERV - XMEV - PESOS - 1D
    days: int  # the repo's term, from the symbol


class OptionFacts(msgspec.Struct, frozen=True, kw_only=True):
    """An underlying's options as the venue lists them, and the instruments their analytics read."""

    underlying: str  # ticker (GGAL)
    underlying_symbol: str | None  # the spot instrument (MERV - XMEV - GGAL - 24hs); None: not listed
    settlement: str | None  # the options' settlement (24hs, CI)
    contracts: tuple[OptionContract, ...]  # by expiry, strike, call before put
    expiries: tuple[date, ...]  # every listed expiry of the underlying (also when one was asked for)
    rate: RateInstrument | None  # the peso caución to take the rate from; None: none listed


def lot_of(detail: InstrumentDetail) -> Decimal | None:
    """Shares (units) per contract: see the module docstring for the rule."""
    if detail.lot is not None and detail.lot > 1:
        return detail.lot
    if detail.contract_multiplier is not None and detail.contract_multiplier > 1:
        return detail.contract_multiplier
    return detail.lot if detail.lot is not None else detail.contract_multiplier


def caucion_term(symbol: str) -> int | None:
    """`MERV - XMEV - PESOS - 7D` → 7 (None when the symbol carries no term)."""
    found = _TERM.search(symbol)
    return int(found[1]) if found else None


def peso_caucion(catalog: Catalog) -> RateInstrument | None:
    """The 1-day peso caución, else the shortest-term one; None when none is listed."""
    best: RateInstrument | None = None
    for detail in catalog.cauciones():
        if (detail.currency or "").upper() != "ARS":
            continue
        days = caucion_term(detail.symbol)
        if days is None or days <= 0:
            continue
        if best is None or days < best.days:
            best = RateInstrument(symbol=detail.symbol, days=days)
    return best


def _is_option(detail: InstrumentDetail) -> bool:
    return (
        detail.kind is Kind.OPTION
        and detail.strike is not None
        and detail.maturity is not None
        and detail.option_type is not None
        and bool(detail.underlying)
    )


def underlying_tickers(catalog: Catalog) -> dict[str, str]:
    """Free-text underlying (lower case) → ticker, for every text an option names and an
    underlying-kind instrument shares."""
    option_texts = {(d.underlying or "").lower(): d.currency for d in catalog if _is_option(d)}
    candidates: dict[str, list[InstrumentDetail]] = {}
    for detail in catalog:
        text = (detail.underlying or "").lower()
        if detail.kind in _UNDERLYING_KINDS and text in option_texts:
            candidates.setdefault(text, []).append(detail)
    found = {}
    for text, details in candidates.items():
        currency = option_texts[text]
        best = min(details, key=lambda d: (d.currency != currency, len(d.ticker), d.ticker))
        found[text] = best.ticker
    return found


def optionable(catalog: Catalog) -> list[str]:
    """Tickers that have options listed, sorted (for an error's remedy and a UI's list)."""
    return sorted(set(underlying_tickers(catalog).values()))


def option_facts(catalog: Catalog, underlying: str, *, expiry: date | None = None) -> OptionFacts:
    """The options of `underlying` (a ticker such as GGAL, or a stock's full symbol), all expiries or
    `expiry`'s; UnknownSymbol with the underlyings that do have options when it has none."""
    texts = underlying_tickers(catalog)
    wanted = underlying.strip()
    listed = catalog.get(wanted)
    ticker = listed.ticker if listed is not None else wanted.upper()
    names = {text for text, t in texts.items() if t == ticker}
    options = [d for d in catalog if _is_option(d) and (d.underlying or "").lower() in names]
    if not options:
        have = ", ".join(optionable(catalog)) or "none"
        raise UnknownSymbol(
            f"{VENUE} lists no options on {underlying!r}",
            venue=VENUE,
            remedy=f"underlyings with options listed: {have}",
        )
    expiries = tuple(sorted({d.maturity for d in options if d.maturity is not None}))
    if expiry is not None and expiry not in expiries:
        raise UnknownSymbol(
            f"{VENUE} lists no {ticker} options expiring {expiry.isoformat()}",
            venue=VENUE,
            remedy=f"{ticker} expiries listed: {', '.join(d.isoformat() for d in expiries)}",
        )
    settlement = _dominant_settlement(options)
    chosen: dict[tuple[date, Decimal, OptionType], InstrumentDetail] = {}
    for detail in options:
        assert detail.maturity is not None and detail.strike is not None  # _is_option
        assert detail.option_type is not None
        if expiry is not None and detail.maturity != expiry:
            continue
        key = (detail.maturity, detail.strike, detail.option_type)
        # One listing per series: the options' own settlement wins over a twin in the other one.
        if key not in chosen or (detail.settlement == settlement != chosen[key].settlement):
            chosen[key] = detail
    contracts = tuple(
        OptionContract(
            symbol=d.symbol,
            underlying=ticker,
            option_type=d.option_type.value if d.option_type else "",
            strike=key[1],
            expiry=key[0],
            lot=lot_of(d),
        )
        for key, d in sorted(
            chosen.items(), key=lambda item: (item[0][0], item[0][1], item[0][2] != OptionType.CALL)
        )
    )
    return OptionFacts(
        underlying=ticker,
        underlying_symbol=spot_symbol(catalog, ticker, settlement),
        settlement=settlement,
        contracts=contracts,
        expiries=expiries,
        rate=peso_caucion(catalog),
    )


def _dominant_settlement(options: list[InstrumentDetail]) -> str | None:
    """The settlement most of the options are listed in (ties: 24hs before CI, as listed today)."""
    counts = Counter(d.settlement for d in options if d.settlement)
    if not counts:
        return None
    return max(counts, key=lambda s: (counts[s], s == "24hs"))


def spot_symbol(catalog: Catalog, ticker: str, settlement: str | None) -> str | None:
    """The underlying's instrument in `settlement`, else 24hs, else CI, else any listing of it."""
    listings = [d for d in catalog if d.ticker == ticker and d.kind in _UNDERLYING_KINDS]
    for wanted in (settlement, *_SPOT_SETTLEMENTS):
        for detail in listings:
            if wanted is not None and detail.settlement == wanted:
                return detail.symbol
    return listings[0].symbol if listings else None
