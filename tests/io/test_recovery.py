"""The client recovers from every fault the simulator can inject — in memory, fake time."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from brokerbridge.core.errors import PermissionDenied, RateLimited, ServiceUnavailable, TransportError
from brokerbridge.core.events import (
    BookSnapshot,
    BookUpdate,
    Fill,
    Gap,
    Source,
    StreamState,
    StreamStatus,
    Ticker,
    Trade,
)
from brokerbridge.venues.kraken import rest as kraken_rest
from brokerbridge.venues.kraken.normalize import normalize_asset
from tests.io.rig import rig

LIVE = StreamState.LIVE
pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("loopback", [False, True], ids=["memory", "loopback"])
async def test_drop_now_reconnects_and_replays_subscriptions(loopback: bool) -> None:
    # Also over real sockets, so the socket path stays covered end to end; there, a lenient
    # watchdog, so that fake time outrunning the bytes on a loaded machine reads as no silence.
    async with rig(loopback=loopback, **({"idle_timeout": 60.0} if loopback else {})) as r:
        ticker = r.collect("ticker", "BTC/USD")
        trades = r.collect("trades", "BTC/USD")
        await r.until(lambda: ticker.states("kraken:ticker:BTC/USD")[-1:] == [LIVE], what="ticker live")
        before = len(ticker.of(Ticker))

        await r.faults(drop_now=True)
        await r.until(lambda: StreamState.RECONNECTING in ticker.states("kraken:ticker:BTC/USD"))
        await r.until(lambda: ticker.states("kraken:ticker:BTC/USD")[-1] == LIVE, what="live again")
        await r.until(lambda: len(ticker.of(Ticker)) > before + 2, what="tickers after reconnect")

        assert r.kraken.public.reconnects == 1
        # The replayed subscription is the original one; the trades window the drop may have lost is
        # filled from REST `Trades` instead of reported as a Gap (no trade twice).
        assert r.kraken.public_session.subscriptions == tuple(
            s for s in r.kraken.public_session.subscriptions if s.symbol == "BTC/USD"
        )
        await r.until(lambda: r.kraken.backfills >= 1, what="trades backfilled from REST")
        assert trades.of(Gap) == []
        ids = [t.trade_id for t in trades.of(Trade)]
        assert len(ids) == len(set(ids))


async def test_drop_every_n_seconds_keeps_coming_back() -> None:
    async with rig() as r:
        ticker = r.collect("ticker", "ETH/USD")
        await r.until(lambda: ticker.states("kraken:ticker:ETH/USD")[-1:] == [LIVE])
        await r.faults(drop_every_s=3)
        await r.run_for(10)
        assert r.kraken.public.reconnects >= 3
        await r.faults(drop_every_s=0)
        await r.until(lambda: ticker.states("kraken:ticker:ETH/USD")[-1] == LIVE)
        count = len(ticker.of(Ticker))
        await r.until(lambda: len(ticker.of(Ticker)) > count + 3, what="data flows again")


async def test_stalled_feed_trips_watchdog_then_rest_polling_then_back_to_ws() -> None:
    async with rig() as r:
        ticker = r.collect("ticker", "BTC/USD")
        stream = "kraken:ticker:BTC/USD"
        await r.until(lambda: ticker.states(stream)[-1:] == [LIVE])
        await r.faults(stall="public")
        took = await r.until(lambda: StreamState.RECONNECTING in ticker.states(stream), what="watchdog")
        assert 4.0 <= took <= 7.0  # idle_timeout is 5 s of silence

        # Still stalled after reconnecting: REST polling serves the same events meanwhile.
        await r.until(lambda: StreamState.POLLING in ticker.states(stream), what="polling")
        await r.until(lambda: any(t.source is Source.REST for t in ticker.of(Ticker)), what="REST ticker")
        assert r.kraken.public.mode == "polling"

        await r.faults(stall=None)
        await r.until(lambda: ticker.states(stream)[-1] == LIVE, what="back to ws")
        n = len(ticker.of(Ticker))
        await r.until(lambda: len(ticker.of(Ticker)) > n + 2)
        assert ticker.of(Ticker)[-1].source is Source.WS
        assert r.kraken.public.mode == "ws"


async def test_corrupt_checksum_resyncs_that_book_only_without_dropping_the_connection() -> None:
    async with rig() as r:
        btc_stream, eth_stream = "kraken:book:BTC/USD:depth=10", "kraken:book:ETH/USD:depth=10"
        btc = r.collect("book", "BTC/USD", depth=10)
        eth = r.collect("book", "ETH/USD", depth=10)
        await r.until(lambda: btc.states(btc_stream)[-1:] == [LIVE] and eth.states(eth_stream)[-1:] == [LIVE])
        await r.faults(corrupt_checksums=1)

        def resyncing() -> list[str]:
            return [
                s for s, c in ((btc_stream, btc), (eth_stream, eth)) if StreamState.RESYNCING in c.states(s)
            ]

        await r.until(lambda: len(resyncing()) == 1, what="one book resyncs")
        stream = resyncing()[0]
        hit, other = (btc, eth) if stream == btc_stream else (eth, btc)
        await r.until(lambda: hit.states(stream)[-1] == LIVE, what="live after a fresh snapshot")
        assert len(hit.of(BookSnapshot)) == 2
        assert r.kraken.public.reconnects == 0  # the connection stayed up
        assert len(other.of(BookSnapshot)) == 1  # the other book was never touched
        n = len(hit.of(BookUpdate))
        await r.until(lambda: len(hit.of(BookUpdate)) > n + 5, what="updates verify again")
        assert resyncing() == [stream]


async def market_buy(r, pair: str = "XBTUSD", volume: str = "0.01") -> str:
    result = await r.call(
        r.kraken.rest.call(
            kraken_rest.add_order_request(pair=pair, side="buy", order_type="market", volume=Decimal(volume))
        )
    )
    return result.txid[0]


async def rest_balances(r) -> dict[str, Decimal]:
    result = await r.call(r.kraken.rest.call(kraken_rest.balance_request()))
    return {normalize_asset(asset): total for asset, total in result.items()}


async def test_skipped_private_sequence_resubscribes_with_snapshot_and_reports_gap() -> None:
    async with rig() as r:
        balances = r.collect("balances")
        await r.until(lambda: balances.states("kraken:balances")[-1:] == [LIVE])
        await r.faults(skip_sequence=["balances"])
        await market_buy(r)
        await r.until(lambda: len(balances.of(Gap)) == 1, what="gap reported")
        await r.until(lambda: balances.states("kraken:balances")[-1] == LIVE, what="resubscribed")
        expected = await rest_balances(r)
        await r.until(
            lambda: {a: v.total for a, v in r.bridge.balances("kraken").items() if v.total} == expected,
            what="balances equal REST after the resync",
        )
        assert r.kraken.private.reconnects == 0


async def test_tokens_invalidated_early_get_renewed_and_resubscribed() -> None:
    async with rig(hold_accounts=False) as r:  # account streams on demand: a second one comes later
        balances = r.collect("balances")
        await r.until(lambda: balances.states("kraken:balances")[-1:] == [LIVE])
        fetches = r.kraken.tokens.fetches
        await r.faults(invalidate_tokens=True)
        executions = r.collect("executions")  # a new private subscription with the revoked token
        await r.until(lambda: executions.states("kraken:executions")[-1:] == [LIVE], what="executions live")
        assert r.kraken.tokens.fetches == fetches + 1
        assert r.kraken.private.reconnects == 0


async def test_denied_websocket_permission_is_reported_and_recovers() -> None:
    async with rig() as r:
        await r.faults(deny_permissions=["websockets"])
        balances = r.collect("balances")
        private = r.kraken.private
        await r.until(lambda: isinstance(private.last_exception, PermissionDenied), what="token refused")
        refused = private.last_exception
        assert isinstance(refused, PermissionDenied) and refused.code == "EGeneral:Permission denied"
        assert "enable “Access WebSockets API”" in refused.remedy  # the remedy names it, travels…
        await r.until(  # …to the stream's status, which says why it is down
            lambda: any(
                s.state is StreamState.RECONNECTING and s.reason == str(refused)
                for s in balances.of(StreamStatus)
                if s.stream == "kraken:balances"
            ),
            what="the refusal in the stream's status",
        )
        await r.run_for(20)
        assert LIVE not in balances.states("kraken:balances")
        assert r.kraken.private.reconnects >= 2  # it keeps trying, at the capped pace
        await r.faults(deny_permissions=[])
        await r.until(lambda: balances.states("kraken:balances")[-1] == LIVE, what="recovered")


async def test_rest_faults_become_typed_retryable_errors() -> None:
    async with rig(hold_accounts=False) as r:  # one call at a time: no account session's calls between
        rest = r.kraken.rest
        await r.faults(rest_unavailable=1)
        with pytest.raises(ServiceUnavailable) as unavailable:
            await rest.call(kraken_rest.server_time_request())
        assert unavailable.value.retryable and "EService:Unavailable" in str(unavailable.value)
        await r.faults(rest_http_errors=1, rest_http_status=502)
        with pytest.raises(TransportError) as http:
            await rest.call(kraken_rest.server_time_request())
        assert http.value.retryable and "502" in str(http.value)
        await r.faults(rate_limit=1)
        with pytest.raises(RateLimited) as limited:
            await rest.call(kraken_rest.balance_request())
        assert limited.value.retryable and "EAPI:Rate limit exceeded" in str(limited.value)
        assert (await rest.call(kraken_rest.server_time_request())).unixtime > 0  # and then it works again


async def test_added_latency_slows_but_does_not_break_the_stream() -> None:
    async with rig() as r:
        await r.faults(latency_ms=300)
        ticker = r.collect("ticker", "SOL/USD")
        await r.until(lambda: len(ticker.of(Ticker)) >= 3, what="tickers despite latency")
        assert r.kraken.public.reconnects == 0


async def test_concurrent_private_calls_keep_nonces_increasing_and_stay_under_the_rate_limit() -> None:
    async with rig() as r:
        # 40 calls at once: more than Kraken's counter allows (20), so pacing must spread them.
        burst = asyncio.gather(*(r.kraken.rest.call(kraken_rest.balance_request()) for _ in range(40)))
        took = await r.until(burst.done, step=0.5, what="all calls answered")
        results = burst.result()
        assert all("USD" in {normalize_asset(a) for a in res} for res in results)
        assert 35 <= took <= 50  # (40 - 20) calls at 0.5/s of counter decay


async def test_balances_right_after_a_private_reconnect_during_which_fills_happened() -> None:
    async with rig() as r:
        balances = r.collect("balances")
        executions = r.collect("executions")
        await r.until(lambda: executions.states("kraken:executions")[-1:] == [LIVE])
        await r.until(lambda: balances.states("kraken:balances")[-1:] == [LIVE])
        before = {a: v.total for a, v in r.bridge.balances("kraken").items()}

        await r.faults(stall="private")
        await r.until(lambda: StreamState.RECONNECTING in balances.states("kraken:balances"), what="down")
        order_id = await market_buy(r, volume="0.05")
        await r.until(lambda: StreamState.POLLING in balances.states("kraken:balances"), what="polling")
        # While down: values are kept (marked stale), never zero.
        views = r.bridge.balances("kraken")
        assert views["USD"].total > 0 and views["BTC"].total > 0
        await r.faults(stall=None)
        await r.until(lambda: balances.states("kraken:balances")[-1] == LIVE, what="private live again")

        expected = await rest_balances(r)
        await r.until(
            lambda: {a: v.total for a, v in r.bridge.balances("kraken").items() if v.total} == expected,
            what="balances equal REST Balance",
        )
        assert expected["BTC"] == before["BTC"] + Decimal("0.05")
        assert expected["USD"] < before["USD"]
        assert not any(v.stale for v in r.bridge.balances("kraken").values())
        await r.until(lambda: any(f.order_id == order_id for f in executions.of(Fill)), what="fill seen")
        await r.run_for(5)
        fills = [f for f in executions.of(Fill) if f.order_id == order_id]
        assert len({f.exec_id for f in fills}) == len(fills)  # each fill reported exactly once
        assert sum(f.qty for f in fills) == Decimal("0.05")
