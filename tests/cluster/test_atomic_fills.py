"""A holder's fill is journaled and streamed in ONE fenced write (io/cluster/journal.py with
`stream_maxlen`): a lease lost right after the journal's write cannot leave the fill journaled and
never streamed (cluster chaos seed 1101 lost one that way when the publisher streamed it at the end
of the loop turn); the publisher skips fills, so none is streamed twice; the reader follows the
journal's numbering and the publisher's side by side in the executions stream; a fill the journal
refused is streamed once when a later try journals it (`Bridge._rejournal`)."""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal
from typing import Any

import msgspec
import pytest
import redis
import redis.asyncio

from brokerbridge.core.clock import FakeClock
from brokerbridge.core.config import Config
from brokerbridge.core.errors import Fenced
from brokerbridge.core.events import Fill, OrderUpdate, StreamState
from brokerbridge.io.cluster.codec import JOURNAL_WRITER, PUBLISHER, Entry, decode_entry, encode_entry
from brokerbridge.io.cluster.fencing import fenced_script
from brokerbridge.io.cluster.journal import _ADD_FILL, RedisJournalStore
from brokerbridge.io.cluster.keys import ClusterKeys
from brokerbridge.io.cluster.link import open_redis
from brokerbridge.io.cluster.publisher import EventPublisher
from brokerbridge.io.cluster.reader import StreamReader
from brokerbridge.io.journal_store import JournalError
from brokerbridge.sim.kraken import KrakenSimulator
from tests.cluster.test_journal import fill
from tests.cluster.waiting import until
from tests.io.rig import btc_usd, kraken_config, rig_on

pytestmark = pytest.mark.timeout(60)

KEYS = ClusterKeys()
V = "kraken"
SCOPE = "s1"
TOKEN = "node-a 1"
EXECUTIONS = f"{V}:executions"
STREAM = KEYS.events(V, EXECUTIONS)


def update(cum: str) -> OrderUpdate:
    return OrderUpdate(
        venue=V, ts=1.0, order_id="O-1", exec_type="trade", status="partially_filled", cum_qty=Decimal(cum)
    )


def hold(url: str, token: str) -> None:
    with redis.Redis.from_url(url) as r:
        r.set(KEYS.lease(V), token)


def holder_store(url: str, token: str = TOKEN, maxlen: int = 1000) -> RedisJournalStore:
    """The store as a holder opens it (cluster/holder.py): fills streamed in the journal's write."""
    return RedisJournalStore(url, KEYS, V, token=token, stream_maxlen=maxlen)


def streamed(url: str) -> list[Entry]:
    with redis.Redis.from_url(url) as r:
        return entries_of(r)


def entries_of(r: redis.Redis) -> list[Entry]:
    return [decode_entry(fields) for _, fields in r.xrange(STREAM)]


def streamed_fills(r: redis.Redis) -> list[str]:
    return [e.event.exec_id for e in entries_of(r) if isinstance(e.event, Fill)]


def test_a_fill_journaled_is_in_the_stream_even_when_the_lease_is_lost_right_after(redis_url: str) -> None:
    """What failed before: the journal took the fill, the lease went to another node before the
    publisher's flush, and the stream never got it."""
    hold(redis_url, TOKEN)
    with contextlib.closing(holder_store(redis_url)) as store:
        assert store.add_fill(SCOPE, fill("T-1", 1.0)) is True
        hold(redis_url, "node-b 2")  # fenced the instant after the journal's write
        with pytest.raises(Fenced):
            store.add_fill(SCOPE, fill("T-2", 1.0))
    entries = streamed(redis_url)
    assert [e.event for e in entries] == [fill("T-1", 1.0)]  # T-2: neither journaled nor streamed
    # The publisher's encoding, numbered by the fill's journal seq, its writer named.
    assert entries[0] == Entry(fill("T-1", 1.0), 1, "node-a", 1, JOURNAL_WRITER)
    with contextlib.closing(holder_store(redis_url, "node-b 2")) as new:
        assert [(seq, f.exec_id) for seq, f in new.fills_after(V, SCOPE, after=0, limit=10)] == [(1, "T-1")]
    with redis.Redis.from_url(redis_url) as r:
        fields = r.xrange(STREAM)[0][1]
    expected = encode_entry(fill("T-1", 1.0), epoch=1, node="node-a", seq=1, writer=JOURNAL_WRITER)
    assert fields == {(k if isinstance(k, bytes) else k.encode()): v for k, v in expected.items()}


def test_a_replayed_or_retried_fill_is_streamed_once(redis_url: str) -> None:
    """A venue's replay answers "journaled before" and streams nothing; the link's retry of a write
    whose answer was lost (the same nonce) answers "new" and streams nothing again either."""
    hold(redis_url, TOKEN)
    with contextlib.closing(holder_store(redis_url)) as store:
        assert store.add_fill(SCOPE, fill("T-1", 1.0)) is True
        assert store.add_fill(SCOPE, fill("T-1", 1.0)) is False
        assert store.add_fill(SCOPE, fill("T-2", 1.0)) is True
    with redis.Redis.from_url(redis_url) as r:
        add = fenced_script(r, _ADD_FILL)
        keys = [KEYS.lease(V)] + [
            KEYS.journal(V, SCOPE, p) for p in ("fills", "fills:seq", "fills:ts", "fills:n")
        ]
        nonce = KEYS.journal(V, SCOPE, "w:lost-answer")
        body = msgspec.json.Encoder(decimal_format="string").encode(fill("T-3", 1.0))
        entry = encode_entry(fill("T-3", 1.0), epoch=1, node="node-a", writer=JOURNAL_WRITER)
        args: list[Any] = [TOKEN, "T-3", body, "1.0", 1000]
        for name, value in entry.items():
            args += (name, value)
        assert add(keys=[*keys, nonce, STREAM], args=args) == 1
        assert add(keys=[*keys, nonce, STREAM], args=args) == 1  # the retry: "new", not streamed again
    entries = streamed(redis_url)
    assert [(e.event.exec_id, e.seq) for e in entries if isinstance(e.event, Fill)] == [
        ("T-1", 1),
        ("T-2", 2),
        ("T-3", 3),
    ]


def test_a_stream_write_refused_journals_nothing(redis_url: str) -> None:
    """The stream's XADD comes first in the script (Redis does not roll a script back): refused,
    the fill is not journaled either, so a later try journals and streams it."""
    hold(redis_url, TOKEN)
    with redis.Redis.from_url(redis_url) as r:
        r.set(STREAM, "not a stream")  # a key of another type: the XADD fails
    with contextlib.closing(holder_store(redis_url)) as store:
        with pytest.raises(JournalError):
            store.add_fill(SCOPE, fill("T-1", 1.0))
        assert store.fills(V, SCOPE) == []
        with redis.Redis.from_url(redis_url) as r:
            r.delete(STREAM)
        assert store.add_fill(SCOPE, fill("T-1", 1.0)) is True
    assert [e.event for e in streamed(redis_url)] == [fill("T-1", 1.0)]


def test_the_journal_trims_the_stream_as_the_publisher_does(redis_url: str) -> None:
    hold(redis_url, TOKEN)
    with contextlib.closing(holder_store(redis_url, maxlen=10)) as store:
        for i in range(300):
            store.add_fill(SCOPE, fill(f"T-{i}", 1.0))
    with redis.Redis.from_url(redis_url) as r:
        info = r.xinfo_stream(STREAM)
    assert info["entries-added"] == 300
    assert 10 <= info["length"] < 300  # MAXLEN ~: whole macro nodes go


async def test_the_publisher_skips_fills_and_the_reader_follows_both_numberings(redis_url: str) -> None:
    """Order updates from the publisher (numbered 1, 2, 3…) and fills from the journal (numbered
    by their seq) interleave in one stream: the reader neither drops one as a copy nor sees a gap
    — and does see one when the journal's numbering skips."""
    hold(redis_url, TOKEN)
    client = open_redis(redis_url)
    clock = FakeClock()
    seen: list[Entry] = []
    gaps: list[str] = []
    reader = StreamReader(
        client,
        KEYS,
        V,
        on_entry=lambda topic, entry_id, entry: seen.append(entry),
        on_gap=lambda topic, reason: gaps.append(reason),
        on_down=lambda reason: None,
        on_up=lambda: None,
        clock=clock,
    )
    reader.add(EXECUTIONS, await reader.tail(EXECUTIONS))
    task = asyncio.get_running_loop().create_task(reader.run())
    fenced: list[str] = []
    publisher = EventPublisher(
        client, KEYS, V, token=TOKEN, maxlen=1000, on_fenced=fenced.append, clock=clock, skip_fills=True
    )
    try:
        with contextlib.closing(holder_store(redis_url)) as store:
            for i in range(1, 4):
                publisher.publish(update(str(i)))
                await publisher.flush()
                f = fill(f"T-{i}", 1.0)
                assert store.add_fill(SCOPE, f)
                publisher.publish(f)  # what the holder Bridge's fan-out hands it: skipped
            await publisher.flush()
            await until(lambda: len(seen) == 6)
            assert publisher.skipped == 3 and publisher.written == 3
            assert [(type(e.event).__name__, e.writer, e.seq) for e in seen] == [
                ("OrderUpdate", PUBLISHER, 1),
                ("Fill", JOURNAL_WRITER, 1),
                ("OrderUpdate", PUBLISHER, 2),
                ("Fill", JOURNAL_WRITER, 2),
                ("OrderUpdate", PUBLISHER, 3),
                ("Fill", JOURNAL_WRITER, 3),
            ]
            assert gaps == []
            # A journal entry lost (trimmed between two reads): its numbering tells.
            await client.xadd(
                STREAM, encode_entry(fill("T-9", 1.0), epoch=1, node="node-a", seq=5, writer=JOURNAL_WRITER)
            )
            await until(lambda: len(seen) == 7)
            assert len(gaps) == 1 and gaps[0].startswith("1 entries were trimmed")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await publisher.aclose()
        await client.aclose()


class RefusingStore(RedisJournalStore):
    """The holder's store, refusing its first `refusals` fill writes as an unreachable Redis does
    (the cluster chaos's Redis restart), then writing for real."""

    def __init__(self, *args: Any, refusals: int, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.refusals = refusals

    def add_fill(self, scope: str, fill: Fill) -> bool:
        if self.refusals > 0:
            self.refusals -= 1
            raise JournalError(f"journal in Redis at {self.path}: could not store fill: Redis is unreachable")
        return super().add_fill(scope, fill)


async def test_a_fill_the_journal_refused_is_streamed_once_when_it_finally_lands(redis_url: str) -> None:
    """`Bridge._rejournal` writes a refused fill again (in a worker thread, backing off); the write
    that lands streams it, once — nothing streamed it before (the publisher skips fills)."""
    hold(redis_url, TOKEN)
    clock = FakeClock()
    async with KrakenSimulator(port=0, seed=11, clock=clock, tick_s=0.01) as sim:
        store = RefusingStore(redis_url, KEYS, V, token=TOKEN, stream_maxlen=1000, refusals=2)
        with contextlib.closing(store):
            async with rig_on(sim, clock, Config(kraken=kraken_config(sim)), journal_store=store) as r:
                executions = r.collect("executions")
                await r.until(lambda: executions.states(EXECUTIONS)[-1:] == [StreamState.LIVE])
                ack = await r.place(btc_usd("0.02", client_order_id="refused-1"))
                assert ack.status == "accepted"
                await r.until(lambda: executions.of(Fill), what="the fill delivered here")
                exec_ids = [f.exec_id for f in executions.of(Fill)]
                with redis.Redis.from_url(redis_url) as db:
                    await r.until(
                        lambda: sorted(streamed_fills(db)) == sorted(exec_ids),
                        what="every fill streamed, the refused ones too",
                    )
                    assert store.refusals == 0
                    await r.run_for(5.0)  # nothing is written again
                    fills = streamed_fills(db)
                assert sorted(fills) == sorted(exec_ids) and len(set(fills)) == len(fills)
                assert [f.exec_id for f in executions.of(Fill)] == exec_ids  # once here too
                assert {f.exec_id for f in store.fills(V, r.bridge.state[V].scope)} == set(exec_ids)
