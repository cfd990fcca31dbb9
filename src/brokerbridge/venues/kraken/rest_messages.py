"""Kraken REST `result` types (kraken.md §1.2, §1.3) for polling and reconciliation.

Amounts are strings on the wire and become `Decimal` with their digits kept. Results keyed by pair
or asset id are plain `dict[str, Struct]`; OHLC and Trades mix the pair key with a `last` cursor in
one object, so they get small wrapper types built by the codec (`rest.py`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

import msgspec


class _Rest(msgspec.Struct, frozen=True, kw_only=True):
    """Base: immutable, unknown fields ignored (Kraken adds fields)."""


class ServerTime(_Rest, frozen=True, kw_only=True):
    unixtime: int
    rfc1123: str | None = None


class SystemStatus(_Rest, frozen=True, kw_only=True):
    status: str
    timestamp: str | None = None


class AssetPair(_Rest, frozen=True, kw_only=True):
    altname: str
    base: str
    quote: str
    wsname: str | None = None  # WS *v1* name (XBT/USD); see normalize.SymbolMap
    pair_decimals: int | None = None
    lot_decimals: int | None = None
    cost_decimals: int | None = None
    ordermin: Decimal | None = None
    costmin: Decimal | None = None
    tick_size: Decimal | None = None
    status: str | None = None


class TickerInfo(_Rest, frozen=True, kw_only=True):
    a: tuple[Decimal, Decimal, Decimal]  # ask price, whole lot volume, lot volume
    b: tuple[Decimal, Decimal, Decimal]  # bid
    c: tuple[Decimal, Decimal]  # last trade price, lot volume
    v: tuple[Decimal, Decimal]  # volume today, last 24h
    p: tuple[Decimal, Decimal]  # vwap today, last 24h
    t: tuple[int, int]  # trade count today, last 24h
    l: tuple[Decimal, Decimal]  # noqa: E741 - low today, last 24h (Kraken's name)
    h: tuple[Decimal, Decimal]  # high today, last 24h
    o: Decimal  # today's opening price (since 00:00 UTC)


DepthRow = tuple[Decimal, Decimal, int]  # price, volume, timestamp


class DepthBook(_Rest, frozen=True, kw_only=True):
    asks: list[DepthRow]
    bids: list[DepthRow]


OhlcRow = tuple[int, Decimal, Decimal, Decimal, Decimal, Decimal, Decimal, int]
TradeRow = tuple[Decimal, Decimal, Decimal, str, str, str, int]  # price, volume, time, b/s, m/l, misc, id


class OhlcResult(_Rest, frozen=True, kw_only=True):
    pair: str
    rows: list[OhlcRow]
    last: int | None = None


class TradesResult(_Rest, frozen=True, kw_only=True):
    pair: str
    rows: list[TradeRow]
    last: str | None = None  # nanosecond cursor, kept as text


class BalanceExEntry(_Rest, frozen=True, kw_only=True):
    balance: Decimal
    hold_trade: Decimal = Decimal(0)
    credit: Decimal | None = None
    credit_used: Decimal | None = None


class OrderDescription(_Rest, frozen=True, kw_only=True):
    pair: str
    type: str
    ordertype: str
    price: Decimal | None = None
    price2: Decimal | None = None
    leverage: str | None = None
    order: str | None = None
    close: str | None = None


class RestOrder(_Rest, frozen=True, kw_only=True):
    status: str
    descr: OrderDescription
    vol: Decimal
    vol_exec: Decimal
    opentm: float
    cost: Decimal | None = None
    fee: Decimal | None = None
    price: Decimal | None = None  # average fill price
    stopprice: Decimal | None = None
    limitprice: Decimal | None = None
    refid: str | None = None
    userref: int | None = None
    cl_ord_id: str | None = None
    misc: str | None = None
    oflags: str | None = None
    trades: list[str] | None = None
    reason: str | None = None
    closetm: float | None = None


class OpenOrders(_Rest, frozen=True, kw_only=True):
    open: dict[str, RestOrder]


class RestTrade(_Rest, frozen=True, kw_only=True):
    ordertxid: str
    pair: str
    time: float
    type: str
    ordertype: str
    price: Decimal
    cost: Decimal
    fee: Decimal
    vol: Decimal
    postxid: str | None = None
    margin: Decimal | None = None
    misc: str | None = None
    trade_id: int | None = None
    maker: bool | None = None


class HistoryPage(Protocol):
    """A page of a paged history call (`ClosedOrders`, `TradesHistory`): `count` is how many rows
    the whole history holds, so a reader knows when it has them all."""

    @property
    def count(self) -> int | None: ...


class TradesHistory(_Rest, frozen=True, kw_only=True):
    trades: dict[str, RestTrade]
    count: int | None = None


class WebSocketsToken(_Rest, frozen=True, kw_only=True):
    token: str
    expires: int

    def __repr__(self) -> str:  # the token authenticates private streams: never print it
        return f"WebSocketsToken(token='***', expires={self.expires})"


class AddOrderDescription(_Rest, frozen=True, kw_only=True):
    order: str
    close: str | None = None


class AddOrderResult(_Rest, frozen=True, kw_only=True):
    descr: AddOrderDescription
    txid: list[str] = []  # absent with validate=true


class CancelOrderResult(_Rest, frozen=True, kw_only=True):
    count: int
    pending: bool | None = None


class AmendOrderResult(_Rest, frozen=True, kw_only=True):
    amend_id: str  # the amend's own id; the order keeps its txid


class CancelAllAfterResult(_Rest, frozen=True, kw_only=True):
    """The dead man's switch: when Kraken answered and when it cancels everything, RFC 3339."""

    currentTime: str  # Kraken's spelling
    triggerTime: str


class ClosedOrders(_Rest, frozen=True, kw_only=True):
    closed: dict[str, RestOrder]
    count: int | None = None


class AssetInfo(_Rest, frozen=True, kw_only=True):
    altname: str
    decimals: int
    display_decimals: int | None = None
    aclass: str | None = None
    status: str | None = None
