"""What the Bridge needs from a venue connector (Kraken, Primary, …): one shape for all venues.

The Bridge reaches a connector through this protocol only. A venue with nothing to give for a part
says so through the part's own answer (an empty restore, no catalogue), never by lacking a method.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal, Protocol

from brokerbridge.core.errors import UnknownSymbol
from brokerbridge.core.events import AnyEvent, BookSnapshot, Channel, Fill, StreamStatus, Subscription
from brokerbridge.core.health import VenueHealth
from brokerbridge.core.orders import Canceled, OrderRequest, Submitted
from brokerbridge.venues.primary.catalog import Catalog


class Connector(Protocol):
    venue: str

    async def run(self) -> None:
        """Hold the venue's sessions open until cancelled (never returns otherwise)."""
        ...

    async def aclose(self) -> None: ...

    # -- the executions journal ----------------------------------------------------------------
    @property
    def journal_scope(self) -> str:
        """The account on the venue as the on-disk fills journal keys it (no secret in it)."""
        ...

    def restore_fills(self, fills: list[Fill]) -> None:
        """Fills an earlier run journaled for this account (oldest first, at least one), given once
        before `run()`: the connector learns what it already reported (a venue that needs nothing
        of them does nothing)."""
        ...

    # -- streams ---------------------------------------------------------------------------------
    def validate(self, sub: Subscription) -> None:
        """Raise ConfigError / InvalidRequest if this venue cannot serve `sub`, UnknownSymbol if
        the venue's list of symbols is loaded and does not have its symbol."""
        ...

    def symbol_listed(self, symbol: str) -> bool | None:
        """Whether the venue lists `symbol` (None: its list is not loaded yet)."""
        ...

    def unlisted(self, symbol: str) -> UnknownSymbol:
        """The refusal of a symbol the venue does not list, as `validate` raises it (a cluster edge
        raises the same, from its holder's list: io/cluster/connector.py)."""
        ...

    async def listed_symbols(self) -> frozenset[str]:
        """Every symbol the venue lists now, loaded first if it is not (kept fresh from then on as
        for a subscription): what a cluster holder tells the edges (io/cluster/venue.py)."""
        ...

    def account_channels(self) -> tuple[Channel, ...]:
        """The account streams the Bridge holds open from start, whether or not anyone consumes
        them (balances first): none without the credentials (and account) they need."""
        ...

    def add(self, sub: Subscription) -> None: ...

    def remove(self, sub: Subscription) -> None: ...

    def status_of(self, sub: Subscription) -> StreamStatus: ...

    def book_snapshot(self, sub: Subscription) -> BookSnapshot | None: ...

    def health(self) -> VenueHealth: ...

    # -- instruments -----------------------------------------------------------------------------
    async def catalog(self) -> Catalog | None:
        """The venue's instrument catalogue (details, CFI codes, option chains), or None where
        brokerbridge keeps none for the venue (its symbols are checked by `symbol_listed`)."""
        ...

    # -- orders ------------------------------------------------------------------------------------
    # Checked before anything goes upstream (Bridge.place/cancel/amend call these first):
    async def check_order(self, request: OrderRequest) -> None:
        """Raise `OrderRefused` (naming the rule: tick_size, lot_size, min_qty, …) or
        `UnknownSymbol` for an order the venue would refuse by rules the bridge knows; loads the
        venue's instrument rules the first time. Nothing is sent to the venue's order entry."""
        ...

    async def admit(
        self, op: Literal["add", "amend", "cancel"], symbol: str, order_id: str | None = None
    ) -> None:
        """Account for `op` on `symbol` (the order `order_id` for amend and cancel) against the
        venue's order rate limit right before it is sent: return when it may go (after waiting on
        the clock, within the configured queue time), or raise `OrderRefused(rule="rate_limit")`
        saying when to retry. A venue with no such limit returns at once."""
        ...

    # The order API's path (Bridge.place/cancel/amend): WebSocket first where the venue takes
    # orders on it, REST otherwise. A submit with no answer raises TransportError (its outcome is
    # unknown); the venue refusing it raises its typed error (OrderRejected, InvalidRequest, …).
    async def submit_order(self, request: OrderRequest, client_order_id: str) -> Submitted: ...

    async def cancel(self, order_id: str) -> Canceled: ...

    async def amend_order(self, order_id: str, *, qty: Decimal | None, price: Decimal | None) -> Submitted:
        """Change an open order's quantity and/or price (InvalidRequest where the venue cannot)."""
        ...

    @property
    def echoes_client_order_id(self) -> bool:
        """Whether the venue's order reports carry back the client order id it was sent with
        (Kraken's `cl_ord_id`): then that id alone decides which venue order an unanswered submit
        became; otherwise its shape (symbol, side, quantity, price, time) does."""
        ...

    async def order_snapshot(self, since: float | None = None) -> list[AnyEvent]:
        """The account's recent orders as the venue has them now (open ones, and those closed
        lately — with `since`, a venue time, at least every one closed since then), as
        `OrderUpdate`s and the fills not yet reported: what decides a submit that got no answer.
        Raises a BrokerBridgeError if the venue cannot be read."""
        ...
