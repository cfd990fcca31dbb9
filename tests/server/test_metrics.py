"""/metrics: what the issue asks to see (resyncs, gaps, delivery lag, clients…), caused for real
through the simulators' fault switches and read back from the Prometheus text."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from brokerbridge.server.metrics import LAG_SAMPLE_EVERY
from tests.io.rig import btc_usd
from tests.server.conftest import LIMIT, Stack, connect, is_event
from tests.server.observe import eventually, metric, samples
from tests.server.test_ws import subscribe

BOOK = "kraken:book:BTC/USD:depth=10"
EXECUTIONS = "kraken:executions"
RESYNCS = "brokerbridge_resyncs_total"
GAPS = "brokerbridge_gaps_total"


async def test_resyncs_and_gaps_are_counted_per_venue_and_stream(stack: Stack) -> None:
    async with asyncio.timeout(LIMIT * 2):
        client = await connect(stack.server)
        await subscribe(client, "b", venue="kraken", channel="book", symbol="BTC/USD", depth=10)
        await subscribe(client, "x", venue="kraken", channel="executions")
        # Executions is held live from start: its status is replayed at once, before the book comes.
        await client.until(lambda m: m.get("id") == "x" and is_event("status", state="live")(m))
        await client.until(is_event("book_snapshot"))
        assert metric(stack.server, RESYNCS, venue="kraken", stream=BOOK) == 0

        stack.kraken_sim.faults.apply({"corrupt_checksums": 1})  # the book fails its checksum once
        await client.until(lambda m: m.get("id") == "b" and is_event("status", state="resyncing")(m))
        await eventually(lambda: metric(stack.server, RESYNCS, venue="kraken", stream=BOOK) >= 1)

        # The next executions message skips a sequence number: a gap, and a resync from a snapshot.
        stack.kraken_sim.faults.apply({"skip_sequence": ["executions"]})
        placed = await stack.bridge.place(btc_usd("0.001", "1000"))
        assert placed.status == "accepted" and placed.order_id is not None
        gap = await client.until(lambda m: m.get("id") == "x" and is_event("gap")(m))
        assert gap["event"]["start"] <= gap["event"]["end"] and "sequence" in gap["event"]["reason"]
        await eventually(lambda: metric(stack.server, GAPS, venue="kraken", stream=EXECUTIONS) == 1)
        await eventually(lambda: metric(stack.server, RESYNCS, venue="kraken", stream=EXECUTIONS) >= 1)
        await stack.bridge.cancel("kraken", placed.order_id)
        # Read at scrape time from the Bridge: the two can never disagree.
        for (venue, stream), count in stack.bridge.resyncs.items():
            assert metric(stack.server, RESYNCS, venue=venue, stream=stream) == count
        await client.close()


@pytest.mark.slow  # long: hypothesis examples or real-time waits; the whole suite runs it
async def test_delivery_lag_is_a_histogram_sampled_from_the_events_written(stack: Stack) -> None:
    async with asyncio.timeout(LIMIT):
        client = await connect(stack.server, key=None)
        await subscribe(client, "t", venue="kraken", channel="ticker", symbol="BTC/USD")
        events = [await client.until(is_event("ticker")) for _ in range(1 + LAG_SAMPLE_EVERY)]
        lag = samples(stack.server, "brokerbridge_ws_delivery_lag_seconds_count")
        written = metric(stack.server, "brokerbridge_ws_messages_out_total", type="event")
        # The connection's 1st, 17th, … event written is observed: a sample, not every delivery.
        assert 2 <= lag[()] <= written // LAG_SAMPLE_EVERY + 1 and written >= len(events)
        buckets = samples(stack.server, "brokerbridge_ws_delivery_lag_seconds_bucket")
        assert buckets[(("le", "+Inf"),)] == lag[()]
        assert buckets[(("le", "30.0"),)] == lag[()]  # a reading client is never that far behind
        assert metric(stack.server, "brokerbridge_ws_clients") == 1
        async with httpx.AsyncClient(base_url=stack.server.http_url, timeout=LIMIT) as http:
            scraped = (await http.get("/metrics")).text
        for name in (  # documented even before anything happened to count
            "brokerbridge_ws_delivery_lag_seconds histogram",
            "brokerbridge_ws_conflated_total counter",
            "brokerbridge_ws_slow_client_disconnects_total counter",
            "brokerbridge_resyncs_total counter",
            "brokerbridge_gaps_total counter",
        ):
            assert f"# TYPE {name}\n" in scraped, name
        await client.close()
