"""pyRofex 0.5.0, unmodified, on the bridge's `/primary/` WebSocket.

Only pyRofex's URLs change (`test_pyrofex_bridge.py`'s `bridged` fixture: REST and WS at `/primary/`
of a server whose Bridge is connected to the Primary simulator). pyRofex logs in over REST
(getToken with a bridge key, answered with a bridge token) and opens its socket with that token in
its `X-Auth-Token:` header line; then market data with entries and depth, its order reports, an
order sent and canceled over the socket. The simulator still sees one login, one socket.

pyRofex is synchronous and calls its handlers on its websocket thread: its calls run in a thread
(`call`), the handlers record into thread-safe `Recorder`s (pyrofex_helpers.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pyRofex
import pyrofex_helpers as _h
import pytest
from pyRofex import MarketDataEntry, OrderType, Side
from pyrofex_helpers import Recorder
from test_pyrofex_bridge import ENV, GGAL, KEY, LIMIT, USER, bridged, call

from brokerbridge.server import BridgeServer
from brokerbridge.sim.market import BookSide
from brokerbridge.sim.primary import PrimarySimulator

pytestmark = pytest.mark.thirdparty

pyrofex_state = _h.pyrofex_state
__all__ = ["bridged", "pyrofex_state"]

Bridged = tuple[PrimarySimulator, BridgeServer]


async def seen(recorder: Recorder, pred: Callable[[Any], bool], start: int = 0) -> Any:
    """The first message at or after `start` that `pred` accepts (waited for off the loop)."""
    found = await asyncio.to_thread(recorder.wait_for, pred, LIMIT, start)
    assert found is not None, f"nothing matching in {recorder.name}: {recorder.items(start)[-5:]!r}"
    return found


def md_of(symbol: str) -> Callable[[Any], bool]:
    return lambda m: m["type"] == "Md" and m["instrumentId"]["symbol"] == symbol


def or_with(**fields: Any) -> Callable[[Any], bool]:
    return lambda m: m["type"] == "or" and all(m["orderReport"].get(k) == v for k, v in fields.items())


async def test_pyrofex_websocket_flow_through_the_bridge(bridged: Bridged) -> None:
    sim, _server = bridged
    account = sim.endpoints.account
    await call(pyRofex.initialize, user=USER, password=KEY, account=account, environment=ENV)
    md, reports, errors, exceptions = (Recorder(n) for n in ("md", "or", "errors", "exceptions"))
    await call(
        pyRofex.init_websocket_connection,
        market_data_handler=md.handle,
        order_report_handler=reports.handle,
        error_handler=errors.handle,
        exception_handler=exceptions.handle,
    )
    assert not exceptions.items(), exceptions.items()

    # market data: exactly the entries asked for, the book at the depth asked for
    entries = [MarketDataEntry.BIDS, MarketDataEntry.OFFERS, MarketDataEntry.LAST]
    await call(pyRofex.market_data_subscription, tickers=[GGAL], entries=entries, depth=3)
    for _ in range(2):
        frame = await seen(md, md_of(GGAL), len(md))
        data = frame["marketData"]
        assert set(data) == {"BI", "OF", "LA"}
        assert len(data["BI"]) == len(data["OF"]) == 3  # the simulator's book is deeper
        assert set(data["LA"] or {"price": 0, "size": 0, "date": 0}) == {"price", "size", "date"}
    # a product Primary does not list: the error frame, to pyRofex's error handler; the socket stays
    await call(pyRofex.market_data_subscription, tickers=["NOPE"], entries=entries)
    error = await seen(errors, lambda m: isinstance(m, dict) and "NOPE" in m.get("description", ""))
    assert error["description"] == "Product NOPE:ROFX don't exist"
    await seen(md, md_of(GGAL), len(md))

    # order reports, an order sent and canceled over the socket
    await call(pyRofex.order_report_subscription, account=account, snapshot=True)
    tick = Decimal(5)  # GGAL's price increment in the simulator
    best_bid = sim.exchange.market.book(GGAL).levels(BookSide.BID, 1)[0][0]
    resting = float((best_bid * Decimal("0.9") / tick).quantize(Decimal(1)) * tick)
    orders = len(sim.exchange.account.orders)
    start = len(reports)
    await call(
        pyRofex.send_order_via_websocket,
        ticker=GGAL,
        size=1,
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        price=resting,
        ws_client_order_id="pyr1",
    )
    first = (await seen(reports, or_with(wsClOrdId="pyr1"), start))["orderReport"]
    cl_ord_id = first["clOrdId"]
    assert first["instrumentId"] == {"marketId": "ROFX", "symbol": GGAL}
    assert first["accountId"] == {"id": account} and first["side"] == "BUY"
    await seen(reports, or_with(clOrdId=cl_ord_id, status="NEW"), start)
    assert len(sim.exchange.account.orders) == orders + 1
    await call(pyRofex.cancel_order_via_websocket, cl_ord_id)  # pyRofex's proprietary: PBCP
    canceled = await seen(reports, or_with(clOrdId=cl_ord_id, status="CANCELLED"), start)
    assert canceled["orderReport"]["proprietary"] == "PBCP"
    assert sim.exchange.account.orders[cl_ord_id].status == "CANCELLED"

    assert not exceptions.items(), exceptions.items()
    assert [e for e in errors.items() if "NOPE" not in str(e)] == []
    assert sim.exchange.logins == 1 and len(sim.sessions) == 1  # the bridge's own login and socket
    await call(pyRofex.close_websocket_connection)
