"""Prometheus metrics for one app instance: a registry of its own, no module-level state.

Counters of client requests are bumped by the WebSocket layer. What is counted per message per
client (messages out, conflated) is kept in plain ints (`OutCounts`) and read at scrape time, like
everything the Bridge already counts (events in/out, reconnects, stream states, resyncs, gaps): a
`prometheus_client` label lookup and lock per delivery was a quarter of the fan-out's CPU. The
delivery-lag histogram is observed on a sample (`LAG_SAMPLE_EVERY`) for the same reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from brokerbridge.bridge import Bridge
from brokerbridge.core.events import StreamState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Delivery lag buckets (seconds): a healthy client sits in the first few, a slow one in the last.
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# A connection's 1st, 17th… write with stream events observes the first event of each stream in it
# (account data: one event in 16): a sample across every client, not a histogram update per
# delivery. `_count` counts samples, not deliveries.
LAG_SAMPLE_EVERY = 16
MESSAGE_TYPES = ("ack", "error", "event", "heartbeat", "pong")
CONFLATED_KINDS = ("ticker", "book", "greeks", "heartbeat")


class OutCounts:
    """Messages queued to clients by type, and replaced before being sent by kind: plain dicts of
    ints bumped on the hot path, exported at scrape time."""

    __slots__ = ("conflated", "messages_out")

    def __init__(self) -> None:
        self.messages_out = dict.fromkeys(MESSAGE_TYPES, 0)
        self.conflated = dict.fromkeys(CONFLATED_KINDS, 0)


class ServerMetrics:
    def __init__(self, bridge: Bridge, client_stats: Callable[[], tuple[int, list[int]]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.ws_messages_in = Counter(
            "brokerbridge_ws_messages_in",
            "Messages received from WebSocket clients, by op (invalid: could not be read)",
            ["op"],
            registry=self.registry,
        )
        self.ws_errors = Counter(
            "brokerbridge_ws_errors",
            "Typed errors sent to clients, by code",
            ["code"],
            registry=self.registry,
        )
        self.ws_slow_disconnects = Counter(
            "brokerbridge_ws_slow_client_disconnects",
            "Clients closed (1008) because undroppable messages (executions, balances, acks) piled up",
            registry=self.registry,
        )
        self.ws_silent_disconnects = Counter(
            "brokerbridge_ws_silent_client_disconnects",
            "Clients closed (1011) because nothing, not even a pong, came from them for client_timeout",
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "brokerbridge_auth_failures",
            "Invalid API keys, tokens and login codes presented, by way in (rest, ws)",
            ["via"],
            registry=self.registry,
        )
        self.auth_refused = Counter(
            "brokerbridge_auth_refused",
            "Credentials refused unchecked (429): the address is over its failed-authentication limit",
            ["via"],
            registry=self.registry,
        )
        self.ws_delivery_lag = Histogram(
            "brokerbridge_ws_delivery_lag_seconds",
            "Seconds from an event reaching the server (from the Bridge) to its write to a client's socket",
            buckets=LAG_BUCKETS,
            registry=self.registry,
        )
        self.out = OutCounts()
        self.registry.register(_BridgeCollector(bridge, client_stats))
        self.registry.register(_OutCollector(self.out))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _OutCollector(Collector):
    def __init__(self, counts: OutCounts) -> None:
        self._counts = counts

    def describe(self) -> list[Metric]:
        return []  # collected at scrape time only

    def collect(self) -> Iterator[Metric]:
        yield _labelled(
            "brokerbridge_ws_messages_out", "Messages sent to WebSocket clients, by type", "type",
            self._counts.messages_out,
        )  # fmt: skip
        yield _labelled(
            "brokerbridge_ws_conflated",
            "Messages to slow clients replaced by a newer one of the same stream before being sent, by kind",
            "kind",
            self._counts.conflated,
        )


def _labelled(name: str, documentation: str, label: str, counts: dict[str, int]) -> Metric:
    family = CounterMetricFamily(name, documentation, labels=[label])
    for value, count in counts.items():
        family.add_metric([value], count)
    return family


class _BridgeCollector(Collector):
    def __init__(self, bridge: Bridge, client_stats: Callable[[], tuple[int, list[int]]]) -> None:
        self._bridge = bridge
        self._client_stats = client_stats

    def describe(self) -> list[Metric]:
        return []  # collected at scrape time only

    def collect(self) -> Iterator[Metric]:
        bridge = self._bridge
        events_in = CounterMetricFamily("brokerbridge_events_in", "Normalized events received from venues")
        events_in.add_metric([], bridge.events_in)
        yield events_in
        events_out = CounterMetricFamily("brokerbridge_events_out", "Events delivered to bridge subscribers")
        events_out.add_metric([], bridge.events_out)
        yield events_out

        reconnects = CounterMetricFamily(
            "brokerbridge_reconnects", "Upstream reconnects per venue stream", labels=["venue", "stream"]
        )
        live = GaugeMetricFamily(
            "brokerbridge_stream_live", "1 if the upstream stream is live", labels=["venue", "stream"]
        )
        age = GaugeMetricFamily(
            "brokerbridge_seconds_since_last_message",
            "Seconds since the upstream stream's last message",
            labels=["venue", "stream"],
        )
        for venue, health in bridge.health().items():
            for name, stream in health.streams.items():
                if stream.reconnects is None:  # REST-polled streams (mode rest): no connection to count
                    continue
                reconnects.add_metric([venue, name], stream.reconnects)
                live.add_metric([venue, name], 1.0 if stream.state is StreamState.LIVE else 0.0)
                if stream.seconds_since_last_message is not None:
                    age.add_metric([venue, name], stream.seconds_since_last_message)
        yield reconnects
        yield live
        yield age
        yield _per_stream(
            "brokerbridge_resyncs",
            "Times a stream was rebuilt from a fresh snapshot (bad checksum, sequence jump)",
            bridge.resyncs,
        )
        yield _per_stream(
            "brokerbridge_gaps",
            "Windows a stream may have lost upstream (disconnects, sequence jumps), as Gap events",
            bridge.gaps,
        )

        clients, depths = self._client_stats()
        count = GaugeMetricFamily("brokerbridge_ws_clients", "Connected WebSocket clients")
        count.add_metric([], clients)
        yield count
        total = GaugeMetricFamily("brokerbridge_ws_queue_depth", "Messages queued for WebSocket clients")
        total.add_metric([], sum(depths))
        yield total
        deepest = GaugeMetricFamily(
            "brokerbridge_ws_queue_depth_max", "Messages queued for the most backlogged client"
        )
        deepest.add_metric([], max(depths, default=0))
        yield deepest


def _per_stream(name: str, documentation: str, counts: dict[tuple[str, str], int]) -> Metric:
    family = CounterMetricFamily(name, documentation, labels=["venue", "stream"])
    for (venue, stream), count in sorted(counts.items()):
        family.add_metric([venue, stream], count)
    return family
