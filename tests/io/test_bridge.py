"""`Bridge` end to end against the in-process Kraken simulator on loopback.

Real sockets, real time (SystemClock), every test bounded by `asyncio.timeout`. Nothing sleeps
for timing: tests wait for events, or poll for a state with a deadline.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest

from brokerbridge.bridge import Bridge
from brokerbridge.core.backoff import BackoffPolicy
from brokerbridge.core.config import Config, KrakenConfig
from brokerbridge.core.errors import ConfigError, InvalidRequest, UnknownChannel, UnknownVenue
from brokerbridge.core.events import (
    AnyEvent,
    BalanceSnapshot,
    BookSnapshot,
    BookUpdate,
    Channel,
    Gap,
    Instrument,
    StreamState,
    StreamStatus,
    Subscription,
    Ticker,
)
from brokerbridge.core.secret import Secret
from brokerbridge.sim.kraken import KrakenSimulator

LIMIT = 10.0  # seconds, per test

BOOK = Subscription(venue="kraken", channel=Channel.BOOK, symbol="BTC/USD", depth=10)


def sim_config(sim: KrakenSimulator, *, credentials: bool = True, **kraken: Any) -> Config:
    ep = sim.endpoints
    base = KrakenConfig(rest_url=ep.rest, ws_url=ep.ws_public, ws_auth_url=ep.ws_private)
    if credentials:
        base = dataclasses.replace(base, api_key=ep.api_key, api_secret=Secret(ep.api_secret))
    return Config(kraken=dataclasses.replace(base, **kraken))


async def until(stream: AsyncIterator[AnyEvent], predicate: Callable[[AnyEvent], bool]) -> AnyEvent:
    async for event in stream:
        if predicate(event):
            return event
    raise AssertionError("stream ended")  # pragma: no cover


def is_status(state: StreamState) -> Callable[[AnyEvent], bool]:
    return lambda e: isinstance(e, StreamStatus) and e.state is state


def is_book(e: AnyEvent) -> bool:
    return isinstance(e, BookSnapshot | BookUpdate)


def sim_book_subscriptions(sim: KrakenSimulator, symbol: str = "BTC/USD") -> int:
    books = [session.protocol.market_channels.books for session in sim.sessions]
    return sum(1 for held in books for key in held if key[0] == symbol)


@pytest.fixture
async def sim() -> AsyncIterator[KrakenSimulator]:
    async with KrakenSimulator(port=0, seed=1) as simulator:
        yield simulator


@pytest.fixture
async def bridge(sim: KrakenSimulator) -> AsyncIterator[Bridge]:
    async with Bridge(sim_config(sim)) as b:
        yield b


# -- sharing one upstream subscription -------------------------------------------------------------


async def test_two_subscribers_share_one_upstream_subscription(bridge: Bridge, sim: KrakenSimulator) -> None:
    connector = bridge.connectors["kraken"]
    async with asyncio.timeout(LIMIT):
        first = bridge.subscribe("kraken", "book", "BTC/USD", depth=10)
        second = bridge.subscribe("kraken", "book", "BTC/USD", depth=10)
        await until(first, is_book)
        await until(second, is_book)
        assert connector.public_session.subscriptions.count(BOOK) == 1
        assert connector.public_session.subscriptions == (BOOK,)
        assert sim_book_subscriptions(sim) == 1  # one subscribe frame reached the venue
        # Both keep receiving the same stream.
        got_first = await until(first, lambda e: isinstance(e, BookUpdate))
        got_second = await until(second, lambda e: isinstance(e, BookUpdate))
        assert got_first.symbol == got_second.symbol == "BTC/USD"

        await first.aclose()
        assert connector.public_session.subscriptions == (BOOK,)  # still one subscriber
        await until(second, is_book)
        await second.aclose()
        assert connector.public_session.subscriptions == ()
        assert bridge.fanout.consumed() == []
        # Frames go out in order on one socket: once a later subscription is acknowledged, the
        # venue has processed the unsubscribe too.
        barrier = bridge.subscribe("kraken", "ticker", "BTC/USD")
        await until(barrier, is_status(StreamState.LIVE))
        assert sim_book_subscriptions(sim) == 0
        # And subscribing again works (the venue would refuse a duplicate: "Already subscribed").
        again = bridge.subscribe("kraken", "book", "BTC/USD", depth=10)
        assert isinstance(await until(again, is_book), BookSnapshot)
        assert sim_book_subscriptions(sim) == 1
        await again.aclose()
        await barrier.aclose()


async def test_a_stream_subscribed_again_reports_its_status(bridge: Bridge) -> None:
    async with asyncio.timeout(LIMIT):
        first = bridge.subscribe("kraken", "book", "BTC/USD", depth=10)
        await until(first, is_status(StreamState.LIVE))
        await first.aclose()
        again = bridge.subscribe("kraken", "book", "BTC/USD", depth=10)
        seen: list[AnyEvent] = []
        async for event in again:
            seen.append(event)
            if sum(isinstance(e, BookUpdate) for e in seen) >= 3:
                break
        await again.aclose()
        statuses = [e for e in seen if isinstance(e, StreamStatus)]
        assert statuses, f"no StreamStatus before data: {[type(e).__name__ for e in seen]}"
        assert statuses[-1].state is StreamState.LIVE


async def test_late_joiner_gets_status_and_snapshot_at_once(bridge: Bridge) -> None:
    async with asyncio.timeout(LIMIT):
        first = bridge.subscribe("kraken", "book", "BTC/USD", depth=10)
        await until(first, lambda e: isinstance(e, BookSnapshot))
        await until(first, lambda e: isinstance(e, BookUpdate))
        late = bridge.subscribe("kraken", "book", "BTC/USD", depth=10)
        # Both replayed events are queued when the late joiner attaches: no waiting for the venue.
        status = await asyncio.wait_for(anext(late), 1.0)
        snapshot = await asyncio.wait_for(anext(late), 1.0)
        assert isinstance(status, StreamStatus)
        assert status.stream == "kraken:book:BTC/USD:depth=10"
        assert status.state is StreamState.LIVE
        assert isinstance(snapshot, BookSnapshot)
        assert (snapshot.symbol, snapshot.depth) == ("BTC/USD", 10)
        assert len(snapshot.bids) == 10 and len(snapshot.asks) == 10
        bids = [level.price for level in snapshot.bids]
        asks = [level.price for level in snapshot.asks]
        assert bids == sorted(bids, reverse=True)
        assert asks == sorted(asks)
        assert bids[0] < asks[0]
        await first.aclose()
        await late.aclose()


async def test_late_joiner_of_the_instruments_stream_gets_every_instrument_at_once(bridge: Bridge) -> None:
    # A second dashboard tab (Crypto's pair list, the order ticket's increments) joins the open
    # instruments stream: the venue sends its instruments once, at subscribe, so the late joiner
    # must be given the ones already delivered — it was given only the status, and never any pair.
    async with asyncio.timeout(LIMIT):
        first = bridge.subscribe("kraken", "instruments")
        listed: dict[str, Instrument] = {}
        async for event in first:  # the venue's instruments, then the stream's live status
            if isinstance(event, Instrument):
                listed[event.symbol] = event
            elif isinstance(event, StreamStatus) and event.state is StreamState.LIVE:
                break
        assert "BTC/USD" in listed
        late = bridge.subscribe("kraken", "instruments")
        status = await asyncio.wait_for(anext(late), 1.0)
        assert isinstance(status, StreamStatus) and status.state is StreamState.LIVE
        given = [await asyncio.wait_for(anext(late), 1.0) for _ in listed]
        assert {e.symbol: e for e in given if isinstance(e, Instrument)} == listed
        await first.aclose()
        await late.aclose()
        # Closed upstream (no grace here): what it fed is forgotten, never served as current.
        assert bridge.market.instruments("kraken") == []


# -- mistakes are reported clearly and break nothing ----------------------------------------------------


async def test_bad_requests_raise_clear_errors_and_the_bridge_keeps_working(bridge: Bridge) -> None:
    async with asyncio.timeout(LIMIT):
        with pytest.raises(UnknownChannel) as info:
            await anext(bridge.subscribe("kraken", "orderbook", "BTC/USD"))
        assert "unknown channel 'orderbook'" in str(info.value)
        assert "book" in info.value.remedy and "ticker" in info.value.remedy

        with pytest.raises(InvalidRequest) as bad_depth:
            await anext(bridge.subscribe("kraken", "book", "BTC/USD", depth=7))
        assert "depth" in str(bad_depth.value) and "7" in str(bad_depth.value)
        assert "10" in str(bad_depth.value)  # names the valid depths

        with pytest.raises(InvalidRequest) as no_symbol:
            await anext(bridge.subscribe("kraken", "ticker"))
        assert "needs a symbol" in str(no_symbol.value)

        with pytest.raises(UnknownVenue) as venue:
            await anext(bridge.subscribe("binance", "ticker", "BTC/USD"))
        assert "unknown venue 'binance'" in str(venue.value)
        assert "kraken" in venue.value.remedy

        with pytest.raises(UnknownVenue):
            bridge.balances("binance")

        # Nothing half-registered, and the bridge still serves data.
        assert bridge.connectors["kraken"].public_session.subscriptions == ()
        assert bridge.fanout.consumed() == []
        ticker = bridge.subscribe("kraken", "ticker", "BTC/USD")
        event = await until(ticker, lambda e: isinstance(e, Ticker))
        assert event.symbol == "BTC/USD" and event.bid < event.ask
        await ticker.aclose()


async def test_private_channel_without_credentials_is_a_config_error(sim: KrakenSimulator) -> None:
    async with asyncio.timeout(LIMIT), Bridge(sim_config(sim, credentials=False)) as bridge:
        for channel in ("balances", "executions"):
            with pytest.raises(ConfigError) as info:
                await anext(bridge.subscribe("kraken", channel))
            assert "needs Kraken API credentials" in str(info.value)
            assert "api_key" in info.value.remedy and "api_secret" in info.value.remedy
        assert bridge.connectors["kraken"].private_session.subscriptions == ()
        # Public data still works.
        ticker = bridge.subscribe("kraken", "ticker", "ETH/USD")
        assert (await until(ticker, lambda e: isinstance(e, Ticker))).symbol == "ETH/USD"
        await ticker.aclose()


# -- balances -----------------------------------------------------------------------------------------


async def test_balances_are_kept_and_marked_stale_when_the_private_stream_drops(sim: KrakenSimulator) -> None:
    # Slow reconnects and no REST polling: the private stream stays down long enough to look at it.
    config = sim_config(
        sim,
        backoff=BackoffPolicy(initial=60.0, cap=60.0, immediate_attempts=0),
        poll_after=60.0,
    )
    async with asyncio.timeout(LIMIT), Bridge(config) as bridge:
        stream = bridge.subscribe("kraken", "balances")
        await until(stream, is_status(StreamState.LIVE))
        await until(stream, lambda e: isinstance(e, BalanceSnapshot))
        live = bridge.balances("kraken")
        assert live["USD"].total == Decimal("100000")
        assert live["BTC"].total == Decimal("2")
        assert not any(view.stale for view in live.values())

        sim.faults.drop_now()
        down = await until(stream, is_status(StreamState.RECONNECTING))
        assert down.stream == "kraken:balances"
        stale = bridge.balances("kraken")
        assert set(stale) == set(live)
        for asset, view in stale.items():
            assert view.stale, asset
            assert view.total == live[asset].total, asset  # never reset to 0
        assert stale["USD"].total != 0

        # A late joiner while down still gets the last known balances, not zeros.
        late = bridge.subscribe("kraken", "balances")
        first = await asyncio.wait_for(anext(late), 1.0)
        assert isinstance(first, StreamStatus) and first.state is StreamState.RECONNECTING
        snapshot = await asyncio.wait_for(anext(late), 1.0)
        assert isinstance(snapshot, BalanceSnapshot)
        assert {b.asset: b.total for b in snapshot.balances} == {a: v.total for a, v in live.items()}
        await late.aclose()
        await stream.aclose()


async def test_balances_come_back_live_after_a_drop(bridge: Bridge, sim: KrakenSimulator) -> None:
    async with asyncio.timeout(LIMIT):
        stream = bridge.subscribe("kraken", "balances")
        await until(stream, is_status(StreamState.LIVE))
        sim.faults.drop_now()
        await until(stream, is_status(StreamState.RECONNECTING))
        await until(stream, is_status(StreamState.LIVE))
        views = bridge.balances("kraken")
        assert views["USD"].total == Decimal("100000")
        assert not any(view.stale for view in views.values())
        assert bridge.connectors["kraken"].private.reconnects == 1
        await stream.aclose()


# -- slow consumers -----------------------------------------------------------------------------------


def broken(event: AnyEvent) -> bool:
    healthy = (StreamState.CONNECTING, StreamState.LIVE)
    return isinstance(event, StreamStatus) and event.state not in healthy


async def slow_and_fast(bridge: Bridge, fast_events: int) -> tuple[list[AnyEvent], list[AnyEvent]]:
    """One consumer that stops reading and one that keeps reading the same book stream.

    Returns what the slow one received and what the fast one received *after* the slow one
    attached (so both lists draw from the same deliveries). Stops early if the stream breaks.
    """
    fast = bridge.subscribe("kraken", "book", "BTC/USD", depth=10)
    first = await until(fast, lambda e: is_book(e) or broken(e))
    if broken(first):
        await fast.aclose()
        return [], [first]
    slow = bridge.subscribe("kraken", "book", "BTC/USD", depth=10)
    # Attaching and reading the replayed status does not yield to the loop: nothing arrives between
    # here and the mark below.
    slow_seen = [await anext(slow)]
    fast_queue, slow_queue = (s.queue for s in bridge.fanout.consumers(BOOK))
    for _ in range(fast_queue.qsize()):
        fast_queue.get_nowait()  # delivered before the slow one attached
    fast_seen: list[AnyEvent] = []
    async for event in fast:
        fast_seen.append(event)
        if sum(isinstance(e, BookUpdate) for e in fast_seen) >= fast_events:
            break
        if broken(event):
            break  # the caller's assertions will say so
    # Read what the slow one has queued (queue.get does not wait while items are there).
    for _ in range(slow_queue.qsize()):
        slow_seen.append(await anext(slow))
    await fast.aclose()
    await slow.aclose()
    return slow_seen, fast_seen


async def test_slow_consumer_gets_a_gap_and_does_not_block_others(sim: KrakenSimulator) -> None:
    async with asyncio.timeout(LIMIT), Bridge(sim_config(sim), queue_size=4) as bridge:
        slow_seen, fast_seen = await slow_and_fast(bridge, fast_events=40)
        assert not [e for e in fast_seen if isinstance(e, StreamStatus)], "the stream was interrupted"
        assert sum(isinstance(e, BookUpdate) for e in fast_seen) == 40  # the fast one was never held up
        assert len(slow_seen) <= 1 + 4  # bounded: at most the queue
        gaps = [e for e in slow_seen if isinstance(e, Gap)]
        assert gaps, slow_seen
        assert all(g.stream == "kraken:book:BTC/USD:depth=10" for g in gaps)
        assert all("too slow" in g.reason for g in gaps)
        assert all(g.start <= g.end for g in gaps)
        assert not any(isinstance(e, Gap) for e in fast_seen)
        # The bridge itself is still healthy and serving.
        ticker = bridge.subscribe("kraken", "ticker", "BTC/USD")
        await until(ticker, lambda e: isinstance(e, Ticker))
        await ticker.aclose()


async def test_gap_window_covers_every_event_the_slow_consumer_lost(sim: KrakenSimulator) -> None:
    async with asyncio.timeout(LIMIT), Bridge(sim_config(sim), queue_size=4) as bridge:
        slow_seen, fast_seen = await slow_and_fast(bridge, fast_events=40)
        delivered = {id(e) for e in slow_seen}
        lost = [e for e in fast_seen if id(e) not in delivered]
        assert lost
        gaps = [e for e in slow_seen if isinstance(e, Gap)]
        assert gaps
        # "Data between start and end may have been lost": the reported windows must reach back
        # to the first event the consumer never saw.
        assert min(g.start for g in gaps) <= lost[0].ts


async def test_too_small_a_queue_is_refused_and_the_smallest_works(sim: KrakenSimulator) -> None:
    with pytest.raises(ConfigError, match="queue_size must be at least 4"):
        Bridge(sim_config(sim), queue_size=1)
    async with asyncio.timeout(LIMIT), Bridge(sim_config(sim), queue_size=4) as bridge:
        assert bridge._runner is not None
        work = asyncio.create_task(slow_and_fast(bridge, fast_events=20))
        done, _ = await asyncio.wait({work, bridge._runner}, return_when=asyncio.FIRST_COMPLETED)
        if work not in done:
            work.cancel()
            pytest.fail(f"the bridge stopped serving: {bridge._runner.exception()!r}")
        slow_seen, fast_seen = work.result()
        assert not [e for e in fast_seen if isinstance(e, StreamStatus)], "the stream was interrupted"
        assert sum(isinstance(e, BookUpdate) for e in fast_seen) == 20
        assert len(slow_seen) <= 1 + 4


# -- listeners (the server's fan-out form of subscribe) ---------------------------------------------


async def test_a_listener_gets_the_current_state_first_then_every_event_and_close_lets_go(
    bridge: Bridge, sim: KrakenSimulator
) -> None:
    connector = bridge.connectors["kraken"]
    async with asyncio.timeout(LIMIT):
        iterator = bridge.subscribe("kraken", "book", "BTC/USD", depth=10)
        await until(iterator, lambda e: isinstance(e, BookUpdate))
        got: list[AnyEvent] = []
        refused: list[Exception] = []
        handle = bridge.listen(BOOK, got.append, refused.append)
        # Called at once, inside listen(): the status and the verified book, as a late joiner gets them.
        assert [type(e) for e in got] == [StreamStatus, BookSnapshot]
        assert got[0].state is StreamState.LIVE  # type: ignore[union-attr]
        # Then the same events the iterator gets, in the same order.
        mine = await until(iterator, lambda e: isinstance(e, BookUpdate))
        assert mine in got[2:]
        handle.close()
        handle.close()  # once is enough; twice does nothing
        await iterator.aclose()
        assert connector.public_session.subscriptions == () and bridge.fanout.consumed() == []
        assert refused == []


async def test_a_failing_listener_is_logged_and_the_other_consumers_get_every_event(
    bridge: Bridge, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(event: AnyEvent) -> None:
        raise RuntimeError("listener bug")

    async with asyncio.timeout(LIMIT):
        bad = bridge.listen(BOOK, explode, lambda error: None)
        good: list[AnyEvent] = []
        fine = bridge.listen(BOOK, good.append, lambda error: None)
        iterator = bridge.subscribe("kraken", "book", "BTC/USD", depth=10)
        for _ in range(3):
            await until(iterator, lambda e: isinstance(e, BookUpdate))
        assert sum(isinstance(e, BookUpdate) for e in good) >= 3
        # Our consumer's bug is an ERROR record carrying its exception, one per event it failed on.
        failures = [r for r in caplog.records if r.name.startswith("brokerbridge.") and r.exc_info]
        assert len(failures) >= 3 and {r.levelno for r in failures} == {logging.ERROR}
        assert all(isinstance(r.exc_info[1], RuntimeError) for r in failures)  # type: ignore[index]
        bad.close()
        fine.close()
        await iterator.aclose()


async def test_a_listener_of_a_refused_stream_is_told_why(bridge: Bridge) -> None:
    sub = bridge.subscription("kraken", "ticker", "NOPE/USD")
    async with asyncio.timeout(LIMIT):
        refused: asyncio.Future[Exception] = asyncio.get_running_loop().create_future()
        got: list[AnyEvent] = []
        handle = bridge.listen(sub, got.append, refused.set_result)
        error = await refused
        assert "NOPE/USD" in str(error)
        assert isinstance(got[-1], StreamStatus) and got[-1].state is StreamState.STALE
        handle.close()


async def test_watch_statuses_reports_every_open_stream_then_changes(bridge: Bridge) -> None:
    async with asyncio.timeout(LIMIT):
        iterator = bridge.subscribe("kraken", "ticker", "BTC/USD")
        await until(iterator, is_status(StreamState.LIVE))
        seen: list[AnyEvent] = []
        watching = bridge.watch_statuses("kraken", seen.append)
        # Every open stream: the ticker, and the account streams the Bridge holds itself.
        now = {e.stream: e.state for e in seen}  # type: ignore[union-attr]
        assert set(now) == {"kraken:ticker:BTC/USD", "kraken:balances", "kraken:executions"}
        assert len(seen) == 3 and now["kraken:ticker:BTC/USD"] is StreamState.LIVE
        book = bridge.subscribe("kraken", "book", "BTC/USD", depth=10)
        await until(book, lambda e: isinstance(e, BookSnapshot))
        assert any(getattr(e, "stream", "") == "kraken:book:BTC/USD:depth=10" for e in seen)
        watching.close()
        count = len(seen)
        await book.aclose()
        await iterator.aclose()
        assert len(seen) == count and bridge.fanout.status_watchers("kraken") == 0
