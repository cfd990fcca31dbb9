"""More ways the venue misbehaves, and what the client does about each — in memory, fake time."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from brokerbridge.core.backoff import BackoffPolicy
from brokerbridge.core.config import ServerConfig
from brokerbridge.core.errors import OrderRefused, UnknownSymbol
from brokerbridge.core.events import Gap, StreamState, StreamStatus, Ticker
from brokerbridge.server.app import ServerSettings, create_app
from brokerbridge.venues.kraken import rest as kraken_rest
from tests.io.rig import Rig, btc_usd, rig
from tests.io.test_recovery import market_buy

pytestmark = pytest.mark.timeout(60)
LIVE = StreamState.LIVE


async def test_a_refused_symbol_ends_its_stream_with_the_error_and_is_not_replayed() -> None:
    async with rig() as r:
        # REST failing keeps AssetPairs from loading: the venue itself answers for the symbol.
        await r.faults(rest_http_errors=-1)
        good = r.collect("ticker", "BTC/USD")
        await r.until(lambda: good.states("kraken:ticker:BTC/USD")[-1:] == [LIVE])
        assert r.kraken.symbol_listed("FOO/BAR") is None
        bad = r.collect("ticker", "FOO/BAR")
        await r.until(lambda: bad.refused is not None, what="the refused stream ended")
        assert isinstance(bad.refused, UnknownSymbol)
        assert "Currency pair not supported FOO/BAR" in str(bad.refused)
        # It never looked live: connecting until the venue's answer, then stale saying why.
        assert LIVE not in bad.states("kraken:ticker:FOO/BAR")
        assert all(s.symbol != "FOO/BAR" for s in r.kraken.public_session.subscriptions)
        # A reconnect replays only what the venue accepted: no refusal loop.
        await r.faults(drop_now=True)
        await r.until(
            lambda: good.states("kraken:ticker:BTC/USD")[-1] == LIVE and r.kraken.public.reconnects == 1
        )
        await r.run_for(15)
        assert r.kraken.public.reconnects == 1


async def test_a_symbol_kraken_does_not_list_is_refused_before_going_upstream() -> None:
    async with rig() as r:
        good = r.collect("ticker", "BTC/USD")  # the first subscription loads AssetPairs
        await r.until(lambda: r.kraken.symbol_listed("BTC/USD") is True, what="AssetPairs loaded")
        bad = r.collect("ticker", "FOO/BAR")
        await r.until(lambda: bad.refused is not None, what="the refusal")
        assert isinstance(bad.refused, UnknownSymbol) and "'FOO/BAR'" in bad.refused.message
        assert bad.events == [] and r.kraken.symbol_listed("FOO/BAR") is False
        assert all(s.symbol != "FOO/BAR" for s in r.kraken.public_session.subscriptions)
        assert good.states("kraken:ticker:BTC/USD")[-1] == LIVE


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
        channels = session.protocol.market_channels
        assert set(channels.books) == {("ETH/USD", 25)}
        assert channels.ohlc == {("BTC/USD", 15)}


async def test_order_input_checks_and_an_unanswered_order_is_unknown_not_rejected() -> None:
    # Accounts not held: no private socket, so the order goes over REST (AddOrder) and REST's
    # request_timeout is what runs out (on the socket: tests/io/test_kraken_ws_orders.py).
    async with rig(request_timeout=0.5, hold_accounts=False) as r:
        await r.call(r.kraken.ensure_symbols())
        # Amounts are Decimals: a float (whose binary expansion is not the number meant), a string
        # or a Decimal that is no amount is refused before anything is written or sent.
        for qty, why in (
            (0.1, "is not a Decimal"),
            ("abc", "is not a Decimal"),
            (Decimal("NaN"), "positive"),
        ):
            with pytest.raises(OrderRefused, match=why) as refused:
                await r.place(msgspec.structs.replace(btc_usd("0.01", "1000"), qty=qty))
            assert refused.value.rule == "qty" and refused.value.remedy
        assert r.sim.exchange.private_calls["AddOrder"] == 0
        assert r.bridge.open_orders("kraken") == []
        # The venue takes longer to answer than we wait (the rig's network runs the request timeout
        # on the fake clock, the one the simulator's latency sleeps on).
        await r.faults(latency_ms=60_000)
        ack = await r.place(btc_usd("0.01", "1000", client_order_id="bot-42"))
        # Not an error and not "rejected": it may be live. The client order id is its handle, and
        # it is listed open as `unknown` until the venue's orders decide it.
        assert (ack.status, ack.order_id, ack.client_order_id) == ("unknown", None, "bot-42")
        assert ack.reason is not None and "no answer" in ack.reason
        (unknown,) = r.bridge.open_orders("kraken")
        assert (unknown.status, unknown.order_id, unknown.client_order_id) == ("unknown", "bot-42", "bot-42")
        # Let the venue's delayed answer go out so the simulator can stop promptly.
        await r.faults(latency_ms=0)
        await r.run_for(61, step=1.0)
        assert r.sim.exchange.private_calls["AddOrder"] <= 1  # never sent again


async def poison_nonce(r: Rig, ahead_s: float) -> None:
    """Another program uses our API key with nonces `ahead_s` seconds ahead of ours: Kraken refuses
    every call of ours with `EAPI:Invalid nonce` until our clock catches up."""
    ep = r.sim.endpoints
    nonce = int((r.clock.time() + ahead_s) * 1_000_000)
    request = kraken_rest.build_private("Balance", {}, nonce, ep.api_key, ep.api_secret)
    async with httpx.AsyncClient() as client:
        answer = await client.post(ep.rest + request.target, content=request.body, headers=request.headers)
    assert answer.json()["error"] == []


async def api_health(r: Rig, state_dir: Path) -> dict[str, Any]:
    """`GET /api/health` of a server over the rig's Bridge (in process)."""
    app = create_app(r.bridge, ServerSettings(config=ServerConfig(state_dir=str(state_dir))), loopback=True)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        response = await client.get("/api/health")
    assert response.status_code == 200
    return response.json()


async def test_failing_reconciliation_shows_in_statuses_balances_and_health(tmp_path: Path) -> None:
    async with rig() as r:
        balances, executions = r.collect("balances"), r.collect("executions")
        streams = {"kraken:balances": balances, "kraken:executions": executions}
        await r.until(lambda: all(c.states(s)[-1:] == [LIVE] for s, c in streams.items()))
        await r.until(lambda: bool(r.bridge.balances("kraken")), what="balances known")
        await poison_nonce(r, ahead_s=40.0)
        await r.faults(drop_now=True)  # the reconnect's reconciliation meets the poisoned nonce
        await r.until(
            lambda: all(c.states(s)[-1] is StreamState.STALE for s, c in streams.items()),
            what="streams stale while reconciliation fails",
        )
        for stream, collector in streams.items():
            assert "EAPI:Invalid nonce" in collector.of(StreamStatus)[-1].reason, stream
        assert all(view.stale for view in r.bridge.balances("kraken").values())
        private = r.kraken.health().streams["private"]
        assert private.state is StreamState.STALE and "EAPI:Invalid nonce" in (private.last_error or "")
        health = await api_health(r, tmp_path)
        assert health["status"] == "degraded"
        assert health["venues"]["kraken"]["streams"]["private"]["subscriptions"]["kraken:balances"] == "stale"
        # Our clock passes the other program's nonces: reconciliation succeeds, all is well again.
        await r.until(
            lambda: all(c.states(s)[-1] == LIVE for s, c in streams.items()), within=60, what="live again"
        )
        assert not any(view.stale for view in r.bridge.balances("kraken").values())
        assert (await api_health(r, tmp_path))["status"] == "ok"


async def test_a_refused_websocket_token_is_told_to_clients_and_recovery_is_prompt() -> None:
    # The production backoff (30 s cap): recovery must not wait for it once the venue says yes.
    async with rig(backoff=BackoffPolicy()) as r:
        balances = r.collect("balances")
        name = "kraken:balances"
        await r.until(lambda: balances.states(name)[-1:] == [LIVE])
        # The key loses its WebSocket permission; the current token is revoked and the socket dropped.
        await r.faults(deny_permissions=["websockets"], invalidate_tokens=True)
        await r.faults(drop_now=True)
        seen = len(balances.of(StreamStatus))
        await r.until(
            lambda: "EGeneral:Permission denied" in balances.of(StreamStatus)[-1].reason,
            what="the real cause in the stream's status",
        )
        await r.run_for(90, step=0.25)
        assert LIVE not in [s.state for s in balances.of(StreamStatus)[seen:]]
        assert "EGeneral:Permission denied" in balances.of(StreamStatus)[-1].reason
        due = r.kraken.tokens.next_fetch_in  # a missing permission is asked again up to every 60 s
        assert due <= 60
        await r.faults(deny_permissions=[])
        took = await r.until(lambda: balances.states(name)[-1] == LIVE, step=0.25, what="live again")
        assert took <= due + 1  # the token's next try, then the reconnect at once


async def test_streams_stale_while_reconciliation_fails_are_live_again_after_a_reconnect_in_between() -> None:
    # Chaos seed 4455: a reconnect while reconciliation was failing found the first stream held
    # stale and took it for one still waiting for data, so it started REST polling, which turned
    # both streams to `polling`; when reconciliation succeeded only `stale` streams went back to
    # live, and the private streams ended the run polling, with the socket up and data flowing.
    async with rig() as r:
        balances, executions = r.collect("balances"), r.collect("executions")
        streams = {"kraken:balances": balances, "kraken:executions": executions}
        await r.until(lambda: all(c.states(s)[-1:] == [LIVE] for s, c in streams.items()))
        await r.faults(rest_unavailable=-1)
        await r.faults(drop_now=True)
        await r.until(
            lambda: all(c.states(s)[-1] is StreamState.STALE for s, c in streams.items()),
            what="stale while reconciliation fails",
        )
        await r.faults(drop_now=True)
        await r.until(lambda: r.kraken.private.reconnects == 2, what="the second reconnect")
        await r.run_for(10)  # past the poller's start: nothing is waiting for data
        assert all(StreamState.POLLING not in c.states(s)[-3:] for s, c in streams.items())
        await r.faults(rest_unavailable=0)
        await r.until(
            lambda: all(c.states(s)[-1] == LIVE for s, c in streams.items()), within=90, what="live again"
        )
