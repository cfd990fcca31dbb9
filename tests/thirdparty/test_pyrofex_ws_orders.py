"""pyRofex's WebSocket order entry (`send_order_via_websocket`, `cancel_order_via_websocket`),
unmodified, against ``brokerbridge sim primary``: what the simulator answers beyond the happy path
of ``test_pyrofex.py`` — refusals as error frames, a cancel of an order no longer active, and an
order whose answer was lost (the `lose_answers` fault) that only REST shows.

Run: ``.venv/bin/python -m pytest -p no:xdist -m thirdparty tests/thirdparty/test_pyrofex_ws_orders.py``
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pyRofex
import pyrofex_helpers as _h
import pytest
from pyRofex import OrderType, Side
from pyrofex_helpers import PrimarySim, on_tick, poll_until, tick_of
from test_pyrofex import (
    WAIT,
    Catalog,
    WsSession,
    _book,
    _far_buy_price,
    _is_report,
    _report,
    _wait_report,
    catalog,
    rofex,
    ws,
)

pytestmark = pytest.mark.thirdparty

# The shared fixtures, one simulator for this module.
primary_sim = _h.primary_sim
pyrofex_state = _h.pyrofex_state
__all__ = ["catalog", "primary_sim", "pyrofex_state", "rofex", "ws"]


def _wait_error(ws: WsSession, pred: Any, what: str, start: int) -> dict[str, Any]:
    msg = ws.errors.wait_for(lambda m: isinstance(m, dict) and pred(m), WAIT, start)
    assert msg is not None, f"no error {what} within {WAIT}s; got: {ws.errors.items(start)!r}"
    ws.expected_errors.append(msg)
    return msg


def test_ws_order_refusals_reach_the_error_handler_and_the_socket_stays(
    rofex: PrimarySim, catalog: Catalog, ws: WsSession
) -> None:
    """An unknown product in `no` and an unknown order in `co`: Primary's REST wordings, the request
    echoed in `message`, handed to pyRofex's error handler (status ERROR); orders go on working."""
    start = len(ws.errors)
    pyRofex.send_order_via_websocket(
        ticker="NOPE/DIC99",
        size=1,
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        price=1,
        ws_client_order_id="x1",
    )
    bad_no = _wait_error(ws, lambda m: "NOPE/DIC99" in m.get("description", ""), "for the `no`", start)
    assert bad_no["description"] == "Product NOPE/DIC99:ROFX doesn't exist", bad_no
    assert '"wsClOrdId":"x1"' in bad_no["message"], bad_no
    pyRofex.cancel_order_via_websocket("nope1", proprietary="PBCP")
    bad_co = _wait_error(ws, lambda m: "nope1" in m.get("description", ""), "for the `co`", start)
    assert bad_co == {
        "status": "ERROR",
        "message": bad_co["message"],
        "description": "Order nope1:PBCP doesn't exist",
    }
    sym = catalog.future
    wid = "ok" + uuid.uuid4().hex[:10]
    before = len(ws.orders)
    pyRofex.send_order_via_websocket(
        ticker=sym, size=1, side=Side.BUY, order_type=OrderType.LIMIT, price=_far_buy_price(catalog, sym),
        ws_client_order_id=wid,
    )  # fmt: skip
    first = _wait_report(ws, lambda m: _report(m).get("wsClOrdId") == wid, f"with wsClOrdId={wid}", before)
    cid = _report(first)["clOrdId"]
    _wait_report(ws, _is_report(cid, "NEW"), f"NEW for {cid}", before)
    pyRofex.cancel_order_via_websocket(cid, proprietary=_report(first)["proprietary"])
    _wait_report(ws, _is_report(cid, "CANCELLED"), f"CANCELLED for {cid}", before)
    ws.assert_healthy()


def test_ws_cancel_of_a_filled_order_is_a_rejected_cancel_request(
    rofex: PrimarySim, catalog: Catalog, ws: WsSession
) -> None:
    sym = catalog.equity
    book = _book(sym)
    assert book.get("OF"), f"no offer to lift on {sym}: {book}"
    price = on_tick(float(book["OF"][0]["price"]) * 1.02, tick_of(catalog.detail(sym)), up=True)
    wid = "f" + uuid.uuid4().hex[:10]
    start = len(ws.orders)
    pyRofex.send_order_via_websocket(
        ticker=sym, size=1, side=Side.BUY, order_type=OrderType.LIMIT, price=price, ws_client_order_id=wid
    )
    first = _wait_report(ws, lambda m: _report(m).get("wsClOrdId") == wid, f"with wsClOrdId={wid}", start)
    cid, prop = _report(first)["clOrdId"], _report(first)["proprietary"]
    _wait_report(ws, _is_report(cid, "FILLED"), f"FILLED for {cid}", start)
    cstart = len(ws.orders)
    pyRofex.cancel_order_via_websocket(cid, proprietary=prop)
    refused = _report(_wait_report(ws, _is_report(cid, "REJECTED"), "REJECTED cancel request", cstart))
    assert refused["origClOrdId"] == cid and refused["clOrdId"] != cid and refused["text"].strip(), refused
    assert pyRofex.get_order_status(cid, proprietary=prop)["order"]["status"] == "FILLED"
    ws.assert_healthy()


def test_a_ws_order_whose_answer_is_lost_is_live_and_shown_by_rest(
    rofex: PrimarySim, catalog: Catalog, ws: WsSession
) -> None:
    sym = catalog.future
    price = _far_buy_price(catalog, sym)
    wid = "l" + uuid.uuid4().hex[:10]
    rofex.faults(lose_answers=1)
    try:
        start = len(ws.orders)
        pyRofex.send_order_via_websocket(
            ticker=sym, size=3, side=Side.BUY, order_type=OrderType.LIMIT, price=price, ws_client_order_id=wid
        )
        time.sleep(1.0)  # real time: pyRofex's socket runs on its own thread
        assert not [m for m in ws.orders.items(start) if _report(m).get("wsClOrdId") == wid]
    finally:
        rofex.faults(lose_answers=0)

    def ours(listing: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            o
            for o in listing.get("orders", [])
            if o["instrumentId"]["symbol"] == sym
            and float(o.get("price") or 0) == price
            and float(o["orderQty"]) == 3
        ]

    listing = poll_until(pyRofex.get_all_orders_status, lambda r: bool(ours(r)), 5)
    (found,) = ours(listing)
    assert found["status"] == "NEW", found
    status = pyRofex.get_order_status(found["clOrdId"], proprietary=found["proprietary"])
    assert status["order"]["status"] == "NEW", status
    assert pyRofex.cancel_order(found["clOrdId"], proprietary=found["proprietary"])["status"] == "OK"
    ws.assert_healthy()
