"""Orders through the Bridge: their lifecycle arrives on `executions`, balances follow."""

from __future__ import annotations

from decimal import Decimal

import pytest

from brokerbridge.core.errors import InvalidRequest, OrderRejected
from brokerbridge.core.events import BalanceUpdate, Fill, OrderUpdate, StreamState
from brokerbridge.venues.kraken import rest as kraken_rest
from tests.io.rig import rig

pytestmark = pytest.mark.timeout(60)


async def test_limit_order_lifecycle_and_cancel() -> None:
    async with rig() as r:
        executions = r.collect("executions")
        await r.until(lambda: executions.states("kraken:executions")[-1:] == [StreamState.LIVE])
        order_id = await r.call(r.bridge.place_order("kraken", "BTC/USD", "buy", "limit", "0.01", "1000.0"))

        def statuses() -> list[str]:
            return [u.status for u in executions.of(OrderUpdate) if u.order_id == order_id]

        await r.until(lambda: "new" in statuses(), what="order live")
        assert statuses()[0] == "pending_new"
        assert await r.call(r.bridge.cancel_order("kraken", order_id)) == 1
        await r.until(lambda: statuses()[-1] == "canceled", what="order canceled")
        assert r.bridge.state["kraken"].journal.orders[order_id].status == "canceled"


async def test_market_order_fills_and_balances_follow() -> None:
    async with rig() as r:
        executions = r.collect("executions")
        balances = r.collect("balances")
        await r.until(lambda: balances.states("kraken:balances")[-1:] == [StreamState.LIVE])
        await r.until(lambda: executions.states("kraken:executions")[-1:] == [StreamState.LIVE])
        btc_before = r.bridge.balances("kraken")["BTC"].total
        order_id = await r.call(r.bridge.place_order("kraken", "BTC/USD", "buy", "market", Decimal("0.02")))
        await r.until(
            lambda: any(u.order_id == order_id and u.status == "filled" for u in executions.of(OrderUpdate)),
            what="filled",
        )
        fills = [f for f in executions.of(Fill) if f.order_id == order_id]
        assert sum(f.qty for f in fills) == Decimal("0.02")
        await r.until(lambda: r.bridge.balances("kraken")["BTC"].total == btc_before + Decimal("0.02"))
        updates = balances.of(BalanceUpdate)
        assert {u.asset for u in updates} >= {"BTC", "USD"}
        assert {u.ref_id for u in updates if u.asset == "BTC"} <= {f.exec_id for f in fills} | {
            f.trade_id for f in fills
        }


async def test_order_mistakes_are_clear_errors_and_change_nothing() -> None:
    async with rig() as r:
        with pytest.raises(OrderRejected) as small:
            await r.call(r.bridge.place_order("kraken", "BTC/USD", "buy", "limit", "0.00000001", "1000.0"))
        assert "EOrder:Order minimum not met" in str(small.value)
        with pytest.raises(InvalidRequest) as bad:
            await r.call(r.bridge.place_order("kraken", "BTC/USD", "buy", "limit", "0.01"))  # no price
        assert "EGeneral:Invalid arguments" in str(bad.value)
        orders = await r.call(r.kraken.rest.call(kraken_rest.open_orders_request()))
        assert orders.open == {}  # nothing was placed
