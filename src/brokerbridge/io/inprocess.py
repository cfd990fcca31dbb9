"""An in-process network: HTTP requests and WebSockets reach ASGI servers (the simulators) in memory.

    async with (
        KrakenSimulator(clock=clock) as sim,
        InProcessNetwork(sim, clock=clock) as network,
        Bridge(config, clock=clock, transports=network.transports) as bridge,
    ):
        ...

URLs keep naming the servers' addresses (`host:port`); a request or an upgrade to one of them runs
that server's ASGI application in this event loop. A frame is handed over on the next loop turn, so
on a `FakeClock` everything a test waits for arrives within `advance()`'s settle turns: no real time
has to pass, however loaded the machine is. Over loopback TCP the same test has to sleep for real
and hope the bytes crossed before fake time moved on.

What a server does below ASGI is done here as uvicorn's sans-I/O WebSocket protocol and its HTTP
protocols do it, and the errors a connector sees are the ones io/ws.py and io/http.py raise for the
same answers over a socket:
* upgrade: the app's `websocket.accept` opens the connection; a close before accepting is HTTP 403;
  a denial response (the `websocket.http.response` extension) is its status; an app that raises or
  returns before answering is HTTP 500. 401/403 are `SessionInvalid`, the rest `TransportError`.
* close: frames sent before the server's close frame are read first, then its code and reason; an
  app that ends without closing drops the connection (no close frame); the client leaving is code
  1000 to the app, whose later sends fail as on a lost socket (an `OSError`, which Starlette turns
  into `WebSocketDisconnect`).
* activity: every upgrade request, frame and ping a client sends is reported to the server's
  `data_received(client)` (the Primary simulator's idle close counts them). The client pings every
  `ping_interval` seconds of the network's clock, as websockets does on the real one; the pong
  always comes back (nothing is half-open in memory).
* HTTP: the request timeout runs on the network's clock — the one a simulator's latency sleeps on —
  and a client that gives up leaves the app running with `http.disconnect` on its receive channel,
  as a server sees a closed connection (a delayed order is still carried out); an app error is an
  HTTP 500.
Not modelled: TCP (an address no server has is refused at once; no backpressure), TLS, frame sizes,
the frames the websockets library logs at DEBUG (so `redact` has nothing to mask).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, MutableMapping
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar
from urllib.parse import unquote, urlsplit

import httpx

from brokerbridge.core.clock import Clock, race
from brokerbridge.core.errors import TransportError
from brokerbridge.io.http import HttpClient
from brokerbridge.io.transports import Transports
from brokerbridge.io.ws import closed_error, refused_error, unreachable_error

logger = logging.getLogger(__name__)

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Message, Receive, Send], Awaitable[None]]
Client = tuple[str, int]
T = TypeVar("T")

OPEN_TIMEOUT = 10.0  # io.ws.connect's default
_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


class InProcessServer(Protocol):
    """What a server offers to be reached in memory (the simulators have it)."""

    @property
    def address(self) -> str:
        """`host:port` as its URLs carry it."""
        ...

    @property
    def asgi_app(self) -> AsgiApp: ...

    def data_received(self, client: Client) -> None:
        """Bytes arrived from `client` below ASGI (an upgrade request, a frame, a ping)."""
        ...


class InProcessNetwork:
    """Transports to `servers` in memory, on `clock`; owns the applications' tasks while open."""

    def __init__(self, *servers: InProcessServer, clock: Clock) -> None:
        self._servers = servers
        self._clock = clock
        self._tasks: asyncio.TaskGroup | None = None
        self._running: set[asyncio.Task[None]] = set()  # the group's tasks not finished yet
        self._sockets: set[_Socket] = set()
        self._unplugged: set[str] = set()  # addresses refused as if nothing listened there
        # Client addresses as a server's scope shows them: this network's own host, a port each.
        self._host = f"inprocess-{id(self):x}"
        self._ports = itertools.count(49152)

    @property
    def transports(self) -> Transports:
        return Transports(http=self.http_client, ws_connect=self.connect)

    async def __aenter__(self) -> Self:
        self._tasks = asyncio.TaskGroup()
        await self._tasks.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        tasks, self._tasks = self._tasks, None
        if tasks is None:
            return
        for socket in list(self._sockets):
            socket.drop()  # the network goes away under whatever is still connected
        for _ in range(5):  # let the applications see it and end by themselves
            await asyncio.sleep(0)
        for task in list(self._running):  # what is left is cancelled, then awaited
            task.cancel()
        await tasks.__aexit__(exc_type, exc, tb)

    # -- HTTP ----------------------------------------------------------------------------------------
    def http_client(
        self, *, timeout: float, deadline: float = 30.0, clock: Clock | None = None
    ) -> HttpClient:
        """An `HttpClient` (io/http.py: the same error mapping and deadline) whose requests run in
        memory."""
        client = httpx.AsyncClient(
            transport=_HttpTransport(self),
            timeout=timeout,
            headers={"User-Agent": "brokerbridge"},
            follow_redirects=False,
        )
        return HttpClient(timeout=timeout, deadline=deadline, clock=clock, client=client)

    async def _request(self, request: httpx.Request) -> httpx.Response:
        server = self._server(request.url.scheme, request.url.host, request.url.port)
        if server is None:
            raise httpx.ConnectError("All connection attempts failed", request=request)
        body = await request.aread()
        raw_path = request.url.raw_path
        path, _, query = raw_path.partition(b"?")
        scope: Message = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "server": _host_port(server.address),
            "client": self._next_client(),
            "scheme": request.url.scheme,
            "method": request.method,
            "root_path": "",
            "path": unquote(path.decode("ascii")),
            "raw_path": path,
            "query_string": query,
            "headers": [(name.lower(), value) for name, value in request.headers.raw],
            "state": {},
        }
        exchange = _HttpExchange(body)
        self._spawn(exchange.serve(server.asgi_app, scope))
        read_timeout = request.extensions.get("timeout", {}).get("read")
        try:
            status, headers, content = await self._within(read_timeout, exchange.response)
        except TimeoutError:
            exchange.client_gone()
            raise httpx.ReadTimeout("timed out waiting for the response", request=request) from None
        except _IncompleteResponse as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from None
        except BaseException:
            exchange.client_gone()
            raise
        return httpx.Response(status, headers=headers, content=content)

    # -- WebSocket -----------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def connect(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        redact: Callable[[str], str] | None = None,
        ping_interval: float = 20.0,
        open_timeout: float = OPEN_TIMEOUT,
    ) -> AsyncIterator[_Socket]:
        """Open a WebSocket to `url` in memory (io.ws.connect's signature and errors)."""
        parts = urlsplit(url)
        server = self._server(parts.scheme, parts.hostname or "", parts.port)
        if server is None:
            refused = ConnectionRefusedError(111, f"Connect call failed ({parts.hostname!r}, {parts.port})")
            raise unreachable_error(url, refused)
        client = self._next_client()
        socket = _Socket(server, client)
        scope: Message = {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": parts.scheme,
            "server": _host_port(server.address),
            "client": client,
            "root_path": "",
            "path": unquote(parts.path or "/"),
            "raw_path": (parts.path or "/").encode("ascii"),
            "query_string": parts.query.encode("ascii"),
            "headers": _upgrade_headers(parts.netloc, headers or {}),
            "subprotocols": [],
            "state": {},
            "extensions": {"websocket.http.response": {}},
        }
        server.data_received(client)  # the upgrade request
        self._sockets.add(socket)
        try:
            self._spawn(socket.serve(server.asgi_app, scope))
            try:
                status = await self._within(open_timeout, socket.handshake)
            except TimeoutError:
                socket.drop()
                raise unreachable_error(url, TimeoutError("timed out during opening handshake")) from None
            if status != 101:
                raise refused_error(url, status)
            pinger = (
                self._spawn(self._ping(socket, ping_interval, self._clock.monotonic() + ping_interval))
                if ping_interval
                else None
            )
            try:
                yield socket
            finally:
                if pinger is not None:
                    pinger.cancel()
                socket.close_from_client()
        except BaseException:
            socket.drop()
            raise
        finally:
            self._sockets.discard(socket)

    async def _ping(self, socket: _Socket, interval: float, first_at: float) -> None:
        due = first_at
        while not socket.ended:
            await self._sleep_until(due)
            if not socket.ended:
                socket.server.data_received(socket.client)
            due += interval

    def unplug(self, server: InProcessServer, *, plugged: bool = False) -> None:
        """New connections to `server` are refused, as to a process that is down, until it is
        plugged in again (`plugged=True`); connections already open stay."""
        if plugged:
            self._unplugged.discard(server.address)
        else:
            self._unplugged.add(server.address)

    # -- shared --------------------------------------------------------------------------------------
    def _server(self, scheme: str, host: str, port: int | None) -> InProcessServer | None:
        address = f"{host}:{port if port is not None else _DEFAULT_PORTS.get(scheme, 80)}"
        if address in self._unplugged:
            return None
        return next((s for s in self._servers if s.address == address), None)

    def _next_client(self) -> Client:
        return self._host, next(self._ports)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        if self._tasks is None:
            coro.close()
            raise RuntimeError("the in-process network is not open (use it as `async with`)")
        task = self._tasks.create_task(coro)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return task

    async def _within(self, seconds: float | None, future: asyncio.Future[T]) -> T:
        """`future`'s result, or TimeoutError after `seconds` of this network's clock."""
        if seconds is None:
            return await asyncio.shield(future)
        # The deadline is fixed now: the timer task starts a loop turn later, when time may have
        # moved. Shielded: at the deadline the caller gives up, the exchange itself goes on.
        deadline = self._clock.monotonic() + seconds
        await race(asyncio.shield(future), self._sleep_until(deadline))
        if not future.done():
            raise TimeoutError
        return future.result()

    async def _sleep_until(self, deadline: float) -> None:
        await self._clock.sleep(deadline - self._clock.monotonic())


def _host_port(address: str) -> Client:
    host, _, port = address.rpartition(":")
    return host, int(port)


def _upgrade_headers(netloc: str, headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    base = {
        "host": netloc,
        "upgrade": "websocket",
        "connection": "Upgrade",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "sec-websocket-version": "13",
        "user-agent": "brokerbridge",
    }
    base.update({name.lower(): value for name, value in headers.items()})
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in base.items()]


class _ClientGone(OSError):
    """The app sent on a connection its client has left (uvicorn's `ClientDisconnected`)."""


class _IncompleteResponse(Exception):
    """The app ended in the middle of its response: the client sees the connection close."""


class _HttpExchange:
    """One request served by an app: its receive/send channels and the response they produce."""

    def __init__(self, body: bytes) -> None:
        self._body: bytes | None = body
        self.response: asyncio.Future[tuple[int, list[tuple[bytes, bytes]], bytes]] = (
            asyncio.get_running_loop().create_future()
        )
        self._over = asyncio.Event()  # the response went out, or the client left
        self._status: int | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._chunks: list[bytes] = []

    def client_gone(self) -> None:
        self._over.set()

    async def serve(self, app: AsgiApp, scope: Message) -> None:
        try:
            await app(scope, self._receive, self._send)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("Exception in ASGI application")
            self._end("the application raised")
        else:
            self._end("the application returned without completing its response")

    def _end(self, why: str) -> None:
        if self.response.done():
            return
        if self._status is None:
            # What uvicorn answers for an app that failed before starting its response.
            self._finish(500, [(b"content-type", b"text/plain; charset=utf-8")], b"Internal Server Error")
        else:
            self.response.set_exception(
                _IncompleteResponse(f"peer closed connection without sending complete message body ({why})")
            )
            self._over.set()

    async def _receive(self) -> Message:
        if self._body is not None:
            body, self._body = self._body, None
            return {"type": "http.request", "body": body, "more_body": False}
        await self._over.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        if self._over.is_set():
            return  # the client is gone (or the response is complete): as uvicorn, send nothing
        kind = message["type"]
        if kind == "http.response.start" and self._status is None:
            self._status = int(message["status"])
            self._headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", [])]
        elif kind == "http.response.body" and self._status is not None:
            self._chunks.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                self._finish(self._status, self._headers, b"".join(self._chunks))
        else:
            raise RuntimeError(f"Unexpected ASGI message {kind!r} in an HTTP response")

    def _finish(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        if not self.response.done():
            self.response.set_result((status, headers, body))
        self._over.set()


class _HttpTransport(httpx.AsyncBaseTransport):
    def __init__(self, network: InProcessNetwork) -> None:
        self._network = network

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._network._request(request)


class _Phase(enum.Enum):
    CONNECTING = "connecting"
    DENYING = "denying"  # a denial response has started
    OPEN = "open"
    CLOSED = "closed"


class _Socket:
    """One WebSocket joined in memory. Its client end is an io.ws `Connection`; `serve` runs the
    server's app on the other end."""

    def __init__(self, server: InProcessServer, client: Client) -> None:
        self.server = server
        self.client = client
        loop = asyncio.get_running_loop()
        self.handshake: asyncio.Future[int] = loop.create_future()  # 101, or the refusal's status
        self._phase = _Phase.CONNECTING
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._to_app.put_nowait({"type": "websocket.connect"})
        self._inbox: asyncio.Queue[str | None] = asyncio.Queue()  # None: the connection ended
        self._close_frame: tuple[int, str] | None = None  # the server's (code, reason)
        self._denial_status = 0
        self.ended = False  # for the client: nothing more to read, nothing can be sent

    # -- the client's end (io.ws.Connection) ---------------------------------------------------------
    async def recv_text(self) -> str:
        text = await self._inbox.get()
        if text is None:
            self._inbox.put_nowait(None)  # every later read fails the same way
            raise closed_error(self._close_frame, sending=False)
        return text

    async def send_text(self, text: str) -> None:
        if self.ended:
            raise closed_error(self._close_frame, sending=True)
        self.server.data_received(self.client)
        self._to_app.put_nowait({"type": "websocket.receive", "text": text})

    def close_from_client(self) -> None:
        """The client closes with code 1000 (its close frame counts as activity, as any bytes)."""
        if not self.ended:
            self.server.data_received(self.client)
            self._to_app.put_nowait({"type": "websocket.disconnect", "code": 1000, "reason": ""})
            self._close_frame = (1000, "")  # the server's protocol layer echoes it
            self._end()
        self._phase = _Phase.CLOSED

    def drop(self) -> None:
        """The link is gone without a close frame either way."""
        if not self.handshake.done():
            self.handshake.set_exception(TransportError("in-process connection dropped during the handshake"))
            self.handshake.exception()  # retrieved: nobody may be waiting any more
        if self._phase is not _Phase.CLOSED:
            self._to_app.put_nowait({"type": "websocket.disconnect", "code": 1006})
        self._phase = _Phase.CLOSED
        self._end()

    def _end(self) -> None:
        if not self.ended:
            self.ended = True
            self._inbox.put_nowait(None)

    # -- the server's end (ASGI) ---------------------------------------------------------------------
    async def serve(self, app: AsgiApp, scope: Message) -> None:
        try:
            await app(scope, self._receive, self._send)
        except _ClientGone:
            pass
        except asyncio.CancelledError:
            self.drop()
            raise
        except Exception:
            logger.exception("Exception in ASGI application")
        else:
            if self._phase in (_Phase.CONNECTING, _Phase.DENYING):
                logger.error("ASGI callable returned without completing handshake.")
        if self._phase in (_Phase.CONNECTING, _Phase.DENYING):
            self._refuse(500)
        elif self._phase is _Phase.OPEN:
            self.drop()  # uvicorn closes the transport: the client gets no close frame

    async def _receive(self) -> Message:
        return await self._to_app.get()

    async def _send(self, message: Message) -> None:
        kind = message["type"]
        if self._phase is _Phase.CLOSED:
            raise _ClientGone()
        if self._phase is _Phase.CONNECTING:
            if kind == "websocket.accept":
                self._phase = _Phase.OPEN
                self.handshake.set_result(101)
            elif kind == "websocket.close":
                self._refuse(403)  # a close before accepting: uvicorn answers 403
            elif kind == "websocket.http.response.start":
                self._phase = _Phase.DENYING
                self._denial_status = int(message["status"])
            else:
                raise RuntimeError(
                    f"Expected 'websocket.accept', 'websocket.close' or a denial, got {kind!r}"
                )
        elif self._phase is _Phase.DENYING:
            if kind != "websocket.http.response.body":
                raise RuntimeError(f"Expected 'websocket.http.response.body', got {kind!r}")
            if not message.get("more_body", False):
                self._refuse(self._denial_status)
        elif kind == "websocket.send":
            text = message.get("text")
            if text is None:
                text = bytes(message.get("bytes") or b"").decode("utf-8", "replace")
            self._inbox.put_nowait(text)
        elif kind == "websocket.close":
            code, reason = int(message.get("code", 1000)), message.get("reason") or ""
            self._to_app.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
            self._close_frame = (code, reason)
            self._phase = _Phase.CLOSED
            self._end()
        else:
            raise RuntimeError(f"Expected 'websocket.send' or 'websocket.close', got {kind!r}")

    def _refuse(self, status: int) -> None:
        self._to_app.put_nowait({"type": "websocket.disconnect", "code": 1006})
        self._phase = _Phase.CLOSED
        self._end()
        if not self.handshake.done():
            self.handshake.set_result(status)
