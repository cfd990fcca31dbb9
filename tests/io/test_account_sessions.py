"""The Bridge holds each venue's account session itself: from start, with no consumer, it logs in,
loads the balances, reconciles orders and fills and journals every fill; readiness says where each
venue stands. Against the simulators in memory, on one FakeClock (tests/io/rig.py)."""

from __future__ import annotations

import contextlib
from decimal import Decimal
from pathlib import Path

import pytest

from brokerbridge.bridge import ACCOUNT_RETRY_S, Bridge
from brokerbridge.core.clock import FakeClock
from brokerbridge.core.config import Config, ServerConfig, WarmStream
from brokerbridge.core.errors import ConfigError, NotLoaded, ServiceUnavailable
from brokerbridge.core.events import Channel, StreamState, Subscription, Ticker
from brokerbridge.io.inprocess import InProcessNetwork
from brokerbridge.io.journal_store import SqliteJournalStore
from brokerbridge.sim.kraken import KrakenSimulator
from brokerbridge.venues.kraken import rest as kraken_rest
from tests.io.primary_rig import primary_rig
from tests.io.rig import Rig, kraken_config, rig, rig_on

pytestmark = pytest.mark.timeout(60)
IDLE, LIVE = StreamState.IDLE, StreamState.LIVE
BALANCES = Subscription(venue="kraken", channel=Channel.BALANCES)
TICKER = Subscription(venue="kraken", channel=Channel.TICKER, symbol="BTC/USD")


def totals(r: Rig, venue: str = "kraken") -> dict[str, Decimal]:
    return {asset: view.total for asset, view in r.bridge.balances(venue).items()}


async def test_kraken_account_is_loaded_at_start_with_no_consumer_and_its_fills_journaled(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    journal = tmp_path / "journal.sqlite3"
    async with KrakenSimulator(port=0, seed=21, clock=clock, tick_s=0.01) as sim:
        config = Config(kraken=kraken_config(sim), journal_path=str(journal))
        async with rig_on(sim, clock, config) as r:
            # Nothing has run yet: the account is not loaded, and no answer pretends it is.
            assert r.bridge.readiness()["kraken"].state == "starting"
            with pytest.raises(NotLoaded) as refused:
                r.bridge.balances("kraken")
            assert "/api/ready" in refused.value.remedy

            took = await r.until(lambda: r.bridge.readiness()["kraken"].ready, within=10.0, what="ready")
            assert took <= 3.0
            ready = r.bridge.readiness()["kraken"]
            assert ready.account_streams == {"kraken:balances": LIVE, "kraken:executions": LIVE}
            assert r.bridge.fanout.consumers(BALANCES) == []  # held by the Bridge, consumed by nobody
            assert totals(r)["BTC"] == Decimal(2) and totals(r)["USD"] == Decimal(100000)
            # Market data is on demand: the public connection is idle, not connecting.
            health = r.bridge.health()["kraken"]
            assert health.streams["public"].state is IDLE and health.streams["public"].subscriptions == {}
            assert health.readiness == ready and not health.degraded()

            # Someone trades on the account (another tool, the venue's website): the fill is
            # journaled as it happens, with nobody consuming executions.
            add = kraken_rest.add_order_request(
                pair="XBTUSD", side="buy", order_type="market", volume=Decimal("0.01")
            )
            await r.call(r.kraken.rest.call(add))
            await r.until(lambda: r.bridge.fills("kraken"), within=10.0, what="fill journaled")
            made = set(sim.exchange.account.trades)
            assert made and {f.exec_id for f in r.bridge.fills("kraken")} == made
            assert r.bridge.journal_store is not None
            assert {f.exec_id for f in r.bridge.journal_store.fills("kraken", r.kraken.journal_scope)} == made
            await r.until(lambda: totals(r)["BTC"] > 2, what="the balance moved")
            scope = r.kraken.journal_scope
        with contextlib.closing(SqliteJournalStore(str(journal))) as store:  # on disk, after the stop
            assert {f.exec_id for f in store.fills("kraken", scope)} == made


async def test_readiness_goes_degraded_while_the_account_stream_is_down_and_back() -> None:
    async with rig(seed=22) as r:
        await r.until(lambda: r.bridge.readiness()["kraken"].ready, within=10.0, what="ready")
        await r.faults(deny_permissions=["websockets"])  # no token for the next connection
        r.sim.faults.drop_now()
        await r.until(lambda: r.bridge.readiness()["kraken"].state == "degraded", what="degraded")
        degraded = r.bridge.readiness()["kraken"]
        assert degraded.remedy and "doctor kraken" in degraded.remedy
        assert "kraken:balances" in degraded.reason or "kraken:executions" in degraded.reason
        # The balances already loaded stay readable, marked stale — never emptied.
        assert all(view.stale for view in r.bridge.balances("kraken").values())
        assert totals(r)["BTC"] == Decimal(2)
        await r.faults(deny_permissions=[])
        # The venue refused the subscriptions for good: they are asked for again (ACCOUNT_RETRY_S).
        took = await r.until(lambda: r.bridge.readiness()["kraken"].ready, within=60.0, what="ready again")
        assert took <= ACCOUNT_RETRY_S + 5.0


async def test_before_the_first_snapshot_the_account_is_not_loaded_and_says_why() -> None:
    clock = FakeClock()
    async with KrakenSimulator(port=0, seed=23, clock=clock, tick_s=0.01) as sim:
        sim.faults.apply({"deny_permissions": ["websockets"]})
        async with rig_on(sim, clock, Config(kraken=kraken_config(sim))) as r:
            await r.until(lambda: r.bridge.readiness()["kraken"].state == "degraded", what="refused")
            with pytest.raises(NotLoaded) as refused:
                r.bridge.balances("kraken")
            assert "not loaded yet" in refused.value.message and "degraded" in refused.value.message
            with pytest.raises(ServiceUnavailable) as waited:
                await r.call(r.bridge.wait_ready(2.0))
            assert "kraken degraded" in waited.value.message
            sim.faults.apply({"deny_permissions": []})
            readiness = await r.call(r.bridge.wait_ready(30.0))
            assert readiness["kraken"].ready and totals(r)["BTC"] == Decimal(2)


async def test_a_market_stream_nobody_needs_is_idle_and_a_warm_one_is_held() -> None:
    clock = FakeClock()
    async with KrakenSimulator(port=0, seed=24, clock=clock, tick_s=0.01) as sim:
        # No credentials: no account to hold; market data on demand.
        public = Config(kraken=kraken_config(sim, api_key=None, api_secret=None))
        async with rig_on(sim, clock, public) as r:
            assert r.bridge.readiness()["kraken"].ready  # nothing to load
            with pytest.raises(NotLoaded) as never:
                r.bridge.balances("kraken")
            assert "api_key" in never.value.remedy
            assert {s.state for s in r.bridge.health()["kraken"].streams.values()} == {IDLE}
            ticker = r.collect("ticker", "BTC/USD")
            await r.until(lambda: ticker.states("kraken:ticker:BTC/USD")[-1:] == [LIVE])
            await r.stop_collecting()  # the last consumer leaves (grace 0): closed on purpose
            await r.until(lambda: r.bridge.health()["kraken"].streams["public"].state is IDLE, what="idle")
            public_health = r.bridge.health()["kraken"].streams["public"]
            assert public_health.last_error is None and not public_health.connected

        warm = ServerConfig(warm=(WarmStream(venue="kraken", channel=Channel.TICKER, symbol="BTC/USD"),))
        async with rig_on(sim, clock, Config(kraken=kraken_config(sim), server=warm)) as r:
            await r.until(lambda: r.bridge.market.ticker("kraken", "BTC/USD") is not None, what="warm tick")
            assert r.bridge.fanout.is_open(TICKER) and r.bridge.fanout.consumers(TICKER) == []
            assert isinstance(r.bridge.market.ticker("kraken", "BTC/USD"), Ticker)


async def test_a_warm_stream_of_a_venue_not_served_stops_the_start() -> None:
    clock = FakeClock()
    async with (
        KrakenSimulator(port=0, seed=25, clock=clock, tick_s=0.01) as sim,
        InProcessNetwork(sim, clock=clock) as network,
    ):
        warm = ServerConfig(warm=(WarmStream(venue="primary", channel=Channel.TICKER, symbol="GGAL"),))
        bridge = Bridge(
            Config(kraken=kraken_config(sim), server=warm), clock=clock, transports=network.transports
        )
        with pytest.raises(ConfigError) as refused:
            await bridge.__aenter__()
        assert "server.warm entry 'primary:ticker:GGAL'" in refused.value.message
        assert bridge.journal_store is None  # closed again: nothing left open


async def test_primary_account_is_loaded_at_start_with_no_consumer(tmp_path: Path) -> None:
    async with primary_rig(tmp_path) as r:
        took = await r.until(lambda: r.bridge.readiness()["primary"].ready, within=10.0, step=0.25)
        assert took <= 3.0
        assert r.bridge.readiness()["primary"].account_streams == {
            "primary:balances": LIVE,
            "primary:executions": LIVE,
        }
        assert r.bridge.balances("primary")  # the demo account's cash
        assert r.bridge.readiness()["kraken"].ready  # no Kraken account configured: nothing to load
