"""The `/ws` socket (server/wire.py, server/coalesce.py, server/hub.py): many frames per write,
client frames of every legal shape, handshakes refused with a typed body, market data a slow client
fell too far behind on replaced by a `gap` — with real `websockets` clients on loopback."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import websockets

from brokerbridge.core.events import Side, Ticker, Trade
from brokerbridge.server.ws import WsSettings
from tests.server.conftest import LIMIT, Stack, connect, make_stack
from tests.server.observe import eventually, metric
from tests.server.test_policies import connect_slow_reader, pause, resume, subscribe


def _ticker(i: int) -> Ticker:
    return Ticker(
        venue="kraken", ts=float(i), symbol="BTC/USD", bid=Decimal(f"{i}.5"),
        bid_qty=None, ask=None, ask_qty=None, last=None,
    )  # fmt: skip


async def test_a_burst_reaches_a_client_whole_and_in_order_in_a_few_writes(stack: Stack) -> None:
    async with asyncio.timeout(LIMIT):
        client = await connect(stack.server)
        await subscribe(client, "t", venue="kraken", channel="ticker", symbol="BTC/USD")
        coalescer = stack.server.state.gate.coalescer
        before = coalescer.flushes
        burst = 50  # below conflate_after: every one is delivered
        for i in range(burst):
            stack.bridge._on_event(_ticker(i))
        bids = []
        seqs = []
        while len(bids) < burst:
            message = await client.until(lambda m: m["type"] == "event" and m["event"]["kind"] == "ticker")
            if message["event"]["bid"].endswith(".5") and message["event"]["ts"] < burst:
                bids.append(message["event"]["bid"])
                seqs.append(message["seq"])
        assert bids == [f"{i}.5" for i in range(burst)]
        assert seqs == list(range(seqs[0], seqs[0] + burst))  # consecutive: nothing conflated
        # Fifty messages, written together: the whole burst was queued before the first flush.
        assert coalescer.flushes - before <= 3
        await client.close()


async def test_fragmented_binary_and_invalid_frames(stack: Stack) -> None:
    async with asyncio.timeout(LIMIT):
        client = await connect(stack.server)
        # A text message in three fragments is one request.
        await client.ws.send(iter(['{"op": "ping", ', '"id": ', '"frag"}']))
        assert (await client.until(lambda m: m["type"] == "pong"))["id"] == "frag"
        # A binary message holding JSON is read like text.
        await client.ws.send(json.dumps({"op": "ping", "id": "bin"}).encode())
        assert (await client.until(lambda m: m["type"] == "pong"))["id"] == "bin"
        # A text frame that is not UTF-8 breaks the protocol: close 1007, and the server stays up.
        await client.ws.send(b'{"op": "ping", "id": "\xff"}', text=True)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await client.ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
        again = await connect(stack.server)
        await again.send({"op": "ping", "id": "alive"})
        assert (await again.until(lambda m: m["type"] == "pong"))["id"] == "alive"
        await again.close()


async def test_a_websocket_handshake_elsewhere_is_refused_with_a_typed_404(stack: Stack) -> None:
    async with asyncio.timeout(LIMIT):
        url = stack.server.ws_url.replace("/ws", "/nope")
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(url)
        response = refused.value.response
        assert response.status_code == 404
        error = json.loads(response.body)["error"]
        assert error["code"] == "not_found" and "/ws" in error["remedy"]
        # Plain HTTP is still uvicorn's and FastAPI's.
        async with httpx.AsyncClient() as http:
            assert (await http.get(stack.server.http_url + "/api/health")).status_code == 200


async def test_trades_a_slow_client_fell_too_far_behind_on_become_a_gap_and_the_rest_arrive(
    tmp_path: Path,
) -> None:
    ws = WsSettings(heartbeat_interval=5, client_queue_size=20)
    async with make_stack(tmp_path, ws=ws) as stack, asyncio.timeout(LIMIT * 2):
        slow = await connect_slow_reader(stack.server, key=None)
        await subscribe(slow, "x", venue="kraken", channel="trades", symbol="BTC/USD")
        (connection,) = stack.server.state.clients.clients()
        pause(slow)
        flood = 0

        def trade(i: int) -> Trade:
            return Trade(
                venue="kraken", ts=1000.0 + i, symbol="BTC/USD", side=Side.BUY,
                price=Decimal("1"), qty=Decimal("1"), trade_id=f"F{i}",
            )  # fmt: skip

        def flooded() -> bool:
            nonlocal flood
            for _ in range(200):  # until the socket's buffers are full and nothing more is written
                stack.bridge._on_event(trade(flood))
                flood += 1
            return not connection.wire.writable

        await eventually(flooded, every=0.01)
        for _ in range(100):  # more than the stream keeps (client_queue_size, 20) for a reader behind
            stack.bridge._on_event(trade(flood))
            flood += 1
        resume(slow)
        await eventually(lambda: connection.wire.writable)
        stack.bridge._on_event(trade(flood))  # one more, after the gap
        last = flood
        seen: list[int] = []
        gaps = []
        while True:
            message = await slow.until(lambda m: m["type"] == "event" and m["id"] == "x")
            event = message["event"]
            if event["kind"] == "gap":
                gaps.append(event)
                continue
            if event["kind"] == "trade" and event["trade_id"].startswith("F"):
                seen.append(int(event["trade_id"][1:]))
                if seen[-1] == last:
                    break
        dropped = sorted(set(range(last + 1)) - set(seen))
        assert dropped, "the flood should not all have fitted"
        assert gaps and all(gap["reason"].startswith("client too slow:") for gap in gaps)
        for i in dropped:  # every trade the client did not get lies in a window a gap named
            assert any(gap["start"] <= 1000.0 + i <= gap["end"] for gap in gaps), i
        # The simulator's own trades share the stream: the counts cover them too.
        assert sum(int(gap["reason"].split(": ")[1].split()[0]) for gap in gaps) >= len(dropped)
        assert seen == sorted(seen)  # what did arrive arrived in order
        await slow.close()


async def test_a_client_joining_a_refused_stream_in_its_grace_period_is_told_at_once(tmp_path: Path) -> None:
    # REST failing keeps Kraken's symbol list from loading: the venue itself refuses the symbol.
    faults = {"rest_http_errors": -1}
    async with make_stack(tmp_path, grace_s=30.0, kraken_faults=faults) as stack, asyncio.timeout(LIMIT):
        first = await connect(stack.server)
        assert (await subscribe(first, "s", venue="kraken", channel="ticker", symbol="NOPE/USD"))[
            "type"
        ] == "ack"
        refused = await first.until(lambda m: m["type"] == "error" and m["id"] == "s")
        assert refused["code"] == "unknown_symbol"
        # The first client's stream ended; the upstream lingers (grace period) with the venue's answer.
        await eventually(lambda: len(stack.server.state.gate.hubs) == 0)
        late = await connect(stack.server)
        assert (await subscribe(late, "s2", venue="kraken", channel="ticker", symbol="NOPE/USD"))[
            "type"
        ] == "ack"
        again = await late.until(lambda m: m["type"] == "error" and m["id"] == "s2")
        assert again["code"] == "unknown_symbol" and "NOPE/USD" in again["message"]
        await eventually(lambda: len(stack.server.state.gate.hubs) == 0)  # and its stream ended too
        await first.close()
        await late.close()


async def test_a_client_that_answers_no_ping_is_closed_and_a_listener_stays(tmp_path: Path) -> None:
    # A paused client reads nothing, so its WebSocket stack cannot answer the server's pings: to the
    # server it is what a half-open connection (a peer gone without a FIN) looks like.
    ws = WsSettings(heartbeat_interval=0.1, client_timeout=0.5, close_timeout=0.2)
    async with make_stack(tmp_path, ws=ws) as stack, asyncio.timeout(LIMIT):
        listener = await connect(stack.server, ping_interval=None)  # sends nothing but pongs
        silent = await connect_slow_reader(stack.server, key=None)
        await subscribe(silent, "t", venue="kraken", channel="ticker", symbol="BTC/USD")
        clients = stack.server.state.clients
        assert len(clients.clients()) == 2
        pause(silent)
        await eventually(lambda: len(clients.clients()) == 1)
        (kept,) = clients.clients()
        assert kept.principal.name == "bot"  # the listener's key: it is the one still connected
        assert metric(stack.server, "brokerbridge_ws_silent_client_disconnects_total") == 1
        # Its stream went with it: the ticker hub had no other member, so it is gone.
        await eventually(lambda: len(stack.server.state.gate.hubs) == 0)
        # Several timeouts later the listener is still served.
        await asyncio.sleep(1.2)
        await listener.send({"op": "ping", "id": "still"})
        assert (await listener.until(lambda m: m["type"] == "pong"))["id"] == "still"
        await listener.close()
