"""Orders through the Bridge: their lifecycle arrives on `executions`, balances follow."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from brokerbridge.core.errors import OrderRefused, OrderRejected
from brokerbridge.core.events import BalanceUpdate, Fill, OrderUpdate, StreamState
from brokerbridge.venues.kraken import rest as kraken_rest
from tests.io.rig import btc_usd, rig

pytestmark = pytest.mark.timeout(60)


async def test_limit_order_lifecycle_and_cancel() -> None:
    async with rig() as r:
        executions = r.collect("executions")
        await r.until(lambda: executions.states("kraken:executions")[-1:] == [StreamState.LIVE])
        ack = await r.place(btc_usd("0.01", "1000.0"))
        assert ack.status == "accepted" and ack.order_id is not None
        order_id = ack.order_id

        def statuses() -> list[str]:
            return [u.status for u in executions.of(OrderUpdate) if u.order_id == order_id]

        await r.until(lambda: "new" in statuses(), what="order live")
        assert statuses()[0] == "pending_new"
        canceled = await r.call(r.bridge.cancel("kraken", order_id))
        assert (canceled.status, canceled.canceled) == ("done", 1)
        await r.until(lambda: statuses()[-1] == "canceled", what="order canceled")
        assert r.bridge.state["kraken"].journal.orders[order_id].status == "canceled"


async def test_market_order_fills_and_balances_follow() -> None:
    async with rig() as r:
        executions = r.collect("executions")
        balances = r.collect("balances")
        await r.until(lambda: balances.states("kraken:balances")[-1:] == [StreamState.LIVE])
        await r.until(lambda: executions.states("kraken:executions")[-1:] == [StreamState.LIVE])
        btc_before = r.bridge.balances("kraken")["BTC"].total
        order_id = (await r.place(btc_usd("0.02"))).order_id
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
        # What the bridge can tell from Kraken's rules is refused before Kraken sees it, naming the
        # rule broken and what to do instead.
        with pytest.raises(OrderRefused) as small:
            await r.place(btc_usd("0.00000001", "1000.0"))
        assert small.value.rule == "min_qty" and small.value.remedy
        with pytest.raises(OrderRefused) as no_price:
            await r.place(msgspec.structs.replace(btc_usd("0.01", "1000.0"), price=None))  # a limit, no price
        assert no_price.value.rule == "price" and "needs a price" in no_price.value.message
        # What only Kraken can tell (the account's funds) comes back as Kraken's refusal, typed.
        with pytest.raises(OrderRejected) as funds:
            await r.place(btc_usd("1000", "1000.0"))
        assert "EOrder:Insufficient funds" in str(funds.value)
        orders = await r.call(r.kraken.rest.call(kraken_rest.open_orders_request()))
        assert orders.open == {}  # nothing was placed
        assert r.bridge.open_orders("kraken") == []
