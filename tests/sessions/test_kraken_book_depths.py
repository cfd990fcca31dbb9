"""Several book depths of one symbol on one Kraken connection: one subscription on the wire (the
deepest wanted), every other depth cut from its book; the wire follows the deepest depth.

A small venue model (`Venue`) plays Kraken's side: it keeps a whole book and sends what a
subscriber of a given depth gets (snapshot; updates of that depth's window with the checksum of
the top 10). Consumers are modelled by `Reader`, which applies events the way the docs tell
consumers to (a snapshot replaces, an update applies in order, qty 0 deletes, cut to depth) and
checks every event's checksum against its own book.
"""

from __future__ import annotations

import json
from decimal import Decimal

from tests.sessions.test_kraken_session import public

from brokerbridge.core.book import OrderBook
from brokerbridge.core.errors import UnknownSymbol
from brokerbridge.core.events import (
    AnyEvent,
    BookSnapshot,
    BookUpdate,
    Channel,
    StreamState,
    StreamStatus,
    Subscription,
)
from brokerbridge.venues.kraken.checksum import book_checksum
from brokerbridge.venues.kraken.session import KrakenWsSession, Resyncing, Subscribed, SubscribeFailed

SYMBOL = "ETH/USD"


def book(depth: int) -> Subscription:
    return Subscription(venue="kraken", channel=Channel.BOOK, symbol=SYMBOL, depth=depth)


B10, B25, B100 = book(10), book(25), book(100)


class Venue:
    """Kraken's side for one symbol: the whole book (price → qty, both as the wire's text)."""

    def __init__(self, levels: int = 150) -> None:
        self.bids = {f"{2000 - i * 0.5:.2f}": f"{1 + i % 7}.{i:08d}"[:10] for i in range(levels)}
        self.asks = {f"{2001 + i * 0.5:.2f}": f"{2 + i % 5}.{i:08d}"[:10] for i in range(levels)}

    def top(self, side: str, depth: int) -> list[tuple[str, str]]:
        levels = self.bids if side == "bids" else self.asks
        ordered = sorted(levels, key=Decimal, reverse=side == "bids")[:depth]
        return [(price, levels[price]) for price in ordered]

    def checksum(self) -> int:
        return book_checksum(self.top("asks", 10), self.top("bids", 10))

    def frame(self, kind: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> str:
        def wire(levels: list[tuple[str, str]]) -> str:
            return ",".join(f'{{"price":{p},"qty":{q}}}' for p, q in levels)

        return (
            f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"{SYMBOL}","bids":[{wire(bids)}],'
            f'"asks":[{wire(asks)}],"checksum":{self.checksum()}}}]}}'
        )

    def snapshot(self, depth: int) -> str:
        return self.frame("snapshot", self.top("bids", depth), self.top("asks", depth))

    def change(self, depth: int, **sides: dict[str, str]) -> str:
        """Set levels (qty "0.00000000" deletes); the update a depth-`depth` subscriber gets: levels
        deleted inside its window, then new or resized levels inside it (replacements included)."""
        before = {side: dict(self.top(side, depth)) for side in ("bids", "asks")}
        for side, changes in sides.items():
            levels = self.bids if side == "bids" else self.asks
            for price, qty in changes.items():
                if Decimal(qty):
                    levels[price] = qty
                else:
                    levels.pop(price, None)
        out: dict[str, list[tuple[str, str]]] = {}
        for side in ("bids", "asks"):
            window = dict(self.top(side, depth))
            gone = [(p, "0.00000000") for p in before[side] if p not in window and p in sides.get(side, {})]
            new = [(p, q) for p, q in window.items() if before[side].get(p) != q]
            out[side] = gone + new
        return self.frame("update", out["bids"], out["asks"])


class Reader:
    """A consumer of one depth: applies its events and checks each one's checksum."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.book = OrderBook(depth)
        self.snapshots = 0

    def read(self, events: list[AnyEvent]) -> None:
        for event in events:
            if not isinstance(event, BookSnapshot | BookUpdate) or event.depth != self.depth:
                continue
            if isinstance(event, BookSnapshot):
                self.book.replace(event.bids, event.asks)
                self.snapshots += 1
            else:
                self.book.apply(event.bids, event.asks)
            bids, asks = self.book.bids_levels(), self.book.asks_levels()
            assert len(bids) <= self.depth and len(asks) <= self.depth
            pairs = [(lv.price, lv.qty) for lv in asks], [(lv.price, lv.qty) for lv in bids]
            assert event.checksum == book_checksum(*pairs), f"depth {self.depth}: checksum"

    def matches(self, venue: Venue) -> bool:
        def mine(levels: tuple) -> list[tuple[Decimal, Decimal]]:
            return [(lv.price, lv.qty) for lv in levels]

        def theirs(side: str) -> list[tuple[Decimal, Decimal]]:
            return [(Decimal(p), Decimal(q)) for p, q in venue.top(side, self.depth)]

        return mine(self.book.bids_levels()) == theirs("bids") and mine(self.book.asks_levels()) == theirs(
            "asks"
        )


def sent(session: KrakenWsSession) -> list[dict]:
    return [json.loads(frame) for frame in session.data_to_send()]


def requests(frames: list[dict]) -> list[tuple[str, int]]:
    return [(f["method"], f["params"]["depth"]) for f in frames]


def answer(frame: dict, **extra: object) -> str:
    """Kraken's success ack for one of our book requests."""
    params = frame["params"]
    result = {"channel": "book", "depth": params["depth"], "symbol": params["symbol"][0], **extra}
    reply = {"method": frame["method"], "req_id": frame["req_id"], "result": result, "success": True}
    return json.dumps(reply)


def live(session: KrakenWsSession, venue: Venue, depth: int) -> None:
    """Answer the pending subscribe and send its snapshot."""
    (frame,) = sent(session)
    session.receive_text(answer(frame), 0.1)
    session.receive_text(venue.snapshot(depth), 0.1)


def reading_ten(*subs: Subscription, wire_depth: int) -> tuple[Venue, KrakenWsSession, Reader]:
    """A connection whose book is live at `wire_depth`, and a depth-10 reader of its first events."""
    venue, session, ten = Venue(), public(*subs), Reader(10)
    live(session, venue, wire_depth)
    ten.read(session.events_received())
    session.signals_received()
    return venue, session, ten


def states(events: list[AnyEvent], sub: Subscription) -> list[StreamState]:
    return [e.state for e in events if isinstance(e, StreamStatus) and e.stream == sub.describe()]


def test_a_shallower_depth_joins_the_book_on_the_wire_at_once() -> None:
    venue = Venue()
    session = public(B25)
    live(session, venue, 25)
    session.events_received(), session.signals_received()

    session.add(B10, 0.2)  # the regression: this raised "conflicts with the open …depth=25"
    assert sent(session) == []  # nothing asked of Kraken: the depth-25 book has the top 10
    assert session.signals_received() == [Subscribed(B10)]
    ten = Reader(10)
    ten.read(session.events_received())  # its snapshot, cut from the depth-25 book
    assert ten.snapshots == 1 and ten.matches(venue)
    assert session.subscriptions == (B25, B10)


def test_every_depth_gets_exactly_its_window_of_every_message() -> None:
    venue = Venue()
    session = public(B100, B25, B10)
    assert requests(sent(session)) == [("subscribe", 100)]  # one subscription: the deepest
    readers = [Reader(10), Reader(25), Reader(100)]
    session.receive_text(venue.snapshot(100), 0.1)
    events = session.events_received()
    assert sorted((type(e).__name__, e.depth) for e in events if isinstance(e, BookSnapshot)) == [
        ("BookSnapshot", 10),
        ("BookSnapshot", 25),
        ("BookSnapshot", 100),
    ]
    for reader in readers:
        reader.read(events)

    def bid(rank: int) -> str:
        return venue.top("bids", rank + 1)[rank][0]

    messages = [
        lambda: {"bids": {bid(60): "9.50000000"}},  # below both shallow windows: depth 100 only
        lambda: {"bids": {bid(2): "0.00000000"}},  # a delete inside all: the 11th and 26th move up
        lambda: {"asks": {"2000.75": "1.25000000"}},  # a new best ask pushes one out of every window
        lambda: {"bids": {bid(0): "0.00000000", bid(1): "0.00000000", "1999.80": "3.00000000"}},
        lambda: {"asks": {venue.top("asks", 25)[24][0]: "0.00000000"}},  # the 25th: depth 10 untouched
    ]
    for i, change in enumerate(messages):
        session.receive_text(venue.change(100, **change()), 1.0 + i)
        events = session.events_received()
        for reader in readers:
            reader.read(events)
            assert reader.matches(venue), f"message {i}: depth {reader.depth}"
        touched = sorted(e.depth for e in events if isinstance(e, BookUpdate))
        assert touched == [[100], [10, 25, 100], [10, 25, 100], [10, 25, 100], [25, 100]][i]
    # The snapshot confirmed the unanswered subscribe, for every depth; every checksum verified.
    assert set(session.signals_received()) == {Subscribed(B10), Subscribed(B25), Subscribed(B100)}
    assert sent(session) == []


def test_a_deeper_depth_moves_the_wire_and_everyone_restarts_from_its_snapshot() -> None:
    venue, session, ten = reading_ten(B10, wire_depth=10)
    session.add(B100, 1.0)
    unsubscribe, subscribe = sent(session)
    assert requests([unsubscribe, subscribe]) == [("unsubscribe", 10), ("subscribe", 100)]
    assert session.book(B10) is None  # nothing to show until the new snapshot
    # Frames of the depth-10 subscription still in flight: dropped, not applied to anything.
    session.receive_text(venue.change(10, bids={venue.top("bids", 1)[0][0]: "0.00000000"}), 1.1)
    assert session.events_received() == [] and session.signals_received() == []
    session.receive_text(answer(unsubscribe), 1.2)  # every depth-10 frame is in now
    session.receive_text(answer(subscribe), 1.2)
    assert set(session.signals_received()) == {Subscribed(B10), Subscribed(B100)}
    session.receive_text(venue.snapshot(100), 1.3)
    events = session.events_received()
    hundred = Reader(100)
    ten.read(events)
    hundred.read(events)
    assert ten.snapshots == 2 and ten.matches(venue) and hundred.matches(venue)
    assert states(events, B10) == []  # not a resync: the depth-10 stream stays LIVE throughout
    session.receive_text(venue.change(100, asks={"2000.90": "4.00000000"}), 1.4)
    events = session.events_received()
    ten.read(events)
    hundred.read(events)
    assert ten.matches(venue) and hundred.matches(venue)
    assert session.signals_received() == [] and sent(session) == []


def test_the_wire_moves_down_when_the_deepest_leaves() -> None:
    venue, session, ten = reading_ten(B10, B100, wire_depth=100)
    session.remove(B100, 2.0)
    unsubscribe, subscribe = sent(session)
    assert requests([unsubscribe, subscribe]) == [("unsubscribe", 100), ("subscribe", 10)]
    session.receive_text(venue.change(100, bids={venue.top("bids", 50)[40][0]: "0.00000000"}), 2.1)
    assert session.events_received() == []  # depth-100 frames after the move: dropped
    session.receive_text(answer(unsubscribe), 2.2)
    session.receive_text(answer(subscribe), 2.2)
    session.receive_text(venue.snapshot(10), 2.3)
    events = session.events_received()
    assert [(type(e).__name__, e.depth) for e in events] == [("BookSnapshot", 10)]  # type: ignore[union-attr]
    ten.read(events)
    assert ten.matches(venue)
    session.receive_text(venue.change(10, bids={venue.top("bids", 1)[0][0]: "0.00000000"}), 2.4)
    ten.read(session.events_received())
    assert ten.matches(venue) and session.signals_received() == [Subscribed(B10)]
    session.remove(B10, 3.0)
    assert requests(sent(session)) == [("unsubscribe", 10)]


def test_a_move_before_the_old_snapshot_came_drops_that_snapshot_too() -> None:
    venue = Venue()
    session = public(B10)
    sent(session)  # subscribe depth 10: not answered yet
    session.add(B25, 0.1)
    assert requests(sent(session)) == [("unsubscribe", 10), ("subscribe", 25)]
    # Kraken answers in order; here every answer is lost, the data is not.
    session.receive_text(venue.snapshot(10), 0.2)  # the depth-10 subscription's own snapshot
    session.receive_text(venue.change(10, asks={"2000.95": "1.00000000"}), 0.3)
    assert session.events_received() == []
    session.receive_text(venue.snapshot(25), 0.4)  # the old one's is in: this is the new one's
    events = session.events_received()
    readers = [Reader(10), Reader(25)]
    for reader in readers:
        reader.read(events)
        assert reader.snapshots == 1 and reader.matches(venue)
    assert set(session.signals_received()) == {Subscribed(B10), Subscribed(B25)}


def test_what_kraken_says_about_the_book_concerns_every_depth() -> None:
    venue = Venue()
    session = public(B25, B10)
    live(session, venue, 25)
    session.events_received(), session.signals_received()
    bad = json.loads(venue.change(25, bids={"1999.95": "1.00000000"}))
    bad["data"][0]["checksum"] += 1
    session.receive_text(json.dumps(bad).replace(" ", ""), 1.0)
    (signal,) = session.signals_received()
    assert isinstance(signal, Resyncing) and signal.sub == B25  # one resync, on the wire
    events = session.events_received()
    assert states(events, B25) == states(events, B10) == [StreamState.RESYNCING]
    assert requests(sent(session)) == [("unsubscribe", 25), ("subscribe", 25)]
    session.receive_text(venue.snapshot(25), 1.1)
    events = session.events_received()
    assert states(events, B25) == states(events, B10) == [StreamState.LIVE]
    ten = Reader(10)
    ten.read(events)
    assert ten.matches(venue)

    refused = public(B25, B10)
    (frame,) = sent(refused)
    refusal = {"method": "subscribe", "req_id": frame["req_id"], "success": False}
    refused.receive_text(json.dumps({**refusal, "error": f"Currency pair not supported {SYMBOL}"}), 0.1)
    failures = refused.signals_received()
    assert {s.sub for s in failures if isinstance(s, SubscribeFailed)} == {B25, B10}
    assert all(isinstance(s, SubscribeFailed) and isinstance(s.error, UnknownSymbol) for s in failures)
    assert refused.subscriptions == ()  # refused for good: no depth is replayed


def test_a_reconnect_subscribes_the_deepest_depth_only() -> None:
    session = public(B10, B25)
    assert requests(sent(session)) == [("subscribe", 25)]
    session.connection_lost(1.0)
    session.remove(B25, 1.5)
    session.add(B100, 1.6)
    session.connection_made(2.0)
    assert requests(sent(session)) == [("subscribe", 100)]


def test_a_depth_joining_a_book_that_is_not_live_is_told_so() -> None:
    venue = Venue()
    session = public(B25)
    live(session, venue, 25)
    session.events_received(), session.signals_received()
    bad = json.loads(venue.change(25, bids={"1999.95": "1.00000000"}))
    bad["data"][0]["checksum"] += 1
    session.receive_text(json.dumps(bad).replace(" ", ""), 1.0)
    session.events_received(), session.signals_received(), sent(session)
    session.add(B10, 1.1)  # joins while the book resyncs: no book to cut yet
    assert states(session.events_received(), B10) == [StreamState.RESYNCING]
    assert session.signals_received() == [] and sent(session) == []
    session.receive_text(venue.snapshot(25), 1.2)
    events = session.events_received()
    assert states(events, B10) == states(events, B25) == [StreamState.LIVE]
    ten = Reader(10)
    ten.read(events)
    assert ten.snapshots == 1 and ten.matches(venue)

    busy = public(B25)
    (frame,) = sent(busy)
    refusal = {"method": "subscribe", "req_id": frame["req_id"], "success": False}
    busy.receive_text(json.dumps({**refusal, "error": "EService:Unavailable"}), 0.1)
    busy.signals_received()
    busy.add(B10, 0.2)  # refused for now: asked again shortly, and it says so
    assert states(busy.events_received(), B10) == [StreamState.STALE]
    busy.handle_timer(1.2)
    (again,) = sent(busy)
    assert requests([again]) == [("subscribe", 25)]
    busy.receive_text(answer(again), 1.3)
    assert set(busy.signals_received()) == {Subscribed(B10), Subscribed(B25)}
