"""`BridgeClient`: a bot in another process (or on another machine) uses a running bridge server.

    async with BridgeClient("http://127.0.0.1:8000", key=None) as bridge:
        async for event in bridge.subscribe("kraken", "ticker", "BTC/USD"):
            ...                                   # Ticker, StreamStatus, Gap … (core.events)
        book = await bridge.book("kraken", "BTC/USD", depth=10)
        chain = await bridge.option_chain("primary", "GGAL")   # IVs, greeks, rates per option

All subscriptions share one WebSocket to `/ws`. When it drops (the bridge restarts, the network
fails) each subscription gets a `StreamStatus` RECONNECTING saying why; the client reconnects with
jittered, capped backoff (reset once data flows again), subscribes again from the original
arguments, and emits a `Gap` naming the window it was away before the bridge's current state
(status, book, ticker) and new events. Refusals end the iterator with a typed error, the class
the in-process Bridge raises for the same mistake (core/errors.py `WIRE_ERRORS`). REST helpers
return the Structs of client/models.py.

Only `brokerbridge.core` is imported: the client runs without the bridge's own code.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import urllib.parse
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import msgspec
import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from brokerbridge.client import models
from brokerbridge.core.backoff import BackoffPolicy
from brokerbridge.core.clock import Clock, SystemClock
from brokerbridge.core.errors import (
    BrokerBridgeError,
    NotAuthorized,
    TransportError,
    VenueError,
    error_from_wire,
)
from brokerbridge.core.events import AnyEvent, Fill, Gap, OrderUpdate, StreamState, StreamStatus, decode_event
from brokerbridge.core.options.views import OptionChain
from brokerbridge.core.orders import AmendRequest, CancelAck, FillsPage, OrderAck, OrderRequest

logger = logging.getLogger(__name__)

T = TypeVar("T")

SESSION_COOKIE = "bb_session"  # the server's sign-in cookie (server/logins.py)
CSRF_HEADER = "X-CSRF-Token"  # what a signed-in client's order requests carry (server/csrf.py)
RATE_LIMITED_RETRY_S = 1.0  # a subscribe refused for the message rate is sent again after this
DEFAULT_BACKOFF = BackoffPolicy(initial=0.5, factor=2.0, cap=10.0)


class _Incoming(msgspec.Struct, frozen=True):
    """Any server message; `event` is decoded separately into the normalized types."""

    type: str
    id: str | int | None = None
    op: str | None = None
    stream: str | None = None
    event: msgspec.Raw = msgspec.Raw(b"")  # empty: not an event message
    code: str = ""
    message: str = ""
    remedy: str = ""


@dataclass(eq=False)
class _Subscription:
    id: str
    venue: str
    request: dict[str, Any]
    stream: str  # the bridge's stream name once acked; until then what we asked for
    queue: asyncio.Queue[AnyEvent | BrokerBridgeError] = field(default_factory=asyncio.Queue)
    sent_on: object | None = None  # the socket the subscribe went out on
    away_since: float | None = None  # wall time the connection to the bridge was lost


class BridgeClient:
    def __init__(
        self,
        url: str = "http://127.0.0.1:8000",
        key: str | None = None,
        *,
        backoff: BackoffPolicy = DEFAULT_BACKOFF,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        timeout: float = 10.0,
        queue_size: int = 10_000,
    ) -> None:
        if queue_size < 2:
            raise ValueError(f"queue_size must be at least 2 (an event and a Gap), got {queue_size}")
        self.url = url.rstrip("/")
        scheme, sep, rest = self.url.partition("://")
        if not sep or scheme not in ("http", "https"):
            raise ValueError(f"url must start with http:// or https://, got {url!r}")
        self.ws_url = f"{'wss' if scheme == 'https' else 'ws'}://{rest}/ws"
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._backoff = backoff
        self._clock = clock or SystemClock()
        self._rng = rng
        self._timeout = timeout
        self._queue_size = queue_size
        self._http: httpx.AsyncClient | None = None
        self._subs: dict[str, _Subscription] = {}
        self._ids = itertools.count(1)
        self._ws: websockets.ClientConnection | None = None
        self._wanted = asyncio.Event()  # a subscription exists: keep a socket open
        self._tasks: asyncio.TaskGroup | None = None
        self._runner: asyncio.Task[None] | None = None
        self.reconnects = 0

    def __repr__(self) -> str:
        return f"BridgeClient({self.url!r}, key={'***' if self._headers else None})"

    # -- lifetime ----------------------------------------------------------------------------
    async def __aenter__(self) -> BridgeClient:
        self._http = httpx.AsyncClient(base_url=self.url, headers=self._headers, timeout=self._timeout)
        self._runner = asyncio.get_running_loop().create_task(self._run(), name="bridge-client")
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        if self._http is not None:
            await self._http.aclose()

    # -- streams -----------------------------------------------------------------------------
    async def subscribe(
        self,
        venue: str,
        channel: str,
        symbol: str | None = None,
        *,
        depth: int | None = None,
        interval: int = 1,
        expiry: str | None = None,
        model: str | None = None,
    ) -> AsyncGenerator[AnyEvent, None]:
        """Yield the stream's events (data, `StreamStatus`, `Gap`) until the caller stops, or
        raise the bridge's refusal (`NotAuthorized`, `UnknownSymbol`, …). Greeks: `symbol` is the
        underlying's ticker (GGAL), `expiry` one ISO date (None: every expiry), `model` american or
        european (None: the server's `[options] model`); one `OptionAnalytics` per option and tick."""
        if self._runner is None:
            raise RuntimeError("use BridgeClient as `async with BridgeClient(...) as client:`")
        request: dict[str, Any] = {"venue": venue, "channel": channel, "interval": interval}
        for name, value in (("symbol", symbol), ("depth", depth), ("expiry", expiry), ("model", model)):
            if value is not None:
                request[name] = value
        sub_id = f"c{next(self._ids)}"
        name = ":".join(part for part in (venue, channel, symbol) if part)
        sub = _Subscription(sub_id, venue, request, stream=name)
        self._subs[sub_id] = sub
        self._wanted.set()
        if self._ws is not None:
            await self._send_subscribe(self._ws, sub)
        try:
            while True:
                item = await sub.queue.get()
                if isinstance(item, BrokerBridgeError):
                    raise item
                yield item
        finally:
            if self._subs.pop(sub_id, None) is not None and self._ws is not None:
                with contextlib.suppress(ConnectionClosed, OSError):
                    await self._ws.send(msgspec.json.encode({"op": "unsubscribe", "id": sub_id}))
            if not self._subs:
                self._wanted.clear()

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            try:
                await self._connect_forever()
            finally:
                self._tasks = None

    async def _connect_forever(self) -> None:
        delays = self._backoff.delays(self._rng)
        while True:
            await self._wanted.wait()
            try:
                async with websockets.connect(
                    self.ws_url,
                    additional_headers=self._ws_headers(),
                    open_timeout=self._timeout,
                    max_queue=None,
                ) as ws:
                    self._ws = ws
                    logger.info("connected to the bridge at %s", self.ws_url)
                    for sub in list(self._subs.values()):
                        await self._send_subscribe(ws, sub)
                    async for data in ws:
                        if self._receive(data):
                            delays = self._backoff.delays(self._rng)  # data flows: start backoff over
                    reason = f"the bridge closed the connection: {ws.close_code} {ws.close_reason or ''}"
            except InvalidStatus as exc:
                error = _refusal(exc.response.status_code, bytes(exc.response.body or b""), "")
                if exc.response.status_code in (401, 403):
                    # No retry can fix a refused key: every subscription ends with the reason.
                    for sub in list(self._subs.values()):
                        self._end(sub, error)
                    continue
                reason = f"the bridge refused the connection: {error}"
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError) as exc:
                reason = f"the bridge is unreachable: {exc!r}"
            finally:
                self._ws = None
            self._connection_lost(reason.strip())
            await self._clock.sleep(next(delays))

    async def _send_subscribe(self, ws: websockets.ClientConnection, sub: _Subscription) -> None:
        if sub.sent_on is ws:
            return
        sub.sent_on = ws
        with contextlib.suppress(ConnectionClosed, OSError):  # the reconnect sends it again
            await ws.send(msgspec.json.encode({"op": "subscribe", "id": sub.id, **sub.request}))

    def _connection_lost(self, reason: str) -> None:
        now = self._clock.time()
        if self._subs:
            logger.warning("connection to the bridge lost (%s); reconnecting", reason)
        self.reconnects += 1
        for sub in self._subs.values():
            sub.sent_on = None
            if sub.away_since is None:  # once per outage, not per failed attempt
                sub.away_since = now
                self._deliver(
                    sub,
                    StreamStatus(
                        venue=sub.venue,
                        ts=now,
                        stream=sub.stream,
                        state=StreamState.RECONNECTING,
                        reason=reason,
                        reconnects=self.reconnects,
                    ),
                )

    def _receive(self, data: str | bytes) -> bool:
        """Handle one server message; True if it carried an event."""
        try:
            message = msgspec.json.decode(data, type=_Incoming)
        except msgspec.DecodeError as exc:
            logger.warning("skipped a message from the bridge that is not valid: %s", exc)
            return False
        sub = self._subs.get(str(message.id)) if message.id is not None else None
        match message.type:
            case "event" if sub is not None and len(message.event):
                try:
                    event = decode_event(message.event)
                except msgspec.DecodeError as exc:
                    logger.warning("skipped an event from the bridge that is not valid: %s", exc)
                    return False
                if sub.away_since is not None:
                    self._deliver(sub, self._gap(sub, sub.away_since, "lost the connection to the bridge"))
                    sub.away_since = None
                self._deliver(sub, event)
                return True
            case "ack" if sub is not None and message.op == "subscribe" and message.stream:
                sub.stream = message.stream
            case "error" if sub is not None:
                if message.code == "rate_limited" and self._tasks is not None and self._ws is not None:
                    sub.sent_on = None
                    self._tasks.create_task(self._resubscribe_later(sub, self._ws))
                else:
                    error = error_from_wire(message.code, message.message, message.remedy, venue=sub.venue)
                    self._end(sub, error)
            case "error":
                logger.warning("the bridge reported %s: %s", message.code, message.message)
        return False

    async def _resubscribe_later(self, sub: _Subscription, ws: websockets.ClientConnection) -> None:
        await self._clock.sleep(RATE_LIMITED_RETRY_S)
        if self._subs.get(sub.id) is sub and self._ws is ws:
            await self._send_subscribe(ws, sub)

    def _end(self, sub: _Subscription, error: BrokerBridgeError) -> None:
        """The bridge refused `sub` for good: its iterator raises `error` after what came before."""
        if self._subs.pop(sub.id, None) is not None:
            self._deliver(sub, error)

    def _deliver(self, sub: _Subscription, item: AnyEvent | BrokerBridgeError) -> None:
        queue = sub.queue
        if queue.qsize() >= self._queue_size:
            # A consumer that does not keep up loses the oldest half, told by one Gap.
            now = self._clock.time()
            start = now
            kept: list[AnyEvent | BrokerBridgeError] = []
            while not queue.empty():
                old = queue.get_nowait()
                if isinstance(old, BrokerBridgeError) or len(kept) + queue.qsize() < self._queue_size // 2:
                    kept.append(old)
                else:
                    start = min(start, old.start if isinstance(old, Gap) else old.ts)
            queue.put_nowait(
                self._gap(sub, start, "consumer too slow: oldest events dropped by BridgeClient")
            )
            for old in kept:
                queue.put_nowait(old)
        queue.put_nowait(item)

    def _gap(self, sub: _Subscription, start: float, reason: str) -> Gap:
        now = self._clock.time()
        return Gap(venue=sub.venue, ts=now, stream=sub.stream, start=start, end=now, reason=reason)

    def _ws_headers(self) -> dict[str, str]:
        """The key, or the sign-in cookie `sign_in` got (the `/ws` handshake accepts either)."""
        cookie = self._http.cookies.get(SESSION_COOKIE) if self._http is not None else None
        return {**self._headers, "Cookie": f"{SESSION_COOKIE}={cookie}"} if cookie else self._headers

    # -- REST --------------------------------------------------------------------------------
    async def _request(
        self,
        method: str,
        path: str,
        kind: type[T],
        about: str = "",
        *,
        answers: tuple[int, ...] = (200,),
        body: msgspec.Struct | None = None,
        **params: Any,
    ) -> T:
        """`method` on `path` (query `params`, None left out; `body` as JSON) decoded as `kind` when
        its status is one of `answers`; a refusal (about venue `about`) raises its typed error."""
        response = await self._response(method, path, about, answers=answers, body=body, **params)
        return msgspec.json.decode(response.content, type=kind)

    async def _response(
        self,
        method: str,
        path: str,
        about: str = "",
        *,
        answers: tuple[int, ...] = (200,),
        body: msgspec.Struct | None = None,
        **params: Any,
    ) -> httpx.Response:
        """`_request`'s answer undecoded (a CSV body)."""
        if self._http is None:
            raise RuntimeError("use BridgeClient as `async with BridgeClient(...) as client:`")
        query = {name: value for name, value in params.items() if value is not None}
        content = None if body is None else _encoder.encode(body)
        headers = {"Content-Type": "application/json"} if content is not None else None
        try:
            response = await self._http.request(method, path, params=query, content=content, headers=headers)
        except httpx.HTTPError as exc:
            raise TransportError(f"the bridge at {self.url} is unreachable: {exc!r}") from exc
        if response.status_code not in answers:
            raise _refusal(response.status_code, response.content, about)
        return response

    async def _get(
        self, path: str, kind: type[T], about: str = "", *, answers: tuple[int, ...] = (200,), **params: Any
    ) -> T:
        return await self._request("GET", path, kind, about, answers=answers, **params)

    async def status(self) -> models.StatusResponse:
        """The server's venues, streams, token expiries, balance freshness and clients (a caller on
        the server's machine, or with an admin key)."""
        return await self._get("/api/status", models.StatusResponse)

    async def login_link(self, *, trade: bool = False) -> models.LoginLinkResponse:
        """A fresh one-time dashboard sign-in link (a caller on the server's machine, or with an
        admin key); `trade`: the session may place orders too (a remote caller's key needs the
        trade scope for that). Print it, never log it: whoever opens it first is signed in."""
        return await self._request(
            "POST", "/api/login-link", models.LoginLinkResponse, trade="true" if trade else None
        )

    async def sign_in(self, link: models.LoginLinkResponse) -> None:
        """Redeem a one-time login link: this client then holds the sign-in cookie (market +
        account scopes) and sends it on every request and `/ws` connection — how the CLI tools on
        the server's machine read balances and executions without an API key. Raises
        `NotAuthorized` when the link is not valid (used, expired)."""
        if self._http is None:
            raise RuntimeError("use BridgeClient as `async with BridgeClient(...) as client:`")
        code = httpx.URL(link.url).params.get("code", "")
        try:
            response = await self._http.get("/login", params={"code": code}, follow_redirects=False)
        except httpx.HTTPError as exc:
            raise TransportError(f"the bridge at {self.url} is unreachable: {exc!r}") from exc
        if response.status_code != 303 or SESSION_COOKIE not in self._http.cookies:
            raise NotAuthorized(
                f"the bridge did not accept the login link (HTTP {response.status_code})",
                remedy="ask for a fresh one (each works once, for 10 minutes)",
            )
        # A signed-in caller's order requests carry the login's CSRF token, as the dashboard's do.
        session = await self._get("/api/session", models.SessionResponse)
        if session.csrf_token:
            self._http.headers[CSRF_HEADER] = session.csrf_token

    async def session(self) -> models.SessionResponse:
        """Who this client is to the bridge: key name, scopes (`trade` to place orders)."""
        return await self._get("/api/session", models.SessionResponse)

    async def health(self) -> models.HealthResponse:
        return await self._get("/api/health", models.HealthResponse)

    async def ready(self) -> models.ReadyResponse:
        """Whether every venue's account is loaded and live (`status`), and per venue why not."""
        return await self._get("/api/ready", models.ReadyResponse, answers=(200, 503))

    async def venues(self) -> list[models.VenueSummary]:
        return (await self._get("/api/venues", models.VenuesResponse)).venues

    async def instruments(self, venue: str, search: str = "") -> models.InstrumentsResponse:
        return await self._get(
            "/api/instruments", models.InstrumentsResponse, venue, venue=venue, search=search
        )

    async def ticker(self, venue: str, symbol: str) -> models.TickerResponse:
        return await self._get(f"/api/ticker/{venue}", models.TickerResponse, venue, symbol=symbol)

    async def book(self, venue: str, symbol: str, depth: int | None = None) -> models.BookResponse:
        return await self._get(f"/api/book/{venue}", models.BookResponse, venue, symbol=symbol, depth=depth)

    async def trades(self, venue: str, symbol: str, limit: int = 50) -> models.TradesResponse:
        return await self._get(
            f"/api/trades/{venue}", models.TradesResponse, venue, symbol=symbol, limit=limit
        )

    async def candles(
        self, venue: str, symbol: str, interval: int = 1, limit: int = 100
    ) -> models.CandlesResponse:
        return await self._get(
            f"/api/candles/{venue}",
            models.CandlesResponse,
            venue,
            symbol=symbol,
            interval=interval,
            limit=limit,
        )

    async def option_chain(
        self, venue: str, underlying: str, *, expiry: str | None = None, model: str | None = None
    ) -> OptionChain:
        """The option chain of `underlying` (a ticker: GGAL) with every option's analytics — IVs,
        greeks, intrinsic and time value, parity and covered-call rates, a reason for each empty
        figure — as `Bridge.option_chain` gives it. `expiry`: one ISO date (None: every listed
        expiry); `model`: american or european (None: the server's `[options] model`).
        `UnknownSymbol` for an underlying without listed options, `InvalidRequest` for an expiry
        that is not listed (its remedy lists those that are)."""
        return await self._get(
            f"/api/options/{_quoted(venue)}/{_quoted(underlying)}",
            OptionChain,
            venue,
            expiry=expiry,
            model=model,
        )

    async def option_chain_csv(
        self, venue: str, underlying: str, *, expiry: str | None = None, model: str | None = None
    ) -> str:
        """`option_chain` as the server's CSV (one row per option, a header row, '.' decimals, ISO
        dates; an empty cell for an empty figure and its reason in `reasons`)."""
        response = await self._response(
            "GET",
            f"/api/options/{_quoted(venue)}/{_quoted(underlying)}",
            venue,
            expiry=expiry,
            model=model,
            format="csv",
        )
        return response.text

    async def balances(self, venue: str) -> list[models.Balance]:
        return (await self._get(f"/api/balances/{venue}", models.BalancesResponse, venue)).balances

    async def orders(self, venue: str) -> list[OrderUpdate]:
        """Orders the bridge believes open."""
        return (await self._get(f"/api/orders/{venue}", models.OrdersResponse, venue)).orders

    async def fills(self, venue: str) -> list[Fill]:
        """Every journaled fill of `venue`, oldest first (all pages of `fills_page`)."""
        return [fill async for fill in self.all_fills(venue)]

    # -- orders (the `trade` scope) ------------------------------------------------------------
    async def place(self, request: OrderRequest) -> OrderAck:
        """Place `request` (`POST /api/orders`): the ack `accepted`, or `unknown` when the venue did
        not answer (its outcome follows on `executions`; send the same `client_order_id` again to
        retry — never a second order). Refusals raise what `Bridge.place` raises: `OrderRefused`
        (`.rule`), `OrderRejected`, `OrderConflict`, `NotAuthorized` (no trade scope), …"""
        return await self._request(
            "POST", "/api/orders", OrderAck, request.venue, answers=(200, 202), body=request
        )

    async def cancel(self, venue: str, order_id: str) -> CancelAck:
        """Cancel the venue's order `order_id`: `UnknownOrder` when the venue has no such order."""
        return await self._request("DELETE", f"/api/orders/{venue}/{_quoted(order_id)}", CancelAck, venue)

    async def amend(self, request: AmendRequest) -> OrderAck:
        """Change an open order's qty and/or price (where the venue can: `InvalidRequest` otherwise)."""
        if request.order_id is None:
            raise ValueError("amend needs the order's order_id (the ack's)")
        change = models.AmendBody(
            qty=request.qty, price=request.price, client_order_id=request.client_order_id
        )
        return await self._request(
            "PATCH",
            f"/api/orders/{request.venue}/{_quoted(request.order_id)}",
            OrderAck,
            request.venue,
            answers=(200, 202),
            body=change,
        )

    async def fills_page(self, venue: str, *, after: str | None = None, limit: int = 500) -> FillsPage:
        """One page of the journal's fills, oldest first, from the cursor `after` (a page's `next`)."""
        return await self._get(f"/api/fills/{venue}", FillsPage, venue, after=after, limit=limit)

    async def all_fills(self, venue: str, *, page_size: int = 500) -> AsyncIterator[Fill]:
        """Every journaled fill of `venue`, oldest first, a page at a time."""
        after: str | None = None
        while True:
            page = await self.fills_page(venue, after=after, limit=page_size)
            for fill in page.fills:
                yield fill
            if page.next is None:
                return
            after = page.next


_encoder = msgspec.json.Encoder(decimal_format="string")


def _quoted(order_id: str) -> str:
    """An order id as one path segment."""
    return urllib.parse.quote(order_id, safe="")


def _refusal(status: int, body: bytes, venue: str) -> VenueError:
    try:
        detail = msgspec.json.decode(body, type=models.ErrorResponse).error
    except msgspec.DecodeError:
        return error_from_wire(
            "unavailable" if status >= 500 else "", f"HTTP {status} from the bridge", venue=venue
        )
    return error_from_wire(detail.code, detail.message, detail.remedy, venue=venue, rule=detail.rule)
