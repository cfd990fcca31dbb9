"""Hundreds of real WebSocket clients on loopback, both venues, three kinds of principal.

One test, in phases, because the point is that everything holds at once: 330 clients (anonymous,
a market-scoped key, a market+account key) share a handful of upstream streams, each gets a
snapshot on joining, every private channel is refused without the account scope, flooding clients
are rate limited (and only they), and when each venue's simulator drops every connection every
client's every stream on that venue goes non-live, live again, and data flows again.

Every client has a reader task recording what it receives; the phases wait on conditions over
those records with deadlines — never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import websockets

from brokerbridge.core.events import StreamState
from brokerbridge.server.ws import WsSettings
from tests.server.conftest import ACCOUNT_KEY, MARKET_KEY, Message, Stack, make_stack
from tests.server.observe import eventually

PER_KIND = 110  # clients per principal kind: anonymous, market key, account key → 330
KRAKEN_TICKERS = ("BTC/USD", "ETH/USD", "SOL/USD", "XRP/USD", "ETH/BTC")
KRAKEN_BOOKS = ("BTC/USD", "ETH/USD")
PRIVATE = ("balances", "executions", "positions")  # the account channels (there is no "orders" channel)
FLOODERS = 10
DATA_KINDS = {"ticker", "book_snapshot", "book_update", "balance_snapshot", "balance_update"}
PHASE = 40.0  # seconds: the most any phase may take (the whole test stays far below it when healthy)


@dataclass
class Recorded:
    """One client: what it asked for and everything it received, by request id."""

    kind: str  # anonymous, market, account
    ws: websockets.ClientConnection
    by_id: dict[Any, list[Message]] = field(default_factory=lambda: defaultdict(list))
    streams: dict[str, str] = field(default_factory=dict)  # subscription id → venue
    closed: BaseException | None = None

    async def read(self) -> None:
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                self.by_id[message.get("id")].append(message)
        except websockets.ConnectionClosed as exc:
            self.closed = exc

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    def answer(self, request_id: Any) -> Message | None:
        return next((m for m in self.by_id[request_id] if m["type"] in ("ack", "error", "pong")), None)

    def events(self, sub_id: str, since: int = 0) -> list[dict[str, Any]]:
        return [m["event"] for m in self.by_id[sub_id][since:] if m["type"] == "event"]


def recovered(events: list[dict[str, Any]], *, needs_data: bool) -> bool:
    """A non-live status, then live, then (market data, balances) data again."""
    down = next((i for i, e in enumerate(events) if e["kind"] == "status" and e["state"] != "live"), None)
    if down is None:
        return False
    live = next(
        (i for i, e in enumerate(events[down:], down) if e["kind"] == "status" and e["state"] == "live"),
        None,
    )
    if live is None:
        return False
    return not needs_data or any(e["kind"] in DATA_KINDS for e in events[live:])


@pytest.mark.slow  # long: hypothesis examples or real-time waits; the whole suite runs it
async def test_hundreds_of_clients_on_both_venues(tmp_path: Path) -> None:
    ws = WsSettings(heartbeat_interval=30, max_connections_per_key=PER_KIND)
    async with make_stack(tmp_path, ws=ws) as stack, asyncio.TaskGroup() as readers:
        # A calmer market: the point is many clients, not many messages each (2 shared cores).
        stack.kraken_sim.tick_s = 0.2
        primary_symbols = [i.symbol for i in stack.primary_sim.exchange.catalog.instruments][:6]
        clients = await connect_all(stack, readers)
        try:
            await run_phases(stack, clients, primary_symbols)
        finally:
            await asyncio.gather(*(c.ws.close() for c in clients))


async def connect_all(stack: Stack, readers: asyncio.TaskGroup) -> list[Recorded]:
    keys = {"anonymous": None, "market": MARKET_KEY, "account": ACCOUNT_KEY}

    async def one(kind: str) -> Recorded:
        key = keys[kind]
        headers = {"Authorization": f"Bearer {key}"} if key else None
        ws = await websockets.connect(stack.server.ws_url, additional_headers=headers, max_queue=None)
        client = Recorded(kind, ws)
        readers.create_task(client.read())
        return client

    async with asyncio.timeout(PHASE):
        return list(await asyncio.gather(*(one(kind) for kind in keys for _ in range(PER_KIND))))


async def run_phases(stack: Stack, clients: list[Recorded], primary_symbols: list[str]) -> None:
    # -- subscribe: market data for everyone, account channels for the account key ----------------
    async def subscribe(n: int, client: Recorded) -> None:
        requests = [
            ("kt", {"venue": "kraken", "channel": "ticker", "symbol": KRAKEN_TICKERS[n % 5]}),
            ("kb", {"venue": "kraken", "channel": "book", "symbol": KRAKEN_BOOKS[n % 2], "depth": 10}),
            ("pt", {"venue": "primary", "channel": "ticker", "symbol": primary_symbols[n % 6]}),
        ]
        if client.kind == "account":
            requests += [
                ("kbal", {"venue": "kraken", "channel": "balances"}),
                ("kx", {"venue": "kraken", "channel": "executions"}),
            ]
        for sub_id, fields in requests:
            client.streams[sub_id] = fields["venue"]
            await client.send({"op": "subscribe", "id": sub_id, **fields})
        if client.kind != "account":  # every private channel, both venues: refused for want of scope
            for venue in ("kraken", "primary"):
                for channel in PRIVATE:
                    await client.send(
                        {
                            "op": "subscribe",
                            "id": f"deny-{venue}-{channel}",
                            "venue": venue,
                            "channel": channel,
                        }
                    )

    async with asyncio.timeout(PHASE):
        await asyncio.gather(*(subscribe(n, c) for n, c in enumerate(clients)))
    await eventually(lambda: all(c.answer(s) for c in clients for s in c.streams), within=PHASE)
    for client in clients:
        for sub_id in client.streams:
            answer = client.answer(sub_id)
            assert answer is not None and answer["type"] == "ack", (client.kind, sub_id, answer)

    # -- auth refusals: every private channel without the account scope --------------------------
    unscoped = [c for c in clients if c.kind != "account"]
    denials = [f"deny-{v}-{ch}" for v in ("kraken", "primary") for ch in PRIVATE]
    await eventually(lambda: all(c.answer(d) for c in unscoped for d in denials), within=PHASE)
    for client in unscoped:
        for denial in denials:
            answer = client.answer(denial)
            assert answer is not None and (answer["type"], answer["code"]) == ("error", "not_authorized")
            assert "'account' scope" in answer["message"]

    # -- shared upstreams: one per distinct stream, whatever the number of clients ---------------
    kraken, primary = stack.bridge.connectors["kraken"], stack.bridge.connectors["primary"]
    assert {s.describe() for s in kraken.public_session.subscriptions} == {
        *(f"kraken:ticker:{s}" for s in KRAKEN_TICKERS),
        *(f"kraken:book:{s}:depth=10" for s in KRAKEN_BOOKS),
    }
    assert {s.describe() for s in kraken.private_session.subscriptions} == {
        "kraken:balances",
        "kraken:executions",
    }
    assert {s.describe() for s in primary.session.subscriptions} == {
        *(f"primary:ticker:{s}" for s in primary_symbols),
        "primary:executions",  # the account's order reports: held by the Bridge from start
    }

    # -- snapshot on join: every book subscriber's first book event is a whole book ---------------
    def first_book(client: Recorded) -> str | None:
        return next((e["kind"] for e in client.events("kb") if e["kind"].startswith("book_")), None)

    await eventually(lambda: all(first_book(c) for c in clients), within=PHASE)
    assert {first_book(c) for c in clients} == {"book_snapshot"}
    accounts = [c for c in clients if c.kind == "account"]
    await eventually(
        lambda: all(any(e["kind"] == "balance_snapshot" for e in c.events("kbal")) for c in accounts),
        within=PHASE,
    )

    # -- rate limits: a few clients flood; they get typed refusals, the rest none ----------------
    flooders = clients[:: len(clients) // FLOODERS][:FLOODERS]
    async with asyncio.timeout(PHASE):
        await asyncio.gather(*(c.send({"op": "ping", "id": f"p{i}"}) for c in flooders for i in range(100)))
    await eventually(lambda: all(c.answer(f"p{i}") for c in flooders for i in range(100)), within=PHASE)
    for client in flooders:
        refused = [client.answer(f"p{i}") for i in range(100)]
        limited = [a for a in refused if a is not None and a.get("code") == "rate_limited"]
        assert limited and all(a["type"] == "error" for a in limited)
        assert {a["type"] for a in refused} <= {"error", "pong"}
    assert not any(
        m.get("code") == "rate_limited"
        for c in clients
        if c not in flooders
        for ms in c.by_id.values()
        for m in ms
    )

    # -- recovery: each venue drops every connection; every client's every stream comes back -----
    for venue, sim in (("kraken", stack.kraken_sim), ("primary", stack.primary_sim)):
        marks = {id(c): {s: len(c.by_id[s]) for s in c.streams} for c in clients}
        sim.faults.drop_now()

        def all_recovered(venue: str = venue, marks: dict[int, dict[str, int]] = marks) -> bool:
            return all(
                recovered(c.events(s, marks[id(c)][s]), needs_data=s != "kx")
                for c in clients
                for s, v in c.streams.items()
                if v == venue
            )

        await eventually(all_recovered, within=PHASE, every=0.05)
        # The connections (REST-polled groups have no reconnect count): all came back, all live.
        connections = [h for h in stack.bridge.health()[venue].streams.values() if h.reconnects is not None]
        assert all(h.reconnects >= 1 for h in connections)
        assert all(state is StreamState.LIVE for h in connections for state in h.subscriptions.values())
    assert not [c for c in clients if c.closed is not None]
