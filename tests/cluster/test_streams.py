"""The holder's `EventPublisher` and the edge's `StreamReader` through a real redis-server: every
event type round trips; batches are one fenced script each; a fenced publisher stops; a reader
resumes after Redis restarts (gap-free within retention) and says `Gap` where entries were trimmed
unread or the stream is gone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import redis.asyncio

from brokerbridge.core.clock import FakeClock
from brokerbridge.core.events import (
    AnyEvent,
    Channel,
    Gap,
    StreamState,
    StreamStatus,
    Subscription,
    Ticker,
    encode_event,
)
from brokerbridge.core.topics import topic_of
from brokerbridge.io.cluster.codec import Entry, decode_entry, encode_entry
from brokerbridge.io.cluster.keys import ClusterKeys
from brokerbridge.io.cluster.link import open_redis
from brokerbridge.io.cluster.publisher import EventPublisher
from brokerbridge.io.cluster.reader import StreamReader
from tests.cluster.samples import every_event
from tests.cluster.waiting import until
from tests.redis_server import RedisServer

KEYS = ClusterKeys()
V = "kraken"
TOKEN = "node-a 1"


@dataclass
class Seen:
    entries: list[tuple[str, str, Entry]] = field(default_factory=list)
    gaps: list[tuple[str, str]] = field(default_factory=list)
    downs: list[str] = field(default_factory=list)
    ups: int = 0

    def events(self, topic: str | None = None) -> list[AnyEvent]:
        return [e.event for t, _, e in self.entries if topic is None or t == topic]


@dataclass
class Rig:
    redis: redis.asyncio.Redis
    clock: FakeClock
    seen: Seen
    reader: StreamReader
    fenced: list[str]
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def publisher(self, *, maxlen: int = 1000, token: str = TOKEN, **kw: int) -> EventPublisher:
        return EventPublisher(
            self.redis,
            KEYS,
            V,
            token=token,
            maxlen=maxlen,
            on_fenced=self.fenced.append,
            clock=self.clock,
            **kw,
        )

    def start(self) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self.reader.run())
        self.tasks.append(task)
        return task


@pytest.fixture
async def rig(redis_url: str) -> AsyncIterator[Rig]:
    client = open_redis(redis_url)
    await client.set(KEYS.lease(V), TOKEN)
    clock = FakeClock()
    seen = Seen()
    reader = StreamReader(
        client,
        KEYS,
        V,
        on_entry=lambda topic, entry_id, entry: seen.entries.append((topic, entry_id, entry)),
        on_gap=lambda topic, reason: seen.gaps.append((topic, reason)),
        on_down=seen.downs.append,
        on_up=lambda: setattr(seen, "ups", seen.ups + 1),
        clock=clock,
    )
    rig = Rig(client, clock, seen, reader, [])
    yield rig
    for task in rig.tasks:  # a failed test leaves its reader running
        await stop(task)
    await client.aclose()


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def tickers(n: int, symbol: str = "BTC/USD", start: int = 0) -> list[Ticker]:
    sample = every_event()[0]
    assert isinstance(sample, Ticker)
    return [
        Ticker(
            venue=V,
            ts=float(i),
            symbol=symbol,
            bid=sample.bid,
            bid_qty=None,
            ask=None,
            ask_qty=None,
            last=None,
        )
        for i in range(start, start + n)
    ]


TICKER = topic_of(Subscription(venue=V, channel=Channel.TICKER, symbol="BTC/USD"))


async def test_every_event_type_round_trips_through_redis_in_order(rig: Rig) -> None:
    events = every_event()
    topics = list(dict.fromkeys(topic_of(e) for e in events))
    for topic in topics:
        rig.reader.add(topic, await rig.reader.tail(topic))
    task = rig.start()
    publisher = rig.publisher()
    for event in events:
        publisher.publish(event)
    await publisher.flush()
    assert publisher.batches == 1  # one loop turn's events: one fenced script
    await until(lambda: len(rig.seen.entries) == len(events))
    await stop(task)
    await publisher.aclose()
    got = sorted(rig.seen.entries, key=lambda seen: events.index(seen[2].event))
    assert [encode_event(e.event) for _, _, e in got] == [encode_event(e) for e in events]  # exact digits
    assert {(e.epoch, e.node) for _, _, e in got} == {(1, "node-a")}
    assert all(topic == topic_of(e.event) for topic, _, e in got)
    for topic in topics:  # per stream, in publish order
        assert rig.seen.events(topic) == [e for e in events if topic_of(e) == topic]
    assert rig.seen.gaps == [] and rig.fenced == []


async def test_a_batch_is_one_fenced_script_and_one_xadd_per_event(rig: Rig) -> None:
    before = await rig.redis.info("commandstats")
    publisher = rig.publisher(batch_max=500, maxlen=10_000)
    for event in tickers(1200):
        publisher.publish(event)
    await publisher.flush()
    after = await rig.redis.info("commandstats")

    def calls(name: str) -> int:
        return int(after.get(f"cmdstat_{name}", {}).get("calls", 0)) - int(
            before.get(f"cmdstat_{name}", {}).get("calls", 0)
        )

    assert publisher.batches == 3 and publisher.written == 1200
    assert calls("xadd") == 1200
    assert calls("evalsha") + calls("eval") == 3  # the first may be EVAL (script not loaded yet)
    assert calls("get") == 3  # the fence: once per batch
    assert await rig.redis.xlen(KEYS.events(V, TICKER)) == 1200
    await publisher.aclose()


async def test_maxlen_trims_each_stream(rig: Rig) -> None:
    publisher = rig.publisher(maxlen=10)
    for event in tickers(1000):
        publisher.publish(event)
    await publisher.flush()
    length = await rig.redis.xlen(KEYS.events(V, TICKER))
    assert 10 <= length < 1000 - 500  # MAXLEN ~: whole nodes of the radix tree go (100 entries each)
    await publisher.aclose()


async def test_a_fenced_publisher_stops_and_says_so_once(rig: Rig) -> None:
    publisher = rig.publisher()
    first = tickers(3)
    for event in first:
        publisher.publish(event)
    await publisher.flush()
    await rig.redis.set(KEYS.lease(V), "node-b 2")  # another node took over
    for event in tickers(3, start=3):
        publisher.publish(event)
    await publisher.flush()  # returns: nothing more will be written
    assert len(rig.fenced) == 1 and "epoch 1" in rig.fenced[0] and "node-b" in rig.fenced[0]
    assert publisher.fenced is not None
    publisher.publish(tickers(1, start=9)[0])  # ignored
    await publisher.flush()
    assert len(rig.fenced) == 1
    stored = await rig.redis.xrange(KEYS.events(V, TICKER))
    assert [decode_entry(fields).event for _, fields in stored] == first
    assert await rig.redis.xlen(KEYS.events(V, TICKER)) == 3
    await publisher.aclose()


async def test_a_lapsed_lease_fences_too(rig: Rig) -> None:
    await rig.redis.delete(KEYS.lease(V))
    publisher = rig.publisher()
    publisher.publish(tickers(1)[0])
    await publisher.flush()
    assert len(rig.fenced) == 1 and "nobody holds it now" in rig.fenced[0]
    assert await rig.redis.exists(KEYS.events(V, TICKER)) == 0
    await publisher.aclose()


async def test_the_reader_resumes_after_a_redis_restart_gap_free(rig: Rig, redis_server: RedisServer) -> None:
    rig.reader.add(TICKER, await rig.reader.tail(TICKER))
    task = rig.start()
    publisher = rig.publisher()
    for event in tickers(5):
        publisher.publish(event)
    await publisher.flush()
    await until(lambda: len(rig.seen.entries) == 5)
    redis_server.kill()  # SIGKILL: appendfsync always kept every entry
    await until(lambda: len(rig.seen.downs) == 1, rig.clock)
    assert "unreachable" in rig.seen.downs[0]
    for event in tickers(5, start=5):  # the holder goes on publishing: buffered, retried
        publisher.publish(event)
    redis_server.start()
    await rig.redis.set(KEYS.lease(V), TOKEN)  # (the AOF kept it too; set for clarity)
    await until(lambda: len(rig.seen.entries) == 10, rig.clock)
    assert rig.seen.ups == 1
    assert [e.ts for e in rig.seen.events()] == [float(i) for i in range(10)]  # none lost, none twice
    assert rig.seen.gaps == []
    await stop(task)
    await publisher.aclose()


async def test_entries_trimmed_unread_are_a_gap_then_reading_goes_on(rig: Rig) -> None:
    rig.reader.add(TICKER, await rig.reader.tail(TICKER))
    task = rig.start()
    publisher = rig.publisher(maxlen=10)
    for event in tickers(3):
        publisher.publish(event)
    await publisher.flush()
    await until(lambda: len(rig.seen.entries) == 3)
    await stop(task)  # the edge stops reading (a long stall)
    for event in tickers(1000, start=3):
        publisher.publish(event)
    await publisher.flush()
    kept = await rig.redis.xlen(KEYS.events(V, TICKER))
    task = rig.start()  # resumes from its last ID
    await until(lambda: len(rig.seen.entries) == 3 + kept)
    assert len(rig.seen.gaps) == 1
    topic, reason = rig.seen.gaps[0]
    assert topic == TICKER and f"{1000 - kept} entries" in reason and "trimmed" in reason
    assert [e.ts for e in rig.seen.events()][3:] == [float(i) for i in range(1003 - kept, 1003)]
    await stop(task)
    await publisher.aclose()


async def test_a_caught_up_reader_sees_no_gap_when_old_entries_are_trimmed(rig: Rig) -> None:
    rig.reader.add(TICKER, await rig.reader.tail(TICKER))
    task = rig.start()
    publisher = rig.publisher(maxlen=10)
    for start in range(0, 200, 5):
        for event in tickers(5, start=start):
            publisher.publish(event)
        await publisher.flush()
        await until(lambda n=start + 5: len(rig.seen.entries) == n)  # type: ignore[misc]
    assert await rig.redis.xlen(KEYS.events(V, TICKER)) < 100  # trimmed all along
    await stop(task)
    task = rig.start()  # a restarted run checks every stream against what it counted
    await until(lambda: not rig.reader._check)
    await stop(task)
    assert rig.seen.gaps == [] and len(rig.seen.entries) == 200


async def test_a_burst_beyond_maxlen_between_two_reads_is_a_gap_of_exactly_what_was_lost(rig: Rig) -> None:
    rig.reader.add(TICKER, await rig.reader.tail(TICKER))
    task = rig.start()
    publisher = rig.publisher(maxlen=10)
    publisher.publish(tickers(1)[0])
    await until(lambda: len(rig.seen.entries) == 1)  # following a live stream
    for event in tickers(300, start=1):  # one script: trimming runs inside it, before any read
        publisher.publish(event)
    await publisher.flush()
    kept = await rig.redis.xlen(KEYS.events(V, TICKER))
    await until(lambda: len(rig.seen.entries) == 1 + kept)
    assert len(rig.seen.gaps) == 1 and f"{300 - kept} entries were trimmed" in rig.seen.gaps[0][1]
    assert [e.ts for e in rig.seen.events()] == [0.0] + [float(i) for i in range(301 - kept, 301)]
    await stop(task)
    task = rig.start()  # and the restarted run's check agrees: nothing more lost
    await until(lambda: not rig.reader._check)
    assert len(rig.seen.gaps) == 1
    await stop(task)
    await publisher.aclose()


async def test_a_copy_of_an_entry_is_read_once(rig: Rig) -> None:
    rig.reader.add(TICKER, "0-0")
    stream = KEYS.events(V, TICKER)
    one, two = tickers(2)
    for event, seq in ((one, 1), (one, 1), (two, 2)):  # a retried write that had landed
        await rig.redis.xadd(stream, encode_entry(event, epoch=1, node="node-a", seq=seq))  # type: ignore[arg-type]
    task = rig.start()
    await until(lambda: len(rig.seen.entries) == 2)
    await asyncio.sleep(0.2)  # two read blocks: a third delivery would have come
    assert rig.seen.events() == [one, two] and rig.seen.gaps == []
    await stop(task)


async def test_from_an_id_already_trimmed_is_a_gap(rig: Rig) -> None:
    publisher = rig.publisher(maxlen=10)
    for event in tickers(500):
        publisher.publish(event)
    await publisher.flush()
    stream = KEYS.events(V, TICKER)
    first_kept = (await rig.redis.xrange(stream, count=1))[0][0].decode()
    ms = first_kept.partition("-")[0]
    rig.reader.add(TICKER, f"{int(ms) - 1}-0")  # an ID read long ago
    task = rig.start()
    kept = await rig.redis.xlen(stream)
    await until(lambda: len(rig.seen.entries) == kept)
    assert len(rig.seen.gaps) == 1 and "may have been trimmed" in rig.seen.gaps[0][1]
    await stop(task)
    await publisher.aclose()


async def test_a_stream_gone_is_a_gap_and_the_new_one_is_read_whole(rig: Rig) -> None:
    rig.reader.add(TICKER, await rig.reader.tail(TICKER))
    task = rig.start()
    publisher = rig.publisher()
    for event in tickers(3):
        publisher.publish(event)
    await publisher.flush()
    await until(lambda: len(rig.seen.entries) == 3)
    await stop(task)
    await rig.redis.delete(KEYS.events(V, TICKER))  # as a Redis restarted without its AOF
    task = rig.start()
    await until(lambda: len(rig.seen.gaps) == 1)
    assert "gone" in rig.seen.gaps[0][1]
    for event in tickers(2, start=100):
        publisher.publish(event)
    await publisher.flush()
    await until(lambda: len(rig.seen.entries) == 5)
    assert [e.ts for e in rig.seen.events()][3:] == [100.0, 101.0]
    await stop(task)
    await publisher.aclose()


async def test_adding_a_stream_wakes_an_idle_reader_and_remove_stops_it(rig: Rig) -> None:
    task = rig.start()
    status = StreamStatus(venue=V, ts=1.0, stream=TICKER, state=StreamState.LIVE)
    await rig.redis.xadd(KEYS.events(V, TICKER), encode_entry(status, epoch=1, node="node-a"))  # type: ignore[arg-type]
    rig.reader.add(TICKER, "0-0")
    await until(lambda: len(rig.seen.entries) == 1)
    rig.reader.remove(TICKER)
    await rig.redis.xadd(KEYS.events(V, TICKER), encode_entry(status, epoch=1, node="node-a"))  # type: ignore[arg-type]
    await asyncio.sleep(0.3)  # three read blocks: long enough for a reader that still followed it
    assert len(rig.seen.entries) == 1
    await stop(task)


async def test_close_writes_what_is_buffered(rig: Rig) -> None:
    publisher = rig.publisher()
    for event in tickers(3):
        publisher.publish(event)
    await publisher.aclose()  # before the writer's turn came
    assert await rig.redis.xlen(KEYS.events(V, TICKER)) == 3
    publisher.publish(tickers(1, start=3)[0])  # closed: ignored
    assert publisher.pending == 0


async def test_what_the_buffer_cap_drops_while_redis_is_away_is_published_as_a_gap(
    rig: Rig, redis_server: RedisServer
) -> None:
    publisher = rig.publisher(batch_max=2, max_buffer=4)
    redis_server.kill()
    for event in tickers(10):
        publisher.publish(event)
    assert publisher.pending == 4  # the 6 oldest dropped
    redis_server.start()
    await until(lambda: rig.redis.exists(KEYS.lease(V)))  # the AOF kept the lease
    await until(lambda: publisher.pending == 0, rig.clock)  # the retry's backoff, on the fake clock
    await publisher.flush()
    stored = [decode_entry(fields).event for _, fields in await rig.redis.xrange(KEYS.events(V, TICKER))]
    gap = stored[0]
    assert isinstance(gap, Gap) and (gap.stream, gap.start, gap.end) == (TICKER, 0.0, 5.0)
    assert "dropped 6 events" in gap.reason
    assert [e.ts for e in stored[1:]] == [6.0, 7.0, 8.0, 9.0]
    await publisher.aclose()


async def test_an_entry_that_does_not_decode_is_a_gap_and_reading_goes_on(rig: Rig) -> None:
    stream = KEYS.events(V, TICKER)
    await rig.redis.xadd(stream, {b"e": b"not json", b"ep": b"1", b"n": b"x"})
    await rig.redis.xadd(stream, encode_entry(tickers(1)[0], epoch=1, node="node-a"))  # type: ignore[arg-type]
    rig.reader.add(TICKER, "0-0")
    rig.start()
    await until(lambda: len(rig.seen.entries) == 1)
    assert len(rig.seen.gaps) == 1 and "could not be read" in rig.seen.gaps[0][1]
