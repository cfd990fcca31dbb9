"""A Primary-only stack for `/primary/` tests: the Primary simulator (counting the HTTP requests that
reach it), a Bridge on it and the server, with API keys and a bridge-local user of each scope.

Real sockets and real time (the server's clock may be a FakeClock: tokens, logins).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from brokerbridge.bridge import Bridge
from brokerbridge.core.clock import Clock
from brokerbridge.core.config import ApiKey, Config, ServerConfig, User
from brokerbridge.core.passwords import hash_password
from brokerbridge.core.secret import Secret
from brokerbridge.server import BridgeServer, ServerSettings
from brokerbridge.server.ws import WsSettings
from brokerbridge.sim.primary import PrimarySimulator
from tests.server.conftest import LIMIT, primary_config_of

MARKET_KEY = "primary-market-key-0123"
READ_KEY = "primary-read-key-01234"
TRADE_KEY = "primary-trade-key-0123"
KEYS = (
    ApiKey(name="quotes", key=Secret(MARKET_KEY), scopes=frozenset({"market"})),
    ApiKey(name="reader", key=Secret(READ_KEY), scopes=frozenset({"market", "account"})),
    ApiKey(name="trader", key=Secret(TRADE_KEY), scopes=frozenset({"market", "account", "trade"})),
)
# A bridge-local user (what a person types into a Primary front end), read + trade; the hash made
# with small scrypt parameters so the test does not spend a second per login.
USER, PASSWORD = "ana", "correct horse battery"
USERS = (
    User(
        name=USER,
        password_hash=Secret(hash_password(PASSWORD, n=2**4)),
        scopes=frozenset({"market", "account", "trade"}),
    ),
)
BASE = "/primary/"


class CountingPrimarySimulator(PrimarySimulator):
    """The Primary simulator, counting the HTTP requests that reach it (path and query)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.requests: list[str] = []

    def build_app(self) -> Any:
        app = super().build_app()

        async def counting(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                self.requests.append(f"{scope['path']}?{scope['query_string'].decode()}")
            await app(scope, receive, send)

        return counting

    def reached(self, path: str, since: int = 0) -> list[str]:
        return [r for r in self.requests[since:] if r.startswith(path)]


@dataclass
class PrimaryStack:
    sim: CountingPrimarySimulator
    bridge: Bridge
    server: BridgeServer
    http: httpx.AsyncClient

    @property
    def account(self) -> str:
        return self.sim.exchange.account.account_id

    async def token(self, user: str = "trader", password: str = TRADE_KEY) -> str:
        answer = await self.http.post(
            BASE + "auth/getToken", headers={"X-Username": user, "X-Password": password}
        )
        assert answer.status_code == 200, answer.text
        return answer.headers["X-Auth-Token"]

    async def get(self, path: str, token: str | None, **params: Any) -> httpx.Response:
        headers = {"X-Auth-Token": token} if token is not None else {}
        return await self.http.get(BASE + path, params=params, headers=headers)

    async def ok(self, path: str, token: str, **params: Any) -> dict[str, Any]:
        answer = await self.get(path, token, **params)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        assert body["status"] == "OK", body
        return body

    async def error(self, path: str, token: str | None, status: int = 200, **params: Any) -> str:
        """Primary's refusal: its status, `{"status":"ERROR","description":…}`; the description."""
        answer = await self.get(path, token, **params)
        assert answer.status_code == status, answer.text
        body = answer.json()
        assert body["status"] == "ERROR", body
        description: str = body["description"]
        return description


def primary_config(sim: PrimarySimulator, cache_dir: Path, **server: Any) -> Config:
    return Config(
        primary=primary_config_of(sim, cache_dir),
        server=ServerConfig(
            venues=("primary",), keys=KEYS, users=USERS, state_dir=str(cache_dir / "state"), **server
        ),
    )


@asynccontextmanager
async def primary_stack(
    tmp_path: Path, *, clock: Clock | None = None, heartbeat: float = 0.5
) -> AsyncIterator[PrimaryStack]:
    """The simulator, a Bridge on it (Primary only, grace 5 s as `serve`) and the server; `clock`
    is the server's (tokens, logins), the Bridge keeps real time."""
    async with CountingPrimarySimulator(host="127.0.0.1", port=0) as sim:
        config = primary_config(sim, tmp_path)
        settings = ServerSettings(config=config.server, ws=WsSettings(heartbeat_interval=heartbeat))
        async with (
            Bridge(config, grace_s=5.0) as bridge,
            BridgeServer(bridge, host="127.0.0.1", port=0, settings=settings, clock=clock) as server,
            httpx.AsyncClient(base_url=server.http_url, timeout=LIMIT) as http,
        ):
            await bridge.wait_ready(LIMIT)
            yield PrimaryStack(sim, bridge, server, http)
