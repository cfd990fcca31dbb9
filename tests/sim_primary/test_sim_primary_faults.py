"""Every fault switch, set through the control endpoint (and at construction)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import websockets
from primary_helpers import GGAL, connect, smd, step

from brokerbridge.core.clock import FakeClock
from brokerbridge.sim.faults import PrimaryFaults
from brokerbridge.sim.primary import PrimarySimulator


async def control(
    http: httpx.AsyncClient, sim: PrimarySimulator, changes: dict[str, object]
) -> dict[str, object]:
    response = await http.post(sim.endpoints.control + "/faults", json=changes)
    assert response.status_code == 200, response.text
    return response.json()


async def test_control_endpoint_get_set_reset_and_validation(
    sim: PrimarySimulator, http: httpx.AsyncClient
) -> None:
    state = (await http.get(sim.endpoints.control + "/faults")).json()
    assert state == PrimaryFaults().to_dict()
    assert set(state) == {
        "drop_every_s", "stall", "rest_http_errors", "rest_http_status", "latency_ms",
        "reject_ws_handshake", "idle_close_s", "relogin_invalidates", "block_user", "lose_answers",
        "rest_trickle_s", "rest_headers_only", "option_arbitrage", "freeze_underlying",
    }  # fmt: skip
    assert (await control(http, sim, {"stall": "all", "idle_close_s": 30}))["stall"] == "all"
    bad = await http.post(sim.endpoints.control + "/faults", json={"nope": 1})
    assert bad.status_code == 400
    bad = await http.post(sim.endpoints.control + "/faults", json={"idle_close_s": -1, "stall": None})
    assert bad.status_code == 400 and sim.faults.stall == "all"  # all or nothing
    reset = (await http.post(sim.endpoints.control + "/faults/reset")).json()
    assert reset == PrimaryFaults().to_dict()


async def test_drop_now_closes_every_socket(
    sim: PrimarySimulator, http: httpx.AsyncClient, token: str
) -> None:
    first, second = await connect(sim, token), await connect(sim, token)
    await control(http, sim, {"drop_now": True})
    assert await first.closed_with() == 1001
    assert await second.closed_with() == 1001


async def test_drop_every_n_seconds(
    sim: PrimarySimulator, http: httpx.AsyncClient, clock: FakeClock, token: str
) -> None:
    await control(http, sim, {"drop_every_s": 2})
    ws = await connect(sim, token)
    await step(clock, 2.2)
    assert await ws.closed_with() == 1001
    again = await connect(sim, token)
    await step(clock, 2.2)
    assert await again.closed_with() == 1001


@pytest.mark.parametrize("scope", ["all", "public"])
async def test_stall_keeps_the_socket_open_and_silent(
    sim: PrimarySimulator, http: httpx.AsyncClient, clock: FakeClock, token: str, scope: str
) -> None:
    await control(http, sim, {"stall": scope})
    ws = await connect(sim, token)
    await ws.send(smd(GGAL))
    await step(clock, 3)
    assert await ws.nothing_within(0.3)
    assert ws.conn.state is websockets.State.OPEN
    await control(http, sim, {"stall": None})
    await step(clock, 3)
    assert (await ws.recv())["type"] == "Md"


async def test_invalidate_tokens_401_on_rest_refused_handshake_and_silent_sockets(
    sim: PrimarySimulator, http: httpx.AsyncClient, clock: FakeClock, auth: dict[str, str], token: str
) -> None:
    ws = await connect(sim, token)
    await ws.send(smd(GGAL))
    assert (await ws.recv())["type"] == "Md"
    await control(http, sim, {"invalidate_tokens": True})
    assert (await http.get("rest/segment/all", headers=auth)).status_code == 401
    with pytest.raises(websockets.InvalidStatus):
        await connect(sim, token)
    await step(clock, 5)
    assert await ws.nothing_within(0.3)
    assert ws.conn.state is websockets.State.OPEN


async def test_rest_http_errors_count_down(
    sim: PrimarySimulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await control(http, sim, {"rest_http_errors": 2, "rest_http_status": 502})
    assert (await http.get("rest/segment/all", headers=auth)).status_code == 502
    assert (await http.post("auth/getToken")).status_code == 502
    assert (await http.get("rest/segment/all", headers=auth)).status_code == 200


async def test_reject_ws_handshake_count(sim: PrimarySimulator, http: httpx.AsyncClient, token: str) -> None:
    await control(http, sim, {"reject_ws_handshake": 1})
    with pytest.raises(websockets.InvalidStatus) as refused:
        await connect(sim, token)
    assert refused.value.response.status_code == 503
    ws = await connect(sim, token)
    assert ws.conn.state is websockets.State.OPEN


async def test_latency_delays_rest_and_ws_on_the_simulator_clock(
    sim: PrimarySimulator, http: httpx.AsyncClient, clock: FakeClock, auth: dict[str, str], token: str
) -> None:
    ws = await connect(sim, token)
    await control(http, sim, {"latency_ms": 800})
    call = asyncio.create_task(http.get("rest/segment/all", headers=auth))
    await asyncio.sleep(0.2)
    assert not call.done()
    await ws.send(smd(GGAL))
    assert await ws.nothing_within(0.2)
    await clock.advance(0.8, settle=5)
    assert (await call).status_code == 200
    assert (await ws.recv())["type"] == "Md"


async def test_rest_trickle_sends_the_body_a_byte_every_n_seconds(
    sim: PrimarySimulator, http: httpx.AsyncClient, clock: FakeClock, auth: dict[str, str]
) -> None:
    whole = (await http.get("rest/segment/all", headers=auth)).content
    await control(http, sim, {"rest_trickle_s": 2})
    async with http.stream("GET", "rest/segment/all", headers=auth) as response:
        assert response.status_code == 200 and response.headers["content-length"] == str(len(whole))
        chunks = response.aiter_raw()
        await clock.advance(2, settle=5)
        assert await asyncio.wait_for(anext(chunks), 2) == whole[:1]
        nothing = asyncio.ensure_future(anext(chunks))
        await clock.advance(1.5, settle=5)
        await asyncio.sleep(0.05)
        assert not nothing.done()  # the next byte is due 2 s after the first
        await clock.advance(0.5, settle=5)
        assert await asyncio.wait_for(nothing, 2) == whole[1:2]
    await control(http, sim, {"rest_trickle_s": 0})
    assert (await http.get("rest/segment/all", headers=auth)).content == whole


async def test_rest_headers_only_never_sends_the_body_and_counts_down(
    sim: PrimarySimulator, http: httpx.AsyncClient, clock: FakeClock, auth: dict[str, str]
) -> None:
    await control(http, sim, {"rest_headers_only": 1})
    async with http.stream("GET", "rest/segment/all", headers=auth) as response:
        assert response.status_code == 200 and int(response.headers["content-length"]) > 0
        body = asyncio.ensure_future(response.aread())
        await clock.advance(30, settle=5)
        await asyncio.sleep(0.05)
        assert not body.done()
        body.cancel()
    assert (await http.get("rest/segment/all", headers=auth)).json()["status"] == "OK"
    assert sim.faults.rest_headers_only == 0


async def test_faults_given_at_construction(clock: FakeClock) -> None:
    faults = PrimaryFaults(reject_ws_handshake=-1)
    async with PrimarySimulator(port=0, seed=1, clock=clock, faults=faults, tick_s=1.0) as sim:
        assert sim.faults is faults
        async with httpx.AsyncClient(base_url=sim.endpoints.rest) as http:
            e = sim.endpoints
            response = await http.post(
                "auth/getToken", headers={"X-Username": e.user, "X-Password": e.password}
            )
            with pytest.raises(websockets.InvalidStatus):
                await connect(sim, response.headers["X-Auth-Token"])
