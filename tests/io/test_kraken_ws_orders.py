"""Kraken order entry through the Bridge: on the authenticated WebSocket while it is live (with the
session's token: none fetched per order), over REST while it is down; an unanswered WS order is
`unknown`, not refused; amend changes the order in place; the dead man's switch."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from brokerbridge.core.clock import FakeClock
from brokerbridge.core.config import Config
from brokerbridge.core.errors import InvalidRequest
from brokerbridge.core.events import OrderUpdate, Side
from brokerbridge.core.orders import AmendRequest, OrderAck, OrderRequest
from brokerbridge.sim.kraken import KrakenSimulator
from brokerbridge.sim.kraken.exchange import DEAD_MAN_REASON
from tests.io.rig import Rig, kraken_config, rig, rig_on

pytestmark = pytest.mark.timeout(120)


def buy(client_order_id: str, price: str = "1000.0", qty: str = "0.01") -> OrderRequest:
    return OrderRequest(
        venue="kraken",
        symbol="BTC/USD",
        side=Side.BUY,
        qty=Decimal(qty),
        price=Decimal(price),
        client_order_id=client_order_id,
    )


async def place(r: Rig, request: OrderRequest) -> OrderAck:
    ack: OrderAck = await r.call(r.bridge.place(request))
    return ack


def sim_order(r: Rig, client_order_id: str):  # type: ignore[no-untyped-def]
    (order,) = [o for o in r.sim.exchange.account.orders.values() if o.cl_ord_id == client_order_id]
    return order


async def test_orders_go_on_the_live_socket_with_its_token_none_fetched_per_order() -> None:
    async with rig() as r:
        await r.until(lambda: r.kraken.orders_over_ws, what="private socket live")
        calls = r.sim.exchange.private_calls
        tokens = calls["GetWebSocketsToken"]
        acks = [await place(r, buy(f"ws-{n}")) for n in range(3)]
        assert [(a.status, a.via) for a in acks] == [("accepted", "ws")] * 3
        for n, ack in enumerate(acks):
            order = sim_order(r, f"ws-{n}")
            assert (order.txid, order.status) == (ack.order_id, "open")
        assert acks[0].order_id is not None
        canceled = await r.call(r.bridge.cancel("kraken", acks[0].order_id))
        assert (canceled.canceled, canceled.via) == (1, "ws")
        assert sim_order(r, "ws-0").status == "canceled"
        # Three orders and a cancel: no token fetched for them, nothing over REST.
        assert calls["GetWebSocketsToken"] == tokens
        assert calls["AddOrder"] == calls["CancelOrder"] == 0


async def test_orders_go_over_rest_while_the_private_socket_is_down_and_back_on_it_after() -> None:
    async with rig() as r:
        await r.until(lambda: r.kraken.orders_over_ws, what="private socket live")
        await r.faults(stall="private")  # Kraken's private socket goes silent: the bridge gives it up
        await r.until(lambda: not r.kraken.orders_over_ws, what="private socket down")
        ack = await place(r, buy("rest-1"))
        assert (ack.status, ack.via) == ("accepted", "rest")
        assert ack.order_id is not None
        amended = await r.call(
            r.bridge.amend(AmendRequest(venue="kraken", order_id=ack.order_id, price=Decimal("1000.5")))
        )
        assert (amended.order_id, amended.via) == (ack.order_id, "rest")
        assert sim_order(r, "rest-1").price == Decimal("1000.5")
        canceled = await r.call(r.bridge.cancel("kraken", ack.order_id))
        assert (canceled.canceled, canceled.via) == (1, "rest")
        assert r.sim.exchange.private_calls["AddOrder"] == 1
        await r.faults(stall=None)
        await r.until(lambda: r.kraken.orders_over_ws, what="private socket live again")
        again = await place(r, buy("ws-after"))
        assert (again.status, again.via) == ("accepted", "ws")
        assert r.sim.exchange.private_calls["AddOrder"] == 1


async def test_an_unanswered_ws_order_is_unknown_not_refused() -> None:
    async with rig() as r:
        await r.until(lambda: r.kraken.orders_over_ws, what="private socket live")
        await r.faults(stall="private")  # requests still reach Kraken; its answers never come back
        ack = await place(r, buy("lost-1"))
        assert (ack.status, ack.order_id, ack.via) == ("unknown", None, None)
        assert ack.reason is not None and "no answer" in ack.reason
        # Kraken took it all the same: only the answer was lost, so "refused" would have been wrong.
        assert sim_order(r, "lost-1").status == "open"


async def test_amend_changes_the_order_at_the_venue_in_place() -> None:
    async with rig() as r:
        executions = r.collect("executions")
        await r.until(lambda: r.kraken.orders_over_ws, what="private socket live")
        ack = await place(r, buy("am-1"))
        assert ack.via == "ws" and ack.order_id is not None
        request = AmendRequest(
            venue="kraken", order_id=ack.order_id, qty=Decimal("0.02"), price=Decimal("1000.5")
        )
        amended = await r.call(r.bridge.amend(request))
        assert (amended.order_id, amended.status, amended.via) == (ack.order_id, "accepted", "ws")
        order = sim_order(r, "am-1")
        assert (order.txid, order.volume, order.price, order.status) == (
            ack.order_id,
            Decimal("0.02"),
            Decimal("1000.5"),
            "open",
        )

        def amended_updates() -> list[OrderUpdate]:
            return [
                u
                for u in executions.of(OrderUpdate)
                if u.order_id == ack.order_id and u.exec_type == "amended"
            ]

        await r.until(lambda: bool(amended_updates()), what="amended on executions")
        (update,) = amended_updates()
        assert (update.qty, update.limit_price) == (Decimal("0.02"), Decimal("1000.5"))
        # A second amend is news too (it differs from the first only in its terms).
        again = AmendRequest(venue="kraken", order_id=ack.order_id, price=Decimal("1000.0"))
        assert (await r.call(r.bridge.amend(again))).via == "ws"
        await r.until(lambda: len(amended_updates()) == 2, what="second amend on executions")
        assert amended_updates()[-1].limit_price == Decimal("1000.0")
        (open_order,) = [o for o in r.bridge.open_orders("kraken") if o.order_id == ack.order_id]
        assert (open_order.qty, open_order.limit_price) == (Decimal("0.02"), Decimal("1000.0"))


async def test_dead_man_switch_cancels_the_orders_once_the_bridge_stops_refreshing_it() -> None:
    async with rig(dead_man_switch_s=30.0) as r:
        await r.until(lambda: r.sim.exchange.cancel_all_at is not None, what="switch armed")
        await r.until(lambda: r.kraken.orders_over_ws, what="private socket live")
        ack = await place(r, buy("dms-1"))
        await r.run_for(95, step=0.5)  # three timeouts: pushed back every 10 s, the order stays
        assert sim_order(r, "dms-1").status == "open"
        # The venue no longer takes the bridge's refreshes (as if it had died or lost Kraken).
        await r.faults(deny_permissions=["create_orders", "cancel_orders"])
        await r.until(lambda: sim_order(r, "dms-1").status == "canceled", within=45, step=0.5, what="fired")
        assert sim_order(r, "dms-1").reason == DEAD_MAN_REASON
        assert ack.order_id == sim_order(r, "dms-1").txid


async def test_dead_man_switch_is_disarmed_on_a_clean_stop() -> None:
    clock = FakeClock()
    async with KrakenSimulator(port=0, seed=11, clock=clock) as sim:
        config = Config(kraken=kraken_config(sim, dead_man_switch_s=30.0))
        async with rig_on(sim, clock, config) as r:
            await r.until(lambda: sim.exchange.cancel_all_at is not None, what="switch armed")
            ack = await place(r, buy("stay-1"))
        assert sim.exchange.cancel_all_at is None
        await clock.advance(60.0)  # twice the timeout: the orders the bridge left stay
        assert sim.exchange.account.orders[ack.order_id or ""].status == "open"


async def test_batches_on_the_socket_with_one_outcome_per_order() -> None:
    async with rig() as r:
        await r.until(lambda: r.kraken.orders_over_ws, what="private socket live")
        requests = [buy("b-1"), buy("b-2", price="1000.5"), buy("b-3", qty="50", price="100000.0")]
        outcomes = await r.call(r.kraken.batch_add(requests, ["b-1", "b-2", "b-3"]))
        assert [(o.client_order_id, o.status, o.via) for o in outcomes] == [
            ("b-1", "accepted", "ws"),
            ("b-2", "accepted", "ws"),
            ("b-3", "rejected", "ws"),  # the engine refused it alone (funds): the others stand
        ]
        assert outcomes[2].error == "EOrder:Insufficient funds" and outcomes[2].order_id is None
        for outcome in outcomes[:2]:
            assert sim_order(r, outcome.client_order_id).txid == outcome.order_id
        ids = [o.order_id for o in outcomes[:2] if o.order_id is not None]
        canceled = await r.call(r.kraken.batch_cancel(ids))
        assert (canceled.count, canceled.via) == (2, "ws")
        assert {sim_order(r, cid).status for cid in ("b-1", "b-2")} == {"canceled"}
        # Kraken's bounds and rules, refused before anything is sent.
        with pytest.raises(InvalidRequest, match="share one symbol"):
            other = OrderRequest(
                venue="kraken", symbol="ETH/USD", side=Side.BUY, qty=Decimal("1"), price=Decimal("10")
            )
            await r.call(r.kraken.batch_add([buy("x-1"), other], ["x-1", "x-2"]))
        with pytest.raises(InvalidRequest, match="2 to 50"):
            await r.call(r.kraken.batch_cancel(ids[:1]))
        assert r.sim.exchange.private_calls["AddOrder"] == 0


async def test_a_time_in_force_kraken_lacks_is_refused_before_anything_is_sent() -> None:
    async with rig() as r:
        await r.until(lambda: r.kraken.orders_over_ws, what="private socket live")
        day = msgspec.structs.replace(buy("day-1"), time_in_force="day")
        with pytest.raises(InvalidRequest, match="no day orders") as refused:
            await r.call(r.bridge.place(day))
        assert refused.value.remedy is not None and "gtc" in refused.value.remedy
        ioc = await place(r, msgspec.structs.replace(buy("ioc-1"), time_in_force="ioc"))
        assert (ioc.status, ioc.via) == ("accepted", "ws")
        assert sim_order(r, "ioc-1").timeinforce == "IOC"
        assert not [o for o in r.sim.exchange.account.orders.values() if o.cl_ord_id == "day-1"]
