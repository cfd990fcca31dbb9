"""The order API's requests and answers: one set of types for every way in.

`Bridge.place/cancel/amend` take and return these; `/api/orders`, the `/ws` ops `place`, `cancel`
and `amend`, `BridgeClient` and `brokerbridge order` encode and decode the very same Structs, so a
bot, a browser and a person get the same semantics and the same error codes (core/errors.py:
`order_refused`, `order_rejected`, `order_conflict`, `unknown_order`, `rate_limited`,
`not_authorized`).

Amounts are Decimals (strings on the wire, with the venue's digits): never floats.

Idempotency: every order has a client order id — the caller's, or one the bridge mints — and the
bridge writes it ahead (the journal) before the venue sees the order. The same id again never makes a
second order: while the first is known its ack comes back with `duplicate=True`; with other
arguments it is refused (`OrderConflict`).
"""

from __future__ import annotations

import re
import secrets
from decimal import Decimal
from typing import Literal

import msgspec

from brokerbridge.core.events import Fill, Side

OrderType = Literal["limit", "market"]
# None: the venue's default (Kraken gtc, Primary day).
TimeInForce = Literal["gtc", "day", "ioc", "fok"]
# accepted: the venue took the order (its life follows on `executions`); unknown: no answer came
# (it may be live): the bridge resolves it from the venue's orders and publishes the outcome on
# `executions`; the client order id is the handle until then.
AckStatus = Literal["accepted", "unknown"]
Via = Literal["ws", "rest"]
# done: the venue answered the cancel (`canceled` says what it did); pending: no answer yet, or the
# order's submit is itself still unanswered — the bridge keeps at it (with backoff, across a
# restart) until the venue answers or the order is seen closed; the outcome follows on `executions`.
CancelStatus = Literal["done", "pending"]

# What a caller may choose as a client order id: both venues carry it (Kraken's `cl_ord_id` takes
# up to 18 free-text characters or a UUID; Primary's `wsClOrdId` free text), and it is safe in a URL
# path and a CSV cell.
CLIENT_ORDER_ID = re.compile(r"^[A-Za-z0-9_-]{1,18}$|^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


class OrderRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    venue: str
    symbol: str
    side: Side
    qty: Decimal
    type: OrderType = "limit"
    price: Decimal | None = None  # required for limit orders, refused for market orders
    client_order_id: str | None = None  # the caller's (CLIENT_ORDER_ID); minted when None
    time_in_force: TimeInForce | None = None


class AmendRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Change an open order's quantity and/or price, named by the venue's id or the client's."""

    venue: str
    order_id: str | None = None
    client_order_id: str | None = None
    qty: Decimal | None = None
    price: Decimal | None = None


class OrderAck(msgspec.Struct, frozen=True, kw_only=True):
    """The answer to `place` and `amend`: the order's ids. What happens to it next arrives on
    `executions` (`order_update`, `fill`)."""

    venue: str
    client_order_id: str
    order_id: str | None  # the venue's id; None while the outcome is unknown
    status: AckStatus
    duplicate: bool = False  # this client order id was placed before: nothing was sent again
    via: Via | None = None  # how it went upstream (None: nothing was sent — a duplicate)
    ts: float = 0.0  # when the bridge answered (seconds since the epoch)
    reason: str | None = None  # why the status is `unknown`


class CancelAck(msgspec.Struct, frozen=True, kw_only=True):
    venue: str
    order_id: str
    client_order_id: str | None = None
    canceled: int  # orders the venue canceled (0: it was no longer open, or not yet: `pending`)
    via: Via | None = None
    ts: float = 0.0
    status: CancelStatus = "done"
    reason: str | None = None  # why the cancel is `pending`


class FillsPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of the journal's fills in the order they were journaled (oldest first; a fill a
    reconciliation found late comes after those journaled before it, whatever its timestamp);
    `next` is the cursor of the following page (None: this is the last)."""

    venue: str
    fills: list[Fill]
    next: str | None = None
    # Where to ask from later for fills journaled after this page (also on the last page, so a
    # poller never misses one, however late it was journaled).
    resume: str | None = None


class Submitted(msgspec.Struct, frozen=True, kw_only=True):
    """A connector's answer to a submit or an amend: the venue took it."""

    order_id: str  # the venue's id (after an amend: the order's id from then on)
    via: Via


class Canceled(msgspec.Struct, frozen=True, kw_only=True):
    count: int  # orders the venue canceled (0: it was no longer open)
    via: Via


OutcomeStatus = Literal["accepted", "rejected", "unknown"]


class OrderOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """One order of a batch: taken (`order_id`), refused (`error`: the wire code, `reason`: the
    venue's words) or unanswered (`unknown`: it may be live)."""

    client_order_id: str
    status: OutcomeStatus
    order_id: str | None = None
    error: str | None = None
    reason: str | None = None
    via: Via | None = None


def valid_client_order_id(value: str) -> bool:
    return bool(CLIENT_ORDER_ID.match(value))


def mint_client_order_id() -> str:
    """A fresh client order id: 18 characters (Kraken's free-text limit), random enough never to
    repeat (16 hex digits of `secrets`), `bb` so a person reading the venue's order list sees whose."""
    return "bb" + secrets.token_hex(8)
