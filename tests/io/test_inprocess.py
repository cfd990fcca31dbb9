"""The in-process network (brokerbridge.io.inprocess) looks to a connector exactly as a socket does.

Each WebSocket/HTTP scenario runs twice against the same server — over loopback TCP (uvicorn,
websockets, httpx: real time) and in memory — and both runs must see the same frames and the same
errors, word for word. Then what lies below ASGI on the Primary simulator (pings against its idle
close) and the request timeout, in memory on a FakeClock.
"""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import AsyncExitStack
from decimal import Decimal
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from brokerbridge.core.clock import FakeClock, SystemClock
from brokerbridge.core.errors import BrokerBridgeError, TransportError
from brokerbridge.core.events import OrderUpdate, Side
from brokerbridge.core.orders import OrderRequest
from brokerbridge.io.inprocess import InProcessNetwork
from brokerbridge.io.transports import Transports
from brokerbridge.sim.faults import FaultSwitches
from brokerbridge.sim.primary import PrimarySimulator
from brokerbridge.sim.server import SimServer
from tests.io.primary_rig import GGAL, primary_rig

pytestmark = pytest.mark.timeout(60)


class AppServer(SimServer[str]):
    """Any Starlette app served by the simulators' machinery: on a port, and reachable in memory."""

    venue = "app"

    def __init__(self, app: Starlette) -> None:
        super().__init__("127.0.0.1", 0, clock=SystemClock(), faults=FaultSwitches(), tick_s=3600.0)
        self._given = app

    def build_app(self) -> Starlette:
        return self._given

    def make_endpoints(self, base: str) -> str:
        return base

    def step(self) -> None:
        pass


def scenario_app(seen: list[str]) -> Starlette:
    """Server behaviours a connector must tell apart; what the app itself observes goes to `seen`."""

    async def talk_then_close(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("hello")
        await ws.send_bytes("bytes é".encode())
        text = await ws.receive_text()
        await ws.send_text(f"got {text}")
        await ws.close(code=4000, reason="bye")

    async def vanish(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("last words")

    async def close_before_accept(ws: WebSocket) -> None:
        await ws.close()

    async def raise_before_accept(ws: WebSocket) -> None:
        raise RuntimeError("the app broke (expected by the test)")

    async def deny(ws: WebSocket) -> None:
        status = int(ws.path_params["status"])
        await ws.send_denial_response(JSONResponse({"error": "no"}, status_code=status))

    async def outlive_the_client(ws: WebSocket) -> None:
        await ws.accept()
        seen.append(f"header {ws.headers.get('x-auth-token')}")
        try:
            await ws.receive_text()
        except WebSocketDisconnect as exc:
            seen.append(f"client left with code {exc.code}")
        try:
            await ws.send_text("anyone?")
        except WebSocketDisconnect:
            seen.append("send after the client left: WebSocketDisconnect")

    async def ok(request: Request) -> Response:
        return JSONResponse(
            {"path": request.url.path, "query": request.url.query, "body": (await request.body()).decode()}
        )

    async def broken(request: Request) -> Response:
        raise RuntimeError("the handler broke (expected by the test)")

    return Starlette(
        routes=[
            WebSocketRoute("/talk", talk_then_close),
            WebSocketRoute("/vanish", vanish),
            WebSocketRoute("/close-first", close_before_accept),
            WebSocketRoute("/raise", raise_before_accept),
            WebSocketRoute("/deny/{status}", deny),
            WebSocketRoute("/outlive", outlive_the_client),
            Route("/ok", ok, methods=["GET", "POST"]),
            Route("/broken", broken),
        ]
    )


def outcome(exc: BaseException) -> str:
    assert isinstance(exc, BrokerBridgeError), exc
    return f"{type(exc).__name__}: {exc.message}"


async def run_scenarios(transports: Transports, server: AppServer, seen: list[str]) -> list[str]:
    """Everything a client can observe of the scenarios, in order."""
    base = f"ws://{server.address}"
    out: list[str] = []
    async with transports.ws_connect(f"{base}/talk") as conn:
        out += [await conn.recv_text(), await conn.recv_text()]
        await conn.send_text("ping")
        out.append(await conn.recv_text())
        for attempt in (conn.recv_text(), conn.send_text("too late")):
            try:
                await attempt
            except TransportError as exc:
                out.append(outcome(exc))
    async with transports.ws_connect(f"{base}/vanish") as conn:
        out.append(await conn.recv_text())
        with pytest.raises(TransportError) as dropped:
            await conn.recv_text()
        out.append(outcome(dropped.value))
    for path in ("/close-first", "/raise", "/deny/401", "/deny/403", "/deny/503"):
        with pytest.raises(BrokerBridgeError) as refused:
            async with transports.ws_connect(f"{base}{path}"):
                pass
        out.append(outcome(refused.value))
    async with transports.ws_connect(f"{base}/outlive", headers={"X-Auth-Token": "t0k"}):
        await until(lambda: bool(seen))
    await until(lambda: len(seen) == 3)
    out += seen
    port = free_port()  # nobody listens there
    with pytest.raises(TransportError) as refused:
        async with transports.ws_connect(f"ws://127.0.0.1:{port}/v2"):
            pass
    out.append(outcome(refused.value).replace(str(port), "<port>"))

    http = transports.http(timeout=5.0)
    try:
        answer = await http.request("POST", f"http://{server.address}/ok?a=1&b=%20x", content="body")
        out.append(f"{answer.status} {answer.headers['content-type']} {json.loads(answer.body)}")
        answer = await http.request("GET", f"http://{server.address}/broken")
        out.append(f"{answer.status} {answer.body!r}")
        with pytest.raises(TransportError) as unreachable:
            await http.request("GET", f"http://127.0.0.1:{port}/x")
        out.append(outcome(unreachable.value).replace(str(port), "<port>"))
    finally:
        await http.aclose()
    return out


async def until(predicate, *, turns: int = 500) -> None:
    """Wait for what the server does after the client acted: a few loop turns in memory, a few
    milliseconds for loopback bytes to cross."""
    for _ in range(turns):
        if predicate():
            return
        await asyncio.sleep(0.002)
    raise AssertionError("the server never got there")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_a_connector_sees_the_same_frames_and_errors_in_memory_as_over_a_socket(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen_socket: list[str] = []
    seen_memory: list[str] = []
    async with AppServer(scenario_app(seen_socket)) as socket_server:
        over_socket = await run_scenarios(Transports(), socket_server, seen_socket)
    async with (
        AppServer(scenario_app(seen_memory)) as memory_server,
        InProcessNetwork(memory_server, clock=SystemClock()) as network,
    ):
        in_memory = await run_scenarios(network.transports, memory_server, seen_memory)
    in_memory = [line.replace(memory_server.address, socket_server.address) for line in in_memory]
    assert in_memory == over_socket
    # What the scenarios are (so that equal lists cannot mean "both saw nothing").
    address = socket_server.address
    assert over_socket[:4] == [
        "hello",
        "bytes é",
        "got ping",
        "TransportError: WebSocket closed by peer (code 4000: bye)",
    ]
    assert over_socket[4] == "TransportError: WebSocket closed while sending (code 4000: bye)"
    assert over_socket[6] == "TransportError: WebSocket closed by peer (no close frame: connection dropped)"
    assert [line.split(" HTTP ")[-1] for line in over_socket[7:12]] == ["403", "500", "401", "403", "503"]
    assert over_socket[7].startswith(
        f"SessionInvalid: ws://{address}/close-first refused the WebSocket upgrade"
    )
    assert over_socket[12:15] == [
        "header t0k",
        "client left with code 1000",
        "send after the client left: WebSocketDisconnect",
    ]
    assert over_socket[15].startswith(
        "TransportError: cannot connect to ws://127.0.0.1:<port>/v2: [Errno 111] Connect call failed"
    )
    assert over_socket[16].startswith(
        "200 application/json {'path': '/ok', 'query': 'a=1&b=%20x', 'body': 'body'}"
    )
    assert over_socket[17] == "500 b'Internal Server Error'"
    assert over_socket[18].startswith(  # refused before a byte was written: NotSent (a TransportError)
        "NotSent: GET http://127.0.0.1:<port>/x not sent: ConnectError: All connection attempts failed"
    )
    # The two broken handlers are logged as errors in memory too (uvicorn logs them on its own).
    network_errors = [r for r in caplog.records if r.name == "brokerbridge.io.inprocess"]
    assert [r.levelno for r in network_errors] == [logging.ERROR, logging.ERROR]


class CountingClock(FakeClock):
    """A FakeClock that counts the sleeps it is asked for (each is a wake-up to pay for)."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeps = 0

    async def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        await super().sleep(seconds)


async def test_pings_on_the_fake_clock_keep_a_primary_socket_open_past_its_idle_close() -> None:
    clock = CountingClock()
    async with AsyncExitStack() as stack:
        sim = await stack.enter_async_context(PrimarySimulator(port=0, seed=2, clock=clock, tick_s=60.0))
        network = await stack.enter_async_context(InProcessNetwork(sim, clock=clock))
        assert sim.faults.idle_close_s == 60.0
        token = await login(network, sim)
        ws_url = sim.endpoints.ws
        pinging = await stack.enter_async_context(
            network.connect(ws_url, headers={"X-Auth-Token": token}, ping_interval=30.0)
        )
        silent = await stack.enter_async_context(
            network.connect(ws_url, headers={"X-Auth-Token": token}, ping_interval=0)
        )
        await clock.advance(59.0)
        assert len(sim.sessions) == 2
        await clock.advance(1.5)  # the silent one has sent nothing for 60 s
        with pytest.raises(TransportError, match=r"closed by peer \(code 1000: Idle timeout\)"):
            await silent.recv_text()
        before = clock.sleeps
        for _ in range(20):  # ten minutes
            await clock.advance(30.0)
        assert len(sim.sessions) == 1
        # 20 pings, the idle close waking when each deadline comes (not every simulated second), a
        # market step or so: a 20-hour test pays for hundreds of wake-ups, not tens of thousands.
        assert clock.sleeps - before <= 60
        await pinging.send_text('{"type":"os"}')  # still open: the socket answers, nothing is refused


async def test_an_unanswered_request_times_out_on_the_fake_clock_and_the_venue_still_acts(
    tmp_path: Path,
) -> None:
    # The simulator holds each answer 5 s (its clock) before it books the order; we wait 1 s.
    # Accounts not held: no order reports on the socket, so the order goes over REST
    # (newSingleOrder), whose request timeout is the one under test.
    async with primary_rig(tmp_path, request_timeout=1.0, hold_accounts=False) as r:
        await r.call(r.primary.catalog())  # logged in, the order's rules loaded: its request is next
        assert r.psim is not None
        account = r.psim.exchange.account
        booked = len(account.orders)
        await r.primary_faults(latency_ms=5000)
        sent_at = r.clock.monotonic()
        request = OrderRequest(
            venue="primary",
            symbol=GGAL,
            side=Side.BUY,
            qty=Decimal(1),
            price=Decimal(100),
            client_order_id="slow-1",
        )
        ack = await r.place(request)
        assert (ack.status, ack.order_id, ack.via) == ("unknown", None, None)
        assert ack.reason is not None and "no answer" in ack.reason
        assert 1.0 <= r.clock.monotonic() - sent_at <= 1.0 + 0.25  # request_timeout, fake seconds
        (unknown,) = r.bridge.open_orders("primary")
        assert (unknown.status, unknown.order_id) == ("unknown", "slow-1")
        assert len(account.orders) == booked  # not yet: the venue is still holding it
        await r.run_for(4.5, step=0.25)
        assert len(account.orders) == booked + 1  # the client left; the venue carried it out anyway
        await r.primary_faults(latency_ms=0)
        executions = r.collect_primary("executions")
        await r.until(
            lambda: any(u.status == "new" for u in executions.of(OrderUpdate)), what="order reported"
        )


async def login(network: InProcessNetwork, sim: PrimarySimulator) -> str:
    http = network.http_client(timeout=10.0)
    try:
        ep = sim.endpoints
        answer = await http.request(
            "POST", ep.rest + "auth/getToken", headers={"X-Username": ep.user, "X-Password": ep.password}
        )
    finally:
        await http.aclose()
    assert answer.status == 200
    return answer.headers["X-Auth-Token"]
