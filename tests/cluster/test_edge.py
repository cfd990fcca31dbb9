"""What an edge says of a venue it does not hold, as a single process says it (docs/cluster.md
"What the holder says of the venue"): a symbol the venue does not list is refused with the same
`UnknownSymbol` (Python, /ws, /api), and a venue whose holder reaches a simulator is `simulated`.

A holder node and an edge node on a real redis-server, against both simulators on loopback; the
single process compared with is a plain `Bridge` on the same simulators."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import redis

from brokerbridge.bridge import Bridge
from brokerbridge.client import BridgeClient
from brokerbridge.cluster.node import ClusterNode
from brokerbridge.core.config import ClusterConfig, ServerConfig
from brokerbridge.core.errors import ProtocolError, UnknownSymbol
from brokerbridge.core.events import AnyEvent, StreamState, StreamStatus
from brokerbridge.io.cluster.connector import ClusterConnector
from brokerbridge.io.cluster.link import open_redis
from brokerbridge.io.cluster.nodes import read_cluster
from brokerbridge.io.cluster.venue import listing_digest
from brokerbridge.server import BridgeServer, ServerSettings
from brokerbridge.server.ws import WsSettings
from tests.cluster.test_node import eventually, node_config, simulated_venues
from tests.server.conftest import ACCOUNT_KEY, GGAL, KEYS, LIMIT, Client, connect

UNLISTED = {"kraken": "NOPE/USD", "primary": "MERV - XMEV - NOPE - 24hs"}
LISTED = {"kraken": "BTC/USD", "primary": GGAL}


@contextlib.asynccontextmanager
async def served(bridge: Bridge) -> AsyncIterator[BridgeServer]:
    settings = ServerSettings(config=ServerConfig(keys=KEYS), ws=WsSettings(heartbeat_interval=0.2))
    async with BridgeServer(bridge, host="127.0.0.1", port=0, settings=settings) as server:
        yield server


async def refusal(bridge: Bridge, venue: str, symbol: str) -> UnknownSymbol:
    """What `Bridge.subscribe` ends with for `symbol` (it must end with `UnknownSymbol`)."""
    with pytest.raises(UnknownSymbol) as refused:
        async with asyncio.timeout(LIMIT):
            async for _ in bridge.subscribe(venue, "ticker", symbol):
                pass
    return refused.value


async def ws_refusal(client: Client, venue: str, symbol: str) -> dict[str, Any]:
    """The /ws error answering a subscribe to `symbol` (at once, or after its ack)."""
    request_id = f"{venue}-{symbol}"
    await client.send(
        {"op": "subscribe", "id": request_id, "venue": venue, "channel": "ticker", "symbol": symbol}
    )
    return await client.until(lambda m: m["type"] == "error" and m["id"] == request_id)


def edge_connector(node: ClusterNode, venue: str) -> ClusterConnector:
    connector = node.bridge.connectors[venue]
    assert isinstance(connector, ClusterConnector)
    return connector


async def test_an_edge_refuses_an_unlisted_symbol_and_says_simulated_as_one_process_does(
    redis_url: str, tmp_path: Path
) -> None:
    async with simulated_venues(redis_url, tmp_path) as venues, contextlib.AsyncExitStack() as stack:
        cfg = venues.config
        await stack.enter_async_context(ClusterNode(node_config(cfg, "a")))
        edge = await stack.enter_async_context(ClusterNode(node_config(cfg, "e", "edge")))
        await eventually(
            lambda: all(edge_connector(edge, v).symbol_listed(s) for v, s in LISTED.items()),
            what="both venues' symbols from the holder",
        )
        # The single process: the same simulators, no cluster, its lists loaded.
        single = await stack.enter_async_context(
            Bridge(dataclasses.replace(cfg, cluster=ClusterConfig(), simulated=frozenset(cfg.venues)))
        )
        await single.connectors["kraken"].listed_symbols()
        await single.connectors["primary"].listed_symbols()

        edge_server = await stack.enter_async_context(served(edge.bridge))
        single_server = await stack.enter_async_context(served(single))
        edge_ws, single_ws = await connect(edge_server), await connect(single_server)
        headers = {"Authorization": f"Bearer {ACCOUNT_KEY}"}
        async with httpx.AsyncClient(headers=headers, timeout=LIMIT) as http:
            for venue, symbol in UNLISTED.items():
                # Python: the same class, words and remedy.
                mine, theirs = await refusal(edge.bridge, venue, symbol), await refusal(single, venue, symbol)
                assert (mine.message, mine.remedy) == (theirs.message, theirs.remedy)
                assert repr(symbol) in mine.message
                # /ws: the same error frame.
                mine_ws, theirs_ws = (
                    await ws_refusal(edge_ws, venue, symbol),
                    await ws_refusal(single_ws, venue, symbol),
                )
                assert mine_ws == theirs_ws and mine_ws["code"] == "unknown_symbol"
                # /api: the same 404.
                path = f"/api/ticker/{venue}"
                mine_rest = await http.get(edge_server.http_url + path, params={"symbol": symbol})
                theirs_rest = await http.get(single_server.http_url + path, params={"symbol": symbol})
                assert mine_rest.status_code == theirs_rest.status_code == 404
                assert mine_rest.json() == theirs_rest.json()
                # BridgeClient (over /ws): the same class and words.
                async with BridgeClient(edge_server.http_url, key=ACCOUNT_KEY) as remote:
                    stream = cast(AsyncIterator[AnyEvent], remote.subscribe(venue, "ticker", symbol))
                    with pytest.raises(UnknownSymbol) as remote_refused:
                        async with asyncio.timeout(LIMIT), aclosing(stream):  # type: ignore[type-var]
                            async for _ in stream:
                                pass
                    assert remote_refused.value.message == theirs.message

            # The holder reaches the simulators: the edge says so wherever one process does.
            await eventually(lambda: edge.bridge.simulated == {"kraken", "primary"}, what="simulated venues")
            rows = (await http.get(edge_server.http_url + "/api/venues")).json()["venues"]
            assert {row["venue"]: row["simulated"] for row in rows} == {"kraken": True, "primary": True}
            health = (await http.get(edge_server.http_url + "/api/health")).json()
            assert all(v["simulated"] and not v["credentials"] for v in health["venues"].values()), health
        # `status --cluster` (read from Redis): the same, with the symbols the holder listed.
        client = open_redis(redis_url)
        try:
            view = await read_cluster(client, edge.keys, ["kraken", "primary"])
        finally:
            await client.aclose()
        for lease in view.leases:
            assert lease.simulated and lease.symbols, lease
        await edge_ws.close()
        await single_ws.close()


async def test_before_any_holder_a_symbol_is_accepted_unchecked_then_refused(
    redis_url: str, tmp_path: Path
) -> None:
    """No holder has ever published the venue's symbols: the edge accepts a symbol unchecked (as
    one process does before its list loads), its status says so, and once a holder publishes the
    list the stream of a symbol it lacks ends with `UnknownSymbol` — the listed one goes live."""
    async with simulated_venues(redis_url, tmp_path) as venues, contextlib.AsyncExitStack() as stack:
        cfg = venues.config
        edge = await stack.enter_async_context(ClusterNode(node_config(cfg, "e", "edge")))
        assert edge_connector(edge, "kraken").symbol_listed("BTC/USD") is None
        assert edge.bridge.simulated == frozenset()  # nobody has said so yet
        server = await stack.enter_async_context(served(edge.bridge))
        client = await connect(server)
        await client.send(
            {"op": "subscribe", "id": "bad", "venue": "kraken", "channel": "ticker", "symbol": "NOPE/USD"}
        )
        ack = await client.until(lambda m: m["id"] == "bad")
        assert ack["type"] == "ack"

        seen: dict[str, list[AnyEvent]] = {"NOPE/USD": [], "BTC/USD": []}
        ended: dict[str, BaseException] = {}

        async def pump(symbol: str) -> None:
            try:
                async for event in edge.bridge.subscribe("kraken", "ticker", symbol):
                    seen[symbol].append(event)
            except UnknownSymbol as exc:
                ended[symbol] = exc

        tasks = [asyncio.get_running_loop().create_task(pump(s)) for s in seen]
        try:
            await eventually(lambda: bool(seen["NOPE/USD"]), what="the unchecked stream's status")
            first = seen["NOPE/USD"][0]
            assert isinstance(first, StreamStatus) and "symbol not checked" in first.reason

            await stack.enter_async_context(ClusterNode(node_config(cfg, "a")))  # the first holder
            await eventually(lambda: "NOPE/USD" in ended, what="the unlisted stream refused")
            assert ended["NOPE/USD"].message == "kraken does not list 'NOPE/USD'"
            refused = await client.until(lambda m: m["type"] == "error" and m["id"] == "bad")
            assert refused["code"] == "unknown_symbol" and "'NOPE/USD'" in refused["message"]
            states = [e.state for e in seen["NOPE/USD"] if isinstance(e, StreamStatus)]
            assert StreamState.LIVE not in states and states[-1] is StreamState.STALE, states
            await eventually(
                lambda: any(
                    isinstance(e, StreamStatus) and e.state is StreamState.LIVE for e in seen["BTC/USD"]
                ),
                what="the listed stream live",
            )
            assert "BTC/USD" not in ended
            await eventually(lambda: edge.bridge.simulated == {"kraken", "primary"}, what="simulated venues")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await client.close()


async def test_a_symbol_list_that_does_not_read_leaves_the_edge_running(
    redis_url: str, tmp_path: Path
) -> None:
    """A list written by another version does not read: the edge says so once, keeps what it had
    (nothing here) and learns the next list that reads; the simulator flag beside it is read."""
    async with simulated_venues(redis_url, tmp_path) as venues, contextlib.AsyncExitStack() as stack:
        edge = await stack.enter_async_context(ClusterNode(node_config(venues.config, "e", "edge")))
        keys, kraken = edge.keys, edge_connector(edge, "kraken")
        with redis.Redis.from_url(redis_url) as r:
            r.hset(keys.venue_info("kraken"), mapping={"listed": "x", "simulated": "1"})
            r.set(keys.symbols("kraken"), b"not a list")
        # The lease watch met it (the flag beside the list is read first) and runs on.
        await eventually(lambda: edge.bridge.simulated == {"kraken"}, what="the simulator flag")
        assert kraken.symbol_listed("BTC/USD") is None
        with pytest.raises(ProtocolError):
            await kraken.read_venue()
        with redis.Redis.from_url(redis_url) as r:
            r.hset(keys.venue_info("kraken"), "listed", listing_digest(["BTC/USD"]))
            r.set(keys.symbols("kraken"), b'["BTC/USD"]')
        await eventually(lambda: kraken.symbol_listed("BTC/USD") is True, what="the readable list")
        assert kraken.symbol_listed("NOPE/USD") is False
