"""ClosedOrderLog: where each ClosedOrders read starts, and since when every closed order is known."""

from __future__ import annotations

from brokerbridge.core.events import OrderUpdate
from brokerbridge.io.kraken.closed_orders import ClosedOrderLog

MARGIN = 5.0


def closed(order_id: str, ts: float) -> OrderUpdate:
    return OrderUpdate(venue="kraken", ts=ts, order_id=order_id, exec_type="status", status="filled")


def ids(orders: list[OrderUpdate]) -> set[str]:
    return {o.order_id for o in orders}


def test_a_first_read_of_the_newest_page_covers_back_to_its_oldest_order_only() -> None:
    log = ClosedOrderLog(margin=MARGIN)
    assert log.start(None) is None  # the newest page
    log.read([closed("B", 120.0), closed("C", 130.0)], start=None, complete=False)
    assert log.covered_from == 120.0
    # An order closed at 100 may be on an older page: a caller needing it reads back there.
    assert log.start(100.0) == 100.0 - MARGIN
    assert log.start(None) == 130.0 - MARGIN  # nobody needs more: after the newest read
    assert log.start(125.0) == 130.0 - MARGIN  # covered already


def test_a_read_back_to_a_reach_covers_from_it_and_keeps_the_orders_for_later_callers() -> None:
    log = ClosedOrderLog(margin=MARGIN)
    log.read([closed("B", 120.0), closed("C", 130.0)], start=None, complete=False)
    log.read([closed("A", 101.0), closed("B", 120.0), closed("C", 130.0)], start=95.0, complete=True)
    assert log.covered_from == 100.0
    # Reads after carry on from the newest order; what an earlier read took stays known.
    assert log.start(100.0) == 130.0 - MARGIN
    log.read([closed("D", 140.0)], start=125.0, complete=True)
    assert log.covered_from == 100.0
    assert ids(log.since(100.0)) == {"A", "B", "C", "D"}
    assert ids(log.since(135.0)) == {"D"}


def test_pages_that_stop_short_break_the_cover() -> None:
    log = ClosedOrderLog(margin=MARGIN)
    log.read([closed("A", 100.0)], start=None, complete=True)
    assert log.covered_from == 0.0  # the whole history fit on the page
    log.read([closed("Y", 190.0), closed("Z", 200.0)], start=95.0, complete=False)
    assert log.covered_from == 190.0  # what closed between 100 and 190 was not all read
    assert log.start(150.0) == 150.0 - MARGIN


def test_orders_long_closed_are_dropped_and_the_cover_moves_up() -> None:
    log = ClosedOrderLog(margin=MARGIN, keep_s=60.0)
    log.read([closed("A", 100.0)], start=95.0, complete=True)
    log.read([closed("B", 200.0)], start=95.0, complete=True)
    assert ids(log.since(0.0)) == {"B"}
    assert log.covered_from == 140.0
    assert log.start(120.0) == 120.0 - MARGIN  # read back again when someone needs it
