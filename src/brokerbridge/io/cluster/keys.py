"""Every Redis key and stream name of a cluster, in one place (docs/cluster.md "Keys").

Each venue's keys share a hash tag (`{kraken}`) so a Lua script touching several of them (the
lease and a stream, the lease and a journal row) stays valid on a Redis Cluster too.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

ORDER_GROUP = "holders"  # the consumer group of every venue's order-request stream


@dataclass(frozen=True, slots=True)
class ClusterKeys:
    prefix: str = "bb"

    def _venue(self, venue: str) -> str:
        return f"{self.prefix}:{{{venue}}}"

    def lease(self, venue: str) -> str:
        return f"{self._venue(venue)}:lease"

    def epoch(self, venue: str) -> str:
        return f"{self._venue(venue)}:epoch"

    def events(self, venue: str, topic: str) -> str:
        """The stream of one fan-out topic (`core.topics.topic_of`) of `venue`."""
        return f"{self._venue(venue)}:ev:{topic}"

    def events_prefix(self, venue: str) -> str:
        return f"{self._venue(venue)}:ev:"

    def control(self, venue: str) -> str:
        """Edges → the holder: interest changed, refresh a stream."""
        return f"{self._venue(venue)}:ctl"

    def interest(self, venue: str, node: str) -> str:
        return f"{self._venue(venue)}:interest:{node}"

    def interest_prefix(self, venue: str) -> str:
        return f"{self._venue(venue)}:interest:"

    def orders(self, venue: str) -> str:
        return f"{self._venue(venue)}:orders"

    def refused(self, venue: str, client_order_id: str) -> str:
        """The newest order request with this client order id that was answered without placing
        it (its stream entry id, expiring): older requests with the id are no longer acted on."""
        return f"{self._venue(venue)}:refused:{client_order_id}"

    def reply(self, node: str) -> str:
        return f"{self.prefix}:reply:{node}"

    def journal(self, venue: str, scope: str, part: str) -> str:
        """One part (fills, fill order, orders, ops…) of the executions journal of an account."""
        return f"{self._venue(venue)}:journal:{scope}:{part}"

    def catalog(self, venue: str) -> str:
        """The venue's instrument catalogue as its holder loaded it (msgspec JSON; null: none)."""
        return f"{self._venue(venue)}:catalog"

    def venue_info(self, venue: str) -> str:
        """What the venue's holder says of it (hash: simulated, the symbol list's digest…)."""
        return f"{self._venue(venue)}:venue"

    def symbols(self, venue: str) -> str:
        """Every symbol the venue lists, as its holder loaded them (msgspec JSON, sorted)."""
        return f"{self._venue(venue)}:symbols"

    def node(self, node: str) -> str:
        return f"{self.prefix}:node:{node}"

    def nodes(self) -> str:
        return f"{self.prefix}:nodes"


def describe_url(url: str) -> str:
    """A Redis URL as logs, errors and `status` may show it: scheme, host, port and db, never the
    user or password it may carry."""
    parsed = urlparse(url)
    if parsed.scheme == "unix":
        return f"unix://{parsed.path}"
    host = parsed.hostname or "?"
    port = f":{parsed.port}" if parsed.port else ""
    db = parsed.path if parsed.path not in ("", "/") else ""
    return f"{parsed.scheme}://{host}{port}{db}"
