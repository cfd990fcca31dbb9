"""Observing the server from tests: wait on a condition with a deadline (never a fixed sleep), read
a sample from its /metrics exposition."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from brokerbridge.server import BridgeServer
from tests.server.conftest import LIMIT


async def eventually(condition: Callable[[], bool], *, within: float = LIMIT, every: float = 0.01) -> None:
    """Return as soon as `condition()` holds; TimeoutError after `within` seconds."""
    async with asyncio.timeout(within):
        while True:
            if condition():
                return
            await asyncio.sleep(every)


def samples(server: BridgeServer, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample called `name` in the server's /metrics text, by its sorted labels."""
    text = server.state.metrics.exposition().decode()
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def metric(server: BridgeServer, name: str, **labels: str) -> float:
    """One sample's value (0 when the server has not reported it yet)."""
    return samples(server, name).get(tuple(sorted(labels.items())), 0.0)
