"""Orders refused before the venue refuses, against the simulators: what the rules refuse never
reaches the venue, and the venue refuses the same orders when they are sent unchecked; Kraken's
trading rate counter is kept by the bridge, which waits or refuses so that the venue never has to.

Each order goes as the Bridge sends one: `check_order`, then `admit`, then the submit.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from brokerbridge.core.errors import OrderRefused, UnknownSymbol, VenueError
from brokerbridge.core.events import OrderUpdate, Side, StreamState
from brokerbridge.core.orders import OrderRequest, Submitted, mint_client_order_id
from brokerbridge.sim.kraken.account import OrderRequest as SimOrder
from brokerbridge.sim.kraken.order_rate import OrderRateCounter
from brokerbridge.sim.market import Side as SimSide
from tests.io.primary_rig import GGAL, primary_rig
from tests.io.rig import Rig, rig

pytestmark = pytest.mark.timeout(120)

DLR = "DLR/"  # the first DLR future the simulated Primary lists starts so


def kraken_order(qty: str = "0.0001", price: str | None = "10000.0", symbol: str = "BTC/USD") -> OrderRequest:
    return OrderRequest(
        venue="kraken",
        symbol=symbol,
        side=Side.BUY,
        qty=Decimal(qty),
        type="limit" if price is not None else "market",
        price=Decimal(price) if price is not None else None,
    )


async def place(connector: Any, request: OrderRequest) -> Submitted:
    """What the Bridge does with an order: check it, wait for its turn, send it."""
    await connector.check_order(request)
    await connector.admit("add", request.symbol)
    submitted: Submitted = await connector.submit_order(request, mint_client_order_id())
    return submitted


async def cancel(connector: Any, symbol: str, order_id: str) -> None:
    await connector.admit("cancel", symbol, order_id)
    await connector.cancel(order_id)


def add_orders_sent(r: Rig) -> int:
    return r.sim.exchange.private_calls["AddOrder"]


# ---------------------------------------------------------------- Kraken: rules


@pytest.mark.parametrize(
    ("request_", "rule", "venue_error"),
    [
        (kraken_order(price="50000.05"), "price_decimals", "EOrder:Invalid price"),
        (kraken_order(qty="0.00001"), "min_qty", "EOrder:Order minimum not met"),
        (kraken_order(qty="0.000000001"), "lot_size", "EGeneral:Invalid arguments:volume"),
        (kraken_order(qty="0.00005", price="5000.0"), "min_notional", "EOrder:Cost minimum not met"),
        (kraken_order(qty="0.01", price="1000.000"), None, None),  # trailing zeros: valid
    ],
)
async def test_kraken_refuses_locally_what_kraken_would_refuse(
    request_: OrderRequest, rule: str | None, venue_error: str | None
) -> None:
    async with rig(hold_accounts=False) as r:
        if rule is None:
            await r.call(place(r.kraken, request_))
            assert add_orders_sent(r) == 1
            return
        with pytest.raises(OrderRefused) as refused:
            await r.call(place(r.kraken, request_))
        assert refused.value.rule == rule and refused.value.remedy.startswith(("use", "at price"))
        assert add_orders_sent(r) == 0  # nothing reached the venue
        # Sent unchecked, the simulated venue refuses it too.
        with pytest.raises(VenueError) as by_venue:
            await r.call(r.kraken.submit_order(request_, mint_client_order_id()))
        assert not isinstance(by_venue.value, OrderRefused)
        assert venue_error is not None and venue_error in str(by_venue.value)
        assert add_orders_sent(r) == 1


async def test_kraken_unknown_pair_is_refused_locally() -> None:
    async with rig(hold_accounts=False) as r:
        with pytest.raises(UnknownSymbol):
            await r.call(place(r.kraken, kraken_order(symbol="FOO/USD")))
        assert add_orders_sent(r) == 0


# ---------------------------------------------------------------- Kraken: the rate counter


async def offer(r: Rig, requests: list[Any], every: float) -> list[Any]:
    """Start one coroutine every `every` s of fake time; their results or errors once all ended."""
    loop = asyncio.get_running_loop()
    tasks = []
    for coro in requests:
        tasks.append(loop.create_task(coro))
        await r.step(every)
    await r.until(lambda: all(t.done() for t in tasks), step=0.25, what="all offered orders answered")
    return [t.exception() or t.result() for t in tasks]


async def test_a_thousand_orders_offered_quickly_are_held_back_by_the_bridge_not_the_venue() -> None:
    """1,000 orders in 10 s of fake time on one pair, Starter on both sides (the simulated account
    at the same tier as the bridge's setting): the bridge sends what the counter allows — at once,
    or after waiting up to `order_queue_s` — and refuses the rest saying when to retry; the
    venue's counter refuses nothing."""
    async with rig(hold_accounts=False, tier="starter", order_queue_s=5.0) as r:
        venue_counter = r.sim.exchange.account.order_rate = OrderRateCounter(tier="starter")
        await r.call(r.kraken.ensure_symbols())
        results = await offer(r, [place(r.kraken, kraken_order()) for _ in range(1000)], every=0.01)
        placed = [x for x in results if isinstance(x, Submitted)]
        refused = [x for x in results if isinstance(x, OrderRefused)]
        others = [x for x in results if not isinstance(x, Submitted | OrderRefused)]
        assert others == []
        assert venue_counter.refused == 0
        assert add_orders_sent(r) == len(placed) == venue_counter.counted
        # 59 at once (60 less a second's decay), one a second for the 10 s after, and 5 s of queue.
        assert 59 + 9 <= len(placed) <= 59 + 15
        assert len(refused) == 1000 - len(placed)
        assert {e.rule for e in refused} == {"rate_limit"} and all(e.retryable for e in refused)
        assert "retry in" in refused[-1].remedy
        open_orders = r.sim.exchange.account.open_orders()
        assert len(open_orders) == len(placed)


async def test_young_cancels_wait_for_the_counter_and_the_venue_refuses_none() -> None:
    """Cancels of orders just placed count +8 each: the bridge holds them back (it knows each
    order's age from its ack) and, retried when told, every order is cancelled with no refusal
    from the venue."""
    async with rig(hold_accounts=False, tier="starter", order_queue_s=2.0) as r:
        venue_counter = r.sim.exchange.account.order_rate = OrderRateCounter(tier="starter")
        placed = [(await r.call(place(r.kraken, kraken_order()))).order_id for _ in range(20)]
        assert {o.txid for o in r.sim.exchange.account.open_orders()} == set(placed)
        pending = list(placed)
        refusals = 0
        while pending:
            results = await offer(r, [cancel(r.kraken, "BTC/USD", o) for o in pending], every=0.0)
            refusals += sum(isinstance(x, OrderRefused) for x in results)
            assert all(x is None or isinstance(x, OrderRefused) for x in results), results
            pending = [o for o, x in zip(pending, results, strict=True) if x is not None]
            await r.step(1.0)
        assert refusals > 0  # 20 + 8 a cancel passes 59 after the fifth
        assert venue_counter.refused == 0
        assert r.sim.exchange.account.open_orders() == []


async def test_the_age_of_an_order_placed_elsewhere_comes_from_executions() -> None:
    """An order another client placed (seen on `executions`) is charged by its age, and forgotten
    once it is closed."""
    async with rig(tier="starter") as r:
        executions = r.collect("executions")
        await r.until(lambda: executions.states("kraken:executions")[-1:] == [StreamState.LIVE])
        pair = r.sim.exchange.catalog.ws_pair("BTC/USD")
        assert pair is not None
        order, _ = r.sim.exchange.account.place(
            SimOrder(pair, SimSide.BUY, "limit", Decimal("0.0001"), Decimal("10000.0")), r.clock.time()
        )
        await r.until(lambda: any(u.order_id == order.txid for u in executions.of(OrderUpdate)), what="seen")
        await r.run_for(15.0, step=0.5)
        # 15 s old by the stream's stamp: its cancel is +4 (an order of unknown age would be +8),
        # on the pair the stream named (the caller names none).
        await r.kraken.admit("cancel", "", order.txid)  # fits: no wait, no time passes
        assert r.kraken.trade_counter.level("BTC/USD", r.clock.monotonic()) == 4.0
        await r.call(r.kraken.cancel(order.txid))
        await r.until(lambda: r.kraken.order_ages.get(order.txid) is None, what="closed on executions")
        # An order the bridge never saw counts as just placed: +8.
        level = r.kraken.trade_counter.level("BTC/USD", r.clock.monotonic())
        await r.kraken.admit("cancel", "BTC/USD", order.txid)
        assert r.kraken.trade_counter.level("BTC/USD", r.clock.monotonic()) == level + 8.0


async def test_an_order_waiting_for_the_counter_that_is_given_up_hands_its_count_back() -> None:
    async with rig(hold_accounts=False, tier="starter", order_queue_s=5.0) as r:
        for _ in range(59):
            await r.kraken.admit("add", "BTC/USD")
        waiting = asyncio.get_running_loop().create_task(r.kraken.admit("add", "BTC/USD"))
        await r.step(0.1)
        assert not waiting.done()
        level = r.kraken.trade_counter.level("BTC/USD", r.clock.monotonic())
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        assert r.kraken.trade_counter.level("BTC/USD", r.clock.monotonic()) == pytest.approx(level - 1)


# ---------------------------------------------------------------- Primary


def primary_order(symbol: str, qty: Decimal, price: Decimal | None, **kw: Any) -> OrderRequest:
    return OrderRequest(
        venue="primary",
        symbol=symbol,
        side=Side.BUY,
        qty=qty,
        type=kw.pop("type", "limit" if price is not None else "market"),
        price=price,
        **kw,
    )


async def test_primary_refuses_locally_what_the_venue_rejects(tmp_path: Path) -> None:
    async with primary_rig(tmp_path, hold_accounts=False) as r:
        catalog = await r.call(r.primary.catalog())
        ggal = catalog.get(GGAL)
        dlr = next(d for d in catalog if d.symbol.startswith(DLR) and d.symbol.count("/") == 1)
        assert ggal is not None and ggal.tick is not None and ggal.max_qty is not None
        top = (Decimal(1_000_000) / ggal.tick + 1) * ggal.tick
        cases: list[tuple[OrderRequest, str]] = [
            (primary_order(GGAL, Decimal(1), ggal.tick * 100 + ggal.tick / 2), "tick_size"),
            (primary_order(GGAL, ggal.max_qty + 1, ggal.tick * 100), "max_qty"),
            (primary_order(GGAL, Decimal("1.5"), ggal.tick * 100), "lot_size"),
            (primary_order(GGAL, Decimal(1), top), "price_band"),
            (primary_order(dlr.symbol, Decimal(1), None), "order_type"),
        ]
        orders = r.psim.exchange.account.orders  # type: ignore[union-attr]
        for request, rule in cases:
            with pytest.raises(OrderRefused) as refused:
                await r.call(place(r.primary, request))
            assert refused.value.rule == rule, request
            assert len(orders) == 0, rule  # nothing reached the venue
        # Sent unchecked, each is rejected by the simulated venue.
        for request, rule in cases:
            order_id = (await r.call(r.primary.submit_order(request, mint_client_order_id()))).order_id
            assert orders[order_id].status == "REJECTED" and orders[order_id].text.startswith("Rechazada"), (
                rule
            )
        with pytest.raises(UnknownSymbol):
            await r.call(place(r.primary, primary_order("MERV - XMEV - NOPE - 24hs", Decimal(1), None)))
        # A valid order passes the checks and the venue takes it.
        order_id = (await r.call(place(r.primary, primary_order(GGAL, Decimal(1), ggal.tick)))).order_id
        assert orders[order_id].status in ("NEW", "PARTIALLY_FILLED", "FILLED")


async def test_primary_admit_never_waits(tmp_path: Path) -> None:
    async with primary_rig(tmp_path, hold_accounts=False) as r:
        for _ in range(1000):
            await r.primary.admit("add", GGAL)
            await r.primary.admit("cancel", GGAL, "1")
