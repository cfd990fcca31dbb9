"""Primary's instrument catalogue: details → `InstrumentDetail`, filters by CFI code, option chains.

Built from `rest/instruments/details` (once a day is Primary's best practice). Core `Instrument`
events carry what every venue has; the Primary specifics (CFI code, segment, maturity, strike,
underlying, settlement, lot) live in `InstrumentDetail` here.

CFI codes seen (primary.md §3.3, §3.5): ESXXXX stocks, EMXXXX CEDEARs, DBXXXX bonds, DBXXFR
corporate bonds (ONs), DYXTXR letras, OCASPS/OPASPS call/put on a stock, OCAFXS/OPAFXS and
OCEFXS/OPEFXS options on futures, FXXXSX futures, FXXXXX spreads, RPXXXX cauciones (repos),
MRIXXX indices. The first letter is the category (E equity, D debt, O option, F future, R repo,
M other) and, for options, the second letter C/P says call/put.

Option chains: BYMA tickers encode strikes ambiguously (`GFGC82777F` is strike 8277.7), so the
strike always comes from the detail's `strike` field, never from the symbol. The underlying is
the detail's free text (`Grupo Financiero Galicia Merval`, shared by the GGAL stock and its
options) or, for options on futures, the future's symbol (`SOJ.ROS/JUL26` in `SOJ.ROS/JUL26 312 C`).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Iterator
from datetime import date
from decimal import Decimal

import msgspec

from brokerbridge.core.events import Instrument
from brokerbridge.venues.primary import DEFAULT_MARKET, VENUE
from brokerbridge.venues.primary.rest_messages import InstrumentDetailWire, InstrumentRow


class Kind(enum.StrEnum):
    STOCK = "stock"
    CEDEAR = "cedear"
    BOND = "bond"
    OPTION = "option"
    FUTURE = "future"
    SPREAD = "spread"
    CAUCION = "caucion"
    INDEX = "index"
    OTHER = "other"


class OptionType(enum.StrEnum):
    CALL = "call"
    PUT = "put"


def kind_of(cfi: str | None) -> Kind:
    code = (cfi or "").upper()
    if code.startswith("EM"):
        return Kind.CEDEAR
    if code.startswith("E"):
        return Kind.STOCK
    if code.startswith("D"):
        return Kind.BOND
    if code.startswith("O"):
        return Kind.OPTION
    if code == "FXXXXX":
        return Kind.SPREAD
    if code.startswith("F"):
        return Kind.FUTURE
    if code.startswith("RP"):
        return Kind.CAUCION
    if code.startswith("MRI"):
        return Kind.INDEX
    return Kind.OTHER


def option_type_of(cfi: str | None) -> OptionType | None:
    code = (cfi or "").upper()
    if not code.startswith("O") or len(code) < 2:
        return None
    return {"C": OptionType.CALL, "P": OptionType.PUT}.get(code[1])


_BYMA = re.compile(r"^MERV - XMEV - (?P<ticker>.+?)(?: - (?P<settlement>[^-]+?))?$")
_FUTURE_OPTION = re.compile(r"^(?P<future>\S+/\S+) (?P<strike>[\d.]+) (?P<cp>[CP])$")


def split_symbol(symbol: str) -> tuple[str, str | None]:
    """`MERV - XMEV - GGAL - 24hs` → (`GGAL`, `24hs`); `DLR/FEB26` → (`DLR/FEB26`, None)."""
    found = _BYMA.match(symbol)
    if found is None:
        return symbol, None
    return found["ticker"], found["settlement"]


class InstrumentDetail(msgspec.Struct, frozen=True, kw_only=True):
    """A Primary instrument with the fields brokerbridge uses (see the module docstring)."""

    symbol: str
    market_id: str = DEFAULT_MARKET
    segment: str | None = None
    cfi: str | None = None
    kind: Kind = Kind.OTHER
    ticker: str  # BYMA ticker (`GGAL`, `GFGC4500DI`) or the whole symbol elsewhere
    settlement: str | None = None  # `CI`, `24hs`, `3D` (cauciones) …
    currency: str | None = None
    description: str | None = None
    underlying: str | None = None  # free text from the detail, or the future for futures options
    option_type: OptionType | None = None
    strike: Decimal | None = None
    maturity: date | None = None
    tick: Decimal | None = None  # minimum price increment
    qty_increment: Decimal | None = None
    min_qty: Decimal | None = None
    max_qty: Decimal | None = None
    lot: Decimal | None = None  # roundLot
    contract_multiplier: Decimal | None = None
    price_conversion_factor: Decimal | None = None  # 0.01 for bonds: price per 100 nominal
    price_precision: int | None = None
    qty_precision: int | None = None
    low_limit: Decimal | None = None
    high_limit: Decimal | None = None
    order_types: tuple[str, ...] = ()
    times_in_force: tuple[str, ...] = ()


def _maturity(text: str | None) -> date | None:
    if not text or len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def detail_from_wire(wire: InstrumentDetailWire) -> InstrumentDetail:
    symbol = wire.instrumentId.symbol
    ticker, settlement = split_symbol(symbol)
    kind = kind_of(wire.cficode)
    underlying = wire.underlying
    found = _FUTURE_OPTION.match(symbol)
    if found is not None and kind is Kind.OPTION:
        underlying = found["future"]
    tick = wire.minPriceIncrement
    if tick is None and wire.tickPriceRanges:
        tick = next(iter(wire.tickPriceRanges.values())).tick
    return InstrumentDetail(
        symbol=symbol,
        market_id=wire.instrumentId.marketId,
        segment=wire.segment.marketSegmentId if wire.segment is not None else None,
        cfi=wire.cficode,
        kind=kind,
        ticker=ticker,
        settlement=settlement,
        currency=wire.currency,
        description=wire.securityDescription,
        underlying=underlying,
        option_type=option_type_of(wire.cficode),
        strike=wire.strike if wire.strike is not None else wire.strikePrice,
        maturity=_maturity(wire.maturityDate),
        tick=tick,
        qty_increment=wire.tickSize,
        min_qty=wire.minTradeVol,
        max_qty=wire.maxTradeVol,
        lot=wire.roundLot,
        contract_multiplier=wire.contractMultiplier,
        price_conversion_factor=wire.priceConvertionFactor,
        price_precision=wire.instrumentPricePrecision,
        qty_precision=wire.instrumentSizePrecision,
        low_limit=wire.lowLimitPrice,
        high_limit=wire.highLimitPrice,
        order_types=tuple(wire.orderTypes or ()),
        times_in_force=tuple(wire.timesInForce or ()),
    )


def detail_from_row(row: InstrumentRow) -> InstrumentDetail:
    """A thinner detail from `instruments/all` (symbol and CFI only)."""
    symbol = row.instrumentId.symbol
    ticker, settlement = split_symbol(symbol)
    return InstrumentDetail(
        symbol=symbol,
        market_id=row.instrumentId.marketId,
        cfi=row.cficode,
        kind=kind_of(row.cficode),
        ticker=ticker,
        settlement=settlement,
        option_type=option_type_of(row.cficode),
    )


def instrument_event(detail: InstrumentDetail, *, ts: float, venue: str = VENUE) -> Instrument:
    """The venue-independent `Instrument` event: base = ticker, quote = currency."""
    price_precision = detail.price_precision if detail.price_precision is not None else 2
    qty_precision = detail.qty_precision if detail.qty_precision is not None else 0
    increment = detail.qty_increment if detail.qty_increment else Decimal(1).scaleb(-qty_precision)
    return Instrument(
        venue=venue,
        ts=ts,
        symbol=detail.symbol,
        base=detail.ticker,
        quote=detail.currency or "",
        status="listed",
        price_precision=price_precision,
        qty_precision=qty_precision,
        price_increment=detail.tick if detail.tick else Decimal(1).scaleb(-price_precision),
        qty_increment=increment,
        qty_min=detail.min_qty if detail.min_qty else increment,
    )


class Catalog:
    """An in-memory, immutable catalogue of `InstrumentDetail`s with the lookups users need."""

    def __init__(self, details: Iterable[InstrumentDetail]) -> None:
        self._by_symbol: dict[str, InstrumentDetail] = {}
        for detail in details:
            self._by_symbol[detail.symbol] = detail

    @classmethod
    def from_wire(cls, wires: Iterable[InstrumentDetailWire]) -> Catalog:
        return cls(detail_from_wire(w) for w in wires)

    def __len__(self) -> int:
        return len(self._by_symbol)

    def __iter__(self) -> Iterator[InstrumentDetail]:
        return iter(self._by_symbol.values())

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._by_symbol

    def get(self, symbol: str) -> InstrumentDetail | None:
        return self._by_symbol.get(symbol)

    def by_cfi(self, *codes: str) -> list[InstrumentDetail]:
        """Instruments whose CFI code is one of `codes` (exact, case-insensitive)."""
        wanted = {c.upper() for c in codes}
        return [d for d in self if (d.cfi or "").upper() in wanted]

    def by_kind(self, kind: Kind) -> list[InstrumentDetail]:
        return [d for d in self if d.kind is kind]

    def stocks(self) -> list[InstrumentDetail]:
        return self.by_kind(Kind.STOCK)

    def bonds(self) -> list[InstrumentDetail]:
        return self.by_kind(Kind.BOND)

    def futures(self) -> list[InstrumentDetail]:
        return self.by_kind(Kind.FUTURE)

    def cauciones(self) -> list[InstrumentDetail]:
        return self.by_kind(Kind.CAUCION)

    def options(self) -> list[InstrumentDetail]:
        return self.by_kind(Kind.OPTION)

    def search(
        self, text: str = "", *, settlement: str | None = None, segment: str | None = None
    ) -> list[InstrumentDetail]:
        """Case-insensitive substring match on symbol, ticker and underlying."""
        needle = text.strip().lower()
        out = []
        for d in self:
            haystack = " ".join(filter(None, (d.symbol, d.ticker, d.underlying))).lower()
            if needle and needle not in haystack:
                continue
            if settlement is not None and (d.settlement or "").lower() != settlement.lower():
                continue
            if segment is not None and (d.segment or "").upper() != segment.upper():
                continue
            out.append(d)
        return out

    def _underlying_names(self, underlying: str) -> set[str]:
        """`GGAL` (a ticker), a stock's symbol or the free text all name the same underlying."""
        names = {underlying.strip().lower()}
        for d in self:
            if d.kind is not Kind.OPTION and underlying in (d.ticker, d.symbol) and d.underlying:
                names.add(d.underlying.lower())
        return names

    def option_chain(
        self, underlying: str, *, expiry: date | None = None
    ) -> list[tuple[Decimal, InstrumentDetail | None, InstrumentDetail | None]]:
        """(strike, call, put) rows for options on `underlying` (and `expiry`): by expiry, then by
        strike — a row per series, so a strike listed in two expiries gives two rows (and a series
        listed in two settlements, e.g. CI and 24hs, one row per settlement)."""
        names = self._underlying_names(underlying)
        rows: dict[tuple[date, str, Decimal], list[InstrumentDetail | None]] = {}
        for d in self.options():
            if d.strike is None or (d.underlying or "").lower() not in names:
                continue
            if expiry is not None and d.maturity != expiry:
                continue
            key = (d.maturity or date.max, d.settlement or "", d.strike)
            row = rows.setdefault(key, [None, None])
            row[0 if d.option_type is OptionType.CALL else 1] = d
        return [(key[2], row[0], row[1]) for key, row in sorted(rows.items())]

    def expiries(self, underlying: str) -> list[date]:
        names = self._underlying_names(underlying)
        return sorted(
            {
                d.maturity
                for d in self.options()
                if d.maturity is not None and (d.underlying or "").lower() in names
            }
        )


_catalog_encoder = msgspec.json.Encoder()
_catalog_decoder = msgspec.json.Decoder(list[InstrumentDetail])


def encode_catalog(catalog: Catalog) -> bytes:
    """JSON for the on-disk daily cache (the I/O layer writes it)."""
    return _catalog_encoder.encode(list(catalog))


def decode_catalog(data: bytes | str) -> Catalog:
    """Inverse of `encode_catalog`; raises msgspec.DecodeError on a corrupt cache."""
    return Catalog(_catalog_decoder.decode(data))
