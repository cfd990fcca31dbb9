"""One event of every `AnyEvent` type, with the fields that make round trips hard (Decimals with
trailing zeros, None, nested levels and balances, a dict of reasons): the cluster tests publish
them through Redis and compare what comes back."""

from __future__ import annotations

from decimal import Decimal

from brokerbridge.core.events import (
    AnyEvent,
    AssetBalance,
    BalanceSnapshot,
    BalanceUpdate,
    BookSnapshot,
    BookUpdate,
    Candle,
    Fill,
    Gap,
    Instrument,
    Level,
    OptionAnalytics,
    OrderUpdate,
    Position,
    SessionStats,
    Side,
    Source,
    StreamState,
    StreamStatus,
    Ticker,
    Trade,
)

V = "kraken"
TS = 1_765_000_000.125


def every_event() -> list[AnyEvent]:
    d = Decimal
    return [
        Ticker(
            venue=V,
            ts=TS,
            symbol="BTC/USD",
            bid=d("65000.10"),
            bid_qty=d("0.500"),
            ask=None,
            ask_qty=None,
            last=d("65000.0"),
        ),
        BookSnapshot(
            venue=V,
            ts=TS,
            symbol="BTC/USD",
            depth=10,
            bids=(Level(d("65000.10"), d("1.00000000")),),
            asks=(Level(d("65001"), d("0.1")),),
            checksum=123,
        ),
        BookUpdate(venue=V, ts=TS, symbol="BTC/USD", depth=10, bids=(Level(d("65000.10"), d("0")),), asks=()),
        Trade(
            venue=V, ts=TS, symbol="BTC/USD", side=Side.BUY, price=d("65000.5"), qty=d("0.01"), trade_id="t1"
        ),
        Candle(
            venue=V,
            ts=TS,
            symbol="BTC/USD",
            interval=5,
            begin=1_765_000_000.0,
            open=d("1.0"),
            high=d("2.00"),
            low=d("0.5"),
            close=d("1.5"),
            vwap=d("1.25"),
            volume=d("10"),
            trades=3,
        ),
        SessionStats(
            venue="primary", ts=TS, symbol="GGAL - 24hs", open=d("1000.5"), trade_count=7, source=Source.REST
        ),
        Instrument(
            venue=V,
            ts=TS,
            symbol="BTC/USD",
            base="BTC",
            quote="USD",
            status="online",
            price_precision=1,
            qty_precision=8,
            price_increment=d("0.1"),
            qty_increment=d("0.00000001"),
            qty_min=d("0.0001"),
        ),
        BalanceSnapshot(
            venue=V, ts=TS, balances=(AssetBalance(asset="USD", total=d("100.00"), hold=d("1.5")),)
        ),
        BalanceUpdate(venue=V, ts=TS, asset="USD", amount=d("-1.50"), total=d("98.50"), ledger_id="L1"),
        OrderUpdate(
            venue=V, ts=TS, order_id="O1", exec_type="new", status="new", side=Side.SELL, qty=d("1.0")
        ),
        Fill(
            venue=V,
            ts=TS,
            order_id="O1",
            exec_id="E1",
            symbol="BTC/USD",
            side=Side.SELL,
            price=d("65000.0"),
            qty=d("0.5"),
            cost=d("32500.00"),
            fee=d("0.1"),
            fee_asset="USD",
            client_order_id="c-1",
        ),
        Position(venue="primary", ts=TS, account="REM1", symbol="GGAL - 24hs", qty=d("-10"), pnl=None),
        OptionAnalytics(
            venue="primary",
            ts=TS,
            symbol="GFGC1000OC",
            underlying="GGAL",
            underlying_symbol=None,
            option_type="call",
            strike=d("1000.0"),
            expiry="2026-12-18",
            model="american",
            days=11.5,
            business_days=8,
            delta=0.5,
            stale=True,
            reasons={"iv_bid": "no bid", "spot": "12 s old"},
        ),
        StreamStatus(venue=V, ts=TS, stream="kraken:ticker:BTC/USD", state=StreamState.LIVE, reconnects=2),
        Gap(
            venue=V, ts=TS, stream="kraken:book:BTC/USD:depth=10", start=1.0, end=2.5, reason="queue overflow"
        ),
    ]
