"""A journal of orders and fills that reports each fill once, across reconnects and snapshots.

Kraken replays fills in `snap_trades` snapshots after every (re)subscribe and we also fetch
TradesHistory after a reconnect; both overlap with what the stream already delivered. Fills are
keyed by the venue's execution id; order updates by (order_id, exec_type, status, cum_qty).
This is the in-memory half; the bridge also writes each new fill to the on-disk journal
(`io/journal_store.py`) before publishing it, and seeds this one from it at start-up.

An order never goes back to an earlier state: a report older than what is known (a REST read
taken before a stream report that arrived first, a snapshot delayed behind a read) is dropped —
a lower status (pending_new/unknown < new < partially_filled < final), another final status, or a
smaller cumulative quantity. Without this an order filled or canceled on the stream was reported
`new` again, and listed as open, after a reconciliation read it while it was still open.

An order whose submit got no answer is UNKNOWN — it may or may not be live at the venue. It is
held here under a placeholder id (`unknown:<n>`, or the caller's client order id) until a read of
the venue's orders (`settle_unknown`) finds it (→ `resolved`, naming the venue's order id) or
shows it never arrived (→ `rejected`: safe to send again). Never "rejected" on a timeout alone.
"""

from __future__ import annotations

from collections import OrderedDict
from decimal import Decimal

import msgspec

from brokerbridge.core.events import Fill, OrderUpdate, Side

_OPEN = frozenset({"pending_new", "new", "partially_filled", "open", "unknown"})
# How far along its life an order is; a status named nowhere here (a venue's own) counts as open.
_RANK = {"unknown": 0, "pending_new": 0, "partially_filled": 2}
# Statuses that end an order's life (`resolved`: the bridge's end of an unknown submit's placeholder).
FINAL = frozenset({"filled", "canceled", "expired", "rejected", "replaced", "resolved"})
_FINAL = FINAL
UNKNOWN = "unknown"
# A venue stamps an order with its own clock; ours may run this far ahead of it.
CLOCK_SKEW = 5.0


class ExecutionJournal:
    def __init__(self, *, max_fills: int = 100_000) -> None:
        self._fills: OrderedDict[str, Fill] = OrderedDict()
        self._order_keys: OrderedDict[tuple[object, ...], None] = OrderedDict()
        self.orders: dict[str, OrderUpdate] = {}
        self._closed: OrderedDict[str, None] = OrderedDict()  # finished orders, oldest first
        self._max = max_fills
        self._unknown: dict[str, OrderUpdate] = {}  # placeholder id → the submit we got no answer to
        # Placeholders matched by shape although they carry a client order id: the venue keeps no
        # trace of ours (Primary's REST reports name its own clOrdId only).
        self._by_shape: set[str] = set()
        self._unknown_count = 0

    def record_fill(self, fill: Fill) -> bool:
        """True when this fill is new (deliver it), False for a replay."""
        if fill.exec_id in self._fills:
            return False
        self._fills[fill.exec_id] = fill
        if len(self._fills) > self._max:
            self._fills.popitem(last=False)
        return True

    def record_order(self, update: OrderUpdate) -> bool:
        """True when `update` is news (deliver it); False for a replay or a stale report."""
        key: tuple[object, ...] = (update.order_id, update.exec_type, update.status, update.cum_qty)
        if update.exec_type == "amended":
            # Each amend is news: a second one differs from the first only in its new terms.
            key += (update.qty, update.limit_price)
        if key in self._order_keys:
            return False
        known = self.orders.get(update.order_id)
        if known is not None and _goes_back(known, update):
            return False
        self._order_keys[key] = None
        if len(self._order_keys) > self._max:
            self._order_keys.popitem(last=False)
        merged = self.orders[update.order_id] = _merge(self.orders.get(update.order_id), update)
        if merged.status not in _OPEN:
            # Finished orders stay answerable for a while, but memory is bounded.
            self._closed[update.order_id] = None
            if len(self._closed) > self._max:
                self.orders.pop(self._closed.popitem(last=False)[0], None)
        return True

    def record_unknown(
        self,
        *,
        venue: str,
        ts: float,
        symbol: str,
        side: Side,
        order_type: str,
        qty: Decimal,
        limit_price: Decimal | None,
        client_order_id: str | None,
        reason: str,
        venue_echoes_client_id: bool = True,
    ) -> OrderUpdate:
        """A submit went unanswered: remember it as UNKNOWN; returns the update to publish (and to
        pass through `record_order`, like every other). `venue_echoes_client_id`: the venue's
        orders carry `client_order_id` back (Kraken's `cl_ord_id`), so that decides the match;
        otherwise the order is matched by its shape (`_same_order`)."""
        self._unknown_count += 1
        update = OrderUpdate(
            venue=venue,
            ts=ts,
            order_id=client_order_id or f"unknown:{self._unknown_count}",
            exec_type=UNKNOWN,
            status=UNKNOWN,
            symbol=symbol,
            side=side,
            order_type=order_type,
            qty=qty,
            limit_price=limit_price,
            cum_qty=Decimal(0),
            client_order_id=client_order_id,
            reason=reason,
        )
        self._unknown[update.order_id] = update
        if client_order_id is not None and not venue_echoes_client_id:
            self._by_shape.add(update.order_id)
        return update

    def drop_unknown(self, client_order_id: str, *, ts: float, reason: str) -> OrderUpdate | None:
        """Decide the UNKNOWN submit of `client_order_id` as never at the venue (its sender knows it
        sent nothing): the update to publish, or None when none is followed."""
        placeholder = self._unknown.pop(client_order_id, None)
        if placeholder is None:
            return None
        self._by_shape.discard(client_order_id)
        return msgspec.structs.replace(
            placeholder, ts=ts, exec_type="reconciled", status="rejected", reason=reason
        )

    def unknown_orders(self) -> list[OrderUpdate]:
        return list(self._unknown.values())

    def settle_unknown(
        self, venue_orders: list[OrderUpdate], *, ts: float, give_up_before: float
    ) -> list[OrderUpdate]:
        """`decide_unknown`'s updates (what to publish)."""
        return [s.update for s in self.decide_unknown(venue_orders, ts=ts, give_up_before=give_up_before)]

    def decide_unknown(
        self,
        venue_orders: list[OrderUpdate],
        *,
        ts: float,
        give_up_before: float,
        taken: frozenset[str] = frozenset(),
    ) -> list[Settled]:
        """Given a complete read of the venue's recent orders, decide every UNKNOWN submit.

        Matched by client order id when the venue echoes it, else by symbol, side, quantity and
        limit price among orders the venue stamped no earlier than the submit (minus clock skew),
        each venue order claiming at most one submit; orders in `taken` (the venue ids of orders
        whose submit was answered) are no candidates. A submit not found is `rejected` only if it
        was sent before `give_up_before` (a request can sit in the venue's queue for a while);
        younger ones stay UNKNOWN for the next read. Returns the updates to publish, each with the
        venue's id of the order found."""
        out: list[Settled] = []
        claimed = {u.order_id for u in self._unknown.values()} | taken
        # Venue orders carrying a client id we sent belong to that submit, whatever their shape
        # (a venue that does not echo ids in its reports may still have them tied by the reader,
        # e.g. Primary's first report's `wsClOrdId`): no other submit may claim them by shape.
        tagged = {o.client_order_id: o for o in venue_orders if o.client_order_id in self._unknown}
        claimed.update(o.order_id for o in tagged.values())
        by_client_id = sorted(self._unknown.values(), key=lambda u: not self._by_id(u))
        for placeholder in by_client_id:
            by_id = self._by_id(placeholder)
            candidates = venue_orders if by_id else [o for o in venue_orders if o.order_id not in claimed]
            match = tagged.get(placeholder.order_id) or next(
                (o for o in candidates if _same_order(placeholder, o, by_id=by_id)), None
            )
            if match is not None:
                claimed.add(match.order_id)
                status = "resolved"
                reason = f"found at the venue as order {match.order_id} ({match.status})"
            elif placeholder.ts >= give_up_before:
                continue
            else:
                status = "rejected"
                reason = "not at the venue after reconciliation: it never arrived; safe to resend"
            del self._unknown[placeholder.order_id]
            self._by_shape.discard(placeholder.order_id)
            update = msgspec.structs.replace(placeholder, ts=ts, exec_type="reconciled", status=status)
            out.append(
                Settled(
                    update=msgspec.structs.replace(update, reason=reason),
                    order_id=None if match is None else match.order_id,
                )
            )
        return out

    def _by_id(self, placeholder: OrderUpdate) -> bool:
        return placeholder.client_order_id is not None and placeholder.order_id not in self._by_shape

    def fills(self) -> list[Fill]:
        return list(self._fills.values())

    def open_orders(self) -> list[OrderUpdate]:
        return [o for o in self.orders.values() if o.status in _OPEN]

    def closed(self, order_id: str) -> bool:
        """The venue reported the order finished (filled, canceled, expired, …)."""
        order = self.orders.get(order_id)
        return order is not None and order.status not in _OPEN


class Settled(msgspec.Struct, frozen=True, kw_only=True):
    """An UNKNOWN submit decided: the update to publish, and the venue's id of the order found
    (None: it never arrived)."""

    update: OrderUpdate
    order_id: str | None


def _same_order(submit: OrderUpdate, order: OrderUpdate, *, by_id: bool = True) -> bool:
    if by_id and submit.client_order_id is not None:
        return order.client_order_id == submit.client_order_id
    return (
        order.ts >= submit.ts - CLOCK_SKEW
        and order.symbol == submit.symbol
        and order.side == submit.side
        and order.qty == submit.qty
        and (submit.limit_price is None or order.limit_price == submit.limit_price)
    )


def _goes_back(known: OrderUpdate, update: OrderUpdate) -> bool:
    """`update` says less than what is `known` of the order: it was taken before."""
    if known.status in _FINAL:
        return update.status != known.status
    if update.status not in _FINAL and _rank(update.status) < _rank(known.status):
        return True
    return update.cum_qty is not None and known.cum_qty is not None and update.cum_qty < known.cum_qty


def _rank(status: str) -> int:
    return _RANK.get(status, 1)


def _merge(old: OrderUpdate | None, new: OrderUpdate) -> OrderUpdate:
    """Kraken updates are sparse: keep what the earlier reports said where the new one is silent."""
    if old is None:
        return new
    fields = {f: getattr(new, f) for f in new.__struct_fields__}
    for name, value in fields.items():
        if value is None:
            fields[name] = getattr(old, name)
    return msgspec.structs.replace(new, **fields)
