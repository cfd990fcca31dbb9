"""Kraken Spot's per-pair trading rate counter, modelled so the bridge waits or refuses before
Kraken answers `EOrder:Rate limit exceeded`: pure (every `now` is passed in).

What Kraken documents ("Spot Trading Limits", docs.kraken.com/api/docs/guides/spot-ratelimits,
the same page at docs.kraken.com/exchange/guides/general/ratelimits; read 2026-12 through the
project's search of Kraken's docs, and in /work/shared/protocols/kraken.md §1.7):

* Each client has a rate counter **per pair**, shared by REST, WebSocket and FIX. It starts at 0,
  rises with each transaction and decays continuously at the tier's rate; when it reaches the
  tier's threshold the engine refuses with `EOrder:Rate limit exceeded`.
* The fixed count of a transaction is applied on receipt, even when the transaction then fails
  validation; the decaying count depends on the seconds since the order was created or amended:

  | transaction | fixed | < 5 s | < 10 s | < 15 s | < 45 s | < 90 s | < 300 s |
  |-------------|-------|-------|--------|--------|--------|--------|---------|
  | add         | +1    |       |        |        |        |        |         |
  | amend       | +1    | +3    | +2     | +1     |        |        |         |
  | cancel      |       | +8    | +6     | +5     | +4     | +2     | +1      |

  (Kraken's older "edit" costs +1 and +6/+5/+4/+2/+1; batch add +n/2; batch cancel as n cancels.
  The bridge sends neither edit nor batches through this counter.) An amend therefore costs more
  than the +1 sometimes quoted: +1 plus the decaying part by the order's age.
* Per tier: threshold 60 / 125 / 180 and decay 1 / 2.34 / 3.75 per second for Starter /
  Intermediate / Pro (the Kraken support article "Trading rate limits" and Kraken's own CLI
  documentation give the same numbers; the WS `executions` subscription reports the threshold
  as `maxratecount`). Open orders per pair are capped too: 60 / 80 / 225.

The model: a transaction is admitted when the counter plus its count stays within the threshold,
less one second of decay (`HEADROOM_S`): the bridge counts when it sends, Kraken when the
transaction arrives, and a counter that was empty in between starts decaying only then — without
that headroom a transaction sent with the bridge's counter exactly at the threshold could reach
Kraken's a few hundredths over it.
When it would not, it may wait — its count is reserved at once (so transactions are served in the
order they came, and the counter includes those waiting) and it goes when the counter has decayed
enough; a wait longer than the caller accepts is refused without reserving anything, saying when
to retry. The bridge counts before it sends, so its counter is never below Kraken's for the same
transactions (Kraken counts later, after more decay); what it cannot see — another client on the
same account, an order placed before a restart whose age is unknown — it covers by assuming the
worst: an order of unknown age is taken as just placed (a cancel +8).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from types import MappingProxyType
from typing import Literal

import msgspec

from brokerbridge.core.errors import OrderRefused
from brokerbridge.venues.kraken import VENUE

Op = Literal["add", "amend", "cancel"]


class TierLimits(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    threshold: float  # the counter may not pass this
    decay_per_s: float
    max_open_orders: int  # per pair


TIERS = MappingProxyType(
    {
        "starter": TierLimits(name="starter", threshold=60.0, decay_per_s=1.0, max_open_orders=60),
        "intermediate": TierLimits(
            name="intermediate", threshold=125.0, decay_per_s=2.34, max_open_orders=80
        ),
        "pro": TierLimits(name="pro", threshold=180.0, decay_per_s=3.75, max_open_orders=225),
    }
)
TIER_NAMES: tuple[str, ...] = tuple(TIERS)

FIXED_COUNT = MappingProxyType({"add": 1.0, "amend": 1.0, "cancel": 0.0})
# (the order is younger than these seconds, count): the first row that holds applies.
DECAYING_COUNT = MappingProxyType(
    {
        "add": (),
        "amend": ((5.0, 3.0), (10.0, 2.0), (15.0, 1.0)),
        "cancel": ((5.0, 8.0), (10.0, 6.0), (15.0, 5.0), (45.0, 4.0), (90.0, 2.0), (300.0, 1.0)),
    }
)
# After this an order's age changes no count: an order known this old costs nothing to cancel.
AGE_MATTERS_S = 300.0
# Seconds of decay kept free below the threshold, for the way to Kraken (see the module docstring).
HEADROOM_S = 1.0


def transaction_count(op: Op, age: float | None) -> float:
    """What `op` adds to the pair's counter for an order `age` seconds old (None: not known — the
    youngest count is assumed, so the model never counts less than Kraken)."""
    count = FIXED_COUNT[op]
    for younger_than, extra in DECAYING_COUNT[op]:
        if age is None or age < younger_than:
            return count + extra
    return count


class RateCounter:
    """The counters of every pair for one account; not thread-safe (one event loop drives it)."""

    def __init__(
        self, limits: TierLimits, *, venue: str = VENUE, max_pairs: int = 1024, headroom_s: float = HEADROOM_S
    ) -> None:
        self.limits = limits
        self.venue = venue
        # What the bridge lets the counter reach: the threshold less the headroom's decay.
        self.capacity = limits.threshold - headroom_s * limits.decay_per_s
        self._max_pairs = max_pairs
        self._levels: dict[str, tuple[float, float]] = {}  # symbol → (level, at)

    def level(self, symbol: str, now: float) -> float:
        """The counter of `symbol` at `now` (waiting transactions included)."""
        level, at = self._levels.get(symbol, (0.0, now))
        return max(0.0, level - max(0.0, now - at) * self.limits.decay_per_s)

    def wait_for(self, symbol: str, count: float, now: float) -> float:
        """Seconds until `count` more fits in `symbol`'s counter (0: now)."""
        over = self.level(symbol, now) + count - self.capacity
        return max(0.0, over / self.limits.decay_per_s)

    def admit(self, symbol: str, count: float, now: float, *, max_wait: float, what: str = "order") -> float:
        """Reserve `count` on `symbol`'s counter and return how long to wait before sending (0:
        at once). A wait above `max_wait` raises `OrderRefused(rule="rate_limit")`, reserving
        nothing; so does a count no wait can make fit."""
        if count <= 0:
            return 0.0  # a cancel of an order old enough counts nothing: it waits behind no one
        wait = self.wait_for(symbol, count, now)
        if count > self.capacity or wait > max_wait:
            raise self._refusal(symbol, count, now, wait, max_wait, what)
        self._levels[symbol] = (self.level(symbol, now) + count, now)
        if len(self._levels) > self._max_pairs:
            self._forget_idle(now)
        return wait

    def release(self, symbol: str, count: float, now: float) -> None:
        """Give back a reservation that was never sent (its caller gave up while it waited)."""
        if symbol in self._levels:
            self._levels[symbol] = (max(0.0, self.level(symbol, now) - count), now)

    def _forget_idle(self, now: float) -> None:
        for symbol in [s for s in self._levels if self.level(s, now) == 0.0]:
            del self._levels[symbol]

    def _refusal(
        self, symbol: str, count: float, now: float, wait: float, max_wait: float, what: str
    ) -> OrderRefused:
        level = self.level(symbol, now)
        tier = self.limits
        retry = math.ceil(wait * 10) / 10  # a tenth of a second up: retrying then fits
        refusal = OrderRefused(
            f"{what} on {symbol} would take Kraken's trading rate counter to {level + count:.2f} "
            f"(now {level:.2f}, +{count:g}); the {tier.name} tier allows {tier.threshold:g}, decaying "
            f"{tier.decay_per_s:g}/s, and the bridge stops at {self.capacity:g} (a second of decay kept for "
            f"the way there): it could go in {retry:.1f} s, "
            f"more than the {max_wait:g} s an order may wait (kraken.order_queue_s)",
            rule="rate_limit",
            venue=self.venue,
            remedy=f"retry in {retry:.1f} s or later and send fewer orders on {symbol}; if the account's "
            "tier is higher, set kraken.tier (starter, intermediate, pro), or let orders wait longer "
            "with kraken.order_queue_s",
        )
        refusal.retryable = True
        return refusal


class PlacedOrder(msgspec.Struct, frozen=True):
    symbol: str
    at: float  # wall seconds: when it was placed or last amended


class OrderAges:
    """When each order was placed (or last amended), which a cancel's and an amend's count depend
    on. Bounded: the `capacity` most recently placed are kept (Kraken caps open orders at 225 a
    pair, so a bridge trading a few pairs fills it only with orders long closed or long enough
    open to cost nothing); the oldest go first, and a forgotten order counts as of unknown age."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._orders: OrderedDict[str, PlacedOrder] = OrderedDict()

    def __len__(self) -> int:
        return len(self._orders)

    def placed(self, order_id: str, symbol: str, at: float) -> None:
        """`order_id` was placed (or amended) at `at`: its age starts again."""
        self._orders.pop(order_id, None)
        self._orders[order_id] = PlacedOrder(symbol, at)
        while len(self._orders) > self._capacity:
            self._orders.popitem(last=False)

    def seen(self, order_id: str, symbol: str, at: float) -> None:
        """An order met on the account's stream: kept with `at` unless already known (the bridge's
        own record of its placing is the closer one)."""
        if order_id not in self._orders:
            self.placed(order_id, symbol, at)

    def closed(self, order_id: str) -> None:
        self._orders.pop(order_id, None)

    def get(self, order_id: str) -> PlacedOrder | None:
        return self._orders.get(order_id)

    def age(self, order_id: str, now: float) -> float | None:
        placed = self._orders.get(order_id)
        return None if placed is None else max(0.0, now - placed.at)
