"""Fidelity proof: the unmodified pyRofex (0.5.0, websocket-client) against the simulator.

pyRofex keeps its configuration in module-level globals and runs its socket on a thread with real
sleeps (its `connect` polls once per second), so this test runs the simulator on the real clock and
the client in a worker thread.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from brokerbridge.sim.primary import PrimarySimulator

pyRofex = pytest.importorskip("pyRofex")

pytestmark = pytest.mark.thirdparty


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def run_pyrofex(url: str, ws: str, user: str, password: str, account: str) -> dict[str, Any]:
    env = pyRofex.Environment.REMARKET
    pyRofex._set_environment_parameter("url", url, env)
    pyRofex._set_environment_parameter("ws", ws, env)
    pyRofex.initialize(user=user, password=password, account=account, environment=env)
    out: dict[str, Any] = {"md": [], "or": [], "errors": []}
    out["instruments"] = pyRofex.get_all_instruments()
    out["detail"] = pyRofex.get_instrument_details("MERV - XMEV - GGAL - 24hs")
    out["market_data"] = pyRofex.get_market_data("MERV - XMEV - GGAL - 24hs")
    dlr = next(
        i["instrumentId"]["symbol"]
        for i in out["instruments"]["instruments"]
        if "DLR/" in i["instrumentId"]["symbol"]
    )
    out["futures"] = pyRofex.get_instruments("by_cfi", cfi_code=pyRofex.CFICode.FUTURE)
    pyRofex.init_websocket_connection(
        market_data_handler=out["md"].append,
        order_report_handler=out["or"].append,
        error_handler=out["errors"].append,
        exception_handler=out["errors"].append,
    )
    try:
        pyRofex.market_data_subscription(
            tickers=[dlr, "MERV - XMEV - GGAL - 24hs"],
            entries=[
                pyRofex.MarketDataEntry.BIDS,
                pyRofex.MarketDataEntry.OFFERS,
                pyRofex.MarketDataEntry.LAST,
            ],
        )
        pyRofex.order_report_subscription(snapshot=True)
        wait_for(lambda: len(out["md"]) >= 2)
        out["order"] = pyRofex.send_order(
            ticker=dlr, side=pyRofex.Side.BUY, size=10, price=1000, order_type=pyRofex.OrderType.LIMIT
        )
        client_id = out["order"]["order"]["clientId"]
        wait_for(lambda: any(r["orderReport"]["status"] == "NEW" for r in out["or"]))
        out["status"] = pyRofex.get_order_status(client_id)
        pyRofex.send_order_via_websocket(
            ticker="MERV - XMEV - GGAL - 24hs", side=pyRofex.Side.BUY, size=1, price=5000,
            order_type=pyRofex.OrderType.LIMIT, ws_client_order_id="ws-1",
        )  # fmt: skip
        wait_for(lambda: any(r["orderReport"].get("wsClOrdId") == "ws-1" for r in out["or"]))
        out["cancel"] = pyRofex.cancel_order(client_id)
        wait_for(lambda: any(r["orderReport"]["status"] == "CANCELLED" for r in out["or"]))
        out["positions"] = pyRofex.get_account_position()
        out["report"] = pyRofex.get_account_report()
    finally:
        pyRofex.close_websocket_connection()
    return out


async def test_pyrofex_initializes_lists_streams_orders_and_cancels() -> None:
    async with PrimarySimulator(port=0, seed=11) as sim:
        e = sim.endpoints
        out = await asyncio.to_thread(run_pyrofex, e.rest, e.ws, e.user, e.password, e.account)
    assert out["errors"] == []
    assert len(out["instruments"]["instruments"]) == len(sim.exchange.catalog.instruments)
    assert out["detail"]["instrument"]["cficode"] == "ESXXXX"
    assert out["market_data"]["status"] == "OK" and set(out["market_data"]["marketData"]) >= {
        "BI",
        "OF",
        "LA",
        "TC",
    }
    assert all(f["symbol"].startswith("DLR/") for f in out["futures"]["instruments"])
    assert all(m["type"] == "Md" and "timestamp" in m for m in out["md"])
    assert out["order"]["status"] == "OK" and out["status"]["order"]["status"] == "NEW"
    statuses = [r["orderReport"]["status"] for r in out["or"]]
    assert statuses[:2] == ["PENDING_NEW", "NEW"] and "CANCELLED" in statuses
    assert out["cancel"]["status"] == "OK"
    assert out["positions"]["status"] == "OK" and out["report"]["status"] == "OK"
