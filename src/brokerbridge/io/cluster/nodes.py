"""Node heartbeats, and the cluster as Redis holds it (`read_cluster`, for `brokerbridge status`).

Every node keeps `bb:node:<id>` — its role, URL, the leases it holds and the stream ids its
readers reached, msgspec JSON — alive with a TTL, renewed a few times per TTL, and its id in the set
`bb:nodes`. A node that dies leaves its key to expire; `read_cluster` shows it dead once and prunes
it from the set. Ages come from Redis's clock (the key's remaining TTL, stream ids' milliseconds),
so a reader on another machine with a skewed clock reads them right.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence

import msgspec
import redis.asyncio
import redis.exceptions

from brokerbridge.core.clock import Clock
from brokerbridge.core.errors import ClusterUnavailable
from brokerbridge.core.health import (
    ClusterLease,
    ClusterNode,
    ClusterStream,
    ClusterView,
    NodeRole,
    OrderQueue,
    StreamLag,
)
from brokerbridge.io.cluster.fencing import parse_token
from brokerbridge.io.cluster.keys import ORDER_GROUP, ClusterKeys
from brokerbridge.io.cluster.link import describe_redis, redis_errors

log = logging.getLogger(__name__)

BEATS_PER_TTL = 3  # a heartbeat may be lost twice in a row before the node reads as dead
LAG_COUNT_CAP = 10_000  # entries counted behind a reader at most: a status read stays cheap


class NodeBeat(msgspec.Struct, frozen=True, kw_only=True):
    """A node's heartbeat, as stored in `bb:node:<id>`."""

    id: str
    role: NodeRole
    url: str | None
    ttl: float  # the key's time to live when written: its age is ttl − what is left
    started_at: float  # wall-clock seconds
    holds: dict[str, int] = {}  # venue → epoch
    reads: dict[str, str] = {}  # event stream key → the last id this node's readers delivered


Holds = Callable[[], Mapping[str, int]]
Reads = Callable[[], Mapping[str, str]]


class NodeHeartbeat:
    """Keeps this node's heartbeat alive: `holds()` gives venue → epoch of the leases it holds now,
    `reads()` (optional) the last id its readers delivered per event stream key; both are read
    at each beat and must answer at once."""

    def __init__(
        self,
        redis: redis.asyncio.Redis,
        keys: ClusterKeys,
        node_id: str,
        *,
        role: NodeRole,
        url: str | None,
        ttl: float,
        holds: Holds,
        clock: Clock,
        reads: Reads | None = None,
    ) -> None:
        if not ttl > 0:
            raise ValueError(f"heartbeat ttl must be positive, not {ttl}")
        self.redis = redis
        self.keys = keys
        self.node_id = node_id
        self.role: NodeRole = role
        self.url = url
        self.ttl = ttl
        self.holds = holds
        self.reads = reads
        self.clock = clock
        self.started_at = clock.time()
        self.beats = 0
        self._down = False

    def beat_of_now(self) -> NodeBeat:
        return NodeBeat(
            id=self.node_id,
            role=self.role,
            url=self.url,
            ttl=self.ttl,
            started_at=self.started_at,
            holds=dict(self.holds()),
            reads=dict(self.reads()) if self.reads is not None else {},
        )

    async def beat(self) -> None:
        """Write the heartbeat once. Raises `ClusterUnavailable` when Redis does not answer."""
        data = msgspec.json.encode(self.beat_of_now())
        with redis_errors(self.redis):
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.set(self.keys.node(self.node_id), data, px=max(1, round(self.ttl * 1000)))
                pipe.sadd(self.keys.nodes(), self.node_id)
                await pipe.execute()
        self.beats += 1

    async def run(self) -> None:
        """Beat every ttl / 3 until cancelled; on a clean stop the heartbeat is removed, so the
        node leaves the cluster's view at once rather than when its key expires."""
        try:
            while True:
                try:
                    await self.beat()
                except (ClusterUnavailable, redis.exceptions.RedisError) as error:
                    if not self._down:
                        log.warning("node heartbeat: %s", error)
                    self._down = True
                else:
                    if self._down:
                        log.info("node heartbeat: Redis answers again")
                    self._down = False
                await self.clock.sleep(self.ttl / BEATS_PER_TTL)
        finally:
            await asyncio.shield(self._leave())

    async def _leave(self) -> None:
        try:
            with redis_errors(self.redis):
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.delete(self.keys.node(self.node_id))
                    pipe.srem(self.keys.nodes(), self.node_id)
                    await pipe.execute()
        except (ClusterUnavailable, redis.exceptions.RedisError):
            pass  # it expires with its TTL


def _glob_escape(text: str) -> str:
    """`text` matched literally by a Redis glob (SCAN MATCH)."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _id_ms(stream_id: str) -> int:
    return int(stream_id.split("-", 1)[0])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def _nodes(redis: redis.asyncio.Redis, keys: ClusterKeys) -> list[tuple[ClusterNode, NodeBeat | None]]:
    ids = sorted(_text(member) for member in await redis.smembers(keys.nodes()))
    if not ids:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for node_id in ids:
            pipe.get(keys.node(node_id))
            pipe.pttl(keys.node(node_id))
        answers = await pipe.execute()
    found: list[tuple[ClusterNode, NodeBeat | None]] = []
    dead: list[str] = []
    for node_id, data, pttl in zip(ids, answers[::2], answers[1::2], strict=True):
        try:
            beat = msgspec.json.decode(data, type=NodeBeat) if data is not None else None
        except msgspec.DecodeError:  # written by another version: alive, nothing more known
            found.append((ClusterNode(id=node_id, alive=True), None))
            continue
        if beat is None:
            dead.append(node_id)
            found.append((ClusterNode(id=node_id, alive=False), None))
            continue
        age = max(0.0, beat.ttl - pttl / 1000) if pttl is not None and pttl >= 0 else None
        node = ClusterNode(
            id=node_id,
            alive=True,
            role=beat.role,
            url=beat.url,
            age=age,
            holds=beat.holds,
            started_at=beat.started_at,
        )
        found.append((node, beat))
    if dead:
        await redis.srem(keys.nodes(), *dead)  # seen dead once here: pruned
    return found


async def _lease(redis: redis.asyncio.Redis, keys: ClusterKeys, venue: str) -> ClusterLease:
    async with redis.pipeline(transaction=True) as pipe:  # one instant: value and TTL agree
        pipe.get(keys.lease(venue))
        pipe.pttl(keys.lease(venue))
        pipe.get(keys.epoch(venue))
        pipe.hmget(keys.venue_info(venue), "simulated", "count")  # io/cluster/venue.py
        token, pttl, counter, (simulated, count) = await pipe.execute()
    holder, epoch = parse_token(token) if token is not None else (None, None)
    return ClusterLease(
        venue=venue,
        holder=holder,
        epoch=epoch,
        last_epoch=int(counter) if counter is not None else 0,
        ttl_left=pttl / 1000 if token is not None and pttl >= 0 else None,
        simulated=simulated is not None and _text(simulated) == "1",
        symbols=int(count) if count is not None and _text(count).isdigit() else None,
    )


async def _streams(
    redis: redis.asyncio.Redis,
    keys: ClusterKeys,
    venue: str,
    now_ms: int,
    reads: Mapping[str, Mapping[str, str]],
) -> list[ClusterStream]:
    prefix = keys.events_prefix(venue)
    names = sorted(
        [_text(key) async for key in redis.scan_iter(match=_glob_escape(prefix) + "*", _type="STREAM")]
    )
    streams: list[ClusterStream] = []
    for name in names:
        info = await redis.xinfo_stream(name)
        length = int(info["length"])
        last_entry = info.get("last-entry")
        last_id = _text(last_entry[0]) if last_entry else None
        lags: list[StreamLag] = []
        for node, positions in sorted(reads.items()):
            read_id = positions.get(name)
            if read_id is None or last_id is None:
                continue
            behind = await redis.xrange(name, min="(" + read_id, count=LAG_COUNT_CAP)
            lags.append(
                StreamLag(
                    node=node,
                    last_read_id=read_id,
                    entries=len(behind or ()),
                    seconds=max(0, _id_ms(last_id) - _id_ms(read_id)) / 1000,
                )
            )
        streams.append(
            ClusterStream(
                venue=venue,
                topic=name[len(prefix) :],
                length=length,
                last_id=last_id,
                age=max(0, now_ms - _id_ms(last_id)) / 1000 if last_id is not None else None,
                lags=tuple(lags),
            )
        )
    return streams


async def _orders(redis: redis.asyncio.Redis, keys: ClusterKeys, venue: str) -> OrderQueue | None:
    name = keys.orders(venue)
    if not await redis.exists(name):
        return None
    length = int(await redis.xlen(name))
    group = next(
        (g for g in await redis.xinfo_groups(name) if _text(g["name"]) == ORDER_GROUP),
        None,
    )
    if group is None:
        return OrderQueue(venue=venue, length=length, pending=0, unread=length, consumers=0)
    lag = group.get("lag")
    return OrderQueue(
        venue=venue,
        length=length,
        pending=int(group["pending"]),
        unread=int(lag) if lag is not None else None,
        consumers=int(group["consumers"]),
    )


async def read_cluster(redis: redis.asyncio.Redis, keys: ClusterKeys, venues: Sequence[str]) -> ClusterView:
    """The cluster as Redis holds it now: nodes (dead ones pruned once shown), each venue's lease
    and epoch, its event streams with each reporting node's lag, and its order queue. Raises
    `ClusterUnavailable` when Redis does not answer."""
    with redis_errors(redis):
        seconds, micros = await redis.time()
        now_ms = seconds * 1000 + micros // 1000
        nodes = await _nodes(redis, keys)
        reads = {node.id: beat.reads for node, beat in nodes if beat is not None and beat.reads}
        leases = [await _lease(redis, keys, venue) for venue in venues]
        streams = [stream for venue in venues for stream in await _streams(redis, keys, venue, now_ms, reads)]
        orders = [queue for venue in venues if (queue := await _orders(redis, keys, venue)) is not None]
    return ClusterView(
        redis=describe_redis(redis),
        time=now_ms / 1000,
        nodes=tuple(node for node, _ in nodes),
        leases=tuple(leases),
        streams=tuple(streams),
        orders=tuple(orders),
    )
