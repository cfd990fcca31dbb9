"""Both simulators + a Bridge + the server under uvicorn on loopback port 0, real `websockets` clients.

Real sockets and real time; nothing sleeps for timing: tests wait for messages with bounded timeouts.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import websockets

from brokerbridge.bridge import Bridge
from brokerbridge.core.backoff import BackoffPolicy
from brokerbridge.core.clock import Clock
from brokerbridge.core.config import ApiKey, Config, KrakenConfig, PrimaryConfig, ServerConfig
from brokerbridge.core.secret import Secret
from brokerbridge.server import BridgeServer, ServerSettings
from brokerbridge.server.ws import WsSettings
from brokerbridge.sim.kraken import KrakenSimulator
from brokerbridge.sim.primary import PrimarySimulator

LIMIT = 20.0  # seconds: the most any single wait in these tests may take
GGAL = "MERV - XMEV - GGAL - 24hs"

Message = dict[str, Any]


@dataclass
class Stack:
    kraken_sim: KrakenSimulator
    primary_sim: PrimarySimulator
    bridge: Bridge
    server: BridgeServer


def primary_config_of(primary: PrimarySimulator, cache_dir: Path) -> PrimaryConfig:
    """The `[primary]` of a bridge on `primary` (its demo account; trading around the clock)."""
    pe = primary.endpoints
    return PrimaryConfig(
        environment=pe.rest,
        rest_url=pe.rest,
        ws_url=pe.ws,
        user=pe.user,
        password=Secret(pe.password),
        account=pe.account,
        market_hours="always",
        instruments_cache_dir=str(cache_dir),
    )


def stack_config(kraken: KrakenSimulator, primary: PrimarySimulator, cache_dir: Path) -> Config:
    ke = kraken.endpoints
    return Config(
        kraken=KrakenConfig(
            rest_url=ke.rest,
            ws_url=ke.ws_public,
            ws_auth_url=ke.ws_private,
            api_key=ke.api_key,
            api_secret=Secret(ke.api_secret),
            backoff=BackoffPolicy(initial=0.1, factor=2.0, cap=1.0),
        ),
        primary=primary_config_of(primary, cache_dir),
    )


MARKET_KEY = "market-key-0123456789"
ACCOUNT_KEY = "account-key-0123456789"
KEYS = (
    ApiKey(name="viewer", key=Secret(MARKET_KEY), scopes=frozenset({"market"})),
    ApiKey(name="bot", key=Secret(ACCOUNT_KEY), scopes=frozenset({"market", "account"})),
)


@asynccontextmanager
async def make_stack(
    tmp_path: Path,
    *,
    grace_s: float = 0.0,
    ws: WsSettings | None = None,
    kraken_faults: dict[str, Any] | None = None,
    clock: Clock | None = None,
    keys: tuple[ApiKey, ...] = KEYS,
    simulated: frozenset[str] = frozenset(),
    **config: Any,
) -> AsyncIterator[Stack]:
    """`kraken_faults`: set on the Kraken simulator before the Bridge starts; `clock`: the server's
    (sessions, auth lockouts, cancel-on-disconnect), the Bridge keeping real time; `simulated`:
    venues the Bridge is told are its embedded simulators (as `serve --sim` says)."""
    settings = ServerSettings(
        config=ServerConfig(keys=keys, **config), ws=ws or WsSettings(heartbeat_interval=0.2)
    )
    async with (
        KrakenSimulator(host="127.0.0.1", port=0, seed=3) as kraken_sim,
        PrimarySimulator(host="127.0.0.1", port=0) as primary_sim,
    ):
        kraken_sim.faults.apply(kraken_faults or {})
        async with (
            Bridge(
                replace(stack_config(kraken_sim, primary_sim, tmp_path), simulated=simulated), grace_s=grace_s
            ) as bridge,
            BridgeServer(bridge, host="127.0.0.1", port=0, settings=settings, clock=clock) as server,
        ):
            yield Stack(kraken_sim, primary_sim, bridge, server)


async def catalogues_loaded(stack: Stack) -> None:
    """Load both venues' symbol lists now (a venue loads its own when first used): from then on
    unknown symbols are refused before going upstream."""
    async with asyncio.timeout(LIMIT):
        await stack.bridge.connectors["kraken"].ensure_symbols()
        await stack.bridge.catalog("primary")
    assert stack.bridge.connectors["kraken"].symbol_listed("BTC/USD")
    assert stack.bridge.connectors["primary"].symbol_listed(GGAL)


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    """A stack whose accounts are loaded (a few hundred ms after start): account answers are 200
    from the first request (before, `/api/balances` is 503 `not_loaded`: tests/server/test_ready.py)."""
    async with make_stack(tmp_path) as s:
        await s.bridge.wait_ready(LIMIT)
        yield s


class Client:
    """A `websockets` client that reads JSON messages, skipping heartbeats unless asked for."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.received: list[Message] = []  # every message read, heartbeats excepted

    async def send(self, message: Message | str) -> None:
        await self.ws.send(message if isinstance(message, str) else json.dumps(message))

    async def next(self, *, heartbeats: bool = False) -> Message:
        while True:
            message: Message = json.loads(await self.ws.recv())
            if message["type"] != "heartbeat":
                self.received.append(message)
            if heartbeats or message["type"] != "heartbeat":
                return message

    async def until(self, predicate: Callable[[Message], bool], *, within: float = LIMIT) -> Message:
        async with asyncio.timeout(within):
            while True:
                message = await self.next()
                if predicate(message):
                    return message

    async def close(self) -> None:
        await self.ws.close()


async def connect(server: BridgeServer, key: str | None = ACCOUNT_KEY, **options: Any) -> Client:
    """A client with the account-scoped key by default (key=None: anonymous)."""
    headers = {"Authorization": f"Bearer {key}"} if key else None
    options.setdefault("max_queue", None)
    return Client(await websockets.connect(server.ws_url, additional_headers=headers, **options))


def is_event(kind: str, **fields: Any) -> Callable[[Message], bool]:
    def match(m: Message) -> bool:
        return (
            m["type"] == "event"
            and m["event"]["kind"] == kind
            and all(m["event"].get(k) == v for k, v in fields.items())
        )

    return match
