"""`ClusterNode`: one node of a brokerbridge cluster on Redis (docs/cluster.md "Roles in one
process"), what `brokerbridge serve --cluster redis://…` runs.

    async with ClusterNode(config) as node:        # config.cluster.redis_url set
        BridgeServer(node.bridge, …)               # the server serves the edge Bridge

Every node is an edge: its `bridge` is a Bridge whose connectors are `ClusterConnector`s (the
holders' events, read from Redis), whose orders go to each venue's holder (`EdgeOrders`:
`OrderRelay`, fills paged from the journal in Redis) and which journals nothing itself. A node of
role `holder` (the default) also runs a `HolderRole` per venue, campaigning for the venue's lease;
its clients still read through Redis like everyone else's. The node's heartbeat (`NodeHeartbeat`)
tells `brokerbridge status` what it is and what it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from typing import Any

from brokerbridge.bridge import Bridge, venue_connectors
from brokerbridge.cluster.holder import HolderRole
from brokerbridge.core.clock import Clock, SystemClock, race
from brokerbridge.core.config import Config
from brokerbridge.core.errors import ClusterUnavailable, ConfigError, ProtocolError, UnknownVenue, VenueError
from brokerbridge.core.events import AnyEvent, Subscription
from brokerbridge.core.orders import AmendRequest, CancelAck, FillsPage, OrderAck, OrderRequest
from brokerbridge.io.cluster.connector import ClusterConnector
from brokerbridge.io.cluster.journal import RedisJournalStore
from brokerbridge.io.cluster.keys import ClusterKeys, describe_url
from brokerbridge.io.cluster.link import open_redis
from brokerbridge.io.cluster.nodes import NodeHeartbeat
from brokerbridge.io.cluster.orders import OrderRelay, ReplyInbox
from brokerbridge.io.connector import Connector
from brokerbridge.io.transports import Transports, guarded
from brokerbridge.services.orders import fills_page

logger = logging.getLogger(__name__)

CUT_S = 1.0  # an edge Bridge still stopping after this long has its Redis connections closed


def default_node_id() -> str:
    """`<hostname>-<pid>`: unique on a machine, and says where the node runs."""
    return f"{socket.gethostname()}-{os.getpid()}".replace(" ", "-")


class ClusterNode:
    def __init__(
        self,
        config: Config,
        *,
        clock: Clock | None = None,
        transports: Transports | None = None,
        queue_size: int = 10_000,
        url: str = "",
    ) -> None:
        """`transports`: how a holder reaches the venues (the network by default). `url`: this
        node's own address, as its heartbeat gives it (`status`)."""
        cluster = config.cluster
        if cluster.redis_url is None:
            raise ConfigError(
                "cluster mode needs the cluster's Redis",
                remedy="give `serve --cluster redis://host:6379/0`, or set [cluster] redis_url",
            )
        self.config = config
        self.redis_url = cluster.redis_url.reveal()
        self.where = describe_url(self.redis_url)
        self.node_id = cluster.node_id or default_node_id()
        if " " in self.node_id:
            raise ConfigError(
                f"[cluster] node_id {self.node_id!r} has a space",
                remedy="a node id is one word (letters, digits, - and _): it is half of a lease token",
            )
        self.role = cluster.role
        self.keys = ClusterKeys(cluster.prefix)
        self.clock = clock or SystemClock()
        self.url = url
        self._transports = transports or Transports()
        self._queue_size = queue_size
        self._redis = open_redis(self.redis_url, name=self.node_id)
        self.holders: dict[str, HolderRole] = {}
        self.relays: dict[str, OrderRelay] = {}
        self._journals: dict[str, RedisJournalStore] = {}
        self._held: dict[str, int] = {}  # venue → the epoch this node holds it with
        # The node's reply stream, read once for the order relays of every venue.
        self._inbox = ReplyInbox(self._redis, self.keys, self.node_id, clock=self.clock)
        self.bridge = Bridge(
            config,
            clock=self.clock,
            queue_size=queue_size,
            grace_s=config.server.grace_s,
            connectors=self._edge_connectors,
            order_route=EdgeOrders(self),
            journal=False,
            simulators=self._simulated,
        )
        self.heartbeat = NodeHeartbeat(
            self._redis,
            self.keys,
            self.node_id,
            role=self.role,
            url=url or None,
            ttl=cluster.interest_ttl,
            holds=lambda: self._held,
            clock=self.clock,
            reads=self._reads,
        )
        self._stack: contextlib.AsyncExitStack | None = None
        self._runner: asyncio.Task[None] | None = None

    # -- lifetime ----------------------------------------------------------------------------------------
    async def __aenter__(self) -> ClusterNode:
        cluster = self.config.cluster
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(self._redis.aclose)
            stack.push_async_callback(self._inbox.aclose)
            for venue in self.config.venues:
                if venue == "primary" and self.config.primary is None:
                    continue  # not configured here: not served (as a single node does)
                self.relays[venue] = OrderRelay(
                    self._redis,
                    self.keys,
                    venue,
                    self.node_id,
                    timeout=cluster.order_timeout,
                    clock=self.clock,
                    inbox=self._inbox,
                )
            await self.bridge.__aenter__()
            stack.push_async_callback(self._close_bridge)
            await self._read_venues()
            if self.role == "holder":
                for venue in self.bridge.connectors:
                    self.holders[venue] = HolderRole(
                        venue,
                        config=self.config,
                        redis=self._redis,
                        url=self.redis_url,
                        keys=self.keys,
                        node_id=self.node_id,
                        clock=self.clock,
                        transports=self._transports,
                        on_term=self._on_term,
                    )
            self._runner = asyncio.get_running_loop().create_task(self._run(), name="cluster-node")
            self._runner.add_done_callback(_said_if_failed)
            stack.push_async_callback(self._stop_runner)
            logger.info(
                "cluster node %s (%s) on %s: venues %s",
                self.node_id,
                self.role,
                self.where,
                ", ".join(self.bridge.connectors),
            )
            self._stack = stack.pop_all()
        return self

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.heartbeat.run(), name="cluster-heartbeat")
            for holder in self.holders.values():
                tasks.create_task(holder.run(), name=f"{holder.venue}-holder")

    async def _stop_runner(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            await asyncio.wait([runner])

    async def _close_bridge(self) -> None:
        """Stop the edge Bridge; while it has not stopped, close the node's Redis connections
        every `CUT_S`: a read still waiting then fails at once (a backstop: a cancel redis-py
        dropped is raised again by our clients, io/cluster/link.py "Cancellation")."""
        closing = asyncio.get_running_loop().create_task(self.bridge.__aexit__(None, None, None))
        while not closing.done():
            await race(asyncio.wait([closing]), self.clock.sleep(CUT_S))
            if not closing.done():
                logger.warning(
                    "cluster node %s: the edge did not stop when told: cutting Redis", self.node_id
                )
                await self._redis.connection_pool.disconnect()
        closing.result()

    async def __aexit__(self, *exc_info: Any) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()
        for store in self._journals.values():
            store.close()
        self._journals.clear()

    # -- the edge ------------------------------------------------------------------------------------------
    def _edge_connectors(
        self,
        *,
        emit: Callable[[AnyEvent], None],
        on_refused: Callable[[Subscription, VenueError], None],
    ) -> list[Connector]:
        """A `ClusterConnector` per venue, each with the venue's real connector as its shadow
        (never run; transports that refuse everything: an edge never reaches a venue)."""
        cluster = self.config.cluster
        shadows = venue_connectors(
            self.config,
            emit=_discard,
            on_refused=_ignore,
            clock=self.clock,
            transports=guarded(Transports(), _edge_never_sends),
        )
        return [
            ClusterConnector(
                shadow.venue,
                redis=self._redis,
                url=self.redis_url,
                keys=self.keys,
                node_id=self.node_id,
                shadow=shadow,
                emit=emit,
                on_refused=on_refused,
                clock=self.clock,
                renew_interval=cluster.renew_interval,
                interest_ttl=cluster.interest_ttl,
            )
            for shadow in shadows
        ]

    async def _read_venues(self) -> None:
        """What the holders said of each venue, read once before the node serves (the banner and
        the first clients see `simulated`, and unlisted symbols are refused from the start);
        Redis not answering is not fatal here: each connector reads it again every renew_interval."""
        for connector in self._cluster_connectors():
            try:
                await connector.read_venue()
            except (ClusterUnavailable, ProtocolError) as exc:
                logger.warning("%s: %s", connector.venue, exc.message)

    def _cluster_connectors(self) -> list[ClusterConnector]:
        return [c for c in self.bridge.connectors.values() if isinstance(c, ClusterConnector)]

    def _simulated(self) -> frozenset[str]:
        """The venues whose holder reaches a brokerbridge simulator (the edge Bridge's `simulated`)."""
        return frozenset(c.venue for c in self._cluster_connectors() if c.simulated)

    def journal(self, venue: str) -> RedisJournalStore:
        """The venue's journal in Redis, read here (fills pages), never written."""
        store = self._journals.get(venue)
        if store is None:
            # No token: this node only reads it (a write would be fenced).
            store = self._journals[venue] = RedisJournalStore(self.redis_url, self.keys, venue, token="")
        return store

    def relay(self, venue: str) -> OrderRelay:
        try:
            return self.relays[venue]
        except KeyError:
            raise UnknownVenue(
                f"unknown venue {venue!r}", venue=venue, remedy=f"venues: {', '.join(sorted(self.relays))}"
            ) from None

    def _on_term(self, venue: str, epoch: int | None) -> None:
        if epoch is None:
            self._held.pop(venue, None)
        else:
            self._held[venue] = epoch

    def _reads(self) -> dict[str, str]:
        """Every event stream this node's edge reads → the last id it delivered (`status`: lags)."""
        reads: dict[str, str] = {}
        for connector in self._cluster_connectors():
            for topic, last in connector.reader.topics.items():
                if last[:1].isdigit():  # an entry id (not "$": nothing read yet)
                    reads[self.keys.events(connector.venue, topic)] = last
        return reads

    @property
    def held(self) -> dict[str, int]:
        """The venues this node holds now → their epochs."""
        return dict(self._held)


class EdgeOrders:
    """The edge Bridge's order route (`bridge.OrderRoute`): orders to the venue's holder through
    Redis (`OrderRelay`), fills paged from the journal in Redis the holder writes."""

    def __init__(self, node: ClusterNode) -> None:
        self._node = node

    async def place(self, request: OrderRequest) -> OrderAck:
        return await self._node.relay(request.venue).place(request)

    async def cancel(
        self, venue: str, order_id: str | None = None, *, client_order_id: str | None = None
    ) -> CancelAck:
        return await self._node.relay(venue).cancel(order_id=order_id, client_order_id=client_order_id)

    async def amend(self, request: AmendRequest) -> OrderAck:
        return await self._node.relay(request.venue).amend(request)

    def fills_page(self, venue: str, *, after: str | None = None, limit: int = 500) -> FillsPage:
        scope = self._node.bridge.connector(venue).journal_scope
        return fills_page(self._node.journal(venue), venue, scope, after=after, limit=limit)


def _said_if_failed(runner: asyncio.Task[None]) -> None:
    """The node's heartbeat and holder roles stopped on an error (a bug): said at once, not when
    the process stops, since the node keeps serving its clients what Redis has."""
    if not runner.cancelled() and (error := runner.exception()) is not None:
        logger.error("cluster node: heartbeat and holder roles stopped on an error", exc_info=error)


def _discard(event: AnyEvent) -> None:
    return None


def _ignore(sub: Subscription, error: VenueError) -> None:
    return None


def _edge_never_sends() -> str:
    return "a cluster edge never reaches the venue itself (the venue's holder does)"
