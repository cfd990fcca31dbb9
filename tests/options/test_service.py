"""The greeks streams inside the Bridge (services/options.py) against the Primary simulator, in
memory on a FakeClock: one event per option from the venue's facts, recomputed on a tick of the
underlying or of one option, stale when the underlying is not current (stream down, or too old on
the bridge clock) and back, refusals with their errors, `option_chain`, upstream streams shared
and released."""

from __future__ import annotations

import dataclasses
import math
from contextlib import AbstractAsyncContextManager
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from brokerbridge.core.config import OptionsConfig
from brokerbridge.core.errors import InvalidRequest, ServiceUnavailable, UnknownChannel, UnknownSymbol
from brokerbridge.core.events import (
    Channel,
    OptionAnalytics,
    StreamState,
    StreamStatus,
    Subscription,
    Ticker,
)
from brokerbridge.core.options.analytics import analyze_chain
from brokerbridge.core.options.views import OptionChain
from brokerbridge.sim.primary.account import OrderRequest as SimOrderRequest
from brokerbridge.sim.primary.catalog import Catalog as SimCatalog
from brokerbridge.venues.primary.catalog import Catalog
from tests.io.primary_rig import GGAL, PrimaryRig, primary_rig
from tests.io.rig import Collector

pytestmark = pytest.mark.timeout(120)

LIVE, STALE = StreamState.LIVE, StreamState.STALE
# The market steps rarely: the ticks these tests make are the orders they place.
QUIET = 3600.0


def quiet_rig(tmp_path: Path, **kw: Any) -> AbstractAsyncContextManager[PrimaryRig]:
    """The market steps once an hour (the ticks are the orders a test places); the socket's
    silence watchdog waits as long (a quiet market sends nothing)."""
    return primary_rig(tmp_path, tick_s=QUIET, idle_timeout=7200.0, **kw)


def options_of(catalog: Catalog, expiry: str | None = None) -> dict[str, Decimal]:
    """GGAL's options (symbol → strike) as the simulator's instrument details list them."""
    return {
        detail.symbol: detail.strike
        for detail in catalog.options()
        if detail.strike is not None
        and detail.maturity is not None
        and (expiry is None or detail.maturity.isoformat() == expiry)
    }


async def expiries(r: PrimaryRig) -> list[str]:
    catalog = await r.call(r.bridge.catalog("primary"))
    return [d.isoformat() for d in catalog.expiries("GGAL")]


def latest(c: Collector) -> dict[str, OptionAnalytics]:
    out: dict[str, OptionAnalytics] = {}
    for event in c.of(OptionAnalytics):
        out[event.symbol] = event
    return out


def greeks_states(c: Collector) -> list[StreamState]:
    return [e.state for e in c.of(StreamStatus) if ":greeks:" in e.stream]


async def live(r: PrimaryRig, c: Collector, symbols: set[str]) -> None:
    await r.until(
        lambda: greeks_states(c)[-1:] == [LIVE] and set(latest(c)) == symbols,
        what="greeks live with an event per option",
    )


def take_one(r: PrimaryRig, symbol: str, ask: Decimal) -> None:
    """Buy one at the ask on the simulator: a trade, so `symbol`'s ticker changes (its last, its
    ask's size) — a tick. (Improving the bid is no tick where the spread is one tick wide.)"""
    assert r.psim is not None
    exchange = r.psim.exchange
    instrument = exchange.catalog.get(symbol)
    assert instrument is not None
    exchange.place(
        SimOrderRequest(
            instrument=instrument,
            account=exchange.account.account_id,
            side="BUY",
            ord_type="LIMIT",
            time_in_force="DAY",
            qty=Decimal(1),
            price=ask,
        )
    )


def events_of(c: Collector, symbol: str) -> int:
    return len([e for e in c.of(OptionAnalytics) if e.symbol == symbol])


def ticker_subs(r: PrimaryRig, symbols: set[str]) -> list[Subscription]:
    return [Subscription(venue="primary", channel=Channel.TICKER, symbol=s) for s in sorted(symbols)]


async def test_one_event_per_option_from_the_venue_facts_then_live(tmp_path: Path) -> None:
    async with quiet_rig(tmp_path) as r:
        first, second, *_ = await expiries(r)
        catalog = await r.call(r.bridge.catalog("primary"))
        wanted = options_of(catalog, first)
        assert len(wanted) == 2 * len(set(wanted.values())) >= 10  # a call and a put per strike
        greeks = r.collect_primary("greeks", "GGAL", expiry=first)
        await live(r, greeks, set(wanted))
        assert greeks_states(greeks)[0] is StreamState.CONNECTING
        for symbol, event in latest(greeks).items():
            detail = catalog.get(symbol)
            assert detail is not None and detail.option_type is not None
            assert event.strike == wanted[symbol] and event.expiry == first  # facts from the details
            assert event.option_type == detail.option_type.value and event.lot == Decimal(100)
            assert event.underlying == "GGAL" and event.underlying_symbol == GGAL
            assert event.model == "american"  # [options] model
            assert not event.stale and event.spot is not None
        # A late joiner gets the status and the whole chain at once, though nothing ticks.
        late = r.collect_primary("greeks", "GGAL", expiry=first)
        await r.run_for(0.1)
        assert late.of(StreamStatus)[0].state is LIVE
        assert {e.symbol: e for e in late.of(OptionAnalytics)} == latest(greeks)
        # Only the asked expiry: the other's options are not even listened to.
        assert all(e.expiry == first for e in greeks.of(OptionAnalytics))
        others = ticker_subs(r, set(options_of(catalog, second)))
        assert not any(r.bridge.fanout.is_open(sub) for sub in others)


async def test_recomputed_on_an_underlying_tick_and_on_an_option_tick(tmp_path: Path) -> None:
    async with quiet_rig(tmp_path) as r:
        first, *_ = await expiries(r)
        catalog = await r.call(r.bridge.catalog("primary"))
        wanted = options_of(catalog, first)
        greeks = r.collect_primary("greeks", "GGAL", expiry=first)
        spot = r.collect_primary("ticker", GGAL)
        await live(r, greeks, set(wanted))
        await r.run_for(1.0)  # nothing ticks: nothing is published again
        before = len(greeks.of(OptionAnalytics))
        await r.run_for(1.0)
        assert len(greeks.of(OptionAnalytics)) == before

        # A tick of one option: that option and its put-call-parity partner, no other.
        call = min(s for s in wanted if latest(greeks)[s].option_type == "call")
        ask = latest(greeks)[call].ask
        assert ask is not None
        take_one(r, call, ask)
        await r.until(lambda: events_of(greeks, call) == 2, what="the option's tick")
        await r.run_for(0.5)
        again = greeks.of(OptionAnalytics)[before:]
        partner = next(
            s for s, k in wanted.items() if k == wanted[call] and latest(greeks)[s].option_type == "put"
        )
        assert {e.symbol for e in again} == {call, partner}
        assert events_of(greeks, call) == 2  # one recompute for the tick

        # A burst of ticks within one loop turn (here five of one option, as the fan-out delivers
        # them): one recompute, one event with the last quote.
        last = latest(greeks)[call]
        assert last.bid is not None and last.ask is not None
        for n in range(1, 6):
            r.bridge.fanout.publish(
                Ticker(
                    venue="primary",
                    ts=r.clock.time(),
                    symbol=call,
                    bid=last.bid - n,
                    bid_qty=Decimal(1),
                    ask=last.ask,
                    ask_qty=Decimal(1),
                    last=last.last,
                )
            )
        await r.run_for(0.5)
        assert events_of(greeks, call) == 3 and latest(greeks)[call].bid == last.bid - 5

        # A tick of the underlying: the whole chain, with the new spot.
        before = len(greeks.of(OptionAnalytics))
        quote = spot.of(Ticker)[-1]
        assert quote.ask is not None
        take_one(r, GGAL, quote.ask)
        await r.until(lambda: {e.symbol for e in greeks.of(OptionAnalytics)[before:]} == set(wanted))
        await r.run_for(0.5)
        assert len(greeks.of(OptionAnalytics)) - before == len(wanted)  # once each


async def test_an_option_tick_computes_that_option_and_its_partner_only(tmp_path: Path) -> None:
    """Incremental recompute: a spot tick computes the whole chain, an option's tick that option
    and its put-call-parity partner — the others keep the events of the last whole-chain tick —
    and every event equals what a whole-chain computation at its own time gives."""
    async with quiet_rig(tmp_path) as r:
        first, *_ = await expiries(r)
        catalog = await r.call(r.bridge.catalog("primary"))
        wanted = options_of(catalog, first)
        greeks = r.collect_primary("greeks", "GGAL", expiry=first, model="european")
        spot = r.collect_primary("ticker", GGAL)
        await live(r, greeks, set(wanted))
        # What the service holds of the chain (its inputs, its count of options computed).
        chain = r.bridge.options._underlyings[("primary", "GGAL")]
        quote = spot.of(Ticker)[-1]
        assert quote.ask is not None
        before = len(greeks.of(OptionAnalytics))
        counted = chain.options_computed
        take_one(r, GGAL, quote.ask)  # the spot ticks: every option
        await r.until(lambda: {e.symbol for e in greeks.of(OptionAnalytics)[before:]} == set(wanted))
        await r.run_for(0.5)
        assert chain.options_computed - counted == len(wanted)
        whole = latest(greeks)[min(wanted)].ts

        await r.run_for(5.0)
        call = min(s for s in wanted if latest(greeks)[s].option_type == "call")
        partner = next(
            s for s, k in wanted.items() if k == wanted[call] and latest(greeks)[s].option_type == "put"
        )
        ask = latest(greeks)[call].ask
        assert ask is not None
        counted = chain.options_computed
        take_one(r, call, ask)
        await r.until(lambda: latest(greeks)[call].ts > whole, what="the option's tick")
        await r.run_for(0.5)
        assert chain.options_computed - counted == 2  # the option and its partner, no other
        # Each option's latest IVs are kept as the solver's starting points for its next tick.
        event = latest(greeks)[call]
        ivs = [
            math.nan if v is None else v for v in (event.iv_bid, event.iv_ask, event.iv_last, event.iv_mid)
        ]
        assert chain.guesses["european"][call] == pytest.approx(ivs, nan_ok=True)
        assert set(chain.guesses["european"]) == set(wanted)
        # A late joiner gets the chain as the service holds it: two options computed at the tick,
        # the others at the spot's tick before it.
        late = r.collect_primary("greeks", "GGAL", expiry=first, model="european")
        await r.run_for(0.1)
        held = {e.symbol: e for e in late.of(OptionAnalytics)}
        assert set(held) == set(wanted)
        assert {s for s, e in held.items() if e.ts > whole} == {call, partner}
        assert {e.ts for s, e in held.items() if s not in (call, partner)} == {whole}
        # Each event is what the whole chain computed at its time, from the quotes now held, gives.
        inputs = chain.inputs["european"]
        for ts in {e.ts for e in held.values()}:
            again = analyze_chain(dataclasses.replace(inputs, now=ts, memo=None, guesses=None))
            for event in again:
                if held[event.symbol].ts == ts:
                    assert msgspec.json.encode(event) == msgspec.json.encode(held[event.symbol])


async def test_stale_when_the_underlying_stream_goes_down_and_live_again(tmp_path: Path) -> None:
    async with primary_rig(tmp_path, tick_s=0.5) as r:
        first, *_ = await expiries(r)
        catalog = await r.call(r.bridge.catalog("primary"))
        greeks = r.collect_primary("greeks", "GGAL", expiry=first)
        chain = set(options_of(catalog, first))
        await live(r, greeks, chain)
        # The socket drops and cannot come back; REST polling fails too: no current spot.
        await r.primary_faults(reject_ws_handshake=-1, rest_http_errors=-1, drop_now=True)
        await r.until(lambda: greeks_states(greeks)[-1:] == [STALE], step=0.25, what="greeks stale")
        status = [e for e in greeks.of(StreamStatus) if ":greeks:" in e.stream][-1]
        assert GGAL in status.reason
        n = len(greeks.of(OptionAnalytics))
        await r.until(lambda: len(greeks.of(OptionAnalytics)) >= n + len(chain), what="stale events")
        flagged = greeks.of(OptionAnalytics)[n:]
        assert all(e.stale and GGAL in e.reasons["spot"] for e in flagged)

        await r.primary_faults(reject_ws_handshake=0, rest_http_errors=0)
        await r.until(lambda: greeks_states(greeks)[-1:] == [LIVE], step=0.25, what="live again")
        await r.until(lambda: not any(e.stale for e in latest(greeks).values()), what="current events again")


async def test_stale_by_age_on_the_bridge_clock_without_a_tick(tmp_path: Path) -> None:
    options = OptionsConfig(stale_after=60.0)
    async with quiet_rig(tmp_path, options=options) as r:
        first, *_ = await expiries(r)
        catalog = await r.call(r.bridge.catalog("primary"))
        spot = r.collect_primary("ticker", GGAL)
        greeks = r.collect_primary("greeks", "GGAL", expiry=first)
        await live(r, greeks, set(options_of(catalog, first)))
        # The spot ticked just before the stream went live; nothing ticks from here on.
        took = await r.until(
            lambda: greeks_states(greeks)[-1:] == [STALE], step=1.0, within=120.0, what="stale by age"
        )
        assert 50.0 <= took <= 61.0
        assert all(e.stale and "stale after 60 s" in e.reasons["spot"] for e in latest(greeks).values())
        quote = spot.of(Ticker)[-1]
        assert quote.ask is not None
        take_one(r, GGAL, quote.ask)  # a tick: current again
        await r.until(lambda: greeks_states(greeks)[-1:] == [LIVE], what="live after a tick")
        await r.until(lambda: not any(e.stale for e in latest(greeks).values()))


async def test_refusals_say_what_is_wrong_and_what_to_do(tmp_path: Path) -> None:
    async with quiet_rig(tmp_path) as r:
        with pytest.raises(InvalidRequest, match="unknown options model") as bad_model:
            r.bridge.subscription("primary", "greeks", "GGAL", model="binomial")
        assert "american" in bad_model.value.remedy
        with pytest.raises(InvalidRequest, match="not an ISO date"):
            r.bridge.subscription("primary", "greeks", "GGAL", expiry="18/12/2026")

        # Before the catalogue is loaded: accepted, then refused when the stream opens.
        nope = r.collect_primary("greeks", "NOPE")
        kraken = r.collect("greeks", "BTC/USD", venue="kraken")
        await r.until(lambda: nope.refused is not None and kraken.refused is not None, what="refused")
        assert isinstance(nope.refused, UnknownSymbol) and "GGAL" in nope.refused.remedy
        assert isinstance(kraken.refused, UnknownChannel) and "primary" in kraken.refused.remedy

        # Once it is loaded: refused at once.
        with pytest.raises(UnknownSymbol, match="no options on 'NOPE'") as unknown:
            r.bridge.subscription("primary", "greeks", "NOPE")
        assert "GGAL" in unknown.value.remedy
        listed = await expiries(r)
        with pytest.raises(InvalidRequest, match="expiring 2030-01-18") as not_listed:
            r.bridge.subscription("primary", "greeks", "GGAL", expiry="2030-01-18")
        assert all(e in not_listed.value.remedy for e in listed)
        with pytest.raises(UnknownChannel, match="no options catalogue"):
            r.bridge.subscription("kraken", "greeks", "BTC/USD")
        with pytest.raises(UnknownSymbol):
            await r.call(r.bridge.option_chain("primary", "NOPE"))


async def test_option_chain_answers_every_expiry_then_lets_the_streams_go(tmp_path: Path) -> None:
    async with quiet_rig(tmp_path) as r:
        listed = await expiries(r)
        second = listed[1]
        catalog = await r.call(r.bridge.catalog("primary"))
        chain: OptionChain = await r.call(r.bridge.option_chain("primary", "GGAL", model="european"))
        assert (chain.venue, chain.underlying, chain.model) == ("primary", "GGAL", "european")
        assert chain.underlying_symbol == GGAL and not chain.simulated and not chain.spot_stale
        assert [e.expiry for e in chain.expiries] == listed
        for expiry in chain.expiries:
            strikes = [(o.strike, o.option_type) for o in expiry.options]
            assert strikes == sorted(strikes, key=lambda s: (s[0], s[1] != "call"))
            assert {o.symbol for o in expiry.options} == set(options_of(catalog, expiry.expiry))
            assert all(o.model == "european" for o in expiry.options)
        assert chain.rate is not None and chain.rate_source.startswith("caución MERV - XMEV - PESOS - 1D")
        assert chain.caucion_tna is not None
        # No grace period here: every stream it held is closed again.
        held = ticker_subs(r, set(options_of(catalog)) | {GGAL})
        assert not any(r.bridge.fanout.is_open(sub) for sub in held)

        one = await r.call(r.bridge.option_chain("primary", "GGAL", expiry=second))
        assert [e.expiry for e in one.expiries] == [second] and one.model == "american"


async def test_option_chain_waits_at_most_wait_s(tmp_path: Path) -> None:
    async with quiet_rig(tmp_path) as r:
        await r.primary_faults(rest_http_errors=-1)  # no login, no catalogue
        with pytest.raises(ServiceUnavailable, match="within 3 s") as late:
            await r.call(r.bridge.option_chain("primary", "GGAL", wait_s=3.0))
        assert "catalogue cannot be read" in late.value.message


async def test_option_chain_of_a_stale_underlying_says_so(tmp_path: Path) -> None:
    async with quiet_rig(tmp_path) as r:
        first, *_ = await expiries(r)
        greeks = r.collect_primary("greeks", "GGAL", expiry=first)  # keeps the streams open
        await r.until(lambda: greeks_states(greeks)[-1:] == [LIVE])
        await r.primary_faults(reject_ws_handshake=-1, rest_http_errors=-1, drop_now=True)
        await r.until(lambda: greeks_states(greeks)[-1:] == [STALE], step=0.25)
        chain = await r.call(r.bridge.option_chain("primary", "GGAL", expiry=first))
        assert chain.spot_stale and GGAL in chain.reasons["spot"]
        assert all(o.stale for o in chain.expiries[0].options)


async def test_greeks_streams_share_their_ticker_streams_and_release_them(tmp_path: Path) -> None:
    async with quiet_rig(tmp_path) as r:
        listed = await expiries(r)
        first = listed[0]
        catalog = await r.call(r.bridge.catalog("primary"))
        every = r.collect_primary("greeks", "GGAL")  # every expiry
        one = r.collect_primary("greeks", "GGAL", expiry=first, model="european")
        r.collect_primary("ticker", GGAL)  # a bot's own ticker of the underlying
        await live(r, every, set(options_of(catalog)))
        await live(r, one, set(options_of(catalog, first)))
        assert {e.expiry for e in every.of(OptionAnalytics)} == set(listed)
        assert {e.model for e in one.of(OptionAnalytics)} == {"european"}

        symbols = set(options_of(catalog)) | {GGAL, "MERV - XMEV - PESOS - 1D"}
        for sub in ticker_subs(r, symbols):
            assert r.bridge.fanout.is_open(sub)
            # One listener per underlying however many greeks streams use it (+ the bot's ticker).
            assert len(r.bridge.fanout.consumers(sub)) == (2 if sub.symbol == GGAL else 1)
        # One upstream subscription per instrument on the venue's socket.
        wire = [s for s in r.primary.session.subscriptions if s.channel is Channel.TICKER]
        assert len(wire) == len(set(wire)) == len(symbols)

        await r.stop_collecting()
        await r.run_for(0.5)
        assert not any(r.bridge.fanout.is_open(sub) for sub in ticker_subs(r, symbols))
        assert not [s for s in r.primary.session.subscriptions if s.channel is Channel.TICKER]


async def test_a_chain_open_across_days_follows_the_series_listed(tmp_path: Path) -> None:
    async with quiet_rig(tmp_path) as r:
        assert r.psim is not None
        listed = await expiries(r)
        first, second = listed[:2]
        catalog = await r.call(r.bridge.catalog("primary"))
        every = r.collect_primary("greeks", "GGAL")
        one = r.collect_primary("greeks", "GGAL", expiry=first)
        await live(r, every, set(options_of(catalog)))
        # Tomorrow's catalogue no longer lists the first expiry's series.
        gone = set(options_of(catalog, first))
        exchange = r.psim.exchange
        exchange.catalog = SimCatalog(tuple(i for i in exchange.catalog.instruments if i.symbol not in gone))
        await r.run_for(4 * 3600.0, step=60.0)  # past midnight in Buenos Aires, and a look after it

        assert isinstance(one.refused, InvalidRequest) and first in one.refused.message
        assert second in one.refused.remedy and first not in one.refused.remedy
        assert not any(r.bridge.fanout.is_open(sub) for sub in ticker_subs(r, gone))
        chain = await r.call(r.bridge.option_chain("primary", "GGAL"))
        assert [e.expiry for e in chain.expiries] == listed[1:]
        assert every.refused is None  # the all-expiries stream goes on with what is listed
