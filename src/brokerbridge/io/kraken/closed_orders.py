"""`ClosedOrderLog`: the Kraken account's closed orders read from REST, and how far back they
are all known.

ClosedOrders is read in steps: each read asks only for what closed since the newest order the
last one saw (a read is paged and paced on Kraken's call counter), and the first takes the
newest page. A submit that went unanswered is decided on what has been read (found, or "never
arrived: safe to resend"), so that must hold every order closed since it was sent — yet one
read holds only what closed since the read before it (made for someone else, say the
reconciliation of a reconnect), and the first read of a restarted process or of a new cluster
holder only the newest 50 (cluster chaos seed 231335: a booked order was called never arrived
after a failover). So the orders read are kept, with the time since which the reads have
missed none (`covered_from`); a caller names how far back it needs them (`reach`), and a read
reaches back that far only when the reads so far do not.
"""

from __future__ import annotations

from brokerbridge.core.events import OrderUpdate

# Closed orders kept this long (Kraken seconds) behind the newest one read: an unknown submit is
# given up on 60 s after it was sent; one older (left by an earlier process) is read back anew.
KEEP_S = 300.0


class ClosedOrderLog:
    def __init__(self, *, margin: float, keep_s: float = KEEP_S) -> None:
        # Read back this much before a start: the engine stamps close times out of order.
        self._margin = margin
        self._keep_s = keep_s
        self._orders: dict[str, OrderUpdate] = {}  # order id → its latest closed report read
        self.newest: float | None = None  # Kraken's close time of the newest order read
        # Every order closed since this Kraken time has been read (None: no read yet).
        self.covered_from: float | None = None

    def start(self, reach: float | None) -> float | None:
        """Where the next ClosedOrders read starts (None: the newest page only). After the
        newest order read, when the reads so far cover `reach` (None: nothing before them is
        wanted); else back at `reach`, or on the newest page when none is named."""
        if self.newest is not None and self.covered_from is not None:
            if reach is None or reach >= self.covered_from:
                return self.newest - self._margin
        return None if reach is None else reach - self._margin

    def read(self, closed: list[OrderUpdate], *, start: float | None, complete: bool) -> None:
        """Take a ClosedOrders read that began at `start` (as `start` gave it); `complete`: its
        pages reached `start` (or, with no start, the account's first order)."""
        if not complete:
            # The pages stopped short: only what they hold, back to the oldest, is known whole.
            self.covered_from = min((o.ts for o in closed), default=self.covered_from)
        elif start is None:
            self.covered_from = 0.0  # the account's whole history fit
        elif self.covered_from is None or self.newest is None or start < self.newest - self._margin:
            self.covered_from = start + self._margin  # back to where it started
        else:
            # It carried on after the newest order read before: those reads' cover holds too.
            self.covered_from = min(self.covered_from, start + self._margin)
        for order in closed:
            self._orders[order.order_id] = order
        self.newest = max((o.ts for o in closed), default=self.newest)
        self._prune()

    def since(self, reach: float) -> list[OrderUpdate]:
        """The orders read that closed at `reach` or later."""
        return [o for o in self._orders.values() if o.ts >= reach]

    def _prune(self) -> None:
        if self.newest is None:
            return
        floor = self.newest - self._keep_s
        old = [k for k, o in self._orders.items() if o.ts < floor]
        for key in old:
            del self._orders[key]
        if old and self.covered_from is not None:
            self.covered_from = max(self.covered_from, floor)
