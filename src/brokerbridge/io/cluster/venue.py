"""What a venue's holder tells the edges of the venue (docs/cluster.md "What the holder says of the
venue"): whether it reaches a brokerbridge simulator, and every symbol the venue lists.

    info = await read_venue_info(redis, keys, "kraken")      # VenueInfo, or None: no holder wrote one
    symbols = await read_symbols(redis, keys, "kraken")      # the list whose digest is info.listed

A single process knows both by itself: its embedded simulators are its own (`Bridge.simulated`),
and its connectors load the venue's list (Kraken's AssetPairs, Primary's catalogue) to refuse an
unlisted symbol before anything goes upstream (`Connector.validate`). A cluster edge runs neither;
the holder does, and writes (fenced, like every holder write):

- `ClusterKeys.venue_info(v)`, a hash: `node`, `epoch` (who wrote it), `simulated` (`1`/`0`) and
  `sim_url` (the simulator's address, no secret in it), `listed` (the symbol list's digest),
  `count`, `listed_at` (wall time of the load);
- `ClusterKeys.symbols(v)`: the list itself (msgspec JSON, sorted), written with `listed` in one
  script, so a digest always names the list beside it.

Edges read the small hash every `renew_interval` and the list only when its digest changed. Neither
key expires: a venue's list and its simulator do not change because the holder did, and the next
holder writes both again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

import msgspec
import redis.asyncio as aioredis

from brokerbridge.core.clock import Clock
from brokerbridge.core.errors import BrokerBridgeError, ProtocolError
from brokerbridge.io.cluster.fencing import fenced_script
from brokerbridge.io.cluster.keys import ClusterKeys
from brokerbridge.io.transports import Transports

SIM_PROBE_PATH = "/_sim/faults"  # served by both simulators (sim/server.py `control_routes`), no venue's
SIM_PROBE_TIMEOUT_S = 2.0

_symbols_decoder = msgspec.json.Decoder(list[str])

_WRITE_SIMULATED = """
redis.call('HSET', KEYS[2], 'node', ARGV[2], 'epoch', ARGV[3], 'simulated', ARGV[4], 'sim_url', ARGV[5])
return 1
"""
_WRITE_SYMBOLS = """
redis.call('SET', KEYS[3], ARGV[6])
redis.call('HSET', KEYS[2], 'node', ARGV[2], 'epoch', ARGV[3], 'listed', ARGV[4], 'count', ARGV[5],
           'listed_at', ARGV[7])
return 1
"""


class VenueInfo(msgspec.Struct, frozen=True):
    """The venue as its holder described it last (`read_venue_info`)."""

    node: str | None = None  # the holder that wrote it last
    epoch: int | None = None
    simulated: bool | None = None  # None: no holder has looked yet
    sim_url: str | None = None  # the simulator's REST address, when simulated
    listed: str | None = None  # the digest of the list in `ClusterKeys.symbols` (None: none yet)
    count: int | None = None  # symbols in that list
    listed_at: float | None = None  # wall time the holder loaded it


def listing_digest(symbols: Iterable[str]) -> str:
    """A list's digest: the same symbols, in any order, give the same text."""
    return hashlib.sha1("\n".join(sorted(symbols)).encode()).hexdigest()


async def read_venue_info(redis: aioredis.Redis, keys: ClusterKeys, venue: str) -> VenueInfo | None:
    """The holder's description of `venue` (None: no holder has written one). Raises what Redis
    raises when it is unreachable (the caller maps it: `link.redis_errors`)."""
    raw = await redis.hgetall(keys.venue_info(venue))
    if not raw:
        return None
    fields = {_text(k): _text(v) for k, v in raw.items()}
    simulated = fields.get("simulated")
    return VenueInfo(
        node=fields.get("node"),
        epoch=_int(fields.get("epoch")),
        simulated=None if simulated is None else simulated == "1",
        sim_url=fields.get("sim_url") or None,
        listed=fields.get("listed") or None,
        count=_int(fields.get("count")),
        listed_at=_float(fields.get("listed_at")),
    )


async def read_symbols(redis: aioredis.Redis, keys: ClusterKeys, venue: str) -> frozenset[str] | None:
    """The venue's symbol list as its holder wrote it (None: none written); `ProtocolError` for
    one that does not read (written by another version)."""
    raw = await redis.get(keys.symbols(venue))
    if raw is None:
        return None
    try:
        return frozenset(_symbols_decoder.decode(raw))
    except msgspec.DecodeError as exc:
        raise ProtocolError(
            f"{venue}: the symbol list in Redis does not read ({exc})",
            remedy="every node of a cluster must run the same brokerbridge version",
        ) from None


class VenueInfoWriter:
    """A holder's writes of `VenueInfo`, each fenced by its lease token (`Fenced` once deposed)."""

    def __init__(self, redis: aioredis.Redis, keys: ClusterKeys, venue: str, *, token: str) -> None:
        self._keys = [keys.lease(venue), keys.venue_info(venue), keys.symbols(venue)]
        self._token = token
        node, _, epoch = token.rpartition(" ")
        self._who = [node, epoch]
        self._simulated = fenced_script(redis, _WRITE_SIMULATED)
        self._symbols = fenced_script(redis, _WRITE_SYMBOLS)

    async def simulated(self, simulated: bool, sim_url: str | None) -> None:
        args = [self._token, *self._who, "1" if simulated else "0", sim_url or ""]
        await self._simulated(keys=self._keys, args=args)

    async def symbols(self, symbols: frozenset[str], *, now: float) -> str:
        """Write the list (and its digest beside it); the digest written."""
        ordered = sorted(symbols)
        digest = listing_digest(ordered)
        args = [self._token, *self._who, digest, str(len(ordered)), msgspec.json.encode(ordered), repr(now)]
        await self._symbols(keys=self._keys, args=args)
        return digest


async def simulator_at(rest_url: str, *, transports: Transports, clock: Clock) -> bool | None:
    """Whether the venue at `rest_url` is a brokerbridge simulator: both answer `GET /_sim/faults`
    with their fault switches (a JSON object); a real venue answers it 404 (or not at all).
    None: no answer (the venue unreachable: ask again later)."""
    http = transports.http(timeout=SIM_PROBE_TIMEOUT_S, deadline=SIM_PROBE_TIMEOUT_S, clock=clock)
    try:
        answer = await http.request("GET", rest_url.rstrip("/") + SIM_PROBE_PATH)
    except BrokerBridgeError:
        return None
    finally:
        await http.aclose()
    if answer.status != 200:
        return False
    try:
        return isinstance(json.loads(answer.body), dict)
    except ValueError:
        return False


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _int(text: str | None) -> int | None:
    return int(text) if text and text.lstrip("-").isdigit() else None


def _float(text: str | None) -> float | None:
    try:
        return None if text is None else float(text)
    except ValueError:
        return None
