"""Orders across the cluster: an edge's `OrderRelay` → Redis → the holder's `OrderServer` → a real
holder `Bridge` on the simulators (in memory, one FakeClock) journaling to Redis, and back.

Redis is real (a redis-server per module), so each step of fake time also lets a couple of real
milliseconds pass for the bytes to cross (as tests/io/rig.py does on loopback)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest
import redis
import redis.asyncio

from brokerbridge.core.clock import FakeClock
from brokerbridge.core.config import Config
from brokerbridge.core.errors import (
    ClusterUnavailable,
    Fenced,
    InvalidRequest,
    OrderConflict,
    OrderRefused,
    UnknownOrder,
)
from brokerbridge.core.events import Side, StreamState, Ticker
from brokerbridge.core.orders import AmendRequest, CancelAck, OrderAck, OrderRequest
from brokerbridge.io.cluster.journal import RedisJournalStore
from brokerbridge.io.cluster.keys import ORDER_GROUP, ClusterKeys
from brokerbridge.io.cluster.link import open_redis
from brokerbridge.io.cluster.orders import (
    CancelCall,
    OrderAnswer,
    OrderHandler,
    OrderRelay,
    OrderServer,
    PlaceCall,
    ReplyInbox,
)
from brokerbridge.sim.kraken import KrakenSimulator
from tests.io.primary_rig import GGAL, primary_rig
from tests.io.rig import Rig, kraken_config, rig_on
from tests.io.test_order_service import limit, sim_orders

pytestmark = pytest.mark.timeout(60)

T = TypeVar("T")
KEYS = ClusterKeys()
EDGE = "edge-1"
REAL_LIMIT_S = 20.0  # real seconds any one drive may take (a loaded machine included)


def hold(url: str, venue: str, token: str) -> None:
    """`venue`'s lease now holds `token` (what `Lease.acquire` leaves)."""
    with redis.Redis.from_url(url) as r:
        r.set(KEYS.lease(venue), token)


async def drive(clock: FakeClock, work: Awaitable[T], *, step: float = 0.05) -> T:
    """`work`'s result, moving fake time on while it runs (a real ms or two per step for Redis)."""
    task = asyncio.ensure_future(work)
    started = time.monotonic()
    while not task.done():
        if time.monotonic() - started > REAL_LIMIT_S:
            task.cancel()
            raise AssertionError(f"not done within {REAL_LIMIT_S} real seconds: {work}")
        await clock.advance(step)
        await asyncio.sleep(0.002)  # real: the Redis round trips cross (not a wait for time)
    return task.result()


async def until(clock: FakeClock, predicate: Any, what: str = "", *, step: float = 0.05) -> None:
    """Move fake time on (a real ms or two per step for Redis) until `predicate()`."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > REAL_LIMIT_S:
            raise AssertionError(f"never came within {REAL_LIMIT_S} real seconds: {what}")
        await clock.advance(step)
        await asyncio.sleep(0.002)  # real: the Redis round trips cross (not a wait for time)


@contextlib.asynccontextmanager
async def serving(
    r: redis.asyncio.Redis, venue: str, node: str, token: str, handler: OrderHandler, clock: FakeClock
) -> AsyncIterator[tuple[OrderServer, list[Fenced], asyncio.Task[None]]]:
    fenced: list[Fenced] = []
    server = OrderServer(
        r, KEYS, venue, node, token=token, handler=handler, on_fenced=fenced.append, clock=clock
    )
    task = asyncio.get_running_loop().create_task(server.run())
    try:
        yield server, fenced, task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@contextlib.asynccontextmanager
async def kraken_holder(
    sim: KrakenSimulator, clock: FakeClock, url: str, node: str, epoch: int
) -> AsyncIterator[Rig]:
    """A holder Bridge on `sim` journaling to Redis as `<node> <epoch>`, once its account is ready."""
    token = f"{node} {epoch}"
    hold(url, "kraken", token)
    with contextlib.closing(RedisJournalStore(url, KEYS, "kraken", token=token)) as store:
        async with rig_on(sim, clock, Config(kraken=kraken_config(sim)), journal_store=store) as rig:
            await until(clock, lambda: rig.bridge.readiness()["kraken"].ready, "kraken ready")
            yield rig


@pytest.fixture
async def edge_redis(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    r = open_redis(redis_url)
    try:
        yield r
    finally:
        await r.aclose()


@contextlib.asynccontextmanager
async def relay_of(
    r: redis.asyncio.Redis,
    venue: str,
    clock: FakeClock,
    *,
    timeout: float = 30.0,  # noqa: ASYNC109 (the relay's, on the fake clock)
    inbox: ReplyInbox | None = None,
) -> AsyncIterator[OrderRelay]:
    relay = OrderRelay(
        r, KEYS, venue, EDGE, timeout=timeout, clock=clock, ttl=max(60.0, timeout), inbox=inbox
    )
    try:
        yield relay
    finally:
        await relay.aclose()


@contextlib.asynccontextmanager
async def kraken_holding(
    redis_url: str, edge_redis: redis.asyncio.Redis, seed: int, node: str = "node-a", epoch: int = 1
) -> AsyncIterator[tuple[FakeClock, KrakenSimulator, Rig, OrderRelay]]:
    """The Kraken simulator, `node` holding it at `epoch` (its Bridge; no order server yet), and an
    edge's relay."""
    clock = FakeClock()
    async with (
        KrakenSimulator(port=0, seed=seed, clock=clock, tick_s=0.01) as sim,
        kraken_holder(sim, clock, redis_url, node, epoch) as holder,
        relay_of(edge_redis, "kraken", clock) as relay,
    ):
        yield clock, sim, holder, relay


@contextlib.asynccontextmanager
async def kraken_cluster(
    redis_url: str, edge_redis: redis.asyncio.Redis, seed: int
) -> AsyncIterator[tuple[FakeClock, KrakenSimulator, OrderServer, OrderRelay]]:
    """`kraken_holding`, node-a serving its order requests."""
    async with (
        kraken_holding(redis_url, edge_redis, seed) as (clock, sim, holder, relay),
        serving(edge_redis, "kraken", "node-a", "node-a 1", holder.bridge, clock) as (server, _, _),
    ):
        yield clock, sim, server, relay


# -- round trips -----------------------------------------------------------------------------------
async def test_an_order_at_the_edge_is_placed_canceled_and_amended_by_the_kraken_holder(
    redis_url: str, edge_redis: redis.asyncio.Redis
) -> None:
    async with kraken_cluster(redis_url, edge_redis, 21) as (clock, sim, server, relay):
        ack = await drive(clock, relay.place(limit(None)))  # the edge mints the client order id
        assert isinstance(ack, OrderAck) and ack.status == "accepted" and not ack.duplicate
        assert ack.client_order_id.startswith("bb") and ack.order_id is not None
        assert [o.txid for o in sim_orders(sim, ack.client_order_id)] == [ack.order_id]

        again = await drive(clock, relay.place(limit(ack.client_order_id)))  # a retry: nothing sent
        assert again.duplicate and again.order_id == ack.order_id
        assert len(sim_orders(sim, ack.client_order_id)) == 1

        amended = await drive(
            clock,
            relay.amend(
                AmendRequest(venue="kraken", client_order_id=ack.client_order_id, qty=Decimal("0.02"))
            ),
        )
        assert amended.status == "accepted" and amended.client_order_id == ack.client_order_id
        assert sim_orders(sim, ack.client_order_id)[0].volume == Decimal("0.02")

        canceled = await drive(clock, relay.cancel(client_order_id=ack.client_order_id))
        assert isinstance(canceled, CancelAck) and canceled.status == "done" and canceled.canceled == 1
        assert server.answered == 4
        with redis.Redis.from_url(redis_url) as r:  # every request answered and acknowledged
            assert r.xpending(KEYS.orders("kraken"), ORDER_GROUP)["pending"] == 0
            answers = r.xrange(KEYS.reply(EDGE))
            assert len(answers) == 4 and {fields[b"ep"] for _, fields in answers} == {b"1"}


async def test_an_order_at_the_edge_is_placed_by_the_primary_holder(
    redis_url: str, edge_redis: redis.asyncio.Redis, tmp_path: Path
) -> None:
    hold(redis_url, "primary", "node-a 3")
    with contextlib.closing(RedisJournalStore(redis_url, KEYS, "primary", token="node-a 3")) as store:
        async with primary_rig(tmp_path, journal_store=store, only=True) as r:
            clock = r.clock
            executions = r.collect_primary("executions")
            ticker = r.collect_primary("ticker", GGAL)
            await until(
                clock,
                lambda: (
                    executions.states("primary:executions")[-1:] == [StreamState.LIVE]
                    and bool(ticker.of(Ticker))
                ),
                "primary executions live and a GGAL ticker",
            )
            bid = ticker.of(Ticker)[-1].bid
            assert bid is not None
            # One reader of the node's answers, shared by the node's relays of both venues.
            inbox = ReplyInbox(edge_redis, KEYS, EDGE, clock=clock)
            async with (
                serving(edge_redis, "primary", "node-a", "node-a 3", r.bridge, clock),
                relay_of(edge_redis, "primary", clock, inbox=inbox) as relay,
                relay_of(edge_redis, "kraken", clock, inbox=inbox, timeout=1.0) as kraken,
            ):
                request = OrderRequest(
                    venue="primary", symbol=GGAL, side=Side.BUY, qty=Decimal(3), price=bid - Decimal(40)
                )
                # Kraken has no holder here: its request waits while Primary's is answered.
                silent = asyncio.ensure_future(kraken.place(limit("k-1")))
                ack = await drive(clock, relay.place(request))
                assert ack.status == "accepted" and ack.order_id is not None
                account = r.psim.exchange.account
                placed = [
                    o.cl_ord_id for o in account.orders.values() if o.ws_cl_ord_id == ack.client_order_id
                ]
                assert placed == [ack.order_id]  # Primary's order id is its clOrdId
                done = await drive(clock, relay.cancel(order_id=ack.order_id))
                assert done.status == "done" and done.canceled == 1
                assert (await drive(clock, silent)).status == "unknown"
            await inbox.aclose()


async def test_an_error_at_the_holder_comes_back_as_the_same_typed_error(
    redis_url: str, edge_redis: redis.asyncio.Redis
) -> None:
    async with kraken_cluster(redis_url, edge_redis, 22) as (clock, sim, _, relay):
        with pytest.raises(OrderRefused) as refused:  # below Kraken's minimum quantity
            await drive(clock, relay.place(limit("tiny-1", qty="0.00001", price="10")))
        assert refused.value.rule == "min_qty" and refused.value.code == "order_refused"
        assert "minimum" in refused.value.message and refused.value.remedy

        await drive(clock, relay.place(limit("twice-1")))
        with pytest.raises(OrderConflict) as conflict:
            await drive(clock, relay.place(limit("twice-1", qty="0.03")))
        assert "qty 0.01 → 0.03" in conflict.value.message

        with pytest.raises(InvalidRequest, match="client_order_id 'no spaces!' is not valid"):
            await drive(clock, relay.place(limit("no spaces!")))
        with pytest.raises(UnknownOrder):
            await drive(clock, relay.cancel(client_order_id="never-1"))
        with pytest.raises(InvalidRequest, match="one of the two"):
            await drive(clock, relay.cancel())
        assert sim_orders(sim, "tiny-1") == [] and len(sim_orders(sim, "twice-1")) == 1


# -- failover, silence, fencing --------------------------------------------------------------------
class DiesBeforeAnswering:
    """A holder Bridge's `place` that reaches the venue, then the holder dies before its answer is
    written (the server never acknowledges the request)."""

    def __init__(self, rig: Rig) -> None:
        self.bridge = rig.bridge
        self.placed: list[OrderAck] = []

    async def place(self, request: OrderRequest) -> OrderAck:
        self.placed.append(await self.bridge.place(request))
        await asyncio.Future()  # dead: never answers
        raise AssertionError("unreachable")

    async def cancel(
        self, venue: str, order_id: str | None = None, *, client_order_id: str | None = None
    ) -> CancelAck:
        return await self.bridge.cancel(venue, order_id, client_order_id=client_order_id)

    async def amend(self, request: AmendRequest) -> OrderAck:
        return await self.bridge.amend(request)


async def test_a_request_a_dead_holder_read_is_answered_by_the_next_holder_with_one_order(
    redis_url: str, edge_redis: redis.asyncio.Redis
) -> None:
    clock = FakeClock()
    async with (
        KrakenSimulator(port=0, seed=23, clock=clock, tick_s=0.01) as sim,
        relay_of(edge_redis, "kraken", clock, timeout=60.0) as relay,
    ):
        async with contextlib.AsyncExitStack() as node_a:
            holder_a = await node_a.enter_async_context(kraken_holder(sim, clock, redis_url, "node-a", 1))
            dying = DiesBeforeAnswering(holder_a)
            await node_a.enter_async_context(
                serving(edge_redis, "kraken", "node-a", "node-a 1", dying, clock)
            )
            placing = asyncio.ensure_future(relay.place(limit("fo-1")))
            await until(clock, lambda: bool(dying.placed), "node a placed the order")
            assert len(sim_orders(sim, "fo-1")) == 1
        # Node a is dead (its server and Bridge gone, the request read and never acknowledged).
        with redis.Redis.from_url(redis_url) as r:
            assert r.xpending(KEYS.orders("kraken"), ORDER_GROUP)["pending"] == 1
        async with (
            kraken_holder(sim, clock, redis_url, "node-b", 2) as holder_b,
            serving(edge_redis, "kraken", "node-b", "node-b 2", holder_b.bridge, clock) as (server_b, _, _),
        ):
            ack = await drive(clock, placing)
            assert ack.status == "accepted" and ack.duplicate  # answered from the journal in Redis
            assert ack.order_id == dying.placed[0].order_id
            assert len(sim_orders(sim, "fo-1")) == 1  # ONE order at the venue
            assert server_b.claimed == 1
            with redis.Redis.from_url(redis_url) as r:
                assert r.xpending(KEYS.orders("kraken"), ORDER_GROUP)["pending"] == 0
                (answer,) = r.xrange(KEYS.reply(EDGE))
                assert answer[1][b"ep"] == b"2" and answer[1][b"n"] == b"node-b"


async def test_no_answer_within_the_timeout_is_unknown_and_a_cancel_pending(
    edge_redis: redis.asyncio.Redis,
) -> None:
    clock = FakeClock()
    async with relay_of(edge_redis, "kraken", clock, timeout=10.0) as relay:
        placing = asyncio.ensure_future(relay.place(limit(None)))
        await until(clock, lambda: clock.sleepers > 0, "the relay waits")
        await clock.advance(9.9)
        assert not placing.done()
        await clock.advance(0.2)
        ack = await drive(clock, placing)
        assert (ack.status, ack.order_id) == ("unknown", None)
        assert ack.reason is not None and ack.reason.startswith("no holder answered within 10 s")
        assert "executions" in ack.reason and ack.client_order_id.startswith("bb")
        # The request is in the queue with that client order id: a later holder places it once.
        entries = await edge_redis.xrange(KEYS.orders("kraken"))
        call = msgspec.json.decode(entries[0][1][b"c"], type=PlaceCall)
        assert call.request.client_order_id == ack.client_order_id

        pending = await drive(clock, relay.cancel(client_order_id="c-1"), step=1.0)
        assert (pending.status, pending.canceled, pending.order_id) == ("pending", 0, "c-1")
        assert pending.reason is not None and pending.reason.startswith("no holder answered")
        answer = await drive(
            clock, relay.amend(AmendRequest(venue="kraken", order_id="V-1", qty=Decimal(1))), step=1.0
        )
        assert (answer.status, answer.order_id) == ("unknown", "V-1")


async def test_a_fenced_server_stops_and_leaves_the_request_to_the_holder(
    redis_url: str, edge_redis: redis.asyncio.Redis
) -> None:
    async with kraken_holding(redis_url, edge_redis, 24, "node-b", 2) as (clock, sim, holder, relay):
        # node-a still runs its server with epoch 1, but node-b holds the lease at epoch 2.
        async with serving(edge_redis, "kraken", "node-a", "node-a 1", holder.bridge, clock) as (
            old,
            fenced,
            task,
        ):
            placing = asyncio.ensure_future(relay.place(limit("fence-1")))
            await drive(clock, task)  # the server stops by itself
            assert old.fenced is not None and fenced == [old.fenced]
            assert (fenced[0].epoch, fenced[0].holder) == (1, "node-b 2")
            assert old.answered == 0 and not placing.done()
            with redis.Redis.from_url(redis_url) as r:
                assert r.xpending(KEYS.orders("kraken"), ORDER_GROUP)["pending"] == 1
                assert r.xlen(KEYS.reply(EDGE)) == 0  # nothing written under the old epoch
        async with serving(edge_redis, "kraken", "node-b", "node-b 2", holder.bridge, clock) as (new, _, _):
            ack = await drive(clock, placing)
            assert ack.status == "accepted" and new.claimed == 1
            assert len(sim_orders(sim, "fence-1")) == 1


async def test_a_request_older_than_its_ttl_is_refused_unplaced(
    redis_url: str, edge_redis: redis.asyncio.Redis
) -> None:
    clock = FakeClock()
    stream, reply = KEYS.orders("kraken"), KEYS.reply(EDGE)
    encoder = msgspec.json.Encoder(decimal_format="string")
    async with (
        KrakenSimulator(port=0, seed=25, clock=clock, tick_s=0.01) as sim,
        kraken_holder(sim, clock, redis_url, "node-a", 1) as holder,
    ):
        # Sent long ago (Redis stamped it at 1 ms after 1970), while no node held the venue.
        await edge_redis.xadd(
            stream,
            {
                "id": "old-1",
                "reply": reply,
                "c": encoder.encode(PlaceCall(request=limit("old-1"))),
                "ttl": "60000",
            },
            id="1-0",
        )
        await edge_redis.xadd(
            stream, {"id": "fresh-1", "reply": reply, "c": encoder.encode(CancelCall()), "ttl": "60000"}
        )
        async with serving(edge_redis, "kraken", "node-a", "node-a 1", holder.bridge, clock) as (
            server,
            _,
            _,
        ):
            await until(clock, lambda: server.answered == 2, "both answered")
        answers = [msgspec.json.decode(f[b"a"], type=OrderAnswer) for _, f in await edge_redis.xrange(reply)]
        by_id = {a.id: a for a in answers}
        old_error = by_id["old-1"].error
        assert (
            old_error is not None and old_error.code == "unavailable" and "not acted on" in old_error.message
        )
        fresh_error = by_id["fresh-1"].error
        assert fresh_error is not None and fresh_error.code == "invalid_request"
        assert sim_orders(sim, "old-1") == []


async def test_a_holder_whose_journal_write_is_fenced_stops_and_sends_nothing(
    redis_url: str, edge_redis: redis.asyncio.Redis
) -> None:
    async with kraken_holding(redis_url, edge_redis, 26) as (clock, sim, holder, relay):
        hold(redis_url, "kraken", "node-b 2")  # node-a's lease is gone; its Bridge still runs
        async with serving(edge_redis, "kraken", "node-a", "node-a 1", holder.bridge, clock) as (
            old,
            fenced,
            task,
        ):
            placing = asyncio.ensure_future(relay.place(limit("late-1")))
            await drive(clock, task)
            assert [f.holder for f in fenced] == ["node-b 2"] and old.answered == 0
        assert sim_orders(sim, "late-1") == []  # the write-ahead was refused: nothing sent
        with redis.Redis.from_url(redis_url) as r:
            assert r.xpending(KEYS.orders("kraken"), ORDER_GROUP)["pending"] == 1  # for node-b
        placing.cancel()


async def test_an_unreachable_redis_is_a_typed_error_naming_the_retry(tmp_path: Path) -> None:
    from tests.redis_server import free_port

    r = open_redis(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    clock = FakeClock()
    try:
        async with relay_of(r, "kraken", clock) as relay:
            with pytest.raises(ClusterUnavailable) as down:
                await relay.place(limit(None))
            assert down.value.retryable and "unreachable" in down.value.message
            assert "client_order_id bb" in down.value.remedy  # the id it minted: a retry is one order
    finally:
        await r.aclose()


async def test_redis_gone_while_a_request_is_handled_is_answered_unavailable_not_a_bug() -> None:
    """The request's age is read from Redis's clock: Redis restarting right then (cluster chaos
    seed 730221) is `cluster_unavailable` — no order sent — not an ERROR traceback "a bug"."""
    from tests.redis_server import free_port

    r = open_redis(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    clock = FakeClock()
    server = OrderServer(
        r,
        KEYS,
        "kraken",
        "node-a",
        token="node-a 1",
        handler=None,  # type: ignore[arg-type]  # never reached: the age check fails first
        on_fenced=lambda e: None,
        clock=clock,
    )
    call = msgspec.json.Encoder(decimal_format="string").encode(PlaceCall(request=limit("gone-1")))
    try:
        answer, _ = await server._answer_of(b"1-0", "gone-1", {b"c": call, b"ttl": b"60000"})
    finally:
        await r.aclose()
    assert answer.error is not None and answer.error.code == "cluster_unavailable"


class RefusesPlacing:
    """A holder whose every `place` is refused before anything is written (as the rate model or
    the venue's rules refuse one: no journal row, the id stays free)."""

    async def place(self, request: OrderRequest) -> OrderAck:
        raise OrderRefused(
            f"a new order on {request.symbol} would take Kraken's trading rate counter over its limit",
            venue="kraken",
            rule="rate_limit",
        )

    async def cancel(
        self, venue: str, order_id: str | None = None, *, client_order_id: str | None = None
    ) -> CancelAck:
        raise AssertionError("no cancel here")

    async def amend(self, request: AmendRequest) -> OrderAck:
        raise AssertionError("no amend here")


async def test_an_earlier_request_is_not_acted_on_once_a_later_one_was_refused(
    redis_url: str, edge_redis: redis.asyncio.Redis
) -> None:
    """Cluster chaos seed 661963: request 1's answer (a refusal) was lost with a Redis restart; its
    edge told the client "unknown, still valid"; the client's retry, request 2, was refused and the
    client took that as the order's end — then the next holder claimed request 1 and placed the
    order ("refused yet booked"). Once a later request with the same client order id has been
    answered without placing it, an earlier one is answered "not acted on", and nothing is placed;
    a request after the refusal is a new intent and is placed."""
    clock = FakeClock()
    stream, reply = KEYS.orders("kraken"), KEYS.reply(EDGE)
    encoder = msgspec.json.Encoder(decimal_format="string")

    def request(request_id: str) -> dict[str, Any]:
        place = encoder.encode(PlaceCall(request=limit("sup-1")))
        return {"id": request_id, "reply": reply, "c": place, "ttl": "60000"}

    first = await edge_redis.xadd(stream, request("r1"))
    second = await edge_redis.xadd(stream, request("r2"))
    async with (
        KrakenSimulator(port=0, seed=26, clock=clock, tick_s=0.01) as sim,
        kraken_holder(sim, clock, redis_url, "node-a", 1) as holder,
    ):
        refusing = OrderServer(
            edge_redis, KEYS, "kraken", "node-a", token="node-a 1", handler=RefusesPlacing(), on_fenced=print
        )
        placing = OrderServer(
            edge_redis, KEYS, "kraken", "node-a", token="node-a 1", handler=holder.bridge, on_fenced=print
        )
        fields = {entry: f for entry, f in await edge_redis.xrange(stream)}
        await refusing._handle(second, fields[second])  # the retry: refused, answered
        await drive(clock, placing._handle(first, fields[first]))  # the first, claimed later
        assert sim_orders(sim, "sup-1") == []  # NOT placed
        third = await edge_redis.xadd(stream, request("r3"))  # the client tries again: placed
        await drive(clock, placing._handle(third, (await edge_redis.xrange(stream, third, third))[0][1]))
        assert len(sim_orders(sim, "sup-1")) == 1
        # A conflicting request (another order under the id) marks nothing: the id's row answers
        # for it, and an earlier request of the placed order would be answered from that row.
        other = encoder.encode(PlaceCall(request=limit("sup-1", qty="0.03")))
        fourth = await edge_redis.xadd(stream, {"id": "r4", "reply": reply, "c": other, "ttl": "60000"})
        await drive(clock, placing._handle(fourth, (await edge_redis.xrange(stream, fourth, fourth))[0][1]))
        assert await edge_redis.get(KEYS.refused("kraken", "sup-1")) == second
    answers = {
        a.id: a
        for a in (msgspec.json.decode(f[b"a"], type=OrderAnswer) for _, f in await edge_redis.xrange(reply))
    }
    assert answers["r2"].error is not None and answers["r2"].error.code == "order_refused"
    r1 = answers["r1"].error
    assert r1 is not None and r1.code == "unavailable" and "not acted on" in r1.message
    assert answers["r3"].ack is not None and answers["r3"].ack.status == "accepted"
    assert answers["r4"].error is not None and answers["r4"].error.code == "order_conflict"
