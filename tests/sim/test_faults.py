"""Every fault switch, set through the control endpoint (as tests and users do) or the API."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.request

import httpx
import pytest
import websockets
from sim_helpers import Signer, connect, step

from brokerbridge.core.clock import FakeClock
from brokerbridge.sim.faults import FaultError, KrakenFaults
from brokerbridge.sim.kraken import KrakenSimulator
from brokerbridge.venues.kraken.checksum import book_checksum


async def control(
    http: httpx.AsyncClient, sim: KrakenSimulator, body: dict[str, object]
) -> dict[str, object]:
    response = await http.post(sim.endpoints.control + "/faults", json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def test_control_endpoint_get_set_reset_and_validation(
    sim: KrakenSimulator, http: httpx.AsyncClient
) -> None:
    state = (await http.get(sim.endpoints.control + "/faults")).json()
    assert state == KrakenFaults().to_dict()
    changed = await control(http, sim, {"latency_ms": 5, "stall": "public", "rest_unavailable": True})
    assert changed["latency_ms"] == 5.0 and changed["stall"] == "public" and changed["rest_unavailable"] == -1
    bad = await http.post(sim.endpoints.control + "/faults", json={"stall": "sideways"})
    assert bad.status_code == 400
    assert (await http.post(sim.endpoints.control + "/faults", json={"nope": 1})).status_code == 400
    reset = (await http.post(sim.endpoints.control + "/faults/reset")).json()
    assert reset == KrakenFaults().to_dict()
    with pytest.raises(FaultError):
        KrakenFaults().apply({"skip_sequence": ["ticker"]})


async def test_rest_unavailable_http_errors_and_rate_limit(
    sim: KrakenSimulator, http: httpx.AsyncClient, signer: Signer
) -> None:
    await control(http, sim, {"rest_unavailable": 2})
    for _ in range(2):
        assert (await http.get("/0/public/Time")).json() == {"error": ["EService:Unavailable"]}
    assert (await http.get("/0/public/Time")).json()["error"] == []
    await control(http, sim, {"rest_http_errors": 1, "rest_http_status": 502})
    response = await http.get("/0/public/Time")
    assert response.status_code == 502 and not response.text.startswith("{")
    assert (await http.get("/0/public/Time")).status_code == 200
    await control(http, sim, {"rate_limit": 1})
    assert await signer.call("Balance") == {"error": ["EAPI:Rate limit exceeded"]}
    assert (await signer.call("Balance"))["error"] == []


async def test_latency_on_rest_and_ws_uses_the_clock(
    sim: KrakenSimulator, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    ws = await connect(sim.endpoints.ws_public)
    await control(http, sim, {"latency_ms": 500})
    pending = asyncio.create_task(http.get("/0/public/Time"))
    await asyncio.sleep(0.1)
    assert not pending.done()
    await ws.send({"method": "ping", "req_id": 3})
    assert await ws.nothing_within(0.1)
    await clock.advance(0.5)
    assert (await pending).json()["error"] == []
    assert (await ws.recv())["method"] == "pong"


async def test_drop_now_and_every_n_seconds(
    sim: KrakenSimulator, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    ws = await connect(sim.endpoints.ws_public)
    await control(http, sim, {"drop_now": True})
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    await control(http, sim, {"drop_every_s": 5})
    ws = await connect(sim.endpoints.ws_public)
    await step(clock, 3)
    assert await ws.nothing_within(0.1)
    await step(clock, 2.1)
    with pytest.raises(websockets.ConnectionClosed):
        await ws.recv(within=2)


async def test_stall_keeps_socket_open_but_silent(
    sim: KrakenSimulator, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    ws = await connect(sim.endpoints.ws_public)
    await ws.send({"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD"]}})
    await ws.until(lambda m: m.get("channel") == "book")
    await control(http, sim, {"stall": "public"})
    await ws.nothing_within(0.1)  # drain what was already queued
    await step(clock, 3)
    assert await ws.nothing_within(0.3), "no data and no heartbeats while stalled"
    private = await connect(sim.endpoints.ws_private)  # the private feed is not stalled
    await private.send({"method": "ping"})
    assert (await private.recv())["method"] == "pong"
    await control(http, sim, {"stall": None})
    await step(clock, 1.5)
    assert (await ws.recv())["channel"] in ("book", "heartbeat")


async def test_corrupt_next_checksums(
    sim: KrakenSimulator, clock: FakeClock, http: httpx.AsyncClient
) -> None:
    ws = await connect(sim.endpoints.ws_public)
    await ws.send({"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD"]}})
    await ws.recv()
    snapshot = await ws.recv()
    data = snapshot["data"][0]
    book = {
        "bids": {lv["price"]: lv["qty"] for lv in data["bids"]},
        "asks": {lv["price"]: lv["qty"] for lv in data["asks"]},
    }
    await control(http, sim, {"corrupt_checksums": 2})
    await step(clock, 0.5)
    results = []
    while len(results) < 5:
        message = await ws.recv()
        if message.get("channel") != "book":
            continue
        update = message["data"][0]
        for side in ("bids", "asks"):
            for level in update[side]:
                if level["qty"] == 0:
                    book[side].pop(level["price"], None)
                else:
                    book[side][level["price"]] = level["qty"]
            keep = sorted(book[side], reverse=side == "bids")[:10]
            book[side] = {p: book[side][p] for p in keep}
        expected = book_checksum(
            [(str(p), str(q)) for p, q in book["asks"].items()],
            [(str(p), str(q)) for p, q in book["bids"].items()],
        )
        results.append(update["checksum"] == expected)
    assert results == [False, False, True, True, True]


async def test_skip_sequence_deny_permission_and_invalidate_tokens(
    sim: KrakenSimulator, http: httpx.AsyncClient, signer: Signer
) -> None:
    token = (await signer.call("GetWebSocketsToken"))["result"]["token"]
    ws = await connect(sim.endpoints.ws_private)
    await ws.send({"method": "subscribe", "params": {"channel": "executions", "token": token}})
    await ws.recv()
    assert (await ws.recv())["sequence"] == 1
    await control(http, sim, {"skip_sequence": ["executions"]})
    await signer.call(
        "AddOrder",
        {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": "0.01", "price": "30000.0"},
    )
    assert [(await ws.recv())["sequence"] for _ in range(2)] == [3, 4]  # 2 was skipped
    await control(http, sim, {"deny_permissions": ["websockets"]})
    assert await signer.call("GetWebSocketsToken") == {"error": ["EGeneral:Permission denied"]}
    await control(http, sim, {"deny_permissions": []})
    assert (await signer.call("GetWebSocketsToken"))["error"] == []
    await control(http, sim, {"invalidate_tokens": True})
    await ws.send({"method": "subscribe", "params": {"channel": "balances", "token": token}})
    assert (await ws.recv())["error"] == "ESession:Invalid session"
    fresh = (await signer.call("GetWebSocketsToken"))["result"]["token"]
    await ws.send({"method": "subscribe", "params": {"channel": "balances", "token": fresh}})
    assert (await ws.recv())["success"] is True


async def test_rest_trickle_and_headers_only(
    sim: KrakenSimulator, http: httpx.AsyncClient, clock: FakeClock, signer: Signer
) -> None:
    await control(http, sim, {"rest_trickle_s": 1.5})
    async with http.stream("GET", "/0/public/SystemStatus") as response:
        assert response.status_code == 200 and int(response.headers["content-length"]) > 2
        chunks = response.aiter_raw()
        first = asyncio.ensure_future(anext(chunks))
        await clock.advance(1.0, settle=5)
        await asyncio.sleep(0.05)
        assert not first.done()  # a byte every 1.5 s of the simulator's clock
        await clock.advance(0.5, settle=5)
        assert await asyncio.wait_for(first, 2) == b"{"
    await control(http, sim, {"rest_trickle_s": 0, "rest_headers_only": 1})
    async with http.stream("GET", "/0/public/Time") as response:
        assert response.status_code == 200 and int(response.headers["content-length"]) > 0
        body = asyncio.ensure_future(response.aread())
        await clock.advance(30, settle=5)
        await asyncio.sleep(0.05)
        assert not body.done()  # headers only, never the body
        body.cancel()
    assert (await http.get("/0/public/Time")).json()["error"] == []  # counted: the next one is whole
    assert (await signer.call("Balance"))["error"] == []


def test_cli_prints_endpoints_and_exits_zero_on_sigint() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "brokerbridge.cli.main",
            "sim",
            "kraken",
            "--port",
            "0",
            "--seed",
            "3",
            "--latency-ms",
            "1",
            "--rest-trickle",
            "0.5",
            "--rest-headers-only",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        endpoints = json.loads(line)
        assert list(endpoints) == [
            "venue",
            "rest",
            "ws_public",
            "ws_private",
            "control",
            "api_key",
            "api_secret",
        ]
        assert endpoints["venue"] == "kraken" and endpoints["ws_private"].endswith("/auth/v2")
        with urllib.request.urlopen(endpoints["control"] + "/faults", timeout=5) as response:
            switches = json.loads(response.read())
        assert switches["latency_ms"] == 1.0
        assert (switches["rest_trickle_s"], switches["rest_headers_only"]) == (0.5, 2)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_fault_permission_names_are_the_account_permissions() -> None:
    from brokerbridge.sim.faults import PERMISSION_NAMES
    from brokerbridge.sim.kraken.account import Permission

    assert set(PERMISSION_NAMES) == {p.value for p in Permission}
