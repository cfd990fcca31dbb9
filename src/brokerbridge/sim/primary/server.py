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

import logging
from dataclasses import asdict, dataclass
from typing import Any

from starlette.applications import Starlette

from brokerbridge.core.clock import Clock, SystemClock
from brokerbridge.sim.faults import PrimaryFaults
from brokerbridge.sim.primary.activity import ActivityLog, tracking_protocol
from brokerbridge.sim.primary.app import build_app
from brokerbridge.sim.primary.exchange import PrimaryExchange
from brokerbridge.sim.primary.tokens import TOKEN_TTL_S
from brokerbridge.sim.server import SimServer

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


class PrimarySimulator(SimServer[PrimaryEndpoints]):
    venue = "primary"

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
        clock = clock or SystemClock()
        faults = faults or PrimaryFaults()
        super().__init__(host, port, clock=clock, faults=faults, tick_s=tick_s)
        self.faults: PrimaryFaults = faults
        self.exchange = PrimaryExchange(
            clock=self.clock,
            faults=faults,
            seed=seed,
            user=user,
            password=password,
            account=account,
            token_ttl_s=token_ttl_s,
        )
        self._activity = ActivityLog(self.clock)
        faults.on_invalidate(self.exchange.revoke_all)

    # -- SimServer ---------------------------------------------------------------------------------------
    def build_app(self) -> Starlette:
        return build_app(self.exchange, self._sessions, self._activity)

    def data_received(self, client: tuple[str, int]) -> None:
        self._activity.touch(client)  # what the idle close counts

    def uvicorn_options(self) -> dict[str, Any]:
        return {
            "ws": tracking_protocol(self.data_received),
            "ws_max_size": 1 << 22,
            "ws_ping_interval": None,
            "ws_ping_timeout": None,
        }

    def make_endpoints(self, base: str) -> PrimaryEndpoints:
        x = self.exchange
        return PrimaryEndpoints(
            venue="primary",
            rest=f"http://{base}/",
            ws=f"ws://{base}/",
            control=f"http://{base}/_sim",
            user=x.user,
            password=x.password,
            account=x.account.account_id,
        )

    def step(self) -> None:
        self.exchange.step()
