"""`HolderRole`: one venue's holder candidacy on a cluster node (docs/cluster.md "Roles", "The lease
and the fencing epoch").

It campaigns for the venue's lease (`LeaseCampaign`). While it holds it — a *term* — it runs the
venue session for the whole cluster:

- a holder `Bridge` for that venue only: the venue's real connector, the executions journal in
  Redis (`RedisJournalStore`, every write fenced by the lease token), and transports that send
  nothing to the venue while `lease.valid()` is false (io/transports.py `guarded`);
- an `EventPublisher`, fed by a fan-out listener of every stream the holder Bridge carries: the
  account streams from the start, and each market stream while some node wants it — fills
  excepted: the journal streams each new fill in the same fenced write that journals it;
- an `InterestFollower`: the union of the nodes' interest held on the holder Bridge, and refresh
  requests answered with the stream's current state (`Bridge.current_state`);
- an `OrderServer` answering every edge's order requests through the holder Bridge;
- the venue's catalogue, written (fenced) to `ClusterKeys.catalog` once loaded;
- what the edges cannot know by themselves (io/cluster/venue.py): whether the venue is a
  brokerbridge simulator, and every symbol it lists (checked every `LISTING_CHECK_S`, written
  again when it changed), so an edge refuses an unlisted symbol as a single process does.

When the lease is lost, a fenced write is refused, or the lease's local validity lapses, all of it
is torn down at once (the venue sockets closed) with one log line, and the campaign goes on: the
node may hold again later, with a new epoch.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import msgspec
import redis.asyncio as aioredis

from brokerbridge.bridge import Bridge
from brokerbridge.core.clock import Clock, race
from brokerbridge.core.config import Config
from brokerbridge.core.errors import BrokerBridgeError, Fenced, VenueError, fenced_cause
from brokerbridge.core.events import Subscription
from brokerbridge.io.cluster.fencing import fenced_script
from brokerbridge.io.cluster.interest import InterestFollower
from brokerbridge.io.cluster.journal import RedisJournalStore
from brokerbridge.io.cluster.keys import ClusterKeys
from brokerbridge.io.cluster.lease import Lease, LeaseCampaign
from brokerbridge.io.cluster.link import open_redis, redis_errors
from brokerbridge.io.cluster.orders import OrderServer
from brokerbridge.io.cluster.publisher import EventPublisher
from brokerbridge.io.cluster.venue import VenueInfoWriter, listing_digest, simulator_at
from brokerbridge.io.transports import Transports, guarded
from brokerbridge.services.fanout import Listening
from brokerbridge.venues.primary.environments import resolve_environment

logger = logging.getLogger(__name__)

CATALOG_RETRY_S = 30.0  # a catalogue that failed to load is asked for again this often
# The venue's symbol list is looked at this often (the connector keeps it fresh: AssetPairs hourly,
# Primary's catalogue each day) and written for the edges when it changed.
LISTING_CHECK_S = 60.0
REAP_S = 1.0  # a term told to stop and still running is told again this often
REAP_TRIES = 5  # cancels (and Redis cuts) of a term's Redis-side task before it is left behind
_SET_CATALOG = "redis.call('SET', KEYS[2], ARGV[2]) return 1"


class HolderRole:
    def __init__(
        self,
        venue: str,
        *,
        config: Config,
        redis: aioredis.Redis,
        url: str,
        keys: ClusterKeys,
        node_id: str,
        clock: Clock,
        transports: Transports | None = None,
        on_term: Callable[[str, int | None], None] | None = None,
    ) -> None:
        """`config`: the node's (the venue's section says how to reach it). `on_term(venue,
        epoch)`: told when a term starts (its epoch) and ends (None) — the node's heartbeat says
        what it holds."""
        self.venue = venue
        cluster = config.cluster
        # The holder Bridge runs this venue only; the warm streams are the edges' to want.
        self._config = dataclasses.replace(
            config, server=dataclasses.replace(config.server, venues=(venue,), warm=())
        )
        self._redis = redis
        self._url = url
        self._keys = keys
        self._node_id = node_id
        self._clock = clock
        self._transports = transports or Transports()
        self._on_term = on_term
        self.lease = Lease(redis, keys, venue, node_id, ttl=cluster.lease_ttl, clock=clock)
        self._renew_interval = cluster.renew_interval
        self.campaign = LeaseCampaign(
            self.lease,
            renew_interval=cluster.renew_interval,
            clock=clock,
            on_acquired=self._acquired,
            on_lost=self._lost,
        )
        self._term: asyncio.Task[None] | None = None
        # The last term started: a new term waits for it to be torn down (its venue sockets
        # closed) before it logs in — never two sessions of this node at once.
        self._ending: asyncio.Task[None] | None = None
        self._running = False  # the campaign runs (a term may start)
        self._reapers: set[asyncio.Task[None]] = set()  # tasks insisting that a stopped term ends
        self._term_redis: dict[asyncio.Task[None] | None, aioredis.Redis] = {}  # term → its Redis
        self.bridge: Bridge | None = None  # the holder Bridge, during a term
        self.terms = 0  # terms started (tests, status)

    @property
    def holding(self) -> bool:
        return self._term is not None and not self._term.done()

    async def run(self) -> None:
        """Campaign until cancelled, holding the venue whenever the lease is ours. A term runs in
        a task of its own (not the campaign's group), so stopping the role can still insist on the
        term ending (`_end_term`) when a part of it does not stop at the first cancel."""
        self._running = True
        try:
            await self.campaign.run()
        finally:
            self._running = False
            await self._end_term()

    # -- the campaign's callbacks ----------------------------------------------------------------------
    def _acquired(self, epoch: int) -> None:
        if self.holding or not self._running:
            return
        self.terms += 1
        self._term = asyncio.get_running_loop().create_task(
            self._hold(epoch, self._ending), name=f"{self.venue}-term-{epoch}"
        )
        self._ending = self._term

    def _lost(self, reason: str) -> None:
        self._stop_term()  # the campaign logged the one line saying why

    def _fenced_in(self, epoch: int) -> Callable[[Fenced | str], None]:
        """What a writer of the term of `epoch` calls when a write was refused: the campaign ends
        the tenure (and logs it) at once. A writer of an ended term changes nothing."""

        def fenced(error: Fenced | str) -> None:
            if epoch != self.lease.epoch:
                return
            if isinstance(error, str):  # the publisher's words for it
                error = Fenced(f"{self.venue}: {error}", venue=self.venue, epoch=epoch)
            self.campaign.fenced(error)
            self._stop_term()

        return fenced

    def _stop_term(self) -> None:
        term, self._term = self._term, None
        if term is not None and not term.done():
            term.cancel()
            reaper = asyncio.get_running_loop().create_task(self._insist(term), name=f"{self.venue}-reap")
            self._reapers.add(reaper)
            reaper.add_done_callback(self._reapers.discard)

    async def _insist(self, term: asyncio.Task[None]) -> None:
        """Cancel `term` again every `REAP_S` until it has ended. A cancel can be lost inside a
        library on Python 3.11 (`asyncio.wait_for` drops one that arrives as its awaited work
        ends: CPython gh-86296). redis-py's sends did that; our Redis clients raise such a cancel
        again (io/cluster/link.py "Cancellation"), but the venue's libraries (httpx, websockets)
        are not wrapped: the venue session must still close, and the next term waits for it."""
        while not term.done():
            await self._clock.sleep(REAP_S)
            if not term.done():
                logger.warning("%s: the venue session did not stop when told: told again", self.venue)
                await self._cut(term)
                term.cancel()

    async def _end_term(self) -> None:
        """The role stops: end the term (insisting) and every reaper."""
        term, self._term = self._term, None
        pending = [t for t in (term, self._ending) if t is not None and not t.done()]
        for task in self._reapers:
            task.cancel()
        for _ in range(REAP_TRIES):
            if not pending:
                return
            for task in pending:
                task.cancel()
            await race(asyncio.wait(pending), self._clock.sleep(REAP_S))
            pending = [t for t in pending if not t.done()]
            for task in pending:
                await self._cut(task)
        if pending:
            logger.error("%s: the venue session's term did not stop: left behind", self.venue)

    async def _cut(self, term: asyncio.Task[None]) -> None:
        """Close the Redis connections of a term that did not stop: a read it waits on fails at
        once instead of at its timeout (a backstop: the lost cancels of redis-py's sends are
        raised again by our clients since io/cluster/link.py's fix)."""
        redis = self._term_redis.get(term)
        if redis is not None:
            with contextlib.suppress(Exception):
                await redis.connection_pool.disconnect()

    # -- a term: the venue session, held for the cluster ------------------------------------------------
    def _barred(self, epoch: int) -> Callable[[], str | None]:
        def barred() -> str | None:
            if self.lease.valid(epoch):
                return None
            return f"this node's lease of {self.venue} (epoch {epoch}) is not valid now"

        return barred

    async def _hold(self, epoch: int, previous: asyncio.Task[None] | None) -> None:
        if previous is not None and not previous.done():
            previous.cancel()
            await asyncio.wait([previous])  # our own cancellation still propagates
        token = self.lease.token
        assert token is not None  # acquired: the campaign told us its epoch
        if self._on_term is not None:
            self._on_term(self.venue, epoch)
        # Each new fill is journaled and streamed in one fenced write; the publisher skips fills.
        store = RedisJournalStore(
            self._url,
            self._keys,
            self.venue,
            token=token,
            stream_maxlen=self._config.cluster.stream_maxlen,
        )
        # The term's own Redis connections: closing them ends every read the term has in flight,
        # so its teardown never waits on one (`_insist`, `_wait_out`).
        redis = self._term_redis[asyncio.current_task()] = open_redis(
            self._url, name=f"{self._node_id}-{self.venue}-{epoch}"
        )
        publisher = EventPublisher(
            redis,
            self._keys,
            self.venue,
            token=token,
            maxlen=self._config.cluster.stream_maxlen,
            on_fenced=self._fenced_in(epoch),
            clock=self._clock,
            skip_fills=True,
        )
        try:
            await self._serve(epoch, token, store, publisher, redis)
        except Exception as exc:
            fenced = fenced_cause(exc)
            if fenced is not None:  # a write of this term refused: the lease is another node's now
                logger.warning("%s: the venue session stopped: %s", self.venue, fenced.message)
                self.campaign.fenced(fenced)
                return
            # Our bug or a start that cannot work (a journal in Redis that does not read back):
            # the venue is left to another node rather than this one's whole process stopping.
            # The campaign ends the tenure (a lease only dropped here would be renewed again).
            logger.exception("%s: the venue session stopped on an error; the lease is given up", self.venue)
            self.campaign.fenced(
                Fenced(f"{self.venue}: the venue session stopped: {exc!r}", venue=self.venue, epoch=epoch)
            )
        finally:
            self.bridge = None
            with contextlib.suppress(Exception):
                await publisher.aclose()
            store.close()
            self._term_redis.pop(asyncio.current_task(), None)
            with contextlib.suppress(Exception):
                await redis.aclose()
            if self._on_term is not None:
                self._on_term(self.venue, None)

    async def _serve(
        self,
        epoch: int,
        token: str,
        store: RedisJournalStore,
        publisher: EventPublisher,
        redis: aioredis.Redis,
    ) -> None:
        async with Bridge(
            self._config,
            clock=self._clock,
            grace_s=self._config.server.grace_s,
            journal_store=store,
            transports=guarded(self._transports, self._barred(epoch)),
        ) as bridge:
            self.bridge = bridge
            streams = _Streams(bridge, publisher, self.venue)
            for channel in bridge.connector(self.venue).account_channels():
                streams.want(Subscription(venue=self.venue, channel=channel), always=True)
            follower = InterestFollower(
                redis,
                self._keys,
                self.venue,
                on_want=streams.want,
                on_drop=streams.drop,
                on_refresh=streams.refresh,
                interval=self._renew_interval,
                clock=self._clock,
            )
            orders = OrderServer(
                redis,
                self._keys,
                self.venue,
                self._node_id,
                token=token,
                handler=bridge,
                on_fenced=self._fenced_in(epoch),
                clock=self._clock,
            )
            loop = asyncio.get_running_loop()
            side = [
                loop.create_task(self._guard(epoch), name=f"{self.venue}-lease-guard"),
                loop.create_task(follower.run(), name=f"{self.venue}-interest-follower"),
                loop.create_task(orders.run(), name=f"{self.venue}-order-server"),
                loop.create_task(
                    self._write_catalog(bridge, redis, token, epoch), name=f"{self.venue}-catalog"
                ),
                loop.create_task(
                    self._describe_venue(
                        bridge, VenueInfoWriter(redis, self._keys, self.venue, token=token), epoch
                    ),
                    name=f"{self.venue}-venue-info",
                ),
            ]
            try:
                done, _ = await asyncio.wait(side, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    task.result()  # a part that failed ends the term with its error
            finally:
                for task in side:
                    task.cancel()
                streams.close()
        # The Bridge is closed (venue sockets with it) before waiting on the Redis side, which a
        # blocked read may hold up (`_wait_out`): nothing of the venue session outlives the term.
        await self._wait_out(side, redis)

    async def _wait_out(self, tasks: list[asyncio.Task[Any]], redis: aioredis.Redis) -> None:
        """Wait for the term's Redis-side tasks to stop, cutting its Redis connections if they
        do not; after `REAP_TRIES` cuts they are left (logged), never the node held up."""
        pending = [task for task in tasks if not task.done()]
        for _ in range(REAP_TRIES):
            if not pending:
                break
            await race(asyncio.wait(pending), self._clock.sleep(REAP_S))
            pending = [task for task in pending if not task.done()]
            if pending:
                with contextlib.suppress(Exception):
                    await redis.connection_pool.disconnect()
                for task in pending:
                    task.cancel()
        if pending:
            logger.error(
                "%s: %s did not stop after %d cancels (a Redis read that lost its cancel): left behind",
                self.venue,
                ", ".join(task.get_name() for task in pending),
                REAP_TRIES,
            )
        for task in tasks:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: the term's own outcome was raised above

    async def _guard(self, epoch: int) -> None:
        """End the term as soon as the lease's local validity lapsed (a node stopped or cut off
        from Redis knows without asking anyone), even before the campaign's next turn."""
        while self.lease.valid(epoch):
            await self._clock.sleep(min(self._renew_interval, max(self.lease.remaining(), 0.01)))
        self._stop_term()

    async def _write_catalog(self, bridge: Bridge, redis: aioredis.Redis, token: str, epoch: int) -> None:
        """Load the venue's catalogue and write it (fenced) where the edges read it."""
        write = fenced_script(redis, _SET_CATALOG)
        while True:
            try:
                catalog = await bridge.connector(self.venue).catalog()
                text = msgspec.json.encode(None if catalog is None else list(catalog))
                with redis_errors(redis):
                    await write(
                        keys=[self._keys.lease(self.venue), self._keys.catalog(self.venue)],
                        args=[token, text],
                    )
                return
            except Fenced as exc:
                self._fenced_in(epoch)(exc)
                return
            except BrokerBridgeError as exc:  # ClusterUnavailable (Redis) among them
                logger.warning(
                    "%s: catalogue not loaded or written (%s); again in %g s",
                    self.venue,
                    exc,
                    CATALOG_RETRY_S,
                )
            await self._clock.sleep(CATALOG_RETRY_S)

    async def _describe_venue(self, bridge: Bridge, writer: VenueInfoWriter, epoch: int) -> None:
        """Tell the edges whether the venue is a simulator (asked of it once per term) and which
        symbols it lists (once loaded; again whenever the list changed)."""
        rest_url = _rest_url(self._config, self.venue)
        simulated: bool | None = None
        written: str | None = None  # the digest of the list written in this term
        while True:
            try:
                if simulated is None and rest_url is not None:
                    transports = guarded(self._transports, self._barred(epoch))
                    simulated = await simulator_at(rest_url, transports=transports, clock=self._clock)
                    if simulated is not None:
                        await writer.simulated(simulated, rest_url if simulated else None)
                symbols = await bridge.connector(self.venue).listed_symbols()
                if written != listing_digest(symbols):
                    written = await writer.symbols(symbols, now=self._clock.time())
                    logger.info("%s: %d listed symbols written for the edges", self.venue, len(symbols))
                delay = LISTING_CHECK_S if simulated is not None or rest_url is None else CATALOG_RETRY_S
            except Fenced as exc:
                self._fenced_in(epoch)(exc)
                return
            except BrokerBridgeError as exc:  # the venue or Redis unreachable: the edges keep the last
                logger.warning(
                    "%s: the venue's symbols not loaded or written (%s); again in %g s",
                    self.venue,
                    exc,
                    CATALOG_RETRY_S,
                )
                delay = CATALOG_RETRY_S
            await self._clock.sleep(delay)


def _rest_url(config: Config, venue: str) -> str | None:
    """The venue's REST address as this node reaches it (asked whether it is a simulator)."""
    if venue == "kraken":
        return str(config.kraken.rest_url)
    if venue == "primary" and config.primary is not None:
        primary = config.primary
        env = resolve_environment(primary.rest_url or primary.environment, ws_url=primary.ws_url)
        return env.rest_url
    return None


class _Streams:
    """The holder Bridge's streams published to Redis: each listened to (a fan-out consumer, so the
    stream stays open upstream) with every event handed to the publisher."""

    def __init__(self, bridge: Bridge, publisher: EventPublisher, venue: str) -> None:
        self._bridge = bridge
        self._publisher = publisher
        self._venue = venue
        self._listening: dict[Subscription, Listening] = {}
        self._always: set[Subscription] = set()

    def want(self, sub: Subscription, *, always: bool = False) -> None:
        if always:
            self._always.add(sub)
        if sub in self._listening or sub.venue != self._venue:
            return
        try:
            self._listening[sub] = self._bridge.listen(sub, self._publisher.publish, self._refused(sub))
        except BrokerBridgeError as exc:  # the venue cannot have it (the edge checked: another version?)
            logger.warning("%s: %s not streamed for the cluster: %s", self._venue, sub.describe(), exc)

    def _refused(self, sub: Subscription) -> Callable[[VenueError], None]:
        def on_refused(error: VenueError) -> None:
            # The STALE status saying why went out first (fan-out): the edges' clients see it.
            logger.warning("%s: %s refused by the venue: %s", self._venue, sub.describe(), error)

        return on_refused

    def drop(self, sub: Subscription) -> None:
        if sub in self._always:
            return
        listening = self._listening.pop(sub, None)
        if listening is not None:
            listening.close()  # the Bridge's grace period applies before the venue stream closes

    def refresh(self, sub: Subscription) -> None:
        """An edge joins `sub`: publish its current state (status first) into its stream."""
        if sub not in self._listening:
            self.want(sub)  # its interest note may come after the refresh: joining gives the state
            return
        for event in self._bridge.current_state(sub):
            self._publisher.publish(event)

    def close(self) -> None:
        for listening in self._listening.values():
            listening.close()
        self._listening.clear()
