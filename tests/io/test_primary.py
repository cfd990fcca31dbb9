"""The Primary client against the Primary simulator: streams, orders, faults and recovery,
token lifecycle — in memory, fake time (one test also over loopback sockets)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from brokerbridge.core.errors import AuthenticationError, ConfigError, UnknownSymbol
from brokerbridge.core.events import (
    BalanceSnapshot,
    BookSnapshot,
    Fill,
    OrderUpdate,
    Position,
    SessionStats,
    Side,
    Source,
    StreamState,
    StreamStatus,
    Ticker,
)
from brokerbridge.core.orders import OrderAck, OrderRequest
from tests.io.primary_rig import AL30, GGAL, PrimaryRig, primary_rig

pytestmark = pytest.mark.timeout(90)
LIVE = StreamState.LIVE


async def buy(r: PrimaryRig, qty: int, price: Decimal) -> OrderAck:
    """A GGAL limit buy through the order API (`Bridge.place`)."""
    request = OrderRequest(venue="primary", symbol=GGAL, side=Side.BUY, qty=Decimal(qty), price=price)
    return await r.place(request)


async def bought(r: PrimaryRig, qty: int, price: Decimal) -> str:
    """`buy`, taken by the venue: its order id."""
    ack = await buy(r, qty, price)
    assert ack.status == "accepted" and ack.order_id is not None, ack
    return ack.order_id


def stream(channel: str, symbol: str | None = None, depth: int | None = None) -> str:
    name = f"primary:{channel}" + (f":{symbol}" if symbol else "")
    return name + (f":depth={depth}" if depth else "")


async def test_market_data_ticker_book_and_stats(tmp_path: Path) -> None:
    async with primary_rig(tmp_path) as r:
        future = (await r.call(r.primary.catalog())).futures()[0].symbol  # DLR/<month><yy>
        ticker = r.collect_primary("ticker", GGAL)
        book = r.collect_primary("book", AL30, depth=5)
        stats = r.collect_primary("stats", future)
        await r.until(lambda: ticker.states(stream("ticker", GGAL))[-1:] == [LIVE], what="ticker live")
        await r.until(lambda: bool(ticker.of(Ticker)) and bool(book.of(BookSnapshot)))
        await r.until(lambda: bool(stats.of(SessionStats)), what="future stats")
        tick = ticker.of(Ticker)[-1]
        assert tick.symbol == GGAL and tick.bid is not None and tick.ask is not None and tick.bid < tick.ask
        snap = book.of(BookSnapshot)[-1]
        assert snap.depth == 5 and 1 <= len(snap.bids) <= 5 and snap.bids[0].price < snap.asks[0].price
        assert stats.of(SessionStats)[-1].symbol == future
        assert r.primary.tokens.fetches == 1  # one login serves REST and the socket


async def test_orders_lifecycle_fills_positions_and_balances(tmp_path: Path) -> None:
    async with primary_rig(tmp_path) as r:
        executions = r.collect_primary("executions")
        positions = r.collect_primary("positions")
        balances = r.collect_primary("balances")
        ticker = r.collect_primary("ticker", GGAL)
        await r.until(lambda: executions.states("primary:executions")[-1:] == [LIVE])
        await r.until(lambda: bool(ticker.of(Ticker)))

        def statuses(order_id: str) -> list[str]:
            return [u.status for u in executions.of(OrderUpdate) if u.order_id == order_id]

        tick = (await r.call(r.primary.catalog())).get(GGAL).tick
        bid = ticker.of(Ticker)[-1].bid
        assert bid is not None and tick
        far = bid - 40 * tick  # resting well below the market, on the price grid

        resting = await bought(r, 10, far)
        await r.until(lambda: "new" in statuses(resting), what=f"order {resting} new")
        await r.call(r.bridge.cancel("primary", resting))
        await r.until(lambda: "canceled" in statuses(resting), what="order canceled")

        ask = ticker.of(Ticker)[-1].ask
        assert ask is not None
        filled = await bought(r, 100, ask * 2)
        await r.until(lambda: "filled" in statuses(filled), what="order filled")
        fills = [f for f in executions.of(Fill) if f.order_id == filled]
        assert sum(f.qty for f in fills) == 100
        await r.until(
            lambda: any(p.symbol == GGAL and p.qty >= 100 for p in positions.of(Position)), step=0.25
        )
        await r.until(lambda: bool(balances.of(BalanceSnapshot)), step=0.25)
        assert balances.states("primary:balances")[-1] == LIVE


async def test_unknown_symbol_ends_that_stream_and_keeps_the_socket(tmp_path: Path) -> None:
    async with primary_rig(tmp_path) as r:
        good = r.collect_primary("ticker", GGAL)
        await r.until(lambda: good.states(stream("ticker", GGAL))[-1:] == [LIVE])
        bad = r.bridge.subscribe("primary", "ticker", "MERV - XMEV - NOPE - 24hs")
        import asyncio

        async def drain() -> None:
            async for _ in bad:
                pass

        task = asyncio.get_running_loop().create_task(drain())
        await r.until(task.done, what="refused stream ended")
        with pytest.raises(UnknownSymbol):
            task.result()
        n = len(good.of(Ticker))
        await r.until(lambda: len(good.of(Ticker)) > n, what="the good stream keeps flowing")
        assert r.primary.stream.reconnects == 0


async def test_drop_and_stall_recover_with_rest_polling_meanwhile(tmp_path: Path) -> None:
    async with primary_rig(tmp_path) as r:
        ticker = r.collect_primary("ticker", GGAL)
        name = stream("ticker", GGAL)
        await r.until(lambda: ticker.states(name)[-1:] == [LIVE])
        await r.primary_faults(drop_now=True)
        await r.until(lambda: StreamState.RECONNECTING in ticker.states(name))
        await r.until(lambda: ticker.states(name)[-1] == LIVE, what="back after a drop")
        await r.primary_faults(stall="all")
        await r.until(lambda: StreamState.POLLING in ticker.states(name), what="polling while silent")
        await r.until(lambda: any(t.source is Source.REST for t in ticker.of(Ticker)), what="REST tickers")
        await r.primary_faults(stall=None)
        await r.until(lambda: ticker.states(name)[-1] == LIVE, what="back to the socket")


async def test_invalidated_token_silences_the_socket_then_relogin_and_reconnect(tmp_path: Path) -> None:
    async with primary_rig(tmp_path) as r:
        ticker = r.collect_primary("ticker", GGAL)
        name = stream("ticker", GGAL)
        await r.until(lambda: ticker.states(name)[-1:] == [LIVE])
        logins = r.primary.tokens.fetches
        await r.primary_faults(invalidate_tokens=True)
        took = await r.until(lambda: StreamState.RECONNECTING in ticker.states(name), what="silence noticed")
        assert took <= 30.0 + 2  # idle_timeout
        await r.until(lambda: ticker.states(name)[-1] == LIVE, what="live with a new login")
        assert r.primary.tokens.fetches == logins + 1
        n = len(ticker.of(Ticker))
        await r.until(lambda: len(ticker.of(Ticker)) > n)


async def test_rest_401_relogs_in_once_and_returns_the_retried_result(tmp_path: Path) -> None:
    async with primary_rig(tmp_path) as r:
        from brokerbridge.venues.primary import rest as codec

        segments = await r.call(r.primary.rest.call(codec.segments_request()))
        logins = r.primary.tokens.fetches
        await r.primary_faults(invalidate_tokens=True)
        again = await r.call(r.primary.rest.call(codec.segments_request()))
        assert again == segments  # the retried result, not the 401
        assert r.primary.tokens.fetches == logins + 1


async def test_rejected_handshakes_and_rest_5xx_are_retried(tmp_path: Path) -> None:
    async with primary_rig(tmp_path) as r:
        await r.primary_faults(reject_ws_handshake=3, rest_http_errors=2)
        ticker = r.collect_primary("ticker", GGAL)
        await r.until(lambda: ticker.states(stream("ticker", GGAL))[-1:] == [LIVE], what="live after retries")
        assert r.primary.stream.reconnects >= 3


async def test_relogin_before_the_24_hour_expiry_keeps_the_stream_flowing(tmp_path: Path) -> None:
    # Our own re-login revokes the token the socket was opened with (as brokers do): the socket
    # must move to the new token at once, not wait for the silence watchdog.
    async with primary_rig(tmp_path, tick_s=600.0, idle_timeout=7200.0, relogin_interval=20 * 3600.0) as r:
        ticker = r.collect_primary("ticker", GGAL)
        await r.until(lambda: ticker.states(stream("ticker", GGAL))[-1:] == [LIVE])
        assert r.primary.tokens.fetches == 1
        await r.run_for(19 * 3600, step=600.0)
        assert r.primary.tokens.fetches == 1
        await r.run_for(1.5 * 3600, step=600.0)
        assert r.primary.tokens.fetches == 2  # proactive re-login at 20 h
        assert r.primary.stream.reconnects == 1  # moved to the new token
        n = len(ticker.of(Ticker))
        await r.run_for(600, step=60.0)
        assert len(ticker.of(Ticker)) > n  # still flowing on the new token


async def test_a_silenced_socket_with_only_order_reports_is_recovered(tmp_path: Path) -> None:
    async with primary_rig(tmp_path) as r:
        executions = r.collect_primary("executions")
        await r.until(lambda: executions.states("primary:executions")[-1:] == [LIVE])
        logins = r.primary.tokens.fetches
        await r.primary_faults(invalidate_tokens=True)
        # Order reports may rightly be quiet for hours: the periodic token check finds the 401.
        await r.until(lambda: r.primary.tokens.fetches == logins + 1, step=0.5, what="re-login")
        await r.until(lambda: r.primary.stream.reconnects >= 1 and r.primary.stream.state is LIVE, step=0.1)
        order_id = await bought(r, 1, Decimal(100))
        await r.until(lambda: any(u.order_id == order_id for u in executions.of(OrderUpdate)), what="reports")


async def test_a_wrong_password_is_reported_without_a_login_storm(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from brokerbridge.core.secret import Secret

    caplog.set_level(logging.WARNING)
    # No login succeeds, so no market data is seen: a slow market saves two minutes of its steps.
    async with primary_rig(tmp_path, password=Secret("wrong-password"), tick_s=5.0) as r:
        attempts: list[float] = []
        login = r.primary.rest.login

        async def counting_login():
            attempts.append(r.clock.monotonic())
            return await login()

        r.primary.tokens._fetch = counting_login  # count what reaches the venue
        ticker = r.collect_primary("ticker", GGAL)
        await r.run_for(120, step=0.5)
        assert 1 <= len(attempts) <= 4  # held off for a minute between refused logins
        # Reported: the stream's status says the login was refused, with the venue's remedy.
        refused = r.primary.stream.last_exception
        assert isinstance(refused, AuthenticationError) and refused.code == "HTTP 401"
        assert "password" in refused.remedy
        name = stream("ticker", GGAL)
        assert str(refused) in {s.reason for s in ticker.of(StreamStatus) if s.stream == name}
        assert StreamState.LIVE not in ticker.states(name)
        # The password itself is never logged.
        assert "wrong-password" not in caplog.text and "wrong-password" not in str(refused)


@pytest.mark.parametrize("loopback", [False, True], ids=["memory", "loopback"])
async def test_a_refused_upgrade_logs_in_again_before_reconnecting(tmp_path: Path, loopback: bool) -> None:
    # Also over real sockets: login, upgrade with the token header, market data, a drop and an
    # HTTP 401 refusal end to end on the socket path.
    async with primary_rig(tmp_path, idle_timeout=3600.0, loopback=loopback) as r:
        ticker = r.collect_primary("ticker", GGAL)
        name = stream("ticker", GGAL)
        await r.until(lambda: ticker.states(name)[-1:] == [LIVE])
        logins = r.primary.tokens.fetches
        await r.primary_faults(invalidate_tokens=True)
        await r.primary_faults(drop_now=True)  # the reconnect presents the revoked token: HTTP 401
        await r.until(lambda: StreamState.RECONNECTING in ticker.states(name))
        await r.until(lambda: ticker.states(name)[-1] == LIVE, what="live again")
        assert r.primary.tokens.fetches == logins + 1


async def test_a_matriz_host_is_refused_with_the_explanation(tmp_path: Path) -> None:
    from brokerbridge.core.clock import FakeClock
    from brokerbridge.core.config import PrimaryConfig
    from brokerbridge.io.primary.connector import PrimaryConnector

    with pytest.raises(ConfigError) as refused:
        PrimaryConnector(
            PrimaryConfig(environment="https://matriz.cocos.xoms.com.ar/ws?session_id=1&conn_id=2"),
            emit=lambda e: None,
            clock=FakeClock(),
        )
    assert "_mtz_web_key" in str(refused.value) and "api.cocos.xoms.com.ar" in str(refused.value)


async def test_instruments_come_from_the_daily_cache(tmp_path: Path) -> None:
    async with primary_rig(tmp_path) as r:
        catalog = await r.call(r.primary.catalog())
        assert len(catalog) > 20 and catalog.get(GGAL) is not None
        assert any(d.strike is not None for d in catalog.options())
        assert list((tmp_path / "primary").rglob("instruments-*.json"))


async def test_drop_every_n_seconds_and_latency(tmp_path: Path) -> None:
    async with primary_rig(tmp_path) as r:
        ticker = r.collect_primary("ticker", GGAL)
        name = stream("ticker", GGAL)
        await r.until(lambda: ticker.states(name)[-1:] == [LIVE])
        await r.primary_faults(drop_every_s=4, latency_ms=300)
        await r.run_for(13)
        assert r.primary.stream.reconnects >= 3
        await r.primary_faults(drop_every_s=0)
        await r.until(lambda: ticker.states(name)[-1] == LIVE, what="live again")
        n = len(ticker.of(Ticker))
        await r.until(lambda: len(ticker.of(Ticker)) > n, what="data despite 300 ms latency")


async def test_silenced_order_reports_are_recovered_from_rest(tmp_path: Path) -> None:
    async with primary_rig(tmp_path) as r:
        executions = r.collect_primary("executions")
        ticker = r.collect_primary("ticker", GGAL)
        await r.until(
            lambda: executions.states("primary:executions")[-1:] == [LIVE] and bool(ticker.of(Ticker))
        )
        await r.primary_faults(stall="private")  # market data flows, order reports do not
        ask = ticker.of(Ticker)[-1].ask
        assert ask is not None
        # Primary answers an order on the socket only with its reports: none comes, so the order's
        # outcome is unknown (it is not refused) and it is looked for in the venue's orders (REST).
        ack = await buy(r, 100, ask * 2)
        assert (ack.status, ack.order_id) == ("unknown", None)
        assert r.psim is not None
        orders = r.psim.exchange.account.orders.values()
        (booked,) = [o.cl_ord_id for o in orders if o.ws_cl_ord_id == ack.client_order_id]

        def updates(order_id: str) -> list[OrderUpdate]:
            return [u for u in executions.of(OrderUpdate) if u.order_id == order_id]

        await r.until(
            lambda: len(updates(ack.client_order_id)) > 1 and bool(updates(booked)),
            what="the order found and its state from REST",
        )
        (placeholder, decided) = updates(ack.client_order_id)
        assert placeholder.status == "unknown"
        assert decided.status == "resolved" and booked in (decided.reason or "")
        assert {u.status for u in updates(booked)} & {"filled", "new"}


async def test_order_reconciliation_is_retried_until_rest_answers(tmp_path: Path) -> None:
    """An order filled while nobody followed executions is in no `or` report of the socket (its
    `os` replays open orders only): the reconciliation read after the subscription is its one way
    in. REST failing at that moment must delay the fill, not lose it. (With the account held from
    start, as by default, the socket reports the fill as it happens: tests/io/test_account_sessions.py.)"""
    async with primary_rig(tmp_path, hold_accounts=False) as r:
        ticker = r.collect_primary("ticker", GGAL)
        await r.until(lambda: bool(ticker.of(Ticker)))
        ask = ticker.of(Ticker)[-1].ask
        assert ask is not None
        filled = await bought(r, 100, ask * 2)
        await r.run_for(6.0)  # past the order's confirmation grace (it confirms nothing: no executions)
        await r.primary_faults(rest_http_errors=2)
        executions = r.collect_primary("executions")
        await r.until(
            lambda: any(f.order_id == filled for f in executions.of(Fill)),
            within=60.0,
            what="the fill, from a reconciliation read retried after REST failed",
        )
        assert sum(f.qty for f in executions.of(Fill) if f.order_id == filled) == 100
        assert (await r.primary_faults())["rest_http_errors"] == 0  # the read did meet the failures


async def test_pings_keep_the_socket_open_past_the_venues_idle_close() -> None:
    # Real time on purpose: WebSocket ping frames are sent by the websockets library on its own
    # clock, and the simulator's idle close must see them (a 2.5 s window).
    import asyncio
    import tempfile

    from brokerbridge.bridge import Bridge
    from brokerbridge.core.config import Config, PrimaryConfig
    from brokerbridge.core.secret import Secret
    from brokerbridge.sim.primary import PrimarySimulator

    async with PrimarySimulator(port=0, seed=2) as sim:
        sim.faults.apply({"idle_close_s": 1.0})
        ep = sim.endpoints
        config = PrimaryConfig(
            environment=ep.rest,
            rest_url=ep.rest,
            ws_url=ep.ws,
            user=ep.user,
            password=Secret(ep.password),
            account=ep.account,
            market_hours="always",
            ping_interval=0.3,
            instruments_cache_dir=tempfile.mkdtemp(),
        )
        async with Bridge(Config(primary=config)) as bridge, asyncio.timeout(10):
            events = bridge.subscribe("primary", "ticker", GGAL)
            async for event in events:
                if isinstance(event, Ticker):
                    break
            await asyncio.sleep(2.5)
            assert bridge.connectors["primary"].stream.reconnects == 0
            await events.aclose()


async def test_a_login_elsewhere_silences_our_socket_and_we_recover(tmp_path: Path) -> None:
    # The broker's behaviour users hit most: the same user logs in from the app; our token is
    # revoked and our socket goes quiet without closing.
    import httpx

    async with primary_rig(tmp_path) as r:
        ticker = r.collect_primary("ticker", GGAL)
        name = stream("ticker", GGAL)
        await r.until(lambda: ticker.states(name)[-1:] == [LIVE])
        assert r.psim is not None
        ep = r.psim.endpoints
        async with httpx.AsyncClient() as client:
            response = await client.post(
                ep.rest + "auth/getToken", headers={"X-Username": ep.user, "X-Password": ep.password}
            )
        assert response.status_code == 200 and response.headers["X-Auth-Token"]
        logins = r.primary.tokens.fetches
        await r.until(lambda: StreamState.RECONNECTING in ticker.states(name), what="silence noticed")
        await r.until(lambda: ticker.states(name)[-1] == LIVE, what="live again after a new login")
        assert r.primary.tokens.fetches == logins + 1


async def test_a_blocked_user_shows_on_the_streams_is_retried_paced_and_recovers_promptly(
    tmp_path: Path,
) -> None:
    # The user is blocked and its tokens revoked: the socket goes quiet without closing. The token
    # check (every idle_timeout) finds out first; the silence watchdog would take idle_timeout.
    async with primary_rig(tmp_path, tick_s=0.5, idle_timeout=120.0) as r:
        assert r.psim is not None
        venue = r.psim.exchange
        ticker = r.collect_primary("ticker", GGAL)
        name = stream("ticker", GGAL)
        await r.until(lambda: ticker.states(name)[-1:] == [LIVE])
        await r.run_for(60, step=0.5)  # the next token check is 60 s away, the watchdog 120 s
        await r.primary_faults(block_user=True, invalidate_tokens=True)
        seen = len(ticker.of(StreamStatus))
        took = await r.until(lambda: ticker.states(name)[-1] != LIVE, step=0.5, what="not live any more")
        assert took <= 61  # the token check's finding, not the watchdog's
        assert "User account is locked" in ticker.of(StreamStatus)[-1].reason  # the venue's words
        health = r.primary.health().streams["ws"]
        assert health.state is not LIVE and "User account is locked" in (health.last_error or "")
        await r.run_for(150 - took, step=0.5)
        statuses = ticker.of(StreamStatus)[seen:]
        assert all("User account is locked" in s.reason for s in statuses)
        assert LIVE not in [s.state for s in statuses]
        # Paced: logins on a jittered backoff capped at 10 s (the venue saw 54 a minute before),
        # and the revoked token is not sent again once refused.
        assert 10 <= venue.refused_logins <= 35
        assert venue.refused_calls <= 3
        await r.primary_faults(block_user=False)
        n = len(ticker.of(Ticker))
        took = await r.until(
            lambda: ticker.states(name)[-1] == LIVE and len(ticker.of(Ticker)) > n,
            step=0.5,
            what="live again",
        )
        assert took <= 10 + 2  # the login retry cap, then the reconnect
