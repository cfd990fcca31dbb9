"""`RedisJournalStore` is `JournalStore`: every public method's semantics, run against both stores
(the SQLite file and a real redis-server); the Bridge's own journal and order-service tests
(tests/io/test_journal.py, test_order_service.py) run again with the Redis store in the SQLite
store's place; then what only the Redis one has — the fence, a lost answer retried, Redis's
restart — and a holder Bridge on the Kraken simulator journaling to Redis, restarted as another
holder: no fill published twice, no client order id sent twice."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis

import brokerbridge.bridge
from brokerbridge.core.clock import FakeClock
from brokerbridge.core.config import Config
from brokerbridge.core.errors import Fenced
from brokerbridge.core.events import Fill, Side, StreamState
from brokerbridge.core.orders import OrderRequest
from brokerbridge.io.cluster.fencing import fenced_script
from brokerbridge.io.cluster.journal import _ADD_FILL, RedisJournalStore
from brokerbridge.io.cluster.keys import ClusterKeys
from brokerbridge.io.journal_store import JournalError, JournalStore, SqliteJournalStore, StoredError
from brokerbridge.sim.kraken import KrakenSimulator
from tests.io import test_journal as bridge_journal_tests
from tests.io import test_order_service as order_service_tests
from tests.io.rig import Rig, btc_usd, kraken_config, rig_on
from tests.redis_server import RedisServer

pytestmark = pytest.mark.timeout(60)

KEYS = ClusterKeys()
SCOPE = "s1"
TOKEN = "node-a 1"

Store = JournalStore  # the Protocol both stores satisfy


def fill(exec_id: str, ts: float, order_id: str = "O-1", venue: str = "kraken") -> Fill:
    return Fill(
        venue=venue,
        ts=ts,
        order_id=order_id,
        exec_id=exec_id,
        symbol="BTC/USD",
        side=Side.BUY,
        price=Decimal("100.10"),
        qty=Decimal("0.0100"),
        cost=Decimal("1.001"),
        fee=Decimal(0),
        fee_asset=None,
    )


def order(cid: str, qty: str = "0.01") -> OrderRequest:
    return OrderRequest(
        venue="kraken",
        symbol="BTC/USD",
        side=Side.BUY,
        qty=Decimal(qty),
        price=Decimal("1000.0"),
        client_order_id=cid,
    )


def redis_store(url: str, token: str = TOKEN) -> RedisJournalStore:
    return RedisJournalStore(url, KEYS, "kraken", token=token)


def hold(url: str, token: str) -> None:
    """The venue's lease now says `token` holds it (what `Lease.acquire` leaves)."""
    with redis.Redis.from_url(url) as r:
        r.set(KEYS.lease("kraken"), token)


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    made: Store
    if request.param == "sqlite":
        made = SqliteJournalStore(str(tmp_path / "j.sqlite3"))
    else:
        url = request.getfixturevalue("redis_url")
        hold(url, TOKEN)
        made = redis_store(url)
    try:
        yield made
    finally:
        made.close()


# -- the same semantics on both ------------------------------------------------------------------
def test_a_fill_is_stored_once_by_its_venue_id(store: Store) -> None:
    assert store.add_fill(SCOPE, fill("T-1", 1.5)) is True
    assert store.add_fill(SCOPE, fill("T-1", 1.5)) is False  # replayed (a snapshot, a reconciliation)
    assert store.add_fill("other", fill("T-1", 1.5)) is True  # another account's id space
    (stored,) = store.fills("kraken", SCOPE)
    assert stored == fill("T-1", 1.5) and str(stored.qty) == "0.0100"  # the venue's digits kept


def test_fills_are_the_newest_ones_oldest_first_ties_by_id(store: Store) -> None:
    for exec_id, ts in (("C", 3.0), ("A", 1.0), ("B2", 2.0), ("B1", 2.0), ("D", 1767225600.123456)):
        store.add_fill(SCOPE, fill(exec_id, ts))
    assert [f.exec_id for f in store.fills("kraken", SCOPE)] == ["A", "B1", "B2", "C", "D"]
    assert [f.exec_id for f in store.fills("kraken", SCOPE, limit=3)] == ["B2", "C", "D"]
    assert [f.exec_id for f in store.fills("kraken", SCOPE, limit=10)] == ["A", "B1", "B2", "C", "D"]
    assert store.fills("kraken", SCOPE, limit=0) == []
    assert store.fills("kraken", "nobody") == []
    assert store.fills("kraken", SCOPE)[-1].ts == 1767225600.123456  # times exact


def test_the_fills_cursor_follows_the_journal_order_not_the_fills_time(store: Store) -> None:
    store.add_fill(SCOPE, fill("T-2", 200.0))
    store.add_fill(SCOPE, fill("T-3", 300.0))
    first = store.fills_after("kraken", SCOPE, after=0, limit=2)
    assert [(seq, f.exec_id) for seq, f in first] == [(1, "T-2"), (2, "T-3")]
    # A reconciliation finds a fill older than those paged already: after the cursor all the same.
    assert store.add_fill(SCOPE, fill("T-1", 100.0))
    assert store.add_fill(SCOPE, fill("T-2", 200.0)) is False  # no number spent on a replay
    assert [(seq, f.exec_id) for seq, f in store.fills_after("kraken", SCOPE, after=2, limit=2)] == [
        (3, "T-1")
    ]
    assert store.fills_after("kraken", SCOPE, after=3, limit=5) == []
    assert [seq for seq, _ in store.fills_after("kraken", SCOPE, after=0, limit=-1)] == [1, 2, 3]
    assert store.fills_after("kraken", SCOPE, after=0, limit=0) == []
    store.add_fill("other", fill("X", 1.0))  # numbered per account
    assert [seq for seq, _ in store.fills_after("kraken", "other", after=0, limit=5)] == [1]


def test_an_order_is_written_ahead_once_and_its_outcome_recorded(store: Store) -> None:
    assert store.add_order(SCOPE, order("c-1"), ts=10.25) is True
    assert store.add_order(SCOPE, order("c-1", qty="0.02"), ts=11.0) is False  # nothing written
    row = store.order("kraken", SCOPE, "c-1")
    assert row is not None
    assert (row.state, row.order_id, row.via, row.created, row.updated, row.error) == (
        "sending",
        None,
        None,
        10.25,
        10.25,
        None,
    )
    assert row.request == order("c-1") and row.scope == SCOPE and row.venue == "kraken"
    assert store.order("kraken", SCOPE, "nope") is None and store.order("kraken", "other", "c-1") is None

    store.update_order("kraken", SCOPE, "c-1", state="accepted", ts=12.5, order_id="V-1", via="ws")
    store.update_order("kraken", SCOPE, "c-1", state="filled", ts=13.0)  # None: unchanged (COALESCE)
    row = store.order("kraken", SCOPE, "c-1")
    assert row is not None
    assert (row.state, row.order_id, row.via, row.created, row.updated) == (
        "filled",
        "V-1",
        "ws",
        10.25,
        13.0,
    )
    store.update_order("kraken", SCOPE, "ghost", state="accepted", ts=14.0)  # no row: nothing
    assert store.order("kraken", SCOPE, "ghost") is None


def test_an_error_is_kept_to_be_raised_again(store: Store) -> None:
    store.add_order(SCOPE, order("c-2"), ts=1.0)
    error = StoredError(code="order_rejected", message="EOrder:Insufficient funds", remedy="add funds")
    store.update_order("kraken", SCOPE, "c-2", state="rejected", ts=2.0, error=error)
    row = store.order("kraken", SCOPE, "c-2")
    assert row is not None and row.state == "rejected" and row.error == error


def test_orders_by_state_come_oldest_first(store: Store) -> None:
    for cid, ts in (("b", 2.0), ("a", 1.0), ("c", 3.0), ("d", 4.0)):
        store.add_order(SCOPE, order(cid), ts=ts)
    store.update_order("kraken", SCOPE, "a", state="accepted", ts=5.0, order_id="V-a")
    store.update_order("kraken", SCOPE, "c", state="unknown", ts=5.0)
    store.update_order("kraken", SCOPE, "d", state="canceled", ts=5.0, order_id="V-d")
    undecided = store.orders_in("kraken", SCOPE, ("sending", "unknown"))
    assert [(r.client_order_id, r.state) for r in undecided] == [("b", "sending"), ("c", "unknown")]
    both = store.orders_in("kraken", SCOPE, ["accepted", "unknown", "accepted"])
    assert [r.client_order_id for r in both] == ["a", "c"]
    assert store.orders_in("kraken", SCOPE, ()) == [] and store.orders_in("kraken", SCOPE, ["filled"]) == []


def test_an_order_is_found_by_the_venues_id_the_latest_row_that_names_it(store: Store) -> None:
    store.add_order(SCOPE, order("old"), ts=1.0)
    store.add_order(SCOPE, order("new"), ts=2.0)
    store.update_order("kraken", SCOPE, "new", state="accepted", ts=3.0, order_id="V-9")
    store.update_order("kraken", SCOPE, "old", state="accepted", ts=4.0, order_id="V-9")
    row = store.order_by_venue_id("kraken", SCOPE, "V-9")
    assert row is not None and row.client_order_id == "new"  # created later, whatever the update order
    # The venue renamed the order (Primary's replace): the row answers to its new id only.
    store.update_order("kraken", SCOPE, "new", state="accepted", ts=5.0, order_id="V-10")
    renamed = store.order_by_venue_id("kraken", SCOPE, "V-10")
    assert renamed is not None and renamed.client_order_id == "new"
    still = store.order_by_venue_id("kraken", SCOPE, "V-9")
    assert still is not None and still.client_order_id == "old"
    assert store.order_by_venue_id("kraken", SCOPE, "V-0") is None


def test_a_deleted_order_frees_its_client_order_id(store: Store) -> None:
    store.add_order(SCOPE, order("gone"), ts=1.0)
    store.update_order("kraken", SCOPE, "gone", state="sending", ts=1.5, order_id="V-g")
    store.delete_order("kraken", SCOPE, "gone")
    assert store.order("kraken", SCOPE, "gone") is None
    assert store.order_by_venue_id("kraken", SCOPE, "V-g") is None
    assert store.orders_in("kraken", SCOPE, ["sending"]) == []
    store.delete_order("kraken", SCOPE, "gone")  # twice: nothing
    assert store.add_order(SCOPE, order("gone", qty="0.03"), ts=2.0) is True


def test_cancels_and_amends_are_journaled_and_followed_by_state(store: Store) -> None:
    c1 = store.add_op("kraken", SCOPE, "cancel", order_id="V-1", client_order_id="c-1", ts=1.0)
    c2 = store.add_op("kraken", SCOPE, "cancel", order_id=None, client_order_id="c-2", ts=2.0)
    a1 = store.add_op(
        "kraken",
        SCOPE,
        "amend",
        order_id="V-1",
        client_order_id=None,
        ts=3.0,
        qty=Decimal("0.50"),
        price=None,
    )
    assert c1 < c2 < a1
    pending = store.ops("kraken", SCOPE, "cancel")
    assert [(o.id, o.order_id, o.client_order_id, o.state, o.created) for o in pending] == [
        (c1, "V-1", "c-1", "pending", 1.0),
        (c2, None, "c-2", "pending", 2.0),
    ]
    assert all(o.op == "cancel" and o.scope == SCOPE and o.venue == "kraken" for o in pending)
    (amend,) = store.ops("kraken", SCOPE, "amend", state=None)
    assert (amend.qty, amend.price, str(amend.qty)) == (Decimal("0.50"), None, "0.50")

    store.update_op(c2, state="done", ts=4.0, order_id="V-2")
    error = StoredError(code="unknown_order", message="EOrder:Unknown order")
    store.update_op(c1, state="failed", ts=5.0, error=error)
    assert store.ops("kraken", SCOPE, "cancel") == []
    (done,) = store.ops("kraken", SCOPE, "cancel", state="done")
    assert (done.id, done.order_id, done.client_order_id) == (c2, "V-2", "c-2")
    (failed,) = store.ops("kraken", SCOPE, "cancel", state="failed")
    assert failed.error == error
    assert [o.id for o in store.ops("kraken", SCOPE, "cancel", state=None)] == [c1, c2]
    assert store.ops("kraken", "other", "cancel", state=None) == []
    store.update_op(999, state="done", ts=6.0)  # no such op: nothing


# -- Redis only ----------------------------------------------------------------------------------
def test_every_write_of_an_old_epoch_is_refused_and_writes_nothing(redis_url: str) -> None:
    hold(redis_url, TOKEN)
    with contextlib.closing(redis_store(redis_url)) as old:
        old.add_order(SCOPE, order("c-1"), ts=1.0)
        op = old.add_op("kraken", SCOPE, "cancel", order_id="V-1", client_order_id="c-1", ts=1.0)
        hold(redis_url, "node-b 2")  # another node took over
        writes = [
            lambda: old.add_fill(SCOPE, fill("T-1", 1.0)),
            lambda: old.add_order(SCOPE, order("c-2"), ts=2.0),
            lambda: old.update_order("kraken", SCOPE, "c-1", state="accepted", ts=2.0, order_id="V-1"),
            lambda: old.delete_order("kraken", SCOPE, "c-1"),
            lambda: old.add_op("kraken", SCOPE, "amend", order_id="V-1", client_order_id=None, ts=2.0),
            lambda: old.update_op(op, state="done", ts=2.0),
        ]
        for write in writes:
            with pytest.raises(Fenced) as refused:
                write()
            assert refused.value.epoch == 1 and refused.value.holder == "node-b 2"
        # Nothing of it landed; the new holder reads the journal as the old one left it.
        with contextlib.closing(redis_store(redis_url, "node-b 2")) as new:
            assert new.fills("kraken", SCOPE) == []
            row = new.order("kraken", SCOPE, "c-1")
            assert row is not None and row.state == "sending"
            assert new.order("kraken", SCOPE, "c-2") is None
            assert [o.state for o in new.ops("kraken", SCOPE, "cancel")] == ["pending"]
            assert new.ops("kraken", SCOPE, "amend", state=None) == []
            assert new.add_fill(SCOPE, fill("T-1", 1.0)) is True


def test_a_fill_write_retried_after_its_answer_was_lost_still_says_new(redis_url: str) -> None:
    """The link retries a command whose connection broke; the script may have run. The same nonce
    again answers "new", so the Bridge still publishes the fill (a False would drop it)."""
    hold(redis_url, TOKEN)
    with redis.Redis.from_url(redis_url) as r:
        add = fenced_script(r, _ADD_FILL)
        keys = [KEYS.lease("kraken")] + [
            KEYS.journal("kraken", SCOPE, part) for part in ("fills", "fills:seq", "fills:ts", "fills:n")
        ]
        body = msgspec.json.Encoder(decimal_format="string").encode(fill("T-1", 1.0))
        args = [TOKEN, "T-1", body, "1.0"]
        nonce = KEYS.journal("kraken", SCOPE, "w:abc")
        assert add(keys=[*keys, nonce], args=args) == 1
        assert add(keys=[*keys, nonce], args=args) == 1  # the retry of the same write
        assert add(keys=[*keys, KEYS.journal("kraken", SCOPE, "w:def")], args=args) == 0  # a replay
        assert r.zcard(keys[2]) == 1


def test_the_journal_survives_redis_being_killed(redis_url: str, redis_server: RedisServer) -> None:
    """appendfsync always (the fixture's): what a write returned is on disk; SIGKILL loses none."""
    hold(redis_url, TOKEN)
    with contextlib.closing(redis_store(redis_url)) as store:
        assert store.journal_mode() == "aof-always"
        store.add_fill(SCOPE, fill("T-1", 1.0))
        store.add_order(SCOPE, order("c-1"), ts=2.0)
        redis_server.kill()
        with pytest.raises(JournalError) as down:
            store.add_fill(SCOPE, fill("T-2", 2.0))
        assert "unreachable" in down.value.message and "127.0.0.1" in down.value.message
        redis_server.start()
        assert [f.exec_id for f in store.fills("kraken", SCOPE)] == ["T-1"]  # the pool reconnects
        assert store.add_fill(SCOPE, fill("T-2", 2.0)) is True
        assert [seq for seq, _ in store.fills_after("kraken", SCOPE, after=0, limit=5)] == [1, 2]
        assert store.order("kraken", SCOPE, "c-1") is not None


def test_a_store_keeps_its_own_venue_only(redis_url: str) -> None:
    hold(redis_url, TOKEN)
    with contextlib.closing(redis_store(redis_url)) as store:
        with pytest.raises(JournalError) as wrong:
            store.add_fill(SCOPE, fill("T-1", 1.0, venue="primary"))
        assert "kraken" in wrong.value.message and "primary" in wrong.value.message


def test_persistence_weaker_than_fsync_always_and_eviction_are_named(redis_url: str) -> None:
    hold(redis_url, TOKEN)
    with redis.Redis.from_url(redis_url) as r, contextlib.closing(redis_store(redis_url)) as store:
        assert store.durability_warnings() == []
        try:
            r.config_set("no-appendfsync-on-rewrite", "yes")
            assert store.journal_mode() == "aof-always-not-while-rewriting"
            r.config_set("appendfsync", "everysec")
            assert store.journal_mode() == "aof-everysec"
            r.config_set("appendonly", "no")
            assert store.journal_mode() == "none"
            r.config_set("maxmemory-policy", "allkeys-lru")
            persistence, eviction = store.durability_warnings()
            assert "persistence is none" in persistence and "published again" in persistence
            assert "allkeys-lru" in eviction and "noeviction" in eviction
        finally:
            r.config_set("maxmemory-policy", "noeviction")
            r.config_set("appendonly", "yes")
            r.config_set("appendfsync", "always")
            r.config_set("no-appendfsync-on-rewrite", "no")


# -- a holder Bridge on it -----------------------------------------------------------------------
@contextlib.asynccontextmanager
async def holder(sim: KrakenSimulator, clock: FakeClock, url: str, token: str) -> AsyncIterator[Rig]:
    """A Bridge on `sim` journaling to Redis under `token` (a holder of the venue's lease)."""
    hold(url, token)
    with contextlib.closing(redis_store(url, token)) as store:
        async with rig_on(sim, clock, Config(kraken=kraken_config(sim)), journal_store=store) as r:
            yield r


async def live(r: Rig) -> Any:
    executions = r.collect("executions")
    await r.until(lambda: executions.states("kraken:executions")[-1:] == [StreamState.LIVE])
    return executions


async def test_a_new_holder_neither_republishes_a_fill_nor_sends_an_order_again(redis_url: str) -> None:
    clock = FakeClock()
    async with KrakenSimulator(port=0, seed=11, clock=clock, tick_s=0.01) as sim:
        async with holder(sim, clock, redis_url, "node-a 1") as a:
            executions = await live(a)
            ack = await a.place(btc_usd("0.02", client_order_id="once-1"))
            assert ack.status == "accepted"
            await a.until(lambda: executions.of(Fill), what="fill delivered")
            delivered = {f.exec_id for f in executions.of(Fill)}
            assert delivered == set(sim.exchange.account.trades)

        # Node b takes the lease (a new epoch) and starts its own Bridge on the same journal.
        async with holder(sim, clock, redis_url, "node-b 2") as b:
            assert {f.exec_id for f in b.bridge.fills("kraken")} == delivered  # restored from Redis
            executions = await live(b)
            await b.run_for(3.0)
            assert executions.of(Fill) == []  # the venue's replay of them is not published again
            again = await b.place(btc_usd("0.02", client_order_id="once-1"))
            assert again.duplicate and again.order_id == ack.order_id
            assert [o for o in sim.exchange.account.orders.values() if o.cl_ord_id == "once-1"] != []
            assert len([o for o in sim.exchange.account.orders.values() if o.cl_ord_id == "once-1"]) == 1
            page = b.bridge.fills_page("kraken")
            assert {f.exec_id for f in page.fills} == delivered


# -- the Bridge's own tests, on the Redis store ----------------------------------------------------
# Every test there whose subject is the journal's behaviour through the Bridge (not the SQLite
# file itself: WAL mode, a row read with sqlite3, a child process, the old-schema migration).
# Left out for time only (this file stays near 20 s): three reconciliation tests of 4–13 s each,
# whose journal part the others cover.
BRIDGE_TESTS: list[tuple[Callable[..., Coroutine[Any, Any, None]], dict[str, Any]]] = [
    (order_service_tests.test_a_retry_with_the_same_client_order_id_sends_nothing_again, {}),
    (order_service_tests.test_a_client_order_id_reused_for_another_order_is_a_conflict, {}),
    (order_service_tests.test_a_retry_while_the_first_attempt_is_under_way_waits_for_its_outcome, {}),
    (order_service_tests.test_a_client_order_id_the_venue_refused_is_refused_again_without_sending, {}),
    (order_service_tests.test_an_unknown_order_is_followed_again_after_a_restart_and_stays_idempotent, {}),
    (
        order_service_tests.test_a_cancel_whose_answer_never_came_ends_canceled_at_the_venue,
        {"fault": {"rest_http_errors": 1}},
    ),
    (
        order_service_tests.test_a_cancel_whose_answer_never_came_ends_canceled_at_the_venue,
        {"fault": {"rest_headers_only": 1}},
    ),
    (order_service_tests.test_a_cancel_of_an_order_still_unknown_is_carried_out_once_it_is_found, {}),
    (order_service_tests.test_a_cancel_pending_when_the_bridge_stopped_is_carried_on_after_the_restart, {}),
    (order_service_tests.test_an_amend_by_client_order_id_goes_to_the_venue_id_and_is_journaled, {}),
    (order_service_tests.test_a_fill_journaled_late_with_an_older_time_is_not_skipped_by_the_cursor, {}),
    (bridge_journal_tests.test_fills_made_while_the_private_stream_was_down_are_recovered_once, {}),
    (bridge_journal_tests.test_fills_lost_in_a_stall_are_recovered_though_newer_fills_arrive_first, {}),
    (bridge_journal_tests.test_fills_lost_in_a_stall_are_recovered_before_the_order_reads, {}),
    (bridge_journal_tests.test_fills_lost_in_a_stall_shorter_than_the_watchdog_are_recovered, {}),
    (
        bridge_journal_tests.test_a_lost_message_with_no_silence_and_nothing_after_it_is_found_by_the_periodic_read,
        {},
    ),
    (bridge_journal_tests.test_more_fills_while_away_than_a_snapshot_holds_are_all_recovered, {}),
    (bridge_journal_tests.test_callers_reading_orders_side_by_side_share_one_read, {}),
    (bridge_journal_tests.test_an_unanswered_submit_is_unknown_until_reconciliation_finds_it, {}),
    (bridge_journal_tests.test_trades_missed_during_a_reconnect_are_backfilled_from_rest, {}),
]


def _name(case: tuple[Callable[..., Any], dict[str, Any]]) -> str:
    test, params = case
    return test.__name__ + "".join(f"[{k}]" for value in params.values() for k in value)


@pytest.mark.parametrize("case", BRIDGE_TESTS, ids=[_name(case) for case in BRIDGE_TESTS])
async def test_the_bridges_journal_tests_pass_on_the_redis_store(
    case: tuple[Callable[..., Coroutine[Any, Any, None]], dict[str, Any]],
    redis_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Wherever a Bridge (or the test) opens the journal at a path, it gets the Redis store: a
    restart "on the same file" is a restart on the same Redis, as a new holder's is."""
    hold(redis_url, TOKEN)
    opened: list[RedisJournalStore] = []

    def open_store(path: str | None = None) -> RedisJournalStore:
        opened.append(redis_store(redis_url))
        return opened[-1]

    for module in (brokerbridge.bridge, order_service_tests, bridge_journal_tests):
        monkeypatch.setattr(module, "SqliteJournalStore", open_store)
    test, params = case
    if "tmp_path" in inspect.signature(test).parameters:
        params = {**params, "tmp_path": tmp_path}
    await test(**params)
    assert opened  # the test ran on Redis, not on a file
