"""Helpers for the Primary simulator tests: login, a raw-frame WebSocket client, fixture shapes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import websockets

from brokerbridge.core.clock import FakeClock
from brokerbridge.sim.primary import PrimarySimulator

FIXTURES = Path(__file__).parents[1] / "fixtures" / "primary"
GGAL = "MERV - XMEV - GGAL - 24hs"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def fixture_lines(name: str) -> list[Any]:
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines() if line.strip()]


async def login(http: httpx.AsyncClient, sim: PrimarySimulator) -> str:
    response = await http.post(
        "auth/getToken", headers={"X-Username": sim.endpoints.user, "X-Password": sim.endpoints.password}
    )
    assert response.status_code == 200
    return response.headers["X-Auth-Token"]


def symbol_of(sim: PrimarySimulator, kind: str, index: int = 0) -> str:
    return [i.symbol for i in sim.exchange.catalog.instruments if i.kind == kind][index]


def assert_shape(actual: Any, expected: Any, path: str = "$") -> None:
    """Same keys (recursively) and compatible JSON types; `null` in the capture accepts anything."""
    if expected is None:
        return
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: {actual!r} is not an object"
        assert set(actual) == set(expected), f"{path}: keys {sorted(actual)} != {sorted(expected)}"
        for key, value in expected.items():
            assert_shape(actual[key], value, f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{path}: {actual!r} is not a list"
        if expected and actual:
            for item in actual:
                assert_shape(item, expected[0], f"{path}[]")
    elif isinstance(expected, bool):
        assert isinstance(actual, bool), f"{path}: {actual!r} is not a boolean"
    elif isinstance(expected, int | float):
        assert isinstance(actual, int | float) and not isinstance(actual, bool), f"{path}: {actual!r}"
    else:
        assert isinstance(actual, type(expected)), f"{path}: {actual!r} is not {type(expected).__name__}"


class Ws:
    """A websockets client that keeps raw frames."""

    def __init__(self, conn: websockets.ClientConnection) -> None:
        self.conn = conn

    async def send(self, message: dict[str, Any] | str) -> None:
        await self.conn.send(message if isinstance(message, str) else json.dumps(message))

    async def recv(self, within: float = 5.0) -> dict[str, Any]:
        text = await asyncio.wait_for(self.conn.recv(), within)
        assert isinstance(text, str)
        return json.loads(text)

    async def until(self, predicate: Any, within: float = 5.0) -> dict[str, Any]:
        while True:
            message = await self.recv(within)
            if predicate(message):
                return message

    async def nothing_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self.conn.recv(), seconds)
        except TimeoutError:
            return True
        return False

    async def closed_with(self, within: float = 5.0) -> int | None:
        try:
            while True:
                await asyncio.wait_for(self.conn.recv(), within)
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd is not None else None


async def connect(sim: PrimarySimulator, token: str) -> Ws:
    # No client keep-alive pings: tests decide what the client sends.
    conn = await websockets.connect(
        sim.endpoints.ws, additional_headers={"X-Auth-Token": token}, ping_interval=None, max_size=None
    )
    return Ws(conn)


def smd(*symbols: str, entries: tuple[str, ...] = ("BI", "OF", "LA"), depth: int = 1) -> dict[str, Any]:
    return {
        "type": "smd",
        "level": 1,
        "depth": depth,
        "entries": list(entries),
        "products": [{"symbol": s, "marketId": "ROFX"} for s in symbols],
    }


async def step(clock: FakeClock, seconds: float) -> None:
    """Move the simulator's clock (and so its market) forward."""
    await clock.advance(seconds, settle=5)


async def raw_handshake(sim: PrimarySimulator, header_line: str) -> str:
    """A hand-written upgrade request (websocket-client's shape); returns the status line."""
    host, port = sim.endpoints.rest.removeprefix("http://").strip("/").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    request = (
        "GET / HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"Origin: http://{host}:{port}\r\n{header_line}\r\n\r\n"
    )
    writer.write(request.encode())
    try:
        status = await asyncio.wait_for(reader.readline(), 5)
    finally:
        writer.close()
    return status.decode().strip()
