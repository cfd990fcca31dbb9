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
from brokerbridge.sim.market import Market, StepResult

DEMO_BALANCES: dict[str, Decimal] = {
    "ZUSD": Decimal("100000"),
    "XXBT": Decimal("2"),
    "XETH": Decimal("30"),
    "SOL": Decimal("500"),
    "XXRP": Decimal("50000"),
}


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

    # -- time passes -----------------------------------------------------------------------------------
    def step(self) -> StepResult | None:
        if self.faults.system_status == "maintenance":
            return None  # the engine is down: nothing trades, nothing moves
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
