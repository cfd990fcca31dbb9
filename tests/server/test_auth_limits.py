"""Key guessing and DNS rebinding: failed authentications are limited per client address (REST, the
/ws handshake and the `auth` message), logged without the key and counted; a Host header that does
not name the server is refused. Lockouts run on the server's FakeClock: nothing sleeps."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest
import websockets

from brokerbridge.core.clock import FakeClock
from tests.server.conftest import ACCOUNT_KEY, LIMIT, connect, make_stack
from tests.server.observe import metric

WRONG = [f"guessed-key-{n:04d}-xxxxxxxx" for n in range(10)]


async def test_key_guessing_is_limited_per_address_and_logged_without_the_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    clock = FakeClock()
    limits = {"auth_failure_burst": 3, "auth_failure_interval": 10.0}
    async with (
        make_stack(tmp_path, clock=clock, **limits) as stack,
        asyncio.timeout(LIMIT),
        httpx.AsyncClient(base_url=stack.server.http_url, timeout=LIMIT) as http,
    ):
        for key in WRONG[:3]:
            answer = await http.get("/api/venues", headers={"Authorization": f"Bearer {key}"})
            assert answer.status_code == 401
        # The address is out of tries: every credential is refused unchecked, the right one too.
        for key in (WRONG[3], ACCOUNT_KEY):
            answer = await http.get("/api/balances/kraken", headers={"Authorization": f"Bearer {key}"})
            assert answer.status_code == 429 and answer.headers["retry-after"] == "10"
            error = answer.json()["error"]
            assert error["code"] == "rate_limited" and "auth_failure_burst" in error["remedy"]
        with pytest.raises(websockets.InvalidStatus) as refused:
            await connect(stack.server, key=ACCOUNT_KEY)
        assert refused.value.response.status_code == 429
        assert refused.value.response.headers["Retry-After"] == "10"
        # No credential: served as anonymous, as before.
        assert (await http.get("/api/venues")).status_code == 200
        server = stack.server
        assert metric(server, "brokerbridge_auth_failures_total", via="rest") == 3
        assert metric(server, "brokerbridge_auth_refused_total", via="rest") == 2
        assert metric(server, "brokerbridge_auth_refused_total", via="ws") == 1
        # One interval later one more try is allowed: the right key works, a wrong one locks again.
        await clock.advance(10.0)
        ok = await http.get("/api/balances/kraken", headers={"Authorization": f"Bearer {ACCOUNT_KEY}"})
        assert ok.status_code == 200
        assert (await http.get("/api/venues", params={"key": WRONG[4]})).status_code == 401
        assert (await http.get("/api/venues", params={"key": ACCOUNT_KEY})).status_code == 429
    warnings = [
        r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("brokerbridge")
    ]
    assert warnings, "failed authentications were not logged"
    for record in warnings:
        line = record.getMessage()
        assert "\n" not in line and not any(key in line for key in (*WRONG, ACCOUNT_KEY)), line
    failures = [r for r in warnings if "authentication failed" in r.getMessage()]
    assert len(failures) == 4  # one line per failure (a burst of 5 per address and minute gets through)


async def test_the_auth_message_is_limited_too(tmp_path: Path) -> None:
    clock = FakeClock()
    async with make_stack(tmp_path, clock=clock, auth_failure_burst=2) as stack, asyncio.timeout(LIMIT):
        client = await connect(stack.server, key=None)
        codes = []
        for n, key in enumerate([*WRONG[:3], ACCOUNT_KEY]):
            await client.send({"op": "auth", "key": key, "id": n})
            answer = await client.until(lambda m, n=n: m.get("id") == n)
            codes.append(answer.get("code") or answer["type"])
        assert codes == ["not_authorized", "not_authorized", "rate_limited", "rate_limited"]
        assert metric(stack.server, "brokerbridge_auth_failures_total", via="ws") == 2
        await clock.advance(6.0)
        await client.send({"op": "auth", "key": ACCOUNT_KEY, "id": "ok"})
        assert (await client.until(lambda m: m.get("id") == "ok"))["type"] == "ack"
        await client.close()


async def test_a_host_header_not_naming_the_server_is_refused(tmp_path: Path) -> None:
    async with (
        make_stack(tmp_path) as stack,
        asyncio.timeout(LIMIT),
        httpx.AsyncClient(base_url=stack.server.http_url, timeout=LIMIT) as http,
    ):
        rebound = await http.get("/api/health", headers={"Host": "evil.example"})
        assert rebound.status_code == 421
        assert "server.allowed_hosts" in rebound.json()["error"]["remedy"]
        assert (await http.get("/metrics", headers={"Host": "evil.example:8000"})).status_code == 421
        for host in ("localhost", f"127.0.0.1:{stack.server.port}", "LOCALHOST."):
            assert (await http.get("/api/health", headers={"Host": host})).status_code == 200, host
        status, body = await raw_handshake(stack.server.port, "evil.example")
        assert status == 421 and b"allowed_hosts" in body
        status, _ = await raw_handshake(stack.server.port, "localhost")
        assert status == 101
    async with (
        make_stack(tmp_path, allowed_hosts=("bridge.example",)) as stack,
        httpx.AsyncClient(base_url=stack.server.http_url, timeout=LIMIT) as http,
    ):
        assert (await http.get("/api/health", headers={"Host": "bridge.example"})).status_code == 200
        assert (await http.get("/api/health", headers={"Host": "evil.example"})).status_code == 421


async def raw_handshake(port: int, host: str) -> tuple[int, bytes]:
    """A WebSocket upgrade with exactly this Host header (client libraries set their own)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (
            f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split()[1])
    body = b"" if status == 101 else await reader.read()
    writer.close()
    return status, body
