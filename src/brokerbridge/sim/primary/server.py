"""`PrimarySimulator`: the simulated Primary API served on loopback with uvicorn, in-process.

    async with PrimarySimulator(host="127.0.0.1", port=0, seed=7, clock=clock) as sim:
        sim.endpoints.rest, sim.endpoints.ws, sim.endpoints.user, ...

REST and WebSocket share one port; the WebSocket is at `/`. It owns its background tasks (market
steps, timed connection drops) in one TaskGroup that lives from `start()` to `stop()`. All waiting
goes through the injected clock, so a FakeClock drives the market, `Md` throttling, token ages,
idle closes, periodic drops and latency in tests. uvicorn's own keep-alive pings are off: whether
Primary's server pings is not known (§10.4), and a stalled socket must be fully silent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Generator
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Self

import uvicorn

from brokerbridge.core.clock import Clock, SystemClock
from brokerbridge.sim.faults import drop_periodically
from brokerbridge.sim.primary.activity import ActivityLog, tracking_protocol
from brokerbridge.sim.primary.app import build_app
from brokerbridge.sim.primary.exchange import PrimaryExchange
from brokerbridge.sim.primary.faults import PrimaryFaults
from brokerbridge.sim.primary.tokens import TOKEN_TTL_S
from brokerbridge.sim.primary.ws import WsSession

log = logging.getLogger(__name__)

DEFAULT_TICK_S = 0.1  # 58 instruments; Md frames go out at most every 0.5 s anyway


@dataclass(frozen=True, slots=True)
class PrimaryEndpoints:
    venue: str
    rest: str
    ws: str
    control: str
    user: str
    password: str
    account: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


class _Server(uvicorn.Server):
    """uvicorn without its signal handling: whoever owns the process decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class PrimarySimulator:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        seed: int = 0,
        clock: Clock | None = None,
        faults: PrimaryFaults | None = None,
        tick_s: float = DEFAULT_TICK_S,
        token_ttl_s: float = TOKEN_TTL_S,
        user: str | None = None,
        password: str | None = None,
        account: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.clock: Clock = clock or SystemClock()
        self.faults = faults or PrimaryFaults()
        self.tick_s = tick_s
        self.exchange = PrimaryExchange(
            clock=self.clock,
            faults=self.faults,
            seed=seed,
            user=user,
            password=password,
            account=account,
            token_ttl_s=token_ttl_s,
        )
        self._sessions: set[WsSession] = set()
        self._activity = ActivityLog(self.clock)
        self.faults.on_drop(self.drop_connections)
        self.faults.on_invalidate(self.exchange.tokens.revoke_all)
        self._server: _Server | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self._group_runner: asyncio.Task[None] | None = None
        self._stopping: asyncio.Event | None = None
        self._endpoints: PrimaryEndpoints | None = None

    # -- API ---------------------------------------------------------------------------------------------
    @property
    def endpoints(self) -> PrimaryEndpoints:
        if self._endpoints is None:
            raise RuntimeError("the simulator is not started")
        return self._endpoints

    @property
    def sessions(self) -> frozenset[WsSession]:
        return frozenset(self._sessions)

    def drop_connections(self) -> None:
        for session in list(self._sessions):
            session.drop()

    # -- lifecycle ---------------------------------------------------------------------------------------
    async def start(self) -> None:
        app = build_app(self.exchange, self._sessions, self._activity)
        config = uvicorn.Config(
            app,
            host=self.host,
            port=self.port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=2,
            ws=tracking_protocol(self._activity),
            ws_max_size=1 << 22,
            ws_ping_interval=None,
            ws_ping_timeout=None,
        )
        self._server = _Server(config)
        self._serve_task = asyncio.create_task(self._server.serve(), name="primary-sim-uvicorn")
        while not self._server.started:
            if self._serve_task.done():
                self._serve_task.result()  # raises the bind error
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.01)
        bound_port = self._server.servers[0].sockets[0].getsockname()[1]
        base = f"{self.host}:{bound_port}"
        x = self.exchange
        self._endpoints = PrimaryEndpoints(
            venue="primary",
            rest=f"http://{base}/",
            ws=f"ws://{base}/",
            control=f"http://{base}/_sim",
            user=x.user,
            password=x.password,
            account=x.account.account_id,
        )
        self._stopping = asyncio.Event()
        started = asyncio.Event()
        self._group_runner = asyncio.create_task(self._run_background(started), name="primary-sim-background")
        await started.wait()
        log.info("Primary simulator listening on %s", self._endpoints.rest)

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
