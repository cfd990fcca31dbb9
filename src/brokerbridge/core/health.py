"""Health: how each venue's upstream streams are doing, as typed Structs.

The connection supervisor reports its connection as a `StreamHealth`; each connector composes its
venue's `VenueHealth` from those (Primary adds its REST-polled account streams, `StreamHealth.polled`);
the Bridge hands them out as they are (`Bridge.health()`); the server encodes them unchanged
(`/api/health`, `/api/venues`, `/metrics`) and `BridgeClient` decodes into these very types, so a bot
in process and a remote one read the same fields.

Readiness is apart from liveness: a venue with an account is `starting` until its account streams
(balances, executions) delivered their first snapshot, then `ready` while they stay live, and
`degraded` (with the reason and what to do) while one is not — the Bridge composes it
(`Bridge.readiness()`, `VenueHealth.readiness`, `/api/ready`).

The venues differ in which streams they have (Kraken: `public`, `private`; Primary: `ws`, and `risk`
while any account stream is polled) and in Primary's `environment`. Token expiry is common: Kraken's
WebSocket token and Primary's login token both expire.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

import msgspec

from brokerbridge.core.events import StreamState

StreamMode = Literal["ws", "polling", "down", "rest"]
"""How a stream's data arrives: `ws` over its WebSocket; `polling` from REST while the socket is down;
`down` neither (the socket is down and REST polling fails too); `rest` polled by design (Primary's
account streams, which have no WebSocket)."""

HealthStatus = Literal["ok", "degraded"]

ReadyState = Literal["starting", "ready", "degraded"]
"""A venue's readiness: `starting` until its account streams delivered their first snapshot (no
failure yet), `ready` while they are live, `degraded` while one is not (or failed before its first
snapshot)."""

# Best to worst: a group of polled streams reports its worst member's state.
SEVERITY: tuple[StreamState, ...] = (
    StreamState.IDLE,
    StreamState.LIVE,
    StreamState.POLLING,
    StreamState.RESYNCING,
    StreamState.CONNECTING,
    StreamState.RECONNECTING,
    StreamState.STALE,
)


class StreamHealth(msgspec.Struct, frozen=True, kw_only=True):
    """One upstream connection, or (mode `rest`) a group of REST-polled streams — which have no
    connection: their `connected`, `reconnects` and `seconds_since_last_message` are None."""

    state: StreamState  # `stale` while connected but the data cannot be trusted (see `last_error`)
    mode: StreamMode
    connected: bool | None
    reconnects: int | None
    seconds_since_last_message: float | None
    last_error: str | None  # what is wrong now (the stream is degraded), else why the last attempt ended
    subscriptions: dict[str, StreamState]  # stream (`venue:channel[:symbol]…`) → its state
    url: str | None = None

    def degraded(self) -> bool:
        """Streams are wanted here and their connection (or the worst polled one) is not live."""
        return bool(self.subscriptions) and self.state is not StreamState.LIVE

    @classmethod
    def polled(cls, states: Mapping[str, StreamState]) -> StreamHealth | None:
        """REST-polled streams (stream → state) as one entry with their worst state; None: none."""
        if not states:
            return None
        return cls(
            state=max(states.values(), key=SEVERITY.index),
            mode="rest",
            connected=None,
            reconnects=None,
            seconds_since_last_message=None,
            last_error=None,
            subscriptions=dict(states),
        )


class VenueReadiness(msgspec.Struct, frozen=True, kw_only=True):
    """Whether a venue's account can be relied on now, and if not, why and what to do."""

    state: ReadyState
    reason: str  # what the state rests on (`ready`: what is loaded; otherwise what is missing)
    remedy: str = ""  # what to do about it ("" when ready)
    account_streams: dict[str, StreamState] = {}  # held always: stream → its state

    @property
    def ready(self) -> bool:
        return self.state == "ready"


class VenueHealth(msgspec.Struct, frozen=True, kw_only=True):
    """A venue's credentials, token and streams (by name: Kraken `public`, `private`; Primary `ws`,
    and `risk` for its REST-polled account streams while any is open)."""

    venue: str
    credentials: bool  # the user's credentials are configured (never them; a simulator's demo account is not)
    token_expires_at: float | None  # wall-clock seconds; None until a token was issued
    streams: dict[str, StreamHealth]
    rest_url: str | None = None
    environment: str | None = None  # Primary's API environment (e.g. reMarkets); None for Kraken
    # An embedded simulator with its demo account stands in for the venue: no data here is real.
    simulated: bool = False
    # Composed by the Bridge (the connector knows its streams, not whether the account is loaded).
    readiness: VenueReadiness | None = None

    def degraded(self) -> bool:
        return any(stream.degraded() for stream in self.streams.values())


def overall_status(venues: Iterable[VenueHealth]) -> HealthStatus:
    """`degraded` while any wanted stream of any venue is not live, else `ok`."""
    return "degraded" if any(venue.degraded() for venue in venues) else "ok"


# -- the cluster (docs/cluster.md): what `brokerbridge status` shows of the nodes sharing a Redis ----

NodeRole = Literal["holder", "edge"]


class ClusterNode(msgspec.Struct, frozen=True, kw_only=True):
    """One node as its heartbeat in Redis describes it. A node whose heartbeat expired is shown
    once (`alive` false, what it last said unknown) and then pruned from the node set."""

    id: str
    alive: bool
    role: NodeRole | None = None  # None: no heartbeat to read it from (dead)
    url: str | None = None  # where its server listens, as it announced it
    age: float | None = None  # seconds since its last heartbeat (Redis's clock); None: dead
    holds: dict[str, int] = {}  # venue → epoch of the leases it says it holds
    started_at: float | None = None  # wall-clock seconds, the node's own clock


class ClusterLease(msgspec.Struct, frozen=True, kw_only=True):
    """A venue's lease: who holds it, with which fencing epoch, for how much longer."""

    venue: str
    holder: str | None  # node id; None: nobody holds the venue (failover under way, or no holder node)
    epoch: int | None  # the holder's epoch; None with no holder
    last_epoch: int  # the epoch counter: the last epoch ever granted (0: never held)
    ttl_left: float | None  # seconds before Redis expires the lease unless renewed; None with no holder
    simulated: bool = False  # a holder found the venue to be a brokerbridge simulator
    symbols: int | None = None  # the symbols the venue lists, as a holder loaded them (None: not yet)


class StreamLag(msgspec.Struct, frozen=True, kw_only=True):
    """How far one node's reader is behind a stream, from the last id it reported reading."""

    node: str
    last_read_id: str
    entries: int  # entries after it (counted up to `LAG_COUNT_CAP`: a lower bound when equal)
    seconds: float  # the time between the entry it read last and the stream's last entry


class ClusterStream(msgspec.Struct, frozen=True, kw_only=True):
    """One event stream of a venue (one fan-out topic)."""

    venue: str
    topic: str
    length: int  # entries kept (the resume window)
    last_id: str | None  # None: empty
    age: float | None  # seconds since its last entry was added (Redis's clock); None: empty
    lags: tuple[StreamLag, ...] = ()  # the nodes that reported reading it


class OrderQueue(msgspec.Struct, frozen=True, kw_only=True):
    """A venue's order-request stream: requests waiting for the holder."""

    venue: str
    length: int  # requests kept in the stream
    pending: int  # read by a holder and not acknowledged yet (answered requests are acknowledged)
    unread: int | None  # not read by any holder yet; None when Redis does not say (before 7.0)
    consumers: int  # holders that ever read it


class ClusterView(msgspec.Struct, frozen=True, kw_only=True):
    """The cluster on one Redis, read directly from it (no `serve` needed): nodes, leases and
    epochs, event streams and lags, order queues."""

    redis: str  # the Redis, as `describe_url` shows it (never its password)
    time: float  # Redis's wall-clock time of the reading
    nodes: tuple[ClusterNode, ...]
    leases: tuple[ClusterLease, ...]
    streams: tuple[ClusterStream, ...]
    orders: tuple[OrderQueue, ...]
