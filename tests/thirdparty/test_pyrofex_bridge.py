"""pyRofex 0.5.0, unmodified, against the bridge's `/primary/` REST endpoint.

Only pyRofex's URLs change (the maintainer's recipe, `_set_environment_parameter("url", …)`, as
`test_pyrofex.py` points it at the simulator): here at `/primary/` of a `brokerbridge` server whose
Bridge is connected to the Primary simulator. pyRofex logs in with a bridge API key's name and the
key (never the broker's password) and runs its REST flow: initialize, instruments, market data,
trade history, orders (send, status, list, cancel), positions, the account report. The simulator
counts logins: the bridge logged in upstream exactly once, whatever pyRofex did.

pyRofex is synchronous (`requests`): its calls run in a thread while the server runs on the loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyRofex
import pyrofex_helpers as _h
import pytest
from pyRofex import CFICode, Environment, Market, MarketDataEntry, MarketSegment, OrderType, Side
from pyRofex.components.exceptions import ApiException
from tests.server.primary_rig import TRADE_KEY, primary_stack

from brokerbridge.server import BridgeServer
from brokerbridge.sim.market import BookSide
from brokerbridge.sim.primary import PrimarySimulator

pytestmark = pytest.mark.thirdparty

pyrofex_state = _h.pyrofex_state

ENV = Environment.REMARKET
GGAL = "MERV - XMEV - GGAL - 24hs"
LIMIT = 20.0
Bridged = tuple[PrimarySimulator, BridgeServer]
USER, KEY = "trader", TRADE_KEY  # an API key of the bridge's, with market, account and trade


async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """One pyRofex call, off the loop (it blocks on `requests`)."""
    return await asyncio.wait_for(asyncio.to_thread(fn, *args, **kwargs), LIMIT)


async def until(fn: Callable[[], Any], ok: Callable[[Any], bool]) -> Any:
    async with asyncio.timeout(LIMIT):
        while True:
            result = await call(fn)
            if ok(result):
                return result
            await asyncio.sleep(0.1)


@pytest.fixture
async def bridged(
    tmp_path: Path, pyrofex_state: None
) -> AsyncIterator[tuple[PrimarySimulator, BridgeServer]]:
    """The Primary simulator, a Bridge on it and its server; pyRofex pointed at `/primary/`."""
    async with primary_stack(tmp_path) as stack:
        pyRofex._set_environment_parameter("url", f"{stack.server.http_url}/primary/", ENV)
        pyRofex._set_environment_parameter("ws", stack.server.ws_url.replace("/ws", "/primary/"), ENV)
        yield stack.sim, stack.server


async def test_pyrofex_rest_flow_through_the_bridge(bridged: Bridged) -> None:
    sim, _server = bridged
    account = sim.endpoints.account
    await call(pyRofex.initialize, user=USER, password=KEY, account=account, environment=ENV)
    assert _h.rofex_globals.environment_config[ENV]["token"].startswith("bbt.")

    # instruments
    segments = await call(pyRofex.get_segments)
    assert segments["status"] == "OK" and segments["segments"]
    everything = await call(pyRofex.get_all_instruments)
    assert len(everything["instruments"]) == len(sim.exchange.catalog.instruments)
    details = await call(pyRofex.get_detailed_instruments)
    assert details["status"] == "OK" and len(details["instruments"]) == len(everything["instruments"])
    detail = await call(pyRofex.get_instrument_details, GGAL)
    assert detail["instrument"]["instrumentId"] == {"marketId": "ROFX", "symbol": GGAL}
    tick = Decimal(str(detail["instrument"]["minPriceIncrement"]))
    stocks = await call(pyRofex.get_instruments, "by_cfi", cfi_code=CFICode.STOCK)
    assert {"marketId": "ROFX", "symbol": GGAL} in stocks["instruments"]
    futures = await call(
        pyRofex.get_instruments, "by_segments", market_segment=MarketSegment.DDF, market=Market.ROFEX
    )
    assert futures["status"] == "OK" and futures["instruments"]
    unknown = await call(pyRofex.get_instrument_details, "NOPE")
    assert unknown == {"status": "ERROR", "description": "Product NOPE:ROFX doesn't exist", "message": None}

    # market data: BI/OF/LA from the bridge's streams, all entries asked of Primary
    entries = [MarketDataEntry.BIDS, MarketDataEntry.OFFERS, MarketDataEntry.LAST]
    quote = await call(pyRofex.get_market_data, GGAL, entries, depth=2)
    assert quote["status"] == "OK" and set(quote["marketData"]) == {"BI", "OF", "LA"}
    assert 1 <= len(quote["marketData"]["BI"]) <= 2 and quote["depth"] == 2
    full = await call(pyRofex.get_market_data, GGAL)
    assert full["status"] == "OK" and set(full["marketData"]) == {e.value for e in MarketDataEntry}
    dlr = next(i.symbol for i in sim.exchange.catalog.instruments if i.kind == "future")
    today = dt.date.today().isoformat()
    trades = await call(pyRofex.get_trade_history, dlr, today, today)
    assert trades["status"] == "OK" and trades["symbol"] == dlr

    # orders over REST: send, status, list, cancel
    best_bid = sim.exchange.market.book(GGAL).levels(BookSide.BID, 1)[0][0]
    resting = float((best_bid * Decimal("0.9") / tick).quantize(Decimal(1)) * tick)
    sent = await call(pyRofex.send_order, GGAL, 1, OrderType.LIMIT, Side.BUY, price=resting)
    assert sent["status"] == "OK", sent
    cl_ord_id = sent["order"]["clientId"]
    assert sent["order"]["proprietary"] == "PBCP"
    status = await until(lambda: pyRofex.get_order_status(cl_ord_id), lambda s: s["order"]["status"] == "NEW")
    assert status["order"]["clOrdId"] == cl_ord_id and status["order"]["accountId"]["id"] == account
    listed = await call(pyRofex.get_all_orders_status)
    assert cl_ord_id in {o["clOrdId"] for o in listed["orders"]}
    cancelled = await call(pyRofex.cancel_order, cl_ord_id)
    assert cancelled["status"] == "OK" and cancelled["order"]["clientId"] == cl_ord_id
    await until(lambda: pyRofex.get_order_status(cl_ord_id), lambda s: s["order"]["status"] == "CANCELLED")

    # a marketable order fills: positions and the account report show it
    best_ask = sim.exchange.market.book(GGAL).levels(BookSide.ASK, 1)[0][0]
    crossing = float((best_ask * Decimal("1.05") / tick).quantize(Decimal(1)) * tick)
    filled = await call(pyRofex.send_order, GGAL, 1, OrderType.LIMIT, Side.BUY, price=crossing)
    assert filled["status"] == "OK", filled
    await until(
        lambda: pyRofex.get_order_status(filled["order"]["clientId"]),
        lambda s: s["order"]["status"] == "FILLED",
    )
    positions = await until(
        pyRofex.get_account_position, lambda p: any(r["symbol"] == GGAL for r in p["positions"])
    )
    assert positions["status"] == "OK"
    report = await call(pyRofex.get_account_report)
    assert report["status"] == "OK" and report["accountData"]["accountName"] == account
    detailed = await call(pyRofex.get_detailed_position)
    assert detailed["status"] == "OK"
    refused = await call(pyRofex.get_account_report, account="REM0000")
    assert refused == {
        "status": "ERROR",
        "description": "No tiene acceso a la cuenta REM0000",
        "message": None,
    }

    # one upstream login for all of it: the bridge's
    assert sim.exchange.logins == 1


async def test_pyrofex_with_a_wrong_password_is_refused(
    bridged: tuple[PrimarySimulator, BridgeServer],
) -> None:
    sim, _server = bridged
    with pytest.raises(ApiException, match="Authentication fails"):
        await call(
            pyRofex.initialize, user=USER, password="wrong", account=sim.endpoints.account, environment=ENV
        )
    # nor with the broker's own credentials: they are the bridge's, never a client's
    with pytest.raises(ApiException, match="Authentication fails"):
        await call(
            pyRofex.initialize,
            user=sim.endpoints.user,
            password=sim.endpoints.password,
            account=sim.endpoints.account,
            environment=ENV,
        )
    assert sim.exchange.logins == 1
