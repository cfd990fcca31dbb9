"""A holder whose lease lapsed refuses an order before anything of it reaches the venue: the order is
`not_sent` (not UNKNOWN), its client order id is free, and the retry with that id is placed once by
the next holder — also when the next holder took over first and restored the order's row as
UNKNOWN (the cluster chaos's SIGSTOP: the stopped holder resumes after its successor started).

Real redis-server, real holder Bridges on the Kraken simulator (in memory, one FakeClock), the
holders' transports `guarded` by a switch standing in for `lease.valid()`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import redis
import redis.asyncio

from brokerbridge.core.clock import FakeClock
from brokerbridge.core.config import Config
from brokerbridge.core.errors import NotSent
from brokerbridge.core.events import OrderUpdate
from brokerbridge.io.cluster.journal import RedisJournalStore
from brokerbridge.io.cluster.keys import ORDER_GROUP
from brokerbridge.sim.kraken import KrakenSimulator
from tests.cluster.test_orders import KEYS, drive, edge_redis, hold, relay_of, serving, until
from tests.io.rig import Rig, kraken_config, rig_on
from tests.io.test_order_service import limit, sim_orders

pytestmark = pytest.mark.timeout(60)
__all__ = ["edge_redis"]  # the fixture, used by name

LAPSED = "this node's lease of kraken (epoch 1) is not valid now"


@contextlib.asynccontextmanager
async def guarded_holder(
    sim: KrakenSimulator, clock: FakeClock, url: str, node: str, epoch: int, why: list[str]
) -> AsyncIterator[tuple[Rig, RedisJournalStore]]:
    """A holder Bridge as `<node> <epoch>` (journal in Redis) whose transports refuse while `why`
    names a reason (its lease lapsed locally), once its account is ready."""
    token = f"{node} {epoch}"
    hold(url, "kraken", token)
    with contextlib.closing(RedisJournalStore(url, KEYS, "kraken", token=token)) as store:
        async with rig_on(
            sim,
            clock,
            Config(kraken=kraken_config(sim)),
            journal_store=store,
            barred=lambda: why[0] if why else None,
        ) as rig:
            await until(clock, lambda: rig.bridge.readiness()["kraken"].ready, "kraken ready")
            yield rig, store


def row_state(store: RedisJournalStore, rig: Rig, cid: str) -> str | None:
    row = store.order("kraken", rig.bridge.state["kraken"].scope, cid)
    return None if row is None else row.state


async def test_a_refused_send_is_not_sent_at_the_edge_and_the_retry_is_placed_once_by_the_next_holder(
    redis_url: str, edge_redis: redis.asyncio.Redis
) -> None:
    clock = FakeClock()
    why: list[str] = []
    async with (
        KrakenSimulator(port=0, seed=31, clock=clock, tick_s=0.01) as sim,
        relay_of(edge_redis, "kraken", clock) as relay,
    ):
        async with (
            guarded_holder(sim, clock, redis_url, "node-a", 1, why) as (holder_a, store_a),
            serving(edge_redis, "kraken", "node-a", "node-a 1", holder_a.bridge, clock),
        ):
            why.append(LAPSED)  # node-a's lease lapsed locally (Redis still names it, for now)
            with pytest.raises(NotSent) as refused:
                await drive(clock, relay.place(limit("ns-c1")))
            error = refused.value  # the same class at the edge, with what, why and what to do
            assert error.code == "not_sent"
            assert "order ns-c1 was not sent to kraken" in error.message and LAPSED in error.message
            assert "nothing reached the venue" in error.message
            assert "same client order id (ns-c1)" in error.remedy
            assert row_state(store_a, holder_a, "ns-c1") is None  # the id is free
            assert holder_a.bridge.state["kraken"].journal.unknown_orders() == []
            assert sim_orders(sim, "ns-c1") == []
        # node-a is gone; node-b holds the venue now.
        async with (
            guarded_holder(sim, clock, redis_url, "node-b", 2, []) as (holder_b, store_b),
            serving(edge_redis, "kraken", "node-b", "node-b 2", holder_b.bridge, clock),
        ):
            again = await drive(clock, relay.place(limit("ns-c1")))
            assert again.status == "accepted" and not again.duplicate
            assert [o.txid for o in sim_orders(sim, "ns-c1")] == [again.order_id]  # once
            assert row_state(store_b, holder_b, "ns-c1") == "accepted"


async def test_a_holder_that_resumes_after_its_successor_restored_the_order_frees_it_for_one_order(
    redis_url: str, edge_redis: redis.asyncio.Redis
) -> None:
    """node-a journals the order and waits for room on Kraken's rate counter; meanwhile its lease
    lapses and node-b takes over, restoring the row (written, never answered) as UNKNOWN. node-a
    then refuses the send — its journal writes fenced, its answer never written — and releases the
    row it wrote (unfenced, by its own token). node-b claims the request node-a never answered and
    places the order once: `accepted`, not `unknown, duplicate` for the next 60 s."""
    clock = FakeClock()
    why_a: list[str] = []
    async with (
        KrakenSimulator(port=0, seed=32, clock=clock, tick_s=0.01) as sim,
        relay_of(edge_redis, "kraken", clock, timeout=60.0) as relay,
    ):
        async with contextlib.AsyncExitStack() as node_a:
            holder_a, store_a = await node_a.enter_async_context(
                guarded_holder(sim, clock, redis_url, "node-a", 1, why_a)
            )
            await node_a.enter_async_context(
                serving(edge_redis, "kraken", "node-a", "node-a 1", holder_a.bridge, clock)
            )
            # Kraken's trading counter at the bridge's stop: the next order waits ~3 s for room.
            counter = holder_a.kraken.trade_counter
            counter.admit("BTC/USD", counter.capacity, clock.monotonic(), max_wait=0.0)
            counter.admit("BTC/USD", 2.0, clock.monotonic(), max_wait=10.0)
            placing = asyncio.ensure_future(relay.place(limit("ns-c2")))
            await until(
                clock, lambda: row_state(store_a, holder_a, "ns-c2") == "sending", "node-a journaled it"
            )
            why_a.append(LAPSED)  # node-a is cut off now; node-b takes the lease
            holder_b, store_b = await node_a.enter_async_context(
                guarded_holder(sim, clock, redis_url, "node-b", 2, [])
            )
            journal_b = holder_b.bridge.state["kraken"].journal
            # node-b restored it as UNKNOWN (unless node-a's release came first: then nothing to restore).
            restored = "ns-c2" in {u.order_id for u in journal_b.unknown_orders()}
            collector = holder_b.collect("executions")
            await until(
                clock, lambda: row_state(store_b, holder_b, "ns-c2") is None, "node-a released the row"
            )
            assert sim_orders(sim, "ns-c2") == []
            with redis.Redis.from_url(redis_url) as r:  # node-a never answered: the request waits
                assert r.xpending(KEYS.orders("kraken"), ORDER_GROUP)["pending"] == 1
            await node_a.enter_async_context(
                serving(edge_redis, "kraken", "node-b", "node-b 2", holder_b.bridge, clock)
            )
            ack = await drive(clock, placing)
            assert ack.status == "accepted" and not ack.duplicate  # placed, not `unknown, duplicate`
            assert [o.txid for o in sim_orders(sim, "ns-c2")] == [ack.order_id]  # ONE order
            assert row_state(store_b, holder_b, "ns-c2") == "accepted"
            assert journal_b.unknown_orders() == []
            if restored:  # its placeholder decided at once, as never at the venue

                def dropped() -> list[OrderUpdate]:
                    updates = collector.of(OrderUpdate)
                    return [u for u in updates if u.order_id == "ns-c2" and u.status == "rejected"]

                await until(clock, lambda: bool(dropped()), "the placeholder decided")
                assert "not sent" in (dropped()[0].reason or "")
            # Long after the give-up: nothing decides the order again over the retry's row.
            for _ in range(20):
                await clock.advance(5.0)
                await asyncio.sleep(0.002)
            assert row_state(store_b, holder_b, "ns-c2") == "accepted"
            assert len(sim_orders(sim, "ns-c2")) == 1
        assert restored, "node-b started after node-a journaled the order: it must have restored it"
