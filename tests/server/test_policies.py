"""Auth and scopes, per-client limits, queue policies for slow clients, the upstream grace period."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import websockets

from brokerbridge.core.book import OrderBook
from brokerbridge.core.events import Channel, Level, OrderUpdate, StreamState, Subscription, Ticker
from brokerbridge.server import BridgeServer
from brokerbridge.server.ws import WsSettings
from tests.io.rig import btc_usd
from tests.server.conftest import ACCOUNT_KEY, LIMIT, MARKET_KEY, Client, Stack, connect, is_event, make_stack
from tests.server.observe import eventually, metric

TICKER = Subscription(venue="kraken", channel=Channel.TICKER, symbol="BTC/USD")
ACCOUNT_CHANNELS = ("balances", "executions", "positions")


async def subscribe(client: Client, sub_id: str, **fields: object) -> dict:
    await client.send({"op": "subscribe", "id": sub_id, **fields})
    return await client.until(lambda m: m["type"] in ("ack", "error") and m.get("id") == sub_id)


async def test_market_data_is_open_on_loopback_but_account_channels_need_the_scope(stack: Stack) -> None:
    async with asyncio.timeout(LIMIT):
        for key in (None, MARKET_KEY):
            client = await connect(stack.server, key=key)
            ok = await subscribe(client, "t", venue="kraken", channel="ticker", symbol="BTC/USD")
            assert ok["type"] == "ack"
            for channel in ACCOUNT_CHANNELS:
                refused = await subscribe(client, channel, venue="kraken", channel=channel)
                assert (refused["type"], refused["code"]) == ("error", "not_authorized")
                assert "account" in refused["message"]
            await client.send({"op": "ping", "id": "still-open"})
            assert (await client.until(lambda m: m["type"] == "pong"))["id"] == "still-open"
            await client.close()


async def test_auth_message_grants_the_key_scopes_and_bad_keys_are_refused(stack: Stack) -> None:
    async with asyncio.timeout(LIMIT):
        client = await connect(stack.server, key=None)
        await client.send({"op": "auth", "id": "a0", "key": "wrong-key-0123456789"})
        bad = await client.until(lambda m: m.get("id") == "a0")
        assert (bad["type"], bad["code"]) == ("error", "not_authorized")
        assert "wrong-key" not in str(bad)
        await client.send({"op": "auth", "id": "a1", "key": ACCOUNT_KEY})
        ack = await client.until(lambda m: m.get("id") == "a1")
        assert (ack["type"], ack["op"]) == ("ack", "auth") and ACCOUNT_KEY not in str(ack)
        assert (await subscribe(client, "b", venue="kraken", channel="balances"))["type"] == "ack"
        await client.until(is_event("balance_snapshot"))
        await client.close()
        with pytest.raises(websockets.InvalidStatus) as invalid:
            await websockets.connect(stack.server.ws_url + "?key=not-a-key-0123456789")
        assert invalid.value.response.status_code == 401
        assert b"not-a-key" not in invalid.value.response.body
        via_query = await websockets.connect(stack.server.ws_url + f"?key={ACCOUNT_KEY}")
        await via_query.close()


async def test_a_foreign_origin_is_refused_and_same_origin_accepted(stack: Stack) -> None:
    async with asyncio.timeout(LIMIT):
        with pytest.raises(websockets.InvalidStatus) as invalid:
            await websockets.connect(stack.server.ws_url, origin="https://evil.example")  # type: ignore[arg-type]
        assert invalid.value.response.status_code == 403
        assert b"Origin" in invalid.value.response.body
        same = await websockets.connect(stack.server.ws_url, origin=stack.server.http_url)  # type: ignore[arg-type]
        await same.close()


async def test_rest_account_endpoints_need_the_account_scope(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.server.http_url, timeout=LIMIT) as http:
        for path in ("/api/balances/kraken", "/api/orders/kraken", "/api/fills/kraken"):
            anonymous = await http.get(path)
            assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "not_authorized"
            market = await http.get(path, headers={"Authorization": f"Bearer {MARKET_KEY}"})
            assert market.status_code == 403 and MARKET_KEY not in market.text
            bad = await http.get(path, params={"key": "nope-nope-nope-nope"})
            assert bad.status_code == 401
            assert (await http.get(path, params={"key": ACCOUNT_KEY})).status_code == 200
        assert (await http.get("/api/venues")).status_code == 200  # market data: open on loopback


async def test_market_data_needs_a_key_when_not_open(tmp_path: Path) -> None:
    async with make_stack(tmp_path, open_market_data=False) as stack, asyncio.timeout(LIMIT):
        client = await connect(stack.server, key=None)
        refused = await subscribe(client, "t", venue="kraken", channel="ticker", symbol="BTC/USD")
        assert refused["code"] == "not_authorized"
        await client.close()
        async with httpx.AsyncClient(base_url=stack.server.http_url, timeout=LIMIT) as http:
            assert (await http.get("/api/venues")).status_code == 401
            assert (await http.get("/api/venues", params={"key": MARKET_KEY})).status_code == 200


async def test_limits_answer_with_typed_errors_and_refusals(tmp_path: Path) -> None:
    ws = WsSettings(
        heartbeat_interval=5,
        messages_per_second=0.01,
        message_burst=5,
        max_subscriptions=2,
        max_connections_per_key=2,
    )
    async with make_stack(tmp_path, ws=ws) as stack, asyncio.timeout(LIMIT):
        client = await connect(stack.server)
        for i in range(8):
            await client.send({"op": "ping", "id": i})
        answers = [await client.until(lambda m: m["type"] in ("pong", "error")) for _ in range(8)]
        assert [a["type"] for a in answers] == ["pong"] * 5 + ["error"] * 3
        assert {a["code"] for a in answers[5:]} == {"rate_limited"} and answers[7]["id"] == 7
        await client.close()

    ws = WsSettings(heartbeat_interval=5, max_subscriptions=2, max_connections_per_key=2)
    async with make_stack(tmp_path, ws=ws) as stack, asyncio.timeout(LIMIT):
        client = await connect(stack.server)
        for n, symbol in enumerate(("BTC/USD", "ETH/USD")):
            assert (await subscribe(client, f"s{n}", venue="kraken", channel="ticker", symbol=symbol))[
                "type"
            ] == "ack"
        third = await subscribe(client, "s2", venue="kraken", channel="trades", symbol="BTC/USD")
        assert third["code"] == "invalid_request" and "at most 2 subscriptions" in third["message"]
        second = await connect(stack.server)
        with pytest.raises(websockets.InvalidStatus) as refused:
            await connect(stack.server)
        assert refused.value.response.status_code == 429
        assert b"too many connections for key 'bot'" in refused.value.response.body
        await second.close()
        await client.close()


async def test_a_client_that_stops_reading_gets_conflated_tickers_in_bounded_memory(tmp_path: Path) -> None:
    ws = WsSettings(heartbeat_interval=5, client_queue_size=20)
    async with make_stack(tmp_path, ws=ws) as stack, asyncio.timeout(LIMIT):
        client = await connect(stack.server, max_queue=1)
        await subscribe(client, "t", venue="kraken", channel="ticker", symbol="BTC/USD")
        await client.until(is_event("ticker"))
        # The client stops reading; a flood of tickers (a stand-in for a busy venue) arrives at once.
        flood = 5000
        for i in range(flood):
            stack.bridge._on_event(
                Ticker(
                    venue="kraken",
                    ts=0.0,
                    symbol="BTC/USD",
                    bid=Decimal(f"{i}.5"),
                    bid_qty=None,
                    ask=None,
                    ask_qty=None,
                    last=None,
                )
            )
        (connection,) = stack.server.state.clients.clients()
        seqs = []
        while True:
            message = await client.until(lambda m: m["type"] == "event" and m["id"] == "t")
            seqs.append(message["seq"])
            if message["event"].get("bid") == f"{flood - 1}.5":
                break
        assert metric(stack.server, CONFLATED, kind="ticker") > flood // 2  # replaced, not queued
        assert connection.queue_depth <= ws.client_queue_size + 1  # bounded: what the stream keeps
        # seq only grows, counts every event — delivered or conflated away — and so jumps where some
        # were skipped.
        assert seqs == sorted(set(seqs)) and len(seqs) < flood // 2
        assert seqs[-1] > flood and max(b - a for a, b in itertools.pairwise(seqs)) > 1
        await client.close()


async def test_an_execution_flood_to_a_client_that_cannot_keep_up_ends_in_close_with_reason(
    tmp_path: Path,
) -> None:
    ws = WsSettings(heartbeat_interval=5, client_queue_size=20)
    async with make_stack(tmp_path, ws=ws) as stack, asyncio.timeout(LIMIT):
        client = await connect(stack.server, max_queue=1)
        assert (await subscribe(client, "x", venue="kraken", channel="executions"))["type"] == "ack"
        for i in range(2000):  # never dropped: more than the queue holds means disconnect
            stack.bridge._on_event(
                OrderUpdate(venue="kraken", ts=0.0, order_id=f"FLOOD-{i}", exec_type="new", status="new")
            )
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await client.ws.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1008 and "too slow" in closed.value.rcvd.reason


async def test_last_subscriber_leaving_keeps_the_upstream_for_the_grace_period(tmp_path: Path) -> None:
    async with make_stack(tmp_path, grace_s=0.5) as stack, asyncio.timeout(LIMIT):
        session = stack.bridge.connectors["kraken"].public_session
        client = await connect(stack.server)
        await subscribe(client, "t", venue="kraken", channel="ticker", symbol="BTC/USD")
        await client.until(is_event("ticker"))
        await client.send({"op": "unsubscribe", "id": "t"})
        await client.until(lambda m: m["type"] == "ack" and m["op"] == "unsubscribe")
        assert session.subscriptions == (TICKER,) and stack.bridge.upstream_closing() == [TICKER]
        # A quick re-subscribe reuses the open upstream: current status at once, no new upstream.
        await subscribe(client, "t2", venue="kraken", channel="ticker", symbol="BTC/USD")
        status = await client.until(lambda m: m["type"] == "event" and m["id"] == "t2")
        assert (status["seq"], status["event"]["kind"], status["event"]["state"]) == (1, "status", "live")
        assert stack.bridge.upstream_closing() == [] and session.subscriptions == (TICKER,)
        await client.send({"op": "unsubscribe", "id": "t2"})
        await client.until(lambda m: m["type"] == "ack" and m["id"] == "t2")
        closing = stack.bridge.fanout.grace_timer(TICKER)
        assert closing is not None
        await asyncio.wait({closing})  # ends after grace_s on the bridge clock
        assert session.subscriptions == () and stack.bridge.upstream_closing() == []
        await client.close()


async def connect_slow_reader(server: BridgeServer, key: str | None = ACCOUNT_KEY) -> Client:
    """A real client with small kernel buffers at both ends of its connection (Linux autotunes the
    server's send buffer to megabytes on loopback): once its transport is paused, the server's
    writes back up within about a hundred kilobytes."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
    client = await connect(server, key=key, sock=sock)
    _shrink_server_send_buffer(sock.getsockname())
    return client


SMALL_BUFFER = 4096


def _shrink_server_send_buffer(client_address: tuple[str, int]) -> None:
    """Find the server's end of the connection among this process's sockets (the server runs in it)."""
    for name in os.listdir("/proc/self/fd"):
        try:
            sock = socket.socket(fileno=os.dup(int(name)))
        except OSError:
            continue  # not a socket
        with sock:
            try:
                if sock.type == socket.SOCK_STREAM and sock.getpeername() == client_address:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
                    return
            except OSError:
                continue  # not connected
    raise AssertionError(f"no server socket connected to {client_address}")


def pause(client: Client) -> None:
    client.ws.transport.pause_reading()


def resume(client: Client) -> None:
    client.ws.transport.resume_reading()


KRAKEN_SYMBOLS = ["BTC/USD", "ETH/USD", "SOL/USD", "XRP/USD", "ETH/BTC"]
CONFLATED = "brokerbridge_ws_conflated_total"
FAST_TICK_S = 0.002  # the Kraken simulator's market steps 500 times a second (default 100)


@pytest.mark.slow  # long: hypothesis examples or real-time waits; the whole suite runs it
async def test_a_real_client_that_pauses_gets_conflated_tickers_and_the_current_book(tmp_path: Path) -> None:
    ws = WsSettings(heartbeat_interval=5, client_queue_size=20)
    async with make_stack(tmp_path, ws=ws) as stack, asyncio.timeout(LIMIT * 2):
        client = await connect_slow_reader(stack.server, key=None)
        await subscribe(client, "t", venue="kraken", channel="ticker", symbols=KRAKEN_SYMBOLS)
        await subscribe(client, "b", venue="kraken", channel="book", symbol="BTC/USD", depth=10)
        book = OrderBook(10)
        seqs: dict[str, list[int]] = {"t": [], "b": []}

        def read(message: dict) -> None:
            if message["type"] != "event":
                return
            seqs[message["id"]].append(message["seq"])
            event = message["event"]
            if event["kind"] not in ("book_snapshot", "book_update"):
                return
            levels = [[Level(Decimal(p), Decimal(q)) for p, q in event[side]] for side in ("bids", "asks")]
            if event["kind"] == "book_snapshot":
                book.replace(*levels)
            else:
                book.apply(*levels)

        async with asyncio.timeout(LIMIT):
            while not (book.bids_levels() and len(seqs["t"]) >= len(KRAKEN_SYMBOLS)):
                read(await client.next())
        (connection,) = stack.server.state.clients.clients()
        before = {name: len(numbers) for name, numbers in seqs.items()}

        stack.kraken_sim.tick_s = FAST_TICK_S
        pause(client)  # the socket stops being read while the simulated market runs on, fast
        deepest = 0

        def backed_up() -> bool:  # every stream ran past what the client read, and past conflate_after
            nonlocal deepest
            deepest = max(deepest, connection.queue_depth)
            members = list(connection._members)
            return not connection.wire.writable and all(
                m.hub.count - m.cursor > ws.client_queue_size + 5 for m in members
            )

        await eventually(backed_up, every=0.005)
        # Bounded: each market stream keeps at most client_queue_size events for a reader behind.
        assert deepest <= (len(KRAKEN_SYMBOLS) + 1) * ws.client_queue_size + 5
        # Freeze the market (the venue's maintenance status), so "the server's current book" holds still.
        stack.kraken_sim.faults.apply({"system_status": "maintenance"})
        connector = stack.bridge.connectors["kraken"]
        sub = stack.bridge.subscription("kraken", "book", "BTC/USD", depth=10)
        await eventually(lambda: connector.status_of(sub).state is StreamState.STALE)
        resume(client)
        kinds_after = []
        async with asyncio.timeout(LIMIT):
            while True:
                message = await client.next()
                read(message)
                if message["type"] == "event" and message["id"] == "b":
                    kinds_after.append(message["event"]["kind"])
                if is_event("status", state="stale")(message) and message["id"] == "b":
                    break
        current = connector.book_snapshot(sub)
        assert current is not None
        assert (book.bids_levels(), book.asks_levels()) == (current.bids, current.asks)
        assert "book_snapshot" in kinds_after  # updates that could not be merged became a whole book
        assert all(metric(stack.server, CONFLATED, kind=kind) >= 10 for kind in ("ticker", "book"))
        for name, numbers in seqs.items():
            assert numbers == sorted(set(numbers)), name  # seq only grows …
            jumps = [
                b - a for a, b in zip(numbers[before[name] - 1 :], numbers[before[name] :], strict=False)
            ]
            assert max(jumps) > 1, name  # … and jumps over what was conflated away
        await client.close()


async def test_an_execution_overflow_closes_that_client_with_1008_and_spares_the_others(
    tmp_path: Path,
) -> None:
    ws = WsSettings(heartbeat_interval=5, client_queue_size=10)
    async with make_stack(tmp_path, ws=ws) as stack, asyncio.timeout(LIMIT * 2):
        slow = await connect_slow_reader(stack.server)
        assert (await subscribe(slow, "x", venue="kraken", channel="executions"))["type"] == "ack"
        await subscribe(slow, "b", venue="kraken", channel="book", symbols=KRAKEN_SYMBOLS, depth=100)
        reader = await connect(stack.server)
        assert (await subscribe(reader, "x", venue="kraken", channel="executions"))["type"] == "ack"
        await reader.until(is_event("status", state="live"))
        connections = stack.server.state.clients.clients()
        stack.kraken_sim.tick_s = FAST_TICK_S
        pause(slow)
        # Market data fills the slow client's pipe first (nothing more can be written to it) …
        await eventually(lambda: any(not c.wire.writable for c in connections))
        (stuck,) = [c for c in connections if not c.wire.writable]
        # … then orders placed and canceled through the Bridge bring executions it cannot take.
        order_ids = []
        # Six: 6 × (add +1, cancel of a young order +8) = 54 stays under Kraken's rate counter
        # threshold (60), so no request waits on it; 18 order updates still overflow a queue of 10.
        for _ in range(6):
            placed = await stack.bridge.place(btc_usd("0.001", "1000"))
            assert placed.status == "accepted" and placed.order_id is not None
            order_ids.append(placed.order_id)
            await stack.bridge.cancel("kraken", placed.order_id)
        await eventually(lambda: stuck.close_reason is not None)
        resume(slow)  # the close frame waits behind the unread data
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await slow.ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        assert closed.value.rcvd.reason.startswith("client too slow: more than 10 undelivered messages")
        # The other client saw every order's whole life and is still being served.
        canceled: set[str] = set()
        while canceled != set(order_ids):
            update = await reader.until(is_event("order_update", status="canceled"))
            canceled.add(update["event"]["order_id"])
        await reader.send({"op": "ping", "id": "alive"})
        assert (await reader.until(lambda m: m["type"] == "pong"))["id"] == "alive"
        assert stack.server.state.clients.stats()[0] == 1
        assert metric(stack.server, "brokerbridge_ws_slow_client_disconnects_total") == 1
        await reader.close()
