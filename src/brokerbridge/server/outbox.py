"""A client's outgoing messages, with the queue policy of docs/server.md ("Slow clients").

- lossless (acks, errors, status, gaps, balances, executions, positions): kept in order; more than
  `limit` waiting means the client cannot keep up → `put_lossless` returns False (caller disconnects).
- conflated (ticker, book): below `limit` waiting market messages they queue normally; at the limit
  each new one replaces the newest waiting message of its subscription (latest state, no backlog).
- blocking (trades, candles, …): `put_waiting` waits for room (the Bridge then drops the oldest for
  this consumer and inserts a `gap`).
Memory: at most `limit` lossless + `limit` market messages + one per subscription.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable


class _Entry:
    __slots__ = ("data", "key", "lossless")

    def __init__(self, data: bytes, key: Hashable | None, lossless: bool) -> None:
        self.data = data
        self.key = key
        self.lossless = lossless


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
        self.conflated = 0  # messages replaced by a newer one of the same subscription

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def market_full(self) -> bool:
        return self._market >= self.limit

    def put_lossless(self, data: bytes, key: Hashable | None = None) -> bool:
        if self._lossless >= self.limit:
            return False
        if key is not None:
            self._latest.pop(key, None)  # later data of `key` must not jump ahead of this
        self._entries.append(_Entry(data, None, True))
        self._lossless += 1
        self._ready.set()
        return True

    def put_conflated(self, key: Hashable, data: bytes) -> None:
        if self.market_full:
            waiting = self._latest.get(key)
            if waiting is not None:
                waiting.data = data
                self.conflated += 1
                return
        entry = _Entry(data, key, False)
        self._entries.append(entry)
        self._latest[key] = entry
        self._market += 1
        if self.market_full:
            self._room.clear()
        self._ready.set()

    async def put_waiting(self, data: bytes) -> None:
        while self.market_full:
            self._room.clear()
            await self._room.wait()
        self._entries.append(_Entry(data, None, False))
        self._market += 1
        self._ready.set()

    async def get(self) -> bytes:
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
        return entry.data
