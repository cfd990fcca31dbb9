"""Wire → core.events, for WebSocket frames and the REST polling fallback (same events)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from brokerbridge.core.events import Fill, OrderUpdate, Side, Source
from brokerbridge.venues.kraken import messages as m
from brokerbridge.venues.kraken import normalize as n
from brokerbridge.venues.kraken.rest import parse_result

RECEIVED = 1_800_000_000.0


def ws(kraken_dir: Path, name: str, line: int = 0) -> m.WsFrame:
    return m.parse_ws_frame((kraken_dir / name).read_text().splitlines()[line])


def rest(kraken_dir: Path, name: str, method: str) -> object:
    return parse_result(200, (kraken_dir / name).read_bytes(), method)


def test_asset_and_symbol_names() -> None:
    kraken_ids = ("XXBT", "ZUSD", "XETH", "XXRP", "XXDG", "SOL", "ATOM.S", "XBT.M")
    assert [n.normalize_asset(a) for a in kraken_ids] == [
        "BTC",
        "USD",
        "ETH",
        "XRP",
        "DOGE",
        "SOL",
        "ATOM.S",
        "BTC.M",
    ]
    fallback = n.SymbolMap()
    assert fallback.to_ws("XXBTZUSD") == "BTC/USD"
    assert fallback.to_ws("ATOMUSD") == "ATOM/USD"
    assert fallback.to_ws("XBT/USD") == "BTC/USD"


def test_symbol_map_from_asset_pairs(kraken_dir: Path) -> None:
    pairs = rest(kraken_dir, "http_assetpairs_2026.json", "AssetPairs")
    symbols = n.SymbolMap(pairs)  # type: ignore[arg-type]
    assert symbols.to_ws("XXBTZUSD") == "BTC/USD"
    assert symbols.to_ws("XBTUSD") == "BTC/USD"
    assert symbols.to_ws("XDGUSD") == "DOGE/USD"
    assert symbols.to_ws("XXRPZUSD") == "XRP/USD"
    assert symbols.to_rest("BTC/USD") == "XXBTZUSD"
    assert symbols.to_rest("ETH/USD") == "XETHZUSD"


def test_ws_ticker_trade_candle(kraken_dir: Path) -> None:
    ticker_frame = ws(kraken_dir, "ws_ticker_snapshot_btcusd.json")
    assert isinstance(ticker_frame, m.TickerFrame)
    ticker = n.ticker_from_ws(ticker_frame.data[0], received=RECEIVED)
    assert ticker.ts == RECEIVED  # 2024 tickers carry no timestamp
    assert str(ticker.bid_qty) == "0.10000000" and ticker.change_pct == Decimal("7.17")
    trade_frame = ws(kraken_dir, "ws_trade_update_btcusd.json")
    assert isinstance(trade_frame, m.TradeFrame)
    trade = n.trade_from_ws(trade_frame.data[1])
    assert (trade.side, trade.trade_id, str(trade.qty)) == (Side.BUY, "70635300", "0.00483192")
    assert trade.ts == 1716813791.798009
    ohlc = ws(kraken_dir, "ws_ohlc_snapshot_ethusd.json")
    assert isinstance(ohlc, m.OhlcFrame)
    candle = n.candle_from_ws(ohlc.data[0])
    assert candle.begin == 1715944320.0 and candle.ts == 1715944380.0
    assert str(candle.open) == "3027.80" and candle.trades == 9


def test_ws_instruments(kraken_dir: Path) -> None:
    frame = ws(kraken_dir, "ws_instrument_snapshot.json")
    assert isinstance(frame, m.InstrumentFrame)
    eth_btc = n.instruments_from_ws(frame.data, received=RECEIVED)[1]
    assert (eth_btc.symbol, eth_btc.base, eth_btc.quote) == ("ETH/BTC", "ETH", "BTC")
    assert format(eth_btc.qty_increment, "f") == "0.00000001" and str(eth_btc.qty_min) == "0.00200000"
    assert eth_btc.price_increment == Decimal("0.00001")


def test_ws_executions(kraken_dir: Path) -> None:
    snap = ws(kraken_dir, "ws_executions_snapshot_trades.json")
    assert isinstance(snap, m.ExecutionsFrame)
    fill = n.execution_from_ws(snap.data[0], snapshot=True, received=RECEIVED)
    assert isinstance(fill, Fill) and fill.snapshot
    assert (fill.order_id, fill.exec_id, fill.symbol, fill.side) == (
        "NG6PUE-C7MXN-CFCAMC", "B1Y0D9-6JIJG-W1IB7L", "BTC/USD", Side.SELL,
    )  # fmt: skip
    assert (str(fill.qty), fill.price, fill.fee, fill.fee_asset, fill.liquidity) == (
        "0.00016000", Decimal("63377.2"), Decimal("0.04051"), "USD", "t",
    )  # fmt: skip
    canceled = ws(kraken_dir, "ws_executions_updates.jsonl", 2)
    assert isinstance(canceled, m.ExecutionsFrame)
    update = n.execution_from_ws(canceled.data[0], snapshot=False, received=RECEIVED)
    assert isinstance(update, OrderUpdate)
    assert (update.status, update.exec_type, update.reason, update.symbol) == (
        "canceled", "canceled", "User requested", None,
    )  # fmt: skip


def test_ws_balances(kraken_dir: Path) -> None:
    snap = ws(kraken_dir, "ws_balances_snapshot.json")
    assert isinstance(snap, m.BalancesSnapshotFrame)
    balances = n.balance_snapshot_from_ws(snap.data, received=RECEIVED)
    assert [(b.asset, str(b.total)) for b in balances.balances][-1] == ("USD", "160.2405")
    upd = ws(kraken_dir, "ws_balances_update_usd.json")
    assert isinstance(upd, m.BalancesUpdateFrame)
    event = n.balance_update_from_ws(upd.data[0], received=RECEIVED)
    assert (event.asset, event.amount, event.total, event.ref_id) == (
        "USD", Decimal("-19.9743"), Decimal("118.0677"), "LKAKN2-N0N12-VKQNLN",
    )  # fmt: skip


def test_rest_ticker_and_depth(kraken_dir: Path) -> None:
    symbols = n.SymbolMap(rest(kraken_dir, "http_assetpairs.json", "AssetPairs"))  # type: ignore[arg-type]
    tickers = rest(kraken_dir, "http_ticker.json", "Ticker")
    assert isinstance(tickers, dict)
    ticker = n.ticker_from_rest("XXBTZUSD", tickers["XXBTZUSD"], symbols=symbols, received=RECEIVED)
    assert (ticker.symbol, ticker.source) == ("BTC/USD", Source.REST)
    assert (str(ticker.bid), str(ticker.ask), str(ticker.last)) == (
        "40228.40000",
        "40228.50000",
        "40228.50000",
    )
    assert ticker.volume == Decimal("2778.46672440") and ticker.change is None
    depth = rest(kraken_dir, "http_depth_xbtusd.json", "Depth")
    assert isinstance(depth, dict)
    book = n.book_from_rest("XXBTZUSD", depth["XXBTZUSD"], depth=10, symbols=symbols, received=RECEIVED)
    assert (book.symbol, len(book.bids), len(book.asks)) == ("BTC/USD", 10, 10)
    assert str(book.bids[0].price) == "37221.00000" and str(book.asks[0].price) == "37221.10000"
    assert book.bids[0].price > book.bids[1].price and book.ts == 1701023454.0


def test_rest_balances_orders_fills(kraken_dir: Path) -> None:
    entries = rest(kraken_dir, "http_balanceex.json", "BalanceEx")
    snap = n.balances_from_rest(entries, received=RECEIVED)  # type: ignore[arg-type]
    by_asset = {b.asset: b for b in snap.balances}
    assert by_asset["BTC"].total == Decimal("0.0022698000") and by_asset["USD"].hold == Decimal("0.0000")
    assert by_asset["ATOM"].hold == Decimal("3.92433600") and "ATOM.S" in by_asset and "XXBT" not in by_asset
    orders = rest(kraken_dir, "http_openorders.json", "OpenOrders")
    updates = n.orders_from_rest(orders.open, symbols=n.SymbolMap())  # type: ignore[attr-defined]
    first = updates[0]
    assert (first.order_id, first.symbol, first.side, first.status, first.snapshot) == (
        "604X4L-ANXHT-JV0ZQT", "ATOM/ETH", Side.SELL, "new", True,
    )  # fmt: skip
    assert first.limit_price == Decimal("0.008770") and first.client_order_id == "some-uuid"
    history = rest(kraken_dir, "http_tradeshistory.json", "TradesHistory")
    fills = n.fills_from_rest(history.trades, symbols=n.SymbolMap())  # type: ignore[attr-defined]
    assert [f.ts for f in fills] == sorted(f.ts for f in fills)
    eth = next(f for f in fills if f.exec_id == "VN6IJE-7BQX2-YXRLGM")
    assert (eth.symbol, eth.side, str(eth.qty), eth.liquidity, eth.trade_id) == (
        "ETH/USD", Side.BUY, "0.01200000", "m", "46006064",
    )  # fmt: skip


def test_rest_ohlc_and_trades(kraken_dir: Path) -> None:
    ohlc = rest(kraken_dir, "http_ohlc_xbtusdt_2025.json", "OHLC")
    candles = n.candles_from_rest(ohlc, interval=1, symbols=n.SymbolMap())  # type: ignore[arg-type]
    assert len(candles) == 721 and candles[0].symbol == "BTC/USDT"
    assert candles[0].vwap == Decimal("0.0") and candles[0].trades == 0
    trades = rest(kraken_dir, "http_trades_xbtusd.json", "Trades")
    events = n.trades_from_rest(trades, symbols=n.SymbolMap())  # type: ignore[arg-type]
    assert trades.last == "1701023458860710717"  # type: ignore[attr-defined]
    assert (events[0].symbol, events[0].side, events[0].order_type, events[0].trade_id) == (
        "BTC/USD", Side.BUY, "limit", "64754585",
    )  # fmt: skip
