"""The server's order desk: what `/api/orders` and the `/ws` ops `place`, `cancel`, `amend` call,
so the two ways in check the same things and answer with the same acks and error codes; and
cancel-on-disconnect for API keys that ask for it.

The order's life itself is the Bridge's (`Bridge.place/cancel/amend`: idempotency by client order
id, the journal, unknown outcomes); this adds what only the server knows — who asked, over which
connection — and bounds what a client may name before the Bridge reads it.

Cancel-on-disconnect (`[server.keys.<name>] cancel_on_disconnect_s`): the orders a key placed
over `/ws` are remembered per key; when the last `/ws` connection of that key closes (dropped or
closed by the client) a timer starts, and if no connection of the key is open when it ends, every
remembered order still open is canceled. A connection of the key opened meanwhile (a reconnect)
stops the timer: its orders stay. Orders placed over REST are never canceled this way (REST has
no connection to lose). The timer runs on the server's clock; the server shutting down cancels
the timers, not the orders.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from brokerbridge.bridge import Bridge
from brokerbridge.core.clock import Clock
from brokerbridge.core.config import ApiKey
from brokerbridge.core.errors import BrokerBridgeError, InvalidRequest
from brokerbridge.core.orders import AmendRequest, CancelAck, OrderAck, OrderRequest
from brokerbridge.server.protocol import MAX_ID_LENGTH, MAX_NAME_LENGTH, MAX_SYMBOL_LENGTH, PRINTABLE

logger = logging.getLogger(__name__)

_PRINTABLE = re.compile(PRINTABLE)
# Orders remembered per key for cancel-on-disconnect before the closed ones are forgotten.
PRUNE_AT = 1000


def _bounded(what: str, value: str | None, limit: int, venue: str) -> None:
    if value is None:
        return
    if not value or len(value) > limit or not _PRINTABLE.match(value):
        raise InvalidRequest(
            f"{what} must be 1 to {limit} printable characters",
            venue=venue[:MAX_NAME_LENGTH],
            remedy=f"send the {what} as the venue lists it",
        )


def check_order(venue: str, symbol: str | None = None, order_id: str | None = None) -> None:
    """What a client names is bounded and printable, as on `/ws` subscribe (server/protocol.py):
    no venue, log line or error ever echoes an unbounded or control-laden string."""
    _bounded("venue", venue, MAX_NAME_LENGTH, "")
    _bounded("symbol", symbol, MAX_SYMBOL_LENGTH, venue)
    _bounded("order id", order_id, MAX_ID_LENGTH, venue)


@dataclass(frozen=True)
class _Placed:
    venue: str
    client_order_id: str
    order_id: str | None


class OrderDesk:
    def __init__(self, bridge: Bridge, clock: Clock, keys: tuple[ApiKey, ...]) -> None:
        self._bridge = bridge
        self._clock = clock
        self._grace = {
            key.name: key.cancel_on_disconnect_s for key in keys if key.cancel_on_disconnect_s is not None
        }
        self._placed: dict[str, dict[_Placed, None]] = {}  # key name → orders placed over /ws
        self._open: Counter[str] = Counter()  # key name → its open /ws connections
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()  # ops in flight, and cancel-on-disconnect runs

    # -- the order API, as every way in calls it ----------------------------------------------
    async def place(self, request: OrderRequest) -> OrderAck:
        check_order(request.venue, request.symbol)
        return await self._bridge.place(request)

    async def cancel(self, venue: str, order_id: str) -> CancelAck:
        check_order(venue, order_id=order_id)
        return await self._bridge.cancel(venue, order_id)

    async def amend(self, request: AmendRequest) -> OrderAck:
        check_order(request.venue, order_id=request.order_id)
        if request.qty is None and request.price is None:
            raise InvalidRequest(
                "an amend changes nothing: give qty and/or price",
                venue=request.venue,
                remedy='send the new "qty" and/or "price" (decimal strings)',
            )
        return await self._bridge.amend(request)

    # -- /ws: ops run as tasks the desk owns ----------------------------------------------------
    def run(self, op: Coroutine[Any, Any, None], name: str) -> None:
        """Run one `/ws` op (it answers the client itself); held here until it ends."""
        task = asyncio.get_running_loop().create_task(op, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def placed(self, key_name: str | None, ack: OrderAck) -> None:
        """`ack` answered a `place` over a `/ws` connection of `key_name`."""
        if key_name is None or key_name not in self._grace:
            return
        orders = self._placed.setdefault(key_name, {})
        orders[_Placed(ack.venue, ack.client_order_id, ack.order_id)] = None
        if len(orders) > PRUNE_AT:
            self._prune(key_name)
        if self._open[key_name] == 0 and key_name not in self._timers:
            self._start_timer(key_name)  # its connection dropped while the order was on its way

    def opened(self, key_name: str | None) -> None:
        """A `/ws` connection of `key_name` opened (or authenticated as it)."""
        if key_name is None or key_name not in self._grace:
            return
        self._open[key_name] += 1
        timer = self._timers.pop(key_name, None)
        if timer is not None:
            timer.cancel()
            logger.info("key %r reconnected: its orders are not canceled", key_name)

    def closed(self, key_name: str | None) -> None:
        """A `/ws` connection of `key_name` closed (dropped, closed by either side)."""
        if key_name is None or key_name not in self._grace:
            return
        self._open[key_name] -= 1
        if self._open[key_name] <= 0:
            del self._open[key_name]
            if self._placed.get(key_name) and key_name not in self._timers:
                self._start_timer(key_name)

    def _start_timer(self, key_name: str) -> None:
        task = asyncio.get_running_loop().create_task(
            self._cancel_after_grace(key_name), name=f"cancel-on-disconnect {key_name}"
        )
        self._timers[key_name] = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _cancel_after_grace(self, key_name: str) -> None:
        grace = self._grace[key_name]
        await self._clock.sleep(grace)
        if self._timers.get(key_name) is asyncio.current_task():
            del self._timers[key_name]
        if self._open[key_name] > 0:  # pragma: no cover - opened() cancels the timer first
            return
        orders = list(self._placed.pop(key_name, {}))
        venues = {placed.venue for placed in orders}
        canceled = 0
        for venue in sorted(venues):
            for order_id in self._still_open(venue, [p for p in orders if p.venue == venue]):
                try:
                    await self._bridge.cancel(venue, order_id)
                    canceled += 1
                except BrokerBridgeError as exc:
                    logger.warning(
                        "cancel-on-disconnect of key %r: %s order %s not canceled: %s",
                        key_name,
                        venue,
                        order_id,
                        exc,
                    )
        logger.info(
            "key %r: no /ws connection for %g s, %d of its open orders canceled", key_name, grace, canceled
        )

    def _still_open(self, venue: str, placed: list[_Placed]) -> list[str]:
        """The venue ids of those of `placed` the Bridge believes open (by venue id or, for an ack
        that was `unknown`, by client order id)."""
        ids = {p.order_id for p in placed if p.order_id is not None}
        client_ids = {p.client_order_id for p in placed}
        return [
            order.order_id
            for order in self._bridge.open_orders(venue)
            if order.order_id in ids
            or (order.client_order_id is not None and order.client_order_id in client_ids)
        ]

    def _prune(self, key_name: str) -> None:
        """Forget the orders of `key_name` no longer open (bounds what a long-lived bot costs)."""
        orders = self._placed.get(key_name, {})
        keep: dict[_Placed, None] = {}
        for venue in {p.venue for p in orders}:
            mine = [p for p in orders if p.venue == venue]
            still = set(self._still_open(venue, mine))
            keep.update((p, None) for p in mine if p.order_id is None or p.order_id in still)
        self._placed[key_name] = keep

    async def aclose(self) -> None:
        """The server stops: ops in flight and cancel-on-disconnect timers end (orders stay)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._timers.clear()
