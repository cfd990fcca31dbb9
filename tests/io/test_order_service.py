"""The Bridge's order service against the simulators: write-ahead, idempotency by client order id
(also across a restart and a SIGKILL between send and answer), no lost cancel, fills paging.

In memory on a FakeClock (tests/io/rig.py), except the SIGKILL test: a child process runs its own
Bridge against a simulator this test runs on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from brokerbridge.core.clock import FakeClock
from brokerbridge.core.config import Config
from brokerbridge.core.errors import (
    InvalidRequest,
    NotSent,
    OrderConflict,
    OrderRejected,
    UnknownOrder,
    wire_error_of,
)
from brokerbridge.core.events import Fill, Side
from brokerbridge.core.orders import AmendRequest, OrderRequest
from brokerbridge.io.journal_store import SqliteJournalStore
from brokerbridge.services.unknown_orders import UNKNOWN_GIVE_UP_S
from brokerbridge.sim.kraken import KrakenSimulator
from brokerbridge.venues.kraken.rest import HISTORY_PAGE
from tests.io.primary_rig import GGAL, primary_rig
from tests.io.rig import Rig, kraken_config, rig, rig_on
from tests.io.test_recovery import market_buy

pytestmark = pytest.mark.timeout(90)


def limit(client_order_id: str | None, qty: str = "0.01", price: str = "1000.0") -> OrderRequest:
    """A buy far below the simulated market: it rests, open, until canceled."""
    return OrderRequest(
        venue="kraken",
        symbol="BTC/USD",
        side=Side.BUY,
        qty=Decimal(qty),
        price=Decimal(price),
        client_order_id=client_order_id,
    )


def sim_orders(sim: KrakenSimulator, client_order_id: str) -> list[Any]:
    return [o for o in sim.exchange.account.orders.values() if o.cl_ord_id == client_order_id]


def simulator(seed: int) -> KrakenSimulator:
    return KrakenSimulator(port=0, seed=seed, clock=FakeClock(), tick_s=0.01)


@contextlib.asynccontextmanager
async def journaled(
    sim: KrakenSimulator, journal: Path, *, loopback: bool = False, **changes: Any
) -> AsyncIterator[Rig]:
    """A Bridge journaling to `journal` on `sim`, on the simulator's clock."""
    config = Config(kraken=kraken_config(sim, **changes), journal_path=str(journal))
    async with rig_on(sim, sim.exchange.clock, config, loopback=loopback) as r:
        yield r


async def warm(r: Rig) -> None:
    """Symbols loaded and the account's first reads done: the next private call is the order's."""
    await r.until(lambda: r.bridge.readiness()["kraken"].ready, what="kraken ready")
    await r.run_for(1.0)


# -- idempotency ---------------------------------------------------------------------------------
async def test_a_retry_with_the_same_client_order_id_sends_nothing_again() -> None:
    async with rig() as r:
        first = await r.call(r.bridge.place(limit("retry-1")))
        assert first.status == "accepted" and not first.duplicate and first.via == "rest"
        again = await r.call(r.bridge.place(limit("retry-1")))
        assert again.duplicate and again.order_id == first.order_id and again.via is None
        (order,) = sim_orders(r.sim, "retry-1")
        assert order.txid == first.order_id


async def test_a_client_order_id_reused_for_another_order_is_a_conflict() -> None:
    async with rig() as r:
        await r.call(r.bridge.place(limit("reused-1")))
        with pytest.raises(OrderConflict) as conflict:
            await r.call(r.bridge.place(limit("reused-1", qty="0.02")))
        assert conflict.value.code == "order_conflict" and "qty 0.01 → 0.02" in conflict.value.message
        assert len(sim_orders(r.sim, "reused-1")) == 1


async def test_a_retry_while_the_first_attempt_is_under_way_waits_for_its_outcome() -> None:
    async with rig(hold_accounts=False) as r:
        await r.faults(latency_ms=400)  # the first AddOrder is still in flight when the retry comes
        loop = asyncio.get_running_loop()
        first = loop.create_task(r.bridge.place(limit("twice-1")))
        await r.step(0.1)
        second = loop.create_task(r.bridge.place(limit("twice-1")))
        await r.until(lambda: first.done() and second.done(), what="both answered")
        acks = [first.result(), second.result()]
        assert [a.duplicate for a in acks] == [False, True]
        assert acks[0].order_id == acks[1].order_id is not None
        assert len(sim_orders(r.sim, "twice-1")) == 1


async def test_a_client_order_id_the_venue_refused_is_refused_again_without_sending() -> None:
    async with rig(hold_accounts=False) as r:
        with pytest.raises(OrderRejected) as first:
            # More than the demo account's dollars: a refusal only the venue can make.
            await r.call(r.bridge.place(limit("small-1", qty="1000")))
        calls = r.kraken.rest.calls
        with pytest.raises(OrderRejected) as again:
            await r.call(r.bridge.place(limit("small-1", qty="1000")))
        assert again.value.message == first.value.message
        assert "EOrder:Insufficient funds" in again.value.message
        assert r.kraken.rest.calls == calls  # nothing went to the venue
        assert sim_orders(r.sim, "small-1") == []


async def test_the_write_ahead_row_is_on_disk_before_the_venue_sees_the_order(tmp_path: Path) -> None:
    journal = tmp_path / "j.sqlite3"
    async with simulator(11) as sim:
        async with journaled(sim, journal, request_timeout=30.0) as r:
            await warm(r)
            await r.faults(lose_answers=1)  # booked, never answered: the call hangs
            task = asyncio.get_running_loop().create_task(r.bridge.place(limit("ahead-1")))
            await r.until(lambda: bool(sim_orders(sim, "ahead-1")), what="the venue has the order")
            # Another reader of the file (what a crash right now would leave) sees the row.
            with contextlib.closing(sqlite3.connect(journal)) as db:
                rows = db.execute("SELECT client_order_id, state FROM orders").fetchall()
            assert rows == [("ahead-1", "sending")]
            await r.until(task.done, what="the submit timed out")
            assert task.result().status == "unknown"


# -- not sent -------------------------------------------------------------------------------------
LAPSED = "this node's lease of kraken (epoch 1) is not valid now"


@pytest.mark.parametrize("refusal", ["connection down", "lease lapsed"])
async def test_an_order_refused_before_anything_was_sent_frees_its_id_for_one_retry(refusal: str) -> None:
    """Refused before a byte of it was written — the venue's address refusing connections (a
    single process whose link is down), or a cluster holder's `guarded` transports once its lease
    lapsed — the order is `NotSent`, not UNKNOWN: no row, no placeholder on executions, and the
    retry with the same client order id is placed, once (not answered `unknown, duplicate`)."""
    why: list[str] = []
    clock = FakeClock()
    async with (
        KrakenSimulator(port=0, seed=16, clock=clock, tick_s=0.01) as sim,
        rig_on(
            sim,
            clock,
            Config(kraken=kraken_config(sim)),
            hold_accounts=False,
            barred=lambda: why[0] if why else None,
        ) as r,
    ):
        await r.call(r.kraken.ensure_symbols())  # AssetPairs read: the next call is the order's
        assert r.network is not None
        if refusal == "connection down":
            r.network.unplug(sim)
        else:
            why.append(LAPSED)
        calls = r.kraken.rest.calls
        with pytest.raises(NotSent) as refused:
            await r.call(r.bridge.place(limit("ns-1")))
        error = refused.value
        assert error.code == "not_sent" and wire_error_of(error).code == "not_sent"  # type: ignore[union-attr]
        assert "order ns-1 was not sent to kraken" in error.message
        assert "nothing reached the venue" in error.message
        assert (LAPSED if refusal == "lease lapsed" else "ConnectError") in error.message
        assert "same client order id (ns-1)" in error.remedy
        assert r.kraken.rest.calls == calls + (1 if refusal == "connection down" else 0)
        state = r.bridge.state["kraken"]
        assert r.bridge.journal_store is not None
        assert r.bridge.journal_store.order("kraken", state.scope, "ns-1") is None  # the id is free
        assert state.journal.unknown_orders() == [] and "ns-1" not in state.journal.orders
        assert sim_orders(sim, "ns-1") == []

        r.network.unplug(sim, plugged=True)
        why.clear()
        again = await r.call(r.bridge.place(limit("ns-1")))
        assert again.status == "accepted" and not again.duplicate
        assert [o.txid for o in sim_orders(sim, "ns-1")] == [again.order_id]  # placed once


def fill_the_rate_counter(r: Rig, seconds: float) -> None:
    """Kraken's trading counter on BTC/USD at the bridge's stop: a new order waits ~`seconds`."""
    counter = r.kraken.trade_counter
    counter.admit("BTC/USD", counter.capacity, r.clock.monotonic(), max_wait=0.0)
    counter.admit("BTC/USD", seconds - 1.0, r.clock.monotonic(), max_wait=60.0)


async def test_an_order_waiting_for_room_when_the_bridge_stops_leaves_no_row(tmp_path: Path) -> None:
    """The rate model comes before the write-ahead: an order still waiting for room on Kraken's
    trading counter when the bridge stops (or dies) was never sent and leaves nothing journaled —
    after the restart it is not followed as UNKNOWN, and the retry with its id is placed once."""
    journal = tmp_path / "j.sqlite3"
    async with simulator(17) as sim:
        async with journaled(sim, journal, order_queue_s=10.0) as r:
            await warm(r)
            fill_the_rate_counter(r, 5.0)
            waiting = asyncio.get_running_loop().create_task(r.bridge.place(limit("wait-1")))
            await r.run_for(1.0)  # it waits ~5 s for room
            assert not waiting.done()
            with contextlib.closing(sqlite3.connect(journal)) as db:
                assert db.execute("SELECT client_order_id FROM orders").fetchall() == []
        with pytest.raises(BaseException):  # noqa: B017 (stopped under it: cancelled, or ServiceUnavailable)
            await waiting
        assert sim_orders(sim, "wait-1") == []
        async with journaled(sim, journal) as r:
            assert r.bridge.state["kraken"].journal.unknown_orders() == []  # nothing to follow
            again = await r.call(r.bridge.place(limit("wait-1")))
            assert again.status == "accepted" and not again.duplicate
            assert [o.txid for o in sim_orders(sim, "wait-1")] == [again.order_id]


# -- unknown outcomes and restarts ------------------------------------------------------------
async def test_an_unknown_order_is_followed_again_after_a_restart_and_stays_idempotent(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "j.sqlite3"
    async with simulator(12) as sim:
        async with journaled(sim, journal, request_timeout=0.3) as r:
            await warm(r)
            await r.faults(lose_answers=1)
            ack = await r.call(r.bridge.place(limit("restart-1")))
            assert ack.status == "unknown" and ack.order_id is None
            # Stopped before any read of the venue's orders could decide it.
        (venue_order,) = sim_orders(sim, "restart-1")

        async with journaled(sim, journal) as r:
            placeholder = r.bridge.state["kraken"].journal.orders
            # At once: published unknown, among the open orders; a retry sends nothing.
            assert placeholder["restart-1"].status == "unknown"
            assert "restart-1" in {o.order_id for o in r.bridge.open_orders("kraken")}
            again = await r.call(r.bridge.place(limit("restart-1")))
            assert again.duplicate and again.status == "unknown"
            await r.until(lambda: placeholder["restart-1"].status != "unknown", what="decided")
            assert placeholder["restart-1"].status == "resolved"
            assert venue_order.txid in (placeholder["restart-1"].reason or "")
            assert "restart-1" not in {o.order_id for o in r.bridge.open_orders("kraken")}
            again = await r.call(r.bridge.place(limit("restart-1")))
            assert again.duplicate and again.status == "accepted" and again.order_id == venue_order.txid
        assert len(sim_orders(sim, "restart-1")) == 1
        store = SqliteJournalStore(str(journal))
        row = store.order("kraken", r.kraken.journal_scope, "restart-1")
        store.close()
        assert row is not None and (row.state, row.order_id) == ("accepted", venue_order.txid)


@pytest.mark.parametrize(
    ("others", "apart"),
    [
        (HISTORY_PAGE + 5, 0.2),  # it is not on the newest page
        (10, 1.0),  # it is, but the reconciliation of the start read that page, not the settling
    ],
)
async def test_an_unknown_order_closed_before_others_is_found_after_a_restart(
    tmp_path: Path, others: int, apart: float
) -> None:
    """A restarted bridge's first ClosedOrders read took the newest page only (50 orders), and
    each read after it only what closed since the read before, whoever made it: a submit left
    unknown that had closed before a page of other orders, or before others closed well after it
    and read first by the reconciliation of the start, was in no read that settled it — "never
    arrived; safe to resend" 60 s later, though the venue had booked it (cluster chaos seed
    231335: a new holder's first reads are the same). The reads that settle an unknown submit
    reach back to when it was sent."""
    journal = tmp_path / "j.sqlite3"
    async with simulator(31) as sim:
        async with journaled(sim, journal, request_timeout=0.3) as r:
            await warm(r)
            await r.faults(lose_answers=1)
            buy = msgspec.structs.replace(limit("lost-1"), type="market", price=None)  # it closes at once
            ack = await r.call(r.bridge.place(buy))
            assert ack.status == "unknown" and ack.order_id is None
        (venue_order,) = sim_orders(sim, "lost-1")
        assert venue_order.status == "closed"
        # Another client of the account: orders closed after it.
        async with rig_on(sim, sim.exchange.clock, Config(kraken=kraken_config(sim))) as other:
            await warm(other)
            for _ in range(others):
                await market_buy(other)
                await other.run_for(apart)

        async with journaled(sim, journal) as r:
            placeholder = r.bridge.state["kraken"].journal.orders
            assert placeholder["lost-1"].status == "unknown"
            await r.until(
                lambda: placeholder["lost-1"].status != "unknown",
                within=UNKNOWN_GIVE_UP_S + 30.0,
                what="decided",
            )
            assert placeholder["lost-1"].status == "resolved", placeholder["lost-1"].reason
            assert venue_order.txid in (placeholder["lost-1"].reason or "")
            again = await r.call(r.bridge.place(buy))
            assert again.duplicate and again.order_id == venue_order.txid
        assert len(sim_orders(sim, "lost-1")) == 1


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from decimal import Decimal
    from brokerbridge.bridge import Bridge
    from brokerbridge.core.config import Config, KrakenConfig
    from brokerbridge.core.events import Side
    from brokerbridge.core.orders import AmendRequest, OrderRequest
    from brokerbridge.core.secret import Secret

    rest, ws, ws_auth, key, secret, journal = sys.argv[1:7]

    async def main() -> None:
        # The answer is held back: this waits until it is killed.
        kraken = KrakenConfig(
            rest_url=rest, ws_url=ws, ws_auth_url=ws_auth, api_key=key, api_secret=Secret(secret),
            request_timeout=600.0, request_deadline=600.0,
        )
        config = Config(kraken=kraken, journal_path=journal)
        async with Bridge(config, hold_accounts=False) as bridge:
            print("placing", flush=True)
            await bridge.place(OrderRequest(
                venue="kraken", symbol="BTC/USD", side=Side.BUY, qty=Decimal("0.01"),
                price=Decimal("1000.0"), client_order_id="killed-1",
            ))
            print("answered", flush=True)

    asyncio.run(main())
    """
)


async def test_a_bridge_killed_between_send_and_answer_never_sends_the_order_twice(tmp_path: Path) -> None:
    # The child signs with the real clock's nonces; the Bridge started after it signs with this
    # clock's, which must therefore come later (Kraken's nonces only go up, per key).
    clock = FakeClock(wall_start=time.time() + 3600.0)
    journal = tmp_path / "j.sqlite3"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    async with KrakenSimulator(port=0, seed=15, clock=clock, tick_s=0.01) as sim:
        sim.faults.apply({"lose_answers": 1})
        ep = sim.endpoints
        args = [ep.rest, ep.ws_public, ep.ws_private, ep.api_key, ep.api_secret, str(journal)]
        child = await asyncio.create_subprocess_exec(
            sys.executable, str(script), *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            # Wait for the venue to book the child's order (real time passes for the child: it
            # starts a Python process; the simulator's clock moves along meanwhile).
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60.0
            while not sim_orders(sim, "killed-1"):
                assert child.returncode is None, await child.communicate()
                assert loop.time() < deadline, "the child's order never reached the simulator"
                await clock.advance(0.05)
                await asyncio.sleep(0.01)
            os.kill(child.pid, signal.SIGKILL)
            out, _ = await child.communicate()
        finally:
            if child.returncode is None:
                child.kill()
                await child.communicate()
        assert child.returncode == -signal.SIGKILL and b"answered" not in out
        (venue_order,) = sim_orders(sim, "killed-1")

        async with journaled(sim, journal, loopback=True) as r:
            journal_of = r.bridge.state["kraken"].journal
            assert journal_of.orders["killed-1"].status == "unknown"  # published at start
            assert "killed-1" in {o.order_id for o in r.bridge.open_orders("kraken")}
            await r.until(
                lambda: journal_of.orders["killed-1"].status == "resolved", what="the unknown order resolved"
            )
            assert venue_order.txid in (journal_of.orders["killed-1"].reason or "")
            again = await r.call(r.bridge.place(limit("killed-1")))
            assert again.duplicate and again.order_id == venue_order.txid
        assert len(sim_orders(sim, "killed-1")) == 1


# -- no lost cancel ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fault",
    [
        {"rest_http_errors": 1},  # the cancel never reached the venue
        {"rest_headers_only": 1},  # it did, and its answer was lost
    ],
)
async def test_a_cancel_whose_answer_never_came_ends_canceled_at_the_venue(fault: dict[str, Any]) -> None:
    async with rig(hold_accounts=False, request_timeout=0.3, request_deadline=1.0) as r:
        ack = await r.call(r.bridge.place(limit("cancel-1")))
        assert ack.order_id is not None
        await r.faults(**fault)
        cancel = await r.call(r.bridge.cancel("kraken", ack.order_id))
        assert cancel.status == "pending" and cancel.client_order_id == "cancel-1"
        (order,) = sim_orders(r.sim, "cancel-1")
        await r.until(lambda: order.status == "canceled", what="canceled at the venue")
        await r.until(lambda: not r.bridge.orders._driving, what="the cancel's retries ended")
        assert r.bridge.journal_store is not None
        assert r.bridge.journal_store.ops("kraken", r.kraken.journal_scope, "cancel") == []


async def test_a_cancel_of_an_order_still_unknown_is_carried_out_once_it_is_found() -> None:
    async with rig(request_timeout=0.3) as r:
        await warm(r)
        await r.faults(lose_answers=1)
        ack = await r.call(r.bridge.place(limit("later-1")))
        assert ack.status == "unknown"
        cancel = await r.call(r.bridge.cancel("kraken", client_order_id="later-1"))
        assert cancel.status == "pending" and cancel.canceled == 0
        (order,) = sim_orders(r.sim, "later-1")
        assert order.status == "open"
        await r.until(lambda: order.status == "canceled", what="canceled once resolved")


async def test_a_cancel_pending_when_the_bridge_stopped_is_carried_on_after_the_restart(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "j.sqlite3"
    async with simulator(16) as sim:
        async with journaled(sim, journal, request_timeout=0.3) as r:
            ack = await r.call(r.bridge.place(limit("carry-1")))
            # The venue answers nothing while this bridge runs: REST fails, and the private socket
            # (where a cancel goes first) is dropped and cannot come back (its token refused, no
            # new one to be had).
            await r.faults(rest_http_errors=-1, invalidate_tokens=True, drop_now=True)
            await r.until(lambda: not r.kraken.orders_over_ws, what="the private socket down")
            assert (await r.call(r.bridge.cancel("kraken", ack.order_id))).status == "pending"
        sim.faults.apply({"rest_http_errors": 0})
        (order,) = sim_orders(sim, "carry-1")
        assert order.status == "open"
        async with journaled(sim, journal) as r:
            await r.until(lambda: order.status == "canceled", what="canceled after the restart")


# -- amend ---------------------------------------------------------------------------------------
async def test_an_amend_by_client_order_id_goes_to_the_venue_id_and_is_journaled() -> None:
    async with rig(hold_accounts=False) as r:
        ack = await r.call(r.bridge.place(limit("amend-1")))
        assert ack.order_id is not None
        amended = await r.call(
            r.bridge.amend(AmendRequest(venue="kraken", client_order_id="amend-1", price=Decimal(900)))
        )
        assert (amended.order_id, amended.client_order_id, amended.status) == (
            ack.order_id,
            "amend-1",
            "accepted",
        )
        (booked,) = sim_orders(r.sim, "amend-1")
        assert booked.price == Decimal(900)  # the venue's order, named by the client's id
        store = r.bridge.journal_store
        assert store is not None
        (amend,) = store.ops("kraken", r.kraken.journal_scope, "amend", state=None)
        assert (amend.order_id, amend.client_order_id, amend.price, amend.state) == (
            ack.order_id,
            "amend-1",
            Decimal(900),
            "done",
        )
        with pytest.raises(UnknownOrder):
            await r.call(
                r.bridge.amend(AmendRequest(venue="kraken", client_order_id="nobody-1", price=Decimal(1)))
            )


# -- Primary: its reports do not carry our client order id back ---------------------------------
async def test_a_primary_order_with_an_unknown_outcome_is_found_by_its_shape(tmp_path: Path) -> None:
    async with primary_rig(tmp_path, request_timeout=0.3) as r:
        await r.until(lambda: r.bridge.readiness()["primary"].ready, what="primary ready")
        await r.primary_faults(lose_answers=1)
        request = OrderRequest(
            venue="primary", symbol=GGAL, side=Side.BUY, qty=Decimal(10), price=Decimal(100)
        )
        ack = await r.call(r.bridge.place(request))
        assert ack.status == "unknown"
        journal = r.bridge.state["primary"].journal
        await r.until(
            lambda: journal.orders[ack.client_order_id].status != "unknown", what="decided", step=0.25
        )
        assert r.psim is not None
        (booked,) = r.psim.exchange.account.orders.values()
        assert journal.orders[ack.client_order_id].status == "resolved"
        retry = msgspec.structs.replace(request, client_order_id=ack.client_order_id)
        again = await r.call(r.bridge.place(retry))
        assert again.duplicate and again.order_id == booked.cl_ord_id


# -- fills paging ------------------------------------------------------------------------------
def fill(exec_id: str, ts: float) -> Fill:
    return Fill(
        venue="kraken",
        ts=ts,
        order_id="O-1",
        exec_id=exec_id,
        symbol="BTC/USD",
        side=Side.BUY,
        price=Decimal(100),
        qty=Decimal(1),
        cost=Decimal(100),
        fee=Decimal(0),
        fee_asset=None,
    )


async def test_a_fill_journaled_late_with_an_older_time_is_not_skipped_by_the_cursor() -> None:
    async with rig(hold_accounts=False) as r:
        store, scope = r.bridge.journal_store, r.kraken.journal_scope
        assert store is not None
        store.add_fill(scope, fill("T-2", 200.0))
        store.add_fill(scope, fill("T-3", 300.0))
        page = r.bridge.fills_page("kraken", limit=2)
        assert [f.exec_id for f in page.fills] == ["T-2", "T-3"] and page.next is not None
        # A reconciliation read finds a fill older than those paged already.
        store.add_fill(scope, fill("T-1", 100.0))
        rest = r.bridge.fills_page("kraken", after=page.next, limit=2)
        assert [f.exec_id for f in rest.fills] == ["T-1"] and rest.next is None
        assert rest.resume is not None
        assert r.bridge.fills_page("kraken", after=rest.resume).fills == []
        with pytest.raises(InvalidRequest):
            r.bridge.fills_page("kraken", after="100.0:T-1")
        with pytest.raises(InvalidRequest):
            r.bridge.fills_page("kraken", limit=0)


def test_a_journal_written_before_fills_had_a_sequence_is_numbered_in_time_order(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(
            """
            CREATE TABLE fills (venue TEXT NOT NULL, scope TEXT NOT NULL, exec_id TEXT NOT NULL,
                order_id TEXT NOT NULL, ts REAL NOT NULL, body BLOB NOT NULL,
                PRIMARY KEY (venue, scope, exec_id)) WITHOUT ROWID;
            """
        )
        encoder = msgspec.json.Encoder(decimal_format="string")
        for exec_id, ts in (("B", 2.0), ("A", 1.0), ("C", 3.0)):
            body = encoder.encode(fill(exec_id, ts))
            db.execute("INSERT INTO fills VALUES ('kraken', 's', ?, 'O-1', ?, ?)", (exec_id, ts, body))
        db.commit()
    store = SqliteJournalStore(str(path))
    try:
        assert [f.exec_id for _, f in store.fills_after("kraken", "s", after=0, limit=10)] == ["A", "B", "C"]
        assert store.add_fill("s", fill("D", 0.5))  # late, older: after the others all the same
        assert [f.exec_id for _, f in store.fills_after("kraken", "s", after=3, limit=10)] == ["D"]
        assert store.add_fill("s", fill("A", 1.0)) is False
    finally:
        store.close()
