"""Primary book depths of one product: every depth is cut from the one stream of it, and a depth
raised on a live connection never serves a deeper book from a frame of the shallower stream still
on its way (Primary's `Md` frames do not say their depth)."""

from __future__ import annotations

import json

from brokerbridge.core.events import AnyEvent, BookSnapshot, Channel, Subscription
from brokerbridge.venues.primary.session import PrimaryWsSession

AL30 = "MERV - XMEV - AL30 - 24hs"


def sub(channel: Channel, depth: int = 1) -> Subscription:
    return Subscription(venue="primary", channel=channel, symbol=AL30, depth=depth)


def md(bids: int, asks: int, base: int = 100) -> str:
    """An `Md` frame with `bids` and `asks` levels (the venue's book may be deeper)."""
    data = {
        "BI": [{"price": base - i, "size": 10 + i} for i in range(bids)],
        "OF": [{"price": base + 1 + i, "size": 20 + i} for i in range(asks)],
        "LA": {"price": base, "size": 1, "date": 1733169288000},
    }
    frame = {"type": "Md", "timestamp": 1733169290243, "instrumentId": {"marketId": "ROFX", "symbol": AL30}}
    return json.dumps({**frame, "marketData": data})


def books(events: list[AnyEvent]) -> list[tuple[int, int, int]]:
    """(depth, bids, asks) of every book served."""
    return [(e.depth, len(e.bids), len(e.asks)) for e in events if isinstance(e, BookSnapshot)]


def live(*subs: Subscription) -> PrimaryWsSession:
    s = PrimaryWsSession(wall_clock=lambda: 1_800_000_000.0, account="12345", confirm_after=5.0)
    for one in subs:
        s.add(one, 0.0)
    s.connection_made(0.0)
    s.data_to_send()
    return s


def test_a_deeper_book_is_not_served_from_a_frame_of_the_shallower_stream() -> None:
    s = live(sub(Channel.TICKER))  # streamed at depth 1
    s.receive_text(md(1, 1), 0.1)
    s.events_received()
    s.add(sub(Channel.BOOK, depth=5), 1.0)
    assert [json.loads(f)["depth"] for f in s.data_to_send()] == [5]
    s.receive_text(md(1, 1, base=99), 1.1)  # sent at depth 1 before Primary read the new smd
    assert books(s.events_received()) == []  # the venue's book is deeper than this frame shows
    assert s.book(sub(Channel.BOOK, depth=5)) is None
    s.receive_text(md(5, 5), 1.2)  # a side deeper than 1: the new stream
    assert books(s.events_received()) == [(5, 5, 5)]
    s.receive_text(md(1, 1, base=98), 1.3)  # from now on a short side is the whole side
    assert books(s.events_received()) == [(5, 1, 1)]


def test_each_depth_is_served_what_it_can_trust_while_the_depth_grows() -> None:
    s = live(sub(Channel.BOOK, depth=2))
    s.receive_text(md(2, 2), 0.1)
    assert books(s.events_received()) == [(2, 2, 2)]
    s.add(sub(Channel.BOOK, depth=5), 1.0)
    s.data_to_send()
    s.receive_text(md(2, 2, base=99), 1.1)  # old stream: depth 2 served, depth 5 waits
    assert books(s.events_received()) == [(2, 2, 2)]
    s.receive_text(md(0, 1, base=98), 1.2)  # sides shorter than any old depth: whole sides
    assert sorted(books(s.events_received())) == [(2, 0, 1), (5, 0, 1)]
    s.add(sub(Channel.BOOK, depth=4), 1.3)  # within what is requested: no new smd
    assert s.data_to_send() == []
    s.receive_text(md(2, 2, base=97), 1.4)  # could still be a depth-2 frame: only depth 2
    assert books(s.events_received()) == [(2, 2, 2)]
    s.receive_text(md(5, 3), 1.5)
    assert sorted(books(s.events_received())) == [(2, 2, 2), (4, 4, 3), (5, 5, 3)]


def test_a_thin_book_is_served_once_primary_has_surely_answered() -> None:
    s = live(sub(Channel.TICKER))
    s.receive_text(md(1, 1), 0.1)
    s.add(sub(Channel.BOOK, depth=3), 1.0)
    s.data_to_send()
    s.events_received()
    s.receive_text(md(1, 1, base=90), 1.2)  # one level a side is all the venue has, or a cut
    assert books(s.events_received()) == []
    assert s.next_deadline() == 6.0  # 1.0 + confirm_after
    s.handle_timer(6.0)  # every frame since is of the new depth: that was the whole book
    assert books(s.events_received()) == [(3, 1, 1)]
    s.receive_text(md(1, 1, base=91), 6.1)
    assert books(s.events_received()) == [(3, 1, 1)]


def test_a_reconnect_asks_for_the_deepest_book_at_once() -> None:
    s = live(sub(Channel.TICKER), sub(Channel.BOOK, depth=2))
    s.add(sub(Channel.BOOK, depth=5), 1.0)
    s.connection_lost(2.0)
    s.connection_made(3.0)
    assert [json.loads(f)["depth"] for f in s.data_to_send()] == [5]
    s.receive_text(md(1, 1), 3.1)  # nothing older is on its way on this connection
    assert sorted(books(s.events_received())) == [(2, 1, 1), (5, 1, 1)]
