"""The simulated Kraken's per-pair trading rate counter: `EOrder:Rate limit exceeded` as Kraken
answers it.

Written from Kraken's "Spot Trading Limits" page, apart from the bridge's model of the same
counter (a simulator that borrowed the client's code would agree with it by construction):

* one counter per pair for the account, shared by REST and WebSocket; it decays continuously at
  the tier's rate — Starter 1/s, Intermediate 2.34/s, Pro 3.75/s — and a transaction that would
  take it past the tier's threshold — 60, 125, 180 — is refused;
* an add counts +1, an amend +1 and +3/+2/+1 for an order younger than 5/10/15 s, a cancel
  +8/+6/+5/+4/+2/+1 for an order younger than 5/10/15/45/90/300 s and nothing later;
* the fixed count is applied on receipt, so an add that then fails validation (funds, minimum,
  tick) has counted; a transaction refused for the rate itself adds nothing (Kraken does not say;
  counting it would keep a client that retries at once locked out for good).

The simulator's account is Intermediate by default (as its REST call counter); a test sets
another tier on `Account.order_rate`. `refused` counts the refusals, for tests that check the
venue never had to refuse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

RATE_LIMIT_EXCEEDED = "EOrder:Rate limit exceeded"
# tier → (threshold, decay per second)
TIER_LIMITS = MappingProxyType({"starter": (60.0, 1.0), "intermediate": (125.0, 2.34), "pro": (180.0, 3.75)})
AMEND_EXTRA = ((5.0, 3.0), (10.0, 2.0), (15.0, 1.0))
CANCEL_EXTRA = ((5.0, 8.0), (10.0, 6.0), (15.0, 5.0), (45.0, 4.0), (90.0, 2.0), (300.0, 1.0))


def _extra(table: tuple[tuple[float, float], ...], age_s: float) -> float:
    return next((count for below, count in table if age_s < below), 0.0)


@dataclass(slots=True)
class OrderRateCounter:
    tier: str = "intermediate"
    refused: int = 0  # transactions refused for the rate
    counted: int = 0  # transactions counted
    _levels: dict[str, tuple[float, float]] = field(default_factory=dict)  # pair → (level, at)

    @property
    def threshold(self) -> float:
        return TIER_LIMITS[self.tier][0]

    def level(self, pair: str, now: float) -> float:
        level, at = self._levels.get(pair, (0.0, now))
        return max(0.0, level - max(0.0, now - at) * TIER_LIMITS[self.tier][1])

    # Each returns False when Kraken refuses the transaction (`RATE_LIMIT_EXCEEDED`), having counted
    # nothing; the caller answers with the error.
    def add_order(self, pair: str, now: float) -> bool:
        return self._charge(pair, 1.0, now)

    def amend_order(self, pair: str, age_s: float, now: float) -> bool:
        return self._charge(pair, 1.0 + _extra(AMEND_EXTRA, age_s), now)

    def cancel_order(self, pair: str, age_s: float, now: float) -> bool:
        return self._charge(pair, _extra(CANCEL_EXTRA, age_s), now)

    def _charge(self, pair: str, count: float, now: float) -> bool:
        level = self.level(pair, now)
        if level + count > self.threshold:
            self.refused += 1
            return False
        self.counted += 1
        self._levels[pair] = (level + count, now)
        return True
