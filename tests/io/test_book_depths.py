"""Book consumers of different depths on one symbol, through the Bridge's Python API, against the
Kraken simulator on loopback and fake time.

Kraken streams one book depth per symbol and connection; the Bridge holds one book subscription at
the deepest depth any consumer wants and cuts every other depth from it. Each consumer here keeps
its book from its own events, checks every event (at most its depth per side, Kraken's checksum of
its top 10), and — each time the market has stood still long enough for the bytes to cross —
must hold exactly the simulator's best levels at its depth: never a book of another depth, never
one left behind when the upstream depth changes.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from brokerbridge.core.book import OrderBook
from brokerbridge.core.events import (
    AnyEvent,
    BookSnapshot,
    BookUpdate,
    Source,
    StreamState,
    StreamStatus,
    Ticker,
)
from brokerbridge.sim.market import BookSide
from brokerbridge.venues.kraken.checksum import book_checksum
from tests.io.primary_rig import AL30, primary_rig
from tests.io.rig import Rig, rig

ETH = "ETH/USD"
OPENING = {StreamState.CONNECTING, StreamState.LIVE}
pytestmark = pytest.mark.timeout(90)


class Consumer:
    """A `Bridge.subscribe` consumer of one book depth that keeps its book from its events."""

    def __init__(self, r: Rig, depth: int) -> None:
        self.depth = depth
        self.stream = f"kraken:book:{ETH}:depth={depth}"
        # Accepted here or never: the request must not be refused because of another consumer.
        r.bridge.subscription("kraken", "book", ETH, depth=depth)
        self.book = OrderBook(depth)
        self.snapshots = 0
        self.states: list[StreamState] = []
        self.sources: list[Source] = []
        self.task = asyncio.get_running_loop().create_task(self._read(r))

    async def _read(self, r: Rig) -> None:
        async for event in r.bridge.subscribe("kraken", "book", ETH, depth=self.depth):
            self._apply(event)

    def _apply(self, event: AnyEvent) -> None:
        if isinstance(event, StreamStatus):
            assert event.stream == self.stream
            self.states.append(event.state)
            return
        assert isinstance(event, BookSnapshot | BookUpdate) and event.depth == self.depth, event
        if isinstance(event, BookSnapshot):
            self.book.replace(event.bids, event.asks)
            self.snapshots += 1
        else:
            self.book.apply(event.bids, event.asks)  # qty 0 deletes, then cut to depth
        bids, asks = self.book.bids_levels(), self.book.asks_levels()
        assert len(bids) <= self.depth and len(asks) <= self.depth
        self.sources.append(event.source if isinstance(event, BookSnapshot) else Source.WS)
        if event.checksum is None:  # REST polling's books carry none
            assert event.source is Source.REST
            return
        mine = book_checksum([(lv.price, lv.qty) for lv in asks], [(lv.price, lv.qty) for lv in bids])
        assert event.checksum == mine, f"depth {self.depth}: the event's checksum is not its book's"

    def matches(self, r: Rig) -> bool:
        if self.task.done():
            self.task.result()  # a check failed while reading: raise it here
        market = r.sim.exchange.market.book(ETH)
        for side, mine in ((BookSide.BID, self.book.bids_levels()), (BookSide.ASK, self.book.asks_levels())):
            if [(lv.price, lv.qty) for lv in mine] != market.levels(side, self.depth):
                return False
        return True

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def settled(r: Rig, consumers: list[Consumer], what: str) -> None:
    """The market stands still (fake time is not moved): let the bytes already sent cross until
    every consumer holds the simulator's book at its depth."""
    for _ in range(2000):
        if all(c.matches(r) for c in consumers):
            return
        await asyncio.sleep(0.002)
    wrong = [c.depth for c in consumers if not c.matches(r)]
    raise AssertionError(f"{what}: the books of depth {wrong} are not the simulator's")


async def market_moves(r: Rig, consumers: list[Consumer], what: str, times: int = 8) -> None:
    for i in range(times):
        await r.run_for(0.1)
        await settled(r, consumers, f"{what}, step {i}")


def wire_depths(r: Rig) -> set[int]:
    """The book subscriptions of ETH/USD the simulator holds, by depth."""
    books = [session.protocol.market_channels.books for session in r.sim.sessions]
    return {depth for held in books for symbol, depth in held if symbol == ETH}


async def test_a_deep_book_consumer_does_not_deny_a_shallow_one() -> None:
    async with rig(seed=23) as r:
        deep = Consumer(r, 1000)
        await r.until(lambda: deep.snapshots == 1, what="depth 1000 book")
        shallow, middle = Consumer(r, 10), Consumer(r, 25)  # refused with "conflicts with…" before
        consumers = [deep, shallow, middle]
        await r.until(lambda: shallow.snapshots and middle.snapshots, what="cut books")
        assert wire_depths(r) == {1000}  # one upstream subscription serves all three
        await market_moves(r, consumers, "three depths")
        assert all(c.states[-1] is StreamState.LIVE and set(c.states) <= OPENING for c in consumers)
        for consumer in consumers:
            await consumer.stop()


async def test_the_upstream_depth_follows_the_deepest_consumer_and_no_book_goes_wrong() -> None:
    async with rig(seed=5) as r:
        shallow, middle = Consumer(r, 10), Consumer(r, 25)
        await r.until(lambda: shallow.snapshots and middle.snapshots, what="first books")
        assert wire_depths(r) == {25}
        await market_moves(r, [shallow, middle], "on depth 25", times=4)

        deep = Consumer(r, 100)  # the wire moves up …
        await r.until(lambda: deep.snapshots == 1, what="depth 100 book")
        assert wire_depths(r) == {100}
        # … and the consumers already there start again from a fresh snapshot at their depth.
        assert shallow.snapshots == middle.snapshots == 2
        await market_moves(r, [shallow, middle, deep], "on depth 100")

        await deep.stop()  # the deepest leaves: the wire moves back down to what is read
        await r.until(lambda: wire_depths(r) == {25}, what="back on depth 25")
        await market_moves(r, [shallow, middle], "back on depth 25")
        assert shallow.snapshots == middle.snapshots == 3
        # A change of depth is not a failure: the consumers' streams stayed LIVE throughout.
        assert shallow.states == middle.states == [StreamState.CONNECTING, StreamState.LIVE]
        assert r.kraken.public.reconnects == 0
        await shallow.stop()
        await middle.stop()


async def test_a_depth_given_to_a_stream_that_has_none_does_not_split_it() -> None:
    async with rig() as r:
        plain = r.bridge.subscription("kraken", "ticker", "BTC/USD")
        assert r.bridge.subscription("kraken", "ticker", "BTC/USD", depth=25, interval=5) == plain
        first = r.collect("ticker", "BTC/USD")
        second = r.collect("ticker", "BTC/USD", depth=25)  # refused with "conflicts with…" before
        stream = "kraken:ticker:BTC/USD"
        await r.until(lambda: first.states(stream)[-1:] == second.states(stream)[-1:] == [StreamState.LIVE])
        assert r.kraken.public_session.subscriptions == (plain,)
        candles = r.bridge.subscription("kraken", "candles", "BTC/USD", depth=500, interval=5)
        assert (candles.depth, candles.interval) == (plain.depth, 5)


async def test_a_late_joiner_of_a_cut_depth_gets_its_cut_book() -> None:
    async with rig(seed=9) as r:
        deep = Consumer(r, 500)
        await r.until(lambda: deep.snapshots == 1, what="depth 500 book")
        shallow = Consumer(r, 10)
        await r.until(lambda: shallow.snapshots == 1, what="cut book")
        late = Consumer(r, 10)  # the Bridge replays the current book of the stream it joins
        await settled(r, [deep, shallow, late], "late joiner")
        assert late.snapshots == 1 and late.states == [StreamState.LIVE]
        snapshot = r.bridge.book(r.bridge.subscription("kraken", "book", ETH, depth=10))
        assert snapshot is not None and len(snapshot.bids) == len(snapshot.asks) == 10
        assert [(lv.price, lv.qty) for lv in snapshot.bids] == r.sim.exchange.market.book(ETH).levels(
            BookSide.BID, 10
        )
        assert snapshot.checksum == book_checksum(
            [(lv.price, lv.qty) for lv in snapshot.asks], [(lv.price, lv.qty) for lv in snapshot.bids]
        )
        for consumer in (deep, shallow, late):
            await consumer.stop()


async def test_rest_polling_serves_every_depth_from_one_depth_read() -> None:
    async with rig(seed=4) as r:
        consumers = [Consumer(r, 10), Consumer(r, 100)]
        await r.until(lambda: all(c.snapshots for c in consumers), what="books")
        await r.faults(stall="public")
        await r.until(
            lambda: all(Source.REST in c.sources for c in consumers), what="books polled", within=30
        )
        shallow, deep = consumers

        def one_read() -> bool:  # REST's quantities have fewer digits: compare the two cuts
            bids, asks = deep.book.bids_levels(), deep.book.asks_levels()
            assert len(bids) == len(asks) == 100 and shallow.sources[-1] is deep.sources[-1] is Source.REST
            return shallow.book.bids_levels() == bids[:10] and shallow.book.asks_levels() == asks[:10]

        for _ in range(500):  # fake time stands still, no more polls: let both queues drain
            if one_read():
                break
            await asyncio.sleep(0.002)
        assert one_read()
        await r.faults(stall=None)
        await r.until(lambda: all(c.states[-1] is StreamState.LIVE for c in consumers), what="live again")
        await market_moves(r, consumers, "back on the socket", times=3)
        assert all(c.sources[-1] is Source.WS for c in consumers)
        for consumer in consumers:
            await consumer.stop()


async def test_primary_book_depths_of_one_product_each_get_their_cut(tmp_path: Path) -> None:
    """Primary streams a product once, at the largest depth wanted: a ticker (depth 1), then books
    of depth 2 and 5 raise it on the live connection. Each consumer's book is the best levels, at
    its depth, of what the simulator sent last. (Frames of the shallower request still on their way
    when the depth grows are the session's to hold back: tests/sessions/test_primary_book_depths.py.)"""
    async with primary_rig(tmp_path) as r:
        assert r.psim is not None
        ticker = r.collect_primary("ticker", AL30)
        await r.until(lambda: bool(ticker.of(Ticker)), what="ticker")
        collectors = {}
        for depth in (2, 5):
            collectors[depth] = r.collect_primary("book", AL30, depth=depth)
            await r.until(lambda d=depth: bool(collectors[d].of(BookSnapshot)), what=f"depth {depth}")
        (venue_session,) = [s for s in r.psim.sessions if AL30 in s.md]
        assert venue_session.md[AL30].depth == 5  # one request serves every depth

        def sent(side: str, depth: int) -> list[tuple[Decimal, Decimal]]:
            rows = venue_session.md[AL30].last_data[side][:depth]
            return [(Decimal(str(row["price"])), Decimal(str(row["size"]))) for row in rows]

        def right() -> bool:
            for depth, collector in collectors.items():
                last = collector.of(BookSnapshot)[-1]
                assert last.depth == depth and len(last.bids) <= depth and len(last.asks) <= depth
                mine = [(lv.price, lv.qty) for lv in last.bids], [(lv.price, lv.qty) for lv in last.asks]
                if mine != (sent("BI", depth), sent("OF", depth)):
                    return False
            return True

        for step in range(10):
            for _ in range(2000):  # fake time stands still: let the frames sent cross
                if right():
                    break
                await asyncio.sleep(0.002)
            else:
                raise AssertionError(f"step {step}: a book is not what the simulator sent, at its depth")
            await r.run_for(0.5)
