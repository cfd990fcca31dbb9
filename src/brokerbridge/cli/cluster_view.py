"""`brokerbridge status` of a cluster: read from its Redis directly (no `serve` needed, nor reachable)
— nodes and roles, each venue's lease and fencing epoch, event streams and each node's lag, order
queues — as a table, or `--json` (the `ClusterView`)."""

from __future__ import annotations

from urllib.parse import urlparse

from rich.console import Group
from rich.table import Table
from rich.text import Text

from brokerbridge.cli.render import ago
from brokerbridge.core.config import REDIS_SCHEMES, Config
from brokerbridge.core.errors import ConfigError
from brokerbridge.core.health import ClusterView
from brokerbridge.core.secret import Secret
from brokerbridge.io.cluster.keys import ClusterKeys


def cluster_url(cfg: Config, given: str | None) -> Secret | None:
    """The Redis to read: `--cluster URL`, else `[cluster] redis_url`; None: not a cluster."""
    if given is None:
        return cfg.cluster.redis_url
    parsed = urlparse(given)
    if parsed.scheme not in REDIS_SCHEMES or not (parsed.netloc or parsed.path):
        raise ConfigError(
            "--cluster is not a Redis URL",  # never echoed: it may carry the password
            remedy="use redis://[:password@]host:6379/0, rediss://… for TLS, or unix:///path/redis.sock",
        )
    return Secret(given)


async def fetch_cluster(cfg: Config, url: Secret) -> ClusterView:
    """The cluster as its Redis holds it now; `ClusterUnavailable` when Redis does not answer."""
    # Here: redis-py loads only for `status --cluster`, not for every command of the CLI.
    from brokerbridge.io.cluster.link import open_redis
    from brokerbridge.io.cluster.nodes import read_cluster

    redis = open_redis(url, name="brokerbridge-status")
    try:
        return await read_cluster(redis, ClusterKeys(cfg.cluster.prefix), cfg.venues)
    finally:
        await redis.aclose()


def _ago(seconds: float) -> str:
    # Tenths below 10 s: a heartbeat or a stream entry 0.3 s old is the normal case, 4 s a warning.
    return f"{seconds:.1f} s" if seconds < 10 else ago(seconds)


def render_cluster(view: ClusterView) -> Group:
    alive = [node for node in view.nodes if node.alive]
    holders = sum(1 for node in alive if node.role == "holder")
    head = Text()
    head.append(f"brokerbridge cluster on {view.redis}", style="bold")
    head.append(f" — {len(alive)} node(s) alive ({holders} holder candidate(s))")
    nodes = Table("node", "role", "state", "heartbeat", "holds", "url", box=None)
    for node in view.nodes:
        if not node.alive:
            nodes.add_row(node.id, "", Text("dead (pruned)", style="red"), "", "", "")
            continue
        holds = ", ".join(f"{venue} (epoch {epoch})" for venue, epoch in sorted(node.holds.items()))
        nodes.add_row(
            node.id,
            node.role or "?",
            Text("alive", style="green"),
            "" if node.age is None else f"{_ago(node.age)} ago",
            holds or "—",
            node.url or "",
        )
    if not view.nodes:
        nodes.add_row("—", "", Text("no node has announced itself", style="dim"), "", "", "")
    leases = Table("venue", "holder", "epoch", "last epoch", "lease left", "symbols", box=None)
    for lease in view.leases:
        # As `serve`'s banner says it: a simulator's data is no real market.
        venue = f"{lease.venue} (SIMULATED)" if lease.simulated else lease.venue
        symbols = "—" if lease.symbols is None else str(lease.symbols)
        if lease.holder is None:
            leases.add_row(
                venue, Text("nobody holds it", style="yellow"), "—", str(lease.last_epoch), "—", symbols
            )
        else:
            left = "" if lease.ttl_left is None else f"{lease.ttl_left:.1f} s"
            leases.add_row(venue, lease.holder, str(lease.epoch), str(lease.last_epoch), left, symbols)
    streams = Table("venue", "stream", "entries", "last entry", "readers behind", box=None)
    for stream in view.streams:
        lags = ", ".join(
            f"{lag.node} {lag.entries} ({lag.seconds:.1f} s)" if lag.entries else f"{lag.node} 0"
            for lag in stream.lags
        )
        streams.add_row(
            stream.venue,
            stream.topic,
            str(stream.length),
            "empty" if stream.age is None else f"{_ago(stream.age)} ago",
            lags or "—",
        )
    if not view.streams:
        streams.add_row("—", Text("no event stream yet", style="dim"), "", "", "")
    parts: list[Table | Text] = [head, Text(), nodes, Text(), leases, Text(), streams]
    if view.orders:
        parts.append(Text())
    for queue in view.orders:
        unread = "" if queue.unread is None else f", {queue.unread} not read yet"
        parts.append(
            Text(
                f"orders {queue.venue}: {queue.length} request(s) kept, {queue.pending} being answered"
                f"{unread}; {queue.consumers} holder(s) reading"
            )
        )
    return Group(*parts)
