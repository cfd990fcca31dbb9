"""`KrakenWsSession`: the pure state machine of one Kraken WebSocket v2 connection.

No sockets, no asyncio, no sleeps: the I/O driver feeds it text and the time, and drains what it
produced (the aioquic / wsproto shape)::

    session.connection_made(now)             # socket open: subscribe frames are queued
    for frame in session.data_to_send(): ws.send(frame)
    session.receive_text(text, now)          # for every incoming frame
    session.events_received()                # normalized core.events
    session.signals_received()               # control signals for the driver (see below)
    session.next_deadline() / handle_timer(now)

Design decisions (kraken.md references in brackets):

* One session per endpoint: public channels on `ws.kraken.com/v2`, private ones (balances,
  executions, token-authenticated) on `ws-auth.kraken.com/v2` (§3.1).
* Subscriptions are remembered from their original arguments and replayed on every new
  connection, batched into one frame per (channel, depth, interval). Every request carries a
  `req_id`; acks come one per symbol and are matched back by (req_id, symbol) (§3.3).
* One book subscription per symbol on the wire, at the deepest depth any consumer wants: Kraken's
  book frames do not say their depth, so two depths of one symbol on one connection could not be
  told apart. Each shallower depth is cut from that book — a snapshot of its best levels, and for
  every message the difference of its best levels before and after (`KrakenBook.changes_since`),
  so a level that enters the window from below comes as an insert, as Kraken sends it. Kraken's
  checksum covers the top 10 levels, the same for every depth (all are ≥ 10), so each cut carries
  the frame's checksum and its consumer can verify it. A deeper consumer moves the wire to its
  depth (unsubscribe, then subscribe); when the deepest one leaves, the wire moves down to the
  deepest left, so nobody pays for levels no one reads. While the wire moves, the symbol's frames
  belong to the old depth and are dropped, until Kraken answers either request of the move (or, if
  both answers were lost, the snapshot after the old subscription's own); then the new snapshot
  reaches every consumer, each at its depth. A consumer's book pauses for one round trip and
  starts again from a snapshot — never a book of another depth. Everything the venue says about
  the book (acks, refusals, resyncs, STALE) concerns every depth of the symbol.
* Books are verified with the CRC32 checksum on every snapshot and update (§3.6.2). A mismatch
  drops that one book and resubscribes that symbol only (same depth) — the connection and the
  other streams stay up. Updates for a book that is resyncing are ignored. If the fresh snapshot
  fails too, `MAX_BOOK_RESYNCS` times in a row, the session pauses (a wrong checksum would
  otherwise loop at network speed), marks the stream STALE and tries again `BOOK_RETRY_AFTER` later.
  Updates with no snapshot before them on this connection (the snapshot was lost, e.g. in a
  stalled link) resync the same way: without it no update can ever apply. So does a book level
  that is not a sane number (NaN, 1e999999999, a negative price): `KrakenBook` checks each level
  as it applies it, so the book has taken part of that message; the frame is a `BadFrame` too.
* Private channels carry `sequence` (§3.8): a snapshot resets it, an update must be last + 1; a
  jump resubscribes that channel with a snapshot and emits a `Gap`. A jump shows only with the next
  sequenced frame, so a private frame after `SILENCE_SUSPECT` of silence (heartbeats come every
  second) raises `SilenceEnded`: frames lost at the end of a burst would otherwise never show.
* A resync is proven by its fresh snapshot only — updates of the old subscription are still in
  flight when we ask again, so they confirm nothing. A snapshot that does not come within
  `ack_timeout` is asked for again.
* A private subscribe refused for its token (`ESession:Invalid session`) is remembered; the driver
  gets `TokenRejected` (once per token), fetches a new one and calls `resubscribe_private`, which
  asks again for exactly what was refused (a resync unsubscribes first: the refused unsubscribe
  may have left the old subscription in place). A refusal of a token already replaced is retried
  with the current one at once.
* A `status` frame with system != online does not ask for a reconnect: the socket stays up during
  maintenance and reconnecting would only loop (Kraken asks for ≥5 s between attempts after
  maintenance). The driver gets `SystemStatus` and decides (e.g. polling, STALE).
* The Cloudflare "proxy restarting" text frame and the idle watchdog ask for a reconnect.
* StreamStatus events from the session are only about resyncs (RESYNCING, then LIVE when the
  fresh snapshot verifies, or STALE when it gives up); connection-level LIVE/RECONNECTING
  statuses belong to the driver, which sees `Subscribed` signals.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import msgspec

from brokerbridge.core.errors import ProtocolError, SessionInvalid, VenueError
from brokerbridge.core.events import (
    BookSnapshot,
    BookUpdate,
    Channel,
    Gap,
    StreamState,
    StreamStatus,
    Subscription,
)
from brokerbridge.core.outbox import Outbox
from brokerbridge.core.signals import (
    BadFrame,
    ReconnectNeeded,
    Resyncing,
    Signal,
    SilenceEnded,
    Subscribed,
    SubscribeFailed,
    SystemStatus,
    TokenRejected,
)
from brokerbridge.venues.kraken import VENUE
from brokerbridge.venues.kraken.book import CHECKSUM_LEVELS, BookWindow, KrakenBook, KrakenBookError
from brokerbridge.venues.kraken.errors import error_from_kraken
from brokerbridge.venues.kraken.messages import (
    BalancesSnapshotFrame,
    BalancesUpdateFrame,
    BookFrame,
    CloudflareRestarting,
    ExecutionsFrame,
    Heartbeat,
    InstrumentFrame,
    MethodAck,
    OhlcFrame,
    Pong,
    StatusFrame,
    TickerFrame,
    TradeFrame,
    decode_ws_frame,
)
from brokerbridge.venues.kraken.normalize import (
    TimestampParser,
    balance_snapshot_from_ws,
    balance_update_from_ws,
    candle_from_ws,
    execution_from_ws,
    instruments_from_ws,
    ticker_from_ws,
    trade_from_ws,
)

logger = logging.getLogger(__name__)

# Signals are the venue-independent ones of core.signals (the supervisor matches on them);
# re-exported here so venue code and tests can import them from the session module.
__all__ = [
    "BadFrame",
    "KrakenWsSession",
    "ReconnectNeeded",
    "Resyncing",
    "Signal",
    "SubscribeFailed",
    "Subscribed",
    "SystemStatus",
    "TokenRejected",
]

# ---------------------------------------------------------------- constants

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
_MAX_REQ_ID = 2**31 - 1  # Kraken told ccxt req_id must fit int32

# Keyed by the wire channel name, not the Channel enum: hashing an Enum runs Python code
# (Enum.__hash__), and this lookup happens for every data frame.
_RouteKey = tuple[str, str | None, int]
_encode = msgspec.json.Encoder().encode


def _route_key(sub: Subscription) -> _RouteKey:
    """How data frames find their subscription: book frames carry no depth, ohlc carry interval."""
    return (WIRE_CHANNEL[sub.channel], sub.symbol, sub.interval if sub.channel is Channel.CANDLES else 0)


def _deepest_first(sub: Subscription) -> int:
    return -sub.depth


@dataclass(slots=True)
class _Request:
    method: str  # subscribe | unsubscribe | ping
    subs: dict[str | None, Subscription] = field(default_factory=dict)  # by symbol (None: no symbol)
    resync: bool = False
    sent_at: float = 0.0
    token: str | None = None  # the WebSocket token a private request carried


@dataclass(slots=True)
class _DepthMove:
    """A symbol's book moving to another depth on this connection (`_move_wire`)."""

    old_snapshots: int  # snapshots of the old subscription(s) still to come: dropped
    req_ids: tuple[int, int]  # the unsubscribe and the subscribe: an answer to either ends the move


class KrakenWsSession(Outbox):
    """Pure Kraken WS v2 session for one endpoint (public or private). See the module docstring."""

    def __init__(
        self,
        *,
        private: bool,
        venue: str = VENUE,
        idle_timeout: float = 10.0,
        ping_interval: float = 20.0,
        ack_timeout: float = 10.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.private = private
        self.venue = venue
        self.idle_timeout = idle_timeout
        self.ping_interval = ping_interval
        self.ack_timeout = ack_timeout
        self._now = 0.0  # the latest `now` any entry point was given
        # Event timestamps are wall time; `now` arguments are the driver's monotonic clock.
        self._wall_clock = wall_clock
        self._subs: dict[Subscription, None] = {}  # ordered set: replay in the order added
        # Data frame → the subscription on the wire; for books, the deepest of the symbol's depths.
        self._routes: dict[_RouteKey, Subscription] = {}
        # Symbol → its book subscriptions, deepest first (the first is on the wire); and the depths
        # shallower than that one, deepest first, cut from its book (only symbols that have some).
        self._book_members: dict[str, list[Subscription]] = {}
        self._cuts: dict[str, tuple[int, ...]] = {}
        self._token: str | None = None
        self._token_reported = False
        self._parse_timestamp = TimestampParser().parse
        self._req_ids = itertools.count(1)
        self._init_outbox()
        self._connected = False
        self._reset_connection_state(0.0)

    def _reset_connection_state(self, now: float) -> None:
        self._pending: dict[int, _Request] = {}
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
        self._moving: dict[str, _DepthMove] = {}  # symbol → its book moving to another depth
        self._last_rx = now
        self._next_ping = now + self.ping_interval
        self._idle_reported = False

    # ------------------------------------------------------------ subscriptions

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        return tuple(self._subs)

    @property
    def connected(self) -> bool:
        return self._connected

    def add(self, sub: Subscription, now: float) -> None:
        """Remember `sub`; if connected, queue its subscribe frame. Adding twice is a no-op.

        A book depth of a symbol that has one already shares its book (see the module docstring).
        Raises ValueError for a subscription this endpoint cannot serve (our mistake, not Kraken's):
        wrong endpoint, bad depth/interval, missing symbol.
        """
        self._now = now
        if sub in self._subs:
            return
        self.validate(sub)
        self._subs[sub] = None
        if sub.channel is Channel.BOOK:
            self._add_book(sub)
            return
        self._routes[_route_key(sub)] = sub
        if self._connected:
            self._subscribe([sub])

    def remove(self, sub: Subscription, now: float) -> None:
        """Forget `sub`; if connected, queue its unsubscribe frame (echoing depth/interval)."""
        self._now = now
        if sub not in self._subs:
            return
        del self._subs[sub]
        if sub.channel is Channel.BOOK:
            self._remove_book(sub)
            return
        del self._routes[_route_key(sub)]
        self._forget_stream_state(sub)
        if self._connected:
            self._send_request("unsubscribe", [sub])

    def _add_book(self, sub: Subscription) -> None:
        symbol = sub.symbol
        assert symbol is not None  # validated
        members = self._book_members.setdefault(symbol, [])
        lead = members[0] if members else None
        members.append(sub)
        members.sort(key=_deepest_first)  # stable: of equal depths the first stays on the wire
        self._set_cuts(symbol)
        if lead is None:
            self._routes[_route_key(sub)] = sub
            if self._connected:
                self._subscribe([sub])
        elif members[0] is lead:
            if self._connected:
                self._join_book(lead, sub)
        else:
            self._routes[_route_key(sub)] = sub
            if self._connected:
                self._move_wire(lead, sub)
            else:
                self._forget_stream_state(lead)

    def _remove_book(self, sub: Subscription) -> None:
        symbol = sub.symbol
        assert symbol is not None
        members = self._book_members[symbol]
        members.remove(sub)
        self._set_cuts(symbol)
        key = _route_key(sub)
        if self._routes.get(key) != sub:
            return  # a shallower depth: nothing of its own on the wire
        if members:
            # The deepest left takes the wire: nobody pays for levels no one reads.
            self._routes[key] = members[0]
            if self._connected:
                self._move_wire(sub, members[0])
            else:
                self._forget_stream_state(sub)
            return
        del self._book_members[symbol]
        del self._routes[key]
        self._moving.pop(symbol, None)
        self._forget_stream_state(sub)
        if self._connected:
            self._send_request("unsubscribe", [sub])

    def _set_cuts(self, symbol: str) -> None:
        members = self._book_members.get(symbol)
        wire_depth = members[0].depth if members else 0
        cuts = sorted({sub.depth for sub in members or () if sub.depth < wire_depth}, reverse=True)
        if cuts:
            self._cuts[symbol] = tuple(cuts)
        else:
            self._cuts.pop(symbol, None)

    def _members(self, sub: Subscription) -> tuple[Subscription, ...]:
        """Everyone the venue's word about `sub` concerns: for a book on the wire, every depth of
        its symbol."""
        if sub.channel is Channel.BOOK and sub.symbol in self._book_members:
            return tuple(self._book_members[sub.symbol])
        return (sub,)

    def _join_book(self, lead: Subscription, sub: Subscription) -> None:
        """`sub`, no deeper than `lead`, reads the book `lead` holds on the wire (connected)."""
        symbol = sub.symbol
        assert symbol is not None
        now = self._wall_clock()
        if lead in self._book_resyncs:
            self._status(sub, StreamState.RESYNCING, f"the {symbol} book is resyncing", now)
            return  # the fresh snapshot serves `sub` too
        if lead in self._stale_books:
            reason = f"the {symbol} book is paused after failed snapshots; retrying"
            self._status(sub, StreamState.STALE, reason, now)
            return
        if lead in self._retry_refused and lead not in self._awaiting_ack:
            reason = f"the {symbol} book was refused for now; asking again shortly"
            self._status(sub, StreamState.STALE, reason, now)
            return
        if lead in self._awaiting_ack or symbol in self._moving:
            return  # the lead's answer and snapshot serve `sub` too
        self._signals.append(Subscribed(sub))
        book = self._books.get(lead)
        if book is not None:  # else its snapshot is on the way, and serves `sub` too
            self._events.append(self._cut_snapshot(book, symbol, sub.depth, book.checksum(), now))

    def _move_wire(self, old: Subscription, new: Subscription) -> None:
        """Move the symbol's book on this connection from `old`'s depth to `new`'s (module docstring)."""
        symbol = new.symbol
        assert symbol is not None
        retry = self._retry_refused.get(old)
        # Subscribed or asked for on this connection (a refused one waiting to be asked again, or a
        # stale one, was unsubscribed).
        on_wire = old not in self._stale_books and (retry is None or retry[0] == math.inf)
        move = self._moving.pop(symbol, None)
        self._awaiting_ack.discard(old)
        if not on_wire:
            self._forget_stream_state(old)
            self._send_request("subscribe", [new])
            return
        old_snapshots = (move.old_snapshots if move else 0) + (old not in self._books)
        self._forget_stream_state(old)
        unsubscribe = self._send_request("unsubscribe", [old])
        subscribe = self._send_request("subscribe", [new])
        self._moving[symbol] = _DepthMove(old_snapshots, (unsubscribe, subscribe))

    def set_token(self, token: str) -> None:
        """The WebSocket token used in private subscribe frames (from REST GetWebSocketsToken)."""
        self._token = token
        self._token_reported = False

    @property
    def token(self) -> str | None:
        """The token private frames carry now (the one a `TokenRejected` was about)."""
        return self._token

    def resubscribe_private(self, now: float) -> None:
        """Subscribe again, with the current token, to what Kraken refused for the last one (after
        `TokenRejected` and `set_token`). Streams still flowing are left alone."""
        self._now = now
        if not self._connected:
            return
        refused = [sub for sub in self._subs if sub in self._token_refused]
        self._token_refused.clear()
        self._resubscribe(refused)

    def _resubscribe(self, subs: list[Subscription]) -> None:
        """A stream that was resyncing starts over from a fresh snapshot: unsubscribe first, as the
        refused unsubscribe may have left the old subscription in place ("Already subscribed")."""
        for sub in subs:
            if sub in self._sequence_resyncs:
                self._send_request("unsubscribe", [sub])
                self._send_request("subscribe", [sub], resync=True)
        self._subscribe([sub for sub in subs if sub not in self._sequence_resyncs])

    def validate(self, sub: Subscription) -> None:
        """Raise ValueError if this endpoint cannot serve `sub` (see `add`)."""
        if sub.channel.private != self.private:
            where = "private (ws-auth)" if self.private else "public (ws)"
            raise ValueError(f"{sub.describe()} cannot be served by the {where} endpoint session")
        needs_symbol = sub.channel not in (Channel.INSTRUMENTS, Channel.BALANCES, Channel.EXECUTIONS)
        if needs_symbol and not sub.symbol:
            raise ValueError(f"{sub.describe()} needs a symbol (e.g. BTC/USD)")
        if not needs_symbol and sub.symbol:
            raise ValueError(f"{sub.describe()} takes no symbol")
        if sub.channel is Channel.BOOK and sub.depth not in BOOK_DEPTHS:
            raise ValueError(f"Kraken book depth must be one of {sorted(BOOK_DEPTHS)}, got {sub.depth}")
        if sub.channel is Channel.CANDLES and sub.interval not in OHLC_INTERVALS:
            raise ValueError(
                f"Kraken ohlc interval must be one of {sorted(OHLC_INTERVALS)}, got {sub.interval}"
            )
        other = self._routes.get(_route_key(sub))
        if other is not None and other != sub and sub.channel is not Channel.BOOK:
            # Our caller's mistake: a depth or interval the channel does not use makes another
            # Subscription of the same stream (`Bridge.subscription` leaves them at their defaults).
            unused = "depth" if sub.channel is Channel.CANDLES else "depth or interval"
            raise ValueError(
                f"{sub.describe()} is open already as {other!r}: a {sub.channel.value} stream takes no "
                f"{unused}; leave it at its default"
            )

    # ------------------------------------------------------------ connection

    def book(self, sub: Subscription) -> KrakenBook | None:
        """The verified book a book subscription reads (None while absent, resyncing or moving to
        another depth): its symbol's book on the wire, at least `sub.depth` deep — cut it to that."""
        if sub not in self._subs or sub.channel is not Channel.BOOK:
            return None
        lead = self._routes.get(_route_key(sub))
        if lead is None or lead in self._book_resyncs or lead in self._stale_books:
            return None
        return self._books.get(lead)

    def connection_made(self, now: float) -> None:
        """A new socket is open: reset per-connection state and replay every subscription."""
        self._now = now
        self._connected = True
        self._reset_connection_state(now)
        self._outgoing.clear()  # frames queued for a dead socket must not leak into the new one
        routes = self._routes
        self._subscribe([sub for sub in self._subs if routes.get(_route_key(sub)) == sub])

    def connection_lost(self, now: float) -> None:
        self._connected = False
        self._reset_connection_state(now)
        self._outgoing.clear()

    # ------------------------------------------------------------ draining

    # events_received / signals_received / data_to_send: see core.outbox.Outbox

    # ------------------------------------------------------------ timers

    def next_deadline(self) -> float | None:
        """Earliest of the idle watchdog and the next ping; None when not connected."""
        if not self._connected:
            return None
        deadlines = [self._next_ping, *self._stale_books.values(), *self._snapshot_due.values()]
        deadlines.extend(due for due, _ in self._retry_refused.values())
        if not self._idle_reported:
            deadlines.append(self._last_rx + self.idle_timeout)
            deadlines.extend(
                r.sent_at + self.ack_timeout for r in self._pending.values() if r.method == "subscribe"
            )
        return min(deadlines)

    def handle_timer(self, now: float) -> None:
        self._now = now
        if not self._connected:
            return
        if not self._idle_reported and now >= self._last_rx + self.idle_timeout:
            self._idle_reported = True  # once per connection: the driver reconnects
            self._signals.append(ReconnectNeeded(f"no frame from Kraken for {now - self._last_rx:.1f} s"))
        elif not self._idle_reported and any(
            r.method == "subscribe" and now >= r.sent_at + self.ack_timeout for r in self._pending.values()
        ):
            # A subscription neither acknowledged nor refused: the link is not trustworthy.
            self._idle_reported = True
            self._signals.append(ReconnectNeeded(f"no answer to a subscribe within {self.ack_timeout:.0f} s"))
        for sub, due in list(self._snapshot_due.items()):
            if now >= due:
                self._snapshot_overdue(sub)
        for sub, (due, attempts) in list(self._retry_refused.items()):
            if now >= due:
                self._retry_refused[sub] = (math.inf, attempts)  # until its answer comes
                self._subscribe([sub])
        for sub, retry_at in list(self._stale_books.items()):
            if now >= retry_at:
                del self._stale_books[sub]
                self._send_request("subscribe", [sub], resync=True)
                self._book_resyncs[sub] = 0
                self._status_members(sub, StreamState.RESYNCING, "trying the book again", self._wall_clock())
        if now >= self._next_ping:
            self._send_request("ping", [])
            self._next_ping = now + self.ping_interval

    def _snapshot_overdue(self, sub: Subscription) -> None:
        """A resync was accepted (or not answered yet) but its snapshot never came: ask again."""
        del self._snapshot_due[sub]
        reason = f"no snapshot within {self.ack_timeout:.0f} s of resubscribing"
        if sub in self._book_resyncs:
            self._resync_book(sub, reason, self._wall_clock())
        elif sub in self._sequence_resyncs and sub not in self._token_refused:
            logger.warning("kraken %s: %s; asking again", sub.describe(), reason)
            self._send_request("unsubscribe", [sub])
            self._send_request("subscribe", [sub], resync=True)

    # ------------------------------------------------------------ outgoing frames

    def _next_req_id(self) -> int:
        req_id = next(self._req_ids)
        if req_id > _MAX_REQ_ID:
            self._req_ids = itertools.count(2)
            req_id = 1
        return req_id

    def _subscribe(self, subs: Iterable[Subscription], *, resync: bool = False) -> None:
        """Queue subscribe frames, one per (channel, depth, interval) group of symbols."""
        groups: dict[tuple[Channel, int, int], list[Subscription]] = {}
        for sub in subs:
            if sub.channel.private and self._token is None:
                self._token_refused.add(sub)
                self._reject_token(SessionInvalid(f"{self.venue}: no WebSocket token yet", venue=self.venue))
                continue
            groups.setdefault((sub.channel, sub.depth, sub.interval), []).append(sub)
        for group in groups.values():
            self._send_request("subscribe", group, resync=resync)

    def _send_request(self, method: str, subs: list[Subscription], *, resync: bool = False) -> int:
        """Queue a request frame; its req_id."""
        req_id = self._next_req_id()
        frame: dict[str, object] = {"method": method}
        if subs:
            frame["params"] = self._params(subs, subscribe=method == "subscribe")
        if resync:
            self._snapshot_due.update((sub, self._now + self.ack_timeout) for sub in subs)
        frame["req_id"] = req_id
        token = self._token if subs and subs[0].channel.private else None
        self._pending[req_id] = _Request(method, {sub.symbol: sub for sub in subs}, resync, self._now, token)
        if method == "subscribe":
            self._awaiting_ack.update(subs)
        self._outgoing.append(_encode(frame).decode())
        return req_id

    def _params(self, subs: list[Subscription], *, subscribe: bool) -> dict[str, object]:
        first = subs[0]
        params: dict[str, object] = {"channel": WIRE_CHANNEL[first.channel]}
        symbols = [sub.symbol for sub in subs if sub.symbol]
        if symbols:
            params["symbol"] = symbols
        if first.channel is Channel.BOOK:
            params["depth"] = first.depth  # unsubscribe must echo it too
        elif first.channel is Channel.CANDLES:
            params["interval"] = first.interval
        if first.channel.private:
            params["token"] = self._token or ""
            if subscribe and first.channel is Channel.EXECUTIONS:
                # Open orders and recent fills in the snapshot: nothing is lost across reconnects.
                params["snap_orders"] = True
                params["snap_trades"] = True
            elif subscribe:
                params["snapshot"] = True
        elif subscribe and first.channel is Channel.BOOK:
            params["snapshot"] = True
        return params

    # ------------------------------------------------------------ incoming frames

    def receive_text(self, text: str, now: float) -> None:
        """Handle one text frame. Never raises: bad frames become `BadFrame` signals."""
        self._now = now
        if self.private and self._sequences and now - self._last_rx >= SILENCE_SUSPECT:
            # Kraken heartbeats every second: this long a silence on a live subscription may have
            # swallowed frames (a stall the watchdog did not wait out).
            self._signals.append(SilenceEnded(now - self._last_rx))
        self._last_rx = now
        self._idle_reported = False
        received = self._wall_clock()
        try:
            frame = decode_ws_frame(text)  # book levels: checked as applied (KrakenBook)
            self._dispatch(frame, received)
        except ProtocolError as exc:
            logger.debug("bad kraken frame: %s", exc)
            self._signals.append(BadFrame(exc))
        except (ArithmeticError, ValueError, TypeError, KeyError, IndexError) as exc:
            # Should not happen (decoding and KrakenBook validate); if it does it is our bug, but one
            # frame must not take the connection down: log loudly, skip the frame.
            logger.error("kraken frame handling failed", exc_info=True)
            self._signals.append(BadFrame(ProtocolError(f"kraken ws: unusable frame ({type(exc).__name__})")))

    def _dispatch(self, frame: object, received: float) -> None:
        if isinstance(frame, BookFrame):
            self._on_book(frame, received)
        elif isinstance(frame, Heartbeat):
            pass  # only refreshes the watchdog
        elif isinstance(frame, TickerFrame):
            for ticker in frame.data:
                if self._route("ticker", ticker.symbol):
                    self._events.append(ticker_from_ws(ticker, received=received, venue=self.venue))
        elif isinstance(frame, TradeFrame):
            for trade in frame.data:
                if self._route("trade", trade.symbol):
                    self._events.append(trade_from_ws(trade, venue=self.venue))
        elif isinstance(frame, OhlcFrame):
            for candle in frame.data:
                if self._route("ohlc", candle.symbol, candle.interval):
                    self._events.append(candle_from_ws(candle, venue=self.venue))
        elif isinstance(frame, InstrumentFrame):
            if self._route("instrument", None):
                self._events.extend(instruments_from_ws(frame.data, received=received, venue=self.venue))
        elif isinstance(frame, MethodAck):
            self._on_ack(frame)
        elif isinstance(frame, Pong):
            if frame.req_id is not None:
                self._pending.pop(frame.req_id, None)
        elif isinstance(frame, StatusFrame):
            for status in frame.data:
                self._signals.append(SystemStatus(status.system))
        elif isinstance(frame, CloudflareRestarting):
            self._signals.append(ReconnectNeeded(frame.text))
        elif isinstance(frame, BalancesSnapshotFrame | BalancesUpdateFrame | ExecutionsFrame):
            self._on_private(frame, received)

    def _route(
        self, channel: str, symbol: str | None, interval: int = 0, *, snapshot: bool = False
    ) -> Subscription | None:
        """The subscription a data frame of wire `channel` belongs to, if any."""
        sub = self._routes.get((channel, symbol, interval))
        if sub is not None and self._awaiting_ack and sub in self._awaiting_ack:
            self._confirm_by_data(sub, snapshot)
        return sub

    def _confirm_by_data(self, sub: Subscription, snapshot: bool) -> None:
        """Data for a subscription whose ack never came (lost in a stalled or lossy link) proves it
        is live: Kraken only sends a channel's data after accepting the subscription.

        Not so for a resync: updates of the old subscription are still in flight when we ask again,
        so only the fresh snapshot proves the new one (an update taken as proof would swallow the
        pending request, and with it a refusal: the stream would wait for a snapshot forever)."""
        for req_id, request in list(self._pending.items()):
            if request.method == "subscribe" and request.subs.get(sub.symbol) == sub:
                if request.resync and not snapshot:
                    return
                self._awaiting_ack.discard(sub)
                del request.subs[sub.symbol]
                if not request.subs:
                    del self._pending[req_id]
                if not request.resync:
                    self._signals.extend(Subscribed(member) for member in self._members(sub))
                return
        self._awaiting_ack.discard(sub)

    # ------------------------------------------------------------ acks

    def _on_ack(self, ack: MethodAck) -> None:
        if ack.method not in (None, "subscribe", "unsubscribe"):
            return  # trading acks (add_order, …) belong to whoever sent the order
        request = self._pending.get(ack.req_id) if ack.req_id is not None else None
        req_id = ack.req_id
        if request is None:
            req_id, request = self._match_without_req_id(ack)
        if request is None or req_id is None:
            if not ack.ok:
                logger.warning("kraken refused a request we did not send: %s", ack.error_text)
            return
        symbol = ack.ack_symbol
        if symbol in request.subs:
            targets = [request.subs.pop(symbol)]
        elif symbol is None or len(request.subs) == 1:
            # Failure acks often omit the symbol: they concern the whole request.
            targets = list(request.subs.values())
            request.subs.clear()
        else:
            targets = []
        if not request.subs:
            del self._pending[req_id]
        if self._moving:
            # Any answer to a move's requests comes after the last frame of the old depth.
            for symbol, move in list(self._moving.items()):
                if req_id in move.req_ids:
                    del self._moving[symbol]
        if request.method != "subscribe":
            if not ack.ok:
                logger.debug("kraken %s failed: %s", request.method, ack.error_text)
            return
        error = None if ack.ok else error_from_kraken(ack.error_text or "unknown error", venue=self.venue)
        if error is not None and error.code == "Already subscribed":
            error = None
        if isinstance(error, SessionInvalid):
            self._token_refused_for(request, targets, error)
            return
        for sub in targets:
            self._awaiting_ack.discard(sub)
            if self._routes.get(_route_key(sub)) != sub:
                continue  # removed while the request was in flight, or its book moved depth since
            members = self._members(sub)
            if error is not None:
                if not error.retryable:
                    # Refused for good (unknown pair, bad argument, no permission): replaying it
                    # on every reconnect would only be refused again, so forget it here.
                    self._forget_refused(sub)
                else:
                    # A passing refusal on a live connection: ask again after a growing pause
                    # rather than wait for the next reconnect.
                    _, attempts = self._retry_refused.get(sub, (0.0, 0))
                    delay = min(RETRY_REFUSED_MAX_S, RETRY_REFUSED_FIRST_S * 2**attempts)
                    self._retry_refused[sub] = (self._now + delay, attempts + 1)
                self._signals.extend(SubscribeFailed(member, error) for member in members)
            else:
                self._retry_refused.pop(sub, None)
                if not request.resync:
                    self._signals.extend(Subscribed(member) for member in members)

    def _forget_refused(self, sub: Subscription) -> None:
        """`sub` (on the wire) is refused for good: forget it, and for a book every depth of it."""
        for member in self._members(sub):
            self._subs.pop(member, None)
        if sub.channel is Channel.BOOK and sub.symbol is not None:
            self._book_members.pop(sub.symbol, None)
            self._cuts.pop(sub.symbol, None)
            self._moving.pop(sub.symbol, None)
        del self._routes[_route_key(sub)]
        self._forget_stream_state(sub)

    def _match_without_req_id(self, ack: MethodAck) -> tuple[int | None, _Request | None]:
        """Acks without req_id (Kraken omits it when the request had none): match by content."""
        channel, symbol = ack.ack_channel, ack.ack_symbol
        for req_id, request in self._pending.items():
            if ack.method is not None and request.method != ack.method:
                continue
            for sub in request.subs.values():
                if (channel is None or WIRE_CHANNEL[sub.channel] == channel) and (
                    symbol is None or sub.symbol == symbol
                ):
                    return req_id, request
        return None, None

    def _token_refused_for(self, request: _Request, targets: list[Subscription], error: VenueError) -> None:
        """Kraken refused the token `request` carried. If a newer token has arrived since, ask again
        with that one at once; otherwise keep the subscriptions for `resubscribe_private` and ask
        the driver for a new token (once per token)."""
        for sub in targets:
            self._awaiting_ack.discard(sub)
        wanted = [sub for sub in targets if sub in self._subs]
        if request.token is not None and self._token not in (None, request.token):
            self._resubscribe(wanted)
            return
        self._token_refused.update(wanted)
        self._reject_token(error)

    def _reject_token(self, error: VenueError) -> None:
        if not self._token_reported:  # once per token: the driver fetches a new one
            self._token_reported = True
            self._signals.append(TokenRejected(error))

    # ------------------------------------------------------------ books

    def _on_book(self, frame: BookFrame, received: float) -> None:
        # The hot path: a Subscription's hash is recomputed on every lookup, so the (usually
        # empty) resync and stale maps are tested for emptiness before membership; routing, the
        # checksum and the event are written out here rather than called. Shallower depths cut
        # from the book (`_cuts`, usually empty too) are worked out in calls.
        snapshot = frame.type == "snapshot"
        routes, awaiting_ack, cuts_of = self._routes, self._awaiting_ack, self._cuts
        for data in frame.data:
            symbol = data.symbol
            sub = routes.get(("book", symbol, 0))
            if sub is None:
                continue
            if self._moving and symbol in self._moving and self._old_depth_frame(symbol, snapshot):
                continue
            if awaiting_ack and sub in awaiting_ack:
                self._confirm_by_data(sub, snapshot)
            if self._stale_books and sub in self._stale_books:
                continue
            cuts = cuts_of.get(symbol) if cuts_of else None
            windows: list[BookWindow] | None = None
            if snapshot:
                book = KrakenBook(sub.depth)
            else:
                existing = self._books.get(sub)
                if existing is None:
                    if sub not in self._book_resyncs:
                        # Updates, but no snapshot before them on this connection: it was lost (a
                        # stalled link drops frames), and without it no update can ever apply.
                        self._resync_book(sub, f"no snapshot for {symbol} before its updates", received)
                    continue  # resyncing: the fresh snapshot starts the book again
                book = existing
                if cuts:
                    windows = [
                        book.window(depth) for depth in cuts if book.touched_by(depth, data.bids, data.asks)
                    ]
            try:
                bids, asks = book.apply_wire(data.bids, data.asks)
            except KrakenBookError as exc:
                # Refused, and the book has taken the levels before the bad one: rebuild it.
                self._signals.append(BadFrame(exc))
                self._resync_book(sub, f"{exc.message}; the {symbol} book is not verifiable", received)
                continue
            checksum = data.checksum
            if checksum is not None:
                local = book.checksum()
                if local != checksum:
                    reason = f"checksum mismatch for {symbol}: Kraken {checksum}, local {local}"
                    self._resync_book(sub, reason, received)
                    continue
            kind: type[BookSnapshot | BookUpdate]
            if snapshot:
                self._books[sub] = book  # before the timestamp: a bad one still leaves it verified
                kind, bids, asks = BookSnapshot, book.bids_levels(), book.asks_levels()
            else:
                kind = BookUpdate
            stamp = self._parse_timestamp(data.timestamp) if data.timestamp else received
            self._events.append(
                kind(
                    venue=self.venue,
                    ts=stamp,
                    symbol=symbol,
                    depth=sub.depth,
                    bids=bids,
                    asks=asks,
                    checksum=checksum,
                )
            )
            if cuts:
                if snapshot:
                    cut = self._cut_snapshot
                    self._events.extend(cut(book, symbol, depth, checksum, stamp) for depth in cuts)
                elif windows:
                    self._cut_updates(book, symbol, windows, checksum, stamp)
            if snapshot and self._book_resyncs.pop(sub, None) is not None:
                self._snapshot_due.pop(sub, None)
                self._status_members(sub, StreamState.LIVE, "book snapshot verified", received)

    def _old_depth_frame(self, symbol: str, snapshot: bool) -> bool:
        """True for a frame of the depth the symbol's book is moving away from (dropped). Each
        subscription starts with one snapshot, so once the old ones are in, a snapshot is the new
        subscription's (both answers to the move were lost): the move is over."""
        move = self._moving[symbol]
        if not snapshot:
            return True
        if move.old_snapshots:
            move.old_snapshots -= 1
            return True
        del self._moving[symbol]
        return False

    def _cut_snapshot(
        self, book: KrakenBook, symbol: str, depth: int, checksum: int | None, ts: float
    ) -> BookSnapshot:
        """The book's best `depth` levels as a snapshot; the checksum covers them (the top 10)."""
        return BookSnapshot(
            venue=self.venue,
            ts=ts,
            symbol=symbol,
            depth=depth,
            bids=book.bids_levels(depth),
            asks=book.asks_levels(depth),
            checksum=checksum,
        )

    def _cut_updates(
        self, book: KrakenBook, symbol: str, windows: list[BookWindow], checksum: int | None, ts: float
    ) -> None:
        """An update per shallower depth whose best levels the message changed."""
        for window in windows:
            bids, asks = book.changes_since(window)
            if bids or asks:
                self._events.append(
                    BookUpdate(
                        venue=self.venue,
                        ts=ts,
                        symbol=symbol,
                        depth=window.depth,
                        bids=bids,
                        asks=asks,
                        checksum=checksum,
                    )
                )

    def _resync_book(self, sub: Subscription, reason: str, received: float) -> None:
        self._books.pop(sub, None)
        self._snapshot_due.pop(sub, None)
        failures = self._book_resyncs.get(sub, -1) + 1
        if failures >= MAX_BOOK_RESYNCS:
            # Asking again at network speed would only loop: pause, then start over.
            self._book_resyncs.pop(sub, None)
            self._stale_books[sub] = self._now + BOOK_RETRY_AFTER
            message = f"{reason}; {failures} fresh snapshots failed too, retrying in {BOOK_RETRY_AFTER:.0f} s"
            logger.warning("%s", message)
            self._send_request("unsubscribe", [sub])
            self._status_members(sub, StreamState.STALE, message, received)
            return
        self._book_resyncs[sub] = failures
        logger.warning("%s; resubscribing %s", reason, sub.describe())
        self._send_request("unsubscribe", [sub])
        self._send_request("subscribe", [sub], resync=True)
        self._signals.append(Resyncing(sub, reason))
        self._status_members(sub, StreamState.RESYNCING, reason, received)

    # ------------------------------------------------------------ private channels

    def _on_private(
        self, frame: BalancesSnapshotFrame | BalancesUpdateFrame | ExecutionsFrame, received: float
    ) -> None:
        snapshot = isinstance(frame, BalancesSnapshotFrame) or (
            isinstance(frame, ExecutionsFrame) and frame.type == "snapshot"
        )
        sub = self._route(
            "executions" if isinstance(frame, ExecutionsFrame) else "balances", None, snapshot=snapshot
        )
        if sub is None:
            return
        recovering = snapshot and sub in self._sequence_resyncs
        if not self._accept_sequence(sub, frame.sequence, snapshot, received):
            return
        if isinstance(frame, BalancesSnapshotFrame):
            self._events.append(balance_snapshot_from_ws(frame.data, received=received, venue=self.venue))
        elif isinstance(frame, BalancesUpdateFrame):
            for row in frame.data:
                self._events.append(balance_update_from_ws(row, received=received, venue=self.venue))
        else:
            for report in frame.data:
                self._events.append(
                    execution_from_ws(report, snapshot=snapshot, received=received, venue=self.venue)
                )
        if recovering:  # after the snapshot's events, as for books
            self._snapshot_due.pop(sub, None)
            self._status(sub, StreamState.LIVE, "fresh snapshot received", received)

    def _accept_sequence(
        self, sub: Subscription, sequence: int | None, snapshot: bool, received: float
    ) -> bool:
        previous_rx = self._private_rx_wall.get(sub, received)
        self._private_rx_wall[sub] = received
        if snapshot:
            if sequence is not None:
                self._sequences[sub] = sequence
            self._sequence_resyncs.discard(sub)
            return True
        if sub in self._sequence_resyncs:
            return False  # waiting for the snapshot that restarts the numbering
        last = self._sequences.get(sub)
        if sequence is None:
            return True
        if last is not None and sequence != last + 1:
            reason = f"sequence jumped from {last} to {sequence}"
            logger.warning("kraken %s: %s; resubscribing with snapshot", sub.describe(), reason)
            self._sequences.pop(sub, None)
            self._sequence_resyncs.add(sub)
            self._events.append(
                Gap(
                    venue=self.venue,
                    ts=received,
                    stream=sub.describe(),
                    start=previous_rx,
                    end=received,
                    reason=reason,
                )
            )
            self._send_request("unsubscribe", [sub])
            self._send_request("subscribe", [sub], resync=True)
            self._signals.append(Resyncing(sub, reason))
            self._status(sub, StreamState.RESYNCING, reason, received)
            return False
        # No baseline yet (update before any snapshot on this connection): adopt it.
        self._sequences[sub] = sequence
        return True

    # ------------------------------------------------------------ helpers

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
