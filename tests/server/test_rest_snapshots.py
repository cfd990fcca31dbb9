"""REST market snapshots (ticker, book, trades, candles) and the OpenAPI schemas of every /api route.

`frozen` stacks run the simulators on a FakeClock: their markets stand still until a test advances
them, so what the stream delivered and what REST answers can be compared exactly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from brokerbridge.bridge import Bridge
from brokerbridge.core.clock import FakeClock
from brokerbridge.core.config import ServerConfig
from brokerbridge.core.events import Channel, Subscription
from brokerbridge.server import BridgeServer, ServerSettings
from brokerbridge.server.rest import RestSettings
from brokerbridge.server.ws import WsSettings
from brokerbridge.sim.kraken import KrakenSimulator
from brokerbridge.sim.primary import PrimarySimulator
from brokerbridge.venues.kraken.checksum import book_checksum
from tests.server.conftest import ACCOUNT_KEY, KEYS, LIMIT, Message, Stack, connect, is_event, stack_config

GGAL = "MERV - XMEV - GGAL - 24hs"


@dataclass
class Frozen(Stack):
    sim_clock: FakeClock


@asynccontextmanager
async def frozen_stack(tmp_path: Path, *, grace_s: float = 30.0) -> AsyncIterator[Frozen]:
    sim_clock = FakeClock(wall_start=time.time())
    settings = ServerSettings(config=ServerConfig(keys=KEYS), ws=WsSettings(heartbeat_interval=0.2))
    async with (
        KrakenSimulator(host="127.0.0.1", port=0, seed=3, clock=sim_clock) as kraken_sim,
        PrimarySimulator(host="127.0.0.1", port=0, clock=sim_clock) as primary_sim,
    ):
        config = stack_config(kraken_sim, primary_sim, tmp_path)
        # The frozen simulator sends no heartbeats either: do not take its silence for a dead link.
        config = dataclasses.replace(config, kraken=dataclasses.replace(config.kraken, idle_timeout=600.0))
        async with (
            Bridge(config, grace_s=grace_s) as bridge,
            BridgeServer(bridge, host="127.0.0.1", port=0, settings=settings) as server,
        ):
            yield Frozen(kraken_sim, primary_sim, bridge, server, sim_clock)


@pytest.fixture
async def frozen(tmp_path: Path) -> AsyncIterator[Frozen]:
    async with frozen_stack(tmp_path) as s:
        yield s


@asynccontextmanager
async def http_of(stack: Stack, key: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {key}"} if key else None
    async with httpx.AsyncClient(base_url=stack.server.http_url, timeout=LIMIT, headers=headers) as http:
        yield http


def levels(side: list[list[str]]) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(p), Decimal(q)) for p, q in side]


async def test_cold_snapshots_open_streams_that_linger(frozen: Frozen) -> None:
    async with asyncio.timeout(LIMIT), http_of(frozen) as http:
        answer = await http.get("/api/ticker/kraken", params={"symbol": "BTC/USD"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["venue"] == "kraken" and body["symbol"] == "BTC/USD" and body["stats"] is None
        assert body["state"] == "live"
        ticker = body["ticker"]
        assert ticker["kind"] == "ticker" and Decimal(ticker["bid"]) < Decimal(ticker["ask"])
        assert isinstance(ticker["last"], str)
        ticker_sub = Subscription(venue="kraken", channel=Channel.TICKER, symbol="BTC/USD")
        assert ticker_sub in frozen.bridge.upstream_closing()  # nobody holds it: open for the grace period
        # Within the grace period the next call is answered from memory: same ticker, market frozen.
        assert (await http.get("/api/ticker/kraken", params={"symbol": "BTC/USD"})).json() == body

        book = (await http.get("/api/book/kraken", params={"symbol": "BTC/USD", "depth": 25})).json()
        assert book["depth"] == 25 and book["state"] == "live"
        snapshot = book["book"]
        bids, asks = levels(snapshot["bids"]), levels(snapshot["asks"])
        assert len(bids) == len(asks) == 25
        assert bids == sorted(bids, reverse=True) and asks == sorted(asks) and bids[0][0] < asks[0][0]
        assert snapshot["checksum"] == book_checksum(
            [tuple(level) for level in snapshot["asks"]], [tuple(level) for level in snapshot["bids"]]
        )

        candles = (
            await http.get("/api/candles/kraken", params={"symbol": "BTC/USD", "interval": 5, "limit": 3})
        ).json()
        assert candles["interval"] == 5 and len(candles["candles"]) == 3
        begins = [c["begin"] for c in candles["candles"]]
        assert begins == sorted(begins) and len(set(begins)) == 3
        assert all(c["interval"] == 5 and c["kind"] == "candle" for c in candles["candles"])

        trades = (await http.get("/api/trades/kraken", params={"symbol": "BTC/USD"})).json()
        assert trades["state"] == "live" and isinstance(trades["trades"], list)

        primary = (await http.get("/api/ticker/primary", params={"symbol": GGAL})).json()
        assert primary["ticker"]["symbol"] == GGAL
        primary_book = (await http.get("/api/book/primary", params={"symbol": GGAL})).json()
        assert primary_book["depth"] == 5 and primary_book["book"]["bids"]


async def test_trades_and_candles_follow_the_market(frozen: Frozen) -> None:
    async with asyncio.timeout(LIMIT), http_of(frozen) as http:
        params = {"symbol": "ETH/USD"}
        first = (await http.get("/api/trades/kraken", params=params)).json()
        candles_before = (await http.get("/api/candles/kraken", params=params)).json()["candles"]
        client = await connect(frozen.server)
        await client.send({"op": "subscribe", "id": "t", "venue": "kraken", "channel": "trades", **params})
        await client.until(is_event("status", state="live"))
        seen: list[Message] = []
        while len(seen) < 3:
            await frozen.sim_clock.advance(1.0)
            async with asyncio.timeout(1.0):
                try:
                    seen.append(await client.until(is_event("trade")))
                except TimeoutError:
                    continue
        answer = (await http.get("/api/trades/kraken", params={**params, "limit": 1000})).json()
        ids = [t["trade_id"] for t in answer["trades"]]
        assert len(ids) == len(set(ids)) > len(first["trades"])
        assert {m["event"]["trade_id"] for m in seen} <= set(ids)
        stamps = [t["ts"] for t in answer["trades"]]
        assert stamps == sorted(stamps)
        limited = (await http.get("/api/trades/kraken", params={**params, "limit": 2})).json()["trades"]
        assert limited == answer["trades"][-2:]
        candles_after = (await http.get("/api/candles/kraken", params=params)).json()["candles"]
        assert candles_after[-1]["begin"] >= candles_before[-1]["begin"]
        await client.close()


async def test_book_snapshot_equals_the_streams_book(frozen: Frozen) -> None:
    async with asyncio.timeout(LIMIT), http_of(frozen) as http:
        client = await connect(frozen.server)
        await client.send(
            {"op": "subscribe", "id": "b", "venue": "kraken", "channel": "book", "symbol": "BTC/USD"}
        )
        message = await client.until(is_event("book_snapshot"))
        book = {side: dict(levels(message["event"][side])) for side in ("bids", "asks")}
        checksum = message["event"]["checksum"]

        async def rest_book() -> dict[str, Any]:
            answer = await http.get("/api/book/kraken", params={"symbol": "BTC/USD", "depth": 10})
            return answer.json()["book"]  # type: ignore[no-any-return]

        def same(rest: dict[str, Any]) -> bool:
            ours = {side: sorted(book[side].items(), reverse=side == "bids") for side in book}
            return rest["checksum"] == checksum and all(levels(rest[s]) == ours[s] for s in ours)

        assert same(await rest_book())
        # The market moves; the client applies the deltas it is sent; REST agrees once they are in.
        await frozen.sim_clock.advance(3.0)
        updates = 0
        while True:
            try:
                async with asyncio.timeout(0.5):
                    update = await client.until(is_event("book_update"))
            except TimeoutError:
                rest = await rest_book()
                if same(rest):
                    break
                continue
            updates += 1
            for side in ("bids", "asks"):
                for price, qty in levels(update["event"][side]):
                    if qty == 0:
                        book[side].pop(price, None)
                    else:
                        book[side][price] = qty
                best = sorted(book[side], reverse=side == "bids")
                book[side] = {p: book[side][p] for p in best[:10]}
            checksum = update["event"]["checksum"]
        assert updates > 0
        await client.close()


async def test_while_streaming_rest_answers_from_memory(stack: Stack) -> None:
    async with asyncio.timeout(LIMIT), http_of(stack) as http:
        client = await connect(stack.server)
        await client.send(
            {"op": "subscribe", "id": 1, "venue": "kraken", "channel": "ticker", "symbol": "BTC/USD"}
        )
        streamed = await client.until(is_event("ticker"))
        answer = (await http.get("/api/ticker/kraken", params={"symbol": "BTC/USD"})).json()
        assert answer["state"] == "live" and answer["ticker"]["ts"] >= streamed["event"]["ts"]
        subs = stack.bridge.health()["kraken"].streams["public"].subscriptions
        assert list(subs) == ["kraken:ticker:BTC/USD"]  # the REST call joined, it opened nothing
        assert stack.bridge.upstream_closing() == []
        await client.close()


async def test_late_ticker_joiner_gets_the_current_ticker_at_once(frozen: Frozen) -> None:
    async with asyncio.timeout(LIMIT):
        first = await connect(frozen.server)
        request = {"op": "subscribe", "id": 1, "venue": "kraken", "channel": "ticker", "symbol": "BTC/USD"}
        await first.send(request)
        current = await first.until(is_event("ticker"))
        late = await connect(frozen.server)
        await late.send(request)
        # The market stands still: without the replay no ticker would come.
        replayed = await late.until(is_event("ticker"), within=5.0)
        assert replayed["event"] == current["event"]
        await first.close()
        await late.close()


async def test_refusals_and_mistakes_are_typed(stack: Stack) -> None:
    cases = [
        ("/api/ticker/kraken", {"symbol": "NOPE/USD"}, 404, "unknown_symbol"),
        ("/api/book/primary", {"symbol": "MERV - XMEV - NOPE - 24hs"}, 404, "unknown_symbol"),
        ("/api/ticker/binance", {"symbol": "BTC/USD"}, 404, "unknown_venue"),
        ("/api/ticker/kraken", {}, 400, "invalid_request"),
        ("/api/book/kraken", {"symbol": "BTC/USD", "depth": 7}, 400, "invalid_request"),
        ("/api/book/kraken", {"symbol": "BTC/USD", "depth": "ten"}, 400, "invalid_request"),
        ("/api/book/primary", {"symbol": GGAL, "depth": 10}, 400, "invalid_request"),
        ("/api/candles/kraken", {"symbol": "BTC/USD", "interval": 2}, 400, "invalid_request"),
        ("/api/candles/primary", {"symbol": GGAL}, 400, "invalid_request"),
        ("/api/trades/kraken", {"symbol": "BTC/USD", "limit": 0}, 400, "invalid_request"),
        ("/api/trades/kraken", {"symbol": "BTC/USD", "limit": 100_000}, 400, "invalid_request"),
        ("/api/candles/kraken", {"symbol": "BTC/USD", "limit": "-1"}, 400, "invalid_request"),
    ]
    async with asyncio.timeout(LIMIT), http_of(stack) as http:
        for path, params, status, code in cases:
            answer = await http.get(path, params=params)
            assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), (path, params)
            error = answer.json()["error"]
            assert error["message"] and set(error) == {"code", "message", "remedy"}
        # The refused stream is not left waiting: a second call is refused at once too.
        again = await http.get("/api/ticker/kraken", params={"symbol": "NOPE/USD"})
        assert again.json()["error"]["code"] == "unknown_symbol"
        # Typed parameters say which one is wrong, and how, in our error shape (not FastAPI's 422).
        typed = (await http.get("/api/book/kraken", params={"symbol": "BTC/USD", "depth": "ten"})).json()
        assert typed["error"]["message"].startswith("depth: ") and "'ten'" in typed["error"]["message"]
        both = (
            await http.get("/api/candles/kraken", params={"symbol": "X", "interval": 0, "limit": "x"})
        ).json()
        assert "interval: " in both["error"]["message"] and "limit: " in both["error"]["message"]
        # /openapi.json says so: integers with their bounds, 400 declared, no 422 of FastAPI's
        # anywhere (the order routes' own 422 is order_refused / order_rejected, our error body).
        spec = (await http.get("/openapi.json")).json()
        book = spec["paths"]["/api/book/{venue}"]["get"]
        depth = next(p for p in book["parameters"] if p["name"] == "depth")["schema"]
        assert any(kind.get("type") == "integer" and kind.get("maximum") == 1000 for kind in depth["anyOf"])
        assert "400" in book["responses"]
        assert not [
            path
            for path, ops in spec["paths"].items()
            for op in ops.values()
            if "422" in op["responses"] and not path.startswith("/api/orders")
        ]
        assert "HTTPValidationError" not in str(spec)


async def test_no_data_in_time_is_503_with_a_remedy(stack: Stack) -> None:
    stack.server.app.state.rest_settings = RestSettings(snapshot_wait_s=0.5)
    stack.kraken_sim.faults.stall = "public"
    async with asyncio.timeout(LIMIT), http_of(stack) as http:
        answer = await http.get("/api/ticker/kraken", params={"symbol": "ETH/USD"})
        assert answer.status_code == 503
        error = answer.json()["error"]
        assert error["code"] == "unavailable" and "ETH/USD" in error["message"] and error["remedy"]
        stack.kraken_sim.faults.stall = None


# -- OpenAPI -----------------------------------------------------------------------------------
def validator_for(document: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """A validator of `schema` whose `#/components/...` references resolve in `document`."""
    return jsonschema.Draft202012Validator({**schema, "components": document["components"]})


async def test_every_api_answer_matches_its_openapi_schema(stack: Stack) -> None:
    async with asyncio.timeout(LIMIT), http_of(stack, ACCOUNT_KEY) as http:
        document = (await http.get("/openapi.json")).json()
        client = await connect(stack.server)
        await client.send({"op": "subscribe", "id": "b", "venue": "kraken", "channel": "balances"})
        await client.until(is_event("balance_snapshot"))
        await stack.bridge.wait_ready(LIMIT)
        calls = {
            "/api/ready": ({}, "/api/ready"),
            "/api/venues": ({}, "/api/venues"),
            "/api/health": ({}, "/api/health"),
            "/api/instruments": ({"venue": "primary", "search": "GGAL"}, "/api/instruments"),
            "/api/ticker/{venue}": ({"symbol": "BTC/USD"}, "/api/ticker/kraken"),
            "/api/book/{venue}": ({"symbol": GGAL}, "/api/book/primary"),
            "/api/trades/{venue}": ({"symbol": "BTC/USD"}, "/api/trades/kraken"),
            "/api/candles/{venue}": ({"symbol": "BTC/USD"}, "/api/candles/kraken"),
            "/api/balances/{venue}": ({}, "/api/balances/kraken"),
            "/api/orders/{venue}": ({}, "/api/orders/kraken"),
            "/api/fills/{venue}": ({}, "/api/fills/kraken"),
            "/api/options/{venue}/{underlying}": ({}, "/api/options/primary/GGAL"),
        }
        documented = {path for path in document["paths"] if path.startswith("/api/")}
        assert set(calls) <= documented
        for route, (params, path) in calls.items():
            answers = document["paths"][route]["get"]["responses"]
            answer = await http.get(path, params=params)
            assert answer.status_code == 200, (path, answer.text)
            schema = answers["200"]["content"]["application/json"]["schema"]
            assert schema != {}, f"{route} has no response schema"
            validator_for(document, schema).validate(answer.json())
            refused = await http.get(path.replace("kraken", "nope").replace("primary", "nope"), params=params)
            if refused.status_code == 404:
                error_schema = answers["404"]["content"]["application/json"]["schema"]
                validator_for(document, error_schema).validate(refused.json())
        # Kraken instruments are symbol rows: the other branch of the documented union.
        kraken = (await http.get("/api/instruments", params={"venue": "kraken"})).json()
        schema = document["paths"]["/api/instruments"]["get"]["responses"]["200"]["content"]
        validator_for(document, schema["application/json"]["schema"]).validate(kraken)
        # A drifted body would fail: the schema is strict about types.
        broken = {**(await http.get("/api/orders/kraken")).json(), "orders": [{"kind": "order_update"}]}
        orders_schema = document["paths"]["/api/orders/{venue}"]["get"]["responses"]["200"]["content"]
        with pytest.raises(jsonschema.ValidationError):
            validator_for(document, orders_schema["application/json"]["schema"]).validate(broken)
        await client.close()
