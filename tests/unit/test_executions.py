"""ExecutionJournal: each fill reported once (by exec_id), sparse order updates merged, open orders."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from brokerbridge.core.events import Fill, OrderUpdate, Side
from brokerbridge.services.executions import ExecutionJournal

D = Decimal


def fill(
    exec_id: str, *, order_id: str = "O1", qty: str = "0.1", ts: float = 1.0, snapshot: bool = False
) -> Fill:
    return Fill(
        venue="kraken",
        ts=ts,
        order_id=order_id,
        exec_id=exec_id,
        symbol="BTC/USD",
        side=Side.BUY,
        price=D("60000.0"),
        qty=D(qty),
        cost=D("6000.0"),
        fee=D("15.6"),
        fee_asset="USD",
        snapshot=snapshot,
    )


def order(order_id: str, exec_type: str, status: str, *, ts: float = 1.0, **fields: Any) -> OrderUpdate:
    return OrderUpdate(venue="kraken", ts=ts, order_id=order_id, exec_type=exec_type, status=status, **fields)


def test_fill_is_new_once_then_a_replay() -> None:
    journal = ExecutionJournal()
    assert journal.record_fill(fill("E1")) is True
    assert journal.record_fill(fill("E1", snapshot=True, ts=9.0)) is False  # snap_trades replay
    assert journal.record_fill(fill("E2")) is True
    assert [f.exec_id for f in journal.fills()] == ["E1", "E2"]
    assert journal.fills()[0].snapshot is False  # the first report is kept


def test_fills_on_one_order_are_distinct_by_exec_id() -> None:
    journal = ExecutionJournal()
    for exec_id in ("A", "B", "C"):
        assert journal.record_fill(fill(exec_id, order_id="O9"))
    assert len(journal.fills()) == 3


def test_fill_memory_is_bounded() -> None:
    journal = ExecutionJournal(max_fills=3)
    for i in range(5):
        journal.record_fill(fill(f"E{i}"))
    assert [f.exec_id for f in journal.fills()] == ["E2", "E3", "E4"]
    assert journal.record_fill(fill("E4")) is False


def test_sparse_order_updates_are_merged() -> None:
    journal = ExecutionJournal()
    assert journal.record_order(
        order(
            "O1",
            "new",
            "new",
            symbol="BTC/USD",
            side=Side.SELL,
            order_type="limit",
            qty=D("2"),
            limit_price=D("65000.0"),
            client_order_id="mine-1",
        )
    )
    assert journal.record_order(
        order("O1", "trade", "partially_filled", cum_qty=D("0.5"), avg_price=D("65000.0"), ts=2.0)
    )
    merged = journal.orders["O1"]
    assert merged.status == "partially_filled"
    assert merged.exec_type == "trade"
    assert merged.cum_qty == D("0.5")
    assert merged.avg_price == D("65000.0")
    assert merged.ts == 2.0
    # What the sparse update did not say is kept from the first report.
    assert (merged.symbol, merged.side, merged.order_type, merged.qty, merged.limit_price) == (
        "BTC/USD",
        Side.SELL,
        "limit",
        D("2"),
        D("65000.0"),
    )
    assert merged.client_order_id == "mine-1"


def test_duplicate_order_update_is_dropped_and_changes_nothing() -> None:
    journal = ExecutionJournal()
    journal.record_order(order("O1", "new", "new", symbol="BTC/USD"))
    journal.record_order(order("O1", "trade", "partially_filled", cum_qty=D("1")))
    before = journal.orders["O1"]
    assert journal.record_order(order("O1", "new", "new", symbol="BTC/USD", snapshot=True)) is False
    assert journal.orders["O1"] == before
    # Same status but more filled is a new report.
    assert journal.record_order(order("O1", "trade", "partially_filled", cum_qty=D("1.5"))) is True
    assert journal.orders["O1"].cum_qty == D("1.5")


def test_a_report_older_than_what_is_known_is_dropped() -> None:
    """A REST read taken while the order was open, published after the stream said it was done."""
    journal = ExecutionJournal()
    journal.record_order(order("O1", "new", "new"))
    journal.record_order(order("O1", "trade", "filled", cum_qty=D("1")))
    assert journal.record_order(order("O1", "status", "new", cum_qty=D("0"), snapshot=True)) is False
    assert journal.record_order(order("O1", "canceled", "canceled")) is False  # another final status
    assert journal.orders["O1"].status == "filled" and journal.open_orders() == []
    journal.record_order(order("O2", "trade", "partially_filled", cum_qty=D("0.5")))
    assert journal.record_order(order("O2", "status", "new", snapshot=True)) is False
    assert journal.record_order(order("O2", "status", "partially_filled", cum_qty=D("0.2"))) is False
    assert journal.orders["O2"].cum_qty == D("0.5")


def test_an_order_moves_on_through_its_statuses() -> None:
    journal = ExecutionJournal()
    for exec_type, status in [
        ("pending_new", "pending_new"),
        ("new", "new"),
        ("pending_cancel", "pending_cancel"),
    ]:
        assert journal.record_order(order("O1", exec_type, status))
    assert journal.record_order(order("O1", "canceled", "canceled"))
    # A venue's own status (not in the table) counts as open: it never blocks what follows.
    assert journal.record_order(order("O2", "new", "working"))
    assert journal.record_order(order("O2", "trade", "filled", cum_qty=D("1")))
    placeholder = unknown(journal)
    assert journal.record_order(order(placeholder.order_id, "reconciled", "resolved"))


def test_open_orders() -> None:
    journal = ExecutionJournal()
    journal.record_order(order("A", "pending_new", "pending_new"))
    journal.record_order(order("B", "new", "new"))
    journal.record_order(order("C", "new", "new"))
    journal.record_order(order("C", "trade", "partially_filled", cum_qty=D("0.1")))
    journal.record_order(order("D", "new", "new"))
    journal.record_order(order("D", "trade", "filled", cum_qty=D("1")))
    journal.record_order(order("E", "new", "new"))
    journal.record_order(order("E", "canceled", "canceled", reason="User requested"))
    assert sorted(o.order_id for o in journal.open_orders()) == ["A", "B", "C"]
    assert journal.orders["E"].reason == "User requested"
    assert journal.orders["D"].status == "filled"


def unknown(
    journal: ExecutionJournal, *, ts: float = 100.0, client_order_id: str | None = None
) -> OrderUpdate:
    update = journal.record_unknown(
        venue="kraken",
        ts=ts,
        symbol="BTC/USD",
        side=Side.BUY,
        order_type="limit",
        qty=D("0.1"),
        limit_price=D("60000.0"),
        client_order_id=client_order_id,
        reason="submit unanswered: timed out",
    )
    journal.record_order(update)
    return update


def venue_order(order_id: str, *, ts: float, qty: str = "0.1", **fields: Any) -> OrderUpdate:
    return order(
        order_id,
        "status",
        "new",
        ts=ts,
        symbol="BTC/USD",
        side=Side.BUY,
        qty=D(qty),
        limit_price=D("60000.0"),
        **fields,
    )


def test_an_unanswered_submit_is_unknown_and_open_until_settled() -> None:
    journal = ExecutionJournal()
    placeholder = unknown(journal)
    assert placeholder.status == "unknown" and placeholder.order_id == "unknown:1"
    assert [o.order_id for o in journal.open_orders()] == ["unknown:1"]
    assert journal.unknown_orders() == [placeholder]


def test_settling_finds_the_order_the_venue_booked_after_the_submit() -> None:
    journal = ExecutionJournal()
    unknown(journal, ts=100.0)
    older = venue_order("OLD-1", ts=50.0)  # same shape, but booked before we sent ours
    other = venue_order("BIG-1", ts=101.0, qty="0.2")
    ours = venue_order("OURS-1", ts=101.5)
    (update,) = journal.settle_unknown([older, other, ours], ts=102.0, give_up_before=50.0)
    assert (update.order_id, update.status, update.exec_type) == ("unknown:1", "resolved", "reconciled")
    assert update.reason is not None and "OURS-1" in update.reason
    assert journal.unknown_orders() == []
    journal.record_order(update)
    assert journal.open_orders() == []  # the venue's order carries on under its own id


def test_settling_without_a_match_rejects_it_as_never_arrived() -> None:
    journal = ExecutionJournal()
    unknown(journal, ts=100.0)
    assert journal.settle_unknown([venue_order("OLD-1", ts=50.0)], ts=102.0, give_up_before=42.0) == []
    assert journal.unknown_orders() != []  # too young to give up on: it may still be in flight
    (update,) = journal.settle_unknown([venue_order("OLD-1", ts=50.0)], ts=170.0, give_up_before=110.0)
    assert update.status == "rejected" and update.reason is not None and "safe to resend" in update.reason


def test_each_venue_order_settles_one_submit_and_client_ids_match_exactly() -> None:
    journal = ExecutionJournal()
    unknown(journal, ts=100.0)
    unknown(journal, ts=100.2)
    unknown(journal, ts=100.4, client_order_id="mine-7")
    orders = [
        venue_order("A", ts=101.0),
        venue_order("C", ts=101.0, client_order_id="mine-7"),
    ]
    decided = {u.order_id: u for u in journal.settle_unknown(orders, ts=103.0, give_up_before=101.0)}
    assert decided["mine-7"].status == "resolved" and "C" in (decided["mine-7"].reason or "")
    assert decided["unknown:1"].status == "resolved" and "order A" in (decided["unknown:1"].reason or "")
    assert decided["unknown:2"].status == "rejected"  # A was claimed already; C belongs to mine-7


def test_a_venue_that_does_not_echo_client_ids_matches_by_shape_and_skips_answered_orders() -> None:
    journal = ExecutionJournal()
    journal.record_order(
        journal.record_unknown(
            venue="primary",
            ts=100.0,
            symbol="BTC/USD",
            side=Side.BUY,
            order_type="limit",
            qty=D("0.1"),
            limit_price=D("60000.0"),
            client_order_id="bb-1",
            reason="submit unanswered: timed out",
            venue_echoes_client_id=False,
        )
    )
    # The venue names its own client id; "ANSWERED" is an order whose submit was answered.
    answered = venue_order("ANSWERED", ts=100.5, client_order_id="ANSWERED")
    ours = venue_order("OURS", ts=101.0, client_order_id="OURS")
    (decided,) = journal.decide_unknown(
        [answered, ours], ts=102.0, give_up_before=50.0, taken=frozenset({"ANSWERED"})
    )
    assert (decided.update.order_id, decided.update.status, decided.order_id) == ("bb-1", "resolved", "OURS")
