"""`ClusterConnector`: a cluster edge's connector for one venue — the holder's events, read from
Redis (docs/cluster.md "Events", "Interest").

To the edge's Bridge it is the venue's connector: `add`/`remove` edit this node's interest in the
venue (`InterestRegistry`, which tells the holder) and the streams read (`StreamReader`); every
entry read is `emit`ted as the event it carries. Joining a stream reads the stream's last id first,
asks the holder to refresh the stream (its status, book, ticker… written as ordinary entries) and
reads on from that id: the join always meets a snapshot.

What it keeps of the venue is what the edge serves from memory:
- each stream's status: the holder's own (`live`, `polling`, `stale`…), or `reconnecting` with the
  reason while Redis is unreachable or no node holds the venue's lease (watched every
  `renew_interval`);
- each book, assembled from the holder's snapshots and updates (`book_snapshot`); an entry of a
  newer fencing epoch drops every book until the new holder's snapshots come, and an entry of an
  older epoch (a deposed holder) is refused;
- the catalogue the holder writes (`ClusterKeys.catalog`);
- what the holder says of the venue (io/cluster/venue.py, read with the lease every
  `renew_interval`): whether it is a simulator (`simulated`), and the venue's symbol list, with
  which `validate` refuses an unlisted symbol exactly as the venue's own connector does
  (`UnknownSymbol`, its words). Until a holder has written a list (none ever held the venue), a
  symbol is accepted unchecked, as a single process does before its list loads: its stream says
  so in its status, and once the list comes a stream of a symbol it lacks is refused for good
  (`on_refused`: the client's iterator ends with `UnknownSymbol`, /ws sends the error).

What the venue's own connector knows without the venue (`validate`, `account_channels`,
`journal_scope`…) comes from a `shadow`: the venue's real connector built for this config and
never run. Orders never reach a connector here: the edge Bridge's order route
(`EdgeOrders`) sends them to the holder.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Literal

import msgspec
import redis.asyncio as aioredis

from brokerbridge.core.book import OrderBook
from brokerbridge.core.clock import Clock
from brokerbridge.core.errors import (
    ClusterUnavailable,
    InvalidRequest,
    ProtocolError,
    ServiceUnavailable,
    UnknownSymbol,
    VenueError,
)
from brokerbridge.core.events import (
    AnyEvent,
    BookSnapshot,
    BookUpdate,
    Channel,
    Fill,
    Gap,
    StreamState,
    StreamStatus,
    Subscription,
)
from brokerbridge.core.health import StreamHealth, VenueHealth
from brokerbridge.core.orders import Canceled, OrderRequest, Submitted
from brokerbridge.core.topics import topic_of
from brokerbridge.io.cluster.codec import Entry
from brokerbridge.io.cluster.fencing import parse_token
from brokerbridge.io.cluster.interest import InterestRegistry
from brokerbridge.io.cluster.keys import ClusterKeys, describe_url
from brokerbridge.io.cluster.link import redis_errors
from brokerbridge.io.cluster.reader import StreamReader
from brokerbridge.io.cluster.venue import VenueInfo, listing_digest, read_symbols, read_venue_info
from brokerbridge.io.connector import Connector
from brokerbridge.venues.primary.catalog import Catalog, InstrumentDetail

logger = logging.getLogger(__name__)

# The catalogue as the holder writes it: the details, or null where the venue keeps none (Kraken).
_catalog_decoder = msgspec.json.Decoder(list[InstrumentDetail] | None)
CATALOG_WAIT_S = 10.0  # how long `catalog()` waits for a holder that has not written it yet


class ClusterConnector:
    def __init__(
        self,
        venue: str,
        *,
        redis: aioredis.Redis,
        url: str,
        keys: ClusterKeys,
        node_id: str,
        shadow: Connector,
        emit: Callable[[AnyEvent], None],
        on_refused: Callable[[Subscription, VenueError], None],
        clock: Clock,
        renew_interval: float,
        interest_ttl: float,
    ) -> None:
        self.venue = venue
        self.clock = clock
        self._redis = redis
        self._where = describe_url(url)
        self._keys = keys
        self._shadow = shadow
        self._emit = emit
        self._on_refused = on_refused
        self._renew_interval = renew_interval
        self.interest = InterestRegistry(redis, keys, venue, node_id, ttl=interest_ttl, clock=clock)
        self.reader = StreamReader(
            redis,
            keys,
            venue,
            on_entry=self._on_entry,
            on_gap=self._on_gap,
            on_down=self._on_down,
            on_up=self._on_up,
            clock=clock,
        )
        self._subs: dict[str, Subscription] = {}  # topic → the subscription read
        self._statuses: dict[str, StreamStatus] = {}  # topic → the holder's last status of it
        self._books: dict[str, _Book] = {}  # topic → the book assembled from the holder's entries
        self._last_ts: dict[str, float] = {}  # topic → the stamp of the last event read (a Gap's start)
        self._epoch = 0  # the newest fencing epoch seen in any stream of the venue
        self._holder: str | None = None  # "<node> <epoch>" of the lease, as last read
        self._down: str | None = None  # why Redis is unreachable now (None: it answers)
        self._lease_known = False  # the lease was read at least once
        self._joining: asyncio.Queue[Subscription] = asyncio.Queue()
        self._entries = 0
        self._refused_epochs = 0
        self._last_entry: float | None = None  # monotonic
        self._reconnects = 0
        self._info: VenueInfo | None = None  # what the holder said of the venue, as last read
        self._listed: frozenset[str] | None = None  # the venue's symbols (None: no holder wrote them)
        self._listed_digest: str | None = None  # their digest (io/cluster/venue.py `listing_digest`)
        self._unchecked: set[str] = set()  # topics accepted before the list came: checked when it does
        self._refusals: dict[str, VenueError] = {}  # topic → why it was refused for good
        self._unreadable: str | None = None  # why the holder's symbol list did not read, last said

    # -- lifetime --------------------------------------------------------------------------------
    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.interest.run(), name=f"{self.venue}-interest")
            tasks.create_task(self.reader.run(), name=f"{self.venue}-reader")
            tasks.create_task(self._watch_lease(), name=f"{self.venue}-lease-watch")
            tasks.create_task(self._join_forever(), name=f"{self.venue}-joins")

    async def aclose(self) -> None:
        """A clean stop: this node's interest goes at once (not after interest_ttl), so the holder
        lets go of what only it wanted."""
        try:
            await self.interest.aclose()
        finally:
            await self._shadow.aclose()

    # -- what the shadow (the venue's own connector, never run) knows -----------------------------
    @property
    def journal_scope(self) -> str:
        return self._shadow.journal_scope

    def restore_fills(self, fills: list[Fill]) -> None:
        return None  # an edge journals nothing: the holder restores from the journal in Redis

    def validate(self, sub: Subscription) -> None:
        self._shadow.validate(sub)  # its own list never loads here: the holder's is checked below
        if sub.symbol is not None and self.symbol_listed(sub.symbol) is False:
            raise self._shadow.unlisted(sub.symbol)

    def symbol_listed(self, symbol: str) -> bool | None:
        """Whether the holder's list of the venue's symbols has `symbol` (None: no list yet)."""
        return None if self._listed is None else symbol in self._listed

    def unlisted(self, symbol: str) -> UnknownSymbol:
        return self._shadow.unlisted(symbol)

    async def listed_symbols(self) -> frozenset[str]:
        if self._listed is None:
            raise ServiceUnavailable(
                f"{self.venue}: no holder has published the venue's symbols yet",
                venue=self.venue,
                remedy="a node holding the venue session writes them once it has loaded them",
            )
        return self._listed

    @property
    def simulated(self) -> bool:
        """The venue's holder reaches a brokerbridge simulator: nothing here is a real market."""
        return bool(self._info is not None and self._info.simulated)

    def account_channels(self) -> tuple[Channel, ...]:
        return self._shadow.account_channels()

    @property
    def echoes_client_order_id(self) -> bool:
        return self._shadow.echoes_client_order_id

    # -- streams ---------------------------------------------------------------------------------
    def add(self, sub: Subscription) -> None:
        self.validate(sub)
        topic = topic_of(sub)
        if topic in self._subs:
            return
        self._subs[topic] = sub
        if sub.symbol is not None and self._listed is None:
            self._unchecked.add(topic)
            logger.warning(
                "%s: %s accepted unchecked: no holder has published the venue's symbols yet "
                "(it is refused once they come if the venue does not list it)",
                self.venue,
                sub.describe(),
            )
        self._joining.put_nowait(sub)
        self._emit(self.status_of(sub))

    def remove(self, sub: Subscription) -> None:
        topic = topic_of(sub)
        if self._subs.pop(topic, None) is None:
            return
        self.interest.remove(sub)
        self.reader.remove(topic)
        self._unchecked.discard(topic)
        self._refusals.pop(topic, None)
        self._statuses.pop(topic, None)
        self._books.pop(topic, None)
        self._last_ts.pop(topic, None)

    async def _join_forever(self) -> None:
        """Join each added stream: interest noted, its last id read, a refresh asked, read from
        that id. Retried while Redis is unreachable (the stream is `reconnecting` meanwhile)."""
        while True:
            sub = await self._joining.get()
            while topic_of(sub) in self._subs:
                try:
                    with redis_errors(self._redis):
                        await self._join(sub)
                    break
                except ClusterUnavailable as exc:
                    self._on_down(type(exc.__cause__).__name__)
                    await self.clock.sleep(self._renew_interval)

    async def _join(self, sub: Subscription) -> None:
        topic = topic_of(sub)
        self.interest.add(sub)
        last = await self.reader.tail(topic)  # "0-0" for a stream not made yet: read it whole
        if topic not in self._subs:  # removed while asking
            return
        self.reader.add(topic, from_id=last)
        self.interest.request_refresh(sub)

    def status_of(self, sub: Subscription) -> StreamStatus:
        topic = topic_of(sub)
        refused = self._refusals.get(topic)
        if refused is not None:
            return self._status(topic, StreamState.STALE, f"refused: {refused.message}")
        why = self._why_not_served()
        if why is not None:
            return self._status(topic, StreamState.RECONNECTING, why)
        status = self._statuses.get(topic)
        if status is None:
            return self._status(topic, StreamState.CONNECTING, "waiting for the holder's first entry")
        return status

    def _status(self, topic: str, state: StreamState, reason: str) -> StreamStatus:
        """A status the edge gives of its own (the holder's come as they are)."""
        if topic in self._unchecked:
            reason += (
                f" (symbol not checked: no holder has published {self.venue}'s symbols yet; "
                "refused once they come if the venue does not list it)"
            )
        return StreamStatus(venue=self.venue, ts=self.clock.time(), stream=topic, state=state, reason=reason)

    def _why_not_served(self) -> str | None:
        """Why this edge cannot serve the venue's streams now (None: it can)."""
        if self._down is not None:
            return f"Redis unreachable ({self._where}) {self._down}"
        if self._lease_known and self._holder is None:
            return (
                f"no node of the cluster holds the {self.venue} session now (its lease is free): "
                "a standby takes it within lease_ttl + renew_interval"
            )
        epoch = self._lease_epoch()
        if self._epoch and epoch is not None and epoch > self._epoch:
            node = parse_token(self._holder or "")[0]
            return (
                f"the {self.venue} session moved to node {node} (epoch {epoch}): waiting for its first events"
            )
        return None

    def book_snapshot(self, sub: Subscription) -> BookSnapshot | None:
        book = self._books.get(topic_of(sub))
        if book is None or self._why_not_served() is not None:
            return None
        return book.snapshot(self.venue, self.clock.time())

    def health(self) -> VenueHealth:
        shadow = self._shadow.health()
        why = self._why_not_served()
        since = None if self._last_entry is None else self.clock.monotonic() - self._last_entry
        redis_stream = StreamHealth(
            state=StreamState.LIVE if why is None else StreamState.RECONNECTING,
            mode="ws" if self._down is None else "down",
            connected=self._down is None,
            reconnects=self._reconnects,
            seconds_since_last_message=since,
            last_error=why,
            subscriptions={topic: self.status_of(sub).state for topic, sub in self._subs.items()},
            url=self._where,
        )
        return msgspec.structs.replace(shadow, token_expires_at=None, streams={"cluster": redis_stream})

    # -- the holder's entries -----------------------------------------------------------------------
    def _on_entry(self, topic: str, entry_id: str, entry: Entry) -> None:
        if topic not in self._subs or topic in self._refusals:
            return
        if entry.epoch < self._epoch:
            # Written by a holder since deposed, read after its successor's: refused (fencing).
            self._refused_epochs += 1
            return
        if entry.epoch > self._epoch:
            self._new_epoch(entry)
        self._entries += 1
        self._last_entry = self.clock.monotonic()
        event = entry.event
        self._last_ts[topic] = event.ts
        match event:
            case StreamStatus(stream=stream):
                self._statuses[stream] = event
                if self._why_not_served() is not None:
                    return  # the edge's own reason stands until Redis and the lease are back
            case BookSnapshot():
                self._books[topic] = _Book.of(event)
            case BookUpdate():
                book = self._books.get(topic)
                if book is None:
                    return  # a new holder's update before its snapshot: the snapshot comes first
                book.apply(event)
        self._emit(event)

    def _new_epoch(self, entry: Entry) -> None:
        """The first entry of a new holder: what the last one said (books, statuses) is void.
        Every stream asks it for its state (the refresh: status, snapshots), so each meets a
        fresh book and balances, and its status comes even where nothing changes."""
        before, moved = self._why_not_served(), self._epoch > 0
        if moved:
            logger.info(
                "%s: a new holder (node %s, epoch %d): books dropped until its snapshots",
                self.venue,
                entry.node,
                entry.epoch,
            )
        self._epoch = entry.epoch
        if (self._lease_epoch() or 0) < entry.epoch:
            # Its entries prove the new holder before the lease watcher's next read does.
            self._holder, self._lease_known = f"{entry.node} {entry.epoch}", True
        self._books.clear()
        self._statuses.clear()
        if moved:  # (a first epoch met what the joins asked for already)
            # Clients are told their stream is reconnecting — the session moved — whatever this
            # edge saw of the lease meanwhile; the new holder's own statuses follow.
            for topic, sub in self._subs.items():
                self._emit(
                    self._status(
                        topic,
                        StreamState.RECONNECTING,
                        f"the {self.venue} session moved to node {entry.node} (epoch {entry.epoch})",
                    )
                )
                self.interest.request_refresh(sub)
        elif before is not None and self._why_not_served() is None:
            self._emit_statuses()

    def _on_gap(self, topic: str, reason: str) -> None:
        """Entries after the last one read were trimmed (or the stream is gone): say so, drop the
        book, and ask the holder for the stream's state again."""
        if topic not in self._subs:
            return
        self._books.pop(topic, None)
        now = self.clock.time()
        start = self._last_ts.get(topic, now)
        self._emit(Gap(venue=self.venue, ts=now, stream=topic, start=min(start, now), end=now, reason=reason))
        self.interest.request_refresh(self._subs[topic])

    def _on_down(self, reason: str) -> None:
        """Redis does not answer; `reason` is the reader's words ("Redis unreachable (…)") or the
        class of what failed here."""
        reason = reason.removeprefix("Redis unreachable").strip() or "no answer"
        if self._down is None:
            logger.warning("%s: Redis unreachable (%s): %s", self.venue, self._where, reason)
            self._down = reason
            self._reconnects += 1
            self._emit_statuses()
        else:
            self._down = reason

    def _on_up(self) -> None:
        if self._down is not None:
            logger.info("%s: Redis reachable again (%s)", self.venue, self._where)
            self._down = None
            self._emit_statuses()

    def _emit_statuses(self) -> None:
        for sub in list(self._subs.values()):
            self._emit(self.status_of(sub))

    async def _watch_lease(self) -> None:
        """Read the venue's lease every `renew_interval`: with none, every stream is
        `reconnecting` (no holder); when one is back, the holder's statuses come through again."""
        key = self._keys.lease(self.venue)
        while True:
            try:
                with redis_errors(self._redis):
                    raw = await self._redis.get(key)
            except ClusterUnavailable as exc:
                self._on_down(type(exc.__cause__).__name__)
            else:
                self._on_up()
                self._lease_read(None if raw is None else _id_text(raw))
                try:
                    await self.read_venue()
                except ClusterUnavailable as exc:
                    self._on_down(type(exc.__cause__).__name__)
                except ProtocolError as exc:  # the last list read stands; said once
                    if exc.message != self._unreadable:
                        logger.warning("%s: %s", self.venue, exc.message)
                    self._unreadable = exc.message
            await self.clock.sleep(self._renew_interval)

    async def read_venue(self) -> None:
        """Read what the holder says of the venue (io/cluster/venue.py): the simulator flag, and the
        symbol list when its digest changed. `ClusterUnavailable` when Redis does not answer."""
        with redis_errors(self._redis):
            info = await read_venue_info(self._redis, self._keys, self.venue)
        if info is None:
            return
        if info.simulated and not self.simulated:
            logger.warning(
                "%s is SIMULATED: its holder (node %s) reaches the brokerbridge simulator at %s — "
                "not a real market",
                self.venue,
                info.node,
                info.sim_url,
            )
        self._info = info
        if info.listed is not None and info.listed != self._listed_digest:
            with redis_errors(self._redis):
                symbols = await read_symbols(self._redis, self._keys, self.venue)
            if symbols is not None:
                self._learn_symbols(symbols)
                self._unreadable = None

    def _learn_symbols(self, symbols: frozenset[str]) -> None:
        """The holder's list came (or changed): the streams accepted before any list are checked
        now, and one of a symbol the venue does not list is refused for good, as a single
        process's venue refuses it (`on_refused`: its consumers end with `UnknownSymbol`)."""
        first = self._listed is None
        self._listed, self._listed_digest = symbols, listing_digest(symbols)
        logger.log(
            logging.INFO if first else logging.DEBUG,
            "%s: %d listed symbols from the holder",
            self.venue,
            len(symbols),
        )
        for topic in sorted(self._unchecked):
            sub = self._subs.get(topic)
            self._unchecked.discard(topic)
            if sub is None or sub.symbol is None or sub.symbol in symbols:
                continue
            error = self._shadow.unlisted(sub.symbol)
            self._refusals[topic] = error
            self.interest.remove(sub)  # the holder need not stream it any more
            self.reader.remove(topic)
            logger.warning("%s: %s refused: %s", self.venue, sub.describe(), error.message)
            self._on_refused(sub, error)

    def _lease_read(self, holder: str | None) -> None:
        before = self._why_not_served()
        changed = holder != self._holder
        self._holder, self._lease_known = holder, True
        if not changed:
            return
        if holder is None:
            logger.warning("%s: no node holds the venue session (its lease is free)", self.venue)
        else:
            logger.info(
                "%s: the venue session is held by node %s", self.venue, holder.replace(" ", " at epoch ")
            )
        if before != self._why_not_served():
            self._emit_statuses()

    def _lease_epoch(self) -> int | None:
        if self._holder is None:
            return None
        try:
            return parse_token(self._holder)[1]
        except ValueError:
            return None

    # -- instruments --------------------------------------------------------------------------------
    async def catalog(self) -> Catalog | None:
        """The catalogue the holder loaded and wrote to Redis (waits up to `CATALOG_WAIT_S` for a
        holder that has not written it yet)."""
        key = self._keys.catalog(self.venue)
        waited = 0.0
        while True:
            try:
                with redis_errors(self._redis):
                    raw = await self._redis.get(key)
            except ClusterUnavailable as exc:
                raise ServiceUnavailable(
                    f"{self.venue} catalogue: {exc.message}",
                    venue=self.venue,
                    remedy="the cluster's Redis is down: try again once it is back",
                ) from None
            if raw is not None:
                details = _catalog_decoder.decode(raw)
                return None if details is None else Catalog(details)
            if waited >= CATALOG_WAIT_S:
                raise ServiceUnavailable(
                    f"{self.venue} catalogue: no holder has published it yet",
                    venue=self.venue,
                    remedy="a node holding the venue session writes it once it has loaded it: "
                    "see `brokerbridge status` for who holds the venue, and try again shortly",
                )
            await self.clock.sleep(self._renew_interval)
            waited += self._renew_interval

    # -- orders: never here (the edge Bridge's order route sends them to the holder) ---------------
    async def check_order(self, request: OrderRequest) -> None:
        raise _not_here(self.venue)

    async def admit(
        self, op: Literal["add", "amend", "cancel"], symbol: str, order_id: str | None = None
    ) -> None:
        raise _not_here(self.venue)

    async def submit_order(self, request: OrderRequest, client_order_id: str) -> Submitted:
        raise _not_here(self.venue)

    async def cancel(self, order_id: str) -> Canceled:
        raise _not_here(self.venue)

    async def amend_order(self, order_id: str, *, qty: Decimal | None, price: Decimal | None) -> Submitted:
        raise _not_here(self.venue)

    async def order_snapshot(self, since: float | None = None) -> list[AnyEvent]:
        raise _not_here(self.venue)

    # -- what the edge saw (`status`, tests) -----------------------------------------------------------
    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def refused_entries(self) -> int:
        """Entries of a deposed holder's older epoch, read and refused."""
        return self._refused_epochs


def _not_here(venue: str) -> VenueError:
    return InvalidRequest(
        f"{venue}: a cluster edge sends no order to the venue itself",
        venue=venue,
        remedy="orders go through Bridge.place/cancel/amend, which send them to the venue's holder",
    )


def _id_text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


class _Book:
    """One book as the holder's entries build it, with the checksum the last one carried (the
    holder verified it: the book after that entry is the one it describes)."""

    __slots__ = ("book", "checksum", "symbol")

    def __init__(self, symbol: str, depth: int) -> None:
        self.symbol = symbol
        self.book = OrderBook(depth)
        self.checksum: int | None = None

    @classmethod
    def of(cls, snapshot: BookSnapshot) -> _Book:
        book = cls(snapshot.symbol, snapshot.depth)
        book.book.replace(snapshot.bids, snapshot.asks)
        book.checksum = snapshot.checksum
        return book

    def apply(self, update: BookUpdate) -> None:
        self.book.apply(update.bids, update.asks)
        self.checksum = update.checksum

    def snapshot(self, venue: str, now: float) -> BookSnapshot:
        return BookSnapshot(
            venue=venue,
            ts=now,
            symbol=self.symbol,
            depth=self.book.depth,
            bids=self.book.bids_levels(),
            asks=self.book.asks_levels(),
            checksum=self.checksum,
        )
