"""KrakenWsSession's trading requests: the frames it sends (token, req_id, amounts as numbers) and
how answers find their request — by req_id, or as lost when the connection ends first."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from brokerbridge.core.events import Channel, Subscription
from brokerbridge.core.signals import Subscribed
from brokerbridge.venues.kraken.messages import (
    AckResult,
    AddOrderParams,
    AmendOrderParams,
    BatchAddParams,
    BatchOrder,
    CancelAfterParams,
    CancelOrderParams,
)
from brokerbridge.venues.kraken.session import KrakenWsSession, TradingAnswer

WALL = 1_800_000_000.0
EXECUTIONS = Subscription(venue="kraken", channel=Channel.EXECUTIONS)
ADD = AddOrderParams(
    order_type="limit",
    side="buy",
    order_qty=Decimal("0.0100"),
    symbol="BTC/USD",
    limit_price=Decimal("60000.10"),
    time_in_force="ioc",
    cl_ord_id="bb0123456789abcdef",
)


def connected(token: str | None = "tok") -> tuple[KrakenWsSession, list[TradingAnswer]]:
    session = KrakenWsSession(private=True, wall_clock=lambda: WALL)
    answers: list[TradingAnswer] = []
    session.trading_listener = answers.append
    if token is not None:
        session.set_token(token)
    session.add(EXECUTIONS, 0.0)
    session.connection_made(0.0)
    session.data_to_send()  # the subscribe
    return session, answers


def sent(session: KrakenWsSession) -> list[dict[str, object]]:
    return [json.loads(frame, parse_float=Decimal) for frame in session.data_to_send()]


def test_a_request_carries_the_sessions_token_a_req_id_and_exact_numbers() -> None:
    session, _ = connected("tok-A")
    req_id = session.send_trading(ADD, 1.0)
    (frame,) = session.data_to_send()
    # Amounts are JSON numbers with the Decimal's digits (Kraken refuses strings for them).
    assert '"order_qty":0.0100' in frame and '"limit_price":60000.10' in frame
    message = json.loads(frame)
    assert message["method"] == "add_order" and message["req_id"] == req_id
    assert message["params"]["token"] == "tok-A"
    assert set(message["params"]) == {
        "token",
        "order_type",
        "side",
        "order_qty",
        "symbol",
        "limit_price",
        "time_in_force",
        "cl_ord_id",
    }
    # None fields are left out; each params type goes with its method.
    session.send_trading(AmendOrderParams(order_id="O1", limit_price=Decimal("1.5")), 1.0)
    session.send_trading(CancelOrderParams(order_id=["O1"]), 1.0)
    session.send_trading(CancelAfterParams(timeout=60), 1.0)
    batch = BatchAddParams(
        symbol="BTC/USD",
        orders=[BatchOrder(order_type="market", side="sell", order_qty=Decimal("1"))] * 2,
    )
    session.send_trading(batch, 1.0)
    frames = sent(session)
    assert [f["method"] for f in frames] == [
        "amend_order",
        "cancel_order",
        "cancel_all_orders_after",
        "batch_add",
    ]
    assert frames[0]["params"] == {"token": "tok-A", "order_id": "O1", "limit_price": Decimal("1.5")}
    assert frames[1]["params"] == {"token": "tok-A", "order_id": ["O1"]}
    assert frames[2]["params"] == {"token": "tok-A", "timeout": 60}
    assert frames[3]["params"]["orders"] == [{"order_type": "market", "side": "sell", "order_qty": 1}] * 2
    assert len({f["req_id"] for f in frames}) == 4


def test_answers_find_their_request_by_req_id_and_leave_subscriptions_alone() -> None:
    session, answers = connected()
    first = session.send_trading(ADD, 1.0)
    second = session.send_trading(CancelOrderParams(order_id=["O9"]), 1.0)
    session.receive_text(
        json.dumps(
            {"error": "EOrder:Unknown order", "method": "cancel_order", "req_id": second, "success": False}
        ),
        2.0,
    )
    session.receive_text(
        json.dumps(
            {
                "method": "add_order",
                "req_id": first,
                "result": {"order_id": "OABCDE-12345-FGHIJK"},
                "success": True,
            }
        ),
        2.0,
    )
    assert [(a.req_id, a.method) for a in answers] == [(second, "cancel_order"), (first, "add_order")]
    assert answers[0].ack is not None and not answers[0].ack.ok
    assert answers[0].ack.error_text == "EOrder:Unknown order"
    assert answers[1].ack is not None and answers[1].ack.ok
    assert (
        isinstance(answers[1].ack.result, AckResult)
        and answers[1].ack.result.order_id == "OABCDE-12345-FGHIJK"
    )
    assert session.trading_pending == 0
    # A second answer to the same req_id (Kraken's one per order of a multi-id cancel) is not ours.
    session.receive_text(json.dumps({"method": "add_order", "req_id": first, "success": True}), 3.0)
    assert len(answers) == 2
    # The subscription's own ack still reaches the subscription.
    session.receive_text(
        json.dumps(
            {"method": "subscribe", "req_id": 1, "result": {"channel": "executions"}, "success": True}
        ),
        3.0,
    )
    assert Subscribed(EXECUTIONS) in session.signals_received()


def test_requests_unanswered_when_the_connection_ends_are_reported_lost() -> None:
    session, answers = connected()
    req_id = session.send_trading(ADD, 1.0)
    session.connection_lost(2.0)
    assert answers == [
        TradingAnswer(
            req_id=req_id, method="add_order", lost="the connection was lost before Kraken answered"
        )
    ]
    assert session.trading_pending == 0
    session.connection_made(3.0)
    # An answer with that req_id on the new connection is not taken for it.
    session.receive_text(json.dumps({"method": "add_order", "req_id": req_id, "success": True}), 4.0)
    assert len(answers) == 1
    with pytest.raises(ValueError, match="not open"):
        session.connection_lost(5.0)
        session.send_trading(ADD, 5.0)
