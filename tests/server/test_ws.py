"""The /ws protocol end to end: shared upstreams, snapshot on join, typed errors, recovery."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from brokerbridge.core.events import Channel, Subscription
from brokerbridge.server.ws import WsSettings
from tests.server.conftest import (
    LIMIT,
    Client,
    Stack,
    catalogues_loaded,
    connect,
    is_event,
    make_stack,
)
from tests.server.observe import eventually

TICKER = Subscription(venue="kraken", channel=Channel.TICKER, symbol="BTC/USD")


async def subscribe(client: Client, sub_id: str, **fields: object) -> dict:
    await client.send({"op": "subscribe", "id": sub_id, **fields})
    return await client.until(lambda m: m["type"] in ("ack", "error") and m.get("id") == sub_id)


async def test_many_clients_share_one_upstream_ticker_and_all_receive_events(stack: Stack) -> None:
    async with asyncio.timeout(60):
        clients = await asyncio.gather(*(connect(stack.server, key=None) for _ in range(120)))
        acks = await asyncio.gather(
            *(
                subscribe(c, f"t{i}", venue="kraken", channel="ticker", symbol="BTC/USD")
                for i, c in enumerate(clients)
            )
        )
        assert all(a["type"] == "ack" and a["stream"] == "kraken:ticker:BTC/USD" for a in acks)
        firsts = await asyncio.gather(*(c.until(is_event("ticker", symbol="BTC/USD")) for c in clients))
        assert all(m["seq"] >= 1 and isinstance(m["event"]["bid"], str) for m in firsts)  # Decimals as text
        assert stack.bridge.connectors["kraken"].public_session.subscriptions == (TICKER,)
        assert stack.server.state.clients.stats()[0] == 120
        await asyncio.gather(*(c.close() for c in clients))


async def test_event_seq_counts_per_subscription(stack: Stack) -> None:
    async with asyncio.timeout(LIMIT):
        client = await connect(stack.server)
        await subscribe(client, "a", venue="kraken", channel="ticker", symbol="BTC/USD")
        seqs = [(await client.until(lambda m: m["type"] == "event"))["seq"] for _ in range(3)]
        assert seqs == [1, 2, 3]
        await client.close()


async def test_late_joiner_gets_status_and_book_snapshot_at_once(stack: Stack) -> None:
    async with asyncio.timeout(LIMIT):
        first = await connect(stack.server)
        await subscribe(first, "b", venue="kraken", channel="book", symbol="BTC/USD", depth=10)
        await first.until(is_event("book_snapshot"))
        await first.until(is_event("book_update"))
        late = await connect(stack.server)
        ack = await subscribe(late, "b2", venue="kraken", channel="book", symbol="BTC/USD", depth=10)
        assert ack["stream"] == "kraken:book:BTC/USD:depth=10"
        async with asyncio.timeout(2.0):  # replayed from the bridge's state, not waited for upstream
            status = await late.next()
            snapshot = await late.next()
        assert (status["seq"], status["event"]["kind"], status["event"]["state"]) == (1, "status", "live")
        assert (snapshot["seq"], snapshot["event"]["kind"]) == (2, "book_snapshot")
        assert len(snapshot["event"]["bids"]) == 10
        await first.close()
        await late.close()


async def test_mistakes_get_typed_errors_and_the_socket_stays_open(stack: Stack) -> None:
    async with asyncio.timeout(LIMIT):
        client = await connect(stack.server)
        await client.send("{not json")
        error = await client.next()
        assert (error["type"], error["code"], error["id"]) == ("error", "malformed", None)
        await client.send({"op": "launch", "id": 7})
        assert (await client.next())["code"] == "invalid_request"
        await client.send({"op": "subscribe", "id": 8, "channel": "ticker"})  # no venue
        missing = await client.next()
        assert (missing["code"], missing["id"]) == ("invalid_request", 8) and "venue" in missing["message"]
        venue = await subscribe(client, "v", venue="binance", channel="ticker", symbol="BTC/USD")
        assert (venue["type"], venue["code"]) == ("error", "unknown_venue") and "kraken" in venue["remedy"]
        channel = await subscribe(client, "c", venue="kraken", channel="orderbook", symbol="BTC/USD")
        assert (channel["code"], channel["id"]) == ("unknown_channel", "c")
        depth = await subscribe(client, "d", venue="kraken", channel="book", symbol="BTC/USD", depth=7)
        assert depth["code"] == "invalid_request" and "depth" in depth["message"]
        # A symbol the venue does not list: refused at once (the catalogue is loaded), nothing upstream.
        await catalogues_loaded(stack)
        refused = await subscribe(client, "s", venue="kraken", channel="ticker", symbol="NOPE/USD")
        assert (refused["type"], refused["code"]) == ("error", "unknown_symbol")
        assert "'NOPE/USD'" in refused["message"] and "BTC/USD" in refused["remedy"]
        assert all(
            s.symbol != "NOPE/USD" for s in stack.bridge.connectors["kraken"].public_session.subscriptions
        )
        # Still open and serving.
        await client.send({"op": "ping", "id": "p"})
        assert (await client.until(lambda m: m["type"] == "pong"))["id"] == "p"
        ok = await subscribe(client, "ok", venue="kraken", channel="ticker", symbol="BTC/USD")
        assert ok["type"] == "ack"
        await client.until(is_event("ticker"))
        await client.close()


async def test_unsubscribe_releases_the_upstream_and_heartbeats_flow(stack: Stack) -> None:
    async with asyncio.timeout(LIMIT):
        client = await connect(stack.server)
        await subscribe(client, "t", venue="kraken", channel="ticker", symbol="BTC/USD")
        await client.until(is_event("ticker"))
        await client.send({"op": "unsubscribe", "id": "t"})
        ack = await client.until(lambda m: m["type"] == "ack" and m["op"] == "unsubscribe")
        assert ack["id"] == "t"
        assert stack.bridge.connectors["kraken"].public_session.subscriptions == ()
        await client.send({"op": "unsubscribe", "id": "t"})
        assert (await client.until(lambda m: m["type"] == "error"))["code"] == "invalid_request"
        beat = await client.next(heartbeats=True)
        while beat["type"] != "heartbeat":
            beat = await client.next(heartbeats=True)
        assert isinstance(beat["ts"], float)
        await client.close()


async def test_every_client_recovers_after_the_venue_drops(stack: Stack) -> None:
    async with asyncio.timeout(LIMIT * 2):
        clients = await asyncio.gather(*(connect(stack.server) for _ in range(20)))
        for i, c in enumerate(clients):
            await subscribe(c, f"r{i}", venue="kraken", channel="ticker", symbol="BTC/USD")
        await asyncio.gather(*(c.until(is_event("status", state="live")) for c in clients))
        stack.kraken_sim.faults.drop_now()
        await asyncio.gather(*(c.until(is_event("status", state="reconnecting")) for c in clients))
        await asyncio.gather(*(c.until(is_event("status", state="live")) for c in clients))
        await asyncio.gather(*(c.until(is_event("ticker")) for c in clients))
        await asyncio.gather(*(c.close() for c in clients))


def catalog_symbols(stack: Stack) -> list[str]:
    return [inst.symbol for inst in stack.primary_sim.exchange.catalog.instruments]


@pytest.mark.slow  # long: hypothesis examples or real-time waits; the whole suite runs it
async def test_a_batch_subscribe_streams_every_symbol_under_one_id_and_one_seq(stack: Stack) -> None:
    symbols = catalog_symbols(stack)
    unknown = "MERV - XMEV - NOPE - 24hs"
    wanted = [*symbols, unknown]
    async with asyncio.timeout(LIMIT * 2):
        await catalogues_loaded(stack)
        client = await connect(stack.server, key=None)
        ack = await subscribe(client, "acc", venue="primary", channel="ticker", symbols=wanted)
        streams = [f"primary:ticker:{s}" for s in wanted]
        assert (ack["type"], ack["op"], ack["stream"], ack["streams"]) == (
            "ack",
            "subscribe",
            streams[0],
            streams,
        )
        seqs: list[int] = []
        seen: set[str] = set()
        refused = None
        while len(seen) < len(symbols) or refused is None:
            message = await client.next()
            assert message["id"] == "acc"
            if message["type"] == "error":
                refused = message
            elif message["event"]["kind"] == "ticker":
                seen.add(message["event"]["symbol"])
            if message["type"] == "event":
                seqs.append(message["seq"])
        # One upstream stream per symbol, one seq for the whole batch, the unknown symbol refused alone
        # (by the catalogue: it never went upstream).
        assert seen == set(symbols)
        assert seqs == list(range(1, len(seqs) + 1))
        assert refused["code"] == "unknown_symbol" and repr(unknown) in refused["message"]
        session = stack.bridge.connectors["primary"].session
        assert {s.symbol for s in session.subscriptions if s.symbol} == set(symbols)  # and the account's
        after = await client.until(is_event("ticker"))  # the others go on after the refusal
        assert after["seq"] > seqs[-1]
        await client.send({"op": "unsubscribe", "id": "acc"})
        await client.until(lambda m: m["type"] == "ack" and m["op"] == "unsubscribe")
        # The pumps end (and release their upstreams) as they are cancelled.
        await eventually(lambda: not any(s.channel is Channel.TICKER for s in session.subscriptions))
        await client.close()


async def test_batch_subscribe_mistakes_refuse_the_whole_request(tmp_path: Path) -> None:
    ws = WsSettings(heartbeat_interval=5, max_subscriptions=3)
    async with make_stack(tmp_path, ws=ws) as stack, asyncio.timeout(LIMIT):
        client = await connect(stack.server)
        kraken = {"venue": "kraken", "channel": "ticker"}
        both = await subscribe(client, "a", **kraken, symbol="BTC/USD", symbols=["ETH/USD"])
        assert both["code"] == "invalid_request" and "not both" in both["message"]
        empty = await subscribe(client, "b", **kraken, symbols=[])
        assert empty["code"] == "invalid_request" and "empty" in empty["message"]
        twice = await subscribe(client, "c", **kraken, symbols=["BTC/USD", "ETH/USD", "BTC/USD"])
        assert twice["code"] == "invalid_request" and "'BTC/USD'" in twice["message"]
        many = await subscribe(client, "d", **kraken, symbols=["BTC/USD", "ETH/USD", "SOL/USD", "XRP/USD"])
        assert many["code"] == "invalid_request" and "at most 3 subscriptions" in many["message"]
        depth = await subscribe(
            client, "e", venue="kraken", channel="book", symbols=["BTC/USD", "ETH/USD"], depth=7
        )
        assert depth["code"] == "invalid_request" and "'ETH/USD'" in depth["message"]
        assert stack.bridge.connectors["kraken"].public_session.subscriptions == ()  # nothing opened
        # Each symbol counts toward max_subscriptions; unsubscribing the batch frees them all.
        ok = await subscribe(client, "f", **kraken, symbols=["BTC/USD", "ETH/USD"])
        assert ok["type"] == "ack" and len(ok["streams"]) == 2
        assert (await subscribe(client, "g", **kraken, symbol="SOL/USD"))["type"] == "ack"
        full = await subscribe(client, "h", **kraken, symbol="XRP/USD")
        assert full["code"] == "invalid_request" and "3 open" in full["message"]
        await client.send({"op": "unsubscribe", "id": "f"})
        await client.until(lambda m: m["type"] == "ack" and m["id"] == "f")
        again = await subscribe(client, "h2", **kraken, symbols=["XRP/USD", "ETH/BTC"])
        assert again["type"] == "ack"
        await client.close()


async def test_an_unknown_symbol_never_shows_live_before_its_refusal(tmp_path: Path) -> None:
    # REST failing keeps the catalogue from loading: the venue refuses the symbol, after the
    # subscription joined a socket that is live for another stream.
    async with make_stack(tmp_path, kraken_faults={"rest_http_errors": -1}) as stack, asyncio.timeout(LIMIT):
        client = await connect(stack.server)
        await subscribe(client, "good", venue="kraken", channel="ticker", symbol="BTC/USD")
        await client.until(is_event("status", state="live"))
        ack = await subscribe(client, "bad", venue="kraken", channel="ticker", symbol="NOPE/USD")
        assert ack["type"] == "ack"
        refused = await client.until(lambda m: m["type"] == "error" and m["id"] == "bad")
        assert refused["code"] == "unknown_symbol"
        states = [
            m["event"]["state"]
            for m in client.received
            if m["type"] == "event" and m["id"] == "bad" and m["event"]["kind"] == "status"
        ]
        assert "live" not in states, states
        await client.close()


async def test_a_batch_of_unlisted_symbols_is_refused_in_one_error_without_going_upstream(
    stack: Stack,
) -> None:
    async with asyncio.timeout(LIMIT):
        await catalogues_loaded(stack)
        client = await connect(stack.server, key=None)
        bogus = [f"BOGUS{i}/USD" for i in range(1000)]
        refused = await subscribe(client, "b", venue="kraken", channel="ticker", symbols=bogus)
        assert (refused["type"], refused["code"]) == ("error", "unknown_symbol")
        assert "'BOGUS0/USD'" in refused["message"] and "and 995 more" in refused["message"]
        mixed = await subscribe(
            client, "m", venue="kraken", channel="ticker", symbols=["BTC/USD", *bogus[:500]]
        )
        assert mixed["type"] == "ack" and len(mixed["streams"]) == 501
        unlisted = await client.until(lambda m: m["type"] == "error" and m["id"] == "m")
        assert unlisted["code"] == "unknown_symbol" and "'BOGUS49/USD'" in unlisted["message"]
        assert "and 450 more" in unlisted["message"]
        await client.until(is_event("ticker", symbol="BTC/USD"))
        kraken = stack.bridge.connectors["kraken"]
        assert [s.symbol for s in kraken.public_session.subscriptions] == ["BTC/USD"]
        await client.close()


async def test_the_freeze_payload_is_refused_at_once_and_others_keep_streaming(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    # One anonymous message with a 900 kB symbol froze the whole server (it went upstream and into a
    # WARNING); now the decoder refuses it, naming the field, and nothing else reads it.
    caplog.set_level(logging.DEBUG)
    async with asyncio.timeout(LIMIT):
        watcher = await connect(stack.server, key=None)
        await subscribe(watcher, "w", venue="kraken", channel="ticker", symbol="BTC/USD")
        await watcher.until(is_event("ticker"))
        hostile = await connect(stack.server, key=None, max_size=None)
        freeze = {
            "op": "subscribe",
            "id": "f",
            "venue": "kraken",
            "channel": "ticker",
            "symbol": "S" * 900_000,
        }
        start = asyncio.get_running_loop().time()
        await hostile.send(freeze)
        refused = await hostile.until(lambda m: m["type"] in ("ack", "error"))
        took = asyncio.get_running_loop().time() - start
        assert (refused["type"], refused["code"], refused["id"]) == ("error", "invalid_request", "f")
        assert "$.symbol" in refused["message"] and "128" in refused["remedy"]
        assert took < 1.0, took
        for _ in range(2):  # the well-behaved client's stream goes on
            await watcher.until(is_event("ticker"))
        kraken = stack.bridge.connectors["kraken"]
        assert all(len(s.symbol or "") < 200 for s in kraken.public_session.subscriptions)
        await hostile.send({"op": "ping", "id": "after"})
        assert (await hostile.until(lambda m: m["type"] == "pong"))["id"] == "after"
        await hostile.close()
        await watcher.close()
    lines = [record.getMessage() for record in caplog.records]
    assert all(len(line) < 1000 and "\n" not in line for line in lines), max(lines, key=len)[:300]
