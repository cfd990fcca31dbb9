"""Primary REST response types (primary.md §3), field names as Primary spells them.

Every response is an envelope `{"status":"OK", …payload…}`; the types below are the whole body (the
`status` field is checked by `rest.parse_response` first). Numbers are `Decimal`; ids that are
numbers on one server and strings on another accept both. Unknown fields are ignored.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from brokerbridge.venues.primary.messages import InstrumentId, MarketData, OrderReport


class _Rest(msgspec.Struct, frozen=True, kw_only=True):
    """Base: immutable, unknown fields ignored."""


# ---------------------------------------------------------------- reference data


class Segment(_Rest, frozen=True, kw_only=True):
    marketSegmentId: str
    marketId: str


class SegmentsResponse(_Rest, frozen=True, kw_only=True):
    segments: list[Segment] = []


class InstrumentRow(_Rest, frozen=True, kw_only=True):
    """`instruments/all` item."""

    instrumentId: InstrumentId
    cficode: str | None = None


class InstrumentsAllResponse(_Rest, frozen=True, kw_only=True):
    instruments: list[InstrumentRow] = []


class TickPriceRange(_Rest, frozen=True, kw_only=True):
    lowerLimit: Decimal | None = None
    upperLimit: Decimal | None = None
    tick: Decimal | None = None


class SegmentRef(_Rest, frozen=True, kw_only=True):
    marketSegmentId: str | None = None
    marketId: str | None = None


class InstrumentDetailWire(_Rest, frozen=True, kw_only=True):
    """An instrument detail as served (`instruments/details`, `instruments/detail`)."""

    instrumentId: InstrumentId
    symbol: str | None = None  # always null in practice
    segment: SegmentRef | None = None
    lowLimitPrice: Decimal | None = None
    highLimitPrice: Decimal | None = None
    minPriceIncrement: Decimal | None = None
    minTradeVol: Decimal | None = None
    maxTradeVol: Decimal | None = None
    tickSize: Decimal | None = None  # the quantity increment (manual)
    contractMultiplier: Decimal | None = None
    roundLot: Decimal | None = None
    priceConvertionFactor: Decimal | None = None  # sic
    maturityDate: str | None = None  # "YYYYMMDD"
    currency: str | None = None
    orderTypes: list[str] | None = None
    timesInForce: list[str] | None = None
    securityType: str | None = None
    settlType: str | int | None = None
    instrumentPricePrecision: int | None = None
    instrumentSizePrecision: int | None = None
    securityId: str | None = None
    securityIdSource: str | None = None
    securityDescription: str | None = None
    tickPriceRanges: dict[str, TickPriceRange] | None = None
    strike: Decimal | None = None  # xOMS
    # FIX's StrikePrice, the name the issue and some Primary deployments' docs use; xOMS sends
    # `strike` (captured). Read as the strike only where `strike` is absent.
    strikePrice: Decimal | None = None
    underlying: str | None = None  # xOMS, free text
    cficode: str | None = None


class InstrumentsDetailsResponse(_Rest, frozen=True, kw_only=True):
    instruments: list[InstrumentDetailWire] = []


class InstrumentDetailResponse(_Rest, frozen=True, kw_only=True):
    instrument: InstrumentDetailWire


class InstrumentsFlatResponse(_Rest, frozen=True, kw_only=True):
    """`byCFICode` / `bySegment`: `[{marketId, symbol}]` without the `instrumentId` wrapper."""

    instruments: list[InstrumentId] = []


# ---------------------------------------------------------------- market data


class MarketDataResponse(_Rest, frozen=True, kw_only=True):
    """`marketdata/get`: `depth`/`aggregated` at top level as observed (the manual nests them)."""

    marketData: MarketData = MarketData()
    depth: int | None = None
    aggregated: bool | None = None


class HistoricTrade(_Rest, frozen=True, kw_only=True):
    symbol: str | None = None
    servertime: int | None = None  # ms
    size: Decimal | None = None
    price: Decimal | None = None
    datetime: str | None = None


class TradesResponse(_Rest, frozen=True, kw_only=True):
    symbol: str | None = None
    market: str | None = None
    trades: list[HistoricTrade] = []


# ---------------------------------------------------------------- orders


class OrderAckBody(_Rest, frozen=True, kw_only=True):
    clientId: str | int  # the request's clOrdId (for a cancel: the cancel request's)
    proprietary: str | None = None


class OrderAckResponse(_Rest, frozen=True, kw_only=True):
    """newSingleOrder / replaceById / cancelById: only the request is acknowledged."""

    order: OrderAckBody


class OrderResponse(_Rest, frozen=True, kw_only=True):
    """order/id, order/byOrderId."""

    order: OrderReport


class OrdersResponse(_Rest, frozen=True, kw_only=True):
    """order/all, allById, actives, filleds, byExecId."""

    orders: list[OrderReport] = []


# ---------------------------------------------------------------- accounts and risk


class Account(_Rest, frozen=True, kw_only=True):
    id: int | str
    name: str
    brokerId: int | str | None = None
    status: bool | None = None


class AccountsResponse(_Rest, frozen=True, kw_only=True):
    accounts: list[Account] = []


class PositionInstrument(_Rest, frozen=True, kw_only=True):
    symbolReference: str | None = None
    settlType: int | str | None = None  # 0 CI, 1 24hs, 2 48hs


class PositionRow(_Rest, frozen=True, kw_only=True):
    symbol: str | None = None
    instrument: PositionInstrument | None = None
    tradingSymbol: str | None = None
    buySize: Decimal = Decimal(0)
    buyPrice: Decimal | None = None
    sellSize: Decimal = Decimal(0)
    sellPrice: Decimal | None = None
    totalDailyDiff: Decimal | None = None
    totalDiff: Decimal | None = None
    originalBuyPrice: Decimal | None = None
    originalSellPrice: Decimal | None = None


class PositionsResponse(_Rest, frozen=True, kw_only=True):
    positions: list[PositionRow] = []


class DetailedPositionRow(_Rest, frozen=True, kw_only=True):
    symbolReference: str | None = None
    contractType: str | None = None
    priceConversionFactor: Decimal | None = None
    contractSize: Decimal | None = None
    marketPrice: Decimal | None = None
    currency: str | None = None
    exchangeRate: Decimal | None = None
    contractMultiplier: Decimal | None = None
    totalInitialSize: Decimal | None = None
    buyInitialSize: Decimal | None = None
    sellInitialSize: Decimal | None = None
    buyInitialPrice: Decimal | None = None
    sellInitialPrice: Decimal | None = None
    totalFilledSize: Decimal | None = None
    buyFilledSize: Decimal | None = None
    sellFilledSize: Decimal | None = None
    buyFilledPrice: Decimal | None = None
    sellFilledPrice: Decimal | None = None
    totalCurrentSize: Decimal | None = None
    buyCurrentSize: Decimal | None = None
    sellCurrentSize: Decimal | None = None


class DetailedInstrumentPosition(_Rest, frozen=True, kw_only=True):
    detailedPositions: list[DetailedPositionRow] = []
    instrumentInitialSize: Decimal | None = None
    instrumentFilledSize: Decimal | None = None
    instrumentCurrentSize: Decimal | None = None


class DetailedPosition(_Rest, frozen=True, kw_only=True):
    account: str | int | None = None
    totalDailyDiffPlain: Decimal | None = None
    totalMarketValue: Decimal | None = None
    # contract type (e.g. FUTURE_OPTION_CALL) → symbol → position
    report: dict[str, dict[str, DetailedInstrumentPosition]] = {}
    lastCalculation: int | None = None


class DetailedPositionResponse(_Rest, frozen=True, kw_only=True):
    detailedPosition: DetailedPosition


class CurrencyAmounts(_Rest, frozen=True, kw_only=True):
    consumed: Decimal | None = None
    available: Decimal | None = None


class CurrencyBalance(_Rest, frozen=True, kw_only=True):
    detailedCurrencyBalance: dict[str, CurrencyAmounts] = {}


class Cash(_Rest, frozen=True, kw_only=True):
    totalCash: Decimal | None = None
    detailedCash: dict[str, Decimal] = {}


class AvailableToOperate(_Rest, frozen=True, kw_only=True):
    cash: Cash | None = None
    movements: Decimal | None = None
    credit: Decimal | None = None
    total: Decimal | None = None
    pendingMovements: Decimal | None = None


class DetailedAccountReport(_Rest, frozen=True, kw_only=True):
    currencyBalance: CurrencyBalance | None = None
    availableToOperate: AvailableToOperate | None = None
    settlementDate: int | str | None = None


class AccountData(_Rest, frozen=True, kw_only=True):
    accountName: str | None = None
    marketMember: str | None = None
    marketMemberIdentity: str | None = None
    collateral: Decimal | None = None
    margin: Decimal | None = None
    availableToCollateral: Decimal | None = None
    detailedAccountReports: dict[str, DetailedAccountReport] = {}
    hasError: bool | None = None
    errorDetail: str | None = None
    lastCalculation: int | None = None
    portfolio: Decimal | None = None
    ordersMargin: Decimal | None = None
    currentCash: Decimal | None = None
    dailyDiff: Decimal | None = None
    uncoveredMargin: Decimal | None = None


class AccountReportResponse(_Rest, frozen=True, kw_only=True):
    accountData: AccountData
