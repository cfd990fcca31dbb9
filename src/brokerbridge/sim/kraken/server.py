"""`KrakenSimulator`: the simulated Kraken served on loopback with uvicorn, in-process.

    async with KrakenSimulator(host="127.0.0.1", port=0, seed=7, clock=clock) as sim:
        sim.endpoints.rest, sim.endpoints.ws_public, ...

It owns its background tasks (market steps, timed connection drops) in one TaskGroup that lives
from `start()` to `stop()`. All waiting goes through the injected clock, so a FakeClock drives the
market, heartbeats, token ages, rate-limit decay and periodic drops in tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import uvicorn

from brokerbridge.core.clock import Clock, SystemClock
from brokerbridge.sim.faults import Faults, drop_periodically
from brokerbridge.sim.kraken.account import ALL_PERMISSIONS, Permission
from brokerbridge.sim.kraken.app import build_app
from brokerbridge.sim.kraken.exchange import KrakenExchange
from brokerbridge.sim.kraken.ws import WsSession

log = logging.getLogger(__name__)

DEFAULT_TICK_S = 0.01


@dataclass(frozen=True, slots=True)
class SimEndpoints:
    venue: str
    rest: str
    ws_public: str
    ws_private: str
    control: str
    api_key: str
    api_secret: str

    def to_dict(self) -> dict[str, str]:
        return {
            "venue": self.venue,
            "rest": self.rest,
            "ws_public": self.ws_public,
            "ws_private": self.ws_private,
            "control": self.control,
            "api_key": self.api_key,
            "api_secret": self.api_secret,
        }


class _Server(uvicorn.Server):
    """uvicorn without its signal handling: whoever owns the process decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class KrakenSimulator:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        seed: int = 0,
        clock: Clock | None = None,
        faults: Faults | None = None,
        tick_s: float = DEFAULT_TICK_S,
    ) -> None:
        self.host = host
        self.port = port
        self.clock: Clock = clock or SystemClock()
        self.faults = faults or Faults()
        self.tick_s = tick_s
        self.exchange = KrakenExchange(clock=self.clock, faults=self.faults, seed=seed)
        self._sessions: set[WsSession] = set()
        self.faults.on_drop(self.drop_connections)
        self.faults.on_invalidate(self.exchange.tokens.revoke_all)
        self.faults.on_status(self._push_status)
        self._server: _Server | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self._group: asyncio.TaskGroup | None = None
        self._group_runner: asyncio.Task[None] | None = None
        self._stopping: asyncio.Event | None = None
        self._endpoints: SimEndpoints | None = None

    # -- API ---------------------------------------------------------------------------------------------
    @property
    def endpoints(self) -> SimEndpoints:
        if self._endpoints is None:
            raise RuntimeError("the simulator is not started")
        return self._endpoints

    def create_key(
        self, permissions: Iterable[Permission | str] = ALL_PERMISSIONS, *, nonce_window: int = 0
    ) -> tuple[str, str]:
        key = self.exchange.create_key(permissions, nonce_window=nonce_window)
        return key.key, key.secret

    def drop_connections(self) -> None:
        for session in list(self._sessions):
            session.drop()

    def _push_status(self) -> None:
        for session in list(self._sessions):
            session.push_status()

    @property
    def sessions(self) -> frozenset[WsSession]:
        return frozenset(self._sessions)

    # -- lifecycle ---------------------------------------------------------------------------------------
    async def start(self) -> None:
        app = build_app(self.exchange, self._sessions)
        config = uvicorn.Config(
            app,
            host=self.host,
            port=self.port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=2,
            ws_max_size=1 << 20,
        )
        self._server = _Server(config)
        self._serve_task = asyncio.create_task(self._server.serve(), name="kraken-sim-uvicorn")
        while not self._server.started:
            if self._serve_task.done():
                self._serve_task.result()  # raises the bind error
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.01)
        bound_port = self._server.servers[0].sockets[0].getsockname()[1]
        base = f"{self.host}:{bound_port}"
        demo = self.exchange.demo_key
        self._endpoints = SimEndpoints(
            venue="kraken",
            rest=f"http://{base}",
            ws_public=f"ws://{base}/v2",
            ws_private=f"ws://{base}/auth/v2",
            control=f"http://{base}/_sim",
            api_key=demo.key,
            api_secret=demo.secret,
        )
        self._stopping = asyncio.Event()
        started = asyncio.Event()
        self._group_runner = asyncio.create_task(self._run_background(started), name="kraken-sim-background")
        await started.wait()
        log.info("Kraken simulator listening on %s", self._endpoints.rest)

    async def _run_background(self, started: asyncio.Event) -> None:
        assert self._stopping is not None
        async with asyncio.TaskGroup() as group:
            market = group.create_task(self._market_loop())
            drops = group.create_task(self._drop_loop())
            started.set()
            await self._stopping.wait()
            market.cancel()
            drops.cancel()

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
            self._server.should_exit = True
            await self._serve_task
            self._serve_task = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- background ------------------------------------------------------------------------------------
    async def _market_loop(self) -> None:
        while True:
            await self.clock.sleep(self.tick_s)
            try:
                self.exchange.step()
            except Exception:  # our bug: log it and keep the market alive for the rest of the run
                log.exception("market step failed")

    async def _drop_loop(self) -> None:
        await drop_periodically(self.clock, self.faults, self.drop_connections)
