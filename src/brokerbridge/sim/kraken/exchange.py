"""The state of one simulated Kraken: catalog, market, account, keys, tokens and live sessions.

The REST handlers, the WebSocket sessions and the control endpoint all work on one `KrakenExchange`.
It owns no I/O and no tasks: the server drives `step()` on its clock and registers sessions.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable
from decimal import Decimal
from typing import Protocol

from brokerbridge.core.clock import Clock
from brokerbridge.sim.faults import KrakenFaults
from brokerbridge.sim.kraken.account import (
    ALL_PERMISSIONS,
    Account,
    AccountEvent,
    ApiKey,
    IdMaker,
    Permission,
    TokenBook,
)
from brokerbridge.sim.kraken.catalog import Catalog, default_catalog
from brokerbridge.sim.kraken.numbers import rfc3339
from brokerbridge.sim.market import Market, StepResult

DEMO_BALANCES: dict[str, Decimal] = {
    "ZUSD": Decimal("100000"),
    "XXBT": Decimal("2"),
    "XETH": Decimal("30"),
    "SOL": Decimal("500"),
    "XXRP": Decimal("50000"),
}

# Why the dead man's switch canceled an order, in its `reason` (Kraken's text is not captured).
DEAD_MAN_REASON = "Cancel all orders after timeout"


class MarketListener(Protocol):
    """A live WebSocket session as the exchange sees it."""

    def on_market(self, result: StepResult) -> None: ...

    def on_account(self, event: AccountEvent) -> None: ...


class KrakenExchange:
    def __init__(
        self,
        *,
        clock: Clock,
        faults: KrakenFaults,
        seed: int = 0,
        catalog: Catalog | None = None,
        balances: dict[str, Decimal] | None = None,
    ) -> None:
        self.clock = clock
        self.faults = faults
        self.seed = seed
        self.catalog = catalog or default_catalog()
        self.market = Market([pair.spec() for pair in self.catalog.pairs], seed=seed, now=clock.time())
        # A second generator for ids and credentials, so orders placed do not change the market's path.
        self.rng = random.Random(f"kraken-ids-{seed}")
        self.ids = IdMaker(self.rng)
        self.account = Account(self.catalog, self.market, self.ids, balances or DEMO_BALANCES)
        self.account.listeners.append(self._on_account)
        self.tokens = TokenBook(self.ids)
        self.keys: dict[str, ApiKey] = {}
        # Signed private REST calls received per method (known methods only: bounded), refused ones
        # included: what a test counts to see how hard a client leans on the venue.
        self.private_calls: Counter[str] = Counter()
        self.listeners: set[MarketListener] = set()
        # The dead man's switch (cancel_all_orders_after / CancelAllOrdersAfter): the monotonic
        # time at which every open order is canceled, unless pushed back or disabled first.
        self.cancel_all_at: float | None = None
        self.demo_key = self.create_key(ALL_PERMISSIONS, demo=True)

    # -- keys ----------------------------------------------------------------------------------------------
    def create_key(
        self,
        permissions: Iterable[Permission | str] = ALL_PERMISSIONS,
        *,
        nonce_window: int = 0,
        demo: bool = False,
    ) -> ApiKey:
        perms = frozenset(Permission(p) for p in permissions)
        # Kraken keys: 56 base64 characters; secrets: 64 random bytes in base64 (88 characters).
        key = ApiKey(self.ids.b64(42), self.ids.b64(64), perms, nonce_window=nonce_window, demo=demo)
        self.keys[key.key] = key
        return key

    def permissions(self, key: ApiKey) -> frozenset[Permission]:
        if not key.demo or not self.faults.deny_permissions:
            return key.permissions
        denied = set(self.faults.deny_permissions)
        return frozenset(p for p in key.permissions if p.value not in denied and p.name.lower() not in denied)

    # -- the dead man's switch ----------------------------------------------------------------------
    def cancel_all_after(self, timeout: int) -> dict[str, str]:
        """Arm the switch `timeout` seconds from now (0: disarm it); Kraken's answer (the same on
        REST and WS), in whole seconds. It is the account's, whichever key or socket set it; each
        call replaces the last. A disarmed switch's `triggerTime` is "0" (inferred; that answer's
        live shape is not captured)."""
        now = self.clock.time()
        self.cancel_all_at = self.clock.monotonic() + timeout if timeout > 0 else None
        return {
            "currentTime": rfc3339(now, 0),
            "triggerTime": rfc3339(now + timeout, 0) if timeout > 0 else "0",
        }

    def _dead_man(self) -> None:
        """Fired: every open order is canceled and the switch is off until armed again."""
        if self.cancel_all_at is None or self.clock.monotonic() < self.cancel_all_at:
            return
        self.cancel_all_at = None
        now = self.clock.time()
        for order in self.account.open_orders():
            self.account.cancel(order, now, reason=DEAD_MAN_REASON, counted=False)  # Kraken's own doing

    # -- time passes -----------------------------------------------------------------------------------
    def step(self) -> StepResult | None:
        if self.faults.system_status == "maintenance":
            return None  # the engine is down: nothing trades, nothing moves (an armed switch
            # fires when it is back, as Kraken warns)
        self._dead_man()
        result = self.market.step(self.clock.time())
        self.account.apply_fills(result.fills)
        self.publish(result)
        return result

    def publish(self, result: StepResult) -> None:
        for listener in list(self.listeners):
            listener.on_market(result)

    def _on_account(self, event: AccountEvent) -> None:
        for listener in list(self.listeners):
            listener.on_account(event)
