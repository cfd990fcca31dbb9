"""The durable executions journal, reconciliation and gap backfill, against the Kraken simulator.

In memory; a FakeClock for everything that waits (see tests/io/rig.py)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from brokerbridge.core.clock import FakeClock
from brokerbridge.core.config import Config
from brokerbridge.core.events import Channel, Fill, Gap, OrderUpdate, Side, Source, StreamState, Trade
from brokerbridge.io.journal_store import SqliteJournalStore
from brokerbridge.io.kraken.connector import HISTORY_MARGIN
from brokerbridge.sim.kraken import KrakenSimulator
from brokerbridge.venues.kraken import rest as kraken_rest
from tests.io.rig import Collector, Rig, btc_usd, kraken_config, rig_on
from tests.io.test_recovery import market_buy

pytestmark = pytest.mark.timeout(90)

SNAPSHOT_FILLS = 50  # fills an executions snapshot replays (snap_trades)


def bridge_on(
    sim: KrakenSimulator, clock: FakeClock, journal: Path, **changes: Any
) -> contextlib.AbstractAsyncContextManager[Rig]:
    """A Bridge journaling to `journal` on `sim` (tests/io/rig.py's `rig_on`)."""
    return rig_on(sim, clock, Config(kraken=kraken_config(sim, **changes), journal_path=str(journal)))


@contextlib.asynccontextmanager
async def journaled(tmp_path: Path, seed: int, **changes: Any) -> AsyncIterator[tuple[KrakenSimulator, Rig]]:
    """A simulator and a Bridge journaling to a file, on one FakeClock."""
    clock = FakeClock()
    async with (
        KrakenSimulator(port=0, seed=seed, clock=clock, tick_s=0.01) as sim,
        bridge_on(sim, clock, tmp_path / "j.sqlite3", **changes) as r,
    ):
        yield sim, r


def sim_fill_ids(sim: KrakenSimulator) -> set[str]:
    return set(sim.exchange.account.trades)


async def live_executions(r: Rig) -> Collector:
    executions = r.collect("executions")
    await r.until(lambda: executions.states("kraken:executions")[-1:] == [StreamState.LIVE])
    return executions


async def market(r: Rig, side: str = "buy") -> None:
    await r.place(btc_usd("0.01", side=Side(side)))


async def test_fills_are_on_disk_before_consumers_see_them_and_once_across_a_restart(tmp_path: Path) -> None:
    clock = FakeClock()
    journal = tmp_path / "journal.sqlite3"
    async with KrakenSimulator(port=0, seed=11, clock=clock, tick_s=0.01) as sim:
        async with bridge_on(sim, clock, journal) as r:
            assert r.bridge.journal_store is not None and r.bridge.journal_store.journal_mode() == "wal"
            executions = r.collect("executions")
            await r.until(lambda: executions.states("kraken:executions")[-1:] == [StreamState.LIVE])
            await r.place(btc_usd("0.02"))
            await r.until(lambda: executions.of(Fill), what="fill delivered")
            delivered = {f.exec_id for f in executions.of(Fill)}
            # Another reader of the file (a crash right now would leave the same) sees the fill.
            with contextlib.closing(sqlite3.connect(journal)) as db:
                on_disk = {row[0] for row in db.execute("SELECT exec_id FROM fills")}
            assert delivered == on_disk == sim_fill_ids(sim)

        # A restart: snap_trades and TradesHistory replay the same fills; none is published again.
        async with bridge_on(sim, clock, journal) as r:
            assert {f.exec_id for f in r.bridge.fills("kraken")} == delivered
            executions = r.collect("executions")
            await r.until(lambda: executions.states("kraken:executions")[-1:] == [StreamState.LIVE])
            await r.run_for(3.0)
            assert executions.of(Fill) == []
            await r.place(btc_usd("0.01", side=Side.SELL))
            await r.until(lambda: executions.of(Fill), what="the new fill delivered")
            assert len(executions.of(Fill)) == 1
        store = SqliteJournalStore(str(journal))
        assert {f.exec_id for f in store.fills("kraken", r.kraken.journal_scope)} == sim_fill_ids(sim)
        store.close()


async def test_fills_made_while_the_private_stream_was_down_are_recovered_once(tmp_path: Path) -> None:
    async with journaled(tmp_path, 12, poll_after=60.0) as (sim, r):
        executions = await live_executions(r)
        sim.faults.apply({"stall": "private"})  # executions stop arriving; the watchdog reconnects
        await r.until(lambda: StreamState.RECONNECTING in executions.states("kraken:executions"))
        for _ in range(3):
            await market(r)
        await r.run_for(1.0)
        assert executions.of(Fill) == []
        sim.faults.apply({"stall": None})
        await r.until(lambda: len(executions.of(Fill)) >= 3, what="missed fills recovered")
        await r.run_for(3.0)
        ids = [f.exec_id for f in executions.of(Fill)]
        assert sorted(ids) == sorted(sim_fill_ids(sim))  # every fill, none twice


async def lose_fills_in_a_stall(r: Rig, sim: KrakenSimulator) -> set[str]:
    """Stall the private stream until the watchdog reconnects into the stall, make three fills
    then (their updates, and the new connection's acks and snapshot, are lost), end the stall
    and wait past the history margin: the subscriptions are not confirmed yet (heartbeats only).
    Returns the lost fills' ids."""
    sim.faults.apply({"stall": "private"})
    await r.until(lambda: r.kraken.private.reconnects == 1 and r.kraken.private.connected)
    for _ in range(3):
        await market(r)
    sim.faults.apply({"stall": None})
    await r.run_for(HISTORY_MARGIN + 1.0)
    assert r.kraken.private.reconnects == 1
    return sim_fill_ids(sim)


async def test_fills_lost_in_a_stall_are_recovered_though_newer_fills_arrive_first(tmp_path: Path) -> None:
    """Fills lost with a stalled link, on the old connection and with the new one's snapshot, are
    read back from TradesHistory even when a fill made after the stall (more than the history
    margin later) reaches the bridge on the new connection before reconciliation reads history:
    that newer fill does not prove the older ones arrived."""
    async with journaled(tmp_path, 15, poll_after=600.0) as (sim, r):
        executions = await live_executions(r)
        lost = await lose_fills_in_a_stall(r, sim)
        assert executions.of(Fill) == []
        # The first frame after the stall is this order's: it confirms the subscriptions, and its
        # fill arrives before reconciliation reads TradesHistory.
        await market(r, "sell")
        await r.until(lambda: r.kraken.reconciliations >= 1, what="reconciled")
        await r.run_for(3.0)
        ids = [f.exec_id for f in executions.of(Fill)]
        assert lost <= set(ids), "fills lost in the stall were not recovered"
        assert sorted(ids) == sorted(sim_fill_ids(sim))  # every fill, none twice


async def test_fills_lost_in_a_stall_are_recovered_before_the_order_reads(tmp_path: Path) -> None:
    """Reconciliation reads the missed fills before the orders: those reads are paged and paced on
    Kraken's call counter (under load they took longer than the chaos suite's quiet end, and
    started over after every failure). Here they cannot succeed at all: the key lost its "query
    open orders" permission. The fills are recovered anyway."""
    async with journaled(tmp_path, 18, poll_after=600.0) as (sim, r):
        executions = await live_executions(r)
        lost = await lose_fills_in_a_stall(r, sim)
        sim.faults.apply({"deny_permissions": ["query_open_orders"]})
        await market(r, "sell")  # confirms the subscriptions: reconciliation runs
        await r.until(lambda: lost <= {f.exec_id for f in executions.of(Fill)}, what="lost fills recovered")
        assert sorted(f.exec_id for f in executions.of(Fill)) == sorted(sim_fill_ids(sim))


async def test_fills_lost_in_a_stall_shorter_than_the_watchdog_are_recovered(tmp_path: Path) -> None:
    """A private stall that ends before the watchdog reconnects, with fills in it and nothing
    private after it: no sequence number can show the loss (chaos seed 549785 lost three fills
    so). The silence itself is the sign: frames after it set off a read back from REST."""
    async with journaled(tmp_path, 19, poll_after=600.0) as (sim, r):
        executions = await live_executions(r)
        sim.faults.apply({"stall": "private"})
        for _ in range(3):
            # Straight over REST, as another program of the account would: the Bridge would send
            # them on the stalled socket and wait out their answers (order_timeout), past the watchdog.
            await market_buy(r)
        await r.run_for(1.0)
        sim.faults.apply({"stall": None})
        lost = sim_fill_ids(sim)
        assert len(lost) == 3 and executions.of(Fill) == []
        await r.until(lambda: lost <= {f.exec_id for f in executions.of(Fill)}, within=5.0, what="recovered")
        assert r.kraken.private.reconnects == 0  # the watchdog (10 s) never fired
        assert sorted(f.exec_id for f in executions.of(Fill)) == sorted(lost)


async def test_a_lost_message_with_no_silence_and_nothing_after_it_is_found_by_the_periodic_read(
    tmp_path: Path,
) -> None:
    """The one loss neither a sequence gap nor a silence shows: the last message of a burst, lost
    on a link that never went quiet. The periodic read back (`reconcile_interval`) finds it."""
    async with journaled(tmp_path, 20, poll_after=600.0, reconcile_interval=30.0) as (sim, r):
        executions = await live_executions(r)
        await r.run_for(1.0)
        reconciled = r.kraken.reconciliations
        sim.faults.apply({"lose_message": ["executions"] * 10})
        await market(r)  # all its executions messages are lost (balances' still come)
        sim.faults.apply({"lose_message": []})
        lost = sim_fill_ids(sim)
        await r.run_for(10.0)
        assert executions.of(Fill) == [] and r.kraken.reconciliations == reconciled
        took = await r.until(lambda: lost <= {f.exec_id for f in executions.of(Fill)}, within=40.0)
        assert 10.0 < took + 10.0 <= 31.0
        assert r.kraken.private.reconnects == 0


async def test_fills_lost_in_a_stall_do_not_wait_for_the_order_pages_of_an_earlier_reconciliation(
    tmp_path: Path,
) -> None:
    """Reconciliation reads orders apart from fills: ClosedOrders pages are paced on Kraken's call
    counter (here 20 s a page), and fills lost in a stall while an earlier reconciliation was
    still paging its orders used to wait for every page (chaos seeds 315753 and 953047)."""
    async with journaled(tmp_path, 21, poll_after=600.0, rate_limit_max=6.0, rate_limit_decay=0.1) as (
        sim,
        r,
    ):
        executions = await live_executions(r)
        await market(r)
        reconciled = r.kraken.reconciliations
        r.kraken.request_reconcile()  # ClosedOrders is read back to this order from now on
        await r.until(lambda: r.kraken.reconciliations > reconciled, what="first order read")
        for i in range(210):  # five pages of closed orders for the next reconciliation
            await market(r, "buy" if i % 2 else "sell")
        await r.until(
            lambda: {f.exec_id for f in executions.of(Fill)} == sim_fill_ids(sim), what="fills on the stream"
        )
        await r.run_for(70.0)  # the counter empties
        before = r.kraken.reconciliations
        r.kraken.request_reconcile()  # BalanceEx, TradesHistory, OpenOrders, then 5 × ClosedOrders
        await r.run_for(1.0)
        sim.faults.apply({"stall": "private"})  # shorter than the watchdog: the silence tells
        for _ in range(3):
            await market(r)
        await r.run_for(1.0)
        sim.faults.apply({"stall": None})
        lost = sim_fill_ids(sim) - {f.exec_id for f in executions.of(Fill)}
        assert len(lost) >= 3
        await r.until(lambda: lost <= {f.exec_id for f in executions.of(Fill)}, what="lost fills read")
        # Each read waits its turn on the counter (first come, first served), but not for the
        # pages of the earlier reconciliation still to come.
        assert r.kraken.reconciliations == before, "the earlier reconciliation's orders were read first"


async def test_a_reconciliation_of_many_pages_finishes_though_rest_fails_every_few_seconds(
    tmp_path: Path,
) -> None:
    """Each page of a long read waits seconds for room on Kraken's call counter, and a call fails
    every 10 s: a reconciliation that started over after each failure never finished (the chaos
    suite saw orders unknown and closed orders unread for minutes). It keeps its pages."""
    async with journaled(tmp_path, 19, poll_after=600.0, rate_limit_decay=0.25) as (sim, r):
        await live_executions(r)
        await market(r)  # one closed order, read by a reconciliation: the next one reads back to it
        reconciled = r.kraken.reconciliations
        sim.faults.apply({"skip_sequence": ["executions"]})
        await market(r)
        await r.until(lambda: r.kraken.reconciliations > reconciled, what="first reconciliation")
        await r.run_for(20.0)
        for _ in range(120):  # ClosedOrders: three pages back to it
            await market(r)
        for _ in range(18):  # the call counter full: every page waits 4-8 s for room
            await r.call(r.kraken.rest.call(kraken_rest.balance_request()))

        async def fail_a_call_every_10_s() -> None:
            while True:
                await r.clock.sleep(10.0)
                sim.faults.apply({"rest_unavailable": 1})

        failing = asyncio.get_running_loop().create_task(fail_a_call_every_10_s())
        try:
            reconciled = r.kraken.reconciliations
            sim.faults.apply({"skip_sequence": ["executions"]})  # a gap: executions reconciled
            await market(r)
            await r.until(lambda: r.kraken.reconciliations > reconciled, within=300.0, what="reconciled")
        finally:
            failing.cancel()


async def test_more_fills_while_away_than_a_snapshot_holds_are_all_recovered(tmp_path: Path) -> None:
    """No frame lost, as on the real Kraken: the private stream is down (token revoked, WebSocket
    permission denied) while more fills happen than `snap_trades` replays (the newest 50). The
    snapshot's newest fill proves nothing about the older ones: history is read back over the
    whole outage."""
    async with journaled(tmp_path, 16, poll_after=600.0) as (sim, r):
        executions = await live_executions(r)
        await market(r)
        await r.until(lambda: len(executions.of(Fill)) == 1)
        await r.run_for(1.0)
        sim.faults.apply({"deny_permissions": ["websockets"], "invalidate_tokens": True, "drop_now": True})
        await r.until(lambda: StreamState.RECONNECTING in executions.states("kraken:executions"))
        for i in range(SNAPSHOT_FILLS + 5):
            await market(r, "buy" if i % 2 else "sell")
        assert len(executions.of(Fill)) == 1
        reconciled = r.kraken.reconciliations
        sim.faults.apply({"deny_permissions": []})
        await r.until(lambda: executions.states("kraken:executions")[-1:] == [StreamState.LIVE])
        await r.until(lambda: r.kraken.reconciliations > reconciled, what="history read over the outage")
        await r.run_for(3.0)
        ids = [f.exec_id for f in executions.of(Fill)]
        assert sorted(ids) == sorted(sim_fill_ids(sim))  # every fill, none twice


async def test_an_order_read_from_rest_before_it_was_canceled_does_not_reopen_it(tmp_path: Path) -> None:
    """Reconciliation reads TradesHistory, OpenOrders, then ClosedOrders (paced by Kraken's call
    counter), and publishes the orders after both. An order canceled meanwhile — the stream said
    so — is not `new` again because an older read said it was open."""
    # A small, slow call counter: reconciliation's ClosedOrders waits 10 s after OpenOrders.
    async with journaled(tmp_path, 17, rate_limit_max=6.0, rate_limit_decay=0.1) as (_, r):
        executions = await live_executions(r)
        order_id = (await r.place(btc_usd("0.01", "1000.0"))).order_id
        await r.until(lambda: order_id in {o.order_id for o in r.bridge.open_orders("kraken")})
        await r.run_for(70.0)  # the counter empties
        # 1 + TradesHistory 2 + OpenOrders 1: full
        await r.call(r.kraken.rest.call(kraken_rest.balance_request()))
        before = r.kraken.reconciliations
        reconciled = lambda: r.kraken.reconciliations > before  # noqa: E731  (orders read too)
        reconcile = asyncio.get_running_loop().create_task(r.kraken.reconcile_private({Channel.EXECUTIONS}))
        await r.run_for(0.5)  # OpenOrders answered (the order is open); ClosedOrders waits
        assert not reconciled()
        assert order_id is not None
        await r.call(r.bridge.cancel("kraken", order_id))
        statuses = lambda: [u.status for u in executions.of(OrderUpdate) if u.order_id == order_id]  # noqa: E731
        await r.until(lambda: "canceled" in statuses(), what="cancel reported")
        assert not reconciled()
        await r.until(reconciled, what="reconciled")
        reconcile.result()
        await r.run_for(1.0)
        seen = statuses()
        assert set(seen[seen.index("canceled") :]) == {"canceled"}, seen  # never open again
        assert order_id not in {o.order_id for o in r.bridge.open_orders("kraken")}


async def test_callers_reading_orders_side_by_side_share_one_read(tmp_path: Path) -> None:
    """Reconciliation and the settling of unknown submits read orders side by side; each read
    moved where the next ClosedOrders read starts, so one could miss the order the other had
    just read (and settle a submit that arrived as never arrived). A caller gets the first read
    that begins after it asked; callers asking meanwhile share it."""
    async with journaled(tmp_path, 22, poll_after=600.0) as (_, r):
        await live_executions(r)
        for i in range(3):
            await market(r, "buy" if i % 2 else "sell")
        await r.run_for(30.0)
        before = r.kraken.rest.calls
        loop = asyncio.get_running_loop()
        first = loop.create_task(r.kraken.order_snapshot())
        await r.step(0.0)  # the first read is under way: the next two callers wait for one more
        second = loop.create_task(r.kraken.order_snapshot())
        third = loop.create_task(r.kraken.order_snapshot())
        await r.until(lambda: first.done() and second.done() and third.done(), what="reads done")
        assert second.result() == third.result()
        assert {e.order_id for e in second.result()} >= {e.order_id for e in first.result()}
        assert r.kraken.rest.calls - before == 4  # OpenOrders + ClosedOrders, twice — not three times


async def test_an_unanswered_submit_is_unknown_until_reconciliation_finds_it(tmp_path: Path) -> None:
    # The answer is waited 0.3 s whichever way the order goes (the socket's order_timeout, REST's
    # request_timeout), on the fake clock: the rig's network measures it there.
    async with journaled(tmp_path, 13, request_timeout=0.3, order_timeout=0.3) as (sim, r):
        executions = r.collect("executions")
        await r.until(lambda: executions.states("kraken:executions")[-1:] == [StreamState.LIVE])
        await r.run_for(1.0)  # symbols loaded, token fresh: the next order request is this one
        sim.faults.apply({"lose_answers": 1})  # the order is booked; its answer never comes
        ack = await r.place(btc_usd("0.01", "1000.0"))
        # Not an error, not "rejected": unknown, named by its client order id until it is decided.
        assert (ack.status, ack.order_id) == ("unknown", None) and "no answer" in (ack.reason or "")
        await r.until(lambda: any(u.status == "unknown" for u in executions.of(OrderUpdate)), within=0.5)
        (placeholder,) = [u for u in executions.of(OrderUpdate) if u.status == "unknown"]
        assert placeholder.order_id == placeholder.client_order_id == ack.client_order_id
        assert placeholder.order_id in {o.order_id for o in r.bridge.open_orders("kraken")}
        await r.until(
            lambda: any(
                u.order_id == placeholder.order_id and u.status != "unknown"
                for u in executions.of(OrderUpdate)
            ),
            what="the unknown order settled",
        )
        (settled,) = [u for u in executions.of(OrderUpdate) if u.order_id == placeholder.order_id][1:]
        (venue_id,) = [o.txid for o in sim.exchange.account.orders.values()]
        assert settled.status == "resolved" and venue_id in (settled.reason or "")
        assert placeholder.order_id not in {o.order_id for o in r.bridge.open_orders("kraken")}
        assert venue_id in {o.order_id for o in r.bridge.open_orders("kraken")}


async def test_trades_missed_during_a_reconnect_are_backfilled_from_rest(tmp_path: Path) -> None:
    async with journaled(tmp_path, 14, poll_after=600.0) as (sim, r):
        trades = r.collect("trades", "BTC/USD")
        await r.until(lambda: trades.states("kraken:trades:BTC/USD")[-1:] == [StreamState.LIVE])
        await r.until(lambda: len(trades.of(Trade)) > 3, what="live trades")
        sim.faults.apply({"stall": "public"})
        await r.until(lambda: trades.states("kraken:trades:BTC/USD")[-1:] == [StreamState.RECONNECTING])
        await r.run_for(5.0)  # the market trades on while we are away
        sim.faults.apply({"stall": None})
        await r.until(lambda: r.kraken.backfills == 1, what="backfill done")
        await r.run_for(1.0)
        got = [t.trade_id for t in trades.of(Trade)]
        assert len(got) == len(set(got))  # snapshot, backfill and live stream overlap: none twice
        assert any(t.source is Source.REST for t in trades.of(Trade))
        assert trades.of(Gap) == []  # REST filled the window: no gap to report
        first, last = float(min(got, key=int)), float(max(got, key=int))
        sim_ids = {str(t) for t in sim_trade_ids(sim, "BTC/USD") if first <= t <= last}
        assert sim_ids <= set(got)  # nothing between the first and last trade seen is missing


def sim_trade_ids(sim: KrakenSimulator, symbol: str) -> list[int]:
    return [t.trade_id for t in sim.exchange.market.trades(symbol)]


def test_journal_path_is_read_from_file_and_environment_and_checked(tmp_path: Path) -> None:
    from brokerbridge.core.config import DEFAULT_JOURNAL_PATH, load_config
    from brokerbridge.core.errors import ConfigError

    assert load_config(env={}).journal_path == DEFAULT_JOURNAL_PATH
    file = tmp_path / "c.toml"
    file.write_text('journal_path = "/data/fills.sqlite3"\n')
    assert load_config(file, env={}).journal_path == "/data/fills.sqlite3"
    env = {"BROKERBRIDGE_JOURNAL_PATH": ":memory:"}
    assert load_config(file, env=env).journal_path == ":memory:"
    file.write_text("journal_path = 3\n")
    with pytest.raises(ConfigError, match="journal_path must be a file path"):
        load_config(file, env={})
    blocked = tmp_path / "file"
    blocked.write_text("")
    with pytest.raises(ConfigError, match="cannot open the executions journal") as caught:
        SqliteJournalStore(str(blocked / "journal.sqlite3"))  # its directory is a file
    assert caught.value.remedy is not None and "journal_path" in caught.value.remedy


def test_the_store_is_safe_to_share_with_a_worker_thread(tmp_path: Path) -> None:
    """`Bridge._rejournal` writes from a worker thread while the loop writes and reads: the one
    SQLite connection is used under the store's lock, so both threads' fills all land, numbered
    once each, and every "new or not" answer is right (without the lock, some came back wrong in
    every run: a new fill answered "journaled before" would never be published)."""
    store = SqliteJournalStore(str(tmp_path / "shared.sqlite3"))
    errors: list[BaseException] = []

    def fill(exec_id: str) -> Fill:
        return Fill(
            venue="kraken", ts=1.0, order_id="O", exec_id=exec_id, symbol="BTC/USD", side=Side.BUY,
            price=Decimal(1), qty=Decimal(1), cost=Decimal(1), fee=Decimal(0), fee_asset=None,
        )  # fmt: skip

    wrong: list[str] = []

    def write(prefix: str) -> None:
        # New fills and replays interleaved: "new or not" is read from the connection's change
        # count, which the other thread's statements would overwrite if they ran in between.
        try:
            for i in range(300):
                if store.add_fill("s", fill(f"{prefix}-{i}")) is not True:
                    wrong.append(f"{prefix}-{i} new, answered journaled before")
                if store.add_fill("s", fill(f"{prefix}-0")) is not False:
                    wrong.append(f"{prefix}-0 again, answered new")
                store.fills_after("kraken", "s", after=0, limit=5)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    with contextlib.closing(store):
        threads = [threading.Thread(target=write, args=(name,)) for name in ("loop", "worker")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == [] and wrong == []
        numbered = store.fills_after("kraken", "s", after=0, limit=1000)
        assert sorted(seq for seq, _ in numbered) == list(range(1, 601))
