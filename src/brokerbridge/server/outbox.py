"""A client's outgoing messages, with the queue policy of docs/server.md ("Slow clients").

- lossless (acks, errors, status, gaps, balances, executions, positions): kept in order; more than
  `limit` waiting means the client cannot keep up → `put_lossless` returns False (caller disconnects).
- conflated (ticker, book): below `conflate_after` waiting market messages they queue normally; from
  there on each new one replaces the newest waiting message of its key (one key per subscription and
  symbol): latest state, no backlog. Conflating early (64 by default, against 1000 for the other
  classes) is what keeps a thousand slow readers from holding a thousand messages each.
- blocking (trades, candles, …): `wait_for_room` first (the Bridge then drops the oldest for this
  consumer and inserts a `gap`), then `put_market`; room means fewer than `limit` market messages.
Memory: at most `limit` lossless + `limit` market messages (`conflate_after` + one per conflation key
when only ticker/book flow).

Each message carries the `seq` it was queued with and when its content reached the connection
(`received`, for the delivery-lag metric). A replacement keeps the waiting message's place and `seq`
(so `seq` still only grows per subscription; the next message's `seq` jumps by the number replaced)
and takes the newer content and `received`.

Waiters are futures made only while someone waits: an idle connection's outbox is a few empty
containers (memory per idle client is a target of issue 8).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Hashable
from typing import NamedTuple

Encode = Callable[[int], str]  # seq → the encoded message carrying it


class Outgoing(NamedTuple):
    data: str
    received: float | None  # when the content reached the connection (None: not an event)


class _Entry:
    __slots__ = ("data", "key", "lossless", "received", "seq")

    def __init__(
        self, data: str, key: Hashable | None, lossless: bool, seq: int, received: float | None
    ) -> None:
        self.data = data
        self.key = key
        self.lossless = lossless
        self.seq = seq
        self.received = received


class Outbox:
    def __init__(self, limit: int, conflate_after: int | None = None) -> None:
        self.limit = limit
        self.conflate_after = limit if conflate_after is None else min(conflate_after, limit)
        self._entries: deque[_Entry] = deque()
        self._latest: dict[Hashable, _Entry] = {}
        self._lossless = 0
        self._market = 0
        self._ready: asyncio.Future[None] | None = None  # the reader waiting in `get`
        self._room: asyncio.Future[None] | None = None  # writers waiting in `wait_for_room`
        self.conflated = 0  # messages replaced by a newer one of the same key

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def market_full(self) -> bool:
        """No room for a blocking market message."""
        return self._market >= self.limit

    @property
    def conflating(self) -> bool:
        """Ticker/book messages now replace waiting ones instead of queueing."""
        return self._market >= self.conflate_after

    def put_lossless(self, data: str, key: Hashable | None = None, received: float | None = None) -> bool:
        if self._lossless >= self.limit:
            return False
        if key is not None:
            self._latest.pop(key, None)  # later data of `key` must not jump ahead of this
        self._entries.append(_Entry(data, None, True, 0, received))
        self._lossless += 1
        self._wake_reader()
        return True

    def put_conflated(self, key: Hashable, seq: int, encode: Encode, received: float | None = None) -> bool:
        """Queue `encode(seq)`, or — conflating and a message of `key` waiting — replace that one
        with `encode(its seq)`. True if it replaced one."""
        if self._market >= self.conflate_after:
            waiting = self._latest.get(key)
            if waiting is not None:
                waiting.data = encode(waiting.seq)
                waiting.received = received
                self.conflated += 1
                return True
        entry = _Entry(encode(seq), key, False, seq, received)
        self._entries.append(entry)
        self._latest[key] = entry
        self._market += 1
        self._wake_reader()
        return False

    async def wait_for_room(self) -> None:
        while self.market_full:
            if self._room is None or self._room.done():
                self._room = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._room)  # one future for all writers: none may cancel it for the rest

    def put_market(self, data: str, received: float | None = None) -> None:
        """Queue a market message that is never replaced; call `wait_for_room` first."""
        self._entries.append(_Entry(data, None, False, 0, received))
        self._market += 1
        self._wake_reader()

    def _wake_reader(self) -> None:
        ready = self._ready
        if ready is not None:
            self._ready = None
            if not ready.done():
                ready.set_result(None)

    async def get(self) -> Outgoing:
        while not self._entries:
            if self._ready is None or self._ready.done():  # done: a cancelled reader left it
                self._ready = asyncio.get_running_loop().create_future()
            await self._ready
        return self.get_nowait()

    def get_nowait(self) -> Outgoing:
        """The next message; the outbox must not be empty."""
        entry = self._entries.popleft()
        if entry.lossless:
            self._lossless -= 1
        else:
            self._market -= 1
            if entry.key is not None and self._latest.get(entry.key) is entry:
                del self._latest[entry.key]
            room = self._room
            if room is not None and self._market < self.limit:
                self._room = None
                if not room.done():
                    room.set_result(None)
        return Outgoing(entry.data, entry.received)
