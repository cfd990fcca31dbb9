"""Market streams shared by the server's clients: one `StreamHub` per upstream stream, one `Member`
per client subscription (and symbol) reading it (issue 8: the fan-out's hot path).

The Bridge calls a hub once per event. The hub encodes the event once, keeps it in its log and
marks its clients for the `Coalescer`; nothing is done per client then. When a client is flushed,
each of its members turns the log entries past its cursor into that client's messages — a
formatted head, `seq` and the shared text: the only per-client work an event costs.

The queue policy of docs/server.md, per member:
- **ticker and book conflate**: a member more than `conflate_after` events behind (a client that
  does not read keeps its members behind) gets the statuses and gaps in between and then only the
  newest ticker, or the current whole book (deltas cannot be merged). `seq` jumps by the number of
  events skipped, so it still counts every event of the subscription.
- **greeks conflate per option**: a greeks stream carries one `OptionAnalytics` per option of a
  chain on every tick, so "the newest event" would keep one option and drop the rest. A member
  behind gets the statuses and gaps in order and the newest event of *each* option — where that
  event stands in the log, or first if it was cut from the log before the member read it (the hub
  keeps each option's newest entry for that). The stream's status comes from the hub's own log or
  the Bridge's current state: a greeks stream has no venue connector of its own.
- **other market data** (trades, candles, stats, instruments) is never replaced. A hub keeps at
  most `keep` events (`client_queue_size`); a member that falls further behind than that gets a
  `gap` naming the window it lost, then what is left.
- statuses and gaps of the stream are in the log with its data: a member gets them in order.

A hub's log is cut back to what its slowest member has not read every `TRIM_AT` events, so memory
is a few dozen events per stream while clients keep up, and `keep` events at most.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from brokerbridge.bridge import Bridge, Listening
from brokerbridge.core.errors import BrokerBridgeError
from brokerbridge.core.events import AnyEvent, Channel, Gap, OptionAnalytics, StreamStatus, Subscription
from brokerbridge.server.coalesce import Coalescer, Flushable
from brokerbridge.server.protocol import EVENT_MESSAGE, Codec, event_tail

TRIM_AT = 32  # log entries before the hub cuts what every member has read


class HubClient(Flushable, Protocol):
    """What a hub needs of a client reading it (server/ws.py's `ClientConnection`, which this
    module does not import): a flush when it has news (`Flushable`, through the Coalescer), and
    word when the venue refuses the stream for good."""

    def stream_refused(self, member: Member, error: BrokerBridgeError) -> None: ...


class _Logged:
    __slots__ = ("event", "received", "tail")

    def __init__(self, event: AnyEvent, tail: bytes, received: float) -> None:
        self.event = event
        self.tail = tail  # `,"event":…}`: what follows `seq` in every client's message
        self.received = received


def _count_of(item: tuple[int, _Logged]) -> int:
    return item[0]


def _tail(codec: Codec, event: AnyEvent) -> bytes:
    return event_tail(codec.event_body(event))


class Member:
    """One client's reading of one hub (a subscription, or one symbol of a batch subscription)."""

    __slots__ = ("client", "cursor", "head", "hub", "initial", "seqs", "tag")

    def __init__(self, client: HubClient, hub: StreamHub, head: bytes, seqs: list[int], tag: object) -> None:
        self.client = client
        self.hub = hub
        self.tag = tag  # what the client knows it by (its subscription id and symbol)
        self.head = head  # `{"type":"event","id":…,"seq":` of the subscription
        self.seqs = seqs  # [the subscription's last seq]: shared by the symbols of a batch
        self.cursor = hub.count  # the next event to read, counted from the hub's first
        self.initial: list[bytes] | None = None  # the stream's current state, read first

    @property
    def behind(self) -> bool:
        return self.initial is not None or self.cursor < self.hub.count

    @property
    def pending(self) -> int:
        """Events waiting for this member (at most what its hub keeps)."""
        hub = self.hub
        return min(hub.count - self.cursor, len(hub.log)) + len(self.initial or ())

    def read(self, out: list[bytes]) -> tuple[int, float | None]:
        """Append this member's messages to `out`; (messages, when the first event read reached
        the server — None if none)."""
        hub = self.hub
        head, seqs = self.head, self.seqs
        seq = seqs[0]
        written = 0
        if self.initial is not None:
            for tail in self.initial:
                seq += 1
                out.append(EVENT_MESSAGE % (head, seq, tail))
            written = len(self.initial)
            self.initial = None
        start = self.cursor
        log = hub.log
        entries = log[start - hub.base :] if start >= hub.base else log
        lost = hub.base - start if start < hub.base else 0
        if lost or (hub.conflates and len(entries) > hub.conflate_after):
            tails, skipped = hub.catch_up(entries, lost, start)
            seq += skipped
            hub.skipped(skipped)
        else:
            tails = [entry.tail for entry in entries]
        for tail in tails:
            seq += 1
            out.append(EVENT_MESSAGE % (head, seq, tail))
        written += len(tails)
        seqs[0] = seq
        self.cursor = hub.count
        return written, (entries[0].received if entries else None)


class StreamHub:
    def __init__(
        self,
        bridge: Bridge,
        sub: Subscription,
        codec: Codec,
        coalescer: Coalescer,
        *,
        keep: int,
        conflate_after: int,
        on_conflated: Callable[[str, int], None],
        on_empty: Callable[[StreamHub], None],
    ) -> None:
        self.sub = sub
        self._bridge = bridge
        self._codec = codec
        self._coalescer = coalescer
        self.keep = keep
        self.conflate_after = conflate_after
        self.kind = sub.channel.value
        self.conflates = sub.channel in (Channel.TICKER, Channel.BOOK, Channel.GREEKS)
        self.per_option = sub.channel is Channel.GREEKS
        # greeks: option symbol → (its count, its entry) of its newest event; one per option of the
        # chain, so a member whose unread events were cut still gets every option's newest.
        self._newest: dict[str, tuple[int, _Logged]] = {}
        self._status: _Logged | None = None  # the newest status logged (greeks: no connector to ask)
        self._on_conflated = on_conflated
        self._on_empty = on_empty
        self.log: list[_Logged] = []
        self.base = 0  # the count of log[0]
        self.count = 0  # events logged so far
        self._trim_at = min(TRIM_AT, keep)  # the log's length at which it is cut next
        self._lost: list[tuple[int, float]] = []  # (count after a forced cut, its oldest event's ts)
        self.members: dict[Member, None] = {}
        self.clients: dict[HubClient, int] = {}  # members per client
        self.refused: BrokerBridgeError | None = None
        self._opening = True
        self._listening: Listening = bridge.listen(sub, self._on_event, self._on_refused)
        self._opening = False  # what listen() replayed is read by each member from current_state

    # -- the Bridge's calls --------------------------------------------------------------------
    def _on_event(self, event: AnyEvent) -> None:
        if self._opening:
            return
        logged = _Logged(event, _tail(self._codec, event), self._bridge.clock.monotonic())
        if self.per_option:
            if isinstance(event, OptionAnalytics):
                self._newest[event.symbol] = (self.count, logged)
            elif isinstance(event, StreamStatus):
                self._status = logged
        self.log.append(logged)
        self.count += 1
        if len(self.log) >= self._trim_at:
            self._trim()
        self._coalescer.mark_all(self.clients)

    def _on_refused(self, error: BrokerBridgeError) -> None:
        self.refused = error
        if self._opening:
            return
        for member in list(self.members):
            member.client.stream_refused(member, error)

    # -- members -------------------------------------------------------------------------------
    def join(self, member: Member) -> None:
        member.initial = [_tail(self._codec, e) for e in self._bridge.current_state(self.sub)]
        self.members[member] = None
        self.clients[member.client] = self.clients.get(member.client, 0) + 1
        self._coalescer.mark(member.client)

    def leave(self, member: Member) -> None:
        if member not in self.members:
            return
        del self.members[member]
        left = self.clients[member.client] - 1
        if left:
            self.clients[member.client] = left
        else:
            del self.clients[member.client]
        if not self.members:
            self._listening.close()
            self._on_empty(self)

    # -- the log -------------------------------------------------------------------------------
    def _trim(self) -> None:
        """Cut what every member has read; at `keep` events, cut the oldest unread ones too (down
        to `keep` − `TRIM_AT`, so that this is not done per event) — noting when they were: a
        member that had not read them gets a gap naming that window."""
        oldest = min((m.cursor for m in self.members), default=self.count)
        read = oldest - self.base
        cut = read
        if len(self.log) >= self.keep:
            cut = max(read, len(self.log) - (self.keep - min(TRIM_AT, self.keep // 2)))
        self._trim_at = min(len(self.log) - max(cut, 0) + TRIM_AT, self.keep)
        if cut <= 0:
            return
        if cut > read:
            stamps = [entry.event.ts for entry in self.log[max(read, 0) : cut]]
            self._lost.append((self.base + cut, min(stamps)))
        del self.log[:cut]
        self.base += cut
        self._lost = [window for window in self._lost if window[0] > oldest]

    def lost_since(self, cursor: int) -> float | None:
        """When the oldest event a member at `cursor` never got happened (None: not known)."""
        stamps = [start for end, start in self._lost if end > cursor]
        return min(stamps) if stamps else None

    def catch_up(self, entries: list[_Logged], lost: int, cursor: int) -> tuple[list[bytes], int]:
        """What a member that is far behind gets instead of `entries` (it also lost `lost` older
        ones), with the number of events skipped. Ticker and book: the statuses and gaps among
        them in order, and in place of the data the newest ticker or the current whole book. Other
        streams: a gap naming the lost ones, then `entries`. A member that lost a status gets the
        stream's current one first, unless a newer one follows."""
        is_status = [isinstance(entry.event, StreamStatus | Gap) for entry in entries]
        status = self._status_tail() if lost and not any(is_status) else None
        tails = [status] if status is not None else []
        if self.per_option:
            return self._newest_per_option(tails, entries, is_status, lost, cursor)
        if not self.conflates:
            now = self._bridge.clock.time()
            end = entries[0].event.ts if entries else now
            start = self.lost_since(cursor)
            gap = Gap(
                venue=self.sub.venue,
                ts=now,
                stream=self.sub.describe(),
                start=min(end, now) if start is None else start,
                end=end,
                reason=f"client too slow: {lost} messages dropped",
            )
            tails.append(_tail(self._codec, gap))
            tails.extend(entry.tail for entry in entries)
            return tails, lost
        last_data = max((i for i, status in enumerate(is_status) if not status), default=-1)
        for i, entry in enumerate(entries):
            if is_status[i]:
                tails.append(entry.tail)
            elif i == last_data:
                tails.append(self._latest_tail(entry))
        if last_data < 0 and lost and self.sub.channel is Channel.BOOK:
            tails.append(self._latest_tail(None))  # the lost updates leave the book to be sent whole
        return tails, max(0, lost + len(entries) - len(tails))

    def _newest_per_option(
        self, tails: list[bytes], entries: list[_Logged], is_status: list[bool], lost: int, cursor: int
    ) -> tuple[list[bytes], int]:
        """`catch_up` of a greeks stream: after `tails` (the current status, if one was lost), the
        newest event of each option whose newest was cut unread (in log order), then `entries`'
        statuses and gaps and each option's newest event where it stands."""
        first = self.base if lost else cursor  # the count of entries[0]
        newest = self._newest
        if lost:
            cut = sorted((item for item in newest.values() if cursor <= item[0] < first), key=_count_of)
            tails.extend(entry.tail for _, entry in cut)
        for i, entry in enumerate(entries):
            event = entry.event
            if (
                is_status[i]
                or not isinstance(event, OptionAnalytics)
                or newest.get(event.symbol, (None,))[0] == first + i
            ):
                tails.append(entry.tail)
        return tails, max(0, lost + len(entries) - len(tails))

    def _latest_tail(self, newest: _Logged | None) -> bytes:
        """The newest data of a conflated stream: the current whole book, or the newest ticker."""
        if self.sub.channel is Channel.BOOK:
            book = self._bridge.connectors[self.sub.venue].book_snapshot(self.sub)
            if book is not None:
                return _tail(self._codec, book)
        return newest.tail if newest is not None else self._venue_status_tail()

    def _status_tail(self) -> bytes | None:
        """The stream's current status (None: a derived stream that has none to give)."""
        if self.per_option:  # a derived stream: its own newest status, else the Bridge's current state
            if self._status is not None:
                return self._status.tail
            current = self._bridge.current_state(self.sub)
            status = next((e for e in current if isinstance(e, StreamStatus)), None)
            return None if status is None else _tail(self._codec, status)
        return self._venue_status_tail()

    def _venue_status_tail(self) -> bytes:
        return _tail(self._codec, self._bridge.connectors[self.sub.venue].status_of(self.sub))

    def skipped(self, count: int) -> None:
        if count > 0 and self.conflates:  # dropped trades are told by their gap, not counted here
            self._on_conflated(self.kind, count)


class Hubs:
    """The open hubs, one per upstream stream with a client reading it."""

    def __init__(
        self,
        bridge: Bridge,
        codec: Codec,
        coalescer: Coalescer,
        *,
        keep: int,
        conflate_after: int,
        on_conflated: Callable[[str, int], None],
    ) -> None:
        self._bridge = bridge
        self._codec = codec
        self._coalescer = coalescer
        self._keep = keep
        self._conflate_after = conflate_after
        self._on_conflated = on_conflated
        self._hubs: dict[Subscription, StreamHub] = {}

    def join(self, client: HubClient, sub: Subscription, head: bytes, seqs: list[int], tag: object) -> Member:
        hub = self._hubs.get(sub)
        if hub is None:
            hub = self._hubs[sub] = StreamHub(
                self._bridge,
                sub,
                self._codec,
                self._coalescer,
                keep=self._keep,
                conflate_after=self._conflate_after,
                on_conflated=self._on_conflated,
                on_empty=self._closed,
            )
        member = Member(client, hub, head, seqs, tag)
        hub.join(member)
        return member

    def _closed(self, hub: StreamHub) -> None:
        if self._hubs.get(hub.sub) is hub:
            del self._hubs[hub.sub]

    def __len__(self) -> int:
        return len(self._hubs)
