"""A client's outgoing messages, with the queue policy of docs/server.md ("Slow clients").

- lossless (acks, errors, status, gaps, balances, executions, positions): kept in order; more than
  `limit` waiting means the client cannot keep up → `put_lossless` returns False (caller disconnects).
- conflated (ticker, book): below `limit` waiting market messages they queue normally; at the limit
  each new one replaces the newest waiting message of its key (one key per subscription and symbol):
  latest state, no backlog.
- blocking (trades, candles, …): `wait_for_room` first (the Bridge then drops the oldest for this
  consumer and inserts a `gap`), then `put_market`.
Memory: at most `limit` lossless + `limit` market messages + one per conflation key.

Each message carries the `seq` it was queued with and when its content reached the connection
(`received`, for the delivery-lag metric). A replacement keeps the waiting message's place and `seq`
(so `seq` still only grows per subscription; the next message's `seq` jumps by the number replaced)
and takes the newer content and `received`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Hashable
from typing import NamedTuple

Encode = Callable[[int], bytes]  # seq → the encoded message carrying it


class Outgoing(NamedTuple):
    data: bytes
    received: float | None  # when the content reached the connection (None: not an event)


class _Entry:
    __slots__ = ("data", "key", "lossless", "received", "seq")

    def __init__(
        self, data: bytes, key: Hashable | None, lossless: bool, seq: int, received: float | None
    ) -> None:
        self.data = data
        self.key = key
        self.lossless = lossless
        self.seq = seq
        self.received = received


class Outbox:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._entries: deque[_Entry] = deque()
        self._latest: dict[Hashable, _Entry] = {}
        self._lossless = 0
        self._market = 0
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self.conflated = 0  # messages replaced by a newer one of the same key

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def market_full(self) -> bool:
        return self._market >= self.limit

    def put_lossless(self, data: bytes, key: Hashable | None = None, received: float | None = None) -> bool:
        if self._lossless >= self.limit:
            return False
        if key is not None:
            self._latest.pop(key, None)  # later data of `key` must not jump ahead of this
        self._entries.append(_Entry(data, None, True, 0, received))
        self._lossless += 1
        self._ready.set()
        return True

    def put_conflated(self, key: Hashable, seq: int, encode: Encode, received: float | None = None) -> bool:
        """Queue `encode(seq)`, or — market class full and a message of `key` waiting — replace that
        one with `encode(its seq)`. True if it replaced one."""
        if self.market_full:
            waiting = self._latest.get(key)
            if waiting is not None:
                waiting.data = encode(waiting.seq)
                waiting.received = received
                self.conflated += 1
                return True
        entry = _Entry(encode(seq), key, False, seq, received)
        self._entries.append(entry)
        self._latest[key] = entry
        self._add_market()
        return False

    async def wait_for_room(self) -> None:
        while self.market_full:
            self._room.clear()
            await self._room.wait()

    def put_market(self, data: bytes, received: float | None = None) -> None:
        """Queue a market message that is never replaced; call `wait_for_room` first."""
        self._entries.append(_Entry(data, None, False, 0, received))
        self._add_market()

    def _add_market(self) -> None:
        self._market += 1
        if self.market_full:
            self._room.clear()
        self._ready.set()

    async def get(self) -> Outgoing:
        while not self._entries:
            self._ready.clear()
            await self._ready.wait()
        entry = self._entries.popleft()
        if entry.lossless:
            self._lossless -= 1
        else:
            self._market -= 1
            if entry.key is not None and self._latest.get(entry.key) is entry:
                del self._latest[entry.key]
            if not self.market_full:
                self._room.set()
        return Outgoing(entry.data, entry.received)
