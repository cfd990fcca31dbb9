"""Kraken Spot WebSocket v2 as served by the simulator: one `WsSession` per connection.

Public (`/v2`) and private (`/auth/v2`) endpoints share this code; `private` decides which channels
and methods the connection accepts (the other host's ones are refused with Kraken's captured text).
Frames are built as dicts in Kraken's key order with numbers as raw literals at pair precision
(numbers.num), encoded with msgspec.

Token rule (protocol §2, open question §7.1): a token is accepted if it was issued less than 900 s
ago, or if it was already accepted on this same connection (session-bound), unless the
`invalidate_tokens` fault revoked it: revoked tokens are refused everywhere, bound or not, because
the fault models Kraken invalidating sessions after an upgrade; streams already subscribed keep
flowing (Kraken does not close sockets over token age). Refusals: a private subscribe gets
`ESession:Invalid session` (the captured shape, with `"status":"error"`); a trading method with no
token gets `Token(s) not found` (captured), with a bad/expired token `EAPI:Invalid token` (the
official SDK's wording; the exact live string is not captured).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec
from starlette.websockets import WebSocket

from brokerbridge.sim.faults import send_with_latency
from brokerbridge.sim.kraken.account import (
    AccountEvent,
    ApiError,
    ApiKey,
    LedgerEntry,
    Order,
    OrderRequest,
    OwnTrade,
    Permission,
)
from brokerbridge.sim.kraken.catalog import KrakenPair
from brokerbridge.sim.kraken.exchange import KrakenExchange
from brokerbridge.sim.kraken.numbers import fixed, num, rfc3339, rfc3339_ns
from brokerbridge.sim.market import CANDLE_INTERVALS, BookSide, Candle, PublicTrade, Side, StepResult
from brokerbridge.sim.server import race
from brokerbridge.venues.kraken.checksum import book_checksum

log = logging.getLogger(__name__)

PUBLIC_CHANNELS = ("book", "ticker", "trade", "ohlc", "instrument")
PRIVATE_CHANNELS = ("balances", "executions", "level3")
TRADING_METHODS = (
    "add_order",
    "amend_order",
    "batch_add",
    "batch_cancel",
    "cancel_all",
    "cancel_all_orders_after",
    "cancel_order",
    "edit_order",
)
BOOK_DEPTHS = (10, 25, 100, 500, 1000)
CHANNEL_FIELDS: dict[str, tuple[str, ...]] = {
    "book": ("channel", "symbol", "depth", "snapshot"),
    "ticker": ("channel", "symbol", "event_trigger", "snapshot"),
    "trade": ("channel", "symbol", "snapshot"),
    "ohlc": ("channel", "symbol", "interval", "snapshot"),
    "instrument": ("channel", "snapshot", "include_tokenized_assets", "execution_venue"),
    "balances": ("channel", "token", "snapshot", "rebased", "users"),
    "executions": (
        "channel",
        "token",
        "snap_orders",
        "snap_trades",
        "snapshot",
        "snapshot_trades",
        "order_status",
        "ratecounter",
        "rebased",
        "users",
    ),
}
ADD_ORDER_FIELDS = (
    "order_type",
    "side",
    "order_qty",
    "symbol",
    "limit_price",
    "limit_price_type",
    "time_in_force",
    "post_only",
    "reduce_only",
    "margin",
    "cl_ord_id",
    "order_userref",
    "fee_preference",
    "stp_type",
    "validate",
    "deadline",
    "token",
    "display_qty",
    "no_mpp",
    "cash_order_qty",
    "effective_time",
    "expire_time",
    "sender_sub_id",
)
WRONG_HOST_PUBLIC = "Private data and trading are unavailable on this endpoint. Try ws-auth.kraken.com"
WRONG_HOST_PRIVATE = "Public market data subscriptions are unavailable on this endpoint. Try ws.kraken.com"
EXECUTIONS_WARNINGS = [
    "cancel_reason is deprecated, use reason",
    "stop_price is deprecated, use triggers.price",
    "trigger is deprecated use triggers.reference",
    "triggered_price is deprecated use triggers.last_price",
]
MAX_RATE_COUNT = 180
HEARTBEAT_S = 1.0
DROP_REASON = "CloudFlare WebSocket proxy restarting"

_decoder_json = json.JSONDecoder(parse_float=Decimal)


class _Reject(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


@dataclass(slots=True)
class BookSub:
    pair: KrakenPair
    depth: int
    window: dict[BookSide, dict[Decimal, Decimal]] = field(
        default_factory=lambda: {BookSide.BID: {}, BookSide.ASK: {}}
    )


@dataclass(slots=True)
class PrivateSub:
    sequence: int = 0
    snap_orders: bool = True
    snap_trades: bool = False


class WsSession:
    def __init__(
        self, exchange: KrakenExchange, websocket: WebSocket, *, private: bool, connection_id: int
    ) -> None:
        self.x = exchange
        self.ws = websocket
        self.private = private
        self.connection_id = connection_id
        self._queue: asyncio.Queue[tuple[float, str]] = asyncio.Queue()
        self._dropped = asyncio.Event()
        self._last_enqueued = exchange.clock.monotonic()
        self.books: dict[tuple[str, int], BookSub] = {}
        self.tickers: dict[str, str] = {}  # symbol → event_trigger
        self._bbo: dict[str, tuple[Decimal, Decimal, Decimal, Decimal]] = {}
        self.trades: set[str] = set()
        self.ohlc: set[tuple[str, int]] = set()
        self.instrument = False
        self.heartbeat_channel = False
        self.balances: PrivateSub | None = None
        self.executions: PrivateSub | None = None
        self.bound_tokens: set[str] = set()
        self._held: list[tuple[str, list[dict[str, Any]]]] | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------
    async def run(self) -> None:
        await self.ws.accept()
        self.x.listeners.add(self)
        try:
            self.send(self._status_frame())
            failures = await race(self._read(), self._write(), self._heartbeat(), self._dropped.wait())
            if self._dropped.is_set():
                with contextlib.suppress(Exception):
                    await self.ws.close(code=1001, reason=DROP_REASON)
            for exc in failures:
                log.error("WebSocket session failed", exc_info=exc)
        finally:
            self.x.listeners.discard(self)

    def drop(self) -> None:
        """Close this connection now (fault): code 1001 as Cloudflare restarts do."""
        self._dropped.set()

    def push_status(self) -> None:
        """The engine status changed: Kraken pushes a `status` frame to every connection."""
        self.send(self._status_frame())

    @property
    def subscribed(self) -> bool:
        return bool(
            self.books
            or self.tickers
            or self.trades
            or self.ohlc
            or self.instrument
            or self.heartbeat_channel
            or self.balances
            or self.executions
        )

    async def _read(self) -> None:
        while True:
            text = await self.ws.receive_text()
            self.receive_text(text)

    async def _write(self) -> None:
        await send_with_latency(self.x.clock, self.x.faults, self._queue, self.ws.send_text)

    async def _heartbeat(self) -> None:
        """`{"channel":"heartbeat"}` once a second of silence, while anything is subscribed."""
        clock = self.x.clock
        while True:
            quiet_for = clock.monotonic() - self._last_enqueued
            if quiet_for < HEARTBEAT_S:
                await clock.sleep(HEARTBEAT_S - quiet_for)
            elif self.subscribed:
                self.send({"channel": "heartbeat"})
                if self.x.faults.stalls(self.private):
                    await clock.sleep(HEARTBEAT_S)  # nothing went out; do not spin
            else:
                await clock.sleep(HEARTBEAT_S)

    def send(self, frame: dict[str, Any]) -> None:
        if self.x.faults.stalls(self.private):
            return  # a stalled feed: the socket stays open but nothing at all goes out
        now = self.x.clock.monotonic()
        self._last_enqueued = now
        self._queue.put_nowait((now, msgspec.json.encode(frame).decode()))

    # -- requests ---------------------------------------------------------------------------------------
    def receive_text(self, text: str) -> None:
        time_in = self.x.clock.time()
        try:
            message = _decoder_json.decode(text)
        except ValueError:
            self.send(self._ack_error("Unsupported event", None, None, time_in))
            return
        if not isinstance(message, dict) or not isinstance(message.get("method"), str):
            self.send(self._ack_error("Unsupported event", None, None, time_in))
            return
        method: str = message["method"]
        req_id = message.get("req_id")
        for name in message:
            if name not in ("method", "params", "req_id"):
                self.send(self._ack_error(_unsupported(name, method), method, req_id, time_in))
                return
        params = message.get("params")
        try:
            if method == "ping":
                if "params" in message:
                    raise _Reject(_unsupported("params", "ping"))
                self.send(self._pong(req_id, time_in))
            elif method in ("subscribe", "unsubscribe"):
                if not isinstance(params, dict):
                    raise _Reject("EGeneral:Invalid arguments")
                self._subscription(method, params, req_id, time_in)
            elif method in TRADING_METHODS:
                if not self.private:
                    raise _Reject(WRONG_HOST_PUBLIC)
                self._trading(method, params if isinstance(params, dict) else {}, req_id, time_in)
            else:
                raise _Reject("Unsupported event")
        except _Reject as reject:
            self.send(self._ack_error(reject.error, method, req_id, time_in, **reject.extra))

    def _subscription(self, method: str, params: dict[str, Any], req_id: Any, time_in: float) -> None:
        channel = params.get("channel")
        if channel == "status":
            self.send(self._status_frame())
            raise _Reject("Symbol(s) not found")
        if channel == "heartbeat":
            # Open question §7.3: accepted (heartbeats then flow, as the reconnection guide expects).
            self.heartbeat_channel = method == "subscribe"
            self.send(self._ack(method, req_id, {"channel": "heartbeat"}, time_in))
            return
        if not isinstance(channel, str) or channel not in (*PUBLIC_CHANNELS, *PRIVATE_CHANNELS):
            raise _Reject("Subscription name invalid")
        if channel in PUBLIC_CHANNELS and self.private:
            raise _Reject(WRONG_HOST_PRIVATE)
        if channel in PRIVATE_CHANNELS and not self.private:
            raise _Reject(WRONG_HOST_PUBLIC)
        if channel == "level3":
            raise _Reject("EGeneral:Internal error:level3 is not simulated")
        for name in params:
            if name not in CHANNEL_FIELDS[channel]:
                raise _Reject(_unsupported(name, f"{channel} {method}"))
        snapshot = params.get("snapshot", channel != "trade")
        if not isinstance(snapshot, bool):
            raise _Reject("EGeneral:Invalid arguments:snapshot")
        if channel in ("balances", "executions"):
            self._private_subscription(method, channel, params, req_id, time_in)
            return
        if channel == "instrument":
            self._instrument_subscription(method, snapshot, req_id, time_in)
            return
        symbols = params.get("symbol")
        if not isinstance(symbols, list) or not symbols or not all(isinstance(s, str) for s in symbols):
            raise _Reject("EGeneral:Invalid arguments:symbol")
        depth = params.get("depth", 10)
        if channel == "book" and depth not in BOOK_DEPTHS:
            raise _Reject("EGeneral:Invalid arguments:depth")
        interval = params.get("interval", 1)
        if channel == "ohlc" and interval not in CANDLE_INTERVALS:
            raise _Reject("EGeneral:Invalid arguments:interval")
        trigger = params.get("event_trigger", "trades")
        if channel == "ticker" and trigger not in ("trades", "bbo"):
            raise _Reject("EGeneral:Invalid arguments:event_trigger")
        for symbol in symbols:
            pair = self.x.catalog.ws_pair(symbol)
            if pair is None:
                self.send(
                    self._ack_error(
                        f"Currency pair not supported {symbol}", method, req_id, time_in, symbol=symbol
                    )
                )
                continue
            try:
                if method == "subscribe":
                    self._subscribe_symbol(channel, pair, depth, interval, trigger, snapshot, req_id, time_in)
                else:
                    self._unsubscribe_symbol(channel, pair, depth, interval, req_id, time_in)
            except _Reject as reject:
                # Captured quirk: "Subscription Not Found" comes back with method "subscribe".
                ack_method = "subscribe" if reject.error == "Subscription Not Found" else method
                self.send(self._ack_error(reject.error, ack_method, req_id, time_in, symbol=symbol))

    def _subscribe_symbol(
        self,
        channel: str,
        pair: KrakenPair,
        depth: int,
        interval: int,
        trigger: str,
        snapshot: bool,
        req_id: Any,
        time_in: float,
    ) -> None:
        symbol = pair.symbol
        result: dict[str, Any] = {"channel": channel}
        if channel == "book":
            if (symbol, depth) in self.books:
                raise _Reject("Already subscribed")
            sub = BookSub(pair, depth)
            self.books[(symbol, depth)] = sub
            result.update(depth=depth, snapshot=snapshot, symbol=symbol)
            self.send(self._ack("subscribe", req_id, result, time_in))
            self._book_snapshot(sub, send=snapshot)
        elif channel == "ticker":
            if symbol in self.tickers:
                raise _Reject("Already subscribed")
            self.tickers[symbol] = trigger
            result.update(event_trigger=trigger, snapshot=snapshot, symbol=symbol)
            self.send(self._ack("subscribe", req_id, result, time_in))
            self._bbo[symbol] = self._current_bbo(symbol)
            if snapshot:
                self.send({"channel": "ticker", "type": "snapshot", "data": [self._ticker(pair)]})
        elif channel == "trade":
            if symbol in self.trades:
                raise _Reject("Already subscribed")
            self.trades.add(symbol)
            result.update(snapshot=snapshot, symbol=symbol)
            self.send(self._ack("subscribe", req_id, result, time_in))
            if snapshot:
                recent = list(self.x.market.trades(symbol))[-50:]
                self.send({"channel": "trade", "type": "snapshot", "data": [_trade(pair, t) for t in recent]})
        elif channel == "ohlc":
            if (symbol, interval) in self.ohlc:
                raise _Reject("Already subscribed")
            self.ohlc.add((symbol, interval))
            result.update(
                interval=interval,
                snapshot=snapshot,
                symbol=symbol,
                warnings=["timestamp is deprecated, use interval_begin"],
            )
            self.send(self._ack("subscribe", req_id, result, time_in))
            if snapshot:
                candles = self.x.market.filled_candles(symbol, interval)[-100:]
                self.send(self._ohlc_frame("snapshot", pair, interval, candles))

    def _unsubscribe_symbol(
        self, channel: str, pair: KrakenPair, depth: int, interval: int, req_id: Any, time_in: float
    ) -> None:
        symbol = pair.symbol
        result: dict[str, Any] = {"channel": channel}
        if channel == "book":
            if self.books.pop((symbol, depth), None) is None:
                raise _Reject("Subscription Not Found")
            result.update(depth=depth, symbol=symbol)
        elif channel == "ticker":
            trigger = self.tickers.pop(symbol, None)
            if trigger is None:
                raise _Reject("Subscription Not Found")
            result.update(event_trigger=trigger, symbol=symbol)
        elif channel == "trade":
            if symbol not in self.trades:
                raise _Reject("Subscription Not Found")
            self.trades.discard(symbol)
            result.update(symbol=symbol)
        elif channel == "ohlc":
            if (symbol, interval) not in self.ohlc:
                raise _Reject("Subscription Not Found")
            self.ohlc.discard((symbol, interval))
            result.update(interval=interval, symbol=symbol)
        self.send(self._ack("unsubscribe", req_id, result, time_in))

    def _instrument_subscription(self, method: str, snapshot: bool, req_id: Any, time_in: float) -> None:
        if method == "unsubscribe":
            if not self.instrument:
                raise _Reject("Subscription Not Found")
            self.instrument = False
            self.send(self._ack(method, req_id, {"channel": "instrument"}, time_in))
            return
        if self.instrument:
            raise _Reject("Already subscribed")
        self.instrument = True
        result = {
            "channel": "instrument",
            "snapshot": snapshot,
            "warnings": ["tick_size is deprecated, use price_increment"],
        }
        self.send(self._ack(method, req_id, result, time_in))
        if snapshot:
            self.send({"channel": "instrument", "type": "snapshot", "data": self._instruments()})

    def _token_key(self, token: Any) -> ApiKey | None:
        """The key behind `token` if the token rule (module docstring) accepts it here and now."""
        if not isinstance(token, str):
            return None
        found = self.x.tokens.get(token)
        if found is None or found.revoked:
            return None
        if not (found.fresh(self.x.clock.monotonic()) or token in self.bound_tokens):
            return None
        key = self.x.keys.get(found.key)
        if key is None:
            return None
        self.bound_tokens.add(token)
        return key

    def _private_subscription(
        self, method: str, channel: str, params: dict[str, Any], req_id: Any, time_in: float
    ) -> None:
        key = self._token_key(params.get("token"))
        if key is None:
            self.send(self._session_error(channel, method, req_id, time_in))
            return
        if Permission.WEBSOCKETS not in self.x.permissions(key):
            raise _Reject("EGeneral:Permission denied")
        current = self.balances if channel == "balances" else self.executions
        if method == "unsubscribe":
            if current is None:
                raise _Reject("Subscription Not Found")
            if channel == "balances":
                self.balances = None
            else:
                self.executions = None
            self.send(self._ack(method, req_id, {"channel": channel}, time_in))
            return
        if current is not None:
            raise _Reject("Already subscribed")
        if channel == "balances":
            snapshot = params.get("snapshot", True)
            self.balances = PrivateSub()
            self.send(self._ack(method, req_id, {"channel": "balances", "snapshot": snapshot}, time_in))
            if snapshot:
                self._send_private(self.balances, "balances", "snapshot", self._balances_snapshot())
            return
        snap_orders = params.get("snap_orders", params.get("snapshot", True))
        snap_trades = params.get("snap_trades", params.get("snapshot_trades", False))
        for name, value in (("snap_orders", snap_orders), ("snap_trades", snap_trades)):
            if not isinstance(value, bool):
                raise _Reject(f"EGeneral:Invalid arguments:{name}")
        self.executions = PrivateSub(snap_orders=snap_orders, snap_trades=snap_trades)
        # The 2024 capture's result shape; snap_* are echoed when asked so a client replaying the
        # ack as its subscription (python-kraken-sdk does) asks for the same again.
        result: dict[str, Any] = {
            "channel": "executions",
            "maxratecount": MAX_RATE_COUNT,
            "snapshot": snap_orders,
        }
        if "snap_orders" in params:
            result["snap_orders"] = snap_orders
        if "snap_trades" in params:
            result["snap_trades"] = snap_trades
        result["warnings"] = EXECUTIONS_WARNINGS
        self.send(self._ack(method, req_id, dict(sorted(result.items())), time_in))
        if snap_trades:
            trades = sorted(self.x.account.trades.values(), key=lambda t: t.time_ns)[-50:]
            self._send_private(
                self.executions, "executions", "snapshot", [_execution_trade(t) for t in trades]
            )
        if snap_orders or not snap_trades:
            orders = (
                [_execution_order_snapshot(o) for o in self.x.account.open_orders()] if snap_orders else []
            )
            self._send_private(self.executions, "executions", "snapshot", orders)

    # -- trading ---------------------------------------------------------------------------------------------
    def _trading(self, method: str, params: dict[str, Any], req_id: Any, time_in: float) -> None:
        if "token" not in params:
            raise _Reject("Token(s) not found")
        key = self._token_key(params["token"])
        if key is None:
            raise _Reject("EAPI:Invalid token")
        perms = self.x.permissions(key)
        if method == "add_order":
            if Permission.CREATE_ORDERS not in perms:
                raise _Reject("EGeneral:Permission denied")
            self._hold(lambda: self._add_order(params, req_id, time_in))
        elif method in ("cancel_order", "cancel_all"):
            if not {Permission.CREATE_ORDERS, Permission.CANCEL_ORDERS} & perms:
                raise _Reject("EGeneral:Permission denied")
            if method == "cancel_order":
                self._hold(lambda: self._cancel_order(params, req_id, time_in))
            else:
                self._hold(lambda: self._cancel_all(req_id, time_in))
        else:
            raise _Reject(f"EGeneral:Internal error:{method} is not simulated")

    def _hold(self, action: Callable[[], None]) -> None:
        """Run a trading action with this session's own account events held back until its ack is out."""
        self._held = []
        try:
            action()
        finally:
            held, self._held = self._held, None
            for channel, data in held:
                self._send_update(channel, data)

    def _add_order(self, params: dict[str, Any], req_id: Any, time_in: float) -> None:
        for name in params:
            if name not in ADD_ORDER_FIELDS:
                raise _Reject(_unsupported(name, "add order"))
        for name in ("order_qty", "limit_price", "cash_order_qty", "display_qty"):
            if name in params and not _is_number(params[name]):
                raise _Reject(f"{name.capitalize()} field must be a number_float")
        order_type = params.get("order_type")
        if order_type not in ("limit", "market"):
            raise _Reject("EGeneral:Invalid arguments:order_type")
        side = params.get("side")
        if side not in ("buy", "sell"):
            raise _Reject("EGeneral:Invalid arguments:side")
        if "order_qty" not in params:
            raise _Reject("EGeneral:Invalid arguments:order_qty")
        pair = self.x.catalog.ws_pair(str(params.get("symbol", "")))
        if pair is None:
            raise _Reject(f"Currency pair not supported {params.get('symbol', '')}")
        price = Decimal(params["limit_price"]) if order_type == "limit" and "limit_price" in params else None
        if order_type == "limit" and price is None:
            raise _Reject("EGeneral:Invalid arguments:limit_price")
        tif = str(params.get("time_in_force", "gtc")).upper()
        if tif not in ("GTC", "IOC"):
            raise _Reject("EGeneral:Invalid arguments:time_in_force")
        userref = params.get("order_userref", 0)
        cl_ord_id = params.get("cl_ord_id")
        if not isinstance(userref, int) or (cl_ord_id is not None and not isinstance(cl_ord_id, str)):
            raise _Reject("EGeneral:Invalid arguments")
        if userref and cl_ord_id:
            raise _Reject("EGeneral:Invalid arguments:cl_ord_id and order_userref are mutually exclusive")
        qty = Decimal(params["order_qty"])
        if qty <= 0 or -qty.normalize().as_tuple().exponent > pair.lot_decimals:  # type: ignore[operator]
            raise _Reject("EGeneral:Invalid arguments:order_qty")
        req = OrderRequest(
            pair=pair,
            side=Side(side),
            ordertype=order_type,
            volume=qty,
            price=price,
            userref=userref,
            cl_ord_id=cl_ord_id,
            timeinforce=tif,
            post_only=params.get("post_only") is True,
            fee_in_base=params.get("fee_preference") == "base",
        )
        try:
            if params.get("validate") is True:
                self.x.account.check(req)
                order_id = ""
            else:
                order, result = self.x.account.place(req, self.x.clock.time())
                order_id = order.txid
        except ApiError as exc:
            raise _Reject(exc.code) from None
        ack_result: dict[str, Any] = {"order_id": order_id}
        if cl_ord_id is not None:
            ack_result["cl_ord_id"] = cl_ord_id
        elif "order_userref" in params:
            ack_result["order_userref"] = userref
        self.send(self._ack("add_order", req_id, ack_result, time_in))
        if order_id:
            self.x.publish(result)

    def _cancel_order(self, params: dict[str, Any], req_id: Any, time_in: float) -> None:
        refs: list[tuple[str, str | int]] = []
        for name in ("order_id", "cl_ord_id", "order_userref"):
            values = params.get(name, [])
            if not isinstance(values, list):
                raise _Reject(f"EGeneral:Invalid arguments:{name}")
            refs.extend((name, v) for v in values)
        for name in params:
            if name not in ("order_id", "cl_ord_id", "order_userref", "token"):
                raise _Reject(_unsupported(name, "cancel order"))
        if not refs:
            raise _Reject("EGeneral:Invalid arguments")
        for name, ref in refs:
            orders = self.x.account.find(ref)
            if not orders:
                self.send(self._ack_error("EOrder:Unknown order", "cancel_order", req_id, time_in))
                continue
            for order in orders:
                self.x.account.cancel(order, self.x.clock.time())
            result = {"cl_ord_id": ref} if name == "cl_ord_id" else {"order_id": orders[0].txid}
            self.send(self._ack("cancel_order", req_id, result, time_in))

    def _cancel_all(self, req_id: Any, time_in: float) -> None:
        orders = self.x.account.open_orders()
        for order in orders:
            self.x.account.cancel(order, self.x.clock.time())
        self.send(self._ack("cancel_all", req_id, {"count": len(orders)}, time_in))

    # -- market data out ---------------------------------------------------------------------------------
    def on_market(self, result: StepResult) -> None:
        by_symbol: dict[str, list[PublicTrade]] = {}
        for trade in result.trades:
            by_symbol.setdefault(trade.symbol, []).append(trade)
        for sub in self.books.values():
            changes = result.book_changes.get(sub.pair.symbol)
            if changes:
                self._book_update(
                    sub,
                    {c.price for c in changes if c.side is BookSide.BID},
                    {c.price for c in changes if c.side is BookSide.ASK},
                )
        for symbol, trigger in self.tickers.items():
            pair = self.x.catalog.ws_pair(symbol)
            assert pair is not None
            if trigger == "trades":
                if symbol in by_symbol:
                    self.send({"channel": "ticker", "type": "update", "data": [self._ticker(pair)]})
            else:
                bbo = self._current_bbo(symbol)
                if bbo != self._bbo.get(symbol):
                    self._bbo[symbol] = bbo
                    self.send({"channel": "ticker", "type": "update", "data": [self._ticker(pair)]})
        for symbol in self.trades:
            if symbol in by_symbol:
                pair = self.x.catalog.ws_pair(symbol)
                assert pair is not None
                self.send(
                    {
                        "channel": "trade",
                        "type": "update",
                        "data": [_trade(pair, t) for t in by_symbol[symbol]],
                    }
                )
        for symbol, interval in self.ohlc:
            if symbol in by_symbol:
                pair = self.x.catalog.ws_pair(symbol)
                candle = self.x.market.current_candle(symbol, interval)
                assert pair is not None and candle is not None
                self.send(self._ohlc_frame("update", pair, interval, [candle]))

    def _book_snapshot(self, sub: BookSub, *, send: bool) -> None:
        book = self.x.market.book(sub.pair.symbol)
        for side in (BookSide.BID, BookSide.ASK):
            sub.window[side] = dict(book.levels(side, sub.depth))
        if not send:
            return
        pd, ld = sub.pair.pair_decimals, sub.pair.lot_decimals
        data = {
            "symbol": sub.pair.symbol,
            "bids": [
                {"price": num(p, pd), "qty": num(q, ld)} for p, q in book.levels(BookSide.BID, sub.depth)
            ],
            "asks": [
                {"price": num(p, pd), "qty": num(q, ld)} for p, q in book.levels(BookSide.ASK, sub.depth)
            ],
            "checksum": self._checksum(sub.pair),
            "timestamp": rfc3339(self.x.clock.time()),
        }
        self.send({"channel": "book", "type": "snapshot", "data": [data]})

    def _book_update(self, sub: BookSub, bid_prices: set[Decimal], ask_prices: set[Decimal]) -> None:
        """Send what changed inside this subscription's depth window (see module notes in market)."""
        book = self.x.market.book(sub.pair.symbol)
        pd, ld = sub.pair.pair_decimals, sub.pair.lot_decimals
        sides: dict[BookSide, list[dict[str, Any]]] = {}
        for side, changed in ((BookSide.BID, bid_prices), (BookSide.ASK, ask_prices)):
            window = sub.window[side]
            top = book.prices(side, sub.depth)
            top_set = set(top)
            out: list[dict[str, Any]] = []
            # Deletions first: a level removed from the book inside the window goes out as qty 0.
            # A level merely pushed below the window is not sent; the client truncates to depth.
            for price in [p for p in window if p not in top_set]:
                del window[price]
                if book.qty(side, price) is None:
                    out.append({"price": num(price, pd), "qty": num(0, ld)})
            # Then new or resized levels inside the window, including replacements for removed ones.
            for price in top:
                if price in changed or price not in window:
                    qty = book.qty(side, price)
                    assert qty is not None
                    if window.get(price) != qty:
                        window[price] = qty
                        out.append({"price": num(price, pd), "qty": num(qty, ld)})
            sides[side] = out
        if not sides[BookSide.BID] and not sides[BookSide.ASK]:
            return
        data = {
            "symbol": sub.pair.symbol,
            "bids": sides[BookSide.BID],
            "asks": sides[BookSide.ASK],
            "checksum": self._checksum(sub.pair),
            "timestamp": rfc3339(self.x.clock.time()),
        }
        self.send({"channel": "book", "type": "update", "data": [data]})

    def _checksum(self, pair: KrakenPair) -> int:
        book = self.x.market.book(pair.symbol)
        pd, ld = pair.pair_decimals, pair.lot_decimals
        asks = [(fixed(p, pd), fixed(q, ld)) for p, q in book.levels(BookSide.ASK, 10)]
        bids = [(fixed(p, pd), fixed(q, ld)) for p, q in book.levels(BookSide.BID, 10)]
        checksum = book_checksum(asks, bids)
        if self.x.faults.take("corrupt_checksums"):
            checksum = (checksum + 1) & 0xFFFFFFFF
        return checksum

    def _current_bbo(self, symbol: str) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        book = self.x.market.book(symbol)
        (bid, bid_qty), (ask, ask_qty) = book.levels(BookSide.BID, 1)[0], book.levels(BookSide.ASK, 1)[0]
        return bid, bid_qty, ask, ask_qty

    def _ticker(self, pair: KrakenPair) -> dict[str, Any]:
        market = self.x.market
        now = self.x.clock.time()
        bid, bid_qty, ask, ask_qty = self._current_bbo(pair.symbol)
        stats = market.stats(pair.symbol, now - 86_400)
        last = market.trades(pair.symbol)[-1].price
        pd, ld = pair.pair_decimals, pair.lot_decimals
        change = last - stats.open
        change_pct = change / stats.open * 100 if stats.open else Decimal(0)
        return {
            "symbol": pair.symbol,
            "bid": num(bid, pd),
            "bid_qty": num(bid_qty, ld),
            "ask": num(ask, pd),
            "ask_qty": num(ask_qty, ld),
            "last": num(last, pd),
            "volume": num(stats.volume, ld),
            "vwap": num(stats.vwap, pd),
            "low": num(stats.low, pd),
            "high": num(stats.high, pd),
            "change": num(change, pd),
            "change_pct": num(change_pct, 2),
            "trades": stats.count,
            "timestamp": rfc3339(now),
        }

    def _ohlc_frame(
        self, kind: str, pair: KrakenPair, interval: int, candles: list[Candle]
    ) -> dict[str, Any]:
        pd = pair.pair_decimals
        step = interval * 60
        data = [
            {
                "symbol": pair.symbol,
                "open": num(c.open, pd),
                "high": num(c.high, pd),
                "low": num(c.low, pd),
                "close": num(c.close, pd),
                "trades": c.count,
                "volume": num(c.volume, pair.lot_decimals),
                "vwap": num(c.vwap, pd),
                "interval_begin": rfc3339_ns(c.begin * 1_000_000_000),
                "interval": interval,
                "timestamp": rfc3339(c.begin + step),
            }
            for c in candles
        ]
        return {"channel": "ohlc", "type": kind, "timestamp": rfc3339(self.x.clock.time(), 9), "data": data}

    def _instruments(self) -> dict[str, Any]:
        catalog = self.x.catalog
        assets = [
            {
                "id": a.ws_id,
                "status": "enabled",
                "precision": a.decimals,
                "precision_display": a.display_decimals,
                "borrowable": a.borrowable,
                "collateral_value": num(1, 2),
                "margin_rate": num(a.margin_rate, 6),
            }
            for a in catalog.assets
        ]
        pairs = []
        for p in catalog.pairs:
            cost_places = max(2, len(p.costmin.split(".")[1]) if "." in p.costmin else 0)
            pairs.append(
                {
                    "symbol": p.symbol,
                    "base": p.base.ws_id,
                    "quote": p.quote.ws_id,
                    "status": "online",
                    "qty_precision": p.lot_decimals,
                    "qty_increment": num(Decimal(1).scaleb(-p.lot_decimals), p.lot_decimals),
                    "price_precision": p.pair_decimals,
                    "cost_precision": p.cost_precision_ws,
                    "marginable": True,
                    "has_index": True,
                    "cost_min": num(p.costmin, cost_places),
                    "margin_initial": num(p.margin_initial, 2),
                    "position_limit_long": p.long_position_limit,
                    "position_limit_short": p.short_position_limit,
                    "tick_size": num(p.tick_size, p.pair_decimals),
                    "price_increment": num(p.tick_size, p.pair_decimals),
                    "qty_min": num(p.ordermin, p.lot_decimals),
                }
            )
        return {"assets": assets, "pairs": pairs}

    # -- private data out ------------------------------------------------------------------------------
    def on_account(self, event: AccountEvent) -> None:
        # Formatted now, against the order's state at this event; sent now or after a held-back ack.
        if event.kind == "ledger":
            if self.balances is None or event.ledger is None:
                return
            frame = ("balances", [_ledger(event.ledger)])
        elif self.executions is None or event.order is None:
            return
        elif event.kind == "trade" and event.trade is not None:
            frame = ("executions", [_execution_trade(event.trade)])
        else:
            frame = ("executions", [_execution_order(event)])
        if self._held is not None:
            self._held.append(frame)
        else:
            self._send_update(*frame)

    def _send_update(self, channel: str, data: list[dict[str, Any]]) -> None:
        sub = self.balances if channel == "balances" else self.executions
        if sub is not None:
            self._send_private(sub, channel, "update", data)

    def _send_private(self, sub: PrivateSub, channel: str, kind: str, data: list[dict[str, Any]]) -> None:
        sub.sequence += 1
        if self.x.faults.take_sequence_skip(channel):
            sub.sequence += 1
        if self.x.faults.take_message_loss(channel):
            return  # lost on the way: numbered, never sent
        self.send({"channel": channel, "type": kind, "data": data, "sequence": sub.sequence})

    def _balances_snapshot(self) -> list[dict[str, Any]]:
        out = []
        for asset_id, amount in self.x.account.balances.items():
            asset = self.x.catalog.asset(asset_id)
            assert asset is not None
            out.append(
                {
                    "asset": asset.ws_id,
                    "asset_class": "currency",
                    "balance": num(amount, asset.decimals),
                    "wallets": [{"type": "spot", "id": "main", "balance": num(amount, asset.decimals)}],
                }
            )
        return out

    # -- frames ------------------------------------------------------------------------------------------
    def _status_frame(self) -> dict[str, Any]:
        # The 2026 capture's key order (ws_status_2026.json).
        return {
            "channel": "status",
            "type": "update",
            "data": [
                {
                    "version": "2.0.10",
                    "system": self.x.faults.system_status,
                    "api_version": "v2",
                    "connection_id": self.connection_id,
                }
            ],
        }

    def _times(self, time_in: float) -> dict[str, str]:
        return {"time_in": rfc3339(time_in), "time_out": rfc3339(max(time_in, self.x.clock.time()))}

    def _pong(self, req_id: Any, time_in: float) -> dict[str, Any]:
        frame: dict[str, Any] = {"method": "pong"}
        if req_id is not None:
            frame["req_id"] = req_id
        frame.update(self._times(time_in))
        return frame

    def _ack(self, method: str, req_id: Any, result: dict[str, Any], time_in: float) -> dict[str, Any]:
        frame: dict[str, Any] = {"method": method}
        if req_id is not None:
            frame["req_id"] = req_id
        frame["result"] = result
        frame["success"] = True
        frame.update(self._times(time_in))
        return frame

    def _ack_error(
        self, error: str, method: str | None, req_id: Any, time_in: float, **extra: Any
    ) -> dict[str, Any]:
        frame: dict[str, Any] = {"error": error}
        if method is not None:
            frame["method"] = method
        if req_id is not None:
            frame["req_id"] = req_id
        frame["success"] = False
        frame.update(extra)  # `symbol` sorts between success and time_in
        frame.update(self._times(time_in))
        return frame

    def _session_error(self, channel: str, method: str, req_id: Any, time_in: float) -> dict[str, Any]:
        frame: dict[str, Any] = {"channel": channel, "error": "ESession:Invalid session", "method": method}
        if req_id is not None:
            frame["req_id"] = req_id
        frame.update(status="error", success=False)
        frame.update(self._times(time_in))
        return frame


def _unsupported(name: str, msg_type: str) -> str:
    return f"Unsupported field: '{name}' for the given msg type: {msg_type}"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | Decimal) and not isinstance(value, bool)


def _trade(pair: KrakenPair, trade: PublicTrade) -> dict[str, Any]:
    return {
        "symbol": pair.symbol,
        "side": trade.side.value,
        "price": num(trade.price, pair.pair_decimals),
        "qty": num(trade.qty, pair.lot_decimals),
        "ord_type": trade.ord_type,
        "trade_id": trade.trade_id,
        "timestamp": rfc3339(trade.time_ns / 1e9),
    }


def _ledger(entry: LedgerEntry) -> dict[str, Any]:
    places = entry.asset.decimals
    return {
        "ledger_id": entry.ledger_id,
        "ref_id": entry.ref_id,
        "timestamp": rfc3339(entry.time_ns / 1e9),
        "type": entry.type,
        "asset": entry.asset.ws_id,
        "asset_class": "currency",
        "category": "trade",
        "wallet_type": "spot",
        "wallet_id": "main",
        "amount": num(entry.amount, places),
        "fee": num(entry.fee, places),
        "balance": num(entry.balance, places),
    }


def _order_ids(order: Order) -> dict[str, Any]:
    ids: dict[str, Any] = {"order_userref": order.userref}
    if order.cl_ord_id is not None:
        ids["cl_ord_id"] = order.cl_ord_id
    return ids


def _full_order(order: Order, exec_type: str, order_status: str, time_ns: int) -> dict[str, Any]:
    pair = order.pair
    cd = pair.cost_decimals
    entry: dict[str, Any] = {
        "order_id": order.txid,
        "symbol": pair.symbol,
        "order_qty": num(order.volume, pair.lot_decimals),
        "cum_cost": num(order.cost, cd),
        "time_in_force": order.timeinforce,
        "exec_type": exec_type,
        "side": order.side.value,
        "order_type": order.ordertype,
    }
    entry.update(_order_ids(order))
    if order.price is not None:
        entry["limit_price_type"] = "static"
        entry["limit_price"] = num(order.price, pair.pair_decimals)
        entry["stop_price"] = num(0, pair.pair_decimals)
    if order.post_only:
        entry["post_only"] = True
    entry["order_status"] = order_status
    entry["fee_usd_equiv"] = num(order.fee, cd)
    entry["fee_ccy_pref"] = "fcib" if "fcib" in order.oflags else "fciq"
    entry["timestamp"] = rfc3339(time_ns / 1e9)
    return entry


def _execution_order_snapshot(order: Order) -> dict[str, Any]:
    entry = _full_order(order, "new", order.ws_status, order.opentm_ns)
    entry["cum_qty"] = num(order.vol_exec, order.pair.lot_decimals)
    entry["avg_price"] = num(order.avg_price, order.pair.pair_decimals)
    return entry


def _execution_order(event: AccountEvent) -> dict[str, Any]:
    """pending_new carries the whole order; later events are sparse, as captured."""
    order = event.order
    assert order is not None
    pair = order.pair
    if event.kind == "pending_new":
        return _full_order(order, "pending_new", "pending_new", event.time_ns)
    entry: dict[str, Any] = {"timestamp": rfc3339(event.time_ns / 1e9)}
    if event.kind == "new":
        entry.update(order_status="new", exec_type="new")
    else:
        status = "filled" if event.kind == "filled" else "canceled"
        entry.update(
            order_status=status,
            exec_type=status,
            cum_qty=num(order.vol_exec, pair.lot_decimals),
            cum_cost=num(order.cost, pair.cost_decimals),
            fee_usd_equiv=num(order.fee, pair.cost_decimals),
            avg_price=num(order.avg_price, pair.pair_decimals),
        )
    entry.update(_order_ids(order))
    if event.kind == "canceled":
        entry["cancel_reason"] = order.reason
        entry["reason"] = order.reason
    entry["order_id"] = order.txid
    return entry


def _execution_trade(trade: OwnTrade) -> dict[str, Any]:
    order = trade.order
    pair = order.pair
    cd = pair.cost_decimals
    status = "filled" if trade.cum_qty >= order.volume else "partially_filled"
    entry: dict[str, Any] = {"order_id": order.txid}
    entry.update(_order_ids(order))
    entry.update(
        {
            "exec_id": trade.txid,
            "exec_type": "trade",
            "trade_id": trade.trade_id,
            "symbol": pair.symbol,
            "side": order.side.value,
            "last_qty": num(trade.vol, pair.lot_decimals),
            "last_price": num(trade.price, pair.pair_decimals),
            "liquidity_ind": "m" if trade.maker else "t",
            "cost": num(trade.cost, cd),
            "order_type": order.ordertype,
            "timestamp": rfc3339(trade.time_ns / 1e9),
            "order_status": status,
            "cum_qty": num(trade.cum_qty, pair.lot_decimals),
            "cum_cost": num(trade.cum_cost, cd),
            "avg_price": num(trade.cum_cost / trade.cum_qty, pair.pair_decimals),
            "fee_usd_equiv": num(trade.fee, cd),
            "fees": [{"asset": pair.quote.ws_id, "qty": num(trade.fee, cd)}],
        }
    )
    return entry
