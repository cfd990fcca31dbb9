"""Primary's WebSocket (`ws://host/`, token on the upgrade) as served by the simulator.

One `WsSession` per accepted connection. Client frames: `smd`, `os`, `no`, `co` (§4.2), with
pyRofex's strings-for-numbers and `"True"`/`"False"` accepted. Server frames: `Md` snapshots and
`or` reports (§4.3), and error frames `{"status":"ERROR","message":<the request as text>,
"description":…}` after which the socket stays open.

Choices where the reference is silent (§10):
* `Md` throttle per instrument and subscription by `level` (PNET: 1=100 ms … 5=6000 ms), but never
  faster than 500 ms, the spacing captured at level 1 on xOMS ("a few per second at most"). A frame is
  sent only when the requested entries changed; the first one right after `smd`.
* A new `smd` for a symbol already subscribed replaces its entries/depth/level (no unsubscribe
  message exists). More than 1000 products in one `smd` → an error frame, nothing subscribed.
* Unknown entry codes in `smd` → an error frame (`Entry X invalid`), nothing subscribed.
* `os` without `snapshotOnlyActive` replays every order of the day (the flag was added later and
  narrows the replay); `false` replays all, `true` only NEW/PARTIALLY_FILLED.
* Orders sent with `no` are reported only to sockets with a matching `os` (as on the venue);
  unknown products, foreign accounts and unknown orders in `co` are error frames. `lose_answers`
  covers a `no` too: the order is placed, none of the reports of its placement reaches a socket.
* Malformed JSON or an unknown `type` → an error frame with description `Invalid message`; a text
  `ping` (what browser sockets send) is ignored without an error: it only counts as activity.
* A revoked token (re-login, removeToken, `invalidate_tokens`) silences the socket: it stays open,
  nothing more is sent. Protocol pings are still answered (by the WebSocket layer).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from brokerbridge.sim.faults import send_with_latency, sleep_unless_changed
from brokerbridge.sim.primary.account import OrderError
from brokerbridge.sim.primary.catalog import PrimaryInstrument
from brokerbridge.sim.primary.exchange import PrimaryExchange
from brokerbridge.sim.primary.marketdata import MAX_DEPTH, market_data
from brokerbridge.sim.primary.order_input import RawOrder, no_access, parse_order
from brokerbridge.sim.server import race
from brokerbridge.venues.primary.wire_format import LEVEL_INTERVALS, encode, ms, parse_bool, parse_smd

log = logging.getLogger(__name__)

LEVEL_INTERVAL_S = LEVEL_INTERVALS
MIN_INTERVAL_S = 0.5
PUSH_PERIOD_S = 0.1
DROP_CODE = 1001
IDLE_CODE = 1000
IDLE_REASON = "Idle timeout"
WS_ORDER_NAMES = {
    "symbol": "product",
    "quantity": "quantity",
    "side": "side",
    "account": "account",
    "ord_type": "ordType",
    "time_in_force": "timeInForce",
    "price": "price",
    "iceberg": "iceberg",
    "cancel_previous": "cancelPrevious",
}


@dataclass(slots=True)
class MdSub:
    inst: PrimaryInstrument
    entries: list[str]
    depth: int
    interval_s: float
    last_sent: float = float("-inf")  # monotonic
    last_data: dict[str, Any] | None = None


@dataclass(slots=True)
class OrderSub:
    accounts: set[str] = field(default_factory=set)


class WsSession:
    def __init__(
        self,
        exchange: PrimaryExchange,
        websocket: WebSocket,
        *,
        token: str,
        user: str,
        last_activity: Callable[[], float | None],
    ) -> None:
        self.exchange = exchange
        self.ws = websocket
        self.token = token
        self.user = user
        self._last_activity = last_activity
        self._queue: asyncio.Queue[tuple[float, str]] = asyncio.Queue()
        self._closing: asyncio.Event = asyncio.Event()
        self._close_code = DROP_CODE
        self._close_reason = ""
        self._opened = exchange.clock.monotonic()
        self.md: dict[str, MdSub] = {}
        # First snapshots of an `smd`, sent by `_read` one per loop turn: a product's first read
        # builds its day of history (~20 ms), and an `smd` may name a thousand products.
        self._first_snapshots: collections.deque[MdSub] = collections.deque()
        self._dirty: set[str] = set()
        self._dirty_event = asyncio.Event()
        self.orders = OrderSub()

    # -- lifecycle ---------------------------------------------------------------------------------------
    async def run(self) -> None:
        await self.ws.accept()
        self.exchange.listeners.add(self)
        try:
            failures = await race(
                self._read(), self._write(), self._push(), self._idle_watch(), self._closing.wait()
            )
            if self._closing.is_set():
                with contextlib.suppress(Exception):
                    await self.ws.close(code=self._close_code, reason=self._close_reason)
            for exc in failures:
                log.error("WebSocket session failed", exc_info=exc)
        finally:
            self.exchange.listeners.discard(self)

    def drop(self) -> None:
        """Close this connection now (fault)."""
        self._close(DROP_CODE, "")

    def _close(self, code: int, reason: str) -> None:
        if not self._closing.is_set():
            self._close_code, self._close_reason = code, reason
            self._closing.set()

    @property
    def silenced(self) -> bool:
        return self.exchange.tokens.revoked(self.token)

    async def _read(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            text = message.get("text")
            if text is None and message.get("bytes") is not None:
                text = message["bytes"].decode("utf-8", "replace")
            if text is not None:
                self.receive_text(text)
            while self._first_snapshots:
                sub = self._first_snapshots.popleft()
                if self.md.get(sub.inst.symbol) is sub:
                    self._send_md(sub, self.exchange.clock.monotonic(), only_if_changed=False)
                    await asyncio.sleep(0)

    async def _write(self) -> None:
        await send_with_latency(self.exchange.clock, self.exchange.faults, self._queue, self.ws.send_text)

    async def _idle_watch(self) -> None:
        """Close the socket when the client has sent nothing (no frame, no ping) for `idle_close_s`."""
        clock = self.exchange.clock
        while True:
            limit = self.exchange.faults.idle_close_s
            if limit <= 0:
                await self.exchange.faults.changed()  # off: nothing to do until a switch changes
                continue
            last = max(self._last_activity() or self._opened, self._opened)
            remaining = last + limit - clock.monotonic()
            if remaining <= 0:
                self._close(IDLE_CODE, IDLE_REASON)
                return
            # Activity only moves the deadline later; a switch change may move it either way.
            await sleep_unless_changed(clock, self.exchange.faults, remaining)

    async def _push(self) -> None:
        clock = self.exchange.clock
        while True:
            # Sleep until something changed, then at the throttle's pace while anything waits.
            if not self._dirty:
                self._dirty_event.clear()
                await self._dirty_event.wait()
            await clock.sleep(PUSH_PERIOD_S)
            now = clock.monotonic()
            waiting: set[str] = set()
            for symbol in self._dirty:
                sub = self.md.get(symbol)
                if sub is None:
                    continue
                if now - sub.last_sent + 1e-9 < sub.interval_s:
                    waiting.add(symbol)
                    continue
                self._send_md(sub, now, only_if_changed=True)
            self._dirty = waiting

    def send(self, frame: dict[str, Any], *, scope: str | None = None) -> None:
        """Queue a frame; `scope` ("public" = Md, "private" = or) decides what a stall silences."""
        faults = self.exchange.faults
        if faults.stall == "all" or (scope is not None and faults.stall == scope):
            return
        self._queue.put_nowait((self.exchange.clock.monotonic(), encode(frame)))

    def send_error(self, request_text: str, description: str) -> None:
        self.exchange.usage.error_frame()
        self.send({"status": "ERROR", "message": request_text, "description": description})

    # -- exchange events -------------------------------------------------------------------------------
    def on_market(self, symbols: set[str]) -> None:
        if self.md:
            self._dirty.update(symbols & self.md.keys())
            if self._dirty:
                self._dirty_event.set()

    def on_report(self, account: str, report: dict[str, Any]) -> None:
        if account in self.orders.accounts and not self.silenced:
            self.send(
                {"type": "or", "timestamp": ms(self.exchange.clock.time()), "orderReport": report},
                scope="private",
            )

    def _send_md(self, sub: MdSub, now: float, *, only_if_changed: bool) -> None:
        data = market_data(self.exchange, sub.inst, sub.entries, sub.depth, empty_book=[])
        if only_if_changed and data == sub.last_data:
            return
        sub.last_data, sub.last_sent = data, now
        if self.silenced:
            return
        frame = {
            "type": "Md",
            "timestamp": ms(self.exchange.clock.time()),
            "instrumentId": sub.inst.instrument_id,
            "marketData": data,
        }
        self.send(frame, scope="public")

    # -- requests ----------------------------------------------------------------------------------------
    def receive_text(self, text: str) -> None:
        if text.strip().lower() == "ping":
            return
        try:
            message = json.loads(text)
        except ValueError:
            self.exchange.usage.request("invalid")
            self.send_error(text, "Invalid message")
            return
        kind = message.get("type") if isinstance(message, dict) else None
        kind = kind.lower() if isinstance(kind, str) else None
        self.exchange.usage.request(kind if kind in ("smd", "os", "no", "co") else "invalid")
        try:
            if kind == "smd":
                self._smd(message, text)
            elif kind == "os":
                self._os(message, text)
            elif kind == "no":
                self._no(message)
            elif kind == "co":
                self._co(message)
            else:
                self.send_error(text, "Invalid message")
        except OrderError as exc:
            self.send_error(text, exc.description)

    def _smd(self, message: dict[str, Any], text: str) -> None:
        request = parse_smd(message, max_depth=MAX_DEPTH, default_market="ROFX")
        if isinstance(request, str):
            raise OrderError(request)
        interval = max(LEVEL_INTERVAL_S[request.level], MIN_INTERVAL_S)
        for symbol, market in request.products:
            inst = self.exchange.catalog.get(symbol) if isinstance(symbol, str) else None
            if inst is None or market != "ROFX":
                # The captured wording (note "don't" on WS vs "doesn't" on REST).
                self.send_error(text, f"Product {symbol}:{market} don't exist")
                continue
            sub = MdSub(inst, list(request.entries), request.depth, interval)
            self.md[inst.symbol] = sub
            self._first_snapshots.append(sub)

    def _os(self, message: dict[str, Any], text: str) -> None:
        mine = self.exchange.account.account_id
        wanted: list[str] = []
        if isinstance(message.get("account"), dict):
            wanted.append(str(message["account"].get("id")))
        elif isinstance(message.get("account"), str):
            wanted.append(message["account"])
        if isinstance(message.get("accounts"), list):
            wanted.extend(str(a.get("id")) if isinstance(a, dict) else str(a) for a in message["accounts"])
        if not wanted:  # `{"type":"os"}`: all of the user's accounts
            wanted = [mine] if self.exchange.owns(self.user, mine) else []
        for account in wanted:
            if not self.exchange.owns(self.user, account):
                raise no_access(account)
        only_active = parse_bool(message.get("snapshotOnlyActive"), default=False)
        new = [a for a in wanted if a not in self.orders.accounts]
        self.orders.accounts.update(wanted)
        if self.silenced or not new:
            return
        statuses = ("NEW", "PARTIALLY_FILLED") if only_active else None
        timestamp = ms(self.exchange.clock.time())
        for report in self.exchange.account.latest_reports(statuses):
            if report["accountId"]["id"] in new:
                self.send({"type": "or", "timestamp": timestamp, "orderReport": report}, scope="private")

    def _no(self, message: dict[str, Any]) -> None:
        product: dict[str, Any] = message["product"] if isinstance(message.get("product"), dict) else {}
        raw = RawOrder(
            symbol=product.get("symbol"),
            market_id=product.get("marketId"),
            quantity=message.get("quantity"),
            side=message.get("side"),
            account=message.get("account"),
            ord_type=message.get("ordType"),
            time_in_force=message.get("timeInForce"),
            price=message.get("price"),
            expire_date=message.get("expireDate"),
            iceberg=message.get("iceberg"),
            display_qty=message.get("displayQuantity"),
            cancel_previous=message.get("cancelPrevious"),
            ws_cl_ord_id=message.get("wsClOrdId"),
        )
        request = parse_order(self.exchange.catalog, raw, WS_ORDER_NAMES)
        if not self.exchange.owns(self.user, request.account):
            raise no_access(request.account)
        if self.exchange.faults.take("lose_answers"):
            self.exchange.place_unanswered(request)
        else:
            self.exchange.place(request)

    def _co(self, message: dict[str, Any]) -> None:
        cl_ord_id = message.get("clientId")
        proprietary = message.get("proprietary") or self.exchange.account.proprietary
        order = self.exchange.account.find(str(cl_ord_id), str(proprietary))
        if not self.exchange.owns(self.user, order.account):
            raise no_access(order.account)
        self.exchange.cancel(order.cl_ord_id, order.proprietary)
