"""Control signals a pure venue session raises for the connection supervisor that drives it.

Events (core.events) are for consumers; signals are for the driver: they ask for an action
(reconnect, new token) or report a subscription's fate. Every venue session speaks these.
"""

from __future__ import annotations

from dataclasses import dataclass

from brokerbridge.core.errors import BrokerBridgeError, VenueError
from brokerbridge.core.events import Subscription


@dataclass(frozen=True, slots=True)
class Subscribed:
    sub: Subscription


@dataclass(frozen=True, slots=True)
class SubscribeFailed:
    sub: Subscription
    error: VenueError


@dataclass(frozen=True, slots=True)
class TokenRejected:
    """The venue refused our stream credential: fetch a new one and resubscribe privately."""

    error: VenueError


@dataclass(frozen=True, slots=True)
class ReconnectNeeded:
    reason: str


@dataclass(frozen=True, slots=True)
class Resyncing:
    sub: Subscription
    reason: str


@dataclass(frozen=True, slots=True)
class SilenceEnded:
    """Frames came again after a silence long enough to have lost some on the way.

    A sequence number shows a lost frame only when the next sequenced frame comes; when the lost
    frames ended a burst (the last fills of a stall), nothing would ever show it: read back instead.
    """

    seconds: float


@dataclass(frozen=True, slots=True)
class SystemStatus:
    system: str


@dataclass(frozen=True, slots=True)
class BadFrame:
    error: BrokerBridgeError


@dataclass(frozen=True, slots=True)
class OrderAnswered:
    """The venue answered an order request sent on the socket. `request` is the id the request
    was sent under (the caller's client order id of a new order; the order id of a cancel);
    `order_id` the venue's id of the order, `status` its core status; `error` when the venue
    refused the request outright."""

    request: str
    kind: str  # "new" | "cancel"
    order_id: str | None = None
    status: str | None = None
    reason: str | None = None
    error: VenueError | None = None


Signal = (
    Subscribed
    | SubscribeFailed
    | TokenRejected
    | ReconnectNeeded
    | Resyncing
    | SilenceEnded
    | SystemStatus
    | BadFrame
    | OrderAnswered
)
