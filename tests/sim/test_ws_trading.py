"""The simulator's trading methods beyond add/cancel: amend (WS and REST), batches, the dead man's
switch — Kraken's request fields, answer shapes and refusal texts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sim_helpers import Signer, Ws, connect, step

from brokerbridge.core.clock import FakeClock
from brokerbridge.sim.kraken import KrakenSimulator
from brokerbridge.sim.kraken.exchange import DEAD_MAN_REASON


async def private_ws(sim: KrakenSimulator, signer: Signer) -> tuple[Ws, str]:
    token = (await signer.call("GetWebSocketsToken"))["result"]["token"]
    ws = await connect(sim.endpoints.ws_private)
    await ws.send({"method": "subscribe", "params": {"channel": "executions", "token": token}, "req_id": 1})
    await ws.until(lambda m: m.get("channel") == "executions" and m.get("type") == "snapshot")
    return ws, token


async def request(ws: Ws, method: str, params: dict[str, Any], req_id: int) -> dict[str, Any]:
    await ws.send({"method": method, "params": params, "req_id": req_id})
    return await ws.until(lambda m: m.get("method") == method and m.get("req_id") == req_id)


def limit(side: str, qty: str, price: str, **extra: Any) -> dict[str, Any]:
    return {
        "order_type": "limit",
        "side": side,
        "order_qty": float(qty),
        "limit_price": float(price),
        **extra,
    }


async def test_amend_order_changes_qty_and_price_keeping_the_ids(
    sim: KrakenSimulator, signer: Signer
) -> None:
    ws, token = await private_ws(sim, signer)
    placed = await request(
        ws,
        "add_order",
        {**limit("buy", "0.01", "1000.0", cl_ord_id="am-1"), "symbol": "BTC/USD", "token": token},
        2,
    )
    order_id = placed["result"]["order_id"]
    answer = await request(
        ws,
        "amend_order",
        {
            "order_id": order_id,
            "order_qty": 0.02,
            "limit_price": 1001.5,
            "token": token,
        },
        3,
    )
    assert answer["success"] is True and answer["result"]["order_id"] == order_id
    assert set(answer["result"]) == {"amend_id", "order_id"}
    report = await ws.until(
        lambda m: m.get("channel") == "executions" and m["data"][0]["exec_type"] == "amended"
    )
    entry = report["data"][0]
    assert entry["order_id"] == order_id and entry["cl_ord_id"] == "am-1" and entry["amended"] is True
    assert entry["order_qty"] == Decimal("0.02") and entry["limit_price"] == Decimal("1001.5")
    order = sim.exchange.account.orders[order_id]
    assert (order.volume, order.price, order.status) == (Decimal("0.02"), Decimal("1001.5"), "open")
    # By client order id, answered with it; over REST the same amend, answered with an amend id.
    by_client = await request(ws, "amend_order", {"cl_ord_id": "am-1", "limit_price": 999, "token": token}, 4)
    assert by_client["success"] is True and by_client["result"]["cl_ord_id"] == "am-1"
    rest = await signer.call("AmendOrder", {"txid": order_id, "order_qty": "0.03"})
    assert rest["error"] == [] and set(rest["result"]) == {"amend_id"}
    assert sim.exchange.account.orders[order_id].volume == Decimal("0.03")
    # Refusals: an unknown order, both ids, a string amount, an unknown field.
    refusals = [
        ({"order_id": "OXXXXX-XXXXX-XXXXXX", "order_qty": 1}, "EOrder:Unknown order"),
        ({"order_id": order_id, "cl_ord_id": "am-1", "order_qty": 1}, "EGeneral:Invalid arguments:"),
        ({"order_id": order_id, "limit_price": "1000"}, "Limit_price field must be a number_float"),
        (
            {"order_id": order_id, "symbol": "BTC/USD"},
            "Unsupported field: 'symbol' for the given msg type: amend order",
        ),
    ]
    for n, (params, error) in enumerate(refusals):
        refused = await request(ws, "amend_order", {**params, "token": token}, 10 + n)
        assert refused["success"] is False and refused["error"].startswith(error), refused


async def test_batch_add_is_checked_whole_and_placed_one_by_one(sim: KrakenSimulator, signer: Signer) -> None:
    ws, token = await private_ws(sim, signer)
    orders = [
        limit("buy", "0.01", "1000.0", cl_ord_id="b-1"),
        limit("buy", "0.01", "1000.5", cl_ord_id="b-2"),
    ]
    answer = await request(ws, "batch_add", {"symbol": "BTC/USD", "orders": orders, "token": token}, 2)
    assert answer["success"] is True
    assert [set(e) for e in answer["result"]] == [{"order_id", "cl_ord_id"}] * 2
    assert [e["cl_ord_id"] for e in answer["result"]] == ["b-1", "b-2"]
    assert {o.cl_ord_id for o in sim.exchange.account.open_orders()} == {"b-1", "b-2"}
    # One bad order refuses the whole batch: nothing is placed.
    bad = [limit("buy", "0.01", "1000.0"), {**limit("buy", "0.01", "1000.0"), "side": "hold"}]
    refused = await request(ws, "batch_add", {"symbol": "BTC/USD", "orders": bad, "token": token}, 3)
    assert refused["success"] is False and refused["error"] == "EGeneral:Invalid arguments:side"
    one = await request(ws, "batch_add", {"symbol": "BTC/USD", "orders": orders[:1], "token": token}, 4)
    assert one["error"] == "EGeneral:Invalid arguments:orders"
    # The engine refuses one alone (funds): the rest goes on.
    rich = [limit("buy", "0.01", "1000.0", cl_ord_id="b-3"), limit("buy", "50", "100000.0", cl_ord_id="b-4")]
    mixed = await request(ws, "batch_add", {"symbol": "BTC/USD", "orders": rich, "token": token}, 5)
    assert mixed["success"] is True
    assert "order_id" in mixed["result"][0]
    assert mixed["result"][1] == {"error": "EOrder:Insufficient funds", "cl_ord_id": "b-4"}
    assert len(sim.exchange.account.open_orders()) == 3


async def test_batch_cancel_counts_what_it_canceled(sim: KrakenSimulator, signer: Signer) -> None:
    ws, token = await private_ws(sim, signer)
    ids = []
    for n in range(3):
        placed = await request(
            ws,
            "add_order",
            {**limit("buy", "0.01", "1000.0"), "symbol": "BTC/USD", "cl_ord_id": f"c-{n}", "token": token},
            n + 2,
        )
        ids.append(placed["result"]["order_id"])
    answer = await request(
        ws,
        "batch_cancel",
        {"orders": [ids[0], "OXXXXX-XXXXX-XXXXXX"], "cl_ord_id": ["c-2"], "token": token},
        9,
    )
    assert answer["success"] is True and answer["result"] == {"count": 2}
    assert [o.txid for o in sim.exchange.account.open_orders()] == [ids[1]]
    short = await request(ws, "batch_cancel", {"orders": [ids[1]], "token": token}, 10)
    assert short["success"] is False and short["error"] == "EGeneral:Invalid arguments:orders"


async def test_dead_man_switch_cancels_everything_when_not_pushed_back(
    sim: KrakenSimulator, signer: Signer, clock: FakeClock
) -> None:
    ws, token = await private_ws(sim, signer)
    placed = await request(
        ws, "add_order", {**limit("buy", "0.01", "1000.0"), "symbol": "BTC/USD", "token": token}, 2
    )
    order_id = placed["result"]["order_id"]
    armed = await request(ws, "cancel_all_orders_after", {"timeout": 10, "token": token}, 3)
    assert armed["success"] is True and set(armed["result"]) == {"currentTime", "triggerTime"}
    assert armed["result"]["currentTime"].endswith("Z") and "." not in armed["result"]["currentTime"]
    await step(clock, 8.0)
    pushed = await request(ws, "cancel_all_orders_after", {"timeout": 10, "token": token}, 4)
    assert pushed["result"]["triggerTime"] > armed["result"]["triggerTime"]
    await step(clock, 8.0)  # 16 s after arming, 8 after pushing back: still open
    assert sim.exchange.account.orders[order_id].status == "open"
    await step(clock, 3.0)
    order = sim.exchange.account.orders[order_id]
    assert (order.status, order.reason) == ("canceled", DEAD_MAN_REASON)
    report = await ws.until(
        lambda m: m.get("channel") == "executions" and m["data"][0]["exec_type"] == "canceled"
    )
    assert report["data"][0]["order_id"] == order_id
    assert sim.exchange.cancel_all_at is None  # fired: off until armed again


async def test_dead_man_switch_disarmed_over_rest(
    sim: KrakenSimulator, signer: Signer, clock: FakeClock
) -> None:
    placed = await signer.call(
        "AddOrder", {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": "0.01", "price": "1000"}
    )
    txid = placed["result"]["txid"][0]
    armed = await signer.call("CancelAllOrdersAfter", {"timeout": "5"})
    assert armed["error"] == [] and armed["result"]["triggerTime"] != "0"
    disarmed = await signer.call("CancelAllOrdersAfter", {"timeout": "0"})
    assert disarmed["result"]["triggerTime"] == "0"
    await step(clock, 10.0)
    assert sim.exchange.account.orders[txid].status == "open"
    bad = await signer.call("CancelAllOrdersAfter", {"timeout": "soon"})
    assert bad["error"] == ["EGeneral:Invalid arguments:timeout"]


async def test_lost_answers_hit_ws_add_order_too(sim: KrakenSimulator, signer: Signer) -> None:
    ws, token = await private_ws(sim, signer)
    sim.faults.lose_answers = 1
    seen: list[dict[str, Any]] = []
    await ws.send(
        {
            "method": "add_order",
            "params": {**limit("buy", "0.01", "1000.0"), "symbol": "BTC/USD", "token": token},
            "req_id": 2,
        }
    )
    # No answer: the order's executions come, the ack never does.
    report = await ws.until(
        lambda m: seen.append(m) or (m.get("channel") == "executions" and m["data"][0]["exec_type"] == "new")
    )
    order_id = report["data"][0]["order_id"]
    assert sim.exchange.account.orders[order_id].status == "open"
    second = {**limit("buy", "0.01", "1000.0"), "symbol": "BTC/USD", "token": token}
    await ws.send({"method": "add_order", "params": second, "req_id": 3})
    answered = await ws.until(lambda m: seen.append(m) or m.get("req_id") == 3)
    assert answered["success"] is True  # counted: only the next answer was lost
    assert not [m for m in seen if m.get("req_id") == 2]
