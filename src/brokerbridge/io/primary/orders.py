"""Order entry on Primary for `PrimaryConnector`: the order API's submit, cancel and amend over the
WebSocket when orders are answered there, REST when they are not, and the search for submits whose
answer never came.

The way in is the order API's `submit_order`/`cancel`/`amend_order` (Bridge.place/cancel/amend),
which go over the socket while it is up with the account's order reports subscribed (`on_socket`;
Primary answers `no`/`co` only through them) and over REST otherwise (`cancel_order` is the REST
cancel).

One order id either way (socket or REST): the clOrdId of the order's first request (what
newSingleOrder answers as `clientId`, what the first `or` report of a `no` carries next to our
`wsClOrdId`), which is what the session's tracker keys every update and fill by; both name the
order with the caller's client order id (`OrderTracker.name`), which updates and fills carry. A
replace keeps the order id: Primary's replace is a new request (a new clOrdId) that carries the
filled quantity over, so re-keying the order would report its fills a second time.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from decimal import Decimal
from typing import Any

import msgspec

from brokerbridge.core.clock import Clock, within
from brokerbridge.core.errors import (
    BrokerBridgeError,
    ConfigError,
    InvalidRequest,
    NotSent,
    OrderRefused,
    OrderRejected,
    TransportError,
)
from brokerbridge.core.events import AnyEvent, Channel, Fill, OrderUpdate
from brokerbridge.core.orders import Canceled, OrderRequest, Submitted, TimeInForce, Via
from brokerbridge.core.signals import OrderAnswered
from brokerbridge.io.primary.rest import PrimaryRestClient
from brokerbridge.io.supervisor import ConnectionSupervisor, Emit
from brokerbridge.venues.primary import VENUE
from brokerbridge.venues.primary import normalize as norm
from brokerbridge.venues.primary import rest as codec
from brokerbridge.venues.primary.session import PrimaryWsSession

logger = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, None], str], asyncio.Task[None] | None]
ORDER_REPORT_GRACE = 5.0  # seconds a REST order may go without an `or` report before REST is asked
# A `no`/`co` on the socket with no report in this long: its outcome is unknown (reMarkets answers
# in milliseconds; a socket that went quiet under the request takes longer than any answer would).
WS_ORDER_ANSWER_S = 5.0
# An unanswered WS submit is looked for in the venue's orders this long (the Bridge gives up on an
# unknown order after a minute: this outlives it), at most this many at a time (oldest dropped).
UNANSWERED_KEPT_S = 600.0
MAX_UNANSWERED = 1_000
CLOCK_SKEW_S = 5.0  # between our clock and Primary's transactTime
MAX_HISTORY_READS = 5  # order/allById reads per unanswered submit and read (best practice: 1 per 30 s)


class _Unanswered(msgspec.Struct, frozen=True, kw_only=True):
    """A submit no answer came to: what it asked for, when (wall seconds) and which way."""

    request: OrderRequest
    sent: float
    via: Via


def primary_time_in_force(value: TimeInForce | None) -> str:
    """The order API's time in force as Primary's `timeInForce`: DAY (also the default), IOC,
    FOK. Primary's GTD needs an expiry date the order API does not carry, and Primary has no
    good-till-cancelled: `gtc` is refused before anything is sent."""
    match value:
        case None | "day":
            return "DAY"
        case "ioc":
            return "IOC"
        case "fok":
            return "FOK"
    raise OrderRefused(
        f"time in force {value!r}: Primary has DAY, IOC, FOK and GTD (with an expiry date), no "
        "good-till-cancelled",
        rule="time_in_force",
        venue=VENUE,
        remedy="use day (Primary's default: the order ends with the session), ioc or fok",
    )


def _order_of(event: AnyEvent) -> str:
    return event.order_id if isinstance(event, OrderUpdate | Fill) else ""


def _named(event: AnyEvent, caller_id: str | None) -> AnyEvent:
    """`event` (an order's update or fill) with the caller's client order id, where one is known."""
    if caller_id is None or not isinstance(event, OrderUpdate | Fill) or event.client_order_id == caller_id:
        return event
    return msgspec.structs.replace(event, client_order_id=caller_id)


class PrimaryOrderEntry:
    """The order paths of one Primary account (see the module docstring); `answered` is fed the
    session's `OrderAnswered` signals by the connector."""

    def __init__(
        self,
        *,
        account: str | None,
        default_proprietary: str,
        rest: PrimaryRestClient,
        session: PrimaryWsSession,
        stream: ConnectionSupervisor,
        clock: Clock,
        emit: Emit,
        spawn: Spawn,
        read_orders: Callable[[], Awaitable[list[AnyEvent]]],
    ) -> None:
        self._account = account
        self._default_proprietary = default_proprietary
        self.rest = rest
        self.session = session
        self.stream = stream
        self.clock = clock
        self._emit = emit
        self._spawn = spawn
        self._read_orders = read_orders  # the account's orders (`order/all`) through the tracker
        # order id → the proprietary it was booked under (the latest orders; older ones: the
        # tracker's, else the environment's default)
        self._proprietary: OrderedDict[str, str] = OrderedDict()
        # Who waits for which answer ((kind, request id) → future), replace answers that came
        # before replaceById's own, submits no answer came to.
        self.ws_answer_timeout = WS_ORDER_ANSWER_S
        self._awaited: dict[tuple[str, str], asyncio.Future[OrderAnswered]] = {}
        self._replace_answers: OrderedDict[str, OrderAnswered] = OrderedDict()
        self._unanswered: OrderedDict[str, _Unanswered] = OrderedDict()

    def _trading_account(self) -> str:
        if not self._account:
            raise ConfigError("placing orders needs primary.account")
        return self._account

    async def _place_rest(
        self,
        *,
        symbol: str,
        side: str,
        order_type: str,
        qty: Decimal,
        price: Decimal | None,
        time_in_force: str,
    ) -> str:
        try:
            request = codec.new_order_request(
                symbol=symbol,
                side=side,
                quantity=qty,
                account=self._trading_account(),
                order_type=order_type,
                time_in_force=time_in_force,
                price=price,
            )
        except ValueError as exc:
            raise InvalidRequest(str(exc), venue=VENUE) from None
        try:
            response = await self.rest.call(request)
        except NotSent as exc:  # nothing of it was written: it never reached Primary
            raise NotSent(f"newSingleOrder {side} {qty} {symbol}: {exc.message}", venue=VENUE) from exc
        except TransportError as exc:
            raise TransportError(
                f"newSingleOrder {side} {qty} {symbol}: no answer ({exc.message})",
                remedy="the order may or may not be live: check executions / rest/order/all before resending",
            ) from exc
        order_id = str(response.order.clientId)
        # Cancels must name the same proprietary the order was booked under.
        self._remember_proprietary(order_id, response.order.proprietary)
        self._spawn(self._confirm_order(order_id), f"primary-confirm-{order_id}")
        return order_id

    def _remember_proprietary(self, order_id: str, proprietary: str | None) -> None:
        self._proprietary[order_id] = proprietary or self._default_proprietary
        while len(self._proprietary) > 10_000:
            self._proprietary.popitem(last=False)

    def booked_proprietary(self, order_id: str) -> str | None:
        """The proprietary `order_id` was booked under, if this run saw it booked (its ack or a report)."""
        return self._proprietary.get(order_id) or self.session.orders.proprietary_of(order_id)

    def _proprietary_of(self, order_id: str) -> str:
        known = self._proprietary.get(order_id) or self.session.orders.proprietary_of(order_id)
        return known or self._default_proprietary

    async def _confirm_order(self, order_id: str) -> None:
        """If no `or` report names the order soon (socket down or silent), ask REST for its state:
        an order's fate must never depend on one stream."""
        await self.clock.sleep(ORDER_REPORT_GRACE)
        if self.session.orders.seen(order_id):
            return
        if not any(sub.channel is Channel.EXECUTIONS for sub in self.session.subscriptions):
            return  # nobody follows executions: nothing to complete
        try:
            proprietary = self._proprietary_of(order_id)
            response = await self.rest.call(codec.order_status_request(order_id, proprietary))
            events = self.session.orders.events(response.order, ts=self.clock.time())
        except BrokerBridgeError as exc:
            logger.warning("primary: no report for order %s and REST status failed: %s", order_id, exc)
            return
        except Exception:
            logger.exception("primary: order %s status from REST failed unexpectedly (a bug)", order_id)
            return
        logger.warning("primary: order %s had no report on the socket; state taken from REST", order_id)
        for event in events:
            self._emit(event)

    async def _booked_proprietary(self, order_id: str) -> str:
        """The proprietary a cancel or replace of `order_id` must name. Not known yet (the bridge restarted:
        the submit's answer is forgotten and no report of the order has come on this run), the
        account's orders are read first (`order/all`, through the tracker, what they show
        published as a reconciliation does): a guessed proprietary that is not the order's makes
        Primary answer "doesn't exist", which reads as an order already closed — a lost cancel
        (restart chaos: the environment's default `api` against the simulator's `PBCP`)."""
        if self._proprietary.get(order_id) is None and self.session.orders.proprietary_of(order_id) is None:
            if self._account:
                for event in await self._read_orders():
                    self._emit(event)
        return self._proprietary_of(order_id)

    async def cancel_order(self, order_id: str) -> int:
        proprietary = await self._booked_proprietary(order_id)
        request_id = self.session.orders.live_request(order_id)
        await self.rest.call(codec.cancel_order_request(request_id, proprietary))
        return 1

    @property
    def on_socket(self) -> bool:
        """Whether order entry goes over the WebSocket now: it is up with the account's order
        reports subscribed (Primary answers `no`/`co` only through them)."""
        return self.stream.connected and self.session.orders_live

    async def submit_order(self, request: OrderRequest, client_order_id: str) -> Submitted:
        """`no` on the socket with `client_order_id` as `wsClOrdId` when `on_socket`, else
        `order/newSingleOrder`. Over the socket, the first `or` report carrying our `wsClOrdId`
        names the order (its clOrdId); none within `ws_answer_timeout` → TransportError (the
        order may be live: `order_snapshot` finds it later, see `_match_unanswered`)."""
        time_in_force = primary_time_in_force(request.time_in_force)
        order_type = request.type.upper()
        if self.on_socket:
            submitted = await self._submit_ws(request, client_order_id, order_type, time_in_force)
            if submitted is not None:
                return submitted
        sent = self.clock.time()
        try:
            order_id = await self._place_rest(
                symbol=request.symbol,
                side=request.side.value,
                order_type=order_type,
                qty=request.qty,
                price=request.price,
                time_in_force=time_in_force,
            )
        except NotSent:
            raise  # never reached Primary: nothing to look for
        except TransportError:
            # newSingleOrder takes no client id: the order, if it was booked, is found by its terms.
            self._remember_unanswered(client_order_id, request, sent, via="rest")
            raise
        self.session.orders.name(order_id, client_order_id)
        return Submitted(order_id=order_id, via="rest")

    async def _submit_ws(
        self, request: OrderRequest, client_order_id: str, order_type: str, time_in_force: str
    ) -> Submitted | None:
        """The order over the socket; None when the socket went down before it was queued."""
        key = ("new", client_order_id)
        if key in self._awaited:
            raise InvalidRequest(
                f"order {client_order_id} is being submitted already",
                venue=VENUE,
                remedy="wait for the first submit's answer (the same id is never sent twice)",
            )
        sent = self.clock.time()
        try:
            self.session.send_order(
                symbol=request.symbol,
                side=request.side.value,
                quantity=request.qty,
                account=self._trading_account(),
                price=request.price,
                order_type=order_type,
                time_in_force=time_in_force,
                ws_client_order_id=client_order_id,
            )
        except ValueError as exc:
            raise InvalidRequest(str(exc), venue=VENUE) from None
        except RuntimeError:
            return None
        answer = await self._answer(key, f"order {client_order_id}")
        if answer is None:
            self._remember_unanswered(client_order_id, request, sent, via="ws")
            raise TransportError(
                f"no report on the WebSocket for order {client_order_id} ({request.side.value} "
                f"{request.qty} {request.symbol}) within {self.ws_answer_timeout:g} s",
                remedy="the order may or may not be live: it is looked for in the venue's orders "
                "(rest/order/all); do not send it again under another client order id",
            )
        if answer.error is not None:
            raise answer.error
        if answer.status == "rejected":
            raise OrderRejected(
                f"{VENUE}: order {client_order_id} rejected: {answer.reason or 'no reason given'}",
                venue=VENUE,
                code=answer.reason or "REJECTED",
            )
        assert answer.order_id is not None
        return Submitted(order_id=answer.order_id, via="ws")

    async def _answer(self, key: tuple[str, str], what: str) -> OrderAnswered | None:
        """Send what the session queued and wait for its `OrderAnswered` (None: none in time)."""
        future = self._awaited.get(key)
        if future is None:  # (a second cancel of the same order waits for the first one's answer)
            future = self._awaited[key] = asyncio.get_running_loop().create_future()
        self.stream.notify()
        try:
            return await within(self.clock, self.ws_answer_timeout, asyncio.shield(future))
        except TimeoutError:
            logger.warning("primary: %s: no answer on the WebSocket in %g s", what, self.ws_answer_timeout)
            return None
        finally:
            if self._awaited.get(key) is future:
                del self._awaited[key]

    def answered(self, answer: OrderAnswered) -> None:
        """The session's `OrderAnswered`: wake whoever waits for it (a late one is kept for
        replace, whose REST answer may come after its report)."""
        if answer.kind == "replace":
            self._replace_answers[answer.request] = answer
            while len(self._replace_answers) > 1_000:
                self._replace_answers.popitem(last=False)
        future = self._awaited.pop((answer.kind, answer.request), None)
        if future is not None and not future.done():
            future.set_result(answer)

    async def cancel(self, order_id: str) -> Canceled:
        """`co` on the socket when `on_socket` (answered by the cancel request's report:
        CANCELLED → 1, REJECTED "not active" → 0), else `order/cancelById`. Both name the order's
        live request (its newest replace)."""
        if not self.on_socket:
            return Canceled(count=await self.cancel_order(order_id), via="rest")
        key = ("cancel", order_id)
        if key not in self._awaited:
            proprietary = await self._booked_proprietary(order_id)
            try:
                self.session.cancel_order(
                    self.session.orders.live_request(order_id), proprietary, order_id=order_id
                )
            except RuntimeError:
                return Canceled(count=await self.cancel_order(order_id), via="rest")
        answer = await self._answer(key, f"cancel of {order_id}")
        if answer is None:
            raise TransportError(
                f"no report on the WebSocket for the cancel of order {order_id} "
                f"within {self.ws_answer_timeout:g} s",
                remedy="the order may or may not be canceled: cancel it again (a cancel of an order "
                "no longer open answers 0) or watch executions",
            )
        if answer.error is not None:
            raise answer.error
        return Canceled(count=1 if answer.status == "canceled" else 0, via="ws")

    async def amend_order(self, order_id: str, *, qty: Decimal | None, price: Decimal | None) -> Submitted:
        """Primary's replace (`order/replaceById`: clOrdId, proprietary, orderQty, price — both
        always sent; Primary has no replace on the socket): a new request that carries the filled
        quantity over. The order keeps its id (see above); its live request becomes the new one.
        A replace the venue rejects raises OrderRejected when its report comes in time (socket
        up) or REST says so right after (socket down)."""
        if qty is None and price is None:
            raise InvalidRequest(
                f"amending order {order_id}: nothing to change", venue=VENUE, remedy="give qty and/or price"
            )
        proprietary = await self._booked_proprietary(order_id)  # also learns its live request
        request_id = self.session.orders.live_request(order_id)
        terms = self.session.orders.terms(order_id)
        if terms is None or (qty is None and terms[0] is None) or (price is None and terms[1] is None):
            current = await self.rest.call(codec.order_status_request(request_id, proprietary))
            terms = (current.order.orderQty, current.order.price)
        new_qty = qty if qty is not None else terms[0]
        new_price = price if price is not None else terms[1]
        if new_qty is None or new_price is None:
            raise InvalidRequest(
                f"amending order {order_id}: Primary replaces limit orders only (quantity and price)",
                venue=VENUE,
                remedy="cancel the order and place a new one",
            )
        try:
            response = await self.rest.call(
                codec.replace_order_request(request_id, proprietary, quantity=new_qty, price=new_price)
            )
        except TransportError as exc:
            raise TransportError(
                f"replaceById {order_id}: no answer ({exc.message})",
                remedy="the replace may or may not have happened: watch the order on executions before "
                "amending again",
            ) from exc
        replacement = str(response.order.clientId)
        self.session.orders.replaced(order_id, replacement)
        answer = self._replace_answers.pop(replacement, None)
        if answer is None and self.on_socket:
            answer = await self._answer(("replace", replacement), f"replace of {order_id}")
        elif answer is None:
            answer = await self._replace_status(replacement, proprietary)
        if answer is not None and answer.status == "rejected":
            self.session.orders.replaced(order_id, request_id)  # the old request is still the live one
            raise OrderRejected(
                f"{VENUE}: amending order {order_id} rejected: {answer.reason or 'no reason given'}",
                venue=VENUE,
                code=answer.reason or "REJECTED",
            )
        return Submitted(order_id=order_id, via="rest")

    async def _replace_status(self, replacement: str, proprietary: str) -> OrderAnswered | None:
        """The replace request's state from REST (socket down); None when REST cannot say."""
        try:
            response = await self.rest.call(codec.order_status_request(replacement, proprietary))
        except BrokerBridgeError as exc:
            logger.warning("primary: state of replace %s unknown: %s", replacement, exc)
            return None
        report = response.order
        return OrderAnswered(
            replacement,
            "replace",
            status=norm.parse_status(report.status),
            reason=(report.text or "").strip(),
        )

    # -- submits no answer came to ------------------------------------------------------------
    def _remember_unanswered(
        self, client_order_id: str, request: OrderRequest, sent: float, *, via: Via
    ) -> None:
        self._unanswered[client_order_id] = _Unanswered(request=request, sent=sent, via=via)
        while len(self._unanswered) > MAX_UNANSWERED:
            self._unanswered.popitem(last=False)

    async def snapshot(self) -> list[AnyEvent]:
        """Every order of the account today (`order/all`), as updates and fills not yet reported;
        orders of submits no answer came to carry their client order id (`_match_unanswered`)."""
        events = await self._read_orders()
        if self._unanswered:
            events = await self._match_unanswered(events)
        return events

    async def _match_unanswered(self, events: list[AnyEvent]) -> list[AnyEvent]:
        """Find the orders of submits that got no answer among `order/all`'s.

        Neither way names the order by our id in `order/all`: newSingleOrder takes no client id,
        and `wsClOrdId` is in a WS order's first report only (PENDING_NEW or REJECTED) while
        `order/all` gives each request's latest. Candidates are orders not tied to a caller's id,
        with the submit's symbol, side, quantity and limit price, stamped no earlier than it was
        sent (minus clock skew); their histories (`order/allById`, first report included) decide:
        for a WS submit the one whose `wsClOrdId` is ours, else — when no candidate's history
        shows any `wsClOrdId` (a venue that does not keep it) — the oldest candidate; for a REST
        submit the oldest candidate with no `wsClOrdId`. Matched orders' updates and fills carry
        the client order id from then on (so the Bridge's journal matches them by it)."""
        now = self.clock.time()
        for client_id, pending in list(self._unanswered.items()):
            if now - pending.sent > UNANSWERED_KEPT_S:
                del self._unanswered[client_id]
                continue
            found = self.session.orders.order_of_caller(client_id)
            if found is None:
                found = await self._find_unanswered(client_id, pending, events)
            if found is not None:
                del self._unanswered[client_id]
                self.session.orders.name(found, client_id)
                logger.info("primary: unanswered order %s found at the venue as %s", client_id, found)
        return [_named(event, self.session.orders.caller_id(_order_of(event))) for event in events]

    async def _find_unanswered(
        self, client_id: str, pending: _Unanswered, events: list[AnyEvent]
    ) -> str | None:
        request = pending.request
        candidates = sorted(
            {
                (e.ts, e.order_id)
                for e in events
                if isinstance(e, OrderUpdate)
                and self.session.orders.caller_id(e.order_id) is None
                and e.symbol == request.symbol
                and e.side == request.side
                and e.qty == request.qty
                and (request.price is None or e.limit_price == request.price)
                and e.ts >= pending.sent - CLOCK_SKEW_S
            }
        )
        unmarked: list[str] = []  # candidates whose history shows no wsClOrdId
        marked = False
        for _, order_id in candidates[:MAX_HISTORY_READS]:
            try:
                history = await self.rest.call(
                    codec.order_history_request(order_id, self._proprietary_of(order_id))
                )
            except BrokerBridgeError as exc:
                logger.warning("primary: history of order %s unreadable: %s", order_id, exc)
                return None  # decide on a complete read only (the next one)
            ws_ids = {report.wsClOrdId for report in history.orders if report.wsClOrdId}
            if pending.via == "ws" and client_id in ws_ids:
                return order_id
            marked = marked or bool(ws_ids)
            if not ws_ids:
                unmarked.append(order_id)
        if unmarked and (pending.via == "rest" or not marked):
            return unmarked[0]
        return None
