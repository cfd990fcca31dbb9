"""Helpers for the simulator tests: a signing REST client, a raw-frame WebSocket client, fixtures."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import websockets

from brokerbridge.core.clock import FakeClock
from brokerbridge.venues.kraken.auth import sign

FIXTURES = Path("/work/shared/fixtures/kraken")


class Signer:
    """Signs private calls like a Kraken client: form body (or JSON), nonce, API-Key, API-Sign."""

    def __init__(self, http: httpx.AsyncClient, key: str, secret: str) -> None:
        self.http = http
        self.key = key
        self.secret = secret
        self.nonce = 1_000_000

    def next_nonce(self) -> int:
        self.nonce += 1
        return self.nonce

    async def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        nonce: int | None = None,
        as_json: bool = False,
    ) -> dict[str, Any]:
        path = f"/0/private/{method}"
        body_params = {"nonce": str(nonce if nonce is not None else self.next_nonce()), **(params or {})}
        if as_json:
            body = json.dumps(body_params)
            content_type = "application/json"
        else:
            body = urllib.parse.urlencode(body_params)
            content_type = "application/x-www-form-urlencoded"
        headers = {
            "API-Key": self.key,
            "API-Sign": sign(path, body_params["nonce"], body, self.secret),
            "Content-Type": content_type,
        }
        response = await self.http.post(path, content=body, headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        return response.json()


class Ws:
    """A websockets client that keeps raw frames and can skip heartbeats."""

    def __init__(self, conn: websockets.ClientConnection) -> None:
        self.conn = conn

    async def send(self, message: dict[str, Any]) -> None:
        await self.conn.send(json.dumps(message))

    async def recv_raw(self, within: float = 5.0) -> str:
        text = await asyncio.wait_for(self.conn.recv(), within)
        assert isinstance(text, str)
        return text

    async def recv(self, within: float = 5.0) -> dict[str, Any]:
        return json.loads(await self.recv_raw(within), parse_float=Decimal)

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


async def connect(url: str) -> Ws:
    ws = Ws(await websockets.connect(url, max_size=None))
    status = await ws.recv()
    assert status["channel"] == "status"
    return ws


def fixture_lines(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines() if line.strip()]


def without_times(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k not in ("time_in", "time_out")}


async def step(clock: FakeClock, seconds: float) -> None:
    """Move the simulator's clock (and so its market) forward."""
    await clock.advance(seconds, settle=5)
