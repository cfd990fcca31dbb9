"""Kraken WebSocket v2 wire types and `parse_ws_frame`.

The structs mirror the wire (kraken.md §3): field names as Kraken spells them, every number that
is a price, size or balance a `Decimal` — msgspec decodes a JSON number into a Decimal keeping its
exact digits (`0.10000000` stays `0.10000000`), which the book checksum needs. Unknown fields are
ignored (Kraken adds fields over time); optional fields default to None because updates are sparse.

Parsing happens in two steps: a small envelope (`channel`, `method`, `type`, raw `data`) decides
what the frame is, then the `data` bytes are decoded once with the decoder for that channel. Book
frames, the hot path, are decoded in one pass when they start as Kraken writes them. Every
failure comes out as `core.errors.ProtocolError`, never as a msgspec or Python exception.

Numbers that are not sane (NaN, Infinity, 1e999999999, a negative price) are refused too
(`core.numbers`; book levels by `level_is_sane`). `parse_ws_frame` checks everything;
`decode_ws_frame`, what the session uses, leaves book levels to `KrakenBook.apply_wire`, which
gives the same verdict from the checksum digits it works out anyway.

REST result types live in `rest_messages.py`.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from brokerbridge.core.errors import ProtocolError
from brokerbridge.core.numbers import first_insane

CLOUDFLARE_RESTARTING = "CloudFlare WebSocket proxy restarting"


class _Wire(msgspec.Struct, frozen=True, kw_only=True):
    """Base for wire types: immutable, unknown fields ignored."""


# ---------------------------------------------------------------- admin frames


class CloudflareRestarting(_Wire, frozen=True, kw_only=True):
    """The bare text frame Cloudflare sends before it drops the connection."""

    text: str = CLOUDFLARE_RESTARTING


class Heartbeat(_Wire, frozen=True, kw_only=True):
    channel: str = "heartbeat"


class StatusData(_Wire, frozen=True, kw_only=True):
    system: str
    api_version: str | None = None
    version: str | None = None
    connection_id: int | None = None  # may exceed 2**63; msgspec decodes up to 2**64-1


class StatusFrame(_Wire, frozen=True, kw_only=True):
    data: list[StatusData]
    type: str | None = None


class Pong(_Wire, frozen=True, kw_only=True):
    method: str = "pong"
    req_id: int | None = None
    time_in: str | None = None
    time_out: str | None = None
    success: bool | None = None
    error: str | None = None


class AckResult(_Wire, frozen=True, kw_only=True):
    """`result` of a method ack: subscription echo or trading result (all fields optional)."""

    channel: str | None = None
    symbol: str | None = None
    depth: int | None = None
    interval: int | None = None
    snapshot: bool | None = None
    event_trigger: str | None = None
    warnings: list[str] | None = None
    maxratecount: int | None = None
    snap_orders: bool | None = None
    snap_trades: bool | None = None
    order_id: str | None = None
    cl_ord_id: str | None = None
    order_userref: int | None = None
    amend_id: str | None = None
    original_order_id: str | None = None
    count: int | None = None
    # cancel_all_orders_after: when the answer was made and when the dead man's switch fires
    # ("0" style values when it was disabled), both RFC 3339.
    currentTime: str | None = None
    triggerTime: str | None = None
    # batch_add: one order of the batch the engine refused (the others went on).
    error: str | None = None


class MethodAck(_Wire, frozen=True, kw_only=True):
    """Answer to a request: subscribe/unsubscribe (one per symbol) or a trading method.

    Failures carry `error` (a single string) and usually no `result`; a top-level `symbol` and
    even `channel` may appear. `Error` is the v1-era `{"Error":"Exceeded msg rate"}`.
    """

    method: str | None = None
    success: bool | None = None
    error: str | None = None
    req_id: int | None = None
    result: AckResult | list[AckResult] | None = None
    symbol: str | None = None
    channel: str | None = None
    time_in: str | None = None
    time_out: str | None = None
    Error: str | None = None

    @property
    def error_text(self) -> str | None:
        return self.error if self.error is not None else self.Error

    @property
    def ok(self) -> bool:
        return self.success is True and self.error_text is None

    @property
    def ack_symbol(self) -> str | None:
        if isinstance(self.result, AckResult) and self.result.symbol is not None:
            return self.result.symbol
        return self.symbol

    @property
    def ack_channel(self) -> str | None:
        if isinstance(self.result, AckResult) and self.result.channel is not None:
            return self.result.channel
        return self.channel


# ---------------------------------------------------------------- public market data


class TickerData(_Wire, frozen=True, kw_only=True):
    symbol: str
    bid: Decimal
    bid_qty: Decimal
    ask: Decimal
    ask_qty: Decimal
    last: Decimal
    volume: Decimal
    vwap: Decimal
    low: Decimal
    high: Decimal
    change: Decimal | None = None
    change_pct: Decimal | None = None
    trades: int | None = None  # 2026 captures only
    timestamp: str | None = None  # absent before 2025


class TickerFrame(_Wire, frozen=True, kw_only=True):
    type: str
    data: list[TickerData]


# The book types, decoded for every book frame, are not tracked by the garbage collector
# (gc=False, ~5 % of the decode): they hold numbers, strings and lists of each other, no cycle.
class BookLevel(_Wire, frozen=True, kw_only=True, gc=False):
    price: Decimal
    qty: Decimal


class BookData(_Wire, frozen=True, kw_only=True, gc=False):
    symbol: str
    bids: list[BookLevel] = []
    asks: list[BookLevel] = []
    checksum: int | None = None
    timestamp: str | None = None  # absent on 2024 snapshots


class BookFrame(_Wire, frozen=True, kw_only=True, gc=False):
    type: str
    data: list[BookData]


class TradeData(_Wire, frozen=True, kw_only=True):
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    trade_id: int
    timestamp: str
    ord_type: str | None = None


class TradeFrame(_Wire, frozen=True, kw_only=True):
    type: str
    data: list[TradeData]


class OhlcData(_Wire, frozen=True, kw_only=True):
    symbol: str
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    vwap: Decimal
    volume: Decimal
    trades: int
    interval_begin: str
    interval: int
    timestamp: str | None = None  # deprecated: interval END


class OhlcFrame(_Wire, frozen=True, kw_only=True):
    type: str
    data: list[OhlcData]
    timestamp: str | None = None


class InstrumentAsset(_Wire, frozen=True, kw_only=True):
    id: str
    status: str
    precision: int | None = None
    precision_display: int | None = None
    borrowable: bool | None = None
    collateral_value: Decimal | None = None
    margin_rate: Decimal | None = None


class InstrumentPair(_Wire, frozen=True, kw_only=True):
    symbol: str
    base: str
    quote: str
    status: str
    qty_precision: int
    price_precision: int
    qty_increment: Decimal
    price_increment: Decimal | None = None
    tick_size: Decimal | None = None  # deprecated alias of price_increment
    qty_min: Decimal | None = None
    cost_min: Decimal | None = None
    cost_precision: int | None = None
    marginable: bool | None = None
    has_index: bool | None = None


class InstrumentData(_Wire, frozen=True, kw_only=True):
    assets: list[InstrumentAsset] = []
    pairs: list[InstrumentPair] = []


class InstrumentFrame(_Wire, frozen=True, kw_only=True):
    type: str
    data: InstrumentData


# ---------------------------------------------------------------- private channels


class Wallet(_Wire, frozen=True, kw_only=True):
    type: str
    id: str
    balance: Decimal


class BalanceEntry(_Wire, frozen=True, kw_only=True):
    """A `balances` snapshot row: the asset's total across wallets."""

    asset: str
    balance: Decimal
    asset_class: str | None = None
    wallets: list[Wallet] = []


class LedgerEntry(_Wire, frozen=True, kw_only=True):
    """A `balances` update row: one ledger movement and the resulting total."""

    asset: str
    amount: Decimal
    balance: Decimal
    fee: Decimal = Decimal(0)
    ledger_id: str | None = None
    ref_id: str | None = None
    timestamp: str | None = None
    type: str | None = None
    subtype: str | None = None
    category: str | None = None
    asset_class: str | None = None
    wallet_type: str | None = None
    wallet_id: str | None = None


class BalancesSnapshotFrame(_Wire, frozen=True, kw_only=True):
    data: list[BalanceEntry]
    sequence: int | None = None


class BalancesUpdateFrame(_Wire, frozen=True, kw_only=True):
    data: list[LedgerEntry]
    sequence: int | None = None


class Fee(_Wire, frozen=True, kw_only=True):
    asset: str
    qty: Decimal


class Triggers(_Wire, frozen=True, kw_only=True):
    reference: str | None = None
    price: Decimal | None = None
    price_type: str | None = None
    actual_price: Decimal | None = None
    peak_price: Decimal | None = None
    last_price: Decimal | None = None
    status: str | None = None
    timestamp: str | None = None


class ExecutionReport(_Wire, frozen=True, kw_only=True):
    """One execution report; which fields are present depends on `exec_type` (sparse updates)."""

    exec_type: str
    order_id: str | None = None
    order_status: str | None = None
    timestamp: str | None = None
    symbol: str | None = None
    side: str | None = None
    order_type: str | None = None
    order_qty: Decimal | None = None
    cash_order_qty: Decimal | None = None
    limit_price: Decimal | None = None
    limit_price_type: str | None = None
    time_in_force: str | None = None
    order_userref: int | None = None
    cl_ord_id: str | None = None
    post_only: bool | None = None
    reduce_only: bool | None = None
    margin: bool | None = None
    # trade events only
    exec_id: str | None = None
    trade_id: int | None = None
    last_qty: Decimal | None = None
    last_price: Decimal | None = None
    cost: Decimal | None = None
    liquidity_ind: str | None = None
    fees: list[Fee] | None = None
    fee_usd_equiv: Decimal | None = None
    fee_ccy_pref: str | None = None
    cum_qty: Decimal | None = None
    cum_cost: Decimal | None = None
    avg_price: Decimal | None = None
    reason: str | None = None
    cancel_reason: str | None = None  # deprecated, use reason
    triggers: Triggers | None = None
    amended: bool | None = None
    liquidated: bool | None = None


class ExecutionsFrame(_Wire, frozen=True, kw_only=True):
    type: str
    data: list[ExecutionReport]
    sequence: int | None = None


WsFrame = (
    CloudflareRestarting
    | Heartbeat
    | StatusFrame
    | Pong
    | MethodAck
    | TickerFrame
    | BookFrame
    | TradeFrame
    | OhlcFrame
    | InstrumentFrame
    | BalancesSnapshotFrame
    | BalancesUpdateFrame
    | ExecutionsFrame
)


# ---------------------------------------------------------------- trading requests
#
# The `params` of the trading methods on the authenticated socket, field names as Kraken spells
# them; None fields are left out of the frame (`omit_defaults`), and amounts go out as JSON numbers
# with the Decimal's own digits (Kraken refuses a string: `Limit_price field must be a
# number_float`). The session adds the WebSocket token (`token`) to each as it sends it.


class TradingParams(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    token: str = ""


class AddOrderParams(TradingParams, frozen=True, kw_only=True, omit_defaults=True):
    order_type: str  # limit | market
    side: str  # buy | sell
    order_qty: Decimal
    symbol: str
    limit_price: Decimal | None = None
    time_in_force: str | None = None  # gtc | ioc | fok | gtd (None: Kraken's default, gtc)
    cl_ord_id: str | None = None


class AmendOrderParams(TradingParams, frozen=True, kw_only=True, omit_defaults=True):
    """`order_id` or `cl_ord_id` names the order; the order keeps its ids (and, where it can, its
    place in the book)."""

    order_id: str | None = None
    cl_ord_id: str | None = None
    order_qty: Decimal | None = None
    limit_price: Decimal | None = None


class CancelOrderParams(TradingParams, frozen=True, kw_only=True, omit_defaults=True):
    """One list of ids, of one kind; Kraken answers one ack per order."""

    order_id: list[str] | None = None
    cl_ord_id: list[str] | None = None


class BatchOrder(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One order of a `batch_add` (the pair is the batch's)."""

    order_type: str
    side: str
    order_qty: Decimal
    limit_price: Decimal | None = None
    time_in_force: str | None = None
    cl_ord_id: str | None = None


class BatchAddParams(TradingParams, frozen=True, kw_only=True, omit_defaults=True):
    """2 to 15 orders on one pair, checked as a whole before any reaches the engine."""

    symbol: str
    orders: list[BatchOrder]
    validate: bool | None = None


class BatchCancelParams(TradingParams, frozen=True, kw_only=True, omit_defaults=True):
    """2 to 50 orders by Kraken id (`orders`) and/or client order id (`cl_ord_id`)."""

    orders: list[str] | None = None
    cl_ord_id: list[str] | None = None


class CancelAfterParams(TradingParams, frozen=True, kw_only=True, omit_defaults=True):
    """The dead man's switch: cancel every open order `timeout` seconds from now unless asked
    again first; 0 disables it."""

    timeout: int


AnyTradingParams = (
    AddOrderParams
    | AmendOrderParams
    | CancelOrderParams
    | BatchAddParams
    | BatchCancelParams
    | CancelAfterParams
)
# The method each kind of params goes with.
TRADING_METHOD: dict[type[TradingParams], str] = {
    AddOrderParams: "add_order",
    AmendOrderParams: "amend_order",
    CancelOrderParams: "cancel_order",
    BatchAddParams: "batch_add",
    BatchCancelParams: "batch_cancel",
    CancelAfterParams: "cancel_all_orders_after",
}


# ---------------------------------------------------------------- parsing


class _Envelope(msgspec.Struct):
    channel: str | None = None
    method: str | None = None
    type: str | None = None
    data: msgspec.Raw = msgspec.Raw()  # empty when absent (Raw does not combine with None)
    sequence: int | None = None
    timestamp: str | None = None
    success: bool | None = None
    Error: str | None = None


_envelope_decoder = msgspec.json.Decoder(_Envelope)
# Book frames, the hot path, are decoded in one pass (`channel` is an unknown field to BookFrame).
_book_frame_decoder = msgspec.json.Decoder(BookFrame)
# Kraken writes `channel` first; a frame that starts otherwise simply takes the general route.
_BOOK_PREFIXES = ('{"channel":"book",', b'{"channel":"book",')
_ack_decoder = msgspec.json.Decoder(MethodAck)
_pong_decoder = msgspec.json.Decoder(Pong)
_status_decoder = msgspec.json.Decoder(list[StatusData])
_ticker_decoder = msgspec.json.Decoder(list[TickerData])
_book_decoder = msgspec.json.Decoder(list[BookData])
_trade_decoder = msgspec.json.Decoder(list[TradeData])
_ohlc_decoder = msgspec.json.Decoder(list[OhlcData])
_instrument_decoder = msgspec.json.Decoder(InstrumentData)
_balance_snapshot_decoder = msgspec.json.Decoder(list[BalanceEntry])
_ledger_decoder = msgspec.json.Decoder(list[LedgerEntry])
_executions_decoder = msgspec.json.Decoder(list[ExecutionReport])

_DATA_TYPES = ("snapshot", "update")
_MAX_PREVIEW = 120


def _preview(text: str | bytes) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return text if len(text) <= _MAX_PREVIEW else text[:_MAX_PREVIEW] + "…"


def _bad(reason: str, text: str | bytes) -> ProtocolError:
    return ProtocolError(f"kraken ws: {reason}: {_preview(text)!r}")


_MAX_EXPONENT = 40  # |adjusted exponent| of a sane price or size


# A positive Decimal is sane iff 1E-40 <= value < 1E+41 (adjusted exponent within ±40).
_SANE_LOW = Decimal(f"1E-{_MAX_EXPONENT}")
_SANE_HIGH = Decimal(f"1E+{_MAX_EXPONENT + 1}")


def level_is_sane(price: Decimal, qty: Decimal) -> bool:
    """A book level a book can take: a price and, unless it deletes (0), a qty within
    1E-40 <= value < 1E+41; a zero qty's exponent within ±40.

    JSON has no NaN, but msgspec accepts "NaN"/"Infinity" strings for Decimal; they would break
    price ordering. `1e999999999` is valid JSON whose fixed-point text (needed by the checksum)
    would be a gigabyte. Infinity fails the range; comparing a NaN raises InvalidOperation."""
    try:
        if not _SANE_LOW <= price < _SANE_HIGH:
            return False
        if qty:
            return _SANE_LOW <= qty < _SANE_HIGH
        return -_MAX_EXPONENT <= qty.adjusted() <= _MAX_EXPONENT
    except ArithmeticError:
        return False


def _check_book(books: list[BookData], text: str | bytes) -> None:
    # The session does not come here: KrakenBook.apply_wire gives the same verdict per level
    # from the digits it works out anyway (decode_ws_frame).
    for book in books:
        for level in (*book.bids, *book.asks):
            if not level_is_sane(level.price, level.qty):
                raise _bad("book level is not a sane positive number", text)


def parse_ws_frame(text: str | bytes) -> WsFrame:
    """Decode one WebSocket text frame into its wire type.

    Raises `ProtocolError` (only) for anything that is not a frame we understand: non-JSON text
    other than the Cloudflare notice, a JSON value that is not an object, an unknown channel,
    fields of the wrong type, or a number that is not sane (`level_is_sane`, `core.numbers`).
    """
    frame = decode_ws_frame(text)
    if isinstance(frame, BookFrame):
        _check_book(frame.data, text)
    return frame


def decode_ws_frame(text: str | bytes) -> WsFrame:
    """`parse_ws_frame` without the check of book levels' numbers, for a caller that checks each
    level as it applies it (`KrakenBook.apply_wire`, which refuses what `level_is_sane` refuses).
    Every other number is checked here."""
    # Book frames first (the hot path), decoded in one pass; a malformed one, or one that is not
    # a snapshot or update with data, goes the general route, which gives the precise error.
    if text.startswith(_BOOK_PREFIXES[isinstance(text, bytes)]):  # type: ignore[arg-type]
        try:
            book = _book_frame_decoder.decode(text)
        except (msgspec.DecodeError, UnicodeError, ValueError, TypeError, RecursionError):
            pass
        else:
            if book.data and book.type in _DATA_TYPES:
                return book
    # JSON frames start with "{", so only odd frames pay for strip().
    elif text[:1] not in ("{", b"{"):
        stripped = text.strip() if isinstance(text, str) else text.strip().decode("utf-8", "replace")
        if stripped == CLOUDFLARE_RESTARTING:
            return CloudflareRestarting()
    try:
        env = _envelope_decoder.decode(text)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError too
        raise _bad(f"not a JSON object ({exc})", text) from None
    except (UnicodeError, ValueError, TypeError) as exc:  # defensive: never leak foreign errors
        raise _bad(f"undecodable frame ({exc})", text) from None
    except RecursionError:
        raise _bad("JSON nested too deeply", text) from None
    try:
        frame = _dispatch(env, text)
    except msgspec.DecodeError as exc:
        raise _bad(f"unexpected {env.channel or env.method or 'frame'} shape ({exc})", text) from None
    except RecursionError:
        raise _bad(f"{env.channel or env.method or 'frame'} nested too deeply", text) from None
    # Book levels: see parse_ws_frame; any other "NaN"/"1e999999" must not reach events either.
    if not isinstance(frame, BookFrame) and (where := first_insane(frame)) is not None:
        raise _bad(f"{where} is not a sane number", text)
    return frame


def _dispatch(env: _Envelope, text: str | bytes) -> WsFrame:
    if env.method == "pong":
        return _pong_decoder.decode(text)
    if env.method is not None or env.success is not None or env.Error is not None:
        return _ack_decoder.decode(text)
    channel = env.channel
    if channel == "heartbeat":
        return Heartbeat()
    if channel is None:
        raise _bad("frame has neither channel nor method", text)
    if not env.data:
        raise _bad(f"{channel} frame without data", text)
    if channel == "status":
        return StatusFrame(data=_status_decoder.decode(env.data), type=env.type)
    if env.type not in _DATA_TYPES:
        raise _bad(f"{channel} frame with type {env.type!r}", text)
    kind = env.type
    if channel == "book":
        return BookFrame(type=kind, data=_book_decoder.decode(env.data))
    if channel == "ticker":
        return TickerFrame(type=kind, data=_ticker_decoder.decode(env.data))
    if channel == "trade":
        return TradeFrame(type=kind, data=_trade_decoder.decode(env.data))
    if channel == "ohlc":
        return OhlcFrame(type=kind, data=_ohlc_decoder.decode(env.data), timestamp=env.timestamp)
    if channel == "instrument":
        return InstrumentFrame(type=kind, data=_instrument_decoder.decode(env.data))
    if channel == "balances":
        if kind == "snapshot":
            return BalancesSnapshotFrame(
                data=_balance_snapshot_decoder.decode(env.data), sequence=env.sequence
            )
        return BalancesUpdateFrame(data=_ledger_decoder.decode(env.data), sequence=env.sequence)
    if channel == "executions":
        return ExecutionsFrame(type=kind, data=_executions_decoder.decode(env.data), sequence=env.sequence)
    raise _bad(f"unsupported channel {channel!r}", text)
