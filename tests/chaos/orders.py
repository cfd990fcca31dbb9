"""The chaos run's orders, held against what the simulators booked (issue 18's promises).

Clients place and cancel all the time, each order with a client order id of the run's, through
every way in the harness offers (`ways`: the Python `Bridge`, and the server's REST, `/ws` and
`BridgeClient` where they exist). An attempt that ends without a definite answer — a transport
error, a 5xx, an `unknown` ack — is retried with the SAME client order id, as a careful bot
does. Afterwards (`OrderLedger.problems`):

* **no duplicate order**: no client order id was booked twice by a simulator (Kraken keeps
  `cl_ord_id`; Primary's `wsClOrdId` where the order went over the socket), and neither simulator
  booked more orders than the run had client order ids (the REST path of Primary carries none);
* **no lost cancel**: every order the run asked to cancel (answered, or answered that the order
  is unknown, i.e. closed) is closed at the simulator at the end;
* **every accepted order exists**: each `accepted` ack's order id is one the simulator booked;
* **final states agree**: the orders the Bridge holds open are the ones the simulator holds open.

The simulators' truth comes from their account listeners (every report they send), not from the
Bridge.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import msgspec
import websockets

from brokerbridge.core.errors import BrokerBridgeError, TransportError, UnknownOrder, error_from_wire
from brokerbridge.core.orders import OrderAck, OrderRequest

Place = Callable[[OrderRequest], Awaitable[OrderAck]]
Cancel = Callable[[str, str], Awaitable[Any]]  # (venue, order id)

ATTEMPTS = 4  # per client order id: the first and up to three retries
PRIMARY_ACTIVE = frozenset({"PENDING_NEW", "NEW", "PARTIALLY_FILLED"})
KRAKEN_OPEN = frozenset({"pending", "open"})


@dataclass
class Way:
    """One way in: how it places and cancels."""

    name: str
    place: Place
    cancel: Cancel


@dataclass
class _Placed:
    request: OrderRequest
    way: str
    attempts: int = 0
    acks: list[OrderAck] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    decided: bool = False  # an `accepted` ack, or a refusal a retry cannot change
    refusal: str = ""  # that refusal's message


class VenueTruth:
    """Every order the simulators booked, from their own account reports."""

    def __init__(self, ksim: Any, psim: Any) -> None:
        self.kraken_booked: Counter[str | None] = Counter()  # cl_ord_id → bookings
        self.kraken_status: dict[str, str] = {}  # txid → last status
        self.primary_ws_booked: Counter[str] = Counter()  # wsClOrdId → bookings
        self.primary_roots = 0  # orders booked (replacements not counted)
        self.primary_seen: set[str] = set()
        ksim.exchange.account.listeners.append(self._kraken)
        psim.exchange.account.listeners.append(self._primary)
        self._ksim, self._psim = ksim, psim

    def _kraken(self, event: Any) -> None:
        order = event.order
        if order is None:
            return
        if event.kind == "pending_new":
            self.kraken_booked[order.cl_ord_id] += 1
        self.kraken_status[order.txid] = order.status

    def _primary(self, _account: str, report: dict[str, Any]) -> None:
        cl_ord_id = report["clOrdId"]
        if cl_ord_id in self.primary_seen:
            return
        self.primary_seen.add(cl_ord_id)
        if report.get("origClOrdId") is None:
            self.primary_roots += 1
        if report.get("wsClOrdId") is not None:
            self.primary_ws_booked[report["wsClOrdId"]] += 1

    def kraken_open(self) -> set[str]:
        return {
            txid for txid, order in self._ksim.exchange.account.orders.items() if order.status in KRAKEN_OPEN
        }

    def kraken_closed(self, txid: str) -> bool:
        return self.kraken_status.get(txid) in ("closed", "canceled")

    def primary_open(self) -> set[str]:
        """Open orders, each named by the clOrdId of the request that first booked it (what the
        Bridge keys a Primary order by)."""
        orders = self._psim.exchange.account.orders
        out = set()
        for order in orders.values():
            if order.status in PRIMARY_ACTIVE:
                root = order
                while root.orig_cl_ord_id is not None and root.orig_cl_ord_id in orders:
                    root = orders[root.orig_cl_ord_id]
                out.add(root.cl_ord_id)
        return out

    def primary_closed(self, order_id: str) -> bool:
        return order_id not in self.primary_open()

    def primary_filled(self) -> dict[str, Decimal]:
        """Filled quantity per order, keyed like the bridge's fills: by the original request's
        clOrdId (a replacement's fills count for the order it replaced)."""
        orders = self._psim.exchange.account.orders
        totals: dict[str, Decimal] = {}
        for order in orders.values():
            root = order
            while root.orig_cl_ord_id is not None and root.orig_cl_ord_id in orders:
                root = orders[root.orig_cl_ord_id]
            if order.cum_qty:
                totals[root.cl_ord_id] = max(order.cum_qty, totals.get(root.cl_ord_id, Decimal(0)))
        return totals


class OrderLedger:
    def __init__(self, truth: VenueTruth, run_tag: str) -> None:
        self.truth = truth
        self._tag = run_tag  # a few characters: client order ids of this run
        self._next = 0
        self.placed: dict[str, _Placed] = {}
        self.cancels: dict[tuple[str, str], str] = {}  # (venue, order id) → the way that asked
        self.counts: Counter[str] = Counter()

    def new_id(self) -> str:
        self._next += 1
        return f"{self._tag}{self._next:07d}"

    async def place(
        self,
        way: Way,
        request: OrderRequest,
        pause: Callable[[], Awaitable[None]],
        *,
        attempts: int = ATTEMPTS,
    ) -> OrderAck | None:
        """Place `request` (its client order id set), retrying an undecided attempt with the
        same id; the last ack, or None when every attempt failed. Called again with the same
        request, it carries on with the same id."""
        assert request.client_order_id is not None
        placed = self.placed.setdefault(request.client_order_id, _Placed(request, way.name))
        last: OrderAck | None = None
        for _ in range(attempts):
            placed.attempts += 1
            self.counts[f"attempts {way.name}"] += 1
            try:
                last = await way.place(request)
            except BrokerBridgeError as exc:
                placed.errors.append(type(exc).__name__)
                self.counts[f"error {type(exc).__name__}"] += 1
                if not exc.retryable:
                    placed.decided, placed.refusal = True, str(exc)
                    return None
                await pause()
                continue
            placed.acks.append(last)
            if last.duplicate:
                self.counts["duplicate acks"] += 1
            if last.status == "accepted":
                placed.decided = True
                return last
            self.counts["unknown acks"] += 1
            await pause()
        return last

    async def cancel(self, way: Way, venue: str, order_id: str) -> bool:
        """Ask once; False when the answer did not come (a retryable error: whether the bridge
        took the cancel is not known, so a careful client asks again)."""
        self.counts[f"cancels {way.name}"] += 1
        try:
            await way.cancel(venue, order_id)
        except UnknownOrder:
            # An answer that the order is closed: it must be, at the venue (a cancel that named
            # the order wrongly is answered so too — restart chaos seed 13564).
            self.counts["cancel of a closed order"] += 1
            self.cancels[(venue, order_id)] = way.name
            return True
        except BrokerBridgeError as exc:
            self.counts[f"cancel error {type(exc).__name__}"] += 1
            if not exc.retryable:
                return True
            self.cancels[(venue, order_id)] = way.name
            return False
        self.cancels[(venue, order_id)] = way.name
        return True

    def summary(self) -> str:
        ways = Counter(p.way for p in self.placed.values())
        by_way = ", ".join(f"{w} {n}" for w, n in sorted(ways.items()))
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        return f"client order ids {len(self.placed)} ({by_way}); {counts}"

    async def problems(self, bridge: Any, *, within: float) -> list[str]:
        """What broke a promise. Open sets may take a moment to agree (a cancel's report on its
        way): compared until they agree or `within` seconds pass."""
        out: list[str] = []
        twice = {cid: n for cid, n in self.truth.kraken_booked.items() if cid is not None and n > 1}
        if twice:
            out.append(f"duplicate orders at kraken: {dict(list(twice.items())[:5])}")
        twice = {cid: n for cid, n in self.truth.primary_ws_booked.items() if n > 1}
        if twice:
            out.append(f"duplicate orders at primary: {dict(list(twice.items())[:5])}")
        ids = Counter(p.request.venue for p in self.placed.values())
        if self.truth.primary_roots > ids["primary"]:
            out.append(
                f"primary booked {self.truth.primary_roots} orders for {ids['primary']} client order ids"
            )
        booked_kraken = sum(n for cid, n in self.truth.kraken_booked.items() if cid is not None)
        if booked_kraken > ids["kraken"]:
            out.append(f"kraken booked {booked_kraken} orders for {ids['kraken']} client order ids")
        for cid, placed in self.placed.items():
            for ack in placed.acks:
                if ack.status == "accepted" and ack.order_id is not None and not self._booked(ack):
                    out.append(f"{ack.venue} order {ack.order_id} (client {cid}) acknowledged, never booked")
        mismatch: list[str] = []
        for _ in range(int(within / 0.2) + 1):
            lost = [
                f"{venue} {order_id}"
                for (venue, order_id) in self.cancels
                if not (
                    self.truth.kraken_closed(order_id)
                    if venue == "kraken"
                    else self.truth.primary_closed(order_id)
                )
            ]
            mismatch = self._open_mismatch(bridge)
            if not lost and not mismatch:
                break
            await asyncio.sleep(0.2)
        else:
            if lost:
                out.append(f"cancels lost ({len(lost)}): {lost[:5]}")
        out.extend(mismatch)
        return out

    def _booked(self, ack: OrderAck) -> bool:
        if ack.venue == "kraken":
            return ack.order_id in self.truth.kraken_status
        return ack.order_id in self.truth.primary_seen

    def _open_mismatch(self, bridge: Any) -> list[str]:
        out = []
        for venue, venue_open in (
            ("kraken", self.truth.kraken_open()),
            ("primary", self.truth.primary_open()),
        ):
            held = {o.order_id for o in bridge.open_orders(venue) if o.status != "unknown"}
            only_bridge, only_venue = held - venue_open, venue_open - held
            if only_bridge or only_venue:
                out.append(
                    f"{venue} open orders differ: bridge only {sorted(only_bridge)[:5]}, "
                    f"venue only {sorted(only_venue)[:5]}"
                )
        return out


def _refusal(status: int, body: bytes, venue: str) -> BrokerBridgeError:
    """The typed error of an /api or /ws error body (`{"error": {code, message, remedy}}`)."""
    try:
        detail = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return TransportError(f"HTTP {status} without an error body")
    return error_from_wire(detail["code"], detail["message"], detail.get("remedy", ""), venue=venue)


class RestWay:
    """`POST /api/orders`, `DELETE /api/orders/{venue}/{id}` with httpx and a trade key."""

    def __init__(self, base_url: str, key: str) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10
        )

    async def place(self, request: OrderRequest) -> OrderAck:
        try:
            answer = await self.http.post(
                "/api/orders",
                content=msgspec.json.encode(request),
                headers={"Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise TransportError(f"POST /api/orders: {type(exc).__name__}") from None
        if answer.status_code in (200, 202):
            return msgspec.json.decode(answer.content, type=OrderAck)
        raise _refusal(answer.status_code, answer.content, request.venue)

    async def cancel(self, venue: str, order_id: str) -> None:
        try:
            answer = await self.http.delete(f"/api/orders/{venue}/{urllib.parse.quote(order_id, safe='')}")
        except httpx.HTTPError as exc:
            raise TransportError(f"DELETE /api/orders: {type(exc).__name__}") from None
        if answer.status_code != 200:
            raise _refusal(answer.status_code, answer.content, venue)

    async def aclose(self) -> None:
        await self.http.aclose()


class WsWay:
    """The `/ws` ops `place` and `cancel` on one connection (opened again when it drops), each
    answered by the message with its `id`."""

    def __init__(self, url: str, key: str) -> None:
        self.url, self.key = url, key
        self.ws: Any = None
        self.reader: asyncio.Task[None] | None = None
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.next_id = 0
        self.reconnects = 0

    async def _ensure(self) -> Any:
        if self.ws is None:
            self.ws = await websockets.connect(
                self.url, additional_headers={"Authorization": f"Bearer {self.key}"}, max_queue=None
            )
            self.reader = asyncio.get_running_loop().create_task(self._read(self.ws))
        return self.ws

    async def _read(self, ws: Any) -> None:
        try:
            async for text in ws:
                message = json.loads(text)
                future = (
                    self.waiting.pop(message.get("id"), None) if isinstance(message.get("id"), int) else None
                )
                if future is not None and not future.done() and message["type"] in ("ack", "error"):
                    future.set_result(message)
        except websockets.ConnectionClosed:
            pass
        finally:
            if self.ws is ws:
                self.ws = None
                self.reconnects += 1
            for future in self.waiting.values():
                if not future.done():
                    future.set_exception(TransportError("/ws connection closed before the answer"))
            self.waiting.clear()

    async def _ask(self, message: dict[str, Any], venue: str) -> dict[str, Any]:
        try:
            ws = await self._ensure()
            self.next_id += 1
            message["id"] = self.next_id
            future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            # Read here or not at all: a send that fails leaves it to `_read`'s closing error.
            future.add_done_callback(lambda f: f.cancelled() or f.exception())
            self.waiting[self.next_id] = future
            await ws.send(json.dumps(message))
            answer = await asyncio.wait_for(future, 20)
        except (OSError, websockets.WebSocketException, TimeoutError) as exc:
            raise TransportError(f"/ws {message['op']}: {type(exc).__name__}") from None
        if answer["type"] == "error":
            raise error_from_wire(answer["code"], answer["message"], answer.get("remedy", ""), venue=venue)
        return answer

    async def place(self, request: OrderRequest) -> OrderAck:
        order = msgspec.json.decode(msgspec.json.encode(request))
        answer = await self._ask({"op": "place", "order": order}, request.venue)
        return msgspec.convert(answer["order"], OrderAck)

    async def cancel(self, venue: str, order_id: str) -> None:
        await self._ask({"op": "cancel", "venue": venue, "order_id": order_id}, venue)

    async def aclose(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await asyncio.gather(self.reader, return_exceptions=True)
