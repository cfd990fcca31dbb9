"""`PrimaryWsSession`: the pure state machine of one Primary API WebSocket (primary.md §4).

Same driver API as `KrakenWsSession`, so `io/supervisor.py` runs it unchanged::

    session.connection_made(now)             # socket open: smd/os frames are queued
    for frame in session.data_to_send(): ws.send(frame)
    session.receive_text(text, now)          # for every incoming frame
    session.events_received()                # normalized core.events
    session.signals_received()               # core.signals for the driver
    session.next_deadline() / handle_timer(now)

One socket carries everything (market data for every product and the account's order reports).
The socket itself is authenticated by the `X-Auth-Token` header on the upgrade — the driver's job —
and kept alive by WebSocket ping frames every 30 s (also the driver's: Primary has no application
heartbeat, §4.1).

Design decisions:

* Subscriptions → `smd`. A product's entries are the union over its subscriptions (ticker BI,OF,LA;
  book BI,OF; trades LA; stats OP,CL,HI,LO,SE,TV,OI,EV,NV,TC,IV) and its depth the largest book
  depth (1 otherwise). Products with the same (entries, depth) share `smd` messages of at most
  `MAX_PRODUCTS_PER_SMD` products. `level` is 1 (fastest throttle).
* Every book depth of a product is cut from the one stream of it (requested at the largest depth
  wanted; Primary sends whole books, so a cut is the first levels of each side). When a deeper
  book joins on a live connection the new `smd` raises the depth, but `Md` frames of the old
  depth are still on their way and do not say their depth: a side of exactly an old depth's
  number of levels may be cut short. Until a side longer than every old depth proves the new
  stream (or `confirm_after` passes: Primary has answered the `smd` by then; the book in hand is
  served then), a book deeper than that is served only from frames whose every side is either
  long enough for it or of a length no old depth has (then it is the whole side). Never a book
  of another depth: at worst a deeper book waits.
* Primary has no subscribe ack and no unsubscribe. A subscription is `Subscribed` when the first
  `Md` for its product arrives, or — for quiet instruments — when `confirm_after` seconds pass
  without an error frame naming it. Executions (`os`) are `Subscribed` as soon as the frame is queued.
* `add` on a live connection sends an `smd` for that product only, and only when its entry union or
  depth grew beyond what this connection already requested. `remove` stops routing; Primary keeps
  streaming the product until the next reconnect (which requests only what is still wanted).
  Messages are routed by what they contain (entries present, even as null): if a product's union
  grew and Primary keeps the narrower stream too, each message still feeds only the channels it
  has data for.
* An error frame naming a product (`Product X:ROFX don't exist`, the `smd` echoed in `message`) →
  `SubscribeFailed(sub, UnknownSymbol)` for every subscription of that product only; they are
  dropped (replaying them would fail again). The socket and the other products stay up. An error
  echoing an `os` fails the executions subscription. Auth errors (`Access Denied`, token wording)
  → `TokenRejected` then `ReconnectNeeded` (log in again, then reconnect). Other errors (order
  entry over WS) → `BadFrame` carrying the mapped `VenueError`.
* Idle watchdog: Primary silences sockets whose token was invalidated (a login elsewhere) without
  closing them. With at least one market-data subscription, no frame at all for `idle_timeout`
  seconds while `market_open(wall_now)` → `ReconnectNeeded("socket silent …")` (a refused upgrade on
  the reconnect, or the connector's periodic REST token check, then triggers the new login);
  While the market is closed silence is expected and the window restarts.
* Events are emitted when they change: a `Ticker` when bid/ask/last (or their sizes) change, a
  `BookSnapshot` when the levels at that depth change, `SessionStats` when any figure changes,
  a `Trade` when `LA` changes (see `normalize.TradeTracker`). The first message of each connection
  always emits (consumers get a fresh value after a reconnect).
* `Md` frames in Primary's spelling take a hot path (bench/README.md §1): decoded in one pass with
  the book sides left as text (`messages.parse_md_lazily`); a side whose text equals the product's
  previous one gives the levels worked out then (the live feed's common case: `LA` moves, the
  book does not); a side that changed is decoded, and its numbers checked while it becomes
  levels. A product whose sides both changed is decoded whole next time (one decode costs less
  than three) until a side repeats. Any doubt about a number or the shape → `parse_ws_frame` on
  the text gives the verdict, so a frame is refused exactly when the general route refuses it.
* Order reports go through `normalize.OrderTracker` (kept across reconnects, so the `os`
  snapshot replayed on resubscribe adds no duplicate fills); the connector may feed REST order
  reports into the same tracker (`session.orders`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from decimal import Decimal

import msgspec
from msgspec import UNSET

from brokerbridge.core.book import OrderBook
from brokerbridge.core.errors import (
    ProtocolError,
    SessionInvalid,
    UnknownSymbol,
    VenueError,
)
from brokerbridge.core.events import AnyEvent, BookSnapshot, Channel, Level, Subscription
from brokerbridge.core.outbox import Outbox
from brokerbridge.core.signals import (
    BadFrame,
    ReconnectNeeded,
    Signal,
    Subscribed,
    SubscribeFailed,
    TokenRejected,
)
from brokerbridge.venues.primary import DEFAULT_MARKET, VENUE
from brokerbridge.venues.primary.errors import error_from_primary, match_error
from brokerbridge.venues.primary.messages import (
    MAX_PRODUCTS_PER_SMD,
    MD_ENTRIES,
    EntryValue,
    ErrorFrame,
    LazyMdFrame,
    Levels,
    MdEntries,
    MdFrame,
    OrFrame,
    cancel_order_frame,
    md_symbol,
    new_order_frame,
    os_frame,
    parse_md_lazily,
    parse_md_rows_unchecked,
    parse_rows,
    parse_ws_frame,
    smd_frame,
)
from brokerbridge.venues.primary.normalize import (
    BOOK_ENTRIES,
    STATS_ENTRIES,
    TICKER_ENTRIES,
    TRADE_ENTRIES,
    OrderTracker,
    TradeTracker,
    checked_levels,
    ms_to_seconds,
    stats_from_md,
    ticker_of,
    top_of,
    valid_levels,
)

logger = logging.getLogger(__name__)

__all__ = [
    "CHANNEL_ENTRIES",
    "MAX_BOOK_DEPTH",
    "BadFrame",
    "PrimaryWsSession",
    "ReconnectNeeded",
    "Signal",
    "SubscribeFailed",
    "Subscribed",
    "TokenRejected",
    "always_open",
]

CHANNEL_ENTRIES: dict[Channel, tuple[str, ...]] = {
    Channel.TICKER: TICKER_ENTRIES,
    Channel.BOOK: BOOK_ENTRIES,
    Channel.TRADES: TRADE_ENTRIES,
    Channel.STATS: STATS_ENTRIES,
}
MARKET_DATA_CHANNELS = frozenset(CHANNEL_ENTRIES)
SUPPORTED_CHANNELS = MARKET_DATA_CHANNELS | {Channel.EXECUTIONS}
MAX_BOOK_DEPTH = 5  # the manual's dictionary: depth 1–5
_ENTRY_ORDER = {name: i for i, name in enumerate(MD_ENTRIES)}

_Want = tuple[tuple[str, ...], int]  # (entries in canonical order, depth)
_Sides = tuple[tuple[Level, ...], tuple[Level, ...]]  # (bids, asks)
_Top = tuple[Decimal | None, Decimal | None]  # a book side's first (price, size)
_NO_TOP: _Top = (None, None)
_NEVER = msgspec.Raw(b"!")  # not JSON: no frame's side has this text
# Change-detection keys: (channel value, symbol, depth). The channel's str value, not the Enum:
# hashing an Enum runs Python code, and these keys are hashed several times per Md frame.
_EmitKey = tuple[str, str, int]


def always_open(_wall_now: float) -> bool:
    """Default `market_open`: the watchdog is always armed."""
    return True


def _canonical(entries: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(entries), key=_ENTRY_ORDER.__getitem__))


class _SidesMemo:
    """A product's book sides as last received: their JSON text, levels and top (see `_side`)."""

    __slots__ = ("ask", "asks", "bid", "bids", "raw_bi", "raw_of")

    def __init__(self) -> None:
        self.keep(_NEVER, (), _NO_TOP, _NEVER, (), _NO_TOP)

    def keep(
        self,
        raw_bi: msgspec.Raw,
        bids: tuple[Level, ...],
        bid: _Top,
        raw_of: msgspec.Raw,
        asks: tuple[Level, ...],
        ask: _Top,
    ) -> None:
        """Remember a frame's sides; `_NEVER` for a text not known (equal to no side's text)."""
        self.raw_bi, self.bids, self.bid = raw_bi, bids, bid
        self.raw_of, self.asks, self.ask = raw_of, asks, ask


def _side(raw: msgspec.Raw, text: str) -> tuple[tuple[Level, ...], _Top]:
    """`_checked_side` of a side `parse_md_lazily` left as text."""
    try:
        rows = parse_rows(raw)
    except ValueError:
        parse_ws_frame(text)  # raises: the frame's shape is wrong
        raise
    return _checked_side(rows, text)


def _checked_side(rows: Levels, text: str) -> tuple[tuple[Level, ...], _Top]:
    """One book side of an `Md` frame whose rows are not checked yet: its levels (rows that have a
    price and a size) and its top (the first row with a price). When a row does not pass the quick
    check, `parse_ws_frame(text)` gives the verdict on the whole frame: it raises the
    `ProtocolError` the frame deserves, or confirms every number."""
    levels = checked_levels(rows)
    if levels is not None:
        return levels, ((levels[0].price, levels[0].qty) if levels else _NO_TOP)
    parse_ws_frame(text)  # a row lacks a price or size, or a number is unusual: the exact check
    return valid_levels(rows), top_of(rows)


class _Route:
    """What an `Md` frame of one product feeds, worked out once per change of its subscriptions
    instead of once per frame."""

    __slots__ = ("book_depths", "stats_key", "subs", "ticker_key", "trades")

    def __init__(self, symbol: str, subs: list[Subscription]) -> None:
        channels = {sub.channel for sub in subs}
        self.subs = tuple(subs)
        self.ticker_key: _EmitKey | None = (
            (Channel.TICKER.value, symbol, 0) if Channel.TICKER in channels else None
        )
        depths = sorted({sub.depth for sub in subs if sub.channel is Channel.BOOK})
        # (depth, change-detection key, `_books` key) per book depth subscribed
        self.book_depths = tuple(
            (depth, (Channel.BOOK.value, symbol, depth), (symbol, depth)) for depth in depths
        )
        self.trades = Channel.TRADES in channels
        self.stats_key: _EmitKey | None = (
            (Channel.STATS.value, symbol, 0) if Channel.STATS in channels else None
        )


class _Deepening:
    """A product whose requested depth grew on this connection (see the module docstring)."""

    __slots__ = ("latest", "old_depths", "until")

    def __init__(self, old_depths: frozenset[int], until: float) -> None:
        self.old_depths = old_depths  # depths requested before: their frames may still arrive
        self.until = until  # when the new depth is taken as streaming in any case
        self.latest: _Sides | None = None  # the last sides withheld from a deeper book

    def proven_by(self, bids: int, asks: int) -> bool:
        """A side longer than every old depth comes from the new stream."""
        deepest = max(self.old_depths)
        return bids > deepest or asks > deepest

    def serves(self, depth: int, bids: int, asks: int) -> bool:
        """Whether a frame with sides of these lengths is a whole book of `depth`: each side is long
        enough, or of a length that no old request cuts a side to (the whole side, then)."""
        old = self.old_depths
        return (bids >= depth or bids not in old) and (asks >= depth or asks not in old)


class PrimaryWsSession(Outbox):
    """Pure Primary WS session (market data + order reports on one socket). See the module docstring."""

    def __init__(
        self,
        *,
        venue: str = VENUE,
        idle_timeout: float = 180.0,
        confirm_after: float = 5.0,
        market_open: Callable[[float], bool] = always_open,
        wall_clock: Callable[[], float] = time.time,
        account: str | None = None,
        market_id: str = DEFAULT_MARKET,
        level: int = 1,
        snapshot_only_active: bool = True,
    ) -> None:
        self.venue = venue
        self.idle_timeout = idle_timeout
        self.confirm_after = confirm_after
        self.account = account
        self.market_id = market_id
        self.level = level
        self.snapshot_only_active = snapshot_only_active
        self._market_open = market_open
        self._wall_clock = wall_clock
        self._subs: dict[Subscription, None] = {}  # ordered set: replay in the order added
        self._by_symbol: dict[str, list[Subscription]] = {}  # market-data subs per product
        self._routes: dict[str, _Route] = {}  # built from _by_symbol on first use; dropped on change
        self.orders = OrderTracker()
        self.trades = TradeTracker()
        self._init_outbox()
        self._connected = False
        self._reset_connection_state(0.0)

    def _reset_connection_state(self, now: float) -> None:
        self._requested: dict[str, _Want] = {}  # what this connection asked Primary for, per product
        self._unconfirmed: dict[Subscription, float] = {}  # sub → when its smd/os was queued
        self._seen_products: set[str] = set()  # products with an Md on this connection
        self._last_emitted: dict[_EmitKey, object] = {}
        # The latest levels per (product, depth): book() builds its OrderBook from them on demand,
        # not every frame (Primary sends whole snapshots, so nothing is applied incrementally).
        self._books: dict[tuple[str, int], _Sides] = {}
        self._sides: dict[str, _SidesMemo] = {}  # per product: its last book sides (as text too)
        self._churning: set[str] = set()  # products whose last frame changed both book sides
        self._deepening: dict[str, _Deepening] = {}  # products whose book depth grew: old frames due
        self._quiet_since = now  # start of the current silent window (watchdog)
        self._idle_reported = False

    # ------------------------------------------------------------ subscriptions

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        return tuple(self._subs)

    @property
    def connected(self) -> bool:
        return self._connected

    def validate(self, sub: Subscription) -> None:
        """Raise ValueError if Primary cannot serve `sub` on this socket (our mistake, not Primary's)."""
        if sub.channel not in SUPPORTED_CHANNELS:
            names = ", ".join(sorted(c.value for c in SUPPORTED_CHANNELS))
            hint = {
                Channel.BALANCES: " (Primary has no balance stream: poll rest/risk/accountReport)",
                Channel.POSITIONS: " (positions are polled from rest/risk/position/getPositions)",
                Channel.INSTRUMENTS: " (instruments come from rest/instruments/details)",
                Channel.CANDLES: " (Primary serves no candles)",
            }.get(sub.channel, "")
            raise ValueError(f"{sub.describe()}: the Primary socket serves {names}{hint}")
        if sub.channel is Channel.EXECUTIONS:
            if sub.symbol:
                raise ValueError(f"{sub.describe()} takes no symbol (the account is the session's)")
            return
        if not sub.symbol:
            raise ValueError(f"{sub.describe()} needs a symbol (e.g. 'MERV - XMEV - GGAL - 24hs')")
        if sub.channel is Channel.BOOK and not 1 <= sub.depth <= MAX_BOOK_DEPTH:
            raise ValueError(f"Primary book depth must be 1..{MAX_BOOK_DEPTH}, got {sub.depth}")

    def add(self, sub: Subscription, now: float) -> None:
        """Remember `sub`; if connected, queue what it needs (see the module docstring). Idempotent."""
        if sub in self._subs:
            return
        self.validate(sub)
        self._subs[sub] = None
        if sub.symbol is not None and sub.channel is not Channel.EXECUTIONS:
            self._by_symbol.setdefault(sub.symbol, []).append(sub)
            self._routes.pop(sub.symbol, None)
        if not self._connected:
            return
        if sub.channel is Channel.EXECUTIONS:
            self._subscribe_orders(sub)
            return
        assert sub.symbol is not None
        want = self._want(sub.symbol)
        have = self._requested.get(sub.symbol)
        if have is not None and set(want[0]) <= set(have[0]) and want[1] <= have[1]:
            # Already streamed on this connection with enough entries/depth: just route it.
            if sub.symbol in self._seen_products:
                self._confirm(sub)
            else:
                self._unconfirmed[sub] = now
            return
        if have is not None:
            want = (_canonical(want[0] + have[0]), max(want[1], have[1]))
            if want[1] > have[1] and set(have[0]) & set(BOOK_ENTRIES):
                # Frames of the shallower book already sent are still on their way.
                before = self._deepening.get(sub.symbol)
                old = frozenset({have[1]}) | (before.old_depths if before else frozenset())
                self._deepening[sub.symbol] = _Deepening(old, now + self.confirm_after)
        self._send_smd({want: [sub.symbol]}, now)

    def remove(self, sub: Subscription, now: float) -> None:
        """Forget `sub`. Primary has no unsubscribe: the product streams on until the next reconnect,
        its messages are just no longer routed (to this subscription)."""
        if sub not in self._subs:
            return
        del self._subs[sub]
        self._unconfirmed.pop(sub, None)
        if sub.symbol is not None and sub.channel is not Channel.EXECUTIONS:
            subs = self._by_symbol.get(sub.symbol, [])
            if sub in subs:
                subs.remove(sub)
            if not subs:
                self._by_symbol.pop(sub.symbol, None)
            self._routes.pop(sub.symbol, None)
            channel = sub.channel.value
            for key in [k for k in self._last_emitted if k[0] == channel and k[1] == sub.symbol]:
                del self._last_emitted[key]

    def book(self, sub: Subscription) -> OrderBook | None:
        """The latest book for a book subscription (None before its first message on this connection).

        Built on each call from the last `Md` frame's levels: Primary sends whole books, so
        keeping an `OrderBook` current would mean building one per frame for a rare reader."""
        if sub not in self._subs or sub.channel is not Channel.BOOK or sub.symbol is None:
            return None
        sides = self._books.get((sub.symbol, sub.depth))
        if sides is None:
            return None
        book = OrderBook(sub.depth)
        book.replace(*sides)
        return book

    def _want(self, symbol: str) -> _Want:
        entries: list[str] = []
        depth = 1
        for sub in self._by_symbol.get(symbol, ()):
            entries.extend(CHANNEL_ENTRIES[sub.channel])
            if sub.channel is Channel.BOOK:
                depth = max(depth, sub.depth)
        return _canonical(entries), depth

    # ------------------------------------------------------------ connection

    def connection_made(self, now: float) -> None:
        """A new socket is open: reset per-connection state and request every subscription."""
        self._connected = True
        self._reset_connection_state(now)
        self._outgoing.clear()  # frames queued for a dead socket must not leak into the new one
        groups: dict[_Want, list[str]] = {}
        for symbol in self._by_symbol:
            groups.setdefault(self._want(symbol), []).append(symbol)
        self._send_smd(groups, now)
        for sub in self._subs:
            if sub.channel is Channel.EXECUTIONS:
                self._subscribe_orders(sub)

    def connection_lost(self, now: float) -> None:
        self._connected = False
        self._reset_connection_state(now)
        self._outgoing.clear()

    # ------------------------------------------------------------ draining

    # events_received / signals_received / data_to_send: see core.outbox.Outbox

    # ------------------------------------------------------------ order entry (optional)

    def send_order(self, **order: object) -> None:
        """Queue a `no` frame (arguments of `messages.new_order_frame`). Results come as `or` reports."""
        if not self._connected:
            raise RuntimeError("not connected: send the order over REST or wait for the socket")
        self._outgoing.append(new_order_frame(**order))  # type: ignore[arg-type]

    def cancel_order(self, client_order_id: str, proprietary: str) -> None:
        """Queue a `co` frame for the request `client_order_id`."""
        if not self._connected:
            raise RuntimeError("not connected: cancel over REST or wait for the socket")
        self._outgoing.append(cancel_order_frame(client_order_id, proprietary))

    # ------------------------------------------------------------ timers

    def _watchdog_armed(self) -> bool:
        return any(sub.channel in MARKET_DATA_CHANNELS for sub in self._subs)

    def next_deadline(self) -> float | None:
        """Earliest of the idle watchdog and the pending quiet confirmations; None when disconnected."""
        if not self._connected:
            return None
        deadlines = [t + self.confirm_after for t in self._unconfirmed.values()]
        deadlines.extend(deepening.until for deepening in self._deepening.values())
        if not self._idle_reported and self._watchdog_armed():
            deadlines.append(self._quiet_since + self.idle_timeout)
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        if not self._connected:
            return
        for sub, since in list(self._unconfirmed.items()):
            if now >= since + self.confirm_after:
                # No error frame named it in time: Primary accepted it, the instrument is just quiet.
                self._confirm(sub)
        for symbol, deepening in list(self._deepening.items()):
            if now >= deepening.until:
                del self._deepening[symbol]
                if deepening.latest is not None:
                    self._serve_withheld(symbol, *deepening.latest)
        if self._idle_reported or not self._watchdog_armed():
            return
        if now >= self._quiet_since + self.idle_timeout:
            if not self._market_open(self._wall_clock()):
                self._quiet_since = now  # silence is expected now; start a fresh window
                return
            self._idle_reported = True  # once per connection: the driver reconnects
            # Only a reconnect, no new login: a quiet instrument (or a holiday the market hours do
            # not know) is silent too, and each login revokes the last token. If the token *was*
            # revoked, the reconnect's upgrade is refused (401) and the driver logs in then.
            self._signals.append(
                ReconnectNeeded(f"socket silent for {now - self._quiet_since:.0f} s while the market is open")
            )

    # ------------------------------------------------------------ outgoing frames

    def _send_smd(self, groups: dict[_Want, list[str]], now: float) -> None:
        for (entries, depth), symbols in groups.items():
            if not entries:
                continue
            for start in range(0, len(symbols), MAX_PRODUCTS_PER_SMD):
                batch = symbols[start : start + MAX_PRODUCTS_PER_SMD]
                self._outgoing.append(
                    smd_frame(
                        ((s, self.market_id) for s in batch), entries=entries, depth=depth, level=self.level
                    )
                )
            for symbol in symbols:
                self._requested[symbol] = (entries, depth)
                for sub in self._by_symbol.get(symbol, ()):
                    if sub not in self._unconfirmed:
                        self._unconfirmed[sub] = now

    def _subscribe_orders(self, sub: Subscription) -> None:
        self._outgoing.append(os_frame(self.account, snapshot_only_active=self.snapshot_only_active))
        self._signals.append(Subscribed(sub))

    def _confirm(self, sub: Subscription) -> None:
        self._unconfirmed.pop(sub, None)
        self._signals.append(Subscribed(sub))

    # ------------------------------------------------------------ incoming frames

    def receive_text(self, text: str, now: float) -> None:
        """Handle one text frame. Never raises: bad frames become `BadFrame` signals."""
        self._quiet_since = now
        self._idle_reported = False
        try:
            if self._churning and md_symbol(text) in self._churning:
                whole = parse_md_rows_unchecked(text)
                if whole is not None:
                    self._on_churning_md(whole, text)
                    return
            else:
                lazy = parse_md_lazily(text)
                if lazy is not None:
                    self._on_lazy_md(lazy, text)
                    return
            frame = parse_ws_frame(text)
            if isinstance(frame, MdFrame):
                self._on_md(frame)
            elif isinstance(frame, OrFrame):
                self._on_report(frame, self._wall_clock())
            else:
                self._on_error(frame)
        except ProtocolError as exc:
            logger.debug("bad primary frame: %s", exc)
            self._signals.append(BadFrame(exc))
        except (ArithmeticError, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            # Should not happen (parse_ws_frame validates); if it does it is our bug, but one frame
            # must not take the connection down: log loudly, skip the frame.
            logger.error("primary frame handling failed", exc_info=True)
            self._signals.append(
                BadFrame(ProtocolError(f"primary ws: unusable frame ({type(exc).__name__})"))
            )

    def _on_lazy_md(self, frame: LazyMdFrame, text: str) -> None:
        """An `Md` frame of the one-pass route: a book side whose text equals the product's previous
        one gives the levels worked out then; one that changed is decoded and checked now."""
        data = frame.marketData
        symbol = frame.instrumentId.symbol
        raw_bi, raw_of = data.BI, data.OF
        memo = self._memo(symbol)
        same_bi, same_of = raw_bi == memo.raw_bi, raw_of == memo.raw_of
        bids, bid = (memo.bids, memo.bid) if same_bi else _side(raw_bi, text)
        asks, ask = (memo.asks, memo.ask) if same_of else _side(raw_of, text)
        # Only now, both sides having passed: a side is remembered only once its frame is accepted.
        if not (same_bi or same_of or memo.raw_bi is _NEVER):
            self._churning.add(symbol)  # both sides changed: decode its next frame whole
        memo.keep(raw_bi, bids, bid, raw_of, asks, ask)
        self._route_md(symbol, frame.timestamp, data, bool(raw_bi) or bool(raw_of), bids, asks, bid, ask)

    def _on_churning_md(self, frame: MdFrame, text: str) -> None:
        """An `Md` frame of a product whose book sides both changed last time, decoded whole by
        `parse_md_rows_unchecked`: its rows checked here. Back to the lazy route once a side
        stays the same."""
        data = frame.marketData
        symbol = frame.instrumentId.symbol
        rows_bi, rows_of = data.BI, data.OF
        bids, bid = _checked_side(rows_bi, text)
        asks, ask = _checked_side(rows_of, text)
        memo = self._memo(symbol)
        if bids == memo.bids or asks == memo.asks:
            self._churning.discard(symbol)
        # The texts are unknown: the next lazy frame decodes both sides (and does not count that).
        memo.keep(_NEVER, bids, bid, _NEVER, asks, ask)
        has_book = rows_bi is not UNSET or rows_of is not UNSET
        self._route_md(symbol, frame.timestamp, data, has_book, bids, asks, bid, ask)

    def _memo(self, symbol: str) -> _SidesMemo:
        memo = self._sides.get(symbol)
        if memo is None:
            memo = self._sides[symbol] = _SidesMemo()
        return memo

    def _on_md(self, frame: MdFrame) -> None:
        """An `Md` frame `parse_ws_frame` decoded (and checked)."""
        data = frame.marketData
        rows_bi, rows_of = data.BI, data.OF
        self._route_md(
            frame.instrumentId.symbol,
            frame.timestamp,
            data,
            rows_bi is not UNSET or rows_of is not UNSET,
            valid_levels(rows_bi),
            valid_levels(rows_of),
            top_of(rows_bi),
            top_of(rows_of),
        )

    def _route_md(
        self,
        symbol: str,
        timestamp: float | None,
        data: MdEntries,
        has_book: bool,
        bids: tuple[Level, ...],
        asks: tuple[Level, ...],
        bid: _Top,
        ask: _Top,
    ) -> None:
        """Emit what one `Md` frame changed for the product's subscriptions. `bids`/`asks`: its
        book rows that have a price and a size; `bid`/`ask`: the first rows with a price."""
        route = self._routes.get(symbol)
        if route is None:
            subs = self._by_symbol.get(symbol)
            if not subs:
                return  # removed (still streamed until reconnect) or never asked for
            route = self._routes[symbol] = _Route(symbol, subs)
        if symbol not in self._seen_products:
            self._seen_products.add(symbol)
        if self._unconfirmed:
            for sub in route.subs:
                if sub in self._unconfirmed:
                    self._confirm(sub)
        ts = self._wall_clock() if timestamp is None else timestamp / 1000.0
        last = data.LA
        la = last if isinstance(last, EntryValue) else None
        # The quote serves the ticker and the trade side inference alike.
        quote = (bid[0], bid[1], ask[0], ask[1], None if la is None else la.price)
        # Events are built from a batch before any state changes, so a failure skips the whole frame.
        events: list[AnyEvent] = []
        last_emitted = self._last_emitted
        key = route.ticker_key
        if key is not None and (has_book or last is not UNSET) and last_emitted.get(key) != quote:
            last_emitted[key] = quote
            events.append(ticker_of(symbol, quote, data, ts=ts, venue=self.venue))
        if has_book:
            deepening = self._deepening.get(symbol) if self._deepening else None
            if deepening is not None:
                if deepening.proven_by(len(bids), len(asks)):
                    del self._deepening[symbol]
                    deepening = None
                else:
                    deepening.latest = None  # the sides withheld from a deeper book, if any are
            for depth, key, book_key in route.book_depths:
                if deepening is not None and not deepening.serves(depth, len(bids), len(asks)):
                    deepening.latest = (bids, asks)  # maybe of an old depth: not a book of this one
                    continue
                sides = self._books[book_key] = (bids[:depth], asks[:depth])
                if last_emitted.get(key) != sides:
                    last_emitted[key] = sides
                    events.append(
                        BookSnapshot(
                            venue=self.venue, ts=ts, symbol=symbol, depth=depth, bids=sides[0], asks=sides[1]
                        )
                    )
        trade = self.trades.observe_last(symbol, la, quote if has_book else None, ts, self.venue)
        if trade is not None and route.trades:
            events.append(trade)
        if route.stats_key is not None and data.has(*STATS_ENTRIES):
            stats = stats_from_md(symbol, data, ts=ts, venue=self.venue)
            figures = msgspec.structs.astuple(stats)[3:]  # every figure (not venue/ts/symbol)
            if self._changed(route.stats_key, figures):
                events.append(stats)
        self._events.extend(events)

    def _serve_withheld(self, symbol: str, bids: tuple[Level, ...], asks: tuple[Level, ...]) -> None:
        """The product's deeper books, from the last frame withheld from them: by now Primary has
        answered the deeper `smd`, so that frame was of the new depth."""
        route = self._routes.get(symbol)
        if route is None:
            return
        for depth, key, book_key in route.book_depths:
            sides = self._books[book_key] = (bids[:depth], asks[:depth])
            if self._last_emitted.get(key) != sides:
                self._last_emitted[key] = sides
                self._events.append(
                    BookSnapshot(
                        venue=self.venue,
                        ts=self._wall_clock(),
                        symbol=symbol,
                        depth=depth,
                        bids=sides[0],
                        asks=sides[1],
                    )
                )

    def _changed(self, key: _EmitKey, value: object) -> bool:
        if self._last_emitted.get(key) == value:
            return False
        self._last_emitted[key] = value
        return True

    def _on_report(self, frame: OrFrame, received: float) -> None:
        if not any(sub.channel is Channel.EXECUTIONS for sub in self._subs):
            return
        ts = ms_to_seconds(frame.timestamp, received)
        self._events.extend(self.orders.events(frame.orderReport, ts=ts, venue=self.venue))

    # ------------------------------------------------------------ errors

    def _on_error(self, frame: ErrorFrame) -> None:
        error = error_from_primary(frame.description, frame.message, venue=self.venue)
        request = _echoed_request(frame.message)
        logger.debug("primary error frame: %s", error.message)
        if isinstance(error, SessionInvalid):
            self._signals.append(TokenRejected(error))
            self._signals.append(ReconnectNeeded(f"{error.message}: log in again and reconnect"))
            return
        kind = request.get("type") if request else None
        if kind == "os":
            for sub in [s for s in self._subs if s.channel is Channel.EXECUTIONS]:
                self._refuse(sub, error)
            return
        symbols = _failed_symbols(frame, request)
        if symbols:
            for symbol in symbols:
                for sub in list(self._by_symbol.get(symbol, ())):
                    refusal = error
                    if len(symbols) > 1 or not isinstance(error, UnknownSymbol):
                        refusal = _for_symbol(error, symbol)
                    self._refuse(sub, refusal)
            return
        self._signals.append(BadFrame(error))

    def _refuse(self, sub: Subscription, error: VenueError) -> None:
        self.remove(sub, 0.0)
        self._signals.append(SubscribeFailed(sub, error))


def _echoed_request(message: str | None) -> dict[str, object] | None:
    """Primary echoes the offending request as a JSON string in `message`."""
    if not message or not message.lstrip().startswith("{"):
        return None
    try:
        value = msgspec.json.decode(message)
    except (msgspec.DecodeError, UnicodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _failed_symbols(frame: ErrorFrame, request: dict[str, object] | None) -> list[str]:
    """The products an error is about: the one its description names, else (for an smd echo with a
    product-shaped error) none — we never fail a whole batch on a guess."""
    found = match_error(frame.text)
    if found is not None and "symbol" in found.groups:
        return [found.groups["symbol"]]
    if request is not None and request.get("type") == "smd":
        products = request.get("products")
        if isinstance(products, list) and len(products) == 1 and isinstance(products[0], dict):
            symbol = products[0].get("symbol")
            if isinstance(symbol, str):
                return [symbol]
    return []


def _for_symbol(error: VenueError, symbol: str) -> VenueError:
    """A copy of `error` that names `symbol` (the subscription it fails)."""
    if isinstance(error, UnknownSymbol) and symbol in error.message:
        return error
    return type(error)(
        f"{error.message} ({symbol})",
        venue=error.venue,
        code=error.code,
        remedy=error.remedy,
        retryable=error.retryable,
    )
