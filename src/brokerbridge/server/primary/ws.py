"""Primary's WebSocket protocol at `/primary/` (and `/primary`), served from the bridge's one upstream
Primary session: existing Primary clients (pyRofex, jsRofex, a browser app) work by changing their
base URL.

The handshake is the `/ws` gate's (server/gate.py: Host, Origin per `[server] allowed_origins`,
`identify`): the token by `X-Auth-Token` header (what pyRofex sends), or `?token=` / the login cookie
for browsers, which cannot set a header on a WebSocket. A missing, bad or expired token is refused
before the upgrade as Primary's simulator refuses it: HTTP 401 with `{"status":"ERROR","message":
"Unauthorized","description":"Invalid or expired token"}` (429 with Retry-After after too many
failures from one address, or too many connections of one key).

Client frames, as Primary takes them (numbers as strings, `"True"`/`"False"`, enums in any case):
- `smd` (`market` scope): `entries`, `depth` 1–5, `level`, `products`. Each product gets `Md`
  frames with exactly the requested entries (server/primary/md.py). A later `smd` naming a product
  already subscribed replaces its entries and depth (Primary has no unsubscribe); other products
  are added. A product Primary does not list gets Primary's error frame (`Product X:ROFX don't
  exist`), the other products of the `smd` are subscribed, and the socket stays open.
- `umd` — an extension, Primary has no way to drop a product: `{"type":"umd","products":[…]}` stops
  the `Md` of those products on this socket.
- `os` (`account` scope): the bridge's account (`account`, `accounts` or none); the orders the bridge
  believes open, then every `or` report (server/primary/reports.py).
- `no` / `co` (`trade` scope): through the Bridge's order service (server/primary/ws_orders.py).
  Primary answers them only with `or` reports to the sockets that sent `os`; the first report of an
  order placed with `wsClOrdId` carries it.
- a text `ping` (what browser apps send) is ignored.

Refusals are Primary's error frame — `{"status":"ERROR","message":<the request>,"description":…}`
with the simulator's wordings (`Invalid message`, `Entry X invalid`, `Invalid depth`, `Product X:M
don't exist`, `Required String parameter 'x' is not present`, `No tiene acceso a la cuenta X`,
`Order X:P doesn't exist`) — and the socket stays open. A token without the scope a frame needs is
answered `Access Denied: …` and nothing goes upstream. An order the bridge refuses by its own rules
(tick, lot, minimums, or a feature it does not route: GTD, iceberg, MARKET_TO_LIMIT, all-or-none,
cancelPrevious) is a REJECTED `or` report with the reason, as Primary rejects by its rules.

Not Primary's: no application heartbeat is sent (Primary has none); WebSocket pings keep the
connection checked (server/clients.py heartbeat loop).

`level` is the product's throttle on this socket (1: at most one `Md` per 100 ms, 2: 500 ms, 3: 1 s,
4: 3 s, 5: 6 s): a frame that comes sooner waits, and only the newest is written when the time
comes. The bridge's own upstream asks Primary at level 1.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import Any

import msgspec
from websockets.http11 import Response

from brokerbridge.bridge import Bridge
from brokerbridge.core.errors import BrokerBridgeError
from brokerbridge.io.primary.connector import PrimaryConnector
from brokerbridge.server.auth import Principal, TokenBucket
from brokerbridge.server.client_queue import ClientQueue
from brokerbridge.server.clients import ClientRegistry
from brokerbridge.server.coalesce import Coalescer
from brokerbridge.server.logins import Denied
from brokerbridge.server.order_desk import OrderDesk
from brokerbridge.server.primary.md import MdView, MdViews
from brokerbridge.server.primary.reports import ReportFeed
from brokerbridge.server.primary.shapes import (
    Refused,
    echo,
    refused,
)
from brokerbridge.server.primary.ws_orders import OrderFrames, needs
from brokerbridge.server.wire import Peer, WsWire, json_response
from brokerbridge.server.ws import FLOOD_FACTOR, KEEPALIVE_TIMEOUT, POLICY_VIOLATION, WsSettings
from brokerbridge.venues.primary import DEFAULT_MARKET, VENUE
from brokerbridge.venues.primary.messages import EntryValue
from brokerbridge.venues.primary.session import MAX_BOOK_DEPTH
from brokerbridge.venues.primary.wire_format import LEVEL_INTERVALS, parse_smd

logger = logging.getLogger(__name__)

PATHS = frozenset({"/primary/", "/primary"})
ECHOED = 4096  # characters of a refused request echoed in its error frame's `message`
UNAUTHORIZED = {"status": "ERROR", "message": "Unauthorized", "description": "Invalid or expired token"}
_decoder = msgspec.json.Decoder(float_hook=Decimal)


class PrimaryEndpoint:
    """What the gate hands `/primary/` handshakes to: the views and report feed every connection
    shares, and the admission of a connection."""

    def __init__(
        self,
        bridge: Bridge,
        settings: WsSettings,
        clients: ClientRegistry,
        coalescer: Coalescer,
        orders: OrderDesk,
    ) -> None:
        self.bridge = bridge
        self.settings = settings
        self.clients = clients
        self.coalescer = coalescer
        self.orders = orders
        self.views = MdViews(bridge, coalescer, self._last_trade)
        self._reports: ReportFeed | None = None
        self._catalog: asyncio.Task[object] | None = None

    @property
    def connector(self) -> PrimaryConnector:
        connector = self.bridge.connectors[VENUE]
        assert isinstance(connector, PrimaryConnector)  # what the Bridge builds for Primary
        return connector

    @property
    def reports(self) -> ReportFeed | None:
        """The order reports of the bridge's account (None: it has no Primary account)."""
        if self._reports is None and self.connector.account:
            self._reports = ReportFeed(self.bridge, self.connector)
        return self._reports

    def _last_trade(self, symbol: str) -> EntryValue | None:
        return self.connector.last_trade(symbol)

    def admit(self, principal: Principal | Denied) -> Response | Callable[[WsWire], Peer]:
        if not isinstance(self.bridge.connectors.get(VENUE), PrimaryConnector):
            body = {"status": "ERROR", "description": "Ruta invalida", "message": "no Primary venue here"}
            return _refusal(404, "Not Found", body)
        if isinstance(principal, Denied):
            if principal.retry_after is not None:
                body = {"status": "ERROR", "message": "Too Many Requests", "description": principal.message}
                return _refusal(429, "Too Many Requests", body, principal.headers)
            return _refusal(401, "Unauthorized", UNAUTHORIZED)
        if not principal.authenticated:
            return _refusal(401, "Unauthorized", UNAUTHORIZED)
        limit = self.settings.max_connections_per_key
        if principal.name is not None and self.clients.connections_of(principal.name) >= limit:
            body = {
                "status": "ERROR",
                "message": "Too Many Requests",
                "description": f"too many connections for key {principal.name!r} (limit {limit}): "
                "close another one (server.max_connections_per_key)",
            }
            return _refusal(429, "Too Many Requests", body)
        return partial(self._connect, principal)

    def _connect(self, principal: Principal, wire: WsWire) -> PrimaryConnection:
        connection = PrimaryConnection(wire, self, principal)
        self.clients.add(connection)
        if self.connector.symbol_listed(DEFAULT_MARKET) is None:
            # Products are checked against the catalogue (its loaded state told by a symbol no
            # catalogue lists: False once loaded, None before): frames wait until it is loaded.
            if self._catalog is None or self._catalog.done():
                self._catalog = asyncio.get_running_loop().create_task(
                    self._load_catalog(), name="primary-ws-catalog"
                )
            connection.wait_for(self._catalog)
        return connection

    async def _load_catalog(self) -> object:
        try:
            return await self.bridge.catalog(VENUE)
        except BrokerBridgeError as exc:  # products then go upstream unchecked, refused there if need be
            logger.warning("primary: the instrument catalogue could not be loaded: %s", exc)
            return None

    def listed(self, symbol: str) -> bool:
        """Whether Primary lists `symbol` (True while the catalogue is unknown: upstream decides)."""
        return self.connector.symbol_listed(symbol) is not False


def _refusal(
    status: int, reason: str, body: dict[str, str], headers: dict[str, str] | None = None
) -> Response:
    return json_response(status, reason, json.dumps(body).encode(), headers)


class PrimaryConnection:
    """One `/primary/` socket: Primary's frames in, `Md`/`or`/error frames out."""

    def __init__(self, wire: WsWire, endpoint: PrimaryEndpoint, principal: Principal) -> None:
        self.wire = wire
        self.principal = principal
        self._endpoint = endpoint
        self._bridge = endpoint.bridge
        settings = endpoint.settings
        self._settings = settings
        self.queue = ClientQueue(settings.client_queue_size)
        self._bucket = TokenBucket(
            settings.messages_per_second, settings.message_burst, self._bridge.clock.monotonic
        )
        self._refused_in_row = 0
        self._views: dict[str, MdView] = {}  # product → the view it reads
        self.md_changed: dict[MdView, None] = {}  # views with a frame not written yet
        self._intervals: dict[str, float] = {}  # product → its `level`'s least time between frames
        self._sent_at: dict[str, float] = {}  # product → when its last frame was written (monotonic)
        self._throttled: asyncio.TimerHandle | None = None  # a flush for frames held by their level
        self._asked: dict[str, str] = {}  # product → the `smd` that asked for it (echoed if refused)
        self.orders = OrderFrames(self, endpoint)
        self._backlog: list[str] | None = None  # frames waiting for the catalogue
        self._closed = False
        self._heard_at = self._bridge.clock.monotonic()
        self.close_reason: str | None = None

    # -- the gate's, the wire's and the registry's calls ---------------------------------------
    def wait_for(self, ready: asyncio.Task[object]) -> None:
        """Hold the frames received until `ready` is done (the catalogue is loading)."""
        self._backlog = []
        ready.add_done_callback(lambda _task: self._drain_backlog())

    def _drain_backlog(self) -> None:
        backlog, self._backlog = self._backlog or [], None
        for text in backlog:
            if not self._closed:
                self._handle(text)

    def received(self, data: str | bytes) -> None:
        if self._closed:
            return
        text = data if isinstance(data, str) else data.decode("utf-8", "replace")
        if self._backlog is not None:
            if len(self._backlog) >= self._settings.client_queue_size:
                self._closing("flooding", "client sent too much before the catalogue was loaded")
                return
            self._backlog.append(text)
            return
        self._handle(text)

    def writable_again(self) -> None:
        if not self._closed:
            self._endpoint.coalescer.mark(self)

    def lost(self) -> None:
        self._end()

    @property
    def queue_depth(self) -> int:
        return len(self.queue)

    def queue_heartbeat(self, data: bytes) -> None:
        """Primary has no application heartbeat: a frame of ours would be an unknown message to
        its clients (pyRofex hands it to its error handlers). The WebSocket ping does the job."""

    def check_alive(self, now: float, timeout: float) -> None:
        """As a `/ws` client (server/ws.py `check_alive`): pinged while heard from, closed when
        silent (pongs included) for `timeout`."""
        if self._closed:
            return
        wire = self.wire
        if wire.heard:
            wire.heard = False
            self._heard_at = now
        elif now - self._heard_at >= timeout:
            self.close(f"keepalive ping timeout: nothing received for {timeout:g} s", KEEPALIVE_TIMEOUT)
            return
        wire.ping()

    async def aclose(self, reason: str) -> None:
        self.close(reason)
        await self.wire.wait_closed()

    def close(self, reason: str, code: int = 1001) -> None:
        if self._closed:
            return
        self.close_reason = reason
        self._end()
        self.wire.close(code, reason)

    def _end(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._throttled is not None:
            self._throttled.cancel()
        for view in self._views.values():
            view.leave(self)
        self._views.clear()
        self.orders.closed()
        self.queue.clear()
        self._endpoint.coalescer.discard(self)
        self._endpoint.clients.discard(self)

    # -- output --------------------------------------------------------------------------------
    def flush(self) -> None:
        """Write what waits: the queue (error frames, `or` reports), then each product's newest
        `Md` not written yet (a snapshot: an older one is never worth sending)."""
        wire = self.wire
        if self._closed or not wire.writable:
            return
        texts, _received = self.queue.drain()
        changed, self.md_changed = self.md_changed, {}
        views, sent_at, intervals = self._views, self._sent_at, self._intervals
        now = self._bridge.clock.monotonic()
        wait: float | None = None
        for view in changed:
            symbol = view.symbol
            if views.get(symbol) is not view:  # replaced or dropped since
                continue
            early = sent_at.get(symbol, -math.inf) + intervals.get(symbol, 0.0) - now
            if early > 0:  # its level's time has not come: held (the newest goes then)
                self.md_changed[view] = None
                wait = early if wait is None else min(wait, early)
                continue
            sent_at[symbol] = now
            texts.append(view.frame())
        if wait is not None and self._throttled is None:
            self._throttled = asyncio.get_running_loop().call_later(wait, self._throttle_over)
        if texts:
            wire.write_texts(texts)

    def _throttle_over(self) -> None:
        self._throttled = None
        if not self._closed and self.md_changed:
            self._endpoint.coalescer.mark(self)

    def send_report(self, data: bytes) -> None:
        self._put(data)

    def md_refused(self, view: MdView, error: BrokerBridgeError) -> None:
        """The venue refused a product for good: Primary's error frame, and the product dropped
        (after the Bridge's delivery round: this is called from inside it)."""
        if self._views.get(view.symbol) is not view:
            return
        asked = self._asked.get(view.symbol, "")
        self.error(asked, f"Product {view.symbol}:{DEFAULT_MARKET} don't exist")
        asyncio.get_running_loop().call_soon(self._drop, view)

    def _drop(self, view: MdView) -> None:
        if self._views.get(view.symbol) is view:
            del self._views[view.symbol]
            self._forget(view.symbol)
            view.leave(self)

    def _forget(self, symbol: str) -> None:
        """A product no longer read on this socket."""
        self._asked.pop(symbol, None)
        self._intervals.pop(symbol, None)
        self._sent_at.pop(symbol, None)

    def _put(self, data: bytes) -> None:
        if self._closed:
            return
        if not self.queue.put_lossless(data):
            self._closing(
                "slow", f"client too slow: more than {self.queue.limit} undelivered reports and errors"
            )
            return
        self._endpoint.coalescer.mark(self)

    def _closing(self, kind: str, reason: str) -> None:
        """Close for misbehaving (1008), logged as `/ws` logs it: a crowd of them limited."""
        who = self.principal.name or "anonymous"
        self._endpoint.clients.closings.log(
            logging.WARNING, kind, "closing a /primary/ WebSocket client (%s): %s", who, reason
        )
        self.close(reason, POLICY_VIOLATION)

    def error(self, request: str, description: str) -> None:
        """Primary's error frame for `request` (its text, echoed)."""
        frame = {"status": "ERROR", "message": request[:ECHOED], "description": description}
        self._put(json.dumps(frame, ensure_ascii=False).encode())

    # -- requests ------------------------------------------------------------------------------
    def _handle(self, text: str) -> None:
        if text.strip().lower() == "ping":
            return
        if not self._bucket.take():
            self._refused_in_row += 1
            if self._refused_in_row > FLOOD_FACTOR * self._settings.message_burst:
                self._closing(
                    "flooding", f"client flooding: {self._refused_in_row} messages over the rate limit"
                )
                return
            self.error(
                text,
                f"Too many messages: more than {self._settings.messages_per_second:g} per second "
                f"(burst {self._settings.message_burst}); this one was not processed, send it again",
            )
            return
        self._refused_in_row = 0
        try:
            message = _decoder.decode(text)
        except msgspec.DecodeError:
            self.error(text, "Invalid message")
            return
        kind = message.get("type") if isinstance(message, dict) else None
        handler = _HANDLERS.get(kind.lower()) if isinstance(kind, str) else None
        try:
            if handler is None:
                raise refused("Invalid message")
            handler(self, message, text)
        except Refused as refusal:
            self.error(text, refusal.body.description)
        except BrokerBridgeError as exc:  # the Bridge refused what the frame asks (e.g. no credentials)
            self.error(text, exc.message)
        except Exception:  # our bug: answered, logged, and the socket stays
            logger.exception("primary ws: handling a %s frame failed", kind)
            self.error(text, "Internal error: this request was not carried out (logged by the bridge)")

    # market data
    def _smd(self, message: dict[str, Any], text: str) -> None:
        needs(self.principal, "market", "market data")
        request = parse_smd(message, max_depth=MAX_BOOK_DEPTH, default_market=DEFAULT_MARKET)
        if isinstance(request, str):
            raise refused(request)
        interval = LEVEL_INTERVALS[request.level]
        wanted: list[str] = []
        for symbol, market in request.products:
            if not isinstance(symbol, str) or market != DEFAULT_MARKET or not self._endpoint.listed(symbol):
                self.error(text, f"Product {echo(symbol)}:{echo(market)} don't exist")
                continue
            wanted.append(symbol)
        new = {symbol for symbol in wanted if symbol not in self._views}
        limit = self._settings.max_subscriptions
        if len(self._views) + len(new) > limit:
            raise refused(f"Too many products ({len(self._views) + len(new)} > {limit} on this connection)")
        for symbol in wanted:
            self._watch(symbol, (symbol, request.entries, request.depth), text)
            self._intervals[symbol] = interval

    def _watch(self, symbol: str, key: tuple[str, tuple[str, ...], int], text: str) -> None:
        old = self._views.get(symbol)
        if old is not None and old.key == key:
            return
        try:
            view = self._endpoint.views.join(self, key)
        except BrokerBridgeError:  # refused before anything went upstream (not listed)
            self.error(text, f"Product {echo(symbol)}:{DEFAULT_MARKET} don't exist")
            return
        if view.refused is not None:  # the venue refused it already (the view is in its grace)
            self.error(text, f"Product {echo(symbol)}:{DEFAULT_MARKET} don't exist")
            view.leave(self)
            return
        self._views[symbol] = view
        self._asked[symbol] = text
        if old is not None:
            old.leave(self)

    def _umd(self, message: dict[str, Any], text: str) -> None:
        products = message.get("products")
        if not isinstance(products, list) or not products:
            raise refused("Invalid message")
        for item in products:
            symbol = item.get("symbol") if isinstance(item, dict) else None
            view = self._views.pop(symbol, None) if isinstance(symbol, str) else None
            if view is None:
                self.error(text, f"Product {echo(symbol)}:{DEFAULT_MARKET} is not subscribed")
                continue
            self._forget(view.symbol)
            view.leave(self)


# Each client frame type (Primary's, in any case, and the `umd` extension) → its handler.
_HANDLERS: dict[str, Callable[[PrimaryConnection, dict[str, Any], str], None]] = {
    "smd": PrimaryConnection._smd,
    "umd": PrimaryConnection._umd,
    "os": lambda connection, message, text: connection.orders.os(message, text),
    "no": lambda connection, message, text: connection.orders.no(message, text),
    "co": lambda connection, message, text: connection.orders.co(message, text),
}
