"""Interest through a real redis-server: edges' `InterestRegistry` sets (TTL, ctl notes) and the
holder's `InterestFollower` (union over live nodes, reference counted across nodes, a dead node's
interest expiring, refresh requests delivered after the want)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import redis.asyncio

from brokerbridge.core.clock import FakeClock
from brokerbridge.core.events import Channel, Subscription
from brokerbridge.io.cluster.codec import subscription_text
from brokerbridge.io.cluster.interest import InterestFollower, InterestRegistry
from brokerbridge.io.cluster.keys import ClusterKeys
from brokerbridge.io.cluster.link import open_redis
from tests.cluster.waiting import until

KEYS = ClusterKeys()
V = "kraken"
BTC = Subscription(venue=V, channel=Channel.TICKER, symbol="BTC/USD")
ETH = Subscription(venue=V, channel=Channel.BOOK, symbol="ETH/USD", depth=25)
SOL = Subscription(venue=V, channel=Channel.TRADES, symbol="SOL/USD")
TTL = 0.3  # real seconds (Redis's own clock): a dead node's interest is gone this long after


@dataclass
class Holder:
    calls: list[tuple[str, Subscription]] = field(default_factory=list)

    def of(self, kind: str) -> list[Subscription]:
        return [sub for k, sub in self.calls if k == kind]


@dataclass
class Rig:
    redis: redis.asyncio.Redis
    clock: FakeClock
    holder: Holder
    follower: InterestFollower
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    def node(self, node_id: str) -> InterestRegistry:
        registry = InterestRegistry(self.redis, KEYS, V, node_id, ttl=TTL, clock=self.clock)
        self.tasks[node_id] = asyncio.get_running_loop().create_task(registry.run())
        return registry

    def follow(self) -> None:
        self.tasks["holder"] = asyncio.get_running_loop().create_task(self.follower.run())

    async def stop(self, name: str) -> None:
        task = self.tasks.pop(name)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def rig(redis_url: str) -> AsyncIterator[Rig]:
    client = open_redis(redis_url)
    clock = FakeClock()
    holder = Holder()
    follower = InterestFollower(
        client,
        KEYS,
        V,
        on_want=lambda sub: holder.calls.append(("want", sub)),
        on_drop=lambda sub: holder.calls.append(("drop", sub)),
        on_refresh=lambda sub: holder.calls.append(("refresh", sub)),
        interval=1.0,
        clock=clock,
    )
    rig = Rig(client, clock, holder, follower)
    yield rig
    for name in list(rig.tasks):
        await rig.stop(name)
    await client.aclose()


async def test_the_union_is_reference_counted_across_nodes(rig: Rig) -> None:
    rig.follow()
    a, b = rig.node("a"), rig.node("b")
    a.add(BTC)
    b.add(BTC)
    b.add(ETH)
    await until(lambda: rig.follower.counts == {BTC: 2, ETH: 1})
    assert rig.holder.of("want") == [BTC, ETH] or sorted(map(str, rig.holder.of("want"))) == sorted(
        map(str, [BTC, ETH])
    )
    assert rig.holder.of("want").count(BTC) == 1  # wanted once, whoever wants it
    a.remove(BTC)
    await until(lambda: rig.follower.counts == {BTC: 1, ETH: 1})
    assert rig.holder.of("drop") == []  # b still wants it
    b.remove(BTC)
    await until(lambda: rig.holder.of("drop") == [BTC])
    assert rig.follower.counts == {ETH: 1}
    members = await rig.redis.smembers(KEYS.interest(V, "b"))
    assert members == {subscription_text(ETH).encode()}
    assert 0 < await rig.redis.pttl(KEYS.interest(V, "b")) <= TTL * 1000


async def test_a_dead_nodes_interest_expires(rig: Rig) -> None:
    rig.follow()
    a, dead = rig.node("a"), rig.node("dead")
    a.add(BTC)
    dead.add(BTC)
    dead.add(SOL)
    await until(lambda: rig.follower.counts == {BTC: 2, SOL: 1})
    await rig.stop("dead")  # the node dies: nobody keeps its set alive
    # Redis expires the set on its own (real) clock; the follower's periodic union (fake clock)
    # finds it gone. Node a's keep-alive meanwhile holds its set.
    await until(lambda: rig.holder.of("drop") == [SOL], rig.clock, step=0.1)
    assert rig.follower.counts == {BTC: 1}
    assert await rig.redis.exists(KEYS.interest(V, "a")) == 1


async def test_interest_written_before_the_holder_follows_is_wanted_at_its_start(rig: Rig) -> None:
    a = rig.node("a")
    a.add(ETH)
    await until(lambda: rig.redis.exists(KEYS.interest(V, "a")))
    rig.follow()
    await until(lambda: rig.holder.of("want") == [ETH])


async def test_refresh_requests_reach_the_holder_after_the_want(rig: Rig) -> None:
    rig.follow()
    await until(lambda: rig.follower._last_ctl is not None)
    a = rig.node("a")
    a.add(SOL)
    a.request_refresh(SOL)
    a.request_refresh(SOL)  # coalesced
    await until(lambda: ("refresh", SOL) in rig.holder.calls)
    assert rig.holder.calls == [("want", SOL), ("refresh", SOL)]


async def test_a_set_redis_lost_is_written_again_by_the_keep_alive(rig: Rig) -> None:
    a = rig.node("a")
    a.add(BTC)
    key = KEYS.interest(V, "a")
    await until(lambda: rig.redis.exists(key))
    await rig.redis.delete(key)  # as a Redis restarted without its data
    await until(lambda: rig.redis.exists(key), rig.clock, step=TTL / 3)
    assert await rig.redis.smembers(key) == {subscription_text(BTC).encode()}


async def test_a_clean_stop_lets_go_at_once(rig: Rig) -> None:
    rig.follow()
    a = rig.node("a")
    a.add(ETH)
    await until(lambda: rig.holder.of("want") == [ETH])
    await rig.stop("a")
    await a.aclose()
    await until(lambda: rig.holder.of("drop") == [ETH])  # on the note: no TTL, no interval waited
    assert await rig.redis.exists(KEYS.interest(V, "a")) == 0
