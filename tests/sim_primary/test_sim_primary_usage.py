"""What the simulator counts of its clients (`GET /_sim/stats`): logins, why tokens ended, tokens and
sockets in use, calls and frames — what proves a bridge holds ONE session and forwards only what it must."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest
import websockets
from primary_helpers import GGAL, connect, login, smd, step

from brokerbridge.core.clock import FakeClock
from brokerbridge.sim.primary import PrimarySimulator

TTL = 600.0


@pytest.fixture
async def short_sim(clock: FakeClock) -> AsyncIterator[PrimarySimulator]:
    async with PrimarySimulator(port=0, seed=7, clock=clock, tick_s=0.25, token_ttl_s=TTL) as simulator:
        simulator.faults.apply({"idle_close_s": 0})  # the clock jumps: no socket closes for silence
        yield simulator


async def stats(sim: PrimarySimulator) -> dict[str, Any]:
    """Read over HTTP, as a harness in another process does."""
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(f"{sim.endpoints.control}/stats")
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


async def test_one_client_one_login_one_token_in_use_one_socket(
    sim: PrimarySimulator, http: httpx.AsyncClient, auth: dict[str, str], token: str
) -> None:
    await http.get("rest/segment/all", headers=auth)
    book = {"marketId": "ROFX", "symbol": GGAL, "entries": "BI"}
    await http.get("rest/marketdata/get", params=book, headers=auth)
    await http.get(f"rest/risk/position/getPositions/{sim.endpoints.account}", headers=auth)
    ws = await connect(sim, token)
    await ws.send(smd(GGAL))
    assert (await ws.recv())["type"] == "Md"
    seen = await stats(sim)
    assert seen["logins"] == 1 and seen["invalidations"] == 0
    assert (seen["tokens_live"], seen["tokens_in_use"], seen["tokens_in_use_max"]) == (1, 1, 1)
    assert (seen["sockets_open"], seen["sockets_open_max"], seen["sockets_opened"]) == (1, 1, 1)
    assert seen["rest_calls"] == {"marketdata/get": 1, "risk/position/getPositions": 1, "segment/all": 1}
    assert seen["ws_requests"] == {"smd": 1}
    assert seen["ws_error_frames"] == 0 and seen["sockets_silenced"] == 0
    assert seen == msgspec_dict(sim)  # the same figures in-process
    await ws.conn.close()


def msgspec_dict(sim: PrimarySimulator) -> dict[str, Any]:
    body: dict[str, Any] = msgspec.to_builtins(sim.exchange.usage_stats())
    return body


async def test_a_second_login_revokes_the_first_token_and_silences_its_socket(
    sim: PrimarySimulator, http: httpx.AsyncClient, token: str
) -> None:
    ws = await connect(sim, token)
    await ws.send(smd(GGAL))
    await ws.recv()
    second = await login(http, sim)
    await http.get("rest/accounts", headers={"X-Auth-Token": second})
    seen = await stats(sim)
    assert seen["logins"] == 2
    assert seen["revoked_by_login"] == 1 and seen["invalidations"] == 1
    assert seen["sockets_silenced"] == 1  # the socket on the first token went silent
    assert (seen["tokens_live"], seen["tokens_in_use"], seen["tokens_in_use_max"]) == (1, 1, 1)
    await ws.conn.close()


async def test_two_tokens_in_use_at_once_when_a_login_revokes_nothing(
    sim: PrimarySimulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    sim.faults.apply({"relogin_invalidates": False})
    await http.get("rest/accounts", headers=auth)
    second = await login(http, sim)
    await http.get("rest/accounts", headers={"X-Auth-Token": second})
    seen = await stats(sim)
    assert seen["logins"] == 2 and seen["invalidations"] == 0
    assert (seen["tokens_in_use"], seen["tokens_in_use_max"]) == (2, 2)


async def test_a_token_past_its_ttl_counts_as_expired_and_its_calls_as_refused(
    short_sim: PrimarySimulator, clock: FakeClock
) -> None:
    async with httpx.AsyncClient(base_url=short_sim.endpoints.rest, timeout=10) as http:
        token = await login(http, short_sim)
        auth = {"X-Auth-Token": token}
        assert (await http.get("rest/accounts", headers=auth)).status_code == 200
        await clock.advance(TTL - 1, settle=0)
        assert (await stats(short_sim))["expired"] == 0
        await clock.advance(2, settle=0)
        assert (await http.get("rest/accounts", headers=auth)).status_code == 401
        with pytest.raises(websockets.InvalidStatus):
            await connect(short_sim, token)
    seen = await stats(short_sim)
    assert seen["token_ttl_s"] == TTL
    assert seen["expired"] == 1 and seen["invalidations"] == 1
    assert seen["expired_refusals"] == 2  # the call and the handshake
    assert seen["refused_calls"] == 1 and seen["refused_handshakes"] == 1
    assert (seen["tokens_live"], seen["tokens_in_use"], seen["tokens_in_use_max"]) == (0, 0, 1)


async def test_a_renewal_before_the_ttl_is_a_login_and_one_revocation_not_an_expiry(
    short_sim: PrimarySimulator, clock: FakeClock
) -> None:
    async with httpx.AsyncClient(base_url=short_sim.endpoints.rest, timeout=10) as http:
        first = await login(http, short_sim)
        await http.get("rest/accounts", headers={"X-Auth-Token": first})
        await clock.advance(TTL * 0.8, settle=0)
        second = await login(http, short_sim)
        await http.get("rest/accounts", headers={"X-Auth-Token": second})
        await clock.advance(TTL * 0.5, settle=0)  # the first would have expired by now
    seen = await stats(short_sim)
    assert seen["logins"] == 2
    assert (seen["revoked_by_login"], seen["expired"], seen["expired_refusals"]) == (1, 0, 0)
    assert seen["tokens_in_use_max"] == 1


async def test_remove_token_and_the_invalidate_fault_are_counted_apart(
    sim: PrimarySimulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    sim.faults.apply({"relogin_invalidates": False})
    assert (await http.get("auth/removeToken", headers=auth)).status_code == 200
    await login(http, sim)
    await login(http, sim)
    sim.faults.apply({"invalidate_tokens": True})
    seen = await stats(sim)
    assert (seen["removed"], seen["invalidated"], seen["revoked_by_login"]) == (1, 2, 0)
    assert seen["invalidations"] == 3 and seen["tokens_live"] == 0


async def test_sockets_open_at_once_and_refused_handshakes(sim: PrimarySimulator, token: str) -> None:
    first = await connect(sim, token)
    second = await connect(sim, token)
    with pytest.raises(websockets.InvalidStatus):
        await connect(sim, "not-a-token")
    await second.conn.close()
    await second.conn.wait_closed()
    await first.send(smd(GGAL))  # a round trip: the server has seen the close by now
    await first.recv()
    seen = await stats(sim)
    assert (seen["sockets_open"], seen["sockets_open_max"], seen["sockets_opened"]) == (1, 2, 2)
    assert seen["refused_handshakes"] == 1
    await first.conn.close()


async def test_client_frames_by_type_error_frames_and_unknown_routes(
    sim: PrimarySimulator, http: httpx.AsyncClient, auth: dict[str, str], token: str
) -> None:
    ws = await connect(sim, token)
    await ws.send(smd("NOPE - 24hs"))
    assert (await ws.recv())["status"] == "ERROR"
    await ws.send("{not json")
    assert (await ws.recv())["status"] == "ERROR"
    await ws.send({"type": "xx"})
    assert (await ws.recv())["status"] == "ERROR"
    await ws.send({"type": "os", "account": {"id": sim.endpoints.account}})
    await ws.send("ping")  # what browsers send: not a request
    await ws.send(smd(GGAL))
    assert (await ws.recv())["type"] == "Md"
    answer = await http.get("rest/no/such/route", headers=auth)
    assert answer.json()["description"] == "Ruta invalida"
    seen = await stats(sim)
    assert seen["ws_requests"] == {"invalid": 2, "os": 1, "smd": 2}
    assert seen["ws_error_frames"] == 3
    assert seen["rest_calls"] == {"unknown": 1}
    await ws.conn.close()


async def test_live_sessions_count_tokens_with_a_socket_or_a_recent_call(
    sim: PrimarySimulator, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    """Two logins both active: two live sessions when a login revokes nothing; then a closed socket
    and 2 s of silence on the simulator's clock: none."""
    sim.faults.apply({"relogin_invalidates": False})
    first = await login(http, sim)
    ws = await connect(sim, first)  # live by its socket
    await step(clock, 2.5)  # its handshake long past: the socket alone keeps it live
    second = await login(http, sim)
    assert (await stats(sim))["live_sessions"] == 1  # a login alone is not a live session
    await http.get("rest/accounts", headers={"X-Auth-Token": second})  # live by its call
    seen = await stats(sim)
    assert (seen["logins"], seen["live_sessions"], seen["max_live_sessions"]) == (2, 2, 2)
    await ws.conn.close()
    await ws.conn.wait_closed()
    for _ in range(100):  # the server sees the close on its own task: a bounded poll
        seen = await stats(sim)
        if seen["sockets_open"] == 0:
            break
    assert seen["live_sessions"] == 1  # the second, its call less than 2 s ago
    await step(clock, 1.9)
    assert (await stats(sim))["live_sessions"] == 1
    await step(clock, 0.1)
    seen = await stats(sim)
    assert (seen["live_sessions"], seen["max_live_sessions"]) == (0, 2)


async def test_a_login_that_revokes_the_first_keeps_one_session_live(
    sim: PrimarySimulator, http: httpx.AsyncClient
) -> None:
    first = await login(http, sim)
    ws = await connect(sim, first)
    await ws.send(smd(GGAL))
    await ws.recv()
    second = await login(http, sim)  # revokes the first: its socket stays open, silenced
    await http.get("rest/accounts", headers={"X-Auth-Token": second})
    seen = await stats(sim)
    assert seen["sockets_open"] == 1 and seen["logins"] == 2
    assert (seen["live_sessions"], seen["max_live_sessions"]) == (1, 1)
    await ws.conn.close()
