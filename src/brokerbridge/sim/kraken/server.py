"""`KrakenSimulator`: the simulated Kraken served on loopback with uvicorn, in-process.

    async with KrakenSimulator(host="127.0.0.1", port=0, seed=7, clock=clock) as sim:
        sim.endpoints.rest, sim.endpoints.ws_public, ...

It owns its background tasks (market steps, timed connection drops) in one TaskGroup that lives
from `start()` to `stop()`. All waiting goes through the injected clock, so a FakeClock drives the
market, heartbeats, token ages, rate-limit decay and periodic drops in tests.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette

from brokerbridge.core.clock import Clock, SystemClock
from brokerbridge.sim.faults import KrakenFaults
from brokerbridge.sim.kraken.account import ALL_PERMISSIONS, Permission
from brokerbridge.sim.kraken.app import build_app
from brokerbridge.sim.kraken.exchange import KrakenExchange
from brokerbridge.sim.server import SimServer

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


class KrakenSimulator(SimServer[SimEndpoints]):
    venue = "kraken"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        seed: int = 0,
        clock: Clock | None = None,
        faults: KrakenFaults | None = None,
        tick_s: float = DEFAULT_TICK_S,
    ) -> None:
        clock = clock or SystemClock()
        faults = faults or KrakenFaults()
        super().__init__(host, port, clock=clock, faults=faults, tick_s=tick_s)
        self.faults: KrakenFaults = faults
        self.exchange = KrakenExchange(clock=self.clock, faults=faults, seed=seed)
        faults.on_invalidate(self.exchange.tokens.revoke_all)
        faults.on_status(self._push_status)

    def create_key(
        self, permissions: Iterable[Permission | str] = ALL_PERMISSIONS, *, nonce_window: int = 0
    ) -> tuple[str, str]:
        key = self.exchange.create_key(permissions, nonce_window=nonce_window)
        return key.key, key.secret

    def _push_status(self) -> None:
        for session in list(self._sessions):
            session.push_status()

    # -- SimServer ---------------------------------------------------------------------------------------
    def build_app(self) -> Starlette:
        return build_app(self.exchange, self._sessions)

    def uvicorn_options(self) -> dict[str, Any]:
        return {"ws_max_size": 1 << 20}

    def make_endpoints(self, base: str) -> SimEndpoints:
        demo = self.exchange.demo_key
        return SimEndpoints(
            venue="kraken",
            rest=f"http://{base}",
            ws_public=f"ws://{base}/v2",
            ws_private=f"ws://{base}/auth/v2",
            control=f"http://{base}/_sim",
            api_key=demo.key,
            api_secret=demo.secret,
        )

    def step(self) -> None:
        self.exchange.step()
