"""The server stack (both simulators, a Bridge, the server) on its own event loop in a thread, so
synchronous hypothesis tests can fuzz it over real sockets example by example, and a well-behaved
client (`Watcher`) in another thread that records when its stream's messages arrive."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from brokerbridge.server.ws import WsSettings
from tests.server.conftest import ACCOUNT_KEY, Stack, make_stack

LIMIT = 20.0
TICKER = {"op": "subscribe", "id": "watch", "venue": "kraken", "channel": "ticker", "symbol": "BTC/USD"}
T = TypeVar("T")


@dataclass
class LiveServer:
    http_url: str
    ws_url: str
    stack: Stack


@contextlib.contextmanager
def threaded(
    resource: Callable[[], AbstractAsyncContextManager[T]], name: str = "threaded-loop"
) -> Iterator[T]:
    """Enter the async context manager `resource()` on a fresh event loop in its own thread and
    yield what it gives; leave it (on that loop) when the block ends. Its failures are re-raised."""
    ready: list[T] = []
    started = threading.Event()
    failure: list[BaseException] = []
    stop: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def main() -> None:
        stop.append((asyncio.get_running_loop(), asyncio.Event()))
        async with resource() as value:
            ready.append(value)
            started.set()
            await stop[0][1].wait()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # reported to the test thread
            failure.append(exc)
        finally:
            started.set()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    assert started.wait(LIMIT * 3), "the background resource did not start"
    if failure:
        raise failure[0]
    try:
        yield ready[0]
    finally:
        loop, event = stop[0]
        loop.call_soon_threadsafe(event.set)
        thread.join(LIMIT)
        assert not thread.is_alive(), "the background resource did not stop"
        if failure:
            raise failure[0]


@contextlib.asynccontextmanager
async def ready_stack(tmp_path: Path, ws: WsSettings, **config: Any) -> AsyncIterator[Stack]:
    """A stack whose accounts are loaded: before, /api/ready and /api/balances rightly answer 503."""
    async with make_stack(tmp_path, ws=ws, **config) as stack:
        await stack.bridge.wait_ready(LIMIT)
        yield stack


@contextlib.contextmanager
def live_server(tmp_path: Path, ws: WsSettings, **config: Any) -> Iterator[LiveServer]:
    with threaded(lambda: ready_stack(tmp_path, ws, **config)) as stack:
        yield LiveServer(stack.server.http_url, stack.server.ws_url, stack)


def client(server: LiveServer, key: str | None = ACCOUNT_KEY, **options: Any) -> ClientConnection:
    headers = {"Authorization": f"Bearer {key}"} if key else None
    options.setdefault("max_size", None)
    return connect(server.ws_url, additional_headers=headers, open_timeout=LIMIT, **options)


def receive(ws: ClientConnection, timeout: float = LIMIT) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(ws.recv(timeout=timeout))
    return message


@dataclass
class Watcher:
    """A well-behaved client subscribed to one stream, reading everything, in its own thread."""

    server: LiveServer
    request: dict[str, Any]
    heartbeats: bool = False  # count heartbeats as arrivals too (the server's own pulse)
    arrivals: list[float] = field(default_factory=list)  # monotonic times of `event`s
    errors: list[dict[str, Any]] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _connection: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def __enter__(self) -> Watcher:
        ws = self._connection.enter_context(client(self.server))
        ws.send(json.dumps(self.request))
        ack = receive(ws)
        while ack["type"] == "heartbeat":  # the server's pulse may come before the answer
            ack = receive(ws)
        assert ack["type"] == "ack", ack
        self._thread = threading.Thread(target=self._read, args=(ws,), name="watcher", daemon=True)
        self._thread.start()
        return self

    def _read(self, ws: ClientConnection) -> None:
        while not self._stop.is_set():
            try:
                message = receive(ws, timeout=0.5)
            except TimeoutError:
                continue
            except ConnectionClosed as exc:
                self.closed.append(repr(exc))
                return
            if message["type"] == "event" or (self.heartbeats and message["type"] == "heartbeat"):
                self.arrivals.append(time.monotonic())
            elif message["type"] == "error":
                self.errors.append(message)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(LIMIT)
        self._connection.close()

    def wait_for_events(self, count: int) -> None:
        deadline = time.monotonic() + LIMIT
        while len(self.arrivals) < count:
            assert time.monotonic() < deadline, f"the watcher got {len(self.arrivals)} events, not {count}"
            time.sleep(0.05)

    def assert_flowing(self, since: float, *, max_gap: float) -> None:
        """Events kept arriving from `since` until now, never `max_gap` seconds apart."""
        assert not self.closed, self.closed
        assert not self.errors, self.errors
        now = time.monotonic()
        times = [since, *(t for t in self.arrivals if t >= since), now]
        worst = max(b - a for a, b in itertools.pairwise(times))
        assert worst < max_gap, f"the watcher's stream stalled for {worst:.1f} s"
