"""`/primary/` REST (server/primary/rest.py) against a real server and Bridge on the Primary simulator.

Each path is compared with the simulator's own answer shapes (what it would have answered pyRofex);
bad input gets Primary's error and nothing reaches the simulator: the simulator's HTTP requests are
counted (`CountingPrimarySimulator`), its orders and logins read from its exchange.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from brokerbridge.core.clock import FakeClock
from brokerbridge.server.primary import rest as primary_rest
from brokerbridge.server.primary.rest import PRIMARY_TOKEN_TTL
from brokerbridge.sim.primary.catalog import MARKET_ID
from tests.server.conftest import GGAL, LIMIT
from tests.server.primary_rig import (
    BASE,
    MARKET_KEY,
    PASSWORD,
    READ_KEY,
    TRADE_KEY,
    USER,
    PrimaryStack,
    primary_stack,
)


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
    assert len(stack.sim.reached("/auth/getToken")) == 1  # the bridge's own, at its start
    assert (await stack.ok("rest/accounts", token))["accounts"][0]["name"] == stack.account


async def test_get_token_refused_as_primary_refuses(stack: PrimaryStack) -> None:
    before = len(stack.sim.requests)
    sim = stack.sim.endpoints
    for headers in (
        {"X-Username": "reader", "X-Password": "wrong"},
        {"X-Username": "nobody", "X-Password": READ_KEY},
        {"X-Username": USER, "X-Password": "wrong"},
        {"X-Username": "reader"},
        {},
        {"X-Username": sim.user, "X-Password": sim.password},  # the broker's: never a bridge login
    ):
        answer = await stack.http.post(BASE + "auth/getToken", headers=headers)
        assert answer.status_code == 401, headers
        assert "x-auth-token" not in answer.headers
        assert answer.json() == {
            "error": "invalid_grant",
            "error_description": "The user name or password is incorrect.",
        }
    assert not stack.sim.reached("/auth/getToken", since=before)
    assert stack.sim.exchange.logins == 1


async def test_a_bridge_user_logs_in_and_logs_out(stack: PrimaryStack) -> None:
    token = await stack.token(USER, PASSWORD)
    await stack.ok("rest/accounts", token)
    out = await stack.http.get(BASE + "auth/removeToken", headers={"X-Auth-Token": token})
    assert out.status_code == 200 and out.content == b""
    answer = await stack.get("rest/accounts", token)
    assert answer.status_code == 401 and answer.json()["message"] == "Unauthorized"
    assert "revoked" in answer.json()["description"]


async def test_a_missing_or_bad_token_is_401_with_primarys_body(stack: PrimaryStack) -> None:
    before = len(stack.sim.requests)
    for token in (None, "", "not-a-token", "bbt.forged.token"):
        answer = await stack.get("rest/order/all", token, accountId=stack.account)
        assert answer.status_code == 401, token
        body = answer.json()
        assert body["status"] == "ERROR" and body["message"] == "Unauthorized"
        assert body["description"].startswith("Invalid or expired token")
    assert not stack.sim.reached("/rest/order/all", since=before)


async def test_an_expired_token_is_refused(tmp_path: Path) -> None:
    clock = FakeClock(wall_start=time.time())
    # (heartbeats on the server's clock: a few, not one every half second, over a day advanced)
    async with primary_stack(tmp_path, clock=clock, heartbeat=3600.0) as stack:
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
    assert not stack.sim.reached("/rest/instruments/", since=before)


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


MARKET_DATA_MISTAKES = (
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
    ({"marketId": MARKET_ID, "symbol": "X" * 500, "entries": "BI"}, "Invalid value 'XXX"),
)


async def test_market_data_mistakes_never_reach_primary(stack: PrimaryStack) -> None:
    token = await stack.token("quotes", MARKET_KEY)
    await stack.ok("rest/instruments/all", token)  # the catalogue is loaded
    before = len(stack.sim.requests)
    session = stack.bridge.connectors["primary"].session  # type: ignore[attr-defined]
    subscriptions = set(session.subscriptions)
    for params, description in MARKET_DATA_MISTAKES:
        assert (await stack.error("rest/marketdata/get", token, **params)).startswith(description)
    assert not stack.sim.reached("/rest/marketdata/get", since=before)
    assert set(session.subscriptions) == subscriptions  # no smd went for any of them


async def test_trades_are_asked_of_primary_after_the_checks(stack: PrimaryStack) -> None:
    token = await stack.token("quotes", MARKET_KEY)
    day = dt.date.today().isoformat()
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

    async def journaled() -> bool:
        return any(o.order_id == cl_ord_id for o in stack.bridge.open_orders("primary"))

    await until(journaled)

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

    # a proprietary the order was not booked under: Primary's refusal, and no cancel goes upstream
    before = len(stack.sim.requests)
    assert await stack.error("rest/order/cancelById", token, clOrdId=cl_ord_id, proprietary="OTHER") == (
        f"Order {cl_ord_id}:OTHER doesn't exist"
    )
    assert not stack.sim.reached("/rest/order/cancelById", since=before)
    assert stack.sim.exchange.account.orders[cl_ord_id].status == "NEW"

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


BAD_ORDERS = (
    ({"account": "REM0000"}, "No tiene acceso a la cuenta REM0000"),
    ({"marketId": "XXX"}, f"Product {GGAL}:XXX doesn't exist"),
    ({"symbol": "NOPE"}, "Product NOPE:ROFX doesn't exist"),
    ({"side": "up"}, "Invalid value 'up' for parameter 'side'"),
    ({"orderQty": "-1"}, "Invalid value '-1' for parameter 'orderQty'"),
    ({"orderQty": "lots"}, "Invalid value 'lots' for parameter 'orderQty'"),
    ({"price": "cheap"}, "Invalid value 'cheap' for parameter 'price'"),
    ({"orderQty": ""}, "Required String parameter 'orderQty' is not present"),
    ({"price": ""}, "Required String parameter 'price' is not present"),
    ({"ordType": "stop"}, "Invalid value 'stop' for parameter 'ordType': the bridge places LIMIT and MARKET"),
    ({"timeInForce": "GTD"}, "Invalid value 'GTD' for parameter 'timeInForce'"),
    ({"cancelPrevious": "True"}, "Invalid value 'true' for parameter 'cancelPrevious'"),
    ({"iceberg": "true", "displayQty": "1"}, "Invalid value 'true' for parameter 'iceberg'"),
    ({"wsClOrdId": "not valid!"}, "Invalid value 'not valid!' for parameter 'wsClOrdId'"),
)


async def test_bad_orders_never_reach_primary(stack: PrimaryStack) -> None:
    token = await stack.token()
    await stack.ok("rest/instruments/all", token)
    orders = len(stack.sim.exchange.account.orders)
    before = len(stack.sim.requests)
    for changes, description in BAD_ORDERS:
        params = {k: v for k, v in (_order(stack, "7150") | changes).items() if v != ""}
        found = await stack.error("rest/order/newSingleOrder", token, **params)
        assert found.startswith(description), (changes, found)
    # the bridge's own order rules (from the instrument details): GGAL's tick is 5
    off_tick = await stack.error("rest/order/newSingleOrder", token, **_order(stack, "7151.3"))
    assert "tick" in off_tick
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
    assert not stack.sim.reached("/rest/order/", since=before)
    assert not [r for r in stack.sim.reached("/rest/risk/", since=before) if "REM0000" in r]
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


async def test_orders_with_the_dashboards_cookie_need_its_csrf_token(stack: PrimaryStack) -> None:
    """Orders go by GET on Primary's API: with the login cookie (which a page of another port of
    this host can make a browser send) only with the login's CSRF token, as on /api."""
    signed_in = await stack.http.post("/api/session", json={"key": TRADE_KEY})
    assert signed_in.status_code == 200
    cookie = {"Cookie": f"bb_session={signed_in.cookies['bb_session']}"}
    stack.http.cookies.clear()
    params = _order(stack, _resting_price(stack))
    orders = len(stack.sim.exchange.account.orders)
    forged = await stack.http.get(BASE + "rest/order/newSingleOrder", params=params, headers=cookie)
    assert forged.status_code == 403 and "X-CSRF-Token" in forged.json()["description"]
    assert len(stack.sim.exchange.account.orders) == orders
    reads = await stack.http.get(BASE + "rest/order/all", params={"accountId": stack.account}, headers=cookie)
    assert reads.status_code == 200 and reads.json()["status"] == "OK"  # reads need no CSRF token
    csrf = (await stack.http.get("/api/session", headers=cookie)).json()["csrf_token"]
    placed = await stack.http.get(
        BASE + "rest/order/newSingleOrder", params=params, headers=cookie | {"X-CSRF-Token": csrf}
    )
    assert placed.status_code == 200 and placed.json()["status"] == "OK", placed.text
    cl_ord_id = placed.json()["order"]["clientId"]
    cancel = {"clOrdId": cl_ord_id, "proprietary": "PBCP"}
    with_csrf = cookie | {"X-CSRF-Token": csrf}
    done = await stack.http.get(BASE + "rest/order/cancelById", params=cancel, headers=with_csrf)
    assert done.json()["status"] == "OK"


async def test_a_read_asked_of_primary_serves_the_same_request_a_moment_later(
    stack: PrimaryStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many clients polling order/all cost Primary one call per READ_TTL_S between them (here a
    minute, so that the test does not race real time); an order placed here reads fresh."""
    monkeypatch.setattr(primary_rest, "READ_TTL_S", 60.0)
    token = await stack.token()
    before = len(stack.sim.requests)
    for _ in range(3):
        await stack.ok("rest/order/all", token, accountId=stack.account)
    assert len(stack.sim.reached("/rest/order/all", since=before)) == 1
    ack = await stack.ok("rest/order/newSingleOrder", token, **_order(stack, _resting_price(stack)))
    listed = await stack.ok("rest/order/all", token, accountId=stack.account)
    assert ack["order"]["clientId"] in {r["clOrdId"] for r in listed["orders"]}
    await stack.ok("rest/order/cancelById", token, clOrdId=ack["order"]["clientId"], proprietary="PBCP")


async def test_password_guessing_is_locked_out(stack: PrimaryStack) -> None:
    """getToken failures count against the address as bad keys do: after the burst, 429 with
    Retry-After — the right password too, unchecked, until the wait is over."""
    for _ in range(10):  # server.auth_failure_burst
        wrong = {"X-Username": "reader", "X-Password": "guess"}
        assert (await stack.http.post(BASE + "auth/getToken", headers=wrong)).status_code == 401
    right = {"X-Username": "reader", "X-Password": READ_KEY}
    locked = await stack.http.post(BASE + "auth/getToken", headers=right)
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    assert "x-auth-token" not in locked.headers
    assert locked.json()["error"] == "too_many_attempts"
