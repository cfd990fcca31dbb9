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
from tests.io.test_order_service import fill_the_rate_counter, limit, sim_orders

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


def pending(url: str) -> int:
    """Order requests read by a holder and not answered yet (0 before the group exists)."""
    with redis.Redis.from_url(url) as r:
        try:
            return int(r.xpending(KEYS.orders("kraken"), ORDER_GROUP)["pending"])
        except redis.ResponseError:  # NOGROUP: no holder has read yet
            return 0


async def test_an_order_waiting_for_room_when_its_holder_is_cut_off_leaves_no_row_and_is_placed_once(
    redis_url: str, edge_redis: redis.asyncio.Redis
) -> None:
    """The cluster chaos's unknown orders: node-a reads the request and waits for room on Kraken's
    rate counter; meanwhile it is cut off (SIGSTOP, SIGKILL) and node-b takes over. Nothing was
    journaled while it waited, so node-b restores nothing UNKNOWN, node-a's late write-ahead is
    fenced (nothing sent), and node-b claims the request and places the order once — `accepted`,
    not `unknown, duplicate` for the next 60 s."""
    clock = FakeClock()
    why_a: list[str] = []
    async with (
        KrakenSimulator(port=0, seed=32, clock=clock, tick_s=0.01) as sim,
        relay_of(edge_redis, "kraken", clock, timeout=60.0) as relay,
    ):
        async with contextlib.AsyncExitStack() as nodes:
            holder_a, store_a = await nodes.enter_async_context(
                guarded_holder(sim, clock, redis_url, "node-a", 1, why_a)
            )
            _, fenced_a, _ = await nodes.enter_async_context(
                serving(edge_redis, "kraken", "node-a", "node-a 1", holder_a.bridge, clock)
            )
            fill_the_rate_counter(holder_a, 3.0)
            placing = asyncio.ensure_future(relay.place(limit("ns-c2")))
            await until(clock, lambda: pending(redis_url) == 1, "node-a read the request")
            await drive(clock, asyncio.sleep(0), step=0.5)  # it waits for room now
            assert row_state(store_a, holder_a, "ns-c2") is None  # nothing journaled while it waits
            why_a.append(LAPSED)  # node-a is cut off; node-b takes the lease
            holder_b, store_b = await nodes.enter_async_context(
                guarded_holder(sim, clock, redis_url, "node-b", 2, [])
            )
            assert holder_b.bridge.state["kraken"].journal.unknown_orders() == []  # nothing to follow
            await until(clock, lambda: bool(fenced_a), "node-a's write-ahead fenced")
            assert row_state(store_b, holder_b, "ns-c2") is None and sim_orders(sim, "ns-c2") == []
            await nodes.enter_async_context(
                serving(edge_redis, "kraken", "node-b", "node-b 2", holder_b.bridge, clock)
            )
            ack = await drive(clock, placing)
            assert ack.status == "accepted" and not ack.duplicate  # placed, not `unknown, duplicate`
            assert [o.txid for o in sim_orders(sim, "ns-c2")] == [ack.order_id]  # ONE order
            assert row_state(store_b, holder_b, "ns-c2") == "accepted"


async def test_a_row_released_after_the_successor_restored_it_is_placed_once_and_stays_decided(
    redis_url: str, edge_redis: redis.asyncio.Redis
) -> None:
    """node-a journaled an order and was cut off before anything of it left (inside the connector:
    a REST call waiting for room on Kraken's call counter, refused by the guarded transport);
    node-b took over and restored the row as UNKNOWN. node-a's release of its own row goes through
    without the lease (node-b's would not: not its row); node-b then drops the placeholder as not
    sent and places the retry once, and no later decision overwrites it."""
    clock = FakeClock()
    async with (
        KrakenSimulator(port=0, seed=33, clock=clock, tick_s=0.01) as sim,
        relay_of(edge_redis, "kraken", clock) as relay,
    ):
        async with contextlib.AsyncExitStack() as nodes:
            why_a: list[str] = []
            holder_a, store_a = await nodes.enter_async_context(
                guarded_holder(sim, clock, redis_url, "node-a", 1, why_a)
            )
            scope = holder_a.bridge.state["kraken"].scope
            assert store_a.add_order(scope, limit("ns-c3"), ts=clock.time())  # written ahead, never sent
            why_a.append(LAPSED)  # node-a is cut off; node-b takes the lease
            holder_b, store_b = await nodes.enter_async_context(
                guarded_holder(sim, clock, redis_url, "node-b", 2, [])
            )
            journal_b = holder_b.bridge.state["kraken"].journal
            assert [u.order_id for u in journal_b.unknown_orders()] == ["ns-c3"]  # restored UNKNOWN
            collector = holder_b.collect("executions")
            assert not store_b.release_order("kraken", scope, "ns-c3")  # not node-b's row
            assert store_a.release_order("kraken", scope, "ns-c3")  # node-a's, though node-b holds
            await nodes.enter_async_context(
                serving(edge_redis, "kraken", "node-b", "node-b 2", holder_b.bridge, clock)
            )
            ack = await drive(clock, relay.place(limit("ns-c3")))
            assert ack.status == "accepted" and not ack.duplicate
            assert [o.txid for o in sim_orders(sim, "ns-c3")] == [ack.order_id]
            assert journal_b.unknown_orders() == []

            def dropped() -> list[OrderUpdate]:
                updates = collector.of(OrderUpdate)
                return [u for u in updates if u.order_id == "ns-c3" and u.status == "rejected"]

            await until(clock, lambda: bool(dropped()), "the placeholder decided as not sent")
            assert "not sent" in (dropped()[0].reason or "")
            for _ in range(20):  # long after the give-up: nothing decides it again over the retry
                await clock.advance(5.0)
                await asyncio.sleep(0.002)
            assert row_state(store_b, holder_b, "ns-c3") == "accepted"
            assert not store_a.release_order("kraken", scope, "ns-c3")  # decided: never released
            assert len(sim_orders(sim, "ns-c3")) == 1
