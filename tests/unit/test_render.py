"""`watch` lines: plain digits, no emoji shortcodes eaten, every event kind renders."""

from __future__ import annotations

from decimal import Decimal

from brokerbridge.cli.render import render
from brokerbridge.core.events import (
    BalanceUpdate,
    BookUpdate,
    Fill,
    Gap,
    Level,
    Side,
    StreamState,
    StreamStatus,
)


def test_zero_quantities_print_as_digits_not_exponents() -> None:
    update = BookUpdate(
        venue="kraken",
        ts=0.0,
        symbol="BTC/USD",
        depth=10,
        bids=(Level(Decimal("63500.1"), Decimal("0E-8")),),
        asks=(),
    )
    assert "b 63500.1×0.00000000" in render(update)


def test_other_kinds_render_their_key_facts() -> None:
    status = StreamStatus(
        venue="kraken", ts=0.0, stream="kraken:book:BTC/USD:depth=10", state=StreamState.LIVE
    )
    assert "kraken:book:BTC/USD:depth=10: live" in render(status)
    gap = Gap(
        venue="kraken", ts=0.0, stream="kraken:trades:BTC/USD", start=0.0, end=1.5, reason="stream was down"
    )
    assert "gap" in render(gap) and "stream was down" in render(gap)
    move = BalanceUpdate(
        venue="kraken", ts=0.0, asset="USD", amount=Decimal("-19.9743"), total=Decimal("118.0677")
    )
    assert "USD -19.9743 → 118.0677" in render(move)
    fill = Fill(
        venue="kraken",
        ts=0.0,
        order_id="O1",
        exec_id="T1",
        symbol="BTC/USD",
        side=Side.BUY,
        price=Decimal("63500.1"),
        qty=Decimal("0.01000000"),
        cost=Decimal("635.001"),
        fee=Decimal("1.65"),
        fee_asset="USD",
    )
    assert "fill" in render(fill) and "0.01000000 BTC/USD @ 63500.1" in render(fill)
