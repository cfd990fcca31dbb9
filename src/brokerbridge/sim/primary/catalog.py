"""What the simulated Primary lists: BYMA (through xOMS) and Matba Rofex instruments with their details.

Detail values follow the captured `/rest/instruments/details` entries of a live xOMS (fixture
http_instruments_details_subset.json, protocol §3.5): BYMA instruments allow `FOK`/`DAY` and
`LIMIT, MARKET, STOP_LIMIT_MERVAL`; bonds quote per 100 nominal (`priceConvertionFactor` 0.01);
options have `roundLot` 100 and a `strike`; DLR futures are DDF, ARS, multiplier 1000, tick 0.5;
cauciones are `RPXXXX` with `GTD/DAY/GTC`.

Option series and future months are generated from the simulator's start date so that maturities are
always in the future: GGAL options follow BYMA's cycle — the next three even months and the nearest
odd month, each expiring on its third Friday or the business day before it when that Friday is a
BYMA holiday (`core.options.calendar`'s shipped closures) — with the month code inside the
10-character ticker (`GFGC7000FE`; one letter when the strike needs five digits); strikes are
spread ±20 % around GGAL's start price (`option_strikes`). Their prices come from the volatility
surface (vol_surface.py, option_market.py). DLR futures expire on the last weekday of the next four
months (`DLR/FEB26`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from brokerbridge.core.options.calendar import MarketCalendar, byma_calendar
from brokerbridge.sim.market import InstrumentSpec
from brokerbridge.sim.primary.vol_surface import SurfaceParams, VolSurface, continuous_rate

MARKET_ID = "ROFX"
# Segments as listed by a real /rest/segment/all (fixture http_segments.json).
SEGMENTS = ("DDA", "DDF", "DUAL", "TEST", "MAE", "MERV", "MVR", "MVC", "MATBA", "PTPExt", "RFXI", "UFEX")
# Spanish month abbreviations used by Matba Rofex futures symbols.
FUTURE_MONTHS = ("ENE", "FEB", "MAR", "ABR", "MAY", "JUN", "JUL", "AGO", "SEP", "OCT", "NOV", "DIC")
# Month codes of BYMA option tickers: the even months' two- and one-letter codes are observed in
# captures (FE AB JU AG OC DI; F A J G O D); the odd months' are not, and follow the same pattern
# from the Spanish month names (a documented choice).
OPTION_MONTHS = {
    1: "EN", 2: "FE", 3: "MR", 4: "AB", 5: "MY", 6: "JU",
    7: "JL", 8: "AG", 9: "SE", 10: "OC", 11: "NO", 12: "DI",
}  # fmt: skip
OPTION_MONTH_LETTERS = {
    1: "E", 2: "F", 3: "M", 4: "A", 5: "Y", 6: "J",
    7: "L", 8: "G", 9: "S", 10: "O", 11: "N", 12: "D",
}  # fmt: skip
OPTION_TICKER_LEN = 10
# How far the listed strikes reach around the underlying's start price, and the steps they may take
# (the largest of these not above 7 % of the price: 500 for GGAL at 7150 — six strikes a month).
STRIKE_REACH = 0.20
STRIKE_STEP_SHARE = 0.07
# The caución the option prices' rate comes from (its start quote prices the options' history).
PESO_CAUCION_1D = "MERV - XMEV - PESOS - 1D"
OPTION_UNDERLYING = "GGAL"
BYMA_ORDER_TYPES = ("LIMIT", "MARKET", "STOP_LIMIT_MERVAL")
BYMA_TIMES_IN_FORCE = ("FOK", "DAY")
FUTURE_ORDER_TYPES = ("LIMIT", "MARKET_TO_LIMIT", "STOP_LIMIT")
FUTURE_TIMES_IN_FORCE = ("GTD", "IOC", "DAY")
REPO_ORDER_TYPES = ("LIMIT", "MARKET_TO_LIMIT", "STOP_LIMIT_MERVAL")
REPO_TIMES_IN_FORCE = ("GTD", "DAY", "GTC")
# Every captured detail lists these price limits (`lowLimitPrice`, `highLimitPrice`); the account
# rejects a limit price outside them.
LOW_LIMIT_PRICE = Decimal("0")
HIGH_LIMIT_PRICE = Decimal("1000000")


@dataclass(frozen=True, slots=True)
class PrimaryInstrument:
    symbol: str  # "MERV - XMEV - GGAL - 24hs", "DLR/FEB26"
    kind: str  # "stock" | "bond" | "option" | "future" | "repo"
    segment: str  # "MERV" | "DDF"
    cficode: str
    currency: str
    underlying: str
    tick: Decimal  # minPriceIncrement
    start_price: Decimal
    level_qty: Decimal
    min_trade_vol: int = 1
    max_trade_vol: int = 1_000_000
    contract_multiplier: float = 1.0
    round_lot: float = 1.0
    price_conversion_factor: float = 1.0
    maturity_date: str | None = None  # "YYYYMMDD"
    strike: float | None = None
    order_types: tuple[str, ...] = BYMA_ORDER_TYPES
    times_in_force: tuple[str, ...] = BYMA_TIMES_IN_FORCE
    price_precision: int = 2
    volatility: float = 0.03
    ticker: str = ""  # BYMA ticker ("GGAL", "GFGC7000FE") = risk `symbolReference`
    settlement: str | None = None  # "CI" | "24hs" for BYMA

    @property
    def byma(self) -> bool:
        return self.segment == "MERV"

    @property
    def cash_settled(self) -> bool:
        """Does a fill move cash? BYMA spot instruments (stocks, bonds, options premiums) do; futures
        settle daily differences and cauciones are financing, so the simulator leaves cash alone."""
        return self.byma and self.kind != "repo"

    @property
    def instrument_id(self) -> dict[str, str]:
        return {"marketId": MARKET_ID, "symbol": self.symbol}

    def notional(self, price: Decimal, qty: Decimal) -> Decimal:
        """Cash value of `qty` at `price` (bonds quote per 100 nominal, futures carry a multiplier)."""
        factor = Decimal(str(self.price_conversion_factor)) * Decimal(str(self.contract_multiplier))
        return price * qty * factor

    def spec(self) -> InstrumentSpec:
        return InstrumentSpec(
            symbol=self.symbol,
            base=self.ticker or self.symbol,
            quote=self.currency,
            price_decimals=self.price_precision,
            qty_decimals=0,
            tick=self.tick,
            qty_min=Decimal(self.min_trade_vol),
            cost_min=Decimal(0),
            start_price=self.start_price,
            level_qty=self.level_qty,
            volatility=self.volatility,
        )

    def detail(self) -> dict[str, Any]:
        """The instrument detail in the captured key order (§3.5); numbers as the server types them."""
        tick = float(self.tick)
        return {
            "symbol": None,
            "segment": {"marketSegmentId": self.segment, "marketId": MARKET_ID},
            "lowLimitPrice": float(LOW_LIMIT_PRICE),
            "highLimitPrice": float(HIGH_LIMIT_PRICE),
            "minPriceIncrement": tick,
            "minTradeVol": self.min_trade_vol,
            "maxTradeVol": self.max_trade_vol,
            "tickSize": 1.0,
            "contractMultiplier": self.contract_multiplier,
            "roundLot": self.round_lot,
            "priceConvertionFactor": self.price_conversion_factor,
            "maturityDate": self.maturity_date,
            "currency": self.currency,
            "orderTypes": list(self.order_types),
            "timesInForce": list(self.times_in_force),
            "securityType": None,
            "settlType": None,
            "instrumentPricePrecision": self.price_precision,
            "instrumentSizePrecision": 0,
            "securityId": None,
            "securityIdSource": None,
            "securityDescription": self.symbol,
            "tickPriceRanges": {"0": {"lowerLimit": 0, "upperLimit": None, "tick": tick}},
            "strike": self.strike,
            "underlying": self.underlying,
            "cficode": self.cficode,
            "instrumentId": self.instrument_id,
        }


class Catalog:
    """Lookups by symbol, CFI code and segment, in listing order."""

    def __init__(self, instruments: tuple[PrimaryInstrument, ...]) -> None:
        self.instruments = instruments
        self._by_symbol = {inst.symbol: inst for inst in instruments}

    def get(self, symbol: str) -> PrimaryInstrument | None:
        return self._by_symbol.get(symbol)

    def by_cfi(self, cficode: str) -> list[PrimaryInstrument]:
        return [inst for inst in self.instruments if inst.cficode == cficode]

    def by_segment(self, segment: str) -> list[PrimaryInstrument]:
        # "U-DDF" etc. are the segments' unified twins (§5); they list the same instruments.
        wanted = segment.removeprefix("U-")
        return [inst for inst in self.instruments if inst.segment == wanted]


# (ticker, name for `underlying`, start price, tick, level qty)
_STOCKS = (
    ("GGAL", "Grupo Financiero Galicia Merval", "7150", "5", "1500"),
    ("YPFD", "YPF Merval", "48200", "25", "300"),
    ("PAMP", "Pampa Energía Merval", "3980", "5", "2000"),
    ("ALUA", "Aluar Merval", "905", "1", "5000"),
    ("BMA", "Banco Macro Merval", "10350", "5", "800"),
    ("TXAR", "Ternium Argentina Merval", "812", "1", "5000"),
    ("CEPU", "Central Puerto Merval", "1545", "1", "3000"),
    ("TECO2", "Telecom Argentina Merval", "2470", "5", "2000"),
)
# The rest of BYMA's equity panels (líder and general), then the most traded CEDEARs (certificates
# of foreign shares, CFI EMXXXX, quoted in ARS), so that an "Acciones" screen carries the ~300 live
# instruments of a real one. (ticker, company, start price in ARS); tick and level size follow the price.
_MORE_STOCKS = (
    ("BBAR", "Banco BBVA Argentina", "7040"),
    ("BYMA", "Bolsas y Mercados Argentinos", "318.5"),
    ("COME", "Sociedad Comercial del Plata", "54.2"),
    ("CRES", "Cresud", "1395"),
    ("CVH", "Cablevisión Holding", "6480"),
    ("EDN", "Edenor", "1810"),
    ("HARG", "Holcim Argentina", "1725"),
    ("IRSA", "IRSA Inversiones y Representaciones", "1585"),
    ("LOMA", "Loma Negra", "2705"),
    ("METR", "Metrogas", "1890"),
    ("MIRG", "Mirgor", "17150"),
    ("SUPV", "Grupo Supervielle", "2515"),
    ("TGNO4", "Transportadora de Gas del Norte", "3320"),
    ("TGSU2", "Transportadora de Gas del Sur", "6790"),
    ("TRAN", "Transener", "2195"),
    ("VALO", "Grupo Financiero Valores", "331.5"),
    ("A3", "A3 Mercados", "1520"),
    ("AGRO", "Agrometal", "64.8"),
    ("AUSO", "Autopistas del Sol", "2990"),
    ("BHIP", "Banco Hipotecario", "383"),
    ("BOLT", "Boldt", "29.9"),
    ("BPAT", "Banco Patagonia", "1905"),
    ("CADO", "Carlos Casado", "498"),
    ("CAPU", "Caputo", "1015"),
    ("CAPX", "Capex", "4970"),
    ("CARC", "Carboclor", "24.6"),
    ("CECO2", "Central Costanera", "905"),
    ("CELU", "Celulosa Argentina", "352"),
    ("CGPA2", "Camuzzi Gas Pampeana", "2010"),
    ("CTIO", "Consultatio", "2395"),
    ("DGCE", "Distribuidora de Gas del Centro", "1490"),
    ("DGCU2", "Distribuidora de Gas Cuyana", "1615"),
    ("DOME", "Domec", "131.5"),
    ("DYCA", "Dycasa", "1005"),
    ("ECOG", "Ecogas Inversiones", "2040"),
    ("FERR", "Ferrum", "25.1"),
    ("FIPL", "Fiplasto", "252"),
    ("GAMI", "B-Gaming", "248"),
    ("GARO", "Garovaglio y Zorraquín", "201"),
    ("GBAN", "Naturgy BAN", "1790"),
    ("GCDI", "GCDI", "15.35"),
    ("GCLA", "Grupo Clarín", "2490"),
    ("GRIM", "Grimoldi", "2310"),
    ("HAVA", "Havanna Holding", "4990"),
    ("INTR", "Compañía Introductora de Buenos Aires", "402"),
    ("INVJ", "Inversora Juramento", "349"),
    ("LEDE", "Ledesma", "1195"),
    ("LONG", "Longvie", "30.4"),
    ("MOLA", "Molinos Agro", "24950"),
    ("MOLI", "Molinos Río de la Plata", "251"),
    ("MORI", "Morixe Hermanos", "149.5"),
    ("OEST", "Grupo Concesionario del Oeste", "798"),
    ("PATA", "Importadora y Exportadora de la Patagonia", "1405"),
    ("POLL", "Polledo", "19.85"),
    ("REGE", "García Reguera", "812"),
    ("RICH", "Laboratorios Richmond", "1410"),
    ("RIGO", "Rigolleau", "1095"),
    ("ROSE", "Instituto Rosenbusch", "151"),
    ("SAMI", "San Miguel", "702"),
    ("SEMI", "Molinos Juan Semino", "59.6"),
)
_CEDEARS = (
    ("AAPL", "Apple", "17250"),
    ("MSFT", "Microsoft", "18300"),
    ("GOOGL", "Alphabet", "6020"),
    ("AMZN", "Amazon", "2015"),
    ("TSLA", "Tesla", "30150"),
    ("NVDA", "NVIDIA", "10250"),
    ("META", "Meta Platforms", "35400"),
    ("KO", "Coca-Cola", "19050"),
    ("MELI", "MercadoLibre", "23150"),
    ("BABA", "Alibaba", "18200"),
    ("DIS", "Walt Disney", "15100"),
    ("JPM", "JPMorgan Chase", "30250"),
    ("WMT", "Walmart", "18050"),
    ("PG", "Procter & Gamble", "15300"),
    ("JNJ", "Johnson & Johnson", "20150"),
    ("XOM", "Exxon Mobil", "20050"),
    ("CVX", "Chevron", "17350"),
    ("PFE", "Pfizer", "6010"),
    ("MCD", "McDonald's", "19250"),
    ("NKE", "Nike", "8030"),
    ("INTC", "Intel", "5015"),
    ("AMD", "Advanced Micro Devices", "15250"),
    ("NFLX", "Netflix", "5120"),
    ("PEP", "PepsiCo", "16150"),
    ("T", "AT&T", "12050"),
    ("VZ", "Verizon", "12150"),
    ("BA", "Boeing", "12250"),
    ("GE", "General Electric", "30050"),
    ("IBM", "IBM", "20250"),
    ("ORCL", "Oracle", "25150"),
    ("CSCO", "Cisco Systems", "15050"),
    ("QCOM", "Qualcomm", "17050"),
    ("V", "Visa", "25250"),
    ("MA", "Mastercard", "30150"),
    ("PYPL", "PayPal", "9015"),
    ("SPY", "SPDR S&P 500 ETF", "45150"),
    ("QQQ", "Invesco QQQ", "40250"),
    ("DIA", "SPDR Dow Jones ETF", "40050"),
    ("EEM", "iShares MSCI Emerging Markets", "30150"),
    ("EWZ", "iShares MSCI Brazil", "20050"),
    ("XLF", "Financial Select Sector SPDR", "25050"),
    ("GLD", "SPDR Gold Shares", "20150"),
    ("ARKK", "ARK Innovation ETF", "30050"),
    ("BRKB", "Berkshire Hathaway", "30250"),
    ("GOLD", "Barrick Gold", "20050"),
    ("VALE", "Vale", "15050"),
    ("PBR", "Petrobras", "18100"),
    ("ITUB", "Itaú Unibanco", "9010"),
    ("BBD", "Banco Bradesco", "5030"),
    ("ERJ", "Embraer", "20150"),
    ("GLOB", "Globant", "15150"),
    ("DESP", "Despegar", "20050"),
    ("VIST", "Vista Energy", "30150"),
    ("TSM", "Taiwan Semiconductor", "35150"),
    ("TM", "Toyota Motor", "20100"),
    ("HMY", "Harmony Gold", "9050"),
    ("NEM", "Newmont", "20050"),
    ("FCX", "Freeport-McMoRan", "12050"),
    ("BIDU", "Baidu", "10050"),
    ("JD", "JD.com", "10100"),
    ("NIO", "NIO", "5050"),
    ("PDD", "PDD Holdings", "20150"),
    ("UBER", "Uber Technologies", "15050"),
    ("ABNB", "Airbnb", "10050"),
    ("SHOP", "Shopify", "20100"),
    ("SPOT", "Spotify", "40150"),
    ("COIN", "Coinbase", "15100"),
    ("ADBE", "Adobe", "15200"),
    ("CRM", "Salesforce", "15050"),
    ("AVGO", "Broadcom", "20200"),
    ("TXN", "Texas Instruments", "15100"),
    ("MU", "Micron Technology", "12100"),
    ("HD", "Home Depot", "18100"),
    ("COST", "Costco", "20150"),
    ("SBUX", "Starbucks", "15100"),
    ("MMM", "3M", "15050"),
    ("CAT", "Caterpillar", "30100"),
    ("DE", "Deere", "25150"),
    ("HON", "Honeywell", "20100"),
    ("LMT", "Lockheed Martin", "20150"),
    ("UNH", "UnitedHealth", "15150"),
    ("ABBV", "AbbVie", "18050"),
    ("MRK", "Merck", "15050"),
    ("LLY", "Eli Lilly", "35200"),
    ("GS", "Goldman Sachs", "40100"),
    ("C", "Citigroup", "20050"),
    ("BAC", "Bank of America", "15050"),
    ("WFC", "Wells Fargo", "18150"),
    ("AXP", "American Express", "25100"),
    ("ADGO", "Adecoagro", "10050"),
)
# (ticker, underlying, currency, start price, tick, maturity, precision)
_BONDS = (
    ("AL30", "BONO USD 2030 LA", "ARS", "76830", "10", "20300709", 2),
    ("AL30D", "BONO USD 2030 LA", "USD", "55.5", "0.01", "20300709", 3),
    ("AL30C", "BONO USD 2030 LA", "USD", "55.32", "0.01", "20300709", 3),
    ("GD30", "BONO USD 2030 NY", "ARS", "79150", "10", "20300709", 2),
    ("GD30D", "BONO USD 2030 NY", "USD", "57.15", "0.01", "20300709", 3),
    ("GD30C", "BONO USD 2030 NY", "USD", "56.98", "0.01", "20300709", 3),
)
_REPOS = (
    ("PESOS", "ARS", "Cauciones ARS", "29.5", "5000000"),
    ("DOLAR", "USD", "Cauciones USD", "0.9", "50000"),
)
_REPO_TERMS = (1, 3, 7)
_DLR_SPOT = 1455.0
_DLR_MONTHLY_CARRY = 0.022  # implied monthly rate of the DLR curve


_TICK_BANDS = ((Decimal(100), "0.05"), (Decimal(1000), "0.5"), (Decimal(2000), "1"), (Decimal(20000), "5"))


def _equities() -> list[tuple[str, str, str, str, str, str]]:
    """(ticker, underlying, price, tick, level qty, CFI code) of every stock and CEDEAR, listing order."""
    rows = [(*row, "ESXXXX") for row in _STOCKS]
    for listing, cfi, suffix in ((_MORE_STOCKS, "ESXXXX", "Merval"), (_CEDEARS, "EMXXXX", "CEDEAR")):
        for ticker, company, price in listing:
            rows.append((ticker, f"{company} {suffix}", price, *_tick_and_level(Decimal(price)), cfi))
    return rows


def _tick_and_level(price: Decimal) -> tuple[str, str]:
    """A price-band tick (the coarser, the dearer the share) and a top-of-book size worth roughly
    ARS 7-10 million, as on the hand-tuned leaders above."""
    tick = next((tick for below, tick in _TICK_BANDS if price < below), "25")
    level = max(100, int(Decimal(8_000_000) / price / 100) * 100)
    return tick, str(level)


def byma_symbol(ticker: str, settlement: str | None) -> str:
    return f"MERV - XMEV - {ticker}" + (f" - {settlement}" if settlement else "")


def default_catalog(today: dt.date) -> Catalog:
    """The catalogue for a simulator started on `today` (Buenos Aires date)."""
    items: list[PrimaryInstrument] = []
    for ticker, name, price, tick, level, cfi in _equities():
        for settlement in ("CI", "24hs"):
            items.append(
                PrimaryInstrument(
                    symbol=byma_symbol(ticker, settlement),
                    kind="stock",  # CEDEARs too: cash-settled equity, only their CFI code differs
                    segment="MERV",
                    cficode=cfi,
                    currency="ARS",
                    underlying=name,
                    tick=Decimal(tick),
                    start_price=Decimal(price),
                    level_qty=Decimal(level),
                    ticker=ticker,
                    settlement=settlement,
                )
            )
    for ticker, name, currency, price, tick, maturity, precision in _BONDS:
        for settlement in ("CI", "24hs"):
            items.append(
                PrimaryInstrument(
                    symbol=byma_symbol(ticker, settlement),
                    kind="bond",
                    segment="MERV",
                    cficode="DBXXXX",
                    currency=currency,
                    underlying=name,
                    tick=Decimal(tick),
                    start_price=Decimal(price),
                    level_qty=Decimal("20000"),
                    max_trade_vol=1_000_000_000,
                    price_conversion_factor=0.01,
                    maturity_date=maturity,
                    price_precision=precision,
                    volatility=0.015,
                    ticker=ticker,
                    settlement=settlement,
                )
            )
    items.extend(_ggal_options(today, Decimal(_STOCKS[0][2])))
    items.extend(_dlr_futures(today))
    for name, currency, underlying, rate, level in _REPOS:
        for days in _REPO_TERMS:
            ticker = f"{name} - {days}D"
            items.append(
                PrimaryInstrument(
                    symbol=byma_symbol(ticker, None),
                    kind="repo",
                    segment="MERV",
                    cficode="RPXXXX",
                    currency=currency,
                    underlying=underlying,
                    tick=Decimal("0.001"),
                    start_price=Decimal(rate) + Decimal(days) / Decimal(20),
                    level_qty=Decimal(level),
                    min_trade_vol=10,
                    max_trade_vol=99_999_999_999,
                    order_types=REPO_ORDER_TYPES,
                    times_in_force=REPO_TIMES_IN_FORCE,
                    price_precision=3,
                    volatility=0.05,
                    ticker=ticker,
                )
            )
    return Catalog(tuple(items))


def _ggal_options(today: dt.date, spot: Decimal) -> list[PrimaryInstrument]:
    expiries = option_expiries(today, byma_calendar())
    strikes = option_strikes(spot)
    # The start price anchors the instrument's drawn history only: the live book is quoted from the
    # surface at the simulator's start (option_market.py).
    rate = continuous_rate(float(_REPOS[0][3]) + 1 / 20)
    surface = VolSurface(SurfaceParams())
    items: list[PrimaryInstrument] = []
    for expiry in expiries:
        years = max((expiry - today).days, 1) / 365
        for strike in strikes:
            for right, cfi in (("C", "OCASPS"), ("V", "OPASPS")):
                ticker = option_ticker("GFG", right, strike, expiry)
                premium, _ = surface.premiums(
                    float(spot), np.array([strike]), np.array([years]), np.array([right == "C"]), rate
                )
                items.append(
                    PrimaryInstrument(
                        symbol=byma_symbol(ticker, "24hs"),
                        kind="option",
                        segment="MERV",
                        cficode=cfi,
                        currency="ARS",
                        underlying="Grupo Financiero Galicia Merval",
                        tick=Decimal("0.001"),
                        start_price=Decimal(str(round(max(float(premium[0]), 1.0), 3))),
                        level_qty=Decimal("40"),
                        max_trade_vol=50_000_000,
                        round_lot=100.0,
                        maturity_date=expiry.strftime("%Y%m%d"),
                        strike=float(strike),
                        price_precision=3,
                        volatility=0.25,
                        ticker=ticker,
                        settlement="24hs",
                    )
                )
    return items


def option_expiries(today: dt.date, calendar: MarketCalendar) -> list[dt.date]:
    """BYMA's equity-option cycle from `today`: the next three even months and the nearest odd one,
    in date order; each on its third Friday, or the business day before it when that is a
    holiday. A series expiring today is still listed (it trades until the close)."""
    even: list[dt.date] = []
    odd: dt.date | None = None
    year, month = today.year, today.month
    while len(even) < 3 or odd is None:
        expiry = calendar.previous_business_day(_third_friday(year, month))
        if expiry >= today:
            if month % 2 == 0 and len(even) < 3:
                even.append(expiry)
            elif month % 2 == 1 and odd is None:
                odd = expiry
        year, month = _next_month(year, month)
    return sorted([*even, odd])


def option_strikes(spot: Decimal) -> list[int]:
    """Strikes on a round step (1, 2.5 or 5 × a power of ten, the largest not above 7 % of `spot`)
    from 20 % below `spot` to 20 % above it."""
    price = float(spot)
    target = price * STRIKE_STEP_SHARE
    power = 10 ** int(np.floor(np.log10(target)))
    step = max(m * power for m in (1, 2.5, 5, 10) if m * power <= target)
    low = int(np.ceil(price * (1 - STRIKE_REACH) / step) * step)
    high = int(np.floor(price * (1 + STRIKE_REACH) / step) * step)
    return list(range(low, high + 1, int(step)))


def option_ticker(root: str, right: str, strike: int, expiry: dt.date) -> str:
    """`GFGC7000DI`: root, C/V, strike, month code — one letter when the strike leaves no room for two."""
    body = f"{root}{right}{strike}"
    code = OPTION_MONTHS[expiry.month]
    if len(body) + len(code) > OPTION_TICKER_LEN:
        code = OPTION_MONTH_LETTERS[expiry.month]
    return body + code


def _dlr_futures(today: dt.date) -> list[PrimaryInstrument]:
    items: list[PrimaryInstrument] = []
    year, month = today.year, today.month
    for index in range(4):
        expiry = _last_weekday(year, month)
        if expiry < today:  # this month's contract already expired: start with the next one
            year, month = _next_month(year, month)
            expiry = _last_weekday(year, month)
        price = _DLR_SPOT * (1 + _DLR_MONTHLY_CARRY) ** (index + 1)
        items.append(
            PrimaryInstrument(
                symbol=f"DLR/{FUTURE_MONTHS[month - 1]}{year % 100:02d}",
                kind="future",
                segment="DDF",
                cficode="FXXXSX",
                currency="ARS",
                underlying="Dólar USA A3500",
                tick=Decimal("0.5"),
                start_price=Decimal(str(round(price * 2) / 2)),
                level_qty=Decimal("150"),
                max_trade_vol=10_000,
                contract_multiplier=1000.0,
                maturity_date=expiry.strftime("%Y%m%d"),
                order_types=FUTURE_ORDER_TYPES,
                times_in_force=FUTURE_TIMES_IN_FORCE,
                price_precision=1,
                volatility=0.01,
                ticker=f"DLR/{FUTURE_MONTHS[month - 1]}{year % 100:02d}",
            )
        )
        year, month = _next_month(year, month)
    return items


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def _third_friday(year: int, month: int) -> dt.date:
    first = dt.date(year, month, 1)
    return first + dt.timedelta(days=(4 - first.weekday()) % 7 + 14)


def _last_weekday(year: int, month: int) -> dt.date:
    ny, nm = _next_month(year, month)
    day = dt.date(ny, nm, 1) - dt.timedelta(days=1)
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return day
