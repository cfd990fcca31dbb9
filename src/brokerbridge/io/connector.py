"""What the Bridge needs from a venue connector (Kraken, Primary, …): one shape for all venues."""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

from brokerbridge.core.events import BookSnapshot, StreamStatus, Subscription
from brokerbridge.core.health import VenueHealth


class Connector(Protocol):
    venue: str

    async def run(self) -> None:
        """Hold the venue's sessions open until cancelled (never returns otherwise)."""
        ...

    async def aclose(self) -> None: ...

    def validate(self, sub: Subscription) -> None:
        """Raise ConfigError / InvalidRequest if this venue cannot serve `sub`, UnknownSymbol if
        the venue's list of symbols is loaded and does not have its symbol."""
        ...

    def symbol_listed(self, symbol: str) -> bool | None:
        """Whether the venue lists `symbol` (None: its list is not loaded yet)."""
        ...

    def add(self, sub: Subscription) -> None: ...

    def remove(self, sub: Subscription) -> None: ...

    def status_of(self, sub: Subscription) -> StreamStatus: ...

    def book_snapshot(self, sub: Subscription) -> BookSnapshot | None: ...

    def health(self) -> VenueHealth: ...

    async def place_order(
        self,
        *,
        symbol: str,
        side: str,
        order_type: str,
        qty: Decimal,
        price: Decimal | None = None,
        client_order_id: str | None = None,
    ) -> str: ...

    async def cancel_order(self, order_id: str) -> int: ...
