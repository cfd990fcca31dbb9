"""Per-venue balances from a snapshot plus ledger deltas, reconciled against REST, stale-aware.

Rules:
* A WS or REST snapshot sets every asset it names; assets it does not name are zero — except
  that a REST snapshot requested at `as_of` never overwrites an asset a WS delta updated after
  `as_of` (the delta is newer than the REST answer).
* A delta carries the new total (Kraken's `balance`), so applying deltas is idempotent and order
  of arrival across reconnects cannot double-count.
* While the private stream is not live, values are kept and marked `stale` — never reset to 0.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Decimal

from brokerbridge.core.events import BalanceSnapshot, BalanceUpdate


@dataclass(frozen=True, slots=True)
class BalanceView:
    asset: str
    total: Decimal
    hold: Decimal | None
    stale: bool
    updated_at: float  # wall time of the last change or confirmation

    @property
    def available(self) -> Decimal | None:
        return None if self.hold is None else self.total - self.hold


@dataclass(slots=True)
class _Entry:
    total: Decimal
    hold: Decimal | None
    updated_at: float
    ws_updated_at: float  # last change seen on the stream (0 = never)


class BalanceBook:
    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._live = False
        self.snapshots = 0
        # The latest REST corrections (asset, had, now): evidence that a delta was missed.
        self.corrections: deque[tuple[str, Decimal, Decimal]] = deque(maxlen=100)

    @property
    def live(self) -> bool:
        return self._live

    def set_live(self, live: bool) -> None:
        self._live = live

    def apply_snapshot(self, snap: BalanceSnapshot, *, as_of: float | None = None) -> list[str]:
        """Apply a snapshot; `as_of` (wall time the REST request was sent) marks a REST answer.

        Returns the assets whose total changed.
        """
        changed: list[str] = []
        seen = set()
        for bal in snap.balances:
            seen.add(bal.asset)
            entry = self._entries.get(bal.asset)
            if as_of is not None and entry is not None and entry.ws_updated_at > as_of:
                continue  # a stream delta newer than this REST answer wins
            if entry is None or entry.total != bal.total:
                changed.append(bal.asset)
                if as_of is not None and entry is not None:
                    self.corrections.append((bal.asset, entry.total, bal.total))
            hold = bal.hold if bal.hold is not None else (entry.hold if entry else None)
            ws_at = snap.ts if as_of is None else (entry.ws_updated_at if entry else 0.0)
            self._entries[bal.asset] = _Entry(bal.total, hold, snap.ts, ws_at)
        for asset, entry in self._entries.items():
            if asset in seen or entry.total == 0:
                continue
            if as_of is not None and entry.ws_updated_at > as_of:
                continue
            changed.append(asset)
            entry.total = Decimal(0)
            entry.updated_at = snap.ts
        self.snapshots += 1
        return changed

    def apply_update(self, update: BalanceUpdate, *, received: float | None = None) -> bool:
        """Apply a ledger delta. `received` is our wall time when it arrived: it is what a REST
        snapshot's `as_of` (also our time) is compared with — the venue's clock may differ."""
        at = update.ts if received is None else received
        entry = self._entries.get(update.asset)
        if entry is None:
            self._entries[update.asset] = _Entry(update.total, None, at, at)
            return True
        changed = entry.total != update.total
        entry.total = update.total
        entry.updated_at = at
        entry.ws_updated_at = max(entry.ws_updated_at, at)
        return changed

    def get(self, asset: str) -> BalanceView | None:
        entry = self._entries.get(asset)
        if entry is None:
            return None
        return BalanceView(asset, entry.total, entry.hold, not self._live, entry.updated_at)

    def all(self) -> dict[str, BalanceView]:
        return {asset: view for asset in sorted(self._entries) if (view := self.get(asset))}
