"""Node heartbeats and `read_cluster` against a real redis-server: nodes (alive, dead then pruned),
leases and epochs, event streams with each node's lag, order queues."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec
import pytest
import redis.asyncio

from brokerbridge.core.clock import FakeClock
from brokerbridge.core.errors import ClusterUnavailable
from brokerbridge.io.cluster.keys import ORDER_GROUP, ClusterKeys
from brokerbridge.io.cluster.lease import Lease
from brokerbridge.io.cluster.link import open_redis
from brokerbridge.io.cluster.nodes import NodeBeat, NodeHeartbeat, read_cluster
from tests.redis_server import free_port

KEYS = ClusterKeys()
VENUES = ("kraken", "primary")


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    r = open_redis(redis_url)
    yield r
    await r.aclose()


def heartbeat(
    client: redis.asyncio.Redis,
    node_id: str,
    clock: FakeClock,
    *,
    ttl: float = 10.0,
    holds: dict[str, int] | None = None,
    reads: dict[str, str] | None = None,
) -> NodeHeartbeat:
    return NodeHeartbeat(
        client,
        KEYS,
        node_id,
        role="holder" if holds is not None else "edge",
        url=f"http://{node_id}:8765",
        ttl=ttl,
        holds=lambda: holds or {},
        reads=(lambda: reads) if reads is not None else None,
        clock=clock,
    )


async def test_a_heartbeat_announces_the_node_until_it_stops(client: redis.asyncio.Redis) -> None:
    clock = FakeClock()
    beat = heartbeat(client, "n1", clock, holds={"kraken": 4})
    task = asyncio.create_task(beat.run())
    try:
        for _ in range(200):  # bounded: the first beat is real I/O
            if beat.beats:
                break
            await asyncio.sleep(0.005)
        stored = msgspec.json.decode(await client.get(KEYS.node("n1")), type=NodeBeat)
        assert (stored.role, stored.url, stored.holds) == ("holder", "http://n1:8765", {"kraken": 4})
        assert 9_000 < await client.pttl(KEYS.node("n1")) <= 10_000
        assert await client.smembers(KEYS.nodes()) == {b"n1"}
        view = await read_cluster(client, KEYS, VENUES)
        (node,) = view.nodes
        assert node.alive and node.role == "holder" and node.holds == {"kraken": 4}
        assert node.age is not None and 0 <= node.age < 1
        await clock.advance(10 / 3)  # the next beat renews the key
        for _ in range(200):
            if beat.beats == 2:
                break
            await asyncio.sleep(0.005)
        assert beat.beats == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    # A clean stop leaves at once.
    assert not await client.exists(KEYS.node("n1")) and not await client.smembers(KEYS.nodes())


async def test_a_dead_node_is_shown_dead_once_then_pruned(client: redis.asyncio.Redis) -> None:
    clock = FakeClock()
    await heartbeat(client, "alive", clock).beat()
    await heartbeat(client, "dies", clock, ttl=0.1).beat()  # never beats again: a SIGKILL
    for _ in range(500):  # Redis expires it on its real clock: a bounded poll
        if not await client.exists(KEYS.node("dies")):
            break
        await asyncio.sleep(0.01)
    view = await read_cluster(client, KEYS, VENUES)
    assert [(n.id, n.alive) for n in view.nodes] == [("alive", True), ("dies", False)]
    assert view.nodes[1].role is None and view.nodes[1].age is None
    again = await read_cluster(client, KEYS, VENUES)
    assert [n.id for n in again.nodes] == ["alive"]


async def test_leases_show_holder_epoch_and_time_left(client: redis.asyncio.Redis) -> None:
    clock = FakeClock()
    first = Lease(client, KEYS, "kraken", "n1", ttl=3.0, clock=clock)
    await first.acquire()
    await first.release()
    second = Lease(client, KEYS, "kraken", "n2", ttl=3.0, clock=clock)
    await second.acquire()
    view = await read_cluster(client, KEYS, VENUES)
    kraken, primary = view.leases
    assert (kraken.venue, kraken.holder, kraken.epoch, kraken.last_epoch) == ("kraken", "n2", 2, 2)
    assert kraken.ttl_left is not None and 2.5 < kraken.ttl_left <= 3.0
    assert (primary.holder, primary.epoch, primary.last_epoch, primary.ttl_left) == (None, None, 0, None)


async def test_streams_show_length_age_and_each_readers_lag(client: redis.asyncio.Redis) -> None:
    stream = KEYS.events("kraken", "ticker:BTC/USD")
    ids = [(await client.xadd(stream, {"e": b"{}"})).decode() for _ in range(5)]
    await client.xadd(KEYS.events("primary", "book:[A]"), {"e": b"{}"})  # glob characters in a topic
    await client.set(KEYS.events("kraken", "not-a-stream"), "x")
    clock = FakeClock()
    await heartbeat(client, "edge1", clock, reads={stream: ids[1]}).beat()
    await heartbeat(client, "edge2", clock, reads={stream: ids[4]}).beat()
    await heartbeat(client, "edge3", clock).beat()  # reads nothing it reports
    view = await read_cluster(client, KEYS, VENUES)
    ticker, book = view.streams
    assert (ticker.venue, ticker.topic, ticker.length) == ("kraken", "ticker:BTC/USD", 5)
    assert ticker.last_id == ids[4]
    assert ticker.age is not None and 0 <= ticker.age < 5
    assert [(lag.node, lag.entries) for lag in ticker.lags] == [("edge1", 3), ("edge2", 0)]
    assert ticker.lags[0].seconds >= 0 and ticker.lags[1].seconds == 0
    assert (book.venue, book.topic, book.length, book.lags) == ("primary", "book:[A]", 1, ())


async def test_order_queues_show_pending_and_unread_requests(client: redis.asyncio.Redis) -> None:
    orders = KEYS.orders("primary")
    for n in range(4):
        await client.xadd(orders, {"r": str(n).encode()})
    view = await read_cluster(client, KEYS, VENUES)
    assert [(q.venue, q.length, q.pending, q.unread, q.consumers) for q in view.orders] == [
        ("primary", 4, 0, 4, 0)
    ]
    await client.xgroup_create(orders, ORDER_GROUP, id="0")
    await client.xreadgroup(ORDER_GROUP, "holder-a", {orders: ">"}, count=3)  # read, not yet answered
    (queue,) = (await read_cluster(client, KEYS, VENUES)).orders
    assert (queue.length, queue.pending, queue.unread, queue.consumers) == (4, 3, 1, 1)


async def test_an_unreachable_redis_is_cluster_unavailable() -> None:
    client = open_redis(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(ClusterUnavailable):
            await read_cluster(client, KEYS, VENUES)
        with pytest.raises(ClusterUnavailable):
            await heartbeat(client, "n", FakeClock()).beat()
    finally:
        await client.aclose()
