"""`UnknownOrders`: submits that got no answer, held UNKNOWN until the venue's orders decide them.

A submit whose answer never came (a `TransportError`) may or may not have reached the venue. It is
published at once as an `OrderUpdate` with status `unknown` (the executions journal holds it, and
lists it among the open orders: `ExecutionJournal.record_unknown`); then `follow` reads the venue's
orders (`OrderReader`), retried with backoff — the read often fails for the same reason the submit
did — until every UNKNOWN submit of the venue is `resolved` (found: the update names the venue's
order id) or `rejected` (not found `give_up_s` — `[orders] unknown_give_up` — after it was sent: it
never arrived, safe to resend). The matching itself is the journal's
(`ExecutionJournal.decide_unknown`). One read loop per venue at a time. A `SettleListener` (the
order service) hears each decision with the venue's id of the order found, and names the venue ids
already owned by answered submits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from brokerbridge.core.clock import Clock
from brokerbridge.core.config import DEFAULT_UNKNOWN_GIVE_UP_S
from brokerbridge.core.errors import BrokerBridgeError
from brokerbridge.core.events import AnyEvent, OrderUpdate
from brokerbridge.services.executions import CLOCK_SKEW, ExecutionJournal, Settled

logger = logging.getLogger(__name__)

# An unanswered submit not found at the venue this long after it was sent never arrived (the
# default of `[orders] unknown_give_up`).
UNKNOWN_GIVE_UP_S = DEFAULT_UNKNOWN_GIVE_UP_S
FIRST_READ_S = 1.0  # after the unanswered submit: the venue has had time to book it
MAX_READ_INTERVAL_S = 5.0  # between reads while some submit is still undecided


class OrderReader(Protocol):
    async def order_snapshot(self, since: float | None = None) -> list[AnyEvent]:
        """The venue's recent orders (`OrderUpdate`s, and fills not yet reported): the open
        ones and at least every one closed since `since` (a venue time)."""
        ...


class SettleListener(Protocol):
    def taken(self, venue: str) -> frozenset[str]:
        """The venue ids of orders whose submit was answered: no UNKNOWN submit is one of them."""
        ...

    def settled(self, venue: str, settled: Settled) -> None:
        """An UNKNOWN submit was decided (after its update was published)."""
        ...


class UnknownOrders:
    def __init__(
        self, *, clock: Clock, publish: Callable[[AnyEvent], None], give_up_s: float = UNKNOWN_GIVE_UP_S
    ) -> None:
        self.listener: SettleListener | None = None
        self._clock = clock
        # Every event goes out through here (the Bridge's event path: journal, then consumers).
        self._publish = publish
        self.give_up_s = give_up_s
        # The task group the reads run in, while the owner runs (None: nothing is read).
        self.timers: asyncio.TaskGroup | None = None
        self._settling: set[str] = set()  # venues with a read loop under way

    def follow(self, venue: str, journal: ExecutionJournal, reader: OrderReader) -> None:
        """A submit to `venue` got no answer (`journal.record_unknown`, published): read the
        venue's orders until every UNKNOWN submit in `journal` is decided."""
        timers = self.timers
        if venue in self._settling or timers is None:
            return
        self._settling.add(venue)
        timers.create_task(self._settle(venue, journal, reader), name=f"{venue}-settle-unknown")

    async def _settle(self, venue: str, journal: ExecutionJournal, reader: OrderReader) -> None:
        """Read the venue's orders until every UNKNOWN submit is decided."""
        delay = FIRST_READ_S
        try:
            while journal.unknown_orders():
                await self._clock.sleep(delay)
                delay = min(delay * 2, MAX_READ_INTERVAL_S)
                # Every order closed since the oldest undecided submit was sent, not only since the
                # last read: a read made for someone else (reconciliation), or a restarted process's
                # first (the newest page), may have taken the one that decides it.
                pending = journal.unknown_orders()
                since = min((u.ts for u in pending), default=self._clock.time()) - CLOCK_SKEW
                try:
                    events = await reader.order_snapshot(since)
                except BrokerBridgeError as exc:
                    logger.warning("%s: reading orders to settle unknown submits failed: %s", venue, exc)
                    continue
                except Exception:  # a bug here must not take the bridge down with it
                    logger.exception("%s: reading orders to settle unknown submits failed (a bug)", venue)
                    continue
                for event in events:
                    self._publish(event)
                orders = [e for e in events if isinstance(e, OrderUpdate)]
                now = self._clock.time()
                listener = self.listener
                taken = frozenset() if listener is None else listener.taken(venue)
                for decided in journal.decide_unknown(
                    orders, ts=now, give_up_before=now - self.give_up_s, taken=taken
                ):
                    update = decided.update
                    logger.info("%s: order %s was unknown: %s", venue, update.order_id, update.reason)
                    self._publish(update)
                    if listener is not None:
                        listener.settled(venue, decided)
        finally:
            self._settling.discard(venue)
