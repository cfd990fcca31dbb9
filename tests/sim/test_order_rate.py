"""The simulated Kraken's per-pair trading rate counter: adds and cancels on both wires count on
one counter per pair and, past the tier's threshold, are refused with Kraken's error."""

from __future__ import annotations

from typing import Any

from sim_helpers import Signer, connect, step

from brokerbridge.core.clock import FakeClock
from brokerbridge.sim.kraken import KrakenSimulator
from brokerbridge.sim.kraken.order_rate import OrderRateCounter

LIMIT = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": "0.0001", "price": "10000.0"}
RATE = ["EOrder:Rate limit exceeded"]


async def test_rest_adds_past_the_threshold_are_refused_until_it_decays(
    sim: KrakenSimulator, signer: Signer, clock: FakeClock
) -> None:
    counter = sim.exchange.account.order_rate = OrderRateCounter(tier="starter")  # 60, −1/s
    for i in range(59):
        assert (await signer.call("AddOrder", LIMIT))["error"] == [], i
    # An add that fails validation counts too (Kraken applies the fixed count on receipt).
    assert (await signer.call("AddOrder", {**LIMIT, "volume": "0.00001"}))["error"] == [
        "EOrder:Order minimum not met"
    ]
    assert (await signer.call("AddOrder", LIMIT)) == {"error": RATE}
    other_pair = {**LIMIT, "pair": "ETHUSD", "volume": "0.01", "price": "1000.00"}
    assert (await signer.call("AddOrder", other_pair))["error"] == []
    assert counter.refused == 1
    assert len((await signer.call("OpenOrders"))["result"]["open"]) == 60  # the refused one is not there
    await step(clock, 1.0)
    assert (await signer.call("AddOrder", LIMIT))["error"] == []
    assert (await signer.call("AddOrder", LIMIT)) == {"error": RATE}
    assert counter.refused == 2


async def test_cancels_count_by_the_orders_age_on_both_wires(
    sim: KrakenSimulator, signer: Signer, clock: FakeClock
) -> None:
    counter = sim.exchange.account.order_rate = OrderRateCounter(tier="starter")  # 60, −1/s
    txids = [(await signer.call("AddOrder", LIMIT))["result"]["txid"][0] for _ in range(52)]
    # 52 now; a cancel of an order younger than 5 s is +8: 60, at the threshold.
    assert (await signer.call("CancelOrder", {"txid": txids[0]}))["result"] == {"count": 1}
    assert (await signer.call("CancelOrder", {"txid": txids[1]})) == {"error": RATE}
    await step(clock, 15.0)  # 45 now; the orders are 15 s old: a cancel is +4
    for txid in txids[1:4]:
        assert (await signer.call("CancelOrder", {"txid": txid}))["result"] == {"count": 1}
    assert counter.level("BTC/USD", clock.time()) == 57.0
    assert (await signer.call("CancelOrder", {"txid": txids[4]})) == {"error": RATE}
    # WebSocket: the same counter, Kraken's error in the WS envelope, for a cancel and an add.
    token = (await signer.call("GetWebSocketsToken"))["result"]["token"]
    ws = await connect(sim.endpoints.ws_private)
    await ws.send({"method": "cancel_order", "params": {"order_id": [txids[4]], "token": token}, "req_id": 1})
    answer = await ws.until(lambda m: m.get("method") == "cancel_order")
    assert (answer["req_id"], answer["success"], answer["error"]) == (1, False, RATE[0])
    order: dict[str, Any] = {
        "order_type": "limit",
        "side": "buy",
        "order_qty": 0.0001,
        "symbol": "BTC/USD",
        "limit_price": 10000.0,
        "token": token,
    }
    for req_id in (2, 3, 4, 5):  # 58, 59, 60, then refused
        await ws.send({"method": "add_order", "params": order, "req_id": req_id})
        answer = await ws.until(lambda m: m.get("method") == "add_order")
        assert (answer["req_id"], answer["success"]) == (req_id, req_id < 5), answer
    assert answer["error"] == RATE[0]
    assert counter.refused == 4
    open_orders = (await signer.call("OpenOrders"))["result"]["open"]
    assert txids[4] in open_orders and txids[3] not in open_orders and len(open_orders) == 48 + 3
    # A REST cancel-all is not on the counter: it cancels everything however full the counter is.
    assert (await signer.call("CancelAll"))["result"] == {"count": 51}


async def test_amends_count_and_a_ws_cancel_all_does_not(
    sim: KrakenSimulator, signer: Signer, clock: FakeClock
) -> None:
    counter = sim.exchange.account.order_rate = OrderRateCounter(tier="starter")  # 60, −1/s
    txids = [(await signer.call("AddOrder", LIMIT))["result"]["txid"][0] for _ in range(55)]
    # 55 now; an amend of an order younger than 5 s is +1 +3: 59, then the next one is refused.
    amend = {"txid": txids[0], "order_qty": "0.0002"}
    assert (await signer.call("AmendOrder", amend))["error"] == []
    assert (await signer.call("AmendOrder", {**amend, "txid": txids[1]})) == {"error": RATE}
    assert counter.refused == 1
    # A WebSocket cancel_all is not on the counter either (Kraken's table lists no cancel-all).
    token = (await signer.call("GetWebSocketsToken"))["result"]["token"]
    ws = await connect(sim.endpoints.ws_private)
    await ws.send({"method": "cancel_all", "params": {"token": token}, "req_id": 1})
    answer = await ws.until(lambda m: m.get("method") == "cancel_all")
    assert (answer["success"], answer["result"]) == (True, {"count": 55})
    assert (await signer.call("OpenOrders"))["result"]["open"] == {}
