"""The ways in to the options analytics against a real server on the simulators, on loopback:
`GET /api/options/{venue}/{underlying}` (JSON and CSV, errors, scopes), the `greeks` channel on
`/ws` (subscribe, errors, per-option conflation for a slow client) and `BridgeClient`."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import itertools
import math
from collections.abc import AsyncIterator
from contextlib import aclosing
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import httpx
import msgspec
import pytest

from brokerbridge.client import BridgeClient
from brokerbridge.core.config import ApiKey
from brokerbridge.core.errors import InvalidRequest, UnknownSymbol
from brokerbridge.core.events import AnyEvent, OptionAnalytics, StreamState, StreamStatus
from brokerbridge.core.options.views import OptionChain
from brokerbridge.core.secret import Secret
from brokerbridge.server.option_csv import CSV_COLUMNS, cell, chain_csv, csv_filename, reasons_text
from brokerbridge.server.ws import WsSettings
from brokerbridge.venues.primary.options import option_facts
from tests.server.conftest import KEYS, LIMIT, MARKET_KEY, Client, Stack, connect, is_event, make_stack
from tests.server.observe import metric

ACCOUNT_ONLY_KEY = "account-only-key-0123456789"
CONFLATED = "brokerbridge_ws_conflated_total"


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.server.http_url, timeout=LIMIT) as client:
        yield client


async def chain_of(http: httpx.AsyncClient, **params: str) -> OptionChain:
    answer = await http.get("/api/options/primary/GGAL", params=params)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    return msgspec.json.decode(answer.content, type=OptionChain)


def finite(value: object) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


async def test_the_chain_as_json_every_listed_option_with_its_facts_and_no_nan(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    chain = await chain_of(http)
    assert (chain.venue, chain.underlying, chain.model) == ("primary", "GGAL", "american")
    assert chain.simulated is ("primary" in stack.bridge.simulated)
    expiries = [e.expiry for e in chain.expiries]
    assert len(expiries) >= 2 and expiries == sorted(expiries)
    catalog = await stack.bridge.catalog("primary")
    for expiry in chain.expiries:
        assert expiry.options and all(o.expiry == expiry.expiry for o in expiry.options)
        strikes = [(o.strike, o.option_type != "call") for o in expiry.options]
        assert strikes == sorted(strikes)  # by strike, call before put
        for option in expiry.options:
            assert option.symbol in catalog and option.underlying == "GGAL"
            assert option.model == "american" and option.lot == Decimal(100)
            for field in option.__struct_fields__:
                assert finite(getattr(option, field)), (option.symbol, field)
            # An empty figure says why: each IV by its name, the greeks together.
            for figure in ("iv_bid", "iv_ask", "iv_last", "iv_mid"):
                assert getattr(option, figure) is not None or figure in option.reasons, (option, figure)
            for figure in ("delta", "gamma", "vega", "theta", "rho"):
                assert getattr(option, figure) is not None or "greeks" in option.reasons, (option, figure)
        # The simulator quotes every series from a volatility surface: the mids have IVs and greeks.
        assert any(o.iv_mid is not None and o.delta is not None for o in expiry.options)
    # Raw JSON: numbers only where a figure is (never NaN/Infinity, which JSON cannot carry).
    raw = (await http.get("/api/options/primary/GGAL")).text
    assert "NaN" not in raw and "Infinity" not in raw


async def test_expiry_and_model_select_what_is_computed(http: httpx.AsyncClient) -> None:
    every = await chain_of(http)
    first = every.expiries[0].expiry
    one = await chain_of(http, expiry=first, model="european")
    assert [e.expiry for e in one.expiries] == [first] and one.model == "european"
    assert {o.model for o in one.expiries[0].options} == {"european"}
    assert [o.symbol for o in one.expiries[0].options] == [o.symbol for o in every.expiries[0].options]


async def test_the_chain_as_csv_one_row_per_option_machine_readable(http: httpx.AsyncClient) -> None:
    first = (await chain_of(http)).expiries[0].expiry
    answer = await http.get("/api/options/primary/GGAL", params={"format": "csv", "expiry": first})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"] == (
        f'attachment; filename="brokerbridge-options-primary-GGAL-{first}-american.csv"'
    )
    assert answer.text.endswith("\r\n")
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    chain = await chain_of(http, expiry=first)
    options = chain.expiries[0].options
    assert len(rows) - 1 == len(options)
    column = {name: i for i, name in enumerate(CSV_COLUMNS)}
    numeric = ("days", "strike", "spot", "bid", "ask", "mid", "iv_mid", "delta", "gamma", "vega", "theta")
    for row, option in zip(rows[1:], options, strict=True):
        cells = dict(zip(CSV_COLUMNS, row, strict=True))
        assert (
            cells["symbol"] == option.symbol and dt.date.fromisoformat(cells["expiry"]).isoformat() == first
        )
        assert Decimal(cells["strike"]) == option.strike
        assert cells["simulated"] == ("true" if chain.simulated else "false")
        for name in numeric:
            if cells[name]:
                assert "," not in cells[name] and math.isfinite(float(cells[name])), (name, cells[name])
        # The same figures as the JSON (a few seconds apart: the chain may have ticked; the facts not).
        assert cells["option_type"] == option.option_type and cells["lot"] == str(option.lot)
        # An empty cell has its reason in `reasons`.
        for name in ("iv_mid", "delta", "intrinsic"):
            if not cells[name] and getattr(option, name) is None:
                assert cells["reasons"], (option.symbol, name)
        assert len(row) == len(column)


async def test_mistakes_answer_in_the_shared_error_shape(stack: Stack, http: httpx.AsyncClient) -> None:
    listed = await listed_expiries(stack)

    async def refused(path: str, status: int, code: str, **params: str) -> dict[str, Any]:
        answer = await http.get(path, params=params)
        assert answer.status_code == status, (path, params, answer.text)
        error: dict[str, Any] = answer.json()["error"]
        assert error["code"] == code and error["message"], error
        return error

    unknown = await refused("/api/options/nowhere/GGAL", 404, "unknown_venue")
    assert "primary" in unknown["remedy"]
    await refused("/api/options/primary/NOPE", 404, "unknown_symbol")
    not_listed = await refused("/api/options/primary/GGAL", 400, "invalid_request", expiry="2031-01-17")
    assert listed[0] in not_listed["remedy"]  # names the expiries that are listed
    await refused("/api/options/primary/GGAL", 400, "invalid_request", expiry="2026-02-30")
    await refused("/api/options/primary/GGAL", 400, "invalid_request", expiry="next friday")
    await refused("/api/options/primary/GGAL", 400, "invalid_request", model="binomial")
    await refused("/api/options/primary/GGAL", 400, "invalid_request", format="xml")
    kraken = await refused("/api/options/kraken/BTC", 404, "unknown_channel")  # a venue without options
    assert "options catalogue" in kraken["message"] and "primary" in kraken["remedy"]


async def test_the_route_needs_the_market_scope(tmp_path: Path) -> None:
    keys = (*KEYS, ApiKey(name="books", key=Secret(ACCOUNT_ONLY_KEY), scopes=frozenset({"account"})))
    async with (
        make_stack(tmp_path, open_market_data=False, keys=keys) as stack,
        httpx.AsyncClient(base_url=stack.server.http_url, timeout=LIMIT) as http,
    ):
        path = "/api/options/primary/GGAL"
        anonymous = await http.get(path)
        assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "not_authorized"
        lacking = await http.get(path, headers={"Authorization": f"Bearer {ACCOUNT_ONLY_KEY}"})
        assert lacking.status_code == 403 and ACCOUNT_ONLY_KEY not in lacking.text
        allowed = await http.get(path, headers={"Authorization": f"Bearer {MARKET_KEY}"})
        assert allowed.status_code == 200, allowed.text


# -- /ws -------------------------------------------------------------------------------------------


async def subscribe(client: Client, sub_id: str, **fields: object) -> dict[str, Any]:
    await client.send({"op": "subscribe", "id": sub_id, **fields})
    return await client.until(lambda m: m["type"] in ("ack", "error") and m.get("id") == sub_id)


async def refusal(client: Client, sub_id: str, **fields: object) -> dict[str, Any]:
    """The error answering a subscribe — at once, or after the ack while the options service has
    not read the venue's catalogue yet (then as a venue's refusal of the stream)."""
    await client.send({"op": "subscribe", "id": sub_id, **fields})
    return await client.until(lambda m: m["type"] == "error" and m.get("id") == sub_id)


async def listed_expiries(stack: Stack) -> list[str]:
    """GGAL's expiries as the venue's catalogue lists them."""
    catalog = await stack.bridge.catalog("primary")
    return [day.isoformat() for day in option_facts(catalog, "GGAL").expiries]


async def test_greeks_over_ws_one_event_per_option_of_the_expiry(stack: Stack) -> None:
    expiry = (await listed_expiries(stack))[0]
    async with asyncio.timeout(LIMIT):
        client = await connect(stack.server, key=None)
        ack = await subscribe(client, "g", venue="primary", channel="greeks", symbol="GGAL", expiry=expiry)
        assert ack["type"] == "ack", ack
        assert ack["stream"] == f"primary:greeks:GGAL:expiry={expiry}:model=american"
        chain = await stack.bridge.option_chain("primary", "GGAL", expiry=expiry)
        wanted = {o.symbol for o in chain.expiries[0].options}
        seen: set[str] = set()
        while seen != wanted:
            message = await client.until(lambda m: m["type"] == "event" and m["id"] == "g")
            event = msgspec.json.decode(msgspec.json.encode(message["event"]), type=AnyEvent)
            if isinstance(event, OptionAnalytics):
                assert event.expiry == expiry and event.model == "american" and event.symbol in wanted
                seen.add(event.symbol)
        european = await subscribe(
            client, "e", venue="primary", channel="greeks", symbol="GGAL", expiry=expiry, model="european"
        )
        assert european["stream"].endswith(":model=european")
        # Without an expiry: every listed expiry's options on one subscription.
        every = await subscribe(client, "all", venue="primary", channel="greeks", symbol="GGAL")
        assert every["stream"] == "primary:greeks:GGAL:model=american"
        expiries: set[str] = set()
        while len(expiries) < 2:
            message = await client.until(lambda m: is_event("option_analytics")(m) and m["id"] == "all")
            expiries.add(message["event"]["expiry"])
        await client.close()


async def test_greeks_subscribe_mistakes_are_refused_with_remedies(stack: Stack) -> None:
    expiries = await listed_expiries(stack)
    async with asyncio.timeout(LIMIT):
        client = await connect(stack.server, key=None)
        for channel, field in (("ticker", "expiry"), ("book", "model")):
            value = expiries[0] if field == "expiry" else "european"
            wrong = await subscribe(
                client, f"w-{channel}", venue="primary", channel=channel, symbol="MERV - XMEV - GGAL - 24hs",
                **{field: value},
            )  # fmt: skip
            assert (wrong["type"], wrong["code"]) == ("error", "invalid_request")
            assert field in wrong["message"] and "greeks" in wrong["message"] and wrong["remedy"]
        unknown = await refusal(client, "u", venue="primary", channel="greeks", symbol="NOPE")
        assert unknown["code"] == "unknown_symbol" and "GGAL" in unknown["remedy"]
        not_listed = await refusal(
            client, "x", venue="primary", channel="greeks", symbol="GGAL", expiry="2031-01-17"
        )
        assert not_listed["code"] == "invalid_request" and expiries[0] in not_listed["remedy"]
        kraken = await refusal(client, "k", venue="kraken", channel="greeks", symbol="BTC")
        assert kraken["code"] == "unknown_channel"
        bad_model = await subscribe(client, "m", venue="primary", channel="greeks", symbol="GGAL", model="x")
        assert (bad_model["type"], bad_model["code"]) == ("error", "invalid_request")
        assert "american" in bad_model["remedy"] and "european" in bad_model["remedy"]
        bad_expiry = await subscribe(
            client, "d", venue="primary", channel="greeks", symbol="GGAL", expiry="18/12"
        )
        assert bad_expiry["code"] == "invalid_request" and "ISO date" in bad_expiry["remedy"]
        no_symbol = await subscribe(client, "n", venue="primary", channel="greeks")
        assert (no_symbol["type"], no_symbol["code"]) == ("error", "invalid_request")
        await client.send({"op": "ping", "id": "alive"})
        assert (await client.until(lambda m: m["type"] == "pong"))["id"] == "alive"
        await client.close()


def flood_event(venue: str, expiry: str, symbol: str, n: int, template: OptionAnalytics) -> OptionAnalytics:
    """`template` as option `symbol`, with `delta` = n: which event of the flood this is."""
    return msgspec.structs.replace(
        template, venue=venue, expiry=expiry, symbol=symbol, delta=float(n), ts=0.0
    )


async def test_a_slow_greeks_client_gets_the_newest_event_of_each_option(tmp_path: Path) -> None:
    """A client that does not read while a chain recomputes many times (a flood published at once,
    as the ticker flood of test_policies), then reads: statuses in order, then each option once,
    with its newest figures — also the options whose newest event the stream no longer kept for it
    (client_queue_size 20 < options × rounds) — and `seq` counting every event, skipped or not."""
    ws = WsSettings(heartbeat_interval=5, client_queue_size=20)
    async with make_stack(tmp_path, ws=ws) as stack, asyncio.timeout(LIMIT):
        expiry = (await listed_expiries(stack))[0]
        client = await connect(stack.server, key=None, max_queue=1)
        ack = await subscribe(client, "g", venue="primary", channel="greeks", symbol="GGAL", expiry=expiry)
        assert ack["type"] == "ack", ack
        first = await client.until(lambda m: m["type"] == "event" and m["id"] == "g")
        template = OptionAnalytics(
            venue="primary",
            ts=0.0,
            symbol="",
            underlying="GGAL",
            underlying_symbol="MERV - XMEV - GGAL - 24hs",
            option_type="call",
            strike=Decimal(7000),
            expiry=expiry,
            model="american",
            days=11.2,
            business_days=8,
        )
        # Options of their own (the chain's real ones may tick meanwhile): 30 of them, 200 rounds,
        # a status in the middle, published in one loop turn — nothing is written in between.
        options = [f"FLOOD OPTION {i:02d}" for i in range(30)]
        rounds = 200
        stream = ack["stream"]
        for n in range(rounds):
            for symbol in options:
                stack.bridge.fanout.publish(flood_event("primary", expiry, symbol, n, template))
            if n == rounds // 2:
                stack.bridge.fanout.publish(
                    StreamStatus(
                        venue="primary", ts=0.0, stream=stream, state=StreamState.STALE, reason="flood test"
                    )
                )
        # The last round of the flood, for the first half of the options only: their newest events
        # are the last in the log, the other half's were cut from what the client could read.
        for symbol in options[:15]:
            stack.bridge.fanout.publish(flood_event("primary", expiry, symbol, rounds, template))
        published = rounds * len(options) + 1 + 15
        newest = {symbol: rounds if i < 15 else rounds - 1 for i, symbol in enumerate(options)}
        got: dict[str, list[float]] = {}
        seqs: list[int] = [first["seq"]]
        statuses: list[str] = []
        while {s: v[-1] for s, v in got.items()} != newest:
            message = await client.until(lambda m: m["type"] == "event" and m["id"] == "g")
            seqs.append(message["seq"])
            event = message["event"]
            if event["kind"] == "status" and event["reason"] == "flood test":
                statuses.append(event["state"])
            if event["kind"] == "option_analytics" and event["symbol"] in newest:
                got.setdefault(event["symbol"], []).append(event["delta"])
        assert statuses == ["stale"]  # the status, in order with the data (once)
        assert all(len(deltas) == 1 for deltas in got.values()), got  # one event per option …
        assert got == {symbol: [float(n)] for symbol, n in newest.items()}  # … its newest figures
        assert seqs == sorted(set(seqs))  # seq only grows …
        assert seqs[-1] >= first["seq"] + published  # … and counts every event, delivered or not
        assert max(b - a for a, b in itertools.pairwise(seqs)) > 1
        assert metric(stack.server, CONFLATED, kind="greeks") > published // 2
        await client.close()


# -- BridgeClient ------------------------------------------------------------------------------------


async def test_bridge_client_option_chain_csv_and_greeks(stack: Stack) -> None:
    async with BridgeClient(stack.server.http_url, key=MARKET_KEY) as bridge:
        chain = await bridge.option_chain("primary", "GGAL")
        assert isinstance(chain, OptionChain) and chain.expiries and chain.underlying == "GGAL"
        expiry = chain.expiries[0].expiry
        one = await bridge.option_chain("primary", "GGAL", expiry=expiry, model="european")
        assert [e.expiry for e in one.expiries] == [expiry] and one.model == "european"
        text = await bridge.option_chain_csv("primary", "GGAL", expiry=expiry)
        rows = list(csv.reader(io.StringIO(text)))
        assert tuple(rows[0]) == CSV_COLUMNS and len(rows) - 1 == len(one.expiries[0].options)
        with pytest.raises(UnknownSymbol):
            await bridge.option_chain("primary", "NOPE")
        with pytest.raises(InvalidRequest) as not_listed:
            await bridge.option_chain("primary", "GGAL", expiry="2031-01-17")
        assert expiry in (not_listed.value.remedy or "")

        stream = cast(
            AsyncIterator[AnyEvent],
            bridge.subscribe("primary", "greeks", "GGAL", expiry=expiry, model="european"),
        )
        async with aclosing(stream), asyncio.timeout(LIMIT):  # type: ignore[type-var]
            async for event in stream:
                if isinstance(event, OptionAnalytics):
                    assert (event.expiry, event.model, event.underlying) == (expiry, "european", "GGAL")
                    break
        wrong = cast(AsyncIterator[AnyEvent], bridge.subscribe("primary", "ticker", "GGAL", expiry=expiry))
        with pytest.raises(InvalidRequest):
            async with aclosing(wrong), asyncio.timeout(LIMIT):  # type: ignore[type-var]
                async for _ in wrong:
                    pass


# -- the CSV's cells (pure) ---------------------------------------------------------------------------


def test_csv_cells_are_locale_free_and_keep_the_venues_digits() -> None:
    assert [cell(None), cell(True), cell(False)] == ["", "true", "false"]
    assert cell(Decimal("7000.000")) == "7000.000"  # the venue's digits, trailing zeros too
    assert cell(0.1 + 0.2) == "0.30000000000000004"  # exact: float(text) gives the same number back
    assert cell(1e-20) == "1e-20" and float(cell(-0.000123)) == -0.000123
    assert reasons_text({"iv_bid": "no bid", "greeks": "no implied volatility"}) == (
        "iv_bid: no bid; greeks: no implied volatility"
    )
    chain = OptionChain(
        venue="primary",
        underlying='GG/AL "x"',
        underlying_symbol=None,
        ts=0.0,
        model="european",
        spot=None,
        spot_stale=False,
        rate=None,
        rate_source="",
        caucion_tna=None,
        simulated=True,
        expiries=(),
    )
    assert (
        csv_filename(chain, "2026-12-18") == "brokerbridge-options-primary-GG_AL_x_-2026-12-18-european.csv"
    )
    assert chain_csv(chain) == ",".join(CSV_COLUMNS) + "\r\n"  # a header row even with no option
