"""`brokerbridge.client.BridgeClient` against the real server over the simulators, on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from decimal import Decimal
from pathlib import Path
from typing import cast

import pytest

from brokerbridge.bridge import Bridge
from brokerbridge.client import BridgeClient, NotAuthorized, UnknownVenue
from brokerbridge.client.models import Balance, HealthResponse
from brokerbridge.core.backoff import BackoffPolicy
from brokerbridge.core.config import ServerConfig
from brokerbridge.core.errors import PermissionDenied, UnknownSymbol
from brokerbridge.core.events import (
    AnyEvent,
    BookSnapshot,
    Candle,
    Channel,
    Gap,
    StreamState,
    StreamStatus,
    Subscription,
    Ticker,
)
from brokerbridge.server import BridgeServer, ServerSettings
from brokerbridge.sim.kraken import KrakenSimulator
from brokerbridge.sim.primary import PrimarySimulator
from tests.server.conftest import ACCOUNT_KEY, KEYS, LIMIT, MARKET_KEY, Stack, stack_config
from tests.server.observe import eventually

FAST = BackoffPolicy(initial=0.05, factor=2.0, cap=0.2)


async def next_matching(stream: AsyncIterator[AnyEvent], match: Callable[[AnyEvent], bool]) -> AnyEvent:
    async with asyncio.timeout(LIMIT):
        async for event in stream:
            if match(event):
                return event
    raise AssertionError("the stream ended")


def status(state: StreamState) -> Callable[[AnyEvent], bool]:
    return lambda e: isinstance(e, StreamStatus) and e.state is state


def is_ticker(e: AnyEvent) -> bool:
    return isinstance(e, Ticker)


async def test_typed_events_and_rest_helpers(stack: Stack) -> None:
    async with BridgeClient(stack.server.http_url, key=ACCOUNT_KEY) as bridge:
        stream = cast(AsyncIterator[AnyEvent], bridge.subscribe("kraken", "ticker", "BTC/USD"))
        async with aclosing(stream):  # type: ignore[type-var]
            ticker = await next_matching(stream, is_ticker)
            assert isinstance(ticker, Ticker) and ticker.symbol == "BTC/USD"
            assert (
                isinstance(ticker.bid, Decimal)
                and isinstance(ticker.ask, Decimal)
                and ticker.bid < ticker.ask
            )

            health = await bridge.health()
            assert isinstance(health, HealthResponse) and health.status in ("ok", "degraded")
            assert health.venues["kraken"].streams["public"].subscriptions == {
                "kraken:ticker:BTC/USD": "live"
            }
            assert {v.venue for v in await bridge.venues()} == {"kraken", "primary"}
            snapshot = await bridge.ticker("kraken", "BTC/USD")
            assert snapshot.state is StreamState.LIVE and isinstance(snapshot.ticker, Ticker)
            assert snapshot.ticker.ts >= ticker.ts

        book = await bridge.book("kraken", "BTC/USD", depth=10)
        assert isinstance(book.book, BookSnapshot) and len(book.book.bids) == 10
        assert isinstance(book.book.bids[0].price, Decimal) and book.book.checksum is not None
        candles = await bridge.candles("kraken", "BTC/USD", interval=5, limit=4)
        assert len(candles.candles) == 4 and all(isinstance(c, Candle) for c in candles.candles)
        assert (await bridge.trades("kraken", "BTC/USD", limit=5)).state is not None
        catalog = await bridge.instruments("primary", search="GGAL")
        assert catalog.source == "catalog" and catalog.count == len(catalog.instruments) > 0
        assert await bridge.orders("kraken") == [] and await bridge.fills("kraken") == []
        balances = await bridge.balances("kraken")
        assert all(isinstance(b, Balance) and isinstance(b.total, Decimal) for b in balances)


async def test_survives_an_upstream_drop(stack: Stack) -> None:
    async with BridgeClient(stack.server.http_url, key=MARKET_KEY, backoff=FAST) as bridge:
        stream = cast(AsyncIterator[AnyEvent], bridge.subscribe("kraken", "ticker", "ETH/USD"))
        async with aclosing(stream):  # type: ignore[type-var]
            await next_matching(stream, is_ticker)
            stack.kraken_sim.faults.drop_now()
            # The bridge tells its clients its upstream is down, then recovers it; the client's
            # own connection to the bridge never dropped.
            await next_matching(stream, status(StreamState.RECONNECTING))
            await next_matching(stream, status(StreamState.LIVE))
            await next_matching(stream, is_ticker)
        assert bridge.reconnects == 0


async def test_survives_a_bridge_server_restart_on_the_same_port(tmp_path: Path) -> None:
    settings = ServerSettings(config=ServerConfig(keys=KEYS))
    async with (
        KrakenSimulator(host="127.0.0.1", port=0, seed=5) as kraken_sim,
        PrimarySimulator(host="127.0.0.1", port=0) as primary_sim,
        Bridge(stack_config(kraken_sim, primary_sim, tmp_path)) as bridge,
    ):
        server = BridgeServer(bridge, host="127.0.0.1", port=0, settings=settings)
        await server.__aenter__()
        port = server.port
        try:
            async with BridgeClient(server.http_url, backoff=FAST) as client:
                stream = cast(AsyncIterator[AnyEvent], client.subscribe("kraken", "ticker", "BTC/USD"))
                async with aclosing(stream):  # type: ignore[type-var]
                    await next_matching(stream, is_ticker)
                    await server.__aexit__(None, None, None)
                    lost = await next_matching(stream, status(StreamState.RECONNECTING))
                    assert isinstance(lost, StreamStatus) and "server shutting down" in lost.reason
                    # Nobody is left on the upstream stream: the bridge closed it (the venue
                    # session drops it from its health once its unsubscribe is sent).
                    assert not bridge.fanout.is_open(
                        Subscription(venue="kraken", channel=Channel.TICKER, symbol="BTC/USD")
                    )
                    await eventually(
                        lambda: (
                            "kraken:ticker:BTC/USD"
                            not in bridge.health()["kraken"].streams["public"].subscriptions
                        )
                    )
                    server = BridgeServer(bridge, host="127.0.0.1", port=port, settings=settings)
                    await server.__aenter__()
                    gap = await next_matching(stream, lambda e: isinstance(e, Gap))
                    assert isinstance(gap, Gap) and gap.start < gap.end
                    assert isinstance(await next_matching(stream, is_ticker), Ticker)
                assert client.reconnects >= 1
        finally:
            await server.__aexit__(None, None, None)


async def test_typed_refusals(stack: Stack) -> None:
    async with BridgeClient(stack.server.http_url) as anonymous:  # market data is open on loopback
        stream = cast(AsyncIterator[AnyEvent], anonymous.subscribe("kraken", "balances"))
        with pytest.raises(NotAuthorized) as refused:
            async with asyncio.timeout(LIMIT), aclosing(stream):  # type: ignore[type-var]
                async for _ in stream:
                    pass
        assert isinstance(refused.value, PermissionDenied) and refused.value.code == "not_authorized"
        for call in (anonymous.balances, anonymous.orders, anonymous.fills):
            with pytest.raises(NotAuthorized):
                await call("kraken")
        with pytest.raises(UnknownSymbol):
            await anonymous.ticker("kraken", "NOPE/USD")
        with pytest.raises(UnknownVenue):
            await anonymous.book("binance", "BTC/USD")
        unknown = cast(AsyncIterator[AnyEvent], anonymous.subscribe("kraken", "ticker", "NOPE/USD"))
        with pytest.raises(UnknownSymbol):
            async with asyncio.timeout(LIMIT), aclosing(unknown):  # type: ignore[type-var]
                async for _ in unknown:
                    pass
    async with BridgeClient(stack.server.http_url, key="not-a-configured-key-123") as wrong:
        stream = cast(AsyncIterator[AnyEvent], wrong.subscribe("kraken", "ticker", "BTC/USD"))
        with pytest.raises(NotAuthorized):
            async with asyncio.timeout(LIMIT), aclosing(stream):  # type: ignore[type-var]
                async for _ in stream:
                    pass
        assert "not-a-configured-key" not in repr(wrong)
