"""getToken / removeToken, the token on REST and on the WebSocket upgrade, re-login silencing."""

from __future__ import annotations

import re

import httpx
import pytest
import websockets
from primary_helpers import GGAL, connect, login, raw_handshake, smd, step

from brokerbridge.core.clock import FakeClock
from brokerbridge.sim.primary import PrimarySimulator


async def test_get_token_answers_200_empty_body_and_a_44_char_base64_token(
    sim: PrimarySimulator, http: httpx.AsyncClient
) -> None:
    e = sim.endpoints
    response = await http.post("auth/getToken", headers={"X-Username": e.user, "X-Password": e.password})
    assert response.status_code == 200
    assert response.content == b""
    assert re.fullmatch(r"[A-Za-z0-9+/]{43}=", response.headers["X-Auth-Token"])


async def test_bad_credentials_are_401_without_a_token(
    sim: PrimarySimulator, http: httpx.AsyncClient
) -> None:
    response = await http.post("auth/getToken", headers={"X-Username": sim.endpoints.user, "X-Password": "x"})
    assert response.status_code == 401
    assert "X-Auth-Token" not in response.headers
    assert response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("token", [None, "", "AAAA", "8LCfQCvFjj7SGRicXT2HaursZ/4cltAhWL9o0tAjD2U="])
async def test_rest_without_a_valid_token_is_401_with_a_json_body(
    http: httpx.AsyncClient, token: str | None
) -> None:
    headers = {"X-Auth-Token": token} if token is not None else {}
    response = await http.get("rest/segment/all", headers=headers)
    assert response.status_code == 401
    assert response.json()["status"] == "ERROR"


async def test_token_expires_after_24_hours(
    sim: PrimarySimulator, http: httpx.AsyncClient, clock: FakeClock, auth: dict[str, str]
) -> None:
    sim.faults.apply({"idle_close_s": 0})
    assert (await http.get("rest/segment/all", headers=auth)).status_code == 200
    await clock.advance(24 * 3600 - 10, settle=0)
    assert (await http.get("rest/segment/all", headers=auth)).status_code == 200
    await clock.advance(11, settle=0)
    assert (await http.get("rest/segment/all", headers=auth)).status_code == 401


async def test_remove_token_ends_the_token(http: httpx.AsyncClient, auth: dict[str, str]) -> None:
    assert (await http.get("auth/removeToken", headers=auth)).status_code == 200
    assert (await http.get("rest/accounts", headers=auth)).status_code == 401


async def test_ws_upgrade_accepts_the_header_without_a_space_as_pyrofex_sends_it(
    sim: PrimarySimulator, token: str
) -> None:
    assert (await raw_handshake(sim, f"X-Auth-Token:{token}")).startswith("HTTP/1.1 101")
    assert (await raw_handshake(sim, f"x-auth-token: {token}")).startswith("HTTP/1.1 101")


async def test_ws_upgrade_with_a_bad_or_missing_token_is_refused_before_101(sim: PrimarySimulator) -> None:
    assert (await raw_handshake(sim, "X-Auth-Token:nope")).startswith("HTTP/1.1 401")
    assert (await raw_handshake(sim, "X-Other: 1")).startswith("HTTP/1.1 401")
    with pytest.raises(websockets.InvalidStatus) as refused:
        await connect(sim, "nope")
    assert refused.value.response.status_code == 401


async def test_plain_get_on_the_root_does_not_crash(http: httpx.AsyncClient) -> None:
    response = await http.get("/")
    assert response.status_code == 200
    assert response.json()["description"] == "Ruta invalida"


async def test_login_again_revokes_the_old_token_and_silences_its_socket(
    sim: PrimarySimulator, http: httpx.AsyncClient, clock: FakeClock, token: str
) -> None:
    ws = await connect(sim, token)
    await ws.send(smd(GGAL))
    assert (await ws.recv())["type"] == "Md"
    new_token = await login(http, sim)
    assert (await http.get("rest/segment/all", headers={"X-Auth-Token": token})).status_code == 401
    assert (await http.get("rest/segment/all", headers={"X-Auth-Token": new_token})).status_code == 200
    await step(clock, 5)
    assert await ws.nothing_within(0.3)  # open but silent
    assert ws.conn.state is websockets.State.OPEN
    fresh = await connect(sim, new_token)
    await fresh.send(smd(GGAL))
    assert (await fresh.recv())["type"] == "Md"


async def test_login_again_keeps_old_tokens_when_switched_off(
    sim: PrimarySimulator, http: httpx.AsyncClient, token: str
) -> None:
    sim.faults.apply({"relogin_invalidates": False})
    await login(http, sim)
    assert (await http.get("rest/segment/all", headers={"X-Auth-Token": token})).status_code == 200
