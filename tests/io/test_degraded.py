"""More ways the venue misbehaves, and what the client does about each — in memory, fake time."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from brokerbridge.core.errors import InvalidRequest, TransportError, UnknownSymbol
from brokerbridge.core.events import Gap, StreamState, Ticker
from tests.io.rig import rig
from tests.io.test_recovery import market_buy

pytestmark = pytest.mark.timeout(60)
LIVE = StreamState.LIVE


async def test_a_refused_symbol_ends_its_stream_with_the_error_and_is_not_replayed() -> None:
    async with rig() as r:
        good = r.collect("ticker", "BTC/USD")
        await r.until(lambda: good.states("kraken:ticker:BTC/USD")[-1:] == [LIVE])
        bad = r.bridge.subscribe("kraken", "ticker", "FOO/BAR")
        ended = asyncio.get_running_loop().create_task(_drain(bad))
        await r.until(ended.done, what="the refused stream ended")
        with pytest.raises(UnknownSymbol) as refused:
            ended.result()
        assert "Currency pair not supported FOO/BAR" in str(refused.value)
        assert all(s.symbol != "FOO/BAR" for s in r.kraken.public_session.subscriptions)
        # A reconnect replays only what the venue accepted: no refusal loop.
        await r.faults(drop_now=True)
        await r.until(
            lambda: good.states("kraken:ticker:BTC/USD")[-1] == LIVE and r.kraken.public.reconnects == 1
        )
        await r.run_for(15)
        assert r.kraken.public.reconnects == 1


async def _drain(stream) -> None:
    async for _ in stream:
        pass


async def test_an_executions_sequence_gap_resubscribes_and_loses_no_fill() -> None:
    async with rig() as r:
        executions = r.collect("executions")
        await r.until(lambda: executions.states("kraken:executions")[-1:] == [LIVE])
        await r.faults(skip_sequence=["executions"])
        order_id = await market_buy(r, volume="0.01")
        await r.until(lambda: len(executions.of(Gap)) == 1, what="gap reported")
        await r.until(lambda: executions.states("kraken:executions")[-1] == LIVE, what="resubscribed")
        from brokerbridge.core.events import Fill

        await r.until(lambda: any(f.order_id == order_id for f in executions.of(Fill)), what="fill delivered")
        fills = [f for f in executions.of(Fill) if f.order_id == order_id]
        assert sum(f.qty for f in fills) == Decimal("0.01")
        assert len({f.exec_id for f in fills}) == len(fills)
        assert r.kraken.private.reconnects == 0


async def test_rest_outage_during_a_private_reconnect_delays_it_but_it_recovers() -> None:
    async with rig() as r:
        balances = r.collect("balances")
        await r.until(lambda: balances.states("kraken:balances")[-1:] == [LIVE])
        fetches = r.kraken.tokens.fetches
        reconciled = r.kraken.reconciliations
        # The next REST calls fail, then the socket drops: the reconnect needs no REST call (the
        # token is reused), the reconciliation after it is retried until REST answers.
        await r.faults(rest_unavailable=3)
        await r.faults(drop_now=True)
        await r.until(lambda: StreamState.RECONNECTING in balances.states("kraken:balances"))
        await r.until(lambda: balances.states("kraken:balances")[-1] == LIVE, what="live again")
        await r.until(lambda: r.kraken.reconciliations > reconciled, what="reconciled despite the outage")
        assert r.sim.faults.rest_unavailable == 0  # every failure was served, to someone
        assert r.kraken.tokens.fetches == fetches
        assert r.kraken.private.reconnects == 1


async def test_maintenance_marks_live_streams_stale_and_online_brings_them_back() -> None:
    async with rig() as r:
        ticker = r.collect("ticker", "BTC/USD")
        stream = "kraken:ticker:BTC/USD"
        await r.until(lambda: ticker.states(stream)[-1:] == [LIVE])
        await r.faults(system_status="maintenance")
        await r.until(lambda: ticker.states(stream)[-1] == StreamState.STALE, what="stale in maintenance")
        assert r.kraken.public.reconnects == 0  # the socket stays up (heartbeats keep flowing)
        await r.run_for(15)
        assert r.kraken.public.reconnects == 0
        n = len(ticker.of(Ticker))
        await r.faults(system_status="online")
        await r.until(lambda: ticker.states(stream)[-1] == LIVE, what="live after maintenance")
        await r.until(lambda: len(ticker.of(Ticker)) > n, what="data again")


async def test_replayed_subscriptions_carry_their_original_arguments() -> None:
    async with rig() as r:
        book = r.collect("book", "ETH/USD", depth=25)
        candles = r.collect("candles", "BTC/USD", interval=15)
        await r.until(lambda: book.states("kraken:book:ETH/USD:depth=25")[-1:] == [LIVE])
        await r.until(lambda: candles.states("kraken:candles:BTC/USD:interval=15")[-1:] == [LIVE])
        await r.faults(drop_now=True)
        await r.until(lambda: r.kraken.public.reconnects == 1 and r.kraken.public.state is LIVE)
        # Ask the venue itself what this connection is subscribed to.
        (session,) = [s for s in r.sim.sessions if not s.private]
        assert set(session.books) == {("ETH/USD", 25)}
        assert session.ohlc == {("BTC/USD", 15)}


async def test_place_order_input_checks_and_an_unanswered_order_is_unknown_not_rejected() -> None:
    async with rig(request_timeout=0.5) as r:
        with pytest.raises(InvalidRequest, match="Decimal or a decimal string"):
            await r.bridge.place_order("kraken", "BTC/USD", "buy", "limit", 0.1, "1000")  # type: ignore[arg-type]
        with pytest.raises(InvalidRequest, match="not a number"):
            await r.bridge.place_order("kraken", "BTC/USD", "buy", "limit", "abc", "1000")
        # The venue takes longer to answer than we wait (the rig's network runs the request timeout
        # on the fake clock, the one the simulator's latency sleeps on).
        await r.call(r.kraken.ensure_symbols())
        await r.faults(latency_ms=60_000)
        with pytest.raises(TransportError) as unknown:
            await r.call(
                r.bridge.place_order(
                    "kraken", "BTC/USD", "buy", "limit", "0.01", "1000.0", client_order_id="bot-42"
                )
            )
        assert "may or may not be live" in str(unknown.value) and "bot-42" in str(unknown.value)
        # Let the venue's delayed answer go out so the simulator can stop promptly.
        await r.faults(latency_ms=0)
        await r.run_for(61, step=1.0)
