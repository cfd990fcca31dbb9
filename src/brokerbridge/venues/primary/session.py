"""`PrimaryWsSession`: the pure state machine of one Primary API WebSocket (primary.md §4).

Same driver API as `KrakenWsSession` (`venues.session_base.VenueSession`), so `io/supervisor.py`
runs it unchanged::

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
* `Md` frames (market data, nearly all the socket carries) take a hot path and emit only what
  changed: `market_data.py`.
* Order reports go through `normalize.OrderTracker` (kept across reconnects, so the `os`
  snapshot replayed on resubscribe adds no duplicate fills); the connector may feed REST order
  reports into the same tracker (`session.orders`).
* Order entry (`send_order` → `no` with the caller's id as `wsClOrdId`, `cancel_order` → `co`):
  Primary answers a request only through the account's `or` reports (or an error frame echoing
  it), so order entry needs the executions subscription on this socket (`orders_live`). The first
  report of a new order is the only one carrying its `wsClOrdId`: it ties the caller's id to the
  order's `clOrdId` (the order id of every update) → `OrderAnswered(kind="new")`. A cancel is
  answered by the first report of the cancel request (`origClOrdId` = the request cancelled:
  CANCELLED, or REJECTED when the order was no longer active) → `OrderAnswered(kind="cancel")`.
  A replace (REST `replaceById`: Primary has none on the socket) is answered by its request's
  first report → `OrderAnswered(kind="replace", request=<its clOrdId>)`. An error frame echoing a
  `no` or `co` (unknown product or order, a foreign account) → `OrderAnswered` carrying the mapped
  error; it fails no market-data subscription.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable

import msgspec

from brokerbridge.core.book import OrderBook
from brokerbridge.core.errors import (
    ProtocolError,
    SessionInvalid,
    UnknownSymbol,
    VenueError,
)
from brokerbridge.core.events import Channel, Subscription
from brokerbridge.core.signals import (
    BadFrame,
    OrderAnswered,
    ReconnectNeeded,
    Signal,
    Subscribed,
    SubscribeFailed,
    TokenRejected,
)
from brokerbridge.venues.primary import DEFAULT_MARKET, VENUE
from brokerbridge.venues.primary.errors import error_from_primary, match_error
from brokerbridge.venues.primary.market_data import Deepening, MarketData
from brokerbridge.venues.primary.messages import (
    MAX_PRODUCTS_PER_SMD,
    MD_ENTRIES,
    ErrorFrame,
    MdFrame,
    OrFrame,
    cancel_order_frame,
    md_symbol,
    new_order_frame,
    os_frame,
    parse_md_lazily,
    parse_md_rows_unchecked,
    parse_ws_frame,
    smd_frame,
)
from brokerbridge.venues.primary.normalize import (
    BOOK_ENTRIES,
    STATS_ENTRIES,
    TICKER_ENTRIES,
    TRADE_ENTRIES,
    OrderTracker,
    ms_to_seconds,
    parse_status,
)
from brokerbridge.venues.session_base import HANDLING_FAILURES

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
MAX_CANCELS_AWAITED = 10_000  # cancels sent on the socket whose answer has not come (oldest dropped)
_ENTRY_ORDER = {name: i for i, name in enumerate(MD_ENTRIES)}

_Want = tuple[tuple[str, ...], int]  # (entries in canonical order, depth)


def always_open(_wall_now: float) -> bool:
    """Default `market_open`: the watchdog is always armed."""
    return True


def _canonical(entries: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(entries), key=_ENTRY_ORDER.__getitem__))


class PrimaryWsSession(MarketData):
    """Pure Primary WS session (market data + order reports on one socket). See the module docstring."""

    def __init__(
        self,
        *,
        venue: str = VENUE,
        idle_timeout: float = 180.0,
        confirm_after: float = 5.0,
        market_open: Callable[[float], bool] = always_open,
        wall_clock: Callable[[], float],
        account: str | None = None,
        market_id: str = DEFAULT_MARKET,
        level: int = 1,
        snapshot_only_active: bool = True,
    ) -> None:
        super().__init__(venue=venue, wall_clock=wall_clock)
        self.idle_timeout = idle_timeout
        self.confirm_after = confirm_after
        self.account = account
        self.market_id = market_id
        self.level = level
        self.snapshot_only_active = snapshot_only_active
        self._market_open = market_open
        self.orders = OrderTracker()
        # clOrdId of a request a `co` was sent for → the order id its answer is for
        self._cancels: OrderedDict[str, str] = OrderedDict()
        self._reset_connection_state(0.0)

    def _reset_connection_state(self, now: float) -> None:
        self._requested: dict[str, _Want] = {}  # what this connection asked Primary for, per product
        self._reset_market_data(now)
        self._quiet_since = now  # start of the current silent window (watchdog)
        self._idle_reported = False

    # ------------------------------------------------------------ subscriptions

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
                self._deepening[sub.symbol] = Deepening(old, now + self.confirm_after)
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

    def _replay(self, now: float) -> None:
        groups: dict[_Want, list[str]] = {}
        for symbol in self._by_symbol:
            groups.setdefault(self._want(symbol), []).append(symbol)
        self._send_smd(groups, now)
        for sub in self._subs:
            if sub.channel is Channel.EXECUTIONS:
                self._subscribe_orders(sub)

    # ------------------------------------------------------------ order entry (optional)

    @property
    def orders_live(self) -> bool:
        """Whether orders sent on this socket are answered here: connected, with the account's
        order reports subscribed (Primary answers `no`/`co` only through them)."""
        return self._connected and any(sub.channel is Channel.EXECUTIONS for sub in self._subs)

    def send_order(self, **order: object) -> None:
        """Queue a `no` frame (arguments of `messages.new_order_frame`; give `ws_client_order_id`
        for an `OrderAnswered`). Results come as `or` reports."""
        if not self._connected:
            raise RuntimeError("not connected: send the order over REST or wait for the socket")
        self._outgoing.append(new_order_frame(**order))  # type: ignore[arg-type]

    def cancel_order(self, client_order_id: str, proprietary: str, *, order_id: str | None = None) -> None:
        """Queue a `co` frame for the request `client_order_id` (the order's live request); its
        answer is an `OrderAnswered(request=order_id)` (default: `client_order_id`)."""
        if not self._connected:
            raise RuntimeError("not connected: cancel over REST or wait for the socket")
        self._cancels[client_order_id] = order_id or client_order_id
        self._cancels.move_to_end(client_order_id)
        while len(self._cancels) > MAX_CANCELS_AWAITED:
            self._cancels.popitem(last=False)
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
            self._frame_refused(exc)
        except HANDLING_FAILURES as exc:
            # Should not happen (parse_ws_frame validates); if it does it is our bug, but one frame
            # must not take the connection down.
            self._frame_handling_failed(exc)

    def _on_report(self, frame: OrFrame, received: float) -> None:
        if not any(sub.channel is Channel.EXECUTIONS for sub in self._subs):
            return
        ts = ms_to_seconds(frame.timestamp, received)
        report = frame.orderReport
        self._events.extend(self.orders.events(report, ts=ts, venue=self.venue))
        status = parse_status(report.status)
        reason = (report.text or "").strip() or None
        if report.wsClOrdId:
            order_id = self.orders.order_id_of(report)
            self._signals.append(
                OrderAnswered(report.wsClOrdId, "new", order_id=order_id, status=status, reason=reason)
            )
        target = None if report.origClOrdId is None else str(report.origClOrdId)
        if target is None or report.clOrdId is None:
            return
        if target in self._cancels and status in ("canceled", "rejected"):
            order_id = self._cancels.pop(target)
            self._signals.append(
                OrderAnswered(order_id, "cancel", order_id=order_id, status=status, reason=reason)
            )
        elif status in ("pending_new", "new", "rejected"):
            # A replace request's first word (REST replaceById is answered before its reports or
            # after them: whoever waits for it finds it either way); its fills answer nothing.
            order_id = self.orders.order_id_of(report)
            self._signals.append(
                OrderAnswered(str(report.clOrdId), "replace", order_id=order_id, status=status, reason=reason)
            )

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
        if isinstance(kind, str) and kind.lower() in ("no", "co") and request is not None:
            self._order_refused(kind.lower(), request, error)
            return
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

    def _order_refused(self, kind: str, request: dict[str, object], error: VenueError) -> None:
        """Primary refused a `no` or `co` outright (its error frame echoes the request)."""
        if kind == "no":
            ref = request.get("wsClOrdId")
            if isinstance(ref, str) and ref:
                self._signals.append(OrderAnswered(ref, "new", error=error))
                return
        else:
            target = request.get("clientId")
            if target is not None:
                order_id = self._cancels.pop(str(target), str(target))
                self._signals.append(OrderAnswered(order_id, "cancel", order_id=order_id, error=error))
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
