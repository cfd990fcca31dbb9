"""Kraken order entry on the authenticated WebSocket: requests out, answers awaited on the clock,
and Kraken's dead man's switch kept armed.

* `WsOrders` sends a trading request through the private session (with the token its
  subscriptions carry: no token is fetched per order) and waits for the answer the session
  matches by `req_id`. No answer within `order_timeout`, or a connection that ends first, is a
  `TransportError`: whether Kraken carried the request out is unknown (the Bridge settles that from
  the venue's orders). Kraken's refusal raises its mapped error. It is used only while
  `live`: connected, subscribed (Kraken accepted the token on this connection) and holding it.
* `DeadManSwitch` arms `cancel_all_orders_after` while the bridge runs, pushing it back every
  third of its timeout, and disarms it on a clean stop: orders survive a bridge that stops on
  purpose, not one that dies or loses the venue for longer than the timeout.
* The helpers below word what both paths (WS, REST) share: an unanswered request, Kraken's time in
  force per wire, batch answers as per-order outcomes.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable

from brokerbridge.core.clock import Clock, within
from brokerbridge.core.errors import (
    BrokerBridgeError,
    InvalidRequest,
    NotSent,
    ProtocolError,
    TransportError,
)
from brokerbridge.core.events import StreamState
from brokerbridge.core.orders import OrderOutcome, TimeInForce
from brokerbridge.io.supervisor import ConnectionSupervisor
from brokerbridge.venues.kraken import VENUE
from brokerbridge.venues.kraken.errors import error_from_kraken
from brokerbridge.venues.kraken.messages import AckResult, AnyTradingParams, MethodAck
from brokerbridge.venues.kraken.session import KrakenWsSession, TradingAnswer

logger = logging.getLogger(__name__)

BATCH_ADD_MIN, BATCH_ADD_MAX = 2, 15  # Kraken's batch_add bounds (one pair)
BATCH_CANCEL_MIN, BATCH_CANCEL_MAX = 2, 50  # and batch_cancel's


class WsOrders:
    """Trading requests on one private connection supervisor's session, and their answers."""

    def __init__(
        self,
        session: KrakenWsSession,
        supervisor: ConnectionSupervisor,
        *,
        clock: Clock,
        timeout: float,
    ) -> None:
        self._session = session
        self._supervisor = supervisor
        self._clock = clock
        self.timeout = timeout
        self._answers: dict[int, asyncio.Future[TradingAnswer]] = {}
        session.trading_listener = self._on_answer

    @property
    def live(self) -> bool:
        """Whether order requests go on the socket now: connected, subscribed (Kraken accepted the
        token there) and holding that token."""
        return (
            self._supervisor.connected
            and self._supervisor.state is StreamState.LIVE
            and self._session.connected
            and self._session.token is not None
        )

    async def request(
        self, params: AnyTradingParams, what: str, *, client_order_id: str | None = None
    ) -> MethodAck:
        """Send `params` and wait for Kraken's answer (see the module docstring for what raises)."""
        future: asyncio.Future[TradingAnswer] = asyncio.get_running_loop().create_future()
        req_id = self._session.send_trading(params, self._clock.monotonic())
        self._answers[req_id] = future
        self._supervisor.notify()  # the connection's writer sends the queued frame
        try:
            answer = await within(self._clock, self.timeout, future)
        except TimeoutError:
            lost = TransportError(f"no answer on the WebSocket within {self.timeout:g} s")
            raise unanswered(what, lost, client_order_id) from None
        finally:
            self._answers.pop(req_id, None)
        if answer.ack is None:
            raise unanswered(what, TransportError(answer.lost or "no answer"), client_order_id)
        if not answer.ack.ok:
            raise error_from_kraken(answer.ack.error_text or "unknown error", venue=VENUE)
        return answer.ack

    def _on_answer(self, answer: TradingAnswer) -> None:
        future = self._answers.get(answer.req_id)
        if future is not None and not future.done():
            future.set_result(answer)


class DeadManSwitch:
    """Kraken's `cancel_all_orders_after`, kept armed with `seconds` (whole seconds) by `arm`
    (socket or REST) and turned off by `disarm` — over REST: at a stop the sockets are gone."""

    def __init__(
        self,
        arm: Callable[[int], Awaitable[object]],
        disarm: Callable[[], Awaitable[object]],
        *,
        clock: Clock,
        seconds: float,
        stop_within: float,
    ) -> None:
        self._arm = arm
        self._disarm = disarm
        self._clock = clock
        self.seconds = math.ceil(seconds)
        self._stop_within = stop_within
        self.armed = False  # armed by this run: disarm it on a clean stop

    async def run(self) -> None:
        """Arm and push back every third of the timeout (Kraken recommends a call every 15–30 s
        with a 60 s timeout). A failed refresh is tried at the next one; the last one armed holds
        until then — and fires if none succeeds before it."""
        every = max(1.0, self.seconds / 3)
        while True:
            try:
                await self._arm(self.seconds)
                self.armed = True
            except BrokerBridgeError as exc:
                logger.warning("kraken: dead man's switch not refreshed: %s", exc)
            await self._clock.sleep(every)

    async def disarm(self) -> None:
        """A clean stop: the orders the bridge leaves stay (timeout 0 turns the switch off)."""
        if not self.armed:
            return
        try:
            await within(self._clock, self._stop_within, self._disarm())
            self.armed = False
        except (BrokerBridgeError, TimeoutError) as exc:
            logger.warning("kraken: could not disarm the dead man's switch (orders may be canceled): %s", exc)


def unanswered(what: str, exc: TransportError, client_order_id: str | None = None) -> TransportError:
    """No answer came: the order request may or may not have been carried out — unless nothing of
    it was written (`NotSent`), which stays that: the request never reached Kraken."""
    if isinstance(exc, NotSent):
        return NotSent(f"{what}: {exc.message}", venue=VENUE, remedy=exc.remedy)
    look = f" (look for cl_ord_id {client_order_id})" if client_order_id else ""
    return TransportError(
        f"{what}: no answer ({exc.message})",
        remedy="the order may or may not be live: watch executions / open orders before resending" + look,
    )


def ack_result(ack: MethodAck) -> AckResult:
    if isinstance(ack.result, AckResult):
        return ack.result
    raise ProtocolError(f"kraken ws: {ack.method} answered without a result object")


def batch_outcomes(ack: MethodAck, client_order_ids: list[str]) -> list[OrderOutcome]:
    """batch_add's answer: one entry per order, in order (one the engine refused carries its error)."""
    entries = ack.result if isinstance(ack.result, list) else []
    if len(entries) != len(client_order_ids):
        raise ProtocolError(
            f"kraken ws: batch_add answered {len(entries)} entries for {len(client_order_ids)} orders"
        )
    outcomes = []
    for entry, cid in zip(entries, client_order_ids, strict=True):
        if entry.error is not None:
            error = error_from_kraken(entry.error, venue=VENUE)
            outcome = OrderOutcome(
                client_order_id=cid, status="rejected", error=error.code, reason=error.message, via="ws"
            )
        else:
            outcome = OrderOutcome(client_order_id=cid, status="accepted", order_id=entry.order_id, via="ws")
        outcomes.append(outcome)
    return outcomes


def ws_time_in_force(tif: TimeInForce | None) -> str | None:
    """Kraken's WS v2 takes gtc, ioc, fok (and gtd, with an expiry we do not offer); no `day`."""
    if tif == "day":
        raise _no_day()
    return tif


def rest_time_in_force(tif: TimeInForce | None) -> str | None:
    """REST AddOrder takes GTC, IOC (and GTD): no fill-or-kill, no `day`."""
    if tif == "day":
        raise _no_day()
    if tif == "fok":
        raise InvalidRequest(
            "time_in_force fok: Kraken's REST API has no fill-or-kill, and the WebSocket is down now",
            venue=VENUE,
            remedy="use ioc (what does not fill at once is canceled), or retry when the socket is back",
        )
    return None if tif is None else tif.upper()


def _no_day() -> InvalidRequest:
    return InvalidRequest(
        "time_in_force day: Kraken has no day orders",
        venue=VENUE,
        remedy="use gtc (cancel it yourself at the end of the day) or ioc",
    )
