"""Book clients of different depths on one symbol over `/ws`: none is refused because of another,
each gets exactly its depth (Kraken's checksum verified on every event), and a change of the
upstream depth — a deeper client arriving, the deepest leaving — leaves no client with a wrong or
stale book. The simulators run on a FakeClock, so the market stands still between steps and every
client's book can be compared with the simulator's."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from brokerbridge.core.book import OrderBook
from brokerbridge.core.events import Level
from brokerbridge.sim.market import BookSide
from brokerbridge.venues.kraken.checksum import book_checksum
from tests.server.conftest import LIMIT, Client, Message, connect
from tests.server.observe import eventually
from tests.server.test_rest_snapshots import Frozen, frozen_stack

ETH = "ETH/USD"


class WsBook:
    """One subscription to the ETH/USD book at one depth, kept from its messages."""

    def __init__(self, sub_id: str, depth: int) -> None:
        self.sub_id, self.depth = sub_id, depth
        self.book = OrderBook(depth)
        self.snapshots = 0
        self.states: list[str] = []

    def read(self, event: dict) -> None:
        if event["kind"] == "status":
            self.states.append(event["state"])
            return
        assert event["kind"] in ("book_snapshot", "book_update") and event["depth"] == self.depth, event
        bids, asks = ([Level(Decimal(p), Decimal(q)) for p, q in event[side]] for side in ("bids", "asks"))
        if event["kind"] == "book_snapshot":
            self.book.replace(bids, asks)
            self.snapshots += 1
        else:
            self.book.apply(bids, asks)  # qty 0 deletes, then cut to depth
        top_bids, top_asks = self.book.bids_levels(), self.book.asks_levels()
        assert len(top_bids) <= self.depth and len(top_asks) <= self.depth
        mine = book_checksum([(lv.price, lv.qty) for lv in top_asks], [(lv.price, lv.qty) for lv in top_bids])
        assert event["checksum"] == mine, f"depth {self.depth}: checksum"

    def matches(self, stack: Frozen) -> bool:
        market = stack.kraken_sim.exchange.market.book(ETH)
        bids = [(lv.price, lv.qty) for lv in self.book.bids_levels()]
        asks = [(lv.price, lv.qty) for lv in self.book.asks_levels()]
        depth = self.depth
        return bids == market.levels(BookSide.BID, depth) and asks == market.levels(BookSide.ASK, depth)


class BookClient:
    """A `/ws` client holding book subscriptions; one task reads its socket for all of them."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.books: dict[str, WsBook] = {}
        self.answers: dict[str, Message] = {}
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        while True:
            message = await self.client.next()
            if message["type"] in ("ack", "error"):
                self.answers[message["id"]] = message
            elif message["type"] == "event":
                self.books[message["id"]].read(message["event"])

    async def open(self, sub_id: str, depth: int) -> WsBook:
        book = self.books[sub_id] = WsBook(sub_id, depth)
        request = {"op": "subscribe", "id": sub_id, "venue": "kraken", "channel": "book", "symbol": ETH}
        await self.client.send({**request, "depth": depth})
        async with asyncio.timeout(LIMIT):
            while sub_id not in self.answers:
                self.check()
                await asyncio.sleep(0.005)
        answer = self.answers[sub_id]
        assert answer["type"] == "ack", answer  # refused "conflicts with the open …" before
        assert answer["stream"] == f"kraken:book:{ETH}:depth={depth}"
        return book

    def check(self) -> None:
        if self.reader.done():
            self.reader.result()  # a failed check while reading: raise it here

    async def close(self) -> None:
        self.check()
        self.reader.cancel()
        await asyncio.gather(self.reader, return_exceptions=True)
        await self.client.close()


async def settled(stack: Frozen, clients: list[BookClient], what: str) -> None:
    """The market stands still: wait (bounded) for every client to hold the simulator's book."""
    books = [book for client in clients for book in client.books.values()]
    try:
        async with asyncio.timeout(LIMIT):
            while not all(book.matches(stack) for book in books):
                for client in clients:
                    client.check()
                await asyncio.sleep(0.005)
    except TimeoutError:
        wrong = [book.depth for book in books if not book.matches(stack)]
        raise AssertionError(f"{what}: the books of depth {wrong} are not the simulator's") from None


async def market_moves(stack: Frozen, clients: list[BookClient], what: str, times: int = 6) -> None:
    for i in range(times):
        await stack.sim_clock.advance(0.1)
        await settled(stack, clients, f"{what}, step {i}")


def wire_depths(stack: Frozen) -> set[int]:
    books = [session.protocol.market_channels.books for session in stack.kraken_sim.sessions]
    return {d for held in books for symbol, d in held if symbol == ETH}


async def test_an_anonymous_deep_book_does_not_deny_a_keyed_client_its_depth(tmp_path: Path) -> None:
    # grace_s=0: a stream nobody reads any more closes at once.
    async with frozen_stack(tmp_path, grace_s=0.0) as stack, asyncio.timeout(LIMIT * 3):
        anonymous = BookClient(await connect(stack.server, key=None))
        keyed = BookClient(await connect(stack.server))
        await anonymous.open("deep", 1000)
        await settled(stack, [anonymous], "depth 1000")
        ten = await keyed.open("ten", 10)
        twenty_five = await keyed.open("25", 25)
        await market_moves(stack, [anonymous, keyed], "three depths")
        assert wire_depths(stack) == {1000}
        assert len(ten.book.bids_levels()) == 10 and len(twenty_five.book.asks_levels()) == 25

        snapshots = ten.snapshots, twenty_five.snapshots
        await anonymous.close()  # the deepest leaves: the upstream moves down to depth 25 …
        await eventually(lambda: wire_depths(stack) == {25})
        await market_moves(stack, [keyed], "after the deep client left")
        # … and the others started again from a fresh snapshot, their streams LIVE throughout.
        assert (ten.snapshots, twenty_five.snapshots) == (snapshots[0] + 1, snapshots[1] + 1)
        # (A cut depth joining the open upstream is `connecting` until the session serves it.)
        for states in (ten.states, twenty_five.states):
            first_live = states.index("live")
            assert set(states[:first_live]) <= {"connecting"} and set(states[first_live:]) == {"live"}
        await keyed.close()
