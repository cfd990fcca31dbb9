"""Normalized events: what every venue's stream becomes, whatever its wire looked like.

All are frozen msgspec Structs tagged by `kind`, so one decoder reads any of them back
(`decode_event`). Prices, sizes and balances are `Decimal` parsed from the venue's original text.
Times: `ts` is the venue's timestamp (seconds since the epoch, wall clock) when the venue gave one,
else the time we received the message.
"""

from __future__ import annotations

import enum
from decimal import Decimal

import msgspec


class Channel(enum.StrEnum):
    TICKER = "ticker"
    BOOK = "book"
    TRADES = "trades"
    CANDLES = "candles"
    INSTRUMENTS = "instruments"
    STATS = "stats"  # session statistics: open, close, high, low, settlement, volume, open interest
    BALANCES = "balances"
    EXECUTIONS = "executions"
    POSITIONS = "positions"
    # Derived, not a venue stream: options analytics per underlying (and expiry), recomputed by the
    # bridge on every tick of an option, its underlying or the rate (services/options.py, issue 20).
    GREEKS = "greeks"

    @property
    def private(self) -> bool:
        return self in (Channel.BALANCES, Channel.EXECUTIONS, Channel.POSITIONS)


class StreamState(enum.StrEnum):
    IDLE = "idle"  # a connection nobody needs now: closed on purpose, opened when a stream is wanted
    CONNECTING = "connecting"
    LIVE = "live"
    RECONNECTING = "reconnecting"
    POLLING = "polling"  # stream down, same events served from REST polling
    RESYNCING = "resyncing"  # connection up, one stream being rebuilt from a fresh snapshot
    STALE = "stale"  # no fresh data and no fallback: last known values only


class Side(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"


class Source(enum.StrEnum):
    WS = "ws"
    REST = "rest"


class Subscription(msgspec.Struct, frozen=True, kw_only=True):
    """What a consumer asks for. `symbol` is the venue's symbol (`BTC/USD` on Kraken)."""

    venue: str
    channel: Channel
    symbol: str | None = None
    depth: int = 10  # book only
    interval: int = 1  # candles only, minutes
    # greeks only: `symbol` is the underlying's ticker (GGAL); `expiry` one ISO date (None: every
    # expiry); `model` "american" or "european" (the Bridge fills in [options] model when not given).
    expiry: str | None = None
    model: str | None = None

    def describe(self) -> str:
        parts = [self.venue, self.channel.value]
        if self.symbol:
            parts.append(self.symbol)
        if self.channel is Channel.BOOK:
            parts.append(f"depth={self.depth}")
        if self.channel is Channel.CANDLES:
            parts.append(f"interval={self.interval}")
        if self.expiry is not None:
            parts.append(f"expiry={self.expiry}")
        if self.model is not None:
            parts.append(f"model={self.model}")
        return ":".join(parts)


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    venue: str
    ts: float


class Ticker(Event, tag="ticker", frozen=True, kw_only=True):
    """Top of book and last trade. A field is None when the venue has nothing there (an empty
    side, no trade yet today) or does not report it (Primary has no rolling 24 h vwap)."""

    symbol: str
    bid: Decimal | None
    bid_qty: Decimal | None
    ask: Decimal | None
    ask_qty: Decimal | None
    last: Decimal | None
    volume: Decimal | None = None
    vwap: Decimal | None = None
    low: Decimal | None = None
    high: Decimal | None = None
    change: Decimal | None = None
    change_pct: Decimal | None = None
    source: Source = Source.WS


class Level(msgspec.Struct, frozen=True, array_like=True, gc=False):
    # gc=False: two Decimals cannot form a cycle, so the collector need not track the many
    # levels books and book events hold (the encoding is unchanged).
    price: Decimal
    qty: Decimal


class BookSnapshot(Event, tag="book_snapshot", frozen=True, kw_only=True):
    """The whole book at `depth` levels per side (bids best-first, asks best-first)."""

    symbol: str
    depth: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    checksum: int | None = None
    source: Source = Source.WS


class BookUpdate(Event, tag="book_update", frozen=True, kw_only=True):
    """Changed levels in venue order; `qty == 0` removes a level. Apply, then cut to depth."""

    symbol: str
    depth: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    checksum: int | None = None


class Trade(Event, tag="trade", frozen=True, kw_only=True):
    symbol: str
    side: Side  # taker side
    price: Decimal
    qty: Decimal
    trade_id: str
    order_type: str | None = None
    source: Source = Source.WS


class Candle(Event, tag="candle", frozen=True, kw_only=True):
    symbol: str
    interval: int  # minutes
    begin: float  # interval start, epoch seconds
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    vwap: Decimal
    volume: Decimal
    trades: int
    source: Source = Source.WS


class SessionStats(Event, tag="stats", frozen=True, kw_only=True):
    """Today's session figures for an instrument; None = not reported (yet)."""

    symbol: str
    open: Decimal | None = None
    close: Decimal | None = None  # previous session's close
    high: Decimal | None = None
    low: Decimal | None = None
    settlement: Decimal | None = None
    volume: Decimal | None = None  # traded volume (contracts / nominal)
    effective_volume: Decimal | None = None  # cash volume (BYMA)
    nominal_volume: Decimal | None = None  # BYMA
    open_interest: Decimal | None = None
    trade_count: int | None = None
    index_value: Decimal | None = None
    source: Source = Source.WS


class Instrument(Event, tag="instrument", frozen=True, kw_only=True):
    symbol: str
    base: str
    quote: str
    status: str
    price_precision: int
    qty_precision: int
    price_increment: Decimal
    qty_increment: Decimal
    qty_min: Decimal
    cost_min: Decimal | None = None


class AssetBalance(msgspec.Struct, frozen=True, kw_only=True):
    asset: str
    total: Decimal
    hold: Decimal | None = None  # held by open orders when the venue says (REST BalanceEx)


class BalanceSnapshot(Event, tag="balance_snapshot", frozen=True, kw_only=True):
    """Every asset the account holds; an asset absent here is zero."""

    balances: tuple[AssetBalance, ...]
    source: Source = Source.WS


class BalanceUpdate(Event, tag="balance_update", frozen=True, kw_only=True):
    """One ledger movement: `amount` (signed) changed `asset` to the new `total`."""

    asset: str
    amount: Decimal
    total: Decimal
    fee: Decimal = Decimal(0)
    ledger_id: str | None = None
    ref_id: str | None = None
    ledger_type: str | None = None


class OrderUpdate(Event, tag="order_update", frozen=True, kw_only=True):
    """A change in an order's life (pending_new, new, canceled, filled, …). Sparse: None = unchanged."""

    order_id: str
    exec_type: str
    status: str
    symbol: str | None = None
    side: Side | None = None
    order_type: str | None = None
    qty: Decimal | None = None
    limit_price: Decimal | None = None
    cum_qty: Decimal | None = None
    avg_price: Decimal | None = None
    client_order_id: str | None = None
    reason: str | None = None
    snapshot: bool = False


class Fill(Event, tag="fill", frozen=True, kw_only=True):
    """One execution against an order; `exec_id` is the venue's id, unique per fill."""

    order_id: str
    exec_id: str
    symbol: str
    side: Side
    price: Decimal
    qty: Decimal
    cost: Decimal
    fee: Decimal
    fee_asset: str | None
    liquidity: str | None = None  # "t" taker / "m" maker
    trade_id: str | None = None
    order_status: str | None = None
    client_order_id: str | None = None
    snapshot: bool = False


class Position(Event, tag="position", frozen=True, kw_only=True):
    """An account's holding in one instrument (Primary: polled from the risk API)."""

    account: str
    symbol: str
    qty: Decimal  # net: bought − sold
    buy_qty: Decimal = Decimal(0)
    buy_price: Decimal | None = None
    sell_qty: Decimal = Decimal(0)
    sell_price: Decimal | None = None
    pnl: Decimal | None = None
    source: Source = Source.REST


class OptionAnalytics(Event, tag="option_analytics", frozen=True, kw_only=True, gc=False):
    """One option's analytics (issue 20), recomputed on every tick of the option, its underlying or
    the rate. Facts (strike, expiry, type, lot) come from the venue's instrument details, never from
    the ticker text.

    A figure that cannot be computed honestly is None and `reasons[figure]` says why in words (no
    bid, price below intrinsic value, expired, …): never NaN. Figures computed from an underlying
    price that is not current are given, with `stale` true and `reasons["spot"]` saying how old it
    is. Units: IVs and `rate` are annual fractions (0.45 = 45 %); `delta` per 1 of the underlying's
    price; `gamma` per 1 of price, per 1; `vega` per vol point (σ + 0.01); `theta` per calendar day;
    `rho` per rate point (r + 0.01); rates quoted like cauciones (`*_tna`, `*_tea`) are percents.
    Greeks are per share (× `lot` for one contract).

    gc=False: strings, numbers, Decimals and a dict of strings cannot form a cycle, so the collector
    need not track the 400 events a chain's tick makes (its collections lifted the p99)."""

    symbol: str  # the option's venue symbol
    underlying: str  # the underlying's ticker (GGAL)
    underlying_symbol: str | None  # the instrument whose price is the spot (MERV - XMEV - GGAL - 24hs)
    option_type: str  # call | put
    strike: Decimal
    expiry: str  # ISO date
    lot: Decimal | None = None  # shares per contract (Primary's roundLot: 100 for BYMA equity options)
    model: str  # "american" (Bjerksund–Stensland 2002) or "european" (Black–Scholes–Merton)
    days: float  # calendar days (fractional) to the expiry's close, 17:00 Buenos Aires
    business_days: int  # BYMA sessions after today up to and including the expiry
    t: float | None = None  # the year fraction the model uses ([options] time_basis)
    spot: Decimal | None = None
    rate: float | None = None  # continuous annual rate the model uses
    rate_source: str = ""  # e.g. "caución MERV - XMEV - PESOS - 1D", "configured"
    dividends_pv: float = 0.0  # present value of the discrete dividends before expiry (escrowed)
    bid: Decimal | None = None
    ask: Decimal | None = None
    last: Decimal | None = None
    mid: Decimal | None = None
    iv_bid: float | None = None
    iv_ask: float | None = None
    iv_last: float | None = None
    iv_mid: float | None = None
    greeks_from: str | None = None  # which IV the greeks use: "mid", else "last" (None: no greeks)
    delta: float | None = None
    gamma: float | None = None
    vega: float | None = None
    theta: float | None = None
    rho: float | None = None
    intrinsic: Decimal | None = None
    time_value: Decimal | None = None  # the option's price (mid, else last) minus intrinsic
    parity_tna: float | None = None  # the rate put-call parity implies at this strike, % TNA
    covered_call_tna: float | None = None  # calls: the covered-call ("lanzamiento cubierto") rate
    covered_call_tea: float | None = None
    break_even: Decimal | None = None  # calls: the covered call's break-even (spot − premium)
    stale: bool = False  # some input is not current: see `reasons`
    reasons: dict[str, str] = msgspec.field(default_factory=dict)  # figure → why it is empty/flagged


class StreamStatus(Event, tag="status", frozen=True, kw_only=True):
    """Where a stream stands. `stream` is a `Subscription.describe()` or a connection name."""

    stream: str
    state: StreamState
    reason: str = ""
    reconnects: int = 0


class Gap(Event, tag="gap", frozen=True, kw_only=True):
    """Data for `stream` between `start` and `end` (epoch seconds) may have been lost."""

    stream: str
    start: float
    end: float
    reason: str


AnyEvent = (
    Ticker
    | BookSnapshot
    | BookUpdate
    | Trade
    | Candle
    | SessionStats
    | Instrument
    | BalanceSnapshot
    | BalanceUpdate
    | OrderUpdate
    | Fill
    | Position
    | OptionAnalytics
    | StreamStatus
    | Gap
)

_decoder = msgspec.json.Decoder(AnyEvent)
_encoder = msgspec.json.Encoder(decimal_format="string")


def encode_event(event: Event) -> bytes:
    return _encoder.encode(event)


def decode_event(data: bytes | str) -> AnyEvent:
    return _decoder.decode(data)
