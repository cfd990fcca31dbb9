"""`/primary/` REST (server/primary/rest.py) against a real server and Bridge on the Primary simulator.

Each path is compared with the simulator's own answer shapes (what it would have answered pyRofex);
bad input gets Primary's error and nothing reaches the simulator: the simulator's HTTP requests are
counted (`CountingPrimarySimulator`), its orders and logins read from its exchange.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from brokerbridge.bridge import Bridge
from brokerbridge.core.clock import Clock, FakeClock
from brokerbridge.core.config import ApiKey, Config, PrimaryConfig, ServerConfig
from brokerbridge.core.secret import Secret
from brokerbridge.server import BridgeServer, ServerSettings
from brokerbridge.server.primary.rest import PRIMARY_TOKEN_TTL
from brokerbridge.server.ws import WsSettings
from brokerbridge.sim.primary import PrimarySimulator
from brokerbridge.sim.primary.catalog import MARKET_ID
from tests.server.conftest import GGAL, LIMIT

MARKET_KEY = "primary-market-key-0123"
READ_KEY = "primary-read-key-01234"
TRADE_KEY = "primary-trade-key-0123"
KEYS = (
    ApiKey(name="quotes", key=Secret(MARKET_KEY), scopes=frozenset({"market"})),
    ApiKey(name="reader", key=Secret(READ_KEY), scopes=frozenset({"market", "account"})),
    ApiKey(name="trader", key=Secret(TRADE_KEY), scopes=frozenset({"market", "account", "trade"})),
)
BASE = "/primary/"


class CountingPrimarySimulator(PrimarySimulator):
    """The Primary simulator, counting the HTTP requests that reach it (path and query)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.requests: list[str] = []

    def build_app(self) -> Any:
        app = super().build_app()

        async def counting(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                self.requests.append(f"{scope['path']}?{scope['query_string'].decode()}")
            await app(scope, receive, send)

        return counting

    def reached(self, path: str, since: int = 0) -> list[str]:
        return [r for r in self.requests[since:] if r.startswith(path)]


@dataclass
class PrimaryStack:
    sim: CountingPrimarySimulator
    bridge: Bridge
    server: BridgeServer
    http: httpx.AsyncClient

    @property
    def account(self) -> str:
        return self.sim.exchange.account.account_id

    async def token(self, user: str = "trader", password: str = TRADE_KEY) -> str:
        answer = await self.http.post(
            BASE + "auth/getToken", headers={"X-Username": user, "X-Password": password}
        )
        assert answer.status_code == 200, answer.text
        return answer.headers["X-Auth-Token"]

    async def get(self, path: str, token: str | None, **params: Any) -> httpx.Response:
        headers = {"X-Auth-Token": token} if token is not None else {}
        return await self.http.get(BASE + path, params=params, headers=headers)

    async def ok(self, path: str, token: str, **params: Any) -> dict[str, Any]:
        answer = await self.get(path, token, **params)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        assert body["status"] == "OK", body
        return body

    async def error(self, path: str, token: str | None, status: int = 200, **params: Any) -> str:
        """Primary's refusal: its status, `{"status":"ERROR","description":…}`; the description."""
        answer = await self.get(path, token, **params)
        assert answer.status_code == status, answer.text
        body = answer.json()
        assert body["status"] == "ERROR", body
        description: str = body["description"]
        return description


def primary_config(sim: PrimarySimulator, cache_dir: Path, **server: Any) -> Config:
    endpoints = sim.endpoints
    return Config(
        primary=PrimaryConfig(
            environment=endpoints.rest,
            rest_url=endpoints.rest,
            ws_url=endpoints.ws,
            user=endpoints.user,
            password=Secret(endpoints.password),
            account=endpoints.account,
            market_hours="always",
            instruments_cache_dir=str(cache_dir),
        ),
        server=ServerConfig(venues=("primary",), keys=KEYS, state_dir=str(cache_dir / "state"), **server),
    )


@asynccontextmanager
async def primary_stack(tmp_path: Path, *, clock: Clock | None = None) -> AsyncIterator[PrimaryStack]:
    """The simulator, a Bridge on it (Primary only, grace 5 s as `serve`) and the server; `clock`
    is the server's (tokens, logins), the Bridge keeps real time."""
    async with CountingPrimarySimulator(host="127.0.0.1", port=0) as sim:
        config = primary_config(sim, tmp_path)
        settings = ServerSettings(config=config.server, ws=WsSettings(heartbeat_interval=0.5))
        async with (
            Bridge(config, grace_s=5.0) as bridge,
            BridgeServer(bridge, host="127.0.0.1", port=0, settings=settings, clock=clock) as server,
            httpx.AsyncClient(base_url=server.http_url, timeout=LIMIT) as http,
        ):
            await bridge.wait_ready(LIMIT)
            yield PrimaryStack(sim, bridge, server, http)


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[PrimaryStack]:
    async with primary_stack(tmp_path) as s:
        yield s


async def until(check: Callable[[], Any], within: float = LIMIT) -> Any:
    """`check()`'s first true result, asked again every 50 ms (real sockets: answers take time)."""
    async with asyncio.timeout(within):
        while True:
            result = await check()
            if result:
                return result
            await asyncio.sleep(0.05)


# -- getToken ------------------------------------------------------------------------------------
async def test_get_token_gives_a_bridge_token_and_never_logs_in_upstream(stack: PrimaryStack) -> None:
    logins = stack.sim.exchange.logins
    answer = await stack.http.post(
        BASE + "auth/getToken", headers={"X-Username": "reader", "X-Password": READ_KEY}
    )
    assert answer.status_code == 200 and answer.content == b""
    token = answer.headers["X-Auth-Token"]
    assert token.startswith("bbt.")
    # The bridge's own token: the simulator never saw a login for it, and does not know it.
    assert stack.sim.exchange.logins == logins == 1
    assert stack.sim.exchange.authorised(token) is None
    assert not stack.sim.reached("/auth/getToken", since=0)[1:]
    assert (await stack.ok("rest/accounts", token))["accounts"][0]["name"] == stack.account


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Username": "reader", "X-Password": "wrong"},
        {"X-Username": "nobody", "X-Password": READ_KEY},
        {"X-Username": "reader"},
        {},
    ],
)
async def test_get_token_refused_as_primary_refuses(stack: PrimaryStack, headers: dict[str, str]) -> None:
    before = len(stack.sim.requests)
    answer = await stack.http.post(BASE + "auth/getToken", headers=headers)
    assert answer.status_code == 401
    assert "x-auth-token" not in answer.headers
    assert answer.json() == {
        "error": "invalid_grant",
        "error_description": "The user name or password is incorrect.",
    }
    assert not stack.sim.reached("/auth/getToken", since=before)
    assert stack.sim.exchange.logins == 1


async def test_the_brokers_password_is_not_a_bridge_login(stack: PrimaryStack) -> None:
    sim = stack.sim.endpoints
    answer = await stack.http.post(
        BASE + "auth/getToken", headers={"X-Username": sim.user, "X-Password": sim.password}
    )
    assert answer.status_code == 401
    assert stack.sim.exchange.logins == 1


@pytest.mark.parametrize("token", [None, "", "not-a-token", "bbt.forged.token"])
async def test_a_missing_or_bad_token_is_401_with_primarys_body(
    stack: PrimaryStack, token: str | None
) -> None:
    before = len(stack.sim.requests)
    answer = await stack.get("rest/order/all", token, accountId=stack.account)
    assert answer.status_code == 401
    body = answer.json()
    assert body["status"] == "ERROR" and body["message"] == "Unauthorized"
    assert body["description"].startswith("Invalid or expired token")
    assert not stack.sim.reached("/rest/order/all", since=before)


async def test_an_expired_token_is_refused(tmp_path: Path) -> None:
    clock = FakeClock(wall_start=__import__("time").time())
    async with primary_stack(tmp_path, clock=clock) as stack:
        token = await stack.token("reader", READ_KEY)
        await stack.ok("rest/instruments/all", token)
        await clock.advance(PRIMARY_TOKEN_TTL - 60)  # a whole trading day later: still good
        await stack.ok("rest/instruments/all", token)
        await clock.advance(120)
        before = len(stack.sim.requests)
        answer = await stack.get("rest/order/all", token, accountId=stack.account)
        assert answer.status_code == 401 and answer.json()["message"] == "Unauthorized"
        assert not stack.sim.reached("/rest/order/all", since=before)


async def test_a_missing_scope_is_refused_naming_it(stack: PrimaryStack) -> None:
    quotes = await stack.token("quotes", MARKET_KEY)
    reader = await stack.token("reader", READ_KEY)
    orders_before = len(stack.sim.exchange.account.orders)
    before = len(stack.sim.requests)
    for path, params, token, scope in (
        ("rest/order/all", {"accountId": stack.account}, quotes, "account"),
        ("rest/accounts", {}, quotes, "account"),
        (f"rest/risk/accountReport/{stack.account}", {}, quotes, "account"),
        ("rest/order/newSingleOrder", _order(stack, "100"), reader, "trade"),
        ("rest/order/cancelById", {"clOrdId": "1", "proprietary": "PBCP"}, reader, "trade"),
    ):
        answer = await stack.get(path, token, **params)
        assert answer.status_code == 403, (path, answer.text)
        body = answer.json()
        assert body["status"] == "ERROR" and body["message"] == "Access Denied"
        assert f"lacks the '{scope}' scope" in body["description"]
    assert not stack.sim.reached("/rest/order/", since=before)
    assert not stack.sim.reached("/rest/risk/", since=before)
    assert len(stack.sim.exchange.account.orders) == orders_before
    # market is enough for market data and instruments
    await stack.ok("rest/instruments/detail", quotes, symbol=GGAL, marketId=MARKET_ID)


async def test_an_unknown_route_is_ruta_invalida(stack: PrimaryStack) -> None:
    token = await stack.token()
    answer = await stack.get("rest/nothing/here", token)
    assert answer.status_code == 200
    assert answer.json() == {"status": "ERROR", "description": "Ruta invalida", "message": ""}


# -- instruments ---------------------------------------------------------------------------------
async def test_instruments_as_the_simulator_lists_them(stack: PrimaryStack) -> None:
    token = await stack.token("quotes", MARKET_KEY)
    catalog = stack.sim.exchange.catalog
    everything = await stack.ok("rest/instruments/all", token)
    assert everything["instruments"] == [
        {"instrumentId": inst.instrument_id, "cficode": inst.cficode} for inst in catalog.instruments
    ]
    details = await stack.ok("rest/instruments/details", token)
    assert len(details["instruments"]) == len(catalog.instruments)
    assert _same_detail(details["instruments"][0], catalog.instruments[0].detail())
    detail = await stack.ok("rest/instruments/detail", token, symbol=GGAL, marketId=MARKET_ID)
    assert _same_detail(detail["instrument"], catalog.get(GGAL).detail())  # type: ignore[union-attr]
    by_cfi = await stack.ok("rest/instruments/byCFICode", token, CFICode="ESXXXX")
    assert by_cfi["instruments"] == [
        {"marketId": MARKET_ID, "symbol": i.symbol} for i in catalog.by_cfi("ESXXXX")
    ]
    by_segment = await stack.ok(
        "rest/instruments/bySegment", token, MarketSegmentID="DDF", MarketID=MARKET_ID
    )
    assert by_segment["instruments"] == [
        {"marketId": MARKET_ID, "symbol": i.symbol} for i in catalog.by_segment("DDF")
    ]
    unified = await stack.ok("rest/instruments/bySegment", token, MarketSegmentID="U-DDF", MarketID=MARKET_ID)
    assert unified["instruments"] == by_segment["instruments"]
    empty = await stack.ok("rest/instruments/bySegment", token, MarketSegmentID="TEST", MarketID=MARKET_ID)
    assert empty["instruments"] == []
    segments = await stack.ok("rest/segment/all", token)
    assert {"marketSegmentId": "MERV", "marketId": MARKET_ID} in segments["segments"]


async def test_instrument_mistakes_answer_primarys_errors_without_asking_it(stack: PrimaryStack) -> None:
    token = await stack.token("quotes", MARKET_KEY)
    await stack.ok("rest/segment/all", token)  # the catalogue and segments are loaded (once a day)
    before = len(stack.sim.requests)
    assert await stack.error("rest/instruments/detail", token, symbol="NOPE", marketId=MARKET_ID) == (
        "Product NOPE:ROFX doesn't exist"
    )
    assert await stack.error("rest/instruments/detail", token, symbol=GGAL, marketId="MERV") == (
        f"Product {GGAL}:MERV doesn't exist"
    )
    assert await stack.error("rest/instruments/detail", token, marketId=MARKET_ID) == (
        "Required String parameter 'symbol' is not present"
    )
    assert await stack.error(
        "rest/instruments/bySegment", token, MarketSegmentID="NOPE", MarketID=MARKET_ID
    ) == ("Segment NOPE:ROFX doesn't exist")
    assert await stack.error("rest/instruments/bySegment", token, MarketSegmentID="DDF", MarketID="XX") == (
        "Segment DDF:XX doesn't exist"
    )
    long = "X" * 500
    assert "at most" in await stack.error("rest/instruments/detail", token, symbol=long, marketId=MARKET_ID)
    assert stack.sim.requests[before:] == [r for r in stack.sim.requests[before:] if "/rest/risk/" in r]


def _same_detail(ours: dict[str, Any], sims: dict[str, Any]) -> bool:
    """Every field the simulator serves, with its value (the bridge may add Primary's other fields)."""
    assert {k: ours.get(k) for k in sims} == sims
    return True


# -- market data ---------------------------------------------------------------------------------
async def test_market_data_of_book_and_last_comes_from_the_streams(stack: PrimaryStack) -> None:
    token = await stack.token("quotes", MARKET_KEY)
    before = len(stack.sim.requests)
    for _ in range(3):
        body = await stack.ok(
            "rest/marketdata/get", token, marketId=MARKET_ID, symbol=GGAL, entries="BI,OF,LA", depth=3
        )
        assert body["depth"] == 3 and body["aggregated"] is True
        data = body["marketData"]
        assert set(data) == {"BI", "OF", "LA"}
        for side in ("BI", "OF"):
            assert 1 <= len(data[side]) <= 3
            assert all(set(level) == {"price", "size"} for level in data[side])
        assert set(data["LA"]) == {"price", "size", "date"}
        assert data["BI"][0]["price"] < data["OF"][0]["price"]
    # the simulator's own answer has the same shape
    inst = stack.sim.exchange.catalog.get(GGAL)
    assert inst is not None
    from brokerbridge.sim.primary.marketdata import market_data

    sims = market_data(stack.sim.exchange, inst, ["BI", "OF", "LA"], 3, empty_book=None)
    assert set(sims) == set(data) and set(sims["LA"]) == set(data["LA"])
    # Served from the bridge's stream: Primary was never asked for market data over REST.
    assert not stack.sim.reached("/rest/marketdata/get", since=before)
    only_bids = await stack.ok(
        "rest/marketdata/get", token, marketId=MARKET_ID, symbol=GGAL, entries="bi", depth=1
    )
    assert set(only_bids["marketData"]) == {"BI"} and len(only_bids["marketData"]["BI"]) == 1


async def test_market_data_of_other_entries_is_asked_of_primary(stack: PrimaryStack) -> None:
    token = await stack.token("quotes", MARKET_KEY)
    before = len(stack.sim.requests)
    body = await stack.ok(
        "rest/marketdata/get", token, marketId=MARKET_ID, symbol=GGAL, entries="OF,CL,TV", depth=2
    )
    assert set(body["marketData"]) == {"OF", "CL", "TV"}
    assert set(body["marketData"]["CL"]) == {"price", "date"}  # BYMA's CL, as Primary shapes it
    assert len(stack.sim.reached("/rest/marketdata/get", since=before)) == 1


@pytest.mark.parametrize(
    ("params", "description"),
    [
        ({"marketId": "XXX", "symbol": GGAL, "entries": "BI"}, f"Product {GGAL}:XXX doesn't exist"),
        (
            {"marketId": MARKET_ID, "symbol": "NOPE - 24hs", "entries": "BI"},
            "Product NOPE - 24hs:ROFX doesn't exist",
        ),
        ({"marketId": MARKET_ID, "symbol": GGAL}, "Required String parameter 'entries' is not present"),
        ({"marketId": MARKET_ID, "entries": "BI"}, "Required String parameter 'symbol' is not present"),
        (
            {"marketId": MARKET_ID, "symbol": GGAL, "entries": "BI", "depth": "0"},
            "Invalid value '0' for parameter 'depth'",
        ),
        (
            {"marketId": MARKET_ID, "symbol": GGAL, "entries": "BI", "depth": "x"},
            "Invalid value 'x' for parameter 'depth'",
        ),
    ],
)
async def test_market_data_mistakes_never_reach_primary(
    stack: PrimaryStack, params: dict[str, str], description: str
) -> None:
    token = await stack.token("quotes", MARKET_KEY)
    await stack.ok("rest/instruments/all", token)  # the catalogue is loaded
    before = len(stack.sim.requests)
    subscriptions = set(stack.bridge.connectors["primary"].session.subscriptions)  # type: ignore[attr-defined]
    assert await stack.error("rest/marketdata/get", token, **params) == description
    assert not stack.sim.reached("/rest/marketdata/get", since=before)
    assert set(stack.bridge.connectors["primary"].session.subscriptions) == subscriptions  # type: ignore[attr-defined]


async def test_trades_are_asked_of_primary_after_the_checks(stack: PrimaryStack) -> None:
    token = await stack.token("quotes", MARKET_KEY)
    day = __import__("datetime").date.today().isoformat()
    dlr = next(i.symbol for i in stack.sim.exchange.catalog.instruments if i.kind == "future")
    body = await stack.ok(
        "rest/data/getTrades", token, marketId=MARKET_ID, symbol=dlr, dateFrom=day, dateTo=day
    )
    assert body["symbol"] == dlr and isinstance(body["trades"], list)
    before = len(stack.sim.requests)
    assert await stack.error(
        "rest/data/getTrades", token, marketId=MARKET_ID, symbol=dlr, dateFrom="yesterday", dateTo=day
    ) == ("Invalid value 'yesterday' for parameter 'dateFrom': a date as YYYY-MM-DD")
    assert await stack.error("rest/data/getTrades", token, marketId=MARKET_ID, symbol=dlr, dateFrom=day) == (
        "Required String parameter 'dateTo' is not present"
    )
    assert not stack.sim.reached("/rest/data/getTrades", since=before)


# -- accounts, orders, risk ----------------------------------------------------------------------
def _order(stack: PrimaryStack, price: str, **changes: str) -> dict[str, str]:
    """newSingleOrder's parameters as pyRofex spells them."""
    params = {
        "marketId": MARKET_ID,
        "symbol": GGAL,
        "orderQty": "1",
        "ordType": "limit",
        "side": "buy",
        "timeInForce": "Day",
        "account": stack.account,
        "cancelPrevious": "False",
        "price": price,
    }
    return params | changes


def _resting_price(stack: PrimaryStack) -> str:
    """A buy price on the tick, well under the market (the order rests)."""
    book = stack.sim.exchange.market.book(GGAL)
    from brokerbridge.sim.market import BookSide

    best = book.levels(BookSide.BID, 1)[0][0]
    return str((best * Decimal("0.9") / 5).quantize(Decimal(1)) * 5)


async def test_orders_over_rest_through_the_bridges_order_service(stack: PrimaryStack) -> None:
    token = await stack.token()
    ack = await stack.ok("rest/order/newSingleOrder", token, **_order(stack, _resting_price(stack)))
    order = ack["order"]
    assert set(order) == {"clientId", "proprietary"} and order["proprietary"] == "PBCP"
    cl_ord_id = order["clientId"]
    # The id is the upstream clOrdId: the simulator has that very request, and the Bridge's journal.
    assert cl_ord_id in stack.sim.exchange.account.orders
    assert any(o.order_id == cl_ord_id for o in stack.bridge.open_orders("primary"))

    async def status() -> dict[str, Any] | None:
        report = (await stack.ok("rest/order/id", token, clOrdId=cl_ord_id, proprietary="PBCP"))["order"]
        return report if report["status"] == "NEW" else None

    report = await until(status)
    assert report["clOrdId"] == cl_ord_id and report["accountId"]["id"] == stack.account
    listed = await stack.ok("rest/order/all", token, accountId=stack.account)
    assert cl_ord_id in {r["clOrdId"] for r in listed["orders"]}
    actives = await stack.ok("rest/order/actives", token, accountId=stack.account)
    assert cl_ord_id in {r["clOrdId"] for r in actives["orders"]}
    history = await stack.ok("rest/order/allById", token, clOrdId=cl_ord_id, proprietary="PBCP")
    assert [r["status"] for r in history["orders"]][:2] == ["PENDING_NEW", "NEW"]

    cancel = await stack.ok("rest/order/cancelById", token, clOrdId=cl_ord_id, proprietary="PBCP")
    assert cancel["order"] == {"clientId": cl_ord_id, "proprietary": "PBCP"}

    async def cancelled() -> bool:
        report = (await stack.ok("rest/order/id", token, clOrdId=cl_ord_id, proprietary="PBCP"))["order"]
        return bool(report["status"] == "CANCELLED")

    await until(cancelled)
    filleds = await stack.ok("rest/order/filleds", token, accountId=stack.account)
    assert cl_ord_id not in {r["clOrdId"] for r in filleds["orders"]}
    assert stack.sim.exchange.logins == 1


async def test_an_order_with_a_client_order_id_is_placed_once(stack: PrimaryStack) -> None:
    token = await stack.token()
    params = _order(stack, _resting_price(stack), wsClOrdId="mine-1")
    first = await stack.ok("rest/order/newSingleOrder", token, **params)
    again = await stack.ok("rest/order/newSingleOrder", token, **params)
    assert again["order"] == first["order"]
    mine = [o for o in stack.sim.exchange.account.orders.values() if o.ws_cl_ord_id == "mine-1"]
    assert len(mine) <= 1  # over the socket it carries our id; over REST it has none
    await stack.ok("rest/order/cancelById", token, clOrdId=first["order"]["clientId"], proprietary="PBCP")


@pytest.mark.parametrize(
    ("changes", "description"),
    [
        ({"account": "REM0000"}, "No tiene acceso a la cuenta REM0000"),
        ({"marketId": "XXX"}, f"Product {GGAL}:XXX doesn't exist"),
        ({"symbol": "NOPE"}, "Product NOPE:ROFX doesn't exist"),
        ({"side": "up"}, "Invalid value 'up' for parameter 'side'"),
        ({"orderQty": "-1"}, "Invalid value '-1' for parameter 'orderQty'"),
        ({"orderQty": "lots"}, "Invalid value 'lots' for parameter 'orderQty'"),
        ({"price": "cheap"}, "Invalid value 'cheap' for parameter 'price'"),
        ({"orderQty": ""}, "Required String parameter 'orderQty' is not present"),
        (
            {"ordType": "stop"},
            "Invalid value 'stop' for parameter 'ordType': the bridge places LIMIT and MARKET orders",
        ),
        ({"timeInForce": "GTD"}, "Invalid value 'GTD' for parameter 'timeInForce'"),
        ({"cancelPrevious": "True"}, "Invalid value 'true' for parameter 'cancelPrevious'"),
        ({"wsClOrdId": "not valid!"}, "Invalid value 'not valid!' for parameter 'wsClOrdId'"),
        ({"price": "7151.3"}, "tick"),  # the bridge's order rules: GGAL's tick is 5
    ],
)
async def test_bad_orders_never_reach_primary(
    stack: PrimaryStack, changes: dict[str, str], description: str
) -> None:
    token = await stack.token()
    await stack.ok("rest/instruments/all", token)
    orders = len(stack.sim.exchange.account.orders)
    before = len(stack.sim.requests)
    params = {k: v for k, v in _order(stack, "7150", **changes).items() if v != ""}
    found = await stack.error("rest/order/newSingleOrder", token, **params)
    assert found.startswith(description) if description != "tick" else "tick" in found, found
    assert len(stack.sim.exchange.account.orders) == orders
    assert not stack.sim.reached("/rest/order/", since=before)


async def test_order_reads_and_cancels_of_other_accounts_or_orders(stack: PrimaryStack) -> None:
    token = await stack.token()
    before = len(stack.sim.requests)
    assert (
        await stack.error("rest/order/all", token, accountId="REM0000")
        == "No tiene acceso a la cuenta REM0000"
    )
    assert (
        await stack.error("rest/order/actives", token)
        == "Required String parameter 'accountId' is not present"
    )
    assert (
        await stack.error("rest/risk/accountReport/REM0000", token) == "No tiene acceso a la cuenta REM0000"
    )
    assert (
        await stack.error("rest/risk/position/getPositions/REM0000", token)
        == "No tiene acceso a la cuenta REM0000"
    )
    assert await stack.error("rest/order/cancelById", token, clOrdId="123", proprietary="OTHER") == (
        "Order 123:OTHER doesn't exist"
    )
    assert not stack.sim.reached("/rest/order/", since=before)
    assert stack.sim.reached("/rest/risk/", since=before) == [
        r for r in stack.sim.reached("/rest/risk/", since=before) if stack.account in r
    ]
    # Primary's own answer for an order it does not have, in its words
    assert (
        await stack.error("rest/order/id", token, clOrdId="123", proprietary="PBCP")
        == "Order 123:PBCP doesn't exist"
    )


async def test_accounts_positions_and_report(stack: PrimaryStack) -> None:
    token = await stack.token("reader", READ_KEY)
    accounts = await stack.ok("rest/accounts", token)
    assert [a["name"] for a in accounts["accounts"]] == [stack.account]
    assert set(accounts["accounts"][0]) == {"id", "name", "brokerId", "status"}
    positions = await stack.ok(f"rest/risk/position/getPositions/{stack.account}", token)
    assert isinstance(positions["positions"], list)
    report = await stack.ok(f"rest/risk/accountReport/{stack.account}", token)
    from brokerbridge.sim.primary import risk

    assert set(report["accountData"]) == set(risk.account_report(stack.sim.exchange))
    detailed = await stack.ok(f"rest/risk/detailedPosition/{stack.account}", token)
    assert detailed["detailedPosition"]["account"] == stack.account


async def test_the_token_works_as_a_bearer_token_and_api_keys_work_directly(stack: PrimaryStack) -> None:
    token = await stack.token("quotes", MARKET_KEY)
    bearer = await stack.http.get(BASE + "rest/instruments/all", headers={"Authorization": f"Bearer {token}"})
    assert bearer.status_code == 200 and bearer.json()["status"] == "OK"
    key = await stack.http.get(
        BASE + "rest/instruments/all", headers={"Authorization": f"Bearer {MARKET_KEY}"}
    )
    assert key.status_code == 200
