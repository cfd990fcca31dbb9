"""`OrderService`: the Bridge's order path — write-ahead, idempotent by client order id, no lost cancel.

Every order has a client order id (the caller's, or one minted here). Before the venue sees it:

1. the venue's local checks (`Connector.check_order`: tick, lot, minimums…) — refused, nothing is
   written and nothing sent;
2. the venue's rate model (`Connector.admit`: room on its order rate counter, waiting for it on
   the clock) — refused, nothing is written and nothing sent; while the order waits, a retry with
   its id waits for its outcome;
3. a row in the on-disk journal (`JournalStore.add_order`, state `sending`), committed with
   synchronous=FULL — the row, not the venue's answer, is what makes the id used. A process that
   dies (a cluster holder that loses its lease) before it leaves no row: the retry is placed.

The answer decides the row: `accepted` (the venue's id), `rejected` (the venue's error, kept to be
raised again), or `unknown` (no answer: `TransportError`, an answer we could not read, a venue that
said it was unavailable mid-call). An order refused before anything of it was written is *not
sent* — `NotSent`: the transports' `barred` check right before the order goes to the connector (a
cluster holder whose lease lapsed), a guarded transport's refusal, a connection that could not be
opened: its row goes (`JournalStore.release_order`), so the id is free and a retry with it is
placed once (here, or on the cluster's next holder, which drops the UNKNOWN placeholder it may have
restored for it), and the caller gets `NotSent` saying why, never a venue's rejection. A send that
may have written anything stays UNKNOWN. An unknown order is published as an `OrderUpdate` with status
`unknown` and followed by `UnknownOrders` until the venue's orders decide it; the decision is written
back to the row. A process killed between send and answer leaves the row `sending`: the next start
publishes it as `unknown` and follows it the same way.

The same client order id again never sends a second order: with the same arguments it answers the
row's outcome with `duplicate=True` (while the first attempt is under way, a retry waits for its
outcome; an id the venue refused raises the same refusal); with other arguments it is
`OrderConflict`. The send runs in the service's task group, so a caller that gives up waiting (a
dropped HTTP client) does not abandon the order half-sent.

Cancels are journaled before they are sent (`order_ops`). One whose answer never came is carried on
in the background — retried with backoff until the venue answers or the order is seen closed — and
so is a cancel of an order whose own submit is still unknown (named by client order id): it is sent
once the venue's orders show the order. A restart carries on the cancels left pending.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import msgspec

from brokerbridge.core.backoff import BackoffPolicy
from brokerbridge.core.clock import Clock
from brokerbridge.core.errors import (
    BrokerBridgeError,
    ConfigError,
    Fenced,
    InternalError,
    InvalidRequest,
    NotSent,
    OrderConflict,
    ProtocolError,
    RateLimited,
    ServiceUnavailable,
    TransportError,
    UnknownOrder,
    UnknownVenue,
    error_from_wire,
    wire_error_of,
)
from brokerbridge.core.events import AnyEvent, Fill, OrderUpdate
from brokerbridge.core.orders import (
    AmendRequest,
    CancelAck,
    FillsPage,
    OrderAck,
    OrderRequest,
    mint_client_order_id,
    valid_client_order_id,
)
from brokerbridge.io.connector import Connector
from brokerbridge.io.journal_store import (
    UNDECIDED,
    JournalError,
    JournalStore,
    OrderOp,
    OrderRow,
    StoredError,
)
from brokerbridge.io.transports import Barred, never_barred
from brokerbridge.services.executions import FINAL, ExecutionJournal, Settled
from brokerbridge.services.unknown_orders import UnknownOrders

logger = logging.getLogger(__name__)

# A cancel that got no answer is sent again after these delays (bridge clock), for as long as it
# takes: the venue answers, or the order is seen closed. The same delays pace the wait for an
# unknown order's fate before its cancel can go out.
CANCEL_BACKOFF = BackoffPolicy(initial=0.5, factor=2.0, cap=10.0, immediate_attempts=0)
MAX_FILLS_PAGE = 5_000
# Row states that end an order's life: the venue's words for them (a `resolved` update names an
# unknown submit's placeholder, never a journaled order's venue id).
_FINAL = FINAL - {"resolved"}


@dataclass(frozen=True, slots=True)
class OrderVenue:
    """What the service needs of one venue: its connector, the executions journal the Bridge keeps
    from its events, and the account scope the on-disk journal keys it by."""

    connector: Connector
    journal: ExecutionJournal
    scope: str


# What a send ends in: the ack, or the error the caller gets (returned, not raised: the send runs
# in the service's task group, which an exception would tear down).
_Outcome = OrderAck | BrokerBridgeError


class OrderService:
    def __init__(
        self,
        *,
        clock: Clock,
        publish: Callable[[AnyEvent], None],
        unknown: UnknownOrders,
        cancel_backoff: BackoffPolicy = CANCEL_BACKOFF,
        rng: random.Random | None = None,
        barred: Barred = never_barred,
    ) -> None:
        """`barred`: why this node may not reach the venues now (`Transports.barred`: a cluster
        holder whose lease lapsed), asked right before each order goes to its connector."""
        self._clock = clock
        self._barred = barred
        # Every event goes out through here (the Bridge's event path: journal, then consumers).
        self._publish = publish
        self._unknown = unknown
        unknown.listener = self
        self.cancel_backoff = cancel_backoff
        self._rng = rng or random.Random()
        self._venues: dict[str, OrderVenue] = {}
        self._store: JournalStore | None = None
        # Sends under way: (venue, client order id) → the request and the task a retry waits on.
        self._attempts: dict[tuple[str, str], tuple[OrderRequest, asyncio.Task[_Outcome]]] = {}
        # venue → the venue's id → client order id, of journaled orders not yet seen closed.
        self._owned: dict[str, dict[str, str]] = {}
        self._driving: set[int] = set()  # pending cancels carried on in the background (op ids)
        # The task group sends and cancel retries run in, while the Bridge runs.
        self.tasks: asyncio.TaskGroup | None = None

    # -- lifetime ----------------------------------------------------------------------------
    def add_venue(self, venue: OrderVenue, store: JournalStore) -> None:
        """Take on `venue`: orders an earlier process left undecided (killed between send and
        answer) are published as `unknown`, to be followed once the service `start`s."""
        self._store = store
        name = venue.connector.venue
        self._venues[name] = venue
        owned = self._owned.setdefault(name, {})
        for row in store.orders_in(name, venue.scope, ("accepted",)):
            if row.order_id is not None:
                owned[row.order_id] = row.client_order_id
        for row in store.orders_in(name, venue.scope, UNDECIDED):
            reason = "the bridge stopped before the venue answered the submit"
            if row.state == "unknown" and row.error is not None:
                reason = row.error.message
            if row.state != "unknown":  # one durable write per row that still says `sending`
                self._record(name, row.client_order_id, state="unknown")
            self._publish_unknown(venue, row.request, ts=row.created, reason=reason)
        undecided = len(venue.journal.unknown_orders())
        if undecided:
            logger.warning("%s: %d orders with an unknown outcome from before the restart", name, undecided)

    def start(self, tasks: asyncio.TaskGroup) -> None:
        """The Bridge runs: follow the unknown orders and carry on the pending cancels."""
        self.tasks = tasks
        store = self._store
        for name, venue in self._venues.items():
            if venue.journal.unknown_orders():
                self._unknown.follow(name, venue.journal, venue.connector)
            if store is not None:
                for op in store.ops(name, venue.scope, "cancel"):
                    self._carry_on(venue, op)

    def stop(self) -> None:
        self.tasks = None

    async def _running(self) -> asyncio.TaskGroup:
        """The task group sends run in. Right after `async with Bridge(...)` entered, its runner
        has not had a turn of the loop yet: give it one."""
        if self.tasks is None:
            await asyncio.sleep(0)
        if self.tasks is None:
            raise ServiceUnavailable(
                "the Bridge is not running: no order can be sent",
                remedy="place orders inside `async with Bridge(...)`",
            )
        return self.tasks

    def _venue(self, name: str) -> OrderVenue:
        try:
            return self._venues[name]
        except KeyError:
            raise UnknownVenue(
                f"unknown venue {name!r}", venue=name, remedy=f"venues: {', '.join(sorted(self._venues))}"
            ) from None

    def _journal(self) -> JournalStore:
        if self._store is None:
            raise ServiceUnavailable(
                "the order journal is not open (the Bridge is not running)",
                remedy="use the Bridge inside `async with Bridge(...)`",
            )
        return self._store

    # -- place -------------------------------------------------------------------------------
    async def place(self, request: OrderRequest) -> OrderAck:
        venue = self._venue(request.venue)
        store = self._journal()
        client_order_id = request.client_order_id or mint_client_order_id()
        if not valid_client_order_id(client_order_id):
            raise InvalidRequest(
                f"client_order_id {client_order_id!r} is not valid",
                venue=request.venue,
                remedy="use up to 18 letters, digits, '-' or '_', or a UUID",
            )
        request = msgspec.structs.replace(request, client_order_id=client_order_id)
        tasks = await self._running()
        for checked in (False, True):
            earlier = self._earlier(venue, request)
            if isinstance(earlier, OrderRow):
                return self._answer_again(earlier)
            if earlier is not None:  # under way: wait for its outcome
                return _again(await asyncio.shield(earlier))
            if not checked:
                # The venue's rules, before anything is written (and again the earlier attempts
                # after: a retry may have come in while this awaited).
                await venue.connector.check_order(request)
        self._drop_unsent_placeholder(venue, client_order_id)
        attempt = tasks.create_task(
            self._send(venue, request, store), name=f"{request.venue}-place-{client_order_id}"
        )
        self._attempts[(request.venue, client_order_id)] = (request, attempt)
        outcome = await asyncio.shield(attempt)
        if isinstance(outcome, BrokerBridgeError):
            raise outcome
        return outcome

    def _earlier(self, venue: OrderVenue, request: OrderRequest) -> OrderRow | asyncio.Task[_Outcome] | None:
        """The earlier attempt with this client order id (a send under way, or its journal row);
        `OrderConflict` if it was for another order."""
        assert request.client_order_id is not None
        under_way = self._attempts.get((request.venue, request.client_order_id))
        if under_way is not None:
            _check_same(under_way[0], request)
            return under_way[1]
        row = self._journal().order(request.venue, venue.scope, request.client_order_id)
        if row is not None:
            _check_same(row.request, request)
        return row

    def _answer_again(self, row: OrderRow) -> OrderAck:
        """The outcome of the order journaled as `row`, for a retry: nothing is sent."""
        now = self._clock.time()
        if row.state == "rejected":
            error = row.error or StoredError(code="order_rejected", message="the venue refused the order")
            raise error_from_wire(error.code, error.message, error.remedy, venue=row.venue)
        if row.state in UNDECIDED:
            return OrderAck(
                venue=row.venue,
                client_order_id=row.client_order_id,
                order_id=None,
                status="unknown",
                duplicate=True,
                ts=now,
                reason="the first submit's outcome is still unknown: it is being looked up at the venue",
            )
        return OrderAck(
            venue=row.venue,
            client_order_id=row.client_order_id,
            order_id=row.order_id,
            status="accepted",
            duplicate=True,
            ts=now,
        )

    async def _send(self, venue: OrderVenue, request: OrderRequest, store: JournalStore) -> _Outcome:
        name, client_order_id = request.venue, request.client_order_id
        assert client_order_id is not None
        try:
            # The rate model first, with nothing written yet: an order that waits for room (seconds,
            # on a busy pair) and is then refused, or whose process dies or whose holder loses its
            # lease meanwhile, leaves no row — its id is free for the retry, not UNKNOWN for a minute
            # (a SIGKILLed holder's waiting orders were most of the cluster chaos's unknown orders).
            # A retry meanwhile waits on this task (`_attempts`), so the id stays this order's.
            try:
                await venue.connector.admit("add", request.symbol)
            except BrokerBridgeError as exc:  # nothing written, nothing sent
                return exc
            except Exception as exc:  # a bug in the rate model: nothing went out either
                logger.exception("%s: admitting order %s failed (a bug)", name, client_order_id)
                return InternalError(f"admitting order {client_order_id} failed: {exc!r}")
            # Write-ahead: on disk before the venue sees the order (JournalError, or `Fenced` on a
            # cluster holder whose lease is gone: nothing is sent).
            try:
                if not store.add_order(venue.scope, request, ts=self._clock.time()):
                    return self._journaled_meanwhile(venue, request)
            except BrokerBridgeError as exc:
                return exc
            # The last word before the connector: a holder whose lease lapsed (while the order
            # waited for room, or for the journal) sends nothing, on any path (REST or socket).
            refusal = self._barred()
            if refusal is not None:
                return self._not_sent(venue, request, refusal)
            try:
                submitted = await venue.connector.submit_order(request, client_order_id)
            except NotSent as exc:  # refused before a byte was written: it never reached the venue
                return self._not_sent(venue, request, exc.message)
            except (TransportError, ProtocolError, ServiceUnavailable) as exc:
                # No answer, or none we could read, or "unavailable" mid-call: it may be live.
                return self._went_unknown(venue, request, f"submit unanswered: {exc.message}")
            except RateLimited as exc:
                self._forget(name, venue.scope, client_order_id)  # the venue turned it away unbooked
                return exc
            except ConfigError as exc:  # refused before anything was sent (e.g. no account)
                self._forget(name, venue.scope, client_order_id)
                return exc
            except BrokerBridgeError as exc:  # the venue refused it: the same refusal to every retry
                self._record(name, client_order_id, state="rejected", error=_stored(exc))
                return exc
            except asyncio.CancelledError:  # the Bridge stops: the next start follows the row
                self._went_unknown(
                    venue, request, "the bridge stopped before the venue answered", follow=False
                )
                raise
            except Exception as exc:  # our bug, after the order may have gone out
                logger.exception("%s: submitting order %s failed (a bug)", name, client_order_id)
                return self._went_unknown(venue, request, f"submit failed: {exc!r}")
            order_id = submitted.order_id
            # A market order may have filled (on the stream) before its REST answer came back.
            closed = venue.journal.orders.get(order_id) if venue.journal.closed(order_id) else None
            state = "accepted" if closed is None else closed.status
            self._record(name, client_order_id, state=state, order_id=order_id, via=submitted.via)
            if closed is None:
                self._owned.setdefault(name, {})[order_id] = client_order_id
            return OrderAck(
                venue=name,
                client_order_id=client_order_id,
                order_id=submitted.order_id,
                status="accepted",
                via=submitted.via,
                ts=self._clock.time(),
            )
        finally:
            self._attempts.pop((name, client_order_id), None)

    def _journaled_meanwhile(self, venue: OrderVenue, request: OrderRequest) -> _Outcome:
        """Another writer journaled this client order id while the order waited for room (no
        process of ours sends it twice; a journal shared another way): its row answers."""
        assert request.client_order_id is not None
        row = self._journal().order(request.venue, venue.scope, request.client_order_id)
        if row is None:
            return InternalError(f"order {request.client_order_id}: its journal row came and went")
        try:
            _check_same(row.request, request)
            return self._answer_again(row)
        except BrokerBridgeError as exc:
            return exc

    def _not_sent(self, venue: OrderVenue, request: OrderRequest, why: str) -> NotSent:
        """The order was refused before anything of it was written: its row goes (the id is free
        for the retry) and the caller hears what happened and what to do — not a venue's refusal."""
        name, client_order_id = request.venue, request.client_order_id
        assert client_order_id is not None
        self._forget(name, venue.scope, client_order_id)
        logger.warning("%s: order %s not sent: %s", name, client_order_id, why)
        return NotSent(
            f"order {client_order_id} was not sent to {name}: {why}; nothing reached the venue",
            venue=name,
            remedy=f"send it again with the same client order id ({client_order_id}): it is placed once, "
            "by this node or by the node that holds the venue now",
        )

    def _drop_unsent_placeholder(self, venue: OrderVenue, client_order_id: str) -> None:
        """A free id with an UNKNOWN placeholder still followed for it: this process restored the
        row undecided (a cluster's earlier holder, or an earlier run) and its sender has released
        it since, knowing it never sent it. The placeholder is decided now (not at the venue), so
        the retry about to be placed is the order's one life on `executions`."""
        update = venue.journal.drop_unknown(
            client_order_id,
            ts=self._clock.time(),
            reason="not sent: it was refused before anything reached the venue (its client order id "
            "was freed by the node that refused it); placed again now",
        )
        if update is not None:
            logger.info("%s: order %s was unknown: not sent; placed again now", update.venue, client_order_id)
            self._publish(update)

    def _went_unknown(
        self, venue: OrderVenue, request: OrderRequest, reason: str, *, follow: bool = True
    ) -> OrderAck:
        assert request.client_order_id is not None
        now = self._clock.time()
        self._record(
            request.venue,
            request.client_order_id,
            state="unknown",
            error=StoredError(code="unknown", message=reason),
        )
        self._publish_unknown(venue, request, ts=now, reason=reason)
        if follow:
            self._unknown.follow(request.venue, venue.journal, venue.connector)
        return OrderAck(
            venue=request.venue,
            client_order_id=request.client_order_id,
            order_id=None,
            status="unknown",
            ts=now,
            reason=reason,
        )

    def _publish_unknown(self, venue: OrderVenue, request: OrderRequest, *, ts: float, reason: str) -> None:
        self._publish(
            venue.journal.record_unknown(
                venue=request.venue,
                ts=ts,
                symbol=request.symbol,
                side=request.side,
                order_type=request.type,
                qty=request.qty,
                limit_price=request.price,
                client_order_id=request.client_order_id,
                reason=reason,
                venue_echoes_client_id=venue.connector.echoes_client_order_id,
            )
        )

    # -- what the venue's orders decide (UnknownOrders, the event path) ------------------------
    def taken(self, venue: str) -> frozenset[str]:
        return frozenset(self._owned.get(venue, {}))

    def settled(self, venue: str, settled: Settled) -> None:
        client_order_id = settled.update.client_order_id
        state = self._venues.get(venue)
        if client_order_id is None or state is None:
            return  # not an order of this service's (every one it sends has a client order id)
        if not self._undecided(venue, state.scope, client_order_id):
            return  # the row was released (never sent) and perhaps placed again: not this decision's
        if settled.order_id is None:
            self._record(
                venue,
                client_order_id,
                state="rejected",
                error=StoredError(
                    code="order_rejected",
                    message=f"order {client_order_id} never reached {venue}: it was not among the venue's "
                    "orders long after it was sent; nothing was placed",
                    remedy="place it again under a new client order id",
                ),
            )
            return
        known = state.journal.orders.get(settled.order_id)
        closed = known is not None and state.journal.closed(settled.order_id)
        row_state = known.status if closed and known is not None else "accepted"
        self._record(venue, client_order_id, state=row_state, order_id=settled.order_id)
        if not closed:
            self._owned.setdefault(venue, {})[settled.order_id] = client_order_id

    def _undecided(self, venue: str, scope: str, client_order_id: str) -> bool:
        """Whether the journal row of `client_order_id` still waits for the venue's orders to
        decide it (no send of it under way)."""
        if self._store is None or (venue, client_order_id) in self._attempts:
            return False
        try:
            row = self._store.order(venue, scope, client_order_id)
        except JournalError as exc:
            logger.error("%s: %s", venue, exc)
            return True  # as before the check: the decision is written (or its write fails, logged)
        return row is not None and row.state in UNDECIDED

    def observe(self, update: OrderUpdate) -> None:
        """An order update reached consumers: a journaled order that ended has its row say so."""
        if update.status not in _FINAL:
            return
        client_order_id = self._owned.get(update.venue, {}).pop(update.order_id, None)
        if client_order_id is not None:
            self._record(update.venue, client_order_id, state=update.status)

    def _record(
        self,
        venue: str,
        client_order_id: str,
        *,
        state: str,
        order_id: str | None = None,
        via: str | None = None,
        error: StoredError | None = None,
    ) -> None:
        """Write an outcome to the order's row. A failed write is logged, not raised: the order is
        out, and its caller must still hear how it went (the row then says less than we know)."""
        store, scope = self._store, self._venues[venue].scope
        if store is None:
            return
        try:
            store.update_order(
                venue,
                scope,
                client_order_id,
                state=state,
                ts=self._clock.time(),
                order_id=order_id,
                via=via,
                error=error,
            )
        except JournalError as exc:
            logger.error("%s: %s", venue, exc)

    def _forget(self, venue: str, scope: str, client_order_id: str) -> None:
        """Free the id of an order that never went out (`release_order`: its own row only, while
        undecided — also by a cluster holder whose lease is gone)."""
        if self._store is not None:
            try:
                self._store.release_order(venue, scope, client_order_id)
            except JournalError as exc:
                logger.error("%s: %s", venue, exc)

    # -- cancel ------------------------------------------------------------------------------
    async def cancel(
        self, venue_name: str, order_id: str | None = None, *, client_order_id: str | None = None
    ) -> CancelAck:
        venue = self._venue(venue_name)
        store = self._journal()
        await self._running()
        order_id, client_order_id, row = self._target(venue, order_id, client_order_id)
        now = self._clock.time()
        op_id = store.add_op(
            venue_name, venue.scope, "cancel", order_id=order_id, client_order_id=client_order_id, ts=now
        )
        if order_id is None:
            assert client_order_id is not None
            why = "the order's submit is still unanswered: it is canceled once the venue's orders show it"
            self._carry_on(venue, _op(op_id, venue, None, client_order_id, now))
            return self._pending(venue_name, client_order_id, client_order_id, why)
        symbol = row.request.symbol if row is not None else self._symbol(venue, order_id)
        try:
            await venue.connector.admit("cancel", symbol, order_id)
            canceled = await venue.connector.cancel(order_id)
        except BrokerBridgeError as exc:
            if not exc.retryable:
                store.update_op(op_id, state="failed", ts=self._clock.time(), error=_stored(exc))
                raise
            self._carry_on(venue, _op(op_id, venue, order_id, client_order_id, now))
            return self._pending(venue_name, order_id, client_order_id, f"cancel unanswered: {exc.message}")
        except asyncio.CancelledError:
            self._carry_on(venue, _op(op_id, venue, order_id, client_order_id, now))
            raise
        store.update_op(op_id, state="done", ts=self._clock.time())
        return CancelAck(
            venue=venue_name,
            order_id=order_id,
            client_order_id=client_order_id,
            canceled=canceled.count,
            via=canceled.via,
            ts=self._clock.time(),
        )

    def _target(
        self, venue: OrderVenue, order_id: str | None, client_order_id: str | None
    ) -> tuple[str | None, str | None, OrderRow | None]:
        """The order a cancel or an amend names: (the venue's id — None while its submit is
        unanswered —, the client order id, its journal row)."""
        name = venue.connector.venue
        if (order_id is None) == (client_order_id is None):
            raise InvalidRequest(
                "name the order by its order_id or by its client_order_id (one of the two)", venue=name
            )
        store = self._journal()
        if order_id is not None:
            row = store.order_by_venue_id(name, venue.scope, order_id)
            return order_id, None if row is None else row.client_order_id, row
        assert client_order_id is not None
        row = store.order(name, venue.scope, client_order_id)
        if row is None:
            raise UnknownOrder(
                f"no order with client order id {client_order_id!r} was placed on {name} through this bridge",
                venue=name,
                remedy="check the id, or name the order by the venue's order_id",
            )
        if row.state == "rejected":
            why = row.error.message if row.error is not None else "the venue refused it"
            raise UnknownOrder(f"order {client_order_id} was never placed: {why}", venue=name)
        return row.order_id, client_order_id, row

    def _symbol(self, venue: OrderVenue, order_id: str) -> str:
        known = venue.journal.orders.get(order_id)
        return (known.symbol if known is not None else None) or ""

    def _pending(self, venue: str, order_id: str, client_order_id: str | None, reason: str) -> CancelAck:
        return CancelAck(
            venue=venue,
            order_id=order_id,
            client_order_id=client_order_id,
            canceled=0,
            ts=self._clock.time(),
            status="pending",
            reason=reason,
        )

    def _carry_on(self, venue: OrderVenue, op: OrderOp) -> None:
        """Carry cancel `op` on in the background (once per op)."""
        tasks = self.tasks
        if tasks is None or op.id in self._driving:
            return  # `start` picks it up from the journal
        try:
            tasks.create_task(self._cancel_until_done(venue, op), name=f"{op.venue}-cancel-{op.id}")
        except RuntimeError:  # the Bridge is stopping: the next start carries it on
            return
        self._driving.add(op.id)

    async def _cancel_until_done(self, venue: OrderVenue, op: OrderOp) -> None:
        """Send cancel `op` until the venue answers it, or the order is seen closed, or the order
        turns out never to have been placed."""
        name, store = venue.connector.venue, self._journal()
        delays = self.cancel_backoff.delays(self._rng)
        order_id = op.order_id
        what = order_id or op.client_order_id
        try:
            while True:
                await self._clock.sleep(next(delays))
                if order_id is None:
                    assert op.client_order_id is not None
                    row = store.order(name, venue.scope, op.client_order_id)
                    if row is None or row.state == "rejected":
                        logger.info("%s: order %s was never placed: nothing to cancel", name, what)
                        store.update_op(op.id, state="done", ts=self._clock.time())
                        return
                    if row.order_id is None:
                        continue  # its submit is still undecided
                    order_id = row.order_id
                if venue.journal.closed(order_id):
                    store.update_op(op.id, state="done", ts=self._clock.time(), order_id=order_id)
                    return
                try:
                    await venue.connector.admit("cancel", self._symbol(venue, order_id), order_id)
                    canceled = await venue.connector.cancel(order_id)
                except UnknownOrder:  # closed already (perhaps by the cancel whose answer was lost)
                    store.update_op(op.id, state="done", ts=self._clock.time(), order_id=order_id)
                    return
                except BrokerBridgeError as exc:
                    if exc.retryable:
                        logger.warning("%s: cancel of order %s unanswered again (%s)", name, what, exc)
                        continue
                    logger.error("%s: cancel of order %s refused for good: %s", name, what, exc)
                    store.update_op(op.id, state="failed", ts=self._clock.time(), error=_stored(exc))
                    return
                logger.info("%s: cancel of order %s done (%d canceled)", name, order_id, canceled.count)
                store.update_op(op.id, state="done", ts=self._clock.time(), order_id=order_id)
                return
        except JournalError as exc:
            logger.error("%s: %s", name, exc)
        except Fenced as exc:  # a cluster holder that lost its lease: the new holder carries it on
            logger.warning("%s: cancel of order %s left to the venue's new holder: %s", name, what, exc)
        except Exception:  # a bug here must not take the bridge down with it
            logger.exception("%s: carrying on the cancel of order %s failed (a bug)", name, what)
        finally:
            self._driving.discard(op.id)

    # -- amend -------------------------------------------------------------------------------
    async def amend(self, request: AmendRequest) -> OrderAck:
        venue = self._venue(request.venue)
        store = self._journal()
        if request.qty is None and request.price is None:
            raise InvalidRequest("amend changes qty, price or both: give at least one", venue=request.venue)
        await self._running()
        order_id, client_order_id, row = self._target(venue, request.order_id, request.client_order_id)
        if order_id is None:
            raise ServiceUnavailable(
                f"order {client_order_id}'s submit is still unanswered: it has no venue id to amend yet",
                venue=request.venue,
                remedy="amend it once `executions` shows it resolved, or cancel it by client order id",
            )
        now = self._clock.time()
        op_id = store.add_op(
            request.venue,
            venue.scope,
            "amend",
            order_id=order_id,
            client_order_id=client_order_id,
            ts=now,
            qty=request.qty,
            price=request.price,
        )
        symbol = row.request.symbol if row is not None else self._symbol(venue, order_id)
        try:
            await venue.connector.admit("amend", symbol, order_id)
            submitted = await venue.connector.amend_order(order_id, qty=request.qty, price=request.price)
        except TransportError as exc:
            store.update_op(op_id, state="unknown", ts=self._clock.time(), error=_stored(exc, "no_answer"))
            return OrderAck(
                venue=request.venue,
                client_order_id=client_order_id or "",
                order_id=order_id,
                status="unknown",
                ts=self._clock.time(),
                reason=f"amend unanswered: {exc.message}; the order's updates on executions tell",
            )
        except BrokerBridgeError as exc:
            store.update_op(op_id, state="failed", ts=self._clock.time(), error=_stored(exc))
            raise
        store.update_op(op_id, state="done", ts=self._clock.time(), order_id=submitted.order_id)
        if client_order_id is not None and submitted.order_id != order_id:
            # The venue gave the order a new id (Primary's replace): cancels go to that one now.
            self._record(request.venue, client_order_id, state="accepted", order_id=submitted.order_id)
            owned = self._owned.setdefault(request.venue, {})
            owned.pop(order_id, None)
            owned[submitted.order_id] = client_order_id
        return OrderAck(
            venue=request.venue,
            client_order_id=client_order_id or "",
            order_id=submitted.order_id,
            status="accepted",
            via=submitted.via,
            ts=self._clock.time(),
        )

    # -- fills -------------------------------------------------------------------------------
    def fills_page(self, venue_name: str, *, after: str | None = None, limit: int = 500) -> FillsPage:
        """The journal's fills of the venue in the order they were journaled, `limit` at a time
        from the cursor `after` (a page's `next` or `resume`)."""
        venue = self._venue(venue_name)
        return fills_page(self._journal(), venue_name, venue.scope, after=after, limit=limit)


class FillsSource(Protocol):
    """What `fills_page` reads: a journal's fills of one account, in the order journaled."""

    def fills_after(self, venue: str, scope: str, *, after: int, limit: int) -> list[tuple[int, Fill]]: ...


def fills_page(
    store: FillsSource, venue_name: str, scope: str, *, after: str | None, limit: int
) -> FillsPage:
    """A page of `store`'s fills of one account (`OrderService.fills_page`; a cluster edge reads
    the holder's journal in Redis with it)."""
    if not 1 <= limit <= MAX_FILLS_PAGE:
        raise InvalidRequest(
            f"limit must be between 1 and {MAX_FILLS_PAGE}, got {limit}",
            venue=venue_name,
            remedy="ask for fewer fills per page and follow `next`",
        )
    start = 0
    if after:
        if not after.isdigit():
            raise InvalidRequest(
                f"cursor {after!r} is not one this API gave",
                venue=venue_name,
                remedy="pass a page's `next` or `resume` as it came, or no cursor for the first page",
            )
        start = int(after)
    rows = store.fills_after(venue_name, scope, after=start, limit=limit)
    last = str(rows[-1][0]) if rows else None
    return FillsPage(
        venue=venue_name,
        fills=[fill for _, fill in rows],
        next=last if len(rows) == limit else None,
        resume=last or after or "0",
    )


def _again(outcome: _Outcome) -> OrderAck:
    """A retry that waited for the first attempt: its outcome, as a duplicate."""
    if isinstance(outcome, BrokerBridgeError):
        raise outcome
    return msgspec.structs.replace(outcome, duplicate=True, via=None)


def _check_same(placed: OrderRequest, request: OrderRequest) -> None:
    if placed == request:
        return
    differ = [
        f"{name} {getattr(placed, name)} → {getattr(request, name)}"
        for name in placed.__struct_fields__
        if getattr(placed, name) != getattr(request, name)
    ]
    raise OrderConflict(
        f"client order id {request.client_order_id} was used for another order ({'; '.join(differ)})",
        venue=request.venue,
        code="order_conflict",
    )


def _stored(error: BrokerBridgeError, code: str | None = None) -> StoredError:
    """`error` as the journal keeps it, to raise its like again (an error with no wire code of ours
    is kept as an `order_rejected`)."""
    wire = wire_error_of(error)
    if code is None:
        code = wire.code if wire is not None else "order_rejected"
    return StoredError(code=code, message=error.message, remedy=error.remedy)


def _op(
    op_id: int, venue: OrderVenue, order_id: str | None, client_order_id: str | None, ts: float
) -> OrderOp:
    return OrderOp(
        id=op_id,
        venue=venue.connector.venue,
        scope=venue.scope,
        op="cancel",
        order_id=order_id,
        client_order_id=client_order_id,
        qty=None,
        price=None,
        state="pending",
        created=ts,
        error=None,
    )
