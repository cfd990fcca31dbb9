"""Primary WebSocket wire types (primary.md §4) and `parse_ws_frame`; outgoing frame builders.

Server → client: `Md` market-data snapshots, `or` order reports, and the error frame
`{"status":"ERROR","message":…,"description":…}`. Field names are Primary's. Every price, size and
volume is a `Decimal` decoded from the JSON number's own digits (`6320.00` stays `6320.00`).
Unknown fields are ignored; almost everything is optional because Primary sends only the requested
entries and sparse order reports, and shapes vary by market (`CL` is `{price,date}` on BYMA,
`{price,size,date}` elsewhere; `OI` is `{price:null,size,date}`; `TV` a bare number or null).
Scalar entries therefore accept either a bare number or an entry object (`scalar_of` reads both).

`parse_ws_frame` raises only `core.errors.ProtocolError`. The session's `Md` hot path decodes with
`parse_md_lazily` / `parse_md_rows_unchecked` (book rows checked by the caller, `parse_ws_frame`
giving the verdict on anything unusual: see their docstrings).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from operator import attrgetter
from typing import TypeVar

import msgspec
from msgspec import UNSET, UnsetType

from brokerbridge.core.errors import ProtocolError
from brokerbridge.core.numbers import MAX_EXPONENT, first_insane
from brokerbridge.venues.primary import DEFAULT_MARKET


class _Wire(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Base for wire types: immutable, unknown fields ignored.

    `gc=False`: decoded wire data never refers back to itself (no reference cycle to collect), and
    an untracked Struct is cheaper to allocate: ≈ 7 % of an `Md` frame's decode (5-level book)."""


class InstrumentId(_Wire, frozen=True, kw_only=True):
    marketId: str = DEFAULT_MARKET  # Primary's spelling
    symbol: str


class PriceSize(_Wire, frozen=True, kw_only=True):
    """One book level (`BI`/`OF` items)."""

    price: Decimal | None = None
    size: Decimal | None = None


class EntryValue(_Wire, frozen=True, kw_only=True):
    """`LA`, `CL`, `SE`, `OI` (and, defensively, any entry sent as an object)."""

    price: Decimal | None = None
    size: Decimal | None = None
    date: float | None = None  # ms since the epoch


Scalar = Decimal | EntryValue | None
# UNSET = the entry is not in the message (not requested); None = requested, nothing there.
Levels = list[PriceSize] | None | UnsetType
Entry = Scalar | UnsetType


class MdEntries(_Wire, frozen=True, kw_only=True):
    """What a `marketData` object holds besides its book sides: the last trade and the session
    figures. The base of `MarketData` and of the session's `LazyMarketData`."""

    LA: EntryValue | UnsetType | None = UNSET
    OP: Entry = UNSET
    CL: Entry = UNSET
    SE: Entry = UNSET
    HI: Entry = UNSET
    LO: Entry = UNSET
    TV: Entry = UNSET
    OI: Entry = UNSET
    IV: Entry = UNSET
    EV: Entry = UNSET
    NV: Entry = UNSET
    ACP: Entry = UNSET
    TC: Entry = UNSET

    def has(self, *entries: str) -> bool:
        """True when any of `entries` is in the message (even as null / [])."""
        return any(getattr(self, name, UNSET) is not UNSET for name in entries)

    def last(self) -> EntryValue | None:
        return self.LA if isinstance(self.LA, EntryValue) else None


class MarketData(MdEntries, frozen=True, kw_only=True):
    """The `marketData` object: only the requested entries, each possibly null / empty."""

    BI: Levels = UNSET
    OF: Levels = UNSET

    def levels(self, side: str) -> list[PriceSize]:
        """`BI` or `OF` as a list ([] when null or absent)."""
        value = getattr(self, side)
        return value if isinstance(value, list) else []


NO_ROWS = msgspec.Raw()  # a book side absent from the message


class LazyMarketData(MdEntries, frozen=True, kw_only=True):
    """`MarketData` with its book sides left as their JSON text (`NO_ROWS` when absent): on the
    live feed a side is mostly the same as in the product's previous frame, and comparing texts
    costs a fraction of decoding up to 10 `Decimal`s. `parse_rows` decodes a side that changed."""

    BI: msgspec.Raw = NO_ROWS
    OF: msgspec.Raw = NO_ROWS


def scalar_of(value: Entry, *, prefer_size: bool = False) -> Decimal | None:
    """The number in a scalar entry: bare number, or the object's price (its size for `OI`)."""
    if value is None or value is UNSET:
        return None
    if isinstance(value, Decimal):
        return value
    assert isinstance(value, EntryValue)
    if prefer_size:
        return value.size if value.size is not None else value.price
    return value.price if value.price is not None else value.size


class MdFrame(_Wire, frozen=True, kw_only=True):
    type: str = "Md"
    timestamp: float | None = None  # ms; absent in the manual's example, present in every capture
    instrumentId: InstrumentId
    marketData: MarketData = MarketData()
    # Never on a real Md frame: decoded only so that the one-pass route sees a `status` key (then
    # the envelope decides: an error frame wins over its type) without scanning the text for it.
    status: str | None = None


class LazyMdFrame(_Wire, frozen=True, kw_only=True):
    """An `Md` frame as `parse_md_lazily` gives it: `MdFrame` with a `LazyMarketData`."""

    type: str = "Md"
    timestamp: float | None = None
    instrumentId: InstrumentId
    marketData: LazyMarketData = LazyMarketData()
    status: str | None = None  # as on MdFrame


class AccountId(_Wire, frozen=True, kw_only=True):
    id: str | int


class OrderReport(_Wire, frozen=True, kw_only=True):
    """An order report (WS `or` and REST order endpoints alike); sparse, see primary.md §3.6."""

    orderId: str | int | None = None  # null until the market accepts the order
    clOrdId: str | int | None = None
    origClOrdId: str | int | None = None  # on the report of a cancel/replace request
    proprietary: str | None = None
    execId: str | int | None = None
    accountId: AccountId | None = None
    instrumentId: InstrumentId | None = None
    price: Decimal | None = None
    orderQty: Decimal | None = None
    ordType: str | None = None
    side: str | None = None
    timeInForce: str | None = None
    transactTime: str | None = None  # "20220516-11:47:02.226-0300"
    avgPx: Decimal | None = None
    lastPx: Decimal | None = None
    lastQty: Decimal | None = None
    cumQty: Decimal | None = None
    leavesQty: Decimal | None = None
    status: str | None = None
    text: str | None = None
    wsClOrdId: str | None = None  # only on the first report of a WS order
    numericOrderId: str | int | None = None
    originatingUsername: str | None = None
    iceberg: str | bool | None = None  # xOMS sends the string "true"
    displayQty: Decimal | None = None
    expireDate: str | None = None
    stopPx: Decimal | None = None


class OrFrame(_Wire, frozen=True, kw_only=True):
    type: str = "or"
    timestamp: float | None = None
    orderReport: OrderReport


class ErrorFrame(_Wire, frozen=True, kw_only=True):
    """`{"status":"ERROR","message":<echoed request or null>,"description":<text>}`."""

    status: str = "ERROR"
    message: str | None = None
    description: str | None = None

    @property
    def text(self) -> str:
        """The human part: `description`, else `message`."""
        return self.description or self.message or "unspecified error"


WsFrame = MdFrame | OrFrame | ErrorFrame


# ---------------------------------------------------------------- parsing


class _Envelope(msgspec.Struct):
    type: str | None = None
    status: str | None = None


_envelope_decoder = msgspec.json.Decoder(_Envelope)
_md_decoder = msgspec.json.Decoder(MdFrame)
_lazy_md_decoder = msgspec.json.Decoder(LazyMdFrame)
_rows_decoder = msgspec.json.Decoder(list[PriceSize] | None)
_AnyMd = TypeVar("_AnyMd", MdFrame, LazyMdFrame)
_or_decoder = msgspec.json.Decoder(OrFrame)
_error_decoder = msgspec.json.Decoder(ErrorFrame)
_MAX_PREVIEW = 120
_FIGURE_ENTRIES = ("OP", "CL", "SE", "HI", "LO", "TV", "OI", "IV", "EV", "NV", "ACP", "TC")
_figure_entries = attrgetter(*_FIGURE_ENTRIES)
# Primary's (and the simulator's) Md frames start so; parse_ws_frame decodes them in one pass.
_MD_PREFIX = '{"type":"Md",'


def _preview(text: str | bytes) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return text if len(text) <= _MAX_PREVIEW else text[:_MAX_PREVIEW] + "…"


def _bad(reason: str, text: str | bytes) -> ProtocolError:
    return ProtocolError(f"primary ws: {reason}: {_preview(text)!r}")


# A nonzero Decimal is sane (core.numbers) iff 1E-40 <= |value| < 1E+41; see _sane_number. Every
# positive number in [SANE_LOW, SANE_HIGH) is sane: two comparisons, no call, clear most values.
SANE_LOW = Decimal(f"1E-{MAX_EXPONENT}")
SANE_HIGH = Decimal(f"1E+{MAX_EXPONENT + 1}")


def _sane_number(value: Decimal | None) -> bool:
    """core.numbers.sane, by two comparisons: Infinity fails the range, comparing a NaN raises
    InvalidOperation (an ArithmeticError, which `check_market_data` turns into the same refusal)."""
    if value is None:
        return True
    if value:
        return SANE_LOW <= value < SANE_HIGH or -SANE_HIGH < value <= -SANE_LOW
    return -MAX_EXPONENT <= value.adjusted() <= MAX_EXPONENT  # a zero's adjusted() is its exponent


def check_market_data(data: MarketData) -> None:
    """Raise ValueError when a number in `data` is not sane (core.numbers) or a date is absurd.

    The same verdict as `first_insane(data)`, written out for MarketData's fixed shape: this runs
    for every Md frame, and the generic walk cost more than the rest of the frame's handling. A
    positive number inside the range passes on two inline comparisons (no call per number); any
    other value gets `_sane_number`'s exact verdict; entries are checked in the generic walk's
    order (BI, OF, then LA, OP, … TC), so the first insane one is the one named."""
    try:
        where = _insane_level("BI", data.BI) or _insane_level("OF", data.OF)
        if where is None and data.LA is not UNSET:
            where = _insane_entry("LA", data.LA)
        if where is None and _has_figures(data):
            where = _insane_figures(data)
    except ArithmeticError:
        raise ValueError("a number is not finite") from None
    if where is not None:
        raise ValueError(f"{where} is not a finite number of sane size")


def _insane_level(side: str, levels: Levels) -> str | None:
    if not isinstance(levels, list):
        return None
    low, high = SANE_LOW, SANE_HIGH
    for level in levels:
        price, size = level.price, level.size
        if (price is None or low <= price < high) and (size is None or low <= size < high):
            continue
        if not (_sane_number(price) and _sane_number(size)):
            index = next(i for i, item in enumerate(levels) if item is level)
            return f"$.{side}.{index}"
    return None


def _insane_entry(name: str, value: Entry) -> str | None:
    """The path of `value` when a number in it is not sane; ValueError when its date is absurd."""
    if value is UNSET or value is None:
        return None
    if isinstance(value, EntryValue):
        price, size = value.price, value.size
        if not (
            (price is None or SANE_LOW <= price < SANE_HIGH)
            and (size is None or SANE_LOW <= size < SANE_HIGH)
        ) and not (_sane_number(price) and _sane_number(size)):
            return f"$.{name}"
        if value.date is not None:
            _check_timestamp(value.date)
    elif isinstance(value, Decimal) and not _sane_number(value):
        return f"$.{name}"
    return None


def _has_figures(data: MdEntries) -> bool:
    """Whether any session figure (OP … TC) is in the message; usually none is. Written out: a
    slot read per entry costs a third of what `attrgetter` with 12 names does."""
    unset = UNSET
    return not (
        data.OP is unset and data.CL is unset and data.SE is unset and data.HI is unset
        and data.LO is unset and data.TV is unset and data.OI is unset and data.IV is unset
        and data.EV is unset and data.NV is unset and data.ACP is unset and data.TC is unset
    )  # fmt: skip


def _insane_figures(data: MdEntries) -> str | None:
    """The session figures (OP … TC); usually none is in the frame, which the caller checks."""
    for name, value in zip(_FIGURE_ENTRIES, _figure_entries(data), strict=True):
        where = _insane_entry(name, value)
        if where is not None:
            return where
    return None


def _check_numbers(message: msgspec.Struct) -> None:
    where = first_insane(message)
    if where is not None:
        raise ValueError(f"{where} is not a finite number of sane size")


def _check_timestamp(value: float | None) -> None:
    if value is not None and not (-1e15 < value < 1e15):
        raise ValueError("timestamp out of range")


def parse_ws_frame(text: str | bytes) -> WsFrame:
    """Decode one text frame. Raises `ProtocolError` (only) for anything we do not understand."""
    if isinstance(text, str) and text.startswith(_MD_PREFIX):
        md = _decode_md_in_one_pass(text)
        if md is not None:
            return md
    try:
        env = _envelope_decoder.decode(text)
    except msgspec.DecodeError as exc:
        raise _bad(f"not a JSON object ({exc})", text) from None
    except (UnicodeError, ValueError, TypeError) as exc:  # defensive: never leak foreign errors
        raise _bad(f"undecodable frame ({exc})", text) from None
    except RecursionError:  # msgspec recurses per nesting level; deep JSON is hostile, not data
        raise _bad("JSON nested too deeply", text) from None
    try:
        if env.status is not None and env.status.upper() == "ERROR":
            return _error_decoder.decode(text)
        kind = (env.type or "").upper()
        if kind == "MD":
            return _checked_md(_md_decoder.decode(text), text)
        if kind == "OR":
            report = _or_decoder.decode(text)
            _check_timestamp(report.timestamp)
            _check_numbers(report.orderReport)
            return report
    except msgspec.DecodeError as exc:
        raise _bad(f"unexpected {env.type or 'error'} frame shape ({exc})", text) from None
    except RecursionError:
        raise _bad(f"{env.type or 'error'} frame nested too deeply", text) from None
    except ValueError as exc:
        raise _bad(str(exc), text) from None
    if env.type is None:
        raise _bad("frame has neither type nor status ERROR", text)
    raise _bad(f"unknown message type {env.type[:20]!r}", text)


def _checked_md(md: MdFrame, text: str | bytes) -> MdFrame:
    """`md` when its numbers and dates are sane; ValueError naming the first that is not."""
    _check_timestamp(md.timestamp)
    check_market_data(md.marketData)
    return md


def parse_md_lazily(text: str | bytes) -> LazyMdFrame | None:
    """The session's route for `Md` frames: decoded in one pass as `parse_ws_frame` would, but
    into a `LazyMdFrame`, its timestamp, `LA` and session figures checked; or None (then
    `parse_ws_frame` decides, and words any error).

    The book sides are still text: the caller decodes a side that changed (`parse_rows`), checks
    its rows while making them levels (`normalize.checked_levels`) and, when either refuses, calls
    `parse_ws_frame(text)`, which raises the `ProtocolError` the frame deserves (the first insane
    number, the bad shape) exactly as if it had decoded the frame itself."""
    if not (isinstance(text, str) and text.startswith(_MD_PREFIX)):
        return None
    md = _decode_md(text, _lazy_md_decoder)
    return md if md is not None and _entries_pass(md.timestamp, md.marketData) else None


def parse_md_rows_unchecked(text: str | bytes) -> MdFrame | None:
    """`parse_md_lazily` for a product whose book changes with every frame: the book sides
    decoded too (one decode of the whole frame costs less than three), their numbers unchecked
    just the same: the caller checks them as it makes levels, as for a `parse_rows` side."""
    if not (isinstance(text, str) and text.startswith(_MD_PREFIX)):
        return None
    md = _decode_md(text, _md_decoder)
    return md if md is not None and _entries_pass(md.timestamp, md.marketData) else None


def md_symbol(text: str | bytes) -> str | None:
    """The symbol of an `Md` frame's text, read without decoding it, or None; only a hint (which
    route to decode it by), never trusted: the decoded frame says which product it is about."""
    if not isinstance(text, str):
        return None
    start = text.find('"symbol":"')
    if start < 0:
        return None
    start += 10
    end = text.find('"', start)
    return text[start:end] if end > 0 else None


def _entries_pass(stamp: float | None, data: MdEntries) -> bool:
    """Whether `_checked_md` passes the frame's timestamp, `LA` and session figures, with their
    common cases inline (a call per number costs more than the rest of the check)."""
    last = data.LA
    try:
        if stamp is not None and not -1e15 < stamp < 1e15:  # _check_timestamp
            return False
        if isinstance(last, EntryValue):  # _insane_entry("LA", …)
            price, size, date = last.price, last.size, last.date
            if not (
                (price is None or SANE_LOW <= price < SANE_HIGH)
                and (size is None or SANE_LOW <= size < SANE_HIGH)
                and (date is None or -1e15 < date < 1e15)
            ):
                return False
        return not (_has_figures(data) and _insane_figures(data) is not None)
    except (ValueError, ArithmeticError):
        return False


def parse_rows(side: msgspec.Raw) -> Levels:
    """A `LazyMarketData` book side decoded, numbers unchecked: UNSET when absent, None when null.
    ValueError when it is not a list of rows (`parse_ws_frame` words why)."""
    if not side:
        return UNSET
    try:
        return _rows_decoder.decode(side)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise ValueError(f"not a list of rows ({exc})") from None


def _decode_md_in_one_pass(text: str) -> MdFrame | None:
    """An `Md` frame decoded straight into `MdFrame` (no envelope pass), or None: then the general
    route decides, and words any error, exactly as for any frame.

    Only where the envelope could not have said otherwise: no `status` key (an error frame wins
    over its type), no escape (a key spelled with one is still that key), and the decoded `type`
    (the last one, for both decoders) is still Md."""
    md = _decode_md(text, _md_decoder)
    if md is None:
        return None
    try:
        return _checked_md(md, text)
    except ValueError as exc:
        raise _bad(str(exc), text) from None


def _decode_md(text: str, decoder: msgspec.json.Decoder[_AnyMd]) -> _AnyMd | None:
    """`text` decoded into `MdFrame` or `LazyMdFrame`, numbers unchecked, where the envelope could
    not have said otherwise (see `_decode_md_in_one_pass`); else None."""
    if "\\" in text:
        return None
    try:
        md = decoder.decode(text)
    except (msgspec.DecodeError, UnicodeError, ValueError, TypeError, RecursionError):
        return None
    if md.status is not None or (md.type != "Md" and md.type.upper() != "MD"):
        return None
    return md


# ---------------------------------------------------------------- client → server frames

_encode = msgspec.json.Encoder(decimal_format="number").encode

MD_ENTRIES: tuple[str, ...] = (
    "BI", "OF", "LA", "OP", "CL", "SE", "HI", "LO", "TV", "OI", "IV", "EV", "NV", "ACP", "TC",
)  # fmt: skip
MAX_PRODUCTS_PER_SMD = 1000  # Primary's best-practice limit (primary.md §3.8)


def smd_frame(
    products: Iterable[tuple[str, str]], *, entries: Sequence[str], depth: int = 1, level: int = 1
) -> str:
    """One market-data subscription, byte-compatible with pyRofex's (key order, no spaces)."""
    message = {
        "type": "smd",
        "level": level,
        "depth": depth,
        "entries": list(entries),
        "products": [{"symbol": symbol, "marketId": market} for symbol, market in products],
    }
    return _encode(message).decode()


def os_frame(account: str | None, *, snapshot_only_active: bool = True) -> str:
    """Order-report subscription for one account (`None`: every account of the user)."""
    message: dict[str, object] = {"type": "os"}
    if account is not None:
        message["account"] = {"id": account}
    message["snapshotOnlyActive"] = snapshot_only_active
    return _encode(message).decode()


def new_order_frame(
    *,
    symbol: str,
    side: str,
    quantity: Decimal | int,
    account: str,
    price: Decimal | None = None,
    order_type: str = "LIMIT",
    time_in_force: str = "DAY",
    market_id: str = DEFAULT_MARKET,
    ws_client_order_id: str | None = None,
    expire_date: str | None = None,
    iceberg: bool = False,
    display_quantity: Decimal | int | None = None,
    all_or_none: bool = False,
    cancel_previous: bool | None = None,
) -> str:
    """A `no` frame (primary.md §4.2) with numbers as JSON numbers and real booleans."""
    side_text = side.upper()
    if side_text not in ("BUY", "SELL"):
        raise ValueError(f"side must be BUY or SELL, got {side!r}")
    order_type = order_type.upper()
    if order_type == "LIMIT" and price is None:
        raise ValueError("a LIMIT order needs a price")
    message: dict[str, object] = {
        "type": "no",
        "product": {"marketId": market_id, "symbol": symbol},
    }
    if price is not None and order_type != "MARKET":
        message["price"] = Decimal(price)
    message["quantity"] = Decimal(quantity)
    message["side"] = side_text
    message["account"] = account
    message["ordType"] = order_type
    message["timeInForce"] = time_in_force.upper()
    if expire_date is not None:
        message["expireDate"] = expire_date
    message["iceberg"] = iceberg
    if iceberg:
        if display_quantity is None:
            raise ValueError("an iceberg order needs display_quantity")
        message["displayQuantity"] = Decimal(display_quantity)
    if all_or_none:
        message["allOrNone"] = True
    if cancel_previous is not None:
        message["cancelPrevious"] = cancel_previous
    if ws_client_order_id is not None:
        message["wsClOrdId"] = ws_client_order_id
    return _encode(message).decode()


def cancel_order_frame(client_order_id: str, proprietary: str) -> str:
    """A `co` frame: cancel the request `client_order_id` (the report's `clOrdId`)."""
    return _encode({"type": "co", "clientId": client_order_id, "proprietary": proprietary}).decode()
