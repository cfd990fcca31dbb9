"""What every simulator shares: uvicorn served in-process on one port, a market stepped on the
injected clock, timed connection drops, and the control endpoint's routes.

A venue simulator subclasses `SimServer` and supplies its Starlette app, its endpoints (built from
the bound address) and its exchange (anything with `step()`); sessions register themselves in
`self._sessions` so faults can drop them all.
"""

from __future__ import annotations

import abc
import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect

from brokerbridge.core.clock import Clock
from brokerbridge.core.clock import race as first_to_end
from brokerbridge.core.uvicorn_server import OwnedServer
from brokerbridge.sim.faults import FaultError, FaultSwitches, drop_periodically, hold_until_disconnected

log = logging.getLogger(__name__)

E = TypeVar("E")


class Droppable(Protocol):
    def drop(self) -> None: ...


async def race(*coros: Coroutine[Any, Any, Any]) -> list[BaseException]:
    """Run a connection's tasks until the first finishes; cancel and await the rest.

    Returns the failures of the finished ones, a peer disconnect not counted (it is how most
    connections end)."""
    done = await first_to_end(*coros)
    failures = [task.exception() for task in done if not task.cancelled()]
    return [exc for exc in failures if exc is not None and not isinstance(exc, WebSocketDisconnect)]


def control_routes(faults: FaultSwitches) -> list[Route]:
    """`GET/POST /_sim/faults` and `POST /_sim/faults/reset`: the switches as JSON, all-or-nothing."""

    async def faults_get(request: Request) -> Response:
        return JSONResponse(faults.to_dict())

    async def faults_post(request: Request) -> Response:
        try:
            changes = json.loads(await request.body() or b"{}")
            if not isinstance(changes, dict):
                raise FaultError("send a JSON object of switches")
            faults.apply(changes)
        except (ValueError, FaultError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(faults.to_dict())

    async def faults_reset(request: Request) -> Response:
        faults.reset()
        return JSONResponse(faults.to_dict())

    return [
        Route("/_sim/faults", faults_get, methods=["GET"]),
        Route("/_sim/faults", faults_post, methods=["POST"]),
        Route("/_sim/faults/reset", faults_reset, methods=["POST"]),
    ]


RestHandler = Callable[[Request], Awaitable[Response]]


def with_body_faults(handler: RestHandler, faults: FaultSwitches, clock: Clock) -> RestHandler:
    """`handler` with the body faults applied to its answers: `rest_headers_only` (headers, then
    nothing) and `rest_trickle_s` (the body a byte at a time), on the simulator's clock."""

    async def answer(request: Request) -> Response:
        response = await handler(request)
        if faults.take("rest_headers_only"):
            return SlowBody(response, clock=clock, interval=None)
        if faults.rest_trickle_s > 0:
            return SlowBody(response, clock=clock, interval=faults.rest_trickle_s)
        return response

    return answer


class SlowBody(Response):
    """`answer`'s status and headers at once (its Content-Length included, so the client waits for
    the whole body), then its body one byte every `interval` seconds — or never (`interval` None) —
    until it is all sent or the client gives up."""

    def __init__(self, answer: Response, *, clock: Clock, interval: float | None) -> None:
        super().__init__(status_code=answer.status_code)
        self.raw_headers = list(answer.raw_headers)
        self._content = bytes(answer.body)
        self._clock = clock
        self._interval = interval

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        if not self._content:  # nothing to withhold (getToken's answer is all headers)
            await send({"type": "http.response.body", "body": b""})
        elif self._interval is None:
            await hold_until_disconnected(receive)
        else:
            await race(self._trickle(send, self._interval), hold_until_disconnected(receive))

    async def _trickle(self, send: Send, interval: float) -> None:
        last = len(self._content) - 1
        for i in range(last + 1):
            await self._clock.sleep(interval)
            await send(
                {"type": "http.response.body", "body": self._content[i : i + 1], "more_body": i < last}
            )


class SimServer(abc.ABC, Generic[E]):
    venue: str = "sim"

    def __init__(self, host: str, port: int, *, clock: Clock, faults: FaultSwitches, tick_s: float) -> None:
        self.host = host
        self.port = port
        self.clock = clock
        self.faults = faults
        self.tick_s = tick_s
        self._sessions: set[Any] = set()
        self.faults.on_drop(self.drop_connections)
        self._server: OwnedServer | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self._group_runner: asyncio.Task[None] | None = None
        self._stopping: asyncio.Event | None = None
        self._endpoints: E | None = None
        self._app: Starlette | None = None
        self._address: str | None = None

    # -- what a venue supplies -----------------------------------------------------------------------
    @abc.abstractmethod
    def build_app(self) -> Starlette: ...

    @abc.abstractmethod
    def make_endpoints(self, base: str) -> E:
        """The endpoints for `base` ("host:port")."""

    @abc.abstractmethod
    def step(self) -> None:
        """Advance the market one tick."""

    def uvicorn_options(self) -> dict[str, Any]:
        return {}

    # -- API ---------------------------------------------------------------------------------------
    @property
    def endpoints(self) -> E:
        if self._endpoints is None:
            raise RuntimeError("the simulator is not started")
        return self._endpoints

    @property
    def sessions(self) -> frozenset[Any]:
        return frozenset(self._sessions)

    @property
    def address(self) -> str:
        """`host:port` the simulator listens on (its endpoints' URLs carry it)."""
        if self._address is None:
            raise RuntimeError("the simulator is not started")
        return self._address

    @property
    def asgi_app(self) -> Starlette:
        """The application uvicorn serves: the same one answers a client that reaches the simulator
        in memory (brokerbridge.io.inprocess) instead of over the socket."""
        if self._app is None:
            raise RuntimeError("the simulator is not started")
        return self._app

    def data_received(self, client: tuple[str, int]) -> None:
        """Bytes arrived from `client` below ASGI (an upgrade request, a frame, a ping): told by the
        in-memory network, and over a socket by a venue's uvicorn protocol that reports them (the
        Primary simulator's). Nothing to do unless a venue watches client activity."""

    def drop_connections(self) -> None:
        for session in list(self._sessions):
            session.drop()

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        self._app = self.build_app()
        config = uvicorn.Config(
            self._app,
            host=self.host,
            port=self.port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=2,
            **self.uvicorn_options(),
        )
        self._server = OwnedServer(config)
        self._serve_task = asyncio.create_task(self._server.serve(), name=f"{self.venue}-sim-uvicorn")
        listening = asyncio.ensure_future(self._server.listening.wait())
        await asyncio.wait({self._serve_task, listening}, return_when=asyncio.FIRST_COMPLETED)
        if not listening.done():
            listening.cancel()
            self._serve_task.result()  # raises the bind error
            raise RuntimeError("uvicorn stopped before it started")
        bound_port = self._server.servers[0].sockets[0].getsockname()[1]
        self._address = f"{self.host}:{bound_port}"
        self._endpoints = self.make_endpoints(self._address)
        self._stopping = asyncio.Event()
        started = asyncio.Event()
        self._group_runner = asyncio.create_task(
            self._run_background(started), name=f"{self.venue}-sim-background"
        )
        await started.wait()
        log.info("%s simulator listening on %s:%s", self.venue, self.host, bound_port)

    async def _run_background(self, started: asyncio.Event) -> None:
        assert self._stopping is not None
        async with asyncio.TaskGroup() as group:
            market = group.create_task(self._market_loop())
            drops = group.create_task(drop_periodically(self.clock, self.faults, self.drop_connections))
            started.set()
            await self._stopping.wait()
            market.cancel()
            drops.cancel()

    async def _market_loop(self) -> None:
        while True:
            await self.clock.sleep(self.tick_s)
            try:
                self.step()
            except Exception:  # our bug: log it and keep the market alive for the rest of the run
                log.exception("market step failed")

    async def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        if self._group_runner is not None:
            await self._group_runner
            self._group_runner = None
        self.drop_connections()
        if self._server is not None and self._serve_task is not None:
            # Let sessions send their close frames before uvicorn shuts the sockets.
            for _ in range(20):
                if not self._sessions:
                    break
                await asyncio.sleep(0.01)
            self._server.exit()
            await self._serve_task
            self._serve_task = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
