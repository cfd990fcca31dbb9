"""A client's outgoing messages, with the queue policy of docs/server.md ("Slow clients").

- lossless (acks, errors, status, gaps, balances, executions, positions): kept in order; more than
  `limit` waiting means the client cannot keep up → `put_lossless` returns False (caller disconnects).
- conflated (ticker, book, heartbeat): below `conflate_after` waiting market messages they queue
  normally; from there on each new one replaces the newest waiting message of its key (one key per
  subscription and symbol): latest state, no backlog. Conflating early (64 by default, against 1000
  for the other classes) is what keeps a thousand slow readers from holding a thousand messages each.
- other market data (trades, candles, …): `market_full` first — when it is, the caller drops the
  message and tells the client with a `gap` — then `put_market`.
Memory: at most `limit` lossless + `limit` market messages (`conflate_after` + one per conflation key
when only ticker/book flow).

Messages are the UTF-8 JSON the client receives. Each carries the `seq` it was queued with and, on
a sample, when its content reached the connection (`received`, for the delivery-lag metric). A
replacement keeps the waiting message's place and `seq` (so `seq` still only grows per
subscription; the next message's `seq` jumps by the number replaced) and takes the newer content.

Everything is drained at once (`drain`): the connection writes what waits in one go.
"""

from __future__ import annotations

from collections.abc import Hashable

from brokerbridge.server.protocol import event_text

# A waiting message is a list (cheaper to make than an object, and a conflation rewrites it in
# place): its text, or None while it is an event message still in parts (built when drained — a
# message replaced before then is never built), and its parts.
_DATA, _KEY, _LOSSLESS, _SEQ, _RECEIVED, _HEAD, _BODY = range(7)
Entry = list  # [data | None, key, lossless, seq, received, head | None, body]


class Outbox:
    def __init__(self, limit: int, conflate_after: int | None = None) -> None:
        self.limit = limit
        self.conflate_after = limit if conflate_after is None else min(conflate_after, limit)
        self._entries: list[Entry] = []
        self._latest: dict[Hashable, Entry] = {}
        self._lossless = 0
        self._market = 0
        self.conflated = 0  # messages replaced by a newer one of the same key

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def market_full(self) -> bool:
        """No room for a market message that is never replaced."""
        return self._market >= self.limit

    @property
    def conflating(self) -> bool:
        """Ticker/book messages now replace waiting ones instead of queueing."""
        return self._market >= self.conflate_after

    def put_lossless(self, data: bytes, key: Hashable | None = None, received: float | None = None) -> bool:
        if self._lossless >= self.limit:
            return False
        if key is not None:
            self._latest.pop(key, None)  # later data of `key` must not jump ahead of this
        self._entries.append([data, None, True, 0, received, None, b""])
        self._lossless += 1
        return True

    def put_conflated(
        self, key: Hashable, seq: int, head: bytes | None, body: bytes, received: float | None = None
    ) -> bool:
        """Queue the event message `head`+`seq`+`body` (`protocol.event_text`; with no `head`, `body`
        as it is), or — conflating and a message of `key` waiting — replace that one, keeping its
        seq. True if it replaced one."""
        if self._market >= self.conflate_after:
            waiting = self._latest.get(key)
            if waiting is not None:
                waiting[_BODY] = body
                waiting[_RECEIVED] = received
                self.conflated += 1
                return True
        entry = [None, key, False, seq, received, head, body]
        self._entries.append(entry)
        self._latest[key] = entry
        self._market += 1
        return False

    def put_market(self, data: bytes, received: float | None = None) -> None:
        """Queue a market message that is never replaced; only when not `market_full`."""
        self._entries.append([data, None, False, 0, received, None, b""])
        self._market += 1

    def drain(self) -> tuple[list[bytes], list[float]]:
        """Everything waiting, oldest first, and the `received` times among them; the outbox is
        then empty."""
        entries, self._entries = self._entries, []
        self._latest.clear()
        self._lossless = self._market = 0
        texts: list[bytes] = []
        received: list[float] = []
        for data, _, _, seq, when, head, body in entries:
            if data is None:
                data = body if head is None else event_text(head, seq, body)
            texts.append(data)
            if when is not None:
                received.append(when)
        return texts, received

    def clear(self) -> None:
        self.drain()
