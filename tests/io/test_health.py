"""Health as the connectors compose it from their supervisors: typed, on the fake clock, against
the simulators in memory."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from brokerbridge.client import models
from brokerbridge.core.events import StreamState, StreamStatus
from brokerbridge.core.health import StreamHealth, VenueHealth, overall_status
from tests.io.primary_rig import GGAL, primary_rig
from tests.io.rig import rig

pytestmark = pytest.mark.timeout(60)
LIVE, STALE = StreamState.LIVE, StreamState.STALE


async def test_kraken_health_follows_its_connection_down_to_rest_polling_and_back() -> None:
    async with rig() as r:
        start = r.kraken.health()
        assert isinstance(start, VenueHealth) and start.venue == "kraken" and start.environment is None
        assert set(start.streams) == {"public", "private"} and start.token_expires_at is None
        for stream in start.streams.values():
            assert isinstance(stream, StreamHealth) and stream.mode == "ws"
            assert stream.connected is False and stream.reconnects == 0
            assert stream.seconds_since_last_message is None
        # Market data is on demand: nobody wants it, so nothing is connecting. The account streams
        # are the Bridge's own, wanted from start.
        assert (
            start.streams["public"].state is StreamState.IDLE and start.streams["public"].subscriptions == {}
        )
        assert start.streams["private"].state is StreamState.CONNECTING
        assert start.streams["private"].subscriptions == {
            "kraken:balances": StreamState.CONNECTING,
            "kraken:executions": StreamState.CONNECTING,
        }
        assert overall_status([start]) == "degraded"  # a wanted stream is not live yet
        await r.until(lambda: r.kraken.health().streams["private"].state is LIVE, what="account live")
        assert overall_status([r.kraken.health()]) == "ok"

        ticker = r.collect("ticker", "BTC/USD")
        await r.until(lambda: ticker.states("kraken:ticker:BTC/USD")[-1:] == [LIVE])
        public = r.kraken.health().streams["public"]
        assert public.state is LIVE and public.connected is True and public.url == r.sim.endpoints.ws_public
        assert public.subscriptions == {"kraken:ticker:BTC/USD": LIVE}
        age = public.seconds_since_last_message
        assert age is not None and 0 <= age <= r.kraken.config.idle_timeout

        await r.faults(stall="public")  # the watchdog ends the silent connection; REST serves meanwhile
        await r.until(lambda: StreamState.POLLING in ticker.states("kraken:ticker:BTC/USD"), what="polling")
        down = r.kraken.health()
        public = down.streams["public"]
        assert public.state is StreamState.RECONNECTING and public.mode == "polling"
        assert public.subscriptions == {"kraken:ticker:BTC/USD": StreamState.POLLING}
        assert public.last_error and public.reconnects is not None and public.reconnects >= 1
        assert down.degraded() and overall_status([down]) == "degraded"
        assert not down.streams["private"].degraded()  # the account's socket is fine

        await r.faults(stall=None)
        await r.until(lambda: r.kraken.health().streams["public"].state is LIVE, what="live again")
        again = r.kraken.health()
        assert again.streams["public"].mode == "ws" and overall_status([again]) == "ok"
        # What a remote bot decodes from /api/health is this very value.
        wire = msgspec.json.encode(models.HealthResponse(status="ok", venues={"kraken": again}))
        assert msgspec.json.decode(wire, type=models.HealthResponse).venues["kraken"] == again


async def test_primary_health_has_its_polled_account_streams_with_their_worst_state(tmp_path: Path) -> None:
    async with primary_rig(tmp_path) as r:
        assert set(r.primary.health().streams) == {"ws"}  # nothing polled yet: no `risk` entry
        ticker, positions = r.collect_primary("ticker", GGAL), r.collect_primary("positions")
        await r.until(lambda: ticker.states(f"primary:ticker:{GGAL}")[-1:] == [LIVE], step=0.25)
        await r.until(lambda: positions.states("primary:positions")[-1:] == [LIVE], step=0.25)
        health = r.primary.health()
        assert health.environment is not None and health.token_expires_at is not None
        assert health.streams["ws"].state is LIVE and health.streams["ws"].mode == "ws"
        assert health.streams["risk"] == StreamHealth(
            state=LIVE,
            mode="rest",
            connected=None,
            reconnects=None,
            seconds_since_last_message=None,
            last_error=None,
            subscriptions={"primary:balances": LIVE, "primary:positions": LIVE},  # balances: held
        )
        assert overall_status([health]) == "ok"

        await r.primary_faults(rest_http_errors=-1)  # the risk API fails; the socket stays up
        await r.until(lambda: positions.states("primary:positions")[-1] is STALE, step=0.25)
        failing = r.primary.health()
        assert failing.streams["risk"].state is STALE and failing.streams["risk"].degraded()
        assert overall_status([failing]) == "degraded"
        await r.primary_faults(rest_http_errors=0)
        await r.until(lambda: r.primary.health().streams["risk"].state is LIVE, step=0.25, what="polled")


async def test_a_stream_that_recovers_or_is_released_shows_no_old_error() -> None:
    """The Estado page showed "no subscriptions left" as the last error of a live stream: the
    reason a connection ended stayed `last_error` after the stream was live again."""
    async with rig() as r:

        def public() -> StreamHealth:
            return r.kraken.health().streams["public"]

        ticker = r.collect("ticker", "BTC/USD")
        await r.until(lambda: ticker.states("kraken:ticker:BTC/USD")[-1:] == [LIVE])
        await r.faults(stall="public")  # the watchdog ends the silent connection
        await r.until(lambda: public().state is not LIVE and bool(public().last_error), what="down")
        await r.faults(stall=None)
        await r.until(lambda: ticker.states("kraken:ticker:BTC/USD")[-1:] == [LIVE], what="live again")
        assert public().state is LIVE and public().last_error is None  # recovered: no old error

        await r.stop_collecting()  # nobody wants it: the connection is closed on purpose
        await r.until(lambda: not public().connected, what="released")
        assert public().last_error is None and overall_status([r.kraken.health()]) == "ok"

        again = r.collect("ticker", "BTC/USD")
        await r.until(lambda: again.states("kraken:ticker:BTC/USD")[-1:] == [LIVE], what="wanted again")
        assert public().connected is True and public().last_error is None


async def test_a_polled_account_stream_answers_at_once_not_at_the_next_round(tmp_path: Path) -> None:
    """Balances are held and polled every 5 s; positions asked for between two rounds are polled
    then (a subscriber waited up to a whole round for its first state and its first positions)."""
    async with primary_rig(tmp_path) as r:
        balances = r.collect_primary("balances")
        await r.until(lambda: balances.states("primary:balances")[-1:] == [LIVE], step=0.25)
        await r.step(1.0)  # between two rounds of the held balances
        positions = r.collect_primary("positions")
        took = await r.until(lambda: positions.states("primary:positions")[-1:] == [LIVE], step=0.05)
        assert took <= 0.5, took
        assert positions.of(StreamStatus)[-1].reason == "polled from the risk API"  # read, not assumed
