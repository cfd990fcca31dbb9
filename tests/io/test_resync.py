"""Resyncs that used to get stuck (found by the chaos suite): each test drives the fault sequence
that broke one path, in memory and on fake time."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from brokerbridge.core.clock import FakeClock
from brokerbridge.core.events import BookSnapshot, BookUpdate, Channel, Fill, Gap, StreamState, Subscription
from brokerbridge.core.rest import Request
from brokerbridge.io.inprocess import InProcessNetwork
from brokerbridge.io.kraken.rest import KrakenRestClient
from brokerbridge.sim.kraken import KrakenSimulator
from brokerbridge.sim.market import BookSide
from brokerbridge.venues.kraken import rest as kraken_rest
from tests.io.rig import kraken_config, rig
from tests.io.test_recovery import market_buy, rest_balances

LIVE = StreamState.LIVE
pytestmark = pytest.mark.timeout(60)


async def test_a_private_resync_refused_for_a_revoked_token_gets_a_new_token_and_a_fresh_snapshot() -> None:
    """Tokens revoked, then a skipped sequence number: the resubscribe is refused. Updates of the old
    subscription still in flight must not be taken for its acceptance (that swallowed the refusal
    and left the stream RESYNCING for good); a new token, a fresh snapshot, and no fill lost."""
    async with rig() as r:
        executions = r.collect("executions")
        await r.until(lambda: executions.states("kraken:executions")[-1:] == [LIVE])
        fetches = r.kraken.tokens.fetches
        await r.faults(invalidate_tokens=True)
        await r.faults(skip_sequence=["executions"])
        order_id = await market_buy(r, volume="0.02")
        await r.until(lambda: len(executions.of(Gap)) == 1, what="gap reported")
        await r.until(lambda: executions.states("kraken:executions")[-1] == LIVE, what="resynced", within=30)
        await r.until(lambda: any(f.order_id == order_id for f in executions.of(Fill)), what="fill delivered")
        await r.run_for(3)
        fills = [f for f in executions.of(Fill) if f.order_id == order_id]
        assert sum(f.qty for f in fills) == Decimal("0.02")
        assert len({f.exec_id for f in fills}) == len(fills)
        assert r.kraken.tokens.fetches == fetches + 1
        assert r.kraken.private.reconnects == 0


async def test_a_token_renewal_that_fails_is_retried_with_backoff_on_the_same_connection() -> None:
    """Kraken refuses the token and REST fails the next calls: the renewal is retried until it comes,
    without tearing the private connection down (that took every private stream with it)."""
    async with rig(hold_accounts=False) as r:  # account streams on demand: a second one comes later
        balances = r.collect("balances")
        await r.until(lambda: balances.states("kraken:balances")[-1:] == [LIVE])
        fetches = r.kraken.tokens.fetches
        await r.faults(invalidate_tokens=True)
        await r.faults(rest_unavailable=3)
        executions = r.collect("executions")  # refused: the token it carries was revoked
        await r.until(lambda: executions.states("kraken:executions")[-1:] == [LIVE], what="executions live")
        assert r.sim.faults.rest_unavailable == 0
        assert r.kraken.tokens.fetches == fetches + 1
        assert r.kraken.private.reconnects == 0
        assert balances.states("kraken:balances")[-1] == LIVE


async def test_a_private_sequence_gap_reconciles_that_channel_from_rest() -> None:
    """Reconciliation ran once per connection; a gap on the same connection must run it too."""
    async with rig() as r:
        balances = r.collect("balances")
        executions = r.collect("executions")
        await r.until(lambda: balances.states("kraken:balances")[-1:] == [LIVE])
        await r.until(lambda: executions.states("kraken:executions")[-1:] == [LIVE])
        await r.until(lambda: r.kraken.reconciliations == 1, what="first reconciliation")
        await r.faults(skip_sequence=["balances"])
        await market_buy(r, volume="0.01")
        await r.until(lambda: len(balances.of(Gap)) == 1, what="gap reported")
        await r.until(lambda: r.kraken.reconciliations == 2, what="reconciled after the gap")
        await r.until(lambda: balances.states("kraken:balances")[-1] == LIVE, what="resynced")
        expected = await rest_balances(r)
        await r.until(
            lambda: {a: v.total for a, v in r.bridge.balances("kraken").items() if v.total} == expected,
            what="balances equal REST",
        )
        assert r.kraken.private.reconnects == 0


async def test_a_book_whose_snapshot_was_lost_resyncs_and_carries_data_again() -> None:
    """A stalled link drops frames: a reconnect inside the stall loses the book's ack and snapshot,
    then updates flow. They confirm the subscription (LIVE) but cannot apply without a snapshot —
    the book must ask for a fresh one instead of dropping every update for good."""
    async with rig() as r:
        book = r.collect("book", "BTC/USD", depth=10)
        stream = "kraken:book:BTC/USD:depth=10"
        await r.until(lambda: book.states(stream)[-1:] == [LIVE], what="book live")
        await r.faults(stall="public")
        await r.until(
            lambda: r.kraken.public.reconnects == 1 and r.kraken.public.connected, what="reconnected"
        )
        await r.run_for(0.5)  # the replayed subscribe is answered into the stall
        await r.faults(stall=None)
        snapshots = len(book.of(BookSnapshot))
        await r.until(lambda: len(book.of(BookSnapshot)) > snapshots, what="a fresh snapshot")
        updates = len(book.of(BookUpdate))
        await r.until(lambda: len(book.of(BookUpdate)) > updates + 3, what="updates flowing again")
        assert book.states(stream)[-1] == LIVE
        sub = Subscription(venue="kraken", channel=Channel.BOOK, symbol="BTC/USD", depth=10)

        def same_as_simulator() -> bool:
            mine = r.kraken.book_snapshot(sub)
            theirs = r.sim.exchange.market.book("BTC/USD")
            return mine is not None and (
                [(lv.price, lv.qty) for lv in mine.bids] == theirs.levels(BookSide.BID, 10)
                and [(lv.price, lv.qty) for lv in mine.asks] == theirs.levels(BookSide.ASK, 10)
            )

        await r.until(same_as_simulator, what="book equals the simulator's")
        assert r.kraken.public.reconnects == 1


async def test_reconnect_reuses_a_valid_token_and_the_token_call_goes_before_queued_calls() -> None:
    """A reconnect needs no REST call while the token is young; when one is needed it does not wait
    behind ordinary calls queued at the pacer (the private stream is down until it answers)."""
    # A slow market (ten fake minutes of it): the token's life is what matters here.
    async with rig(tick_s=0.5) as r:
        balances = r.collect("balances")
        await r.until(lambda: balances.states("kraken:balances")[-1:] == [LIVE])
        fetches = r.kraken.tokens.fetches
        await r.faults(drop_now=True)
        await r.until(lambda: StreamState.RECONNECTING in balances.states("kraken:balances"))
        await r.until(lambda: balances.states("kraken:balances")[-1] == LIVE, what="live again")
        assert r.kraken.tokens.fetches == fetches
        await r.run_for(r.kraken.config.token_refresh_interval)  # the refresher fetched a new one
        assert r.kraken.tokens.fetches == fetches + 1


async def test_a_priority_call_overtakes_ordinary_calls_waiting_for_room_or_for_the_lock() -> None:
    clock = FakeClock()
    async with KrakenSimulator(port=0, seed=3, clock=clock) as sim, InProcessNetwork(sim, clock=clock) as net:
        # A slow decay: an ordinary call that finds no room waits 10 s of fake time.
        rest = rest_client(sim, net, clock)
        try:
            done: list[str] = []

            async def call(name: str, request: Request[Any], priority: bool = False) -> None:
                await rest.call(request, priority=priority)
                done.append(name)

            loop = asyncio.get_running_loop()
            # Balance costs 1: three fit under the ordinary limit (4 less the priority headroom)
            # and queue for the lock, the fourth waits for room.
            balance, token = kraken_rest.balance_request(), kraken_rest.websockets_token_request()
            tasks = [loop.create_task(call(f"balance{i}", balance)) for i in range(4)]
            await asyncio.sleep(0)
            tasks.append(loop.create_task(call("token", token, priority=True)))
            while not all(t.done() for t in tasks):
                await clock.advance(0.25)
            for task in tasks:
                task.result()
            # The token call found room at once and took the lock right after the call holding it.
            assert done.index("token") == 1, done
        finally:
            await rest.aclose()


async def test_calls_waiting_for_rate_limit_room_are_served_in_order() -> None:
    """A history call (cost 2) behind a full counter was overtaken by every cheaper call that came
    after it, for as long as they kept coming: reconciliation starved while orders were settled."""
    clock = FakeClock()
    async with KrakenSimulator(port=0, seed=3, clock=clock) as sim, InProcessNetwork(sim, clock=clock) as net:
        rest = rest_client(sim, net, clock)
        try:
            done: list[str] = []

            async def call(name: str, request: Request[Any]) -> None:
                await rest.call(request)
                done.append(name)

            loop = asyncio.get_running_loop()
            balance = kraken_rest.balance_request()
            tasks = [loop.create_task(call(f"early{i}", balance)) for i in range(3)]  # counter: 3 of 3
            await asyncio.sleep(0)
            tasks.append(loop.create_task(call("history", kraken_rest.trades_history_request())))
            await asyncio.sleep(0)
            tasks += [loop.create_task(call(f"late{i}", balance)) for i in range(2)]
            while not all(t.done() for t in tasks):
                await clock.advance(0.5)
            for task in tasks:
                task.result()
            assert done.index("history") < done.index("late0"), done
        finally:
            await rest.aclose()


def rest_client(sim: KrakenSimulator, net: InProcessNetwork, clock: FakeClock) -> KrakenRestClient:
    """A REST client with a small rate-limit counter, reaching `sim` in memory."""
    config = kraken_config(sim, rate_limit_max=4.0, rate_limit_decay=0.1)
    return KrakenRestClient(config, clock=clock, http=net.http_client(timeout=config.request_timeout))
