"""python-kraken-sdk (unmodified) `SpotWSClient` trading requests on the simulator's authenticated
WebSocket v2: add_order, amend_order, batch_add, batch_cancel, cancel_order and
cancel_all_orders_after (the dead man's switch), with Kraken's answer shapes."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import Any

import pytest
from kraken.spot import Market, SpotWSClient, User
from test_pks_ws import Recorder, _close, _start
from tp_helpers import async_wait_until

pytestmark = [pytest.mark.thirdparty, pytest.mark.timeout(90)]

SYMBOL = "BTC/USD"
PAIR_ID = "XXBTZUSD"


def _far_bid(sim: Any) -> Decimal:
    """A buy price half the best bid, on the tick: it rests, never fills."""
    market = Market(url=sim.rest)
    tick = Decimal(str(market.get_asset_pairs(pair="XBTUSD")[PAIR_ID]["tick_size"]))
    best_bid = Decimal(str(market.get_order_book(pair="XBTUSD", count=1)[PAIR_ID]["bids"][0][0]))
    return ((best_bid / 2) / tick).to_integral_value(rounding=ROUND_DOWN) * tick


async def test_python_kraken_sdk_trading_requests(sim):
    rest_user = User(key=sim.api_key, secret=sim.api_secret, url=sim.rest)
    price = _far_bid(sim)
    rec = Recorder()
    client = SpotWSClient(
        key=sim.api_key,
        secret=sim.api_secret,
        callback=rec.on_message,
        no_public=True,
        rest_url=sim.rest,
        ws_url=sim.pks_ws_url,
        auth_ws_url=sim.pks_auth_ws_url,
    )
    await _start(client)

    async def send(method: str, params: dict[str, Any], req_id: int) -> dict[str, Any]:
        await client.send_message(message={"method": method, "params": params, "req_id": req_id})
        return (await async_wait_until(lambda: rec.acks(method, req_id), 5, f"{method} answer"))[0]

    try:
        await client.subscribe(params={"channel": "executions"}, req_id=10)
        await async_wait_until(lambda: rec.channel("executions", "snapshot"), 10, "executions snapshot")

        added = await send(
            "add_order",
            {
                "order_type": "limit",
                "side": "buy",
                "order_qty": 0.001,
                "symbol": SYMBOL,
                "limit_price": float(price),
                "cl_ord_id": "pks-1",
                "time_in_force": "gtc",
            },
            20,
        )
        assert added["success"] is True and added["result"]["cl_ord_id"] == "pks-1", added
        oid = added["result"]["order_id"]

        amended = await send("amend_order", {"order_id": oid, "order_qty": 0.002}, 21)
        assert amended["success"] is True and amended["result"]["order_id"] == oid, amended
        assert amended["result"]["amend_id"]
        await async_wait_until(
            lambda: any(e["exec_type"] == "amended" for e in rec.executions_for(oid)), 5, "amended execution"
        )
        assert rest_user.get_open_orders()["open"][oid]["vol"] == "0.00200000"

        batch = await send(
            "batch_add",
            {
                "symbol": SYMBOL,
                "orders": [
                    {"order_type": "limit", "side": "buy", "order_qty": 0.001, "limit_price": float(price)},
                    {
                        "order_type": "limit",
                        "side": "buy",
                        "order_qty": 0.001,
                        "limit_price": float(price),
                        "cl_ord_id": "pks-b2",
                    },
                ],
            },
            22,
        )
        assert batch["success"] is True and len(batch["result"]) == 2, batch
        batch_ids = [entry["order_id"] for entry in batch["result"]]
        assert batch["result"][1]["cl_ord_id"] == "pks-b2"
        assert set(batch_ids) <= set(rest_user.get_open_orders()["open"])

        canceled = await send("batch_cancel", {"orders": batch_ids}, 23)
        assert canceled["success"] is True and canceled["result"] == {"count": 2}, canceled

        armed = await send("cancel_all_orders_after", {"timeout": 60}, 24)
        assert armed["success"] is True and set(armed["result"]) == {"currentTime", "triggerTime"}, armed
        disarmed = await send("cancel_all_orders_after", {"timeout": 0}, 25)
        assert disarmed["success"] is True and disarmed["result"]["triggerTime"] == "0", disarmed

        gone = await send("cancel_order", {"order_id": [oid]}, 26)
        assert gone["success"] is True and gone["result"]["order_id"] == oid, gone
        assert oid not in rest_user.get_open_orders()["open"]
    finally:
        await _close(client)
