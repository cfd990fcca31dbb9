"""Orders over REST and WS through their lifecycle; reports, /rest/order/*, positions, account report."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
from primary_helpers import GGAL, Ws, assert_shape, connect, fixture, step

from brokerbridge.core.clock import FakeClock
from brokerbridge.sim.market import BookSide
from brokerbridge.sim.primary import PrimarySimulator


def new_order_path(account: str, *, symbol: str = GGAL, qty: int = 1, price: Any = None, **extra: str) -> str:
    params = {
        "marketId": "ROFX",
        "symbol": symbol,
        "orderQty": str(qty),
        "ordType": "limit" if price is not None else "market",
        "side": "buy",
        "timeInForce": "Day",
        "account": account,
        "cancelPrevious": "False",
        **extra,
    }
    if price is not None:
        params["price"] = str(price)
    return "rest/order/newSingleOrder?" + "&".join(f"{k}={v}" for k, v in params.items())


async def get(http: httpx.AsyncClient, auth: dict[str, str], path: str) -> Any:
    response = await http.get(path, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


async def subscribed(sim: PrimarySimulator, token: str) -> Ws:
    ws = await connect(sim, token)
    await ws.send({"type": "os", "account": {"id": sim.endpoints.account}, "snapshotOnlyActive": True})
    return ws


async def reports(ws: Ws, count: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while len(out) < count:
        frame = await ws.recv()
        if frame.get("type") == "or":
            out.append(frame["orderReport"])
    return out


async def test_resting_order_then_cancel_over_rest(
    sim: PrimarySimulator, http: httpx.AsyncClient, auth: dict[str, str], token: str
) -> None:
    account = sim.endpoints.account
    ws = await subscribed(sim, token)
    ack = await get(http, auth, new_order_path(account, qty=10, price=5000))
    assert_shape(ack, fixture("http_order_new_ack.json"))
    cl = ack["order"]["clientId"]
    pending, new = await reports(ws, 2)
    assert pending["status"] == "PENDING_NEW" and pending["orderId"] is None and "execId" not in pending
    assert pending["text"] == "Enviada"
    assert new["status"] == "NEW" and new["text"] == "Aceptada " and new["clOrdId"] == cl
    assert_shape(new, fixture("ws_or_ggal_dic21_remarkets_new.json")["orderReport"])
    status = await get(http, auth, f"rest/order/id?clOrdId={cl}&proprietary=PBCP")
    assert_shape(status, fixture("http_order_status.json"))
    assert status["order"]["status"] == "NEW"
    actives = await get(http, auth, f"rest/order/actives?accountId={account}")
    assert [o["clOrdId"] for o in actives["orders"]] == [cl]
    assert_shape(actives, fixture("http_order_all.json"))
    by_order = await get(http, auth, f"rest/order/byOrderId?orderId={new['orderId']}")
    assert by_order["order"]["clOrdId"] == cl
    by_exec = await get(http, auth, f"rest/order/byExecId?execId={new['execId']}")
    assert by_exec["orders"] == [new]

    cancel = await get(http, auth, f"rest/order/cancelById?clOrdId={cl}&proprietary=PBCP")
    assert_shape(cancel, fixture("http_order_cancel_ack.json"))
    cancel_id = cancel["order"]["clientId"]
    assert cancel_id != cl
    by_cancel, original = await reports(ws, 2)
    assert by_cancel["clOrdId"] == cancel_id and by_cancel["origClOrdId"] == cl
    assert by_cancel["status"] == "CANCELLED" and original["status"] == "CANCELLED"
    assert original["clOrdId"] == cl and original["leavesQty"] == 0
    history = await get(http, auth, f"rest/order/allById?clOrdId={cl}&proprietary=PBCP")
    assert [r["status"] for r in history["orders"]] == ["PENDING_NEW", "NEW", "CANCELLED"]
    everything = await get(http, auth, f"rest/order/all?accountId={account}")
    assert {o["clOrdId"] for o in everything["orders"]} == {cl, cancel_id}
    assert (await get(http, auth, f"rest/order/actives?accountId={account}"))["orders"] == []
    again = await get(http, auth, f"rest/order/cancelById?clOrdId={cl}&proprietary=PBCP")
    (refused,) = await reports(ws, 1)
    assert refused["clOrdId"] == again["order"]["clientId"] and refused["status"] == "REJECTED"


async def test_marketable_order_fills_and_moves_cash_and_positions(
    sim: PrimarySimulator, http: httpx.AsyncClient, auth: dict[str, str], token: str
) -> None:
    account = sim.endpoints.account
    book = sim.exchange.market.book(GGAL)
    best_ask, top_qty = book.levels(BookSide.ASK, 1)[0]
    ws = await subscribed(sim, token)
    cash_before = (await get(http, auth, f"rest/risk/accountReport/{account}"))["accountData"]
    qty = int(top_qty) + 5  # more than the touch at the touch price: a partial fill that rests
    ack = await get(http, auth, new_order_path(account, qty=qty, price=best_ask))
    cl = ack["order"]["clientId"]
    _, _, partial = await reports(ws, 3)
    assert partial["status"] == "PARTIALLY_FILLED" and partial["text"] == "Operada "
    assert partial["lastPx"] == int(best_ask) and partial["lastQty"] == int(top_qty)
    assert partial["cumQty"] + partial["leavesQty"] == qty
    filleds = await get(http, auth, f"rest/order/filleds?accountId={account}")
    assert [o["clOrdId"] for o in filleds["orders"]] == [cl]

    positions = (await get(http, auth, f"rest/risk/position/getPositions/{account}"))["positions"]
    (row,) = positions
    assert row["symbol"] == GGAL and row["buySize"] == int(top_qty) and row["buyPrice"] == int(best_ask)
    assert row["instrument"] == {"symbolReference": "GGAL", "settlType": 1}
    report = (await get(http, auth, f"rest/risk/accountReport/{account}"))["accountData"]
    cash_after = report["detailedAccountReports"]["0"]["availableToOperate"]["cash"]["detailedCash"]["ARS"]
    spent = Decimal(
        cash_before["detailedAccountReports"]["0"]["availableToOperate"]["cash"]["detailedCash"]["ARS"]
    )
    assert Decimal(str(cash_after)) == spent - best_ask * top_qty
    balance = report["detailedAccountReports"]["0"]["currencyBalance"]["detailedCurrencyBalance"]["ARS"]
    assert Decimal(str(balance["consumed"])) == best_ask * 5  # the resting rest reserves cash
    detailed = (await get(http, auth, f"rest/risk/detailedPosition/{account}"))["detailedPosition"]
    assert detailed["report"]["STOCK"][GGAL]["instrumentCurrentSize"] == int(top_qty)


async def test_resting_order_fills_as_the_market_trades_through_it(
    sim: PrimarySimulator, http: httpx.AsyncClient, clock: FakeClock, auth: dict[str, str], token: str
) -> None:
    account = sim.endpoints.account
    ws = await subscribed(sim, token)
    best_bid = sim.exchange.market.book(GGAL).best(BookSide.BID)
    assert best_bid is not None
    await get(http, auth, new_order_path(account, qty=1, price=best_bid + 5))
    await reports(ws, 2)
    for _ in range(400):
        await step(clock, 0.5)
        if sim.exchange.account.positions:
            break
    (filled,) = await reports(ws, 1)
    assert filled["status"] == "FILLED" and filled["cumQty"] == 1 and filled["avgPx"] == int(best_bid + 5)


async def test_rejections_carry_a_text(
    sim: PrimarySimulator, http: httpx.AsyncClient, auth: dict[str, str], token: str
) -> None:
    account = sim.endpoints.account
    ws = await subscribed(sim, token)
    await get(http, auth, new_order_path(account, qty=1, price=7001))  # GGAL tick is 5
    _, rejected = await reports(ws, 2)
    assert rejected["status"] == "REJECTED" and "tick" in rejected["text"]
    await get(http, auth, new_order_path(account, qty=1, price=7000, timeInForce="IOC"))  # BYMA: FOK/DAY only
    _, rejected = await reports(ws, 2)
    assert rejected["status"] == "REJECTED" and "IOC" in rejected["text"]
    await get(http, auth, new_order_path(account, qty=100_000, price=7000))  # 700 M ARS > cash
    _, rejected = await reports(ws, 2)
    assert rejected["status"] == "REJECTED" and "saldo" in rejected["text"]


async def test_ws_new_order_in_pyrofex_string_form_and_cancel(sim: PrimarySimulator, token: str) -> None:
    account = sim.endpoints.account
    ws = await subscribed(sim, token)
    await ws.send(
        '{"type":"no","product":{"marketId":"ROFX","symbol":"MERV - XMEV - GGAL - 24hs"},"quantity":"100",'
        f'"ordType":"limit","side":"BUY","account":"{account}","allOrNone":"False","timeInForce":"DAY",'
        '"iceberg":"True","displayQuantity":"10","wsClOrdId":"abc1","price":"5000"}'
    )
    pending, new = await reports(ws, 2)
    assert pending["wsClOrdId"] == "abc1" and pending["status"] == "PENDING_NEW"
    assert "wsClOrdId" not in new and new["status"] == "NEW"
    assert new["iceberg"] == "true" and new["displayQty"] == 10 and new["orderQty"] == 100
    await ws.send(f'{{"type":"co", "clientId":"{new["clOrdId"]}", "proprietary":"PBCP"}}')
    cancel, original = await reports(ws, 2)
    assert cancel["origClOrdId"] == new["clOrdId"] and original["status"] == "CANCELLED"
    await ws.send({"type": "co", "clientId": "nope", "proprietary": "PBCP"})
    error = await ws.until(lambda m: m.get("status") == "ERROR")
    assert error["description"] == "Order nope:PBCP doesn't exist"
    await ws.send(
        {
            "type": "no",
            "product": {"marketId": "ROFX", "symbol": "X"},
            "quantity": 1,
            "side": "BUY",
            "account": account,
            "price": 1,
        }
    )
    error = await ws.until(lambda m: m.get("status") == "ERROR")
    assert error["description"] == "Product X:ROFX doesn't exist"


async def test_ws_market_order_ioc_on_a_future_and_os_snapshot(
    sim: PrimarySimulator, http: httpx.AsyncClient, auth: dict[str, str], token: str
) -> None:
    account = sim.endpoints.account
    dlr = next(i.symbol for i in sim.exchange.catalog.instruments if i.kind == "future")
    ws = await subscribed(sim, token)
    await ws.send(
        {
            "type": "no",
            "product": {"marketId": "ROFX", "symbol": dlr},
            "quantity": 3,
            "ordType": "MARKET_TO_LIMIT",
            "side": "SELL",
            "account": account,
            "timeInForce": "IOC",
        }
    )
    got = await reports(ws, 3)
    assert [r["status"] for r in got] == ["PENDING_NEW", "NEW", got[2]["status"]]
    assert got[2]["status"] in ("FILLED", "PARTIALLY_FILLED")
    await get(http, auth, new_order_path(account, symbol=dlr, qty=2, price=1000))  # rests far away
    late = await connect(sim, token)
    await late.send({"type": "os", "account": {"id": account}, "snapshotOnlyActive": True})
    (snapshot,) = await reports(late, 1)
    assert snapshot["status"] == "NEW" and snapshot["price"] == 1000
    everything = await connect(sim, token)
    await everything.send({"type": "os", "account": {"id": account}, "snapshotOnlyActive": False})
    replay = await reports(everything, 2)
    assert {r["status"] for r in replay} >= {"NEW"}


async def test_replace_by_id(sim: PrimarySimulator, http: httpx.AsyncClient, auth: dict[str, str]) -> None:
    account = sim.endpoints.account
    cl = (await get(http, auth, new_order_path(account, qty=2, price=5000)))["order"]["clientId"]
    ack = await get(http, auth, f"rest/order/replaceById?clOrdId={cl}&proprietary=PBCP&orderQty=3&price=5005")
    new_cl = ack["order"]["clientId"]
    old = (await get(http, auth, f"rest/order/id?clOrdId={cl}&proprietary=PBCP"))["order"]
    new = (await get(http, auth, f"rest/order/id?clOrdId={new_cl}&proprietary=PBCP"))["order"]
    assert old["status"] == "CANCELLED" and old["text"] == "Reemplazada"
    assert (
        new["status"] == "NEW" and new["price"] == 5005 and new["orderQty"] == 3 and new["origClOrdId"] == cl
    )


async def test_a_ws_order_whose_answer_is_lost_is_booked_and_shown_by_rest_only(
    sim: PrimarySimulator, http: httpx.AsyncClient, auth: dict[str, str], token: str
) -> None:
    """`lose_answers` on a `no`: booked, none of its placement's reports reaches a socket; the
    next order's do. `order/allById` keeps its first report, `wsClOrdId` included."""
    account = sim.endpoints.account
    ws = await subscribed(sim, token)
    sim.faults.apply({"lose_answers": 1})

    def no(ws_id: str) -> dict[str, Any]:
        product = {"marketId": "ROFX", "symbol": GGAL}
        return {"type": "no", "product": product, "quantity": 1, "side": "BUY", "account": account,
                "price": 5000, "wsClOrdId": ws_id}  # fmt: skip

    await ws.send(no("lost"))
    await ws.send(no("next"))
    (first,) = await reports(ws, 1)
    assert first["wsClOrdId"] == "next"
    (lost,) = [o for o in sim.exchange.account.orders.values() if o.ws_cl_ord_id == "lost"]
    listing = await get(http, auth, f"rest/order/all?accountId={account}")
    assert lost.cl_ord_id in [o["clOrdId"] for o in listing["orders"]]
    history = await get(http, auth, f"rest/order/allById?clOrdId={lost.cl_ord_id}&proprietary=PBCP")
    assert [o.get("wsClOrdId") for o in history["orders"]] == ["lost", None]
    assert [o["status"] for o in history["orders"]] == ["PENDING_NEW", "NEW"]
