"""`FanOut` on its own: shared upstream streams, the grace period on a FakeClock, overflow told with
a Gap, refusals. The upstream is a recording stand-in for the Bridge's connectors (the whole path
runs against the simulators in tests/io/test_bridge.py)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from brokerbridge.core.clock import FakeClock
from brokerbridge.core.errors import UnknownSymbol
from brokerbridge.core.events import (
    AnyEvent,
    BookSnapshot,
    Channel,
    Gap,
    StreamState,
    StreamStatus,
    Subscription,
    Ticker,
)
from brokerbridge.services.fanout import FanOut

TICKER = Subscription(venue="kraken", channel=Channel.TICKER, symbol="BTC/USD")


class RecordingUpstream:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.opened: list[Subscription] = []
        self.closed: list[Subscription] = []

    def open(self, sub: Subscription) -> None:
        self.opened.append(sub)

    def close(self, sub: Subscription) -> None:
        self.closed.append(sub)

    def status_of(self, sub: Subscription) -> StreamStatus:
        return StreamStatus(
            venue=sub.venue, ts=self.clock.time(), stream=sub.describe(), state=StreamState.LIVE
        )

    def current_state(self, sub: Subscription) -> list[AnyEvent]:
        return [self.status_of(sub)]

    def book_snapshot(self, sub: Subscription) -> BookSnapshot | None:
        return None


def ticker(ts: float) -> Ticker:
    return Ticker(
        venue="kraken",
        ts=ts,
        symbol="BTC/USD",
        bid=Decimal(1),
        bid_qty=None,
        ask=Decimal(2),
        ask_qty=None,
        last=None,
    )


def drain(queue: asyncio.Queue[AnyEvent] | None) -> list[AnyEvent]:
    assert queue is not None
    return [queue.get_nowait() for _ in range(queue.qsize())]


async def test_consumers_share_one_upstream_that_closes_after_the_grace_period() -> None:
    clock = FakeClock()
    upstream = RecordingUpstream(clock)
    fanout = FanOut(upstream, clock=clock, queue_size=10, grace_s=5.0)
    async with asyncio.TaskGroup() as timers:
        fanout.timers = timers
        first, second = fanout.subscribe(TICKER), fanout.subscribe(TICKER)
        assert upstream.opened == [TICKER]
        assert [type(e) for e in drain(second.queue)] == [StreamStatus]  # the late joiner's current state
        fanout.publish(ticker(1.0))
        assert [drain(c.queue) for c in (first, second)] == [[ticker(1.0)], [ticker(1.0)]]
        fanout.unsubscribe(first)
        fanout.unsubscribe(second)
        await asyncio.sleep(0)  # the grace timer starts sleeping
        assert fanout.consumed() == [] and fanout.upstream_closing() == [TICKER] and fanout.is_open(TICKER)
        await clock.advance(4.0)
        again = fanout.subscribe(TICKER)  # within the grace period: the open upstream is reused
        assert upstream.opened == [TICKER] and upstream.closed == [] and fanout.grace_timer(TICKER) is None
        fanout.unsubscribe(again)
        await asyncio.sleep(0)
        await clock.advance(5.0)
        assert upstream.closed == [TICKER] and not fanout.is_open(TICKER)
        fanout.timers = None


async def test_an_overflowing_consumer_gets_a_gap_reaching_back_to_the_first_event_it_lost() -> None:
    clock = FakeClock()
    fanout = FanOut(RecordingUpstream(clock), clock=clock, queue_size=4, grace_s=0.0)
    slow = fanout.subscribe(TICKER)
    for i in range(10):
        fanout.publish(ticker(100.0 + i))
    got = drain(slow.queue)
    assert len(got) <= 4
    gaps = [e for e in got if isinstance(e, Gap)]
    assert len(gaps) == 1 and (gaps[0].start, gaps[0].end) == (100.0, 108.0)  # 108 made the last room
    assert got[-1] == ticker(109.0)  # the newest is kept
    assert slow.dropped == 10 - sum(isinstance(e, Ticker) for e in got)
    fanout.unsubscribe(slow)


async def test_a_refused_stream_tells_its_consumers_and_a_late_joiner() -> None:
    clock = FakeClock()
    fanout = FanOut(RecordingUpstream(clock), clock=clock, queue_size=10, grace_s=0.0)
    waiting = fanout.subscribe(TICKER)
    told: list[Exception] = []
    listening = fanout.listen(TICKER, lambda event: None, told.append)
    error = UnknownSymbol("kraken does not list 'BTC/USD'")
    fanout.refused(TICKER, error)
    assert waiting.refused is error and told == [error]
    assert [type(e) for e in drain(waiting.queue)] == [StreamStatus]  # wakes a blocked reader
    late = fanout.subscribe(TICKER)
    assert late.refused is error and fanout.refusal(TICKER) is error
    for consumer in (waiting, late):
        fanout.unsubscribe(consumer)
    listening.close()
    assert fanout.refusal(TICKER) is None  # forgotten with the closed stream


def test_a_held_stream_stays_open_with_no_consumer_and_closes_when_let_go() -> None:
    clock = FakeClock()
    upstream = RecordingUpstream(clock)
    fanout = FanOut(upstream, clock=clock, queue_size=10, grace_s=0.0)
    held = fanout.hold(TICKER)
    assert upstream.opened == [TICKER] and fanout.is_open(TICKER)
    assert fanout.consumed() == []  # held, not consumed: nobody is delivered anything
    fanout.publish(ticker(1.0))  # goes nowhere, and nothing fails
    consumer = fanout.subscribe(TICKER)  # joins the open stream: its current state at once
    assert [type(e) for e in drain(consumer.queue)] == [StreamStatus] and upstream.opened == [TICKER]
    fanout.unsubscribe(consumer)
    assert upstream.closed == [] and fanout.is_open(TICKER)  # the hold keeps it
    held.close()
    held.close()  # once is enough
    assert upstream.closed == [TICKER] and not fanout.is_open(TICKER)
