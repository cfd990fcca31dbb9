"""A journal of orders and fills that reports each fill once, across reconnects and snapshots.

Kraken replays fills in `snap_trades` snapshots after every (re)subscribe and we also fetch
TradesHistory after a reconnect; both overlap with what the stream already delivered. Fills are
keyed by the venue's execution id; order updates by (order_id, exec_type, status, cum_qty).
"""

from __future__ import annotations

from collections import OrderedDict

import msgspec

from brokerbridge.core.events import Fill, OrderUpdate

_OPEN = frozenset({"pending_new", "new", "partially_filled", "open"})


class ExecutionJournal:
    def __init__(self, *, max_fills: int = 100_000) -> None:
        self._fills: OrderedDict[str, Fill] = OrderedDict()
        self._order_keys: OrderedDict[tuple[object, ...], None] = OrderedDict()
        self.orders: dict[str, OrderUpdate] = {}
        self._closed: OrderedDict[str, None] = OrderedDict()  # finished orders, oldest first
        self._max = max_fills

    def record_fill(self, fill: Fill) -> bool:
        """True when this fill is new (deliver it), False for a replay."""
        if fill.exec_id in self._fills:
            return False
        self._fills[fill.exec_id] = fill
        if len(self._fills) > self._max:
            self._fills.popitem(last=False)
        return True

    def record_order(self, update: OrderUpdate) -> bool:
        key = (update.order_id, update.exec_type, update.status, update.cum_qty)
        if key in self._order_keys:
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

    def fills(self) -> list[Fill]:
        return list(self._fills.values())

    def open_orders(self) -> list[OrderUpdate]:
        return [o for o in self.orders.values() if o.status in _OPEN]


def _merge(old: OrderUpdate | None, new: OrderUpdate) -> OrderUpdate:
    """Kraken updates are sparse: keep what the earlier reports said where the new one is silent."""
    if old is None:
        return new
    fields = {f: getattr(new, f) for f in new.__struct_fields__}
    for name, value in fields.items():
        if value is None:
            fields[name] = getattr(old, name)
    return msgspec.structs.replace(new, **fields)
