"""What every job of `KrakenWsSession` reads: its constants, its state, and the helpers they share.

The session is one object split by job into classes, each in its module and built on what it uses:
`requests` on this state; `books`, `private`, `tokens` and `trading` on `requests`; `subscriptions`
on `tokens` and `books`; `timers` on `books`; `connection` (`KrakenWsSession`) on `subscriptions`,
`private`, `timers` and `trading`. Each adds the methods of its job; all share the state set up here.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from brokerbridge.core.events import Channel, StreamState, StreamStatus, Subscription
from brokerbridge.venues.kraken.book import CHECKSUM_LEVELS, KrakenBook
from brokerbridge.venues.kraken.normalize import TimestampParser
from brokerbridge.venues.session_base import VenueSession

WIRE_CHANNEL: dict[Channel, str] = {
    Channel.TICKER: "ticker",
    Channel.BOOK: "book",
    Channel.TRADES: "trade",
    Channel.CANDLES: "ohlc",
    Channel.INSTRUMENTS: "instrument",
    Channel.BALANCES: "balances",
    Channel.EXECUTIONS: "executions",
}
BOOK_DEPTHS = frozenset({10, 25, 100, 500, 1000})
# A shallower depth cut from a deeper book carries the frame's checksum: it covers the same levels.
assert min(BOOK_DEPTHS) >= CHECKSUM_LEVELS
OHLC_INTERVALS = frozenset({1, 5, 15, 30, 60, 240, 1440, 10080, 21600})
# Seconds of silence on a private connection after which frames may have been lost (heartbeats
# come every second; a loaded event loop late by half a second costs one extra REST read, no more).
SILENCE_SUSPECT = 1.5
MAX_BOOK_RESYNCS = 3  # consecutive failed snapshots before a book pauses, STALE
BOOK_RETRY_AFTER = 30.0  # seconds a STALE book waits before it is tried again
RETRY_REFUSED_FIRST_S = 1.0  # a subscribe refused for a passing reason is asked again after this…
RETRY_REFUSED_MAX_S = 30.0  # …doubling up to this

# Keyed by the wire channel name, not the Channel enum: hashing an Enum runs Python code
# (Enum.__hash__), and this lookup happens for every data frame.
RouteKey = tuple[str, str | None, int]


def route_key(sub: Subscription) -> RouteKey:
    """How data frames find their subscription: book frames carry no depth, ohlc carry interval."""
    return (WIRE_CHANNEL[sub.channel], sub.symbol, sub.interval if sub.channel is Channel.CANDLES else 0)


@dataclass(slots=True)
class Request:
    """A request frame sent on this connection and not answered in full yet."""

    method: str  # subscribe | unsubscribe | ping
    subs: dict[str | None, Subscription] = field(default_factory=dict)  # by symbol (None: no symbol)
    resync: bool = False
    sent_at: float = 0.0
    token: str | None = None  # the WebSocket token a private request carried


@dataclass(slots=True)
class DepthMove:
    """A symbol's book moving to another depth on this connection (`Subscriptions._move_wire`)."""

    old_snapshots: int  # snapshots of the old subscription(s) still to come: dropped
    req_ids: tuple[int, int]  # the unsubscribe and the subscribe: an answer to either ends the move


class KrakenSessionState(VenueSession):
    """The state of a Kraken WS v2 session and the helpers every job uses (see the module docstring)."""

    def __init__(
        self,
        *,
        private: bool,
        venue: str,
        idle_timeout: float,
        ping_interval: float,
        ack_timeout: float,
        wall_clock: Callable[[], float],
    ) -> None:
        super().__init__(venue=venue, wall_clock=wall_clock)
        self.private = private
        self.idle_timeout = idle_timeout
        self.ping_interval = ping_interval
        self.ack_timeout = ack_timeout
        self._now = 0.0  # the latest `now` any entry point was given
        # Data frame → the subscription on the wire; for books, the deepest of the symbol's depths.
        self._routes: dict[RouteKey, Subscription] = {}
        # Symbol → its book subscriptions, deepest first (the first is on the wire); and the depths
        # shallower than that one, deepest first, cut from its book (only symbols that have some).
        self._book_members: dict[str, list[Subscription]] = {}
        self._cuts: dict[str, tuple[int, ...]] = {}
        self._token: str | None = None
        self._token_reported = False
        self._parse_timestamp = TimestampParser().parse
        self._req_ids = itertools.count(1)
        # Trading requests sent on this connection and not answered yet: req_id → method. Kept
        # out of the reset below: `trading` reports them lost first (`Trading.connection_lost`).
        self._trading_pending: dict[int, str] = {}
        self._reset_connection_state(0.0)

    def _reset_connection_state(self, now: float) -> None:
        self._pending: dict[int, Request] = {}
        self._awaiting_ack: set[Subscription] = set()
        self._books: dict[Subscription, KrakenBook] = {}
        self._book_resyncs: dict[Subscription, int] = {}  # resyncing books → failed snapshots so far
        self._stale_books: dict[Subscription, float] = {}  # book → when to try it again
        self._sequences: dict[Subscription, int] = {}
        self._sequence_resyncs: set[Subscription] = set()
        self._token_refused: set[Subscription] = set()  # waiting for a new token to subscribe again
        # Resyncing stream → when its fresh snapshot is overdue (lost with a stalled link: ask again).
        self._snapshot_due: dict[Subscription, float] = {}
        # Refused for a passing reason (rate limit, venue busy): (when to ask again, attempts so far).
        self._retry_refused: dict[Subscription, tuple[float, int]] = {}
        self._private_rx_wall: dict[Subscription, float] = {}
        self._moving: dict[str, DepthMove] = {}  # symbol → its book moving to another depth
        self._last_rx = now
        self._next_ping = now + self.ping_interval
        self._idle_reported = False

    def _members(self, sub: Subscription) -> tuple[Subscription, ...]:
        """Everyone the venue's word about `sub` concerns: for a book on the wire, every depth of
        its symbol."""
        if sub.channel is Channel.BOOK and sub.symbol in self._book_members:
            return tuple(self._book_members[sub.symbol])
        return (sub,)

    def _status(self, sub: Subscription, state: StreamState, reason: str, ts: float) -> None:
        self._events.append(
            StreamStatus(venue=self.venue, ts=ts, stream=sub.describe(), state=state, reason=reason)
        )

    def _status_members(self, sub: Subscription, state: StreamState, reason: str, ts: float) -> None:
        for member in self._members(sub):
            self._status(member, state, reason, ts)

    def _forget_stream_state(self, sub: Subscription) -> None:
        self._books.pop(sub, None)
        self._book_resyncs.pop(sub, None)
        self._stale_books.pop(sub, None)
        self._sequences.pop(sub, None)
        self._sequence_resyncs.discard(sub)
        self._token_refused.discard(sub)
        self._snapshot_due.pop(sub, None)
        self._retry_refused.pop(sub, None)
        self._private_rx_wall.pop(sub, None)
