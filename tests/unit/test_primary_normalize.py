"""Primary normalization outside the session: REST market data, risk endpoints, catalogue."""

from __future__ import annotations

import os
import random
from datetime import date
from decimal import Decimal
from pathlib import Path

import msgspec

from brokerbridge.core.events import AssetBalance, BookSnapshot, Level, SessionStats, Source, Ticker, Trade
from brokerbridge.venues.primary import catalog as cat
from brokerbridge.venues.primary import normalize as norm
from brokerbridge.venues.primary import rest
from brokerbridge.venues.primary import rest_messages as rm
from brokerbridge.venues.primary.messages import MarketData, PriceSize, check_market_data


def fixture_dir() -> Path:
    env = os.environ.get("BROKERBRIDGE_FIXTURES")
    if env:
        return Path(env) / "primary"
    return Path(__file__).parents[1] / "fixtures" / "primary"


def details() -> list[rm.InstrumentDetailWire]:
    raw = (fixture_dir() / "http_instruments_details_subset.json").read_bytes()
    return msgspec.json.decode(raw, type=list[rm.InstrumentDetailWire])


# ---------------------------------------------------------------- REST market data


def test_rest_market_data_gives_the_socket_events_with_source_rest() -> None:
    response = rest.parse_response(
        "rest/marketdata/get", 200, {}, (fixture_dir() / "http_marketdata_get.json").read_bytes()
    )
    trades = norm.TradeTracker()
    events = norm.events_from_market_data(
        "RFX20Dic19", response.marketData, ticker=True, book_depths=[1], stats=True, trades=trades, ts=5.0
    )
    ticker, book, stats = events
    assert isinstance(ticker, Ticker) and ticker.source is Source.REST
    assert (ticker.bid, ticker.bid_qty, ticker.ask, ticker.ask_qty, ticker.last) == (
        Decimal(45465),
        Decimal(4),
        Decimal(45730),
        Decimal(1),
        Decimal(45465),
    )
    assert isinstance(book, BookSnapshot) and book.bids == (Level(Decimal(45465), Decimal(4)),)
    assert isinstance(stats, SessionStats) and stats.open is None
    # A later poll with a new LA yields one Trade.
    later = msgspec.json.decode(
        b'{"LA":{"price":45500,"size":2,"date":1571491999000},"BI":[],"OF":[]}', type=norm.MarketData
    )
    (trade,) = [e for e in norm.events_from_market_data("RFX20Dic19", later, trades=trades, ts=6.0)]
    assert isinstance(trade, Trade) and (trade.price, trade.qty, trade.ts) == (
        Decimal(45500),
        Decimal(2),
        1571491999.0,
    )


def test_rest_market_data_all_null() -> None:
    response = rest.parse_response(
        "rest/marketdata/get",
        200,
        {},
        (fixture_dir() / "http_marketdata_get_empty_entries.json").read_bytes(),
    )
    ticker, book, stats = norm.events_from_market_data(
        "X", response.marketData, ticker=True, book_depths=[5], stats=True, ts=1.0
    )
    assert isinstance(ticker, Ticker) and (ticker.bid, ticker.ask, ticker.last) == (None, None, None)
    assert isinstance(book, BookSnapshot) and book.bids == () and book.asks == ()
    assert isinstance(stats, SessionStats) and stats.open_interest is None


def test_transact_time() -> None:
    assert norm.parse_transact_time("20220516-11:47:02.226-0300") == 1652712422.226
    assert norm.parse_transact_time("20160304-17:37:35") == 1457123855.0  # Buenos Aires time assumed
    assert norm.parse_transact_time("garbage") is None and norm.parse_transact_time(None) is None


# ---------------------------------------------------------------- risk


def test_positions() -> None:
    response = rest.parse_response(
        "rest/risk/position/getPositions/12345",
        200,
        {},
        '{"status":"OK","positions":[{"instrument":{"symbolReference":"GFGC65452G","settlType":1},'
        '"symbol":"MERV - XMEV - GFGC65452G - 24hs","buySize":2.0,"buyPrice":442.488,"sellSize":0.0,'
        '"sellPrice":0.0,"totalDailyDiff":-10,"totalDiff":-20.5}]}',
    )
    (position,) = norm.positions_from_rest(response.positions, account="12345", ts=1.0)
    assert (
        position.symbol,
        position.qty,
        position.buy_qty,
        position.buy_price,
        position.sell_price,
        position.pnl,
    ) == (
        "MERV - XMEV - GFGC65452G - 24hs",
        Decimal("2.0"),
        Decimal("2.0"),
        Decimal("442.488"),
        None,
        Decimal("-20.5"),
    )


def test_account_report_balances() -> None:
    response = rest.parse_response(
        rest.account_report_request("REM1"),
        200,
        {},
        '{"status":"OK","accountData":{"accountName":"REM1","marketMember":"MM","collateral":0,"margin":0,'
        '"detailedAccountReports":{'
        '"1":{"currencyBalance":{"detailedCurrencyBalance":{"ARS":{"consumed":0,"available":999}}}},'
        '"0":{"currencyBalance":{"detailedCurrencyBalance":{"ARS":{"consumed":250.5,"available":1000000},'
        '"USD D":{"consumed":0,"available":150.25}}},'
        '"availableToOperate":{"cash":{"totalCash":1,"detailedCash":{"ARS":1000250.5,"EUR":3}},"total":5},'
        '"settlementDate":1}},"hasError":false,"lastCalculation":1700000000000}}',
    )
    snapshot = norm.balance_snapshot_from_report(response.accountData, ts=9.0)
    assert snapshot.source is Source.REST and snapshot.ts == 1_700_000_000.0
    assert snapshot.balances == (
        AssetBalance(asset="ARS", total=Decimal("1000250.5"), hold=Decimal("250.5")),
        AssetBalance(asset="USD D", total=Decimal("150.25"), hold=Decimal(0)),
        AssetBalance(asset="EUR", total=Decimal(3)),
    )
    empty = norm.balance_snapshot_from_report(rm.AccountData(), ts=9.0)
    assert empty.balances == () and empty.ts == 9.0


# ---------------------------------------------------------------- catalogue


def test_catalog_filters_by_cfi_and_kind() -> None:
    catalog = cat.Catalog.from_wire(details())
    assert len(catalog) == 20
    stocks = {d.ticker for d in catalog.stocks()}
    assert stocks == {"GGAL", "YPFD", "PAMP", "IRSA"}
    assert {d.symbol for d in catalog.by_cfi("ocasps")} == {
        "MERV - XMEV - GFGC82777F - 24hs",
        "MERV - XMEV - GFGC4500DI - 24hs",
    }
    assert {d.ticker for d in catalog.by_cfi("OPASPS")} == {"GFGV38781D", "GFGV2900DI", "TRAV2600DI"}
    assert {d.ticker for d in catalog.bonds()} == {"AL30", "AL30D", "AE38C", "VSCVD"}
    assert [d.symbol for d in catalog.futures()] == ["DLR/FEB26", "ORO/MAR26"]
    assert [d.symbol for d in catalog.by_kind(cat.Kind.SPREAD)] == ["DLR/ENE26/FEB26"]
    (caucion,) = catalog.cauciones()
    assert (caucion.ticker, caucion.settlement, caucion.currency, caucion.times_in_force) == (
        "DOLAR",
        "136D",
        "USD",
        ("GTD", "DAY", "GTC"),
    )
    assert [d.symbol for d in catalog.by_kind(cat.Kind.CEDEAR)] == ["MERV - XMEV - XLC - CI"]
    assert [d.symbol for d in catalog.by_kind(cat.Kind.INDEX)] == ["I.BTC"]


def test_detail_fields() -> None:
    catalog = cat.Catalog.from_wire(details())
    call = catalog.get("MERV - XMEV - GFGC82777F - 24hs")
    assert call is not None
    assert (call.option_type, call.strike, call.maturity, call.tick, call.lot, call.settlement) == (
        cat.OptionType.CALL,
        Decimal("8277.7"),
        date(2026, 2, 20),
        Decimal("0.001"),
        Decimal("100.0"),
        "24hs",
    )
    al30 = catalog.get("MERV - XMEV - AL30 - 24hs")
    assert (
        al30 is not None
        and al30.price_conversion_factor == Decimal("0.01")
        and al30.maturity == date(2030, 7, 9)
    )
    future = catalog.get("DLR/FEB26")
    assert future is not None and (future.segment, future.contract_multiplier, future.settlement) == (
        "DDF",
        Decimal("1000.0"),
        None,
    )
    agro = catalog.get("SOJ.ROS/JUL26 312 C")
    assert agro is not None and (agro.underlying, agro.option_type, agro.strike) == (
        "SOJ.ROS/JUL26",
        cat.OptionType.CALL,
        Decimal("312.0"),
    )


def test_option_chain_by_ticker_text_and_expiry() -> None:
    catalog = cat.Catalog.from_wire(details())
    chain = catalog.option_chain("GGAL")
    assert [(strike, c.ticker if c else None, p.ticker if p else None) for strike, c, p in chain] == [
        (Decimal("2900.0"), None, "GFGV2900DI"),
        (Decimal("3878.1"), None, "GFGV38781D"),
        (Decimal("4500.0"), "GFGC4500DI", None),
        (Decimal("8277.7"), "GFGC82777F", None),
    ]
    assert catalog.expiries("GGAL") == [date(2025, 12, 19), date(2026, 2, 20)]
    december = catalog.option_chain("Grupo Financiero Galicia Merval", expiry=date(2025, 12, 19))
    assert [s for s, _, _ in december] == [Decimal("2900.0"), Decimal("3878.1"), Decimal("4500.0")]
    assert [s for s, _, _ in catalog.option_chain("SOJ.ROS/JUL26")] == [Decimal("312.0")]
    assert catalog.option_chain("NOPE") == []


def test_search_and_instrument_events_and_cache_round_trip() -> None:
    catalog = cat.Catalog.from_wire(details())
    assert [d.symbol for d in catalog.search("galicia", settlement="24hs") if d.kind is cat.Kind.STOCK] == [
        "MERV - XMEV - GGAL - 24hs"
    ]
    assert {d.symbol for d in catalog.search(segment="DUAL")} == {"ORO/MAR26", "I.BTC"}
    ggal = catalog.get("MERV - XMEV - GGAL - 24hs")
    assert ggal is not None
    event = cat.instrument_event(ggal, ts=1.0)
    assert (
        event.symbol,
        event.base,
        event.quote,
        event.price_increment,
        event.qty_min,
        event.price_precision,
    ) == (
        "MERV - XMEV - GGAL - 24hs",
        "GGAL",
        "ARS",
        Decimal("5.0"),
        Decimal(1),
        2,
    )
    again = cat.decode_catalog(cat.encode_catalog(catalog))
    assert list(again) == list(catalog)


def test_instruments_all_rows() -> None:
    raw = (fixture_dir() / "http_instruments_all_subset.json").read_bytes()
    rows = msgspec.json.decode(raw, type=list[rm.InstrumentRow])
    catalog = cat.Catalog(cat.detail_from_row(r) for r in rows)
    assert len(catalog) == 24
    assert {d.symbol for d in catalog.by_kind(cat.Kind.INDEX)} == {
        "MERV - XMEV - I.MERVAL",
        "I.RFX20",
        "DLR/SPOT",
    }
    merval = catalog.get("MERV - XMEV - I.MERVAL")
    assert merval is not None and (merval.ticker, merval.settlement) == ("I.MERVAL", None)
    assert {d.option_type for d in catalog.options()} == {cat.OptionType.CALL, cat.OptionType.PUT}
    assert cat.split_symbol("MERV - XMEV - PESOS - 131D") == ("PESOS", "131D")


def test_out_of_order_reports_never_move_an_order_back_and_missed_fills_are_priced_from_the_average() -> None:
    from decimal import Decimal as D

    from brokerbridge.core.events import Fill as F
    from brokerbridge.core.events import OrderUpdate as OU
    from brokerbridge.venues.primary.messages import InstrumentId, OrderReport
    from brokerbridge.venues.primary.normalize import OrderTracker

    def report(status: str, cum: str, avg: str, last_px: str, last_qty: str) -> OrderReport:
        return OrderReport(
            clOrdId="c1",
            instrumentId=InstrumentId(marketId="ROFX", symbol="DLR/DIC26"),
            side="BUY",
            orderQty=D(30),
            status=status,
            cumQty=D(cum),
            avgPx=D(avg),
            lastPx=D(last_px),
            lastQty=D(last_qty),
        )

    tracker = OrderTracker()
    first = tracker.events(report("PARTIALLY_FILLED", "10", "100", "100", "10"), ts=1.0)
    assert [e.qty for e in first if isinstance(e, F)] == [D(10)]
    # The report for the second 10 (at 110) was missed; this one (10 at 120) brings the average to
    # 110 over 30: the 20 since the last report seen traded at 115 on average.
    third = tracker.events(report("FILLED", "30", "110", "120", "10"), ts=3.0)
    (fill,) = [e for e in third if isinstance(e, F)]
    assert fill.qty == D(20) and fill.price == D(115)
    # A stale read (taken before the fill) arrives late: no step back to partially filled.
    late = tracker.events(report("PARTIALLY_FILLED", "10", "100", "100", "10"), ts=2.0)
    assert [e for e in late if isinstance(e, OU)] == [] and [e for e in late if isinstance(e, F)] == []


def test_rest_order_fixtures_decode_into_order_events_and_one_fill() -> None:
    from brokerbridge.core.events import Fill, OrderUpdate, Side

    tracker = norm.OrderTracker()
    listing = rest.parse_response(
        "rest/order/all", 200, None, (fixture_dir() / "http_order_all.json").read_bytes()
    )
    (update,) = tracker.events(listing.orders[0], ts=0.0, snapshot=True)
    assert isinstance(update, OrderUpdate)
    assert (update.order_id, update.status, update.side, update.qty, update.limit_price) == (
        "310059219481980",
        "new",
        Side.BUY,
        Decimal(1),
        Decimal(47000),
    )
    assert update.symbol == "RFX20Dic19" and update.snapshot
    # The same order read again by id, now with its fill: the update plus exactly one Fill.
    status = rest.parse_response(
        "rest/order/id", 200, None, (fixture_dir() / "http_order_status.json").read_bytes()
    )
    events = tracker.events(status.order, ts=0.0)
    fills = [e for e in events if isinstance(e, Fill)]
    assert len(fills) == 1 and fills[0].qty == Decimal(1) and fills[0].price == Decimal(45730)
    assert fills[0].exec_id == "T4890257" and fills[0].order_id == "310059219481980"
    # Reading it again adds no second fill (the bridge's journal drops the repeated update).
    assert not [e for e in tracker.events(status.order, ts=1.0) if isinstance(e, Fill)]


def test_checked_levels_are_the_valid_levels_or_leave_the_verdict_to_the_exact_check() -> None:
    """The session's one-loop check and level building: when it accepts a side, its levels are
    `valid_levels` and the exact check passes too; it refuses every side the exact check refuses
    (and rows without price or size, which it leaves to `valid_levels`)."""
    rng = random.Random(3)
    specials = ["0", "-1", "0E-50", "1E-40", "9.99E+40", "1E+41", '"NaN"', '"Infinity"', "null", "1.50"]
    checked = refused = 0
    for _ in range(3000):
        rows = [
            {
                "price": rng.choice([*specials, str(rng.randint(1, 10**6))]),
                "size": rng.choice([*specials, f"{rng.randint(1, 999)}.{rng.randint(0, 99)}"]),
            }
            for _ in range(rng.randint(0, 4))
        ]
        text = "[" + ",".join('{"price":%s,"size":%s}' % (r["price"], r["size"]) for r in rows) + "]"  # noqa: UP031
        side = msgspec.json.decode(text, type=list[PriceSize])
        levels = norm.checked_levels(side)
        try:
            check_market_data(MarketData(BI=side))
            sane = True
        except ValueError:
            sane = False
        if levels is None:
            refused += 1
            continue
        checked += 1
        assert sane and levels == norm.valid_levels(side), text
        assert [str(lv.price) for lv in levels] == [str(r.price) for r in side]  # the digits as sent
    assert checked > 300 and refused > 300
    assert norm.checked_levels(None) == () and norm.checked_levels(msgspec.UNSET) == ()
    assert norm.top_of([PriceSize(size=Decimal(1)), PriceSize(price=Decimal(2))]) == (Decimal(2), None)


def test_trade_id_spells_the_numbers_as_sent() -> None:
    tracker = norm.TradeTracker()
    last = msgspec.json.decode(b'{"LA":{"price":1E+2,"size":0.10,"date":5}}', type=norm.MarketData)
    first = msgspec.json.decode(b'{"LA":{"price":7,"size":1,"date":4}}', type=norm.MarketData)
    assert tracker.observe("X", first, ts=1.0) is None  # the first LA is a baseline
    trade = tracker.observe("X", last, ts=1.0)
    assert trade is not None and trade.trade_id == "5:1E+2:0.10" == f"5:{Decimal('1E+2')}:{Decimal('0.10')}"


def test_strike_read_from_strike_price_where_strike_is_absent() -> None:
    def detail(body: str) -> cat.InstrumentDetail:
        wire = msgspec.json.decode(
            '{"instrumentId": {"marketId": "ROFX", "symbol": "MERV - XMEV - GFGC7000DI - 24hs"},'
            f' "cficode": "OCASPS", {body}}}',
            type=rm.InstrumentDetailWire,
        )
        return cat.detail_from_wire(wire)

    assert detail('"strikePrice": 7000.0').strike == Decimal("7000.0")
    assert detail('"strike": 8277.7, "strikePrice": 1').strike == Decimal("8277.7")  # xOMS's field first
    assert detail('"roundLot": 100').strike is None
