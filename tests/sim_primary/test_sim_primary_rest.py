"""Every REST endpoint against the captured shapes (tests/fixtures/primary), symbols raw or encoded."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from primary_helpers import GGAL, assert_shape, fixture, symbol_of

from brokerbridge.sim.primary import PrimarySimulator

ALL_ENTRIES = "BI,OF,LA,OP,CL,SE,HI,LO,TV,OI,IV,EV,NV,ACP,TC"


async def get(http: httpx.AsyncClient, auth: dict[str, str], path: str) -> Any:
    response = await http.get(path, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


async def test_segments_match_the_capture(http: httpx.AsyncClient, auth: dict[str, str]) -> None:
    assert await get(http, auth, "rest/segment/all") == fixture("http_segments.json")


async def test_instruments_all_and_details_have_the_captured_shapes(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    listing = await get(http, auth, "rest/instruments/all")
    assert listing["status"] == "OK"
    assert_shape(listing["instruments"], fixture("http_instruments_all_subset.json"))
    details = (await get(http, auth, "rest/instruments/details"))["instruments"]
    captured = fixture("http_instruments_details_subset.json")
    for detail in details:
        assert_shape(detail, captured[0] if detail["strike"] is None else captured[4])
    symbols = {d["instrumentId"]["symbol"] for d in details}
    for ticker in ("GGAL", "YPFD", "PAMP", "ALUA", "BMA", "TXAR", "CEPU", "TECO2"):
        assert {f"MERV - XMEV - {ticker} - 24hs", f"MERV - XMEV - {ticker} - CI"} <= symbols
    for bond in ("AL30", "AL30D", "AL30C", "GD30", "GD30D", "GD30C"):
        assert f"MERV - XMEV - {bond} - CI" in symbols
    by_cfi = {d["cficode"] for d in details}
    assert {"ESXXXX", "DBXXXX", "OCASPS", "OPASPS", "FXXXSX", "RPXXXX"} <= by_cfi


async def test_option_chain_has_calls_puts_strikes_and_four_expiries(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    details = (await get(http, auth, "rest/instruments/details"))["instruments"]
    options = [d for d in details if d["cficode"] in ("OCASPS", "OPASPS")]
    assert {d["securityDescription"].split(" - ")[2][:4] for d in options} == {"GFGC", "GFGV"}
    assert len({d["maturityDate"] for d in options}) == 4  # BYMA's cycle: 3 even months + the nearest odd
    assert len({d["strike"] for d in options}) >= 3
    assert all(
        d["roundLot"] == 100.0 and d["underlying"].startswith("Grupo Financiero Galicia") for d in options
    )
    bonds = [d for d in details if d["cficode"] == "DBXXXX"]
    assert all(d["priceConvertionFactor"] == 0.01 for d in bonds)
    futures = [d for d in details if d["cficode"] == "FXXXSX"]
    assert len(futures) >= 3 and all(d["contractMultiplier"] == 1000.0 for d in futures)
    assert all(d["segment"]["marketSegmentId"] == "DDF" for d in futures)


@pytest.mark.parametrize(
    "query",
    [
        "symbol=MERV%20-%20XMEV%20-%20GGAL%20-%2024hs&marketId=ROFX",
        "symbol=MERV+-+XMEV+-+GGAL+-+24hs&marketId=ROFX",
        "marketId=ROFX&symbol=MERV - XMEV - GGAL - 24hs",
    ],
)
async def test_instrument_detail_accepts_encoded_and_raw_symbols(
    http: httpx.AsyncClient, auth: dict[str, str], query: str
) -> None:
    body = await get(http, auth, f"rest/instruments/detail?{query}")
    assert body["instrument"]["instrumentId"]["symbol"] == GGAL
    assert_shape(body["instrument"], fixture("http_instruments_details_subset.json")[0])


async def test_future_symbols_with_raw_or_encoded_slash(
    sim: PrimarySimulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    dlr = symbol_of(sim, "future", 1)
    for symbol in (dlr, dlr.replace("/", "%2F")):
        body = await get(http, auth, f"rest/instruments/detail?symbol={symbol}&marketId=ROFX")
        assert body["instrument"]["instrumentId"]["symbol"] == dlr


async def test_unknown_product_and_segment_errors_use_the_documented_wording(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    body = await get(http, auth, "rest/instruments/detail?symbol=DOEne15&marketId=ROFX")
    assert body == {"status": "ERROR", "description": "Product DOEne15:ROFX doesn't exist", "message": None}
    body = await get(http, auth, "rest/instruments/bySegment?MarketSegmentID=X&MarketID=ROFX")
    assert body["description"] == "Segment X:ROFX doesn't exist"
    body = await get(http, auth, "rest/nothing/here")
    assert body == {"status": "ERROR", "description": "Ruta invalida", "message": ""}


async def test_by_cfi_and_by_segment_are_flat_lists(http: httpx.AsyncClient, auth: dict[str, str]) -> None:
    futures = (await get(http, auth, "rest/instruments/byCFICode?CFICode=FXXXSX"))["instruments"]
    assert futures and all(set(f) == {"marketId", "symbol"} for f in futures)
    ddf = (await get(http, auth, "rest/instruments/bySegment?MarketSegmentID=DDF&MarketID=ROFX"))[
        "instruments"
    ]
    assert {f["symbol"] for f in ddf} == {f["symbol"] for f in futures}
    unified = await get(http, auth, "rest/instruments/bySegment?MarketSegmentID=U-DDF&MarketID=ROFX")
    assert unified["instruments"] == ddf
    assert (await get(http, auth, "rest/instruments/bySegment?MarketSegmentID=DDA&MarketID=ROFX"))[
        "instruments"
    ] == []


async def test_market_data_has_top_level_depth_and_aggregated_and_typed_entries(
    sim: PrimarySimulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    body = await get(http, auth, f"rest/marketdata/get?marketId=ROFX&symbol={GGAL}&entries=BI,OF,LA&depth=1")
    assert_shape(body, fixture("http_marketdata_get.json"))
    dlr = symbol_of(sim, "future")
    body = await get(
        http, auth, f"rest/marketdata/get?marketId=ROFX&symbol={dlr}&entries={ALL_ENTRIES}&depth=5"
    )
    data = body["marketData"]
    assert list(data) == ALL_ENTRIES.split(",")
    assert body["depth"] == 5 and body["aggregated"] is True
    assert len(data["BI"]) == 5 and len(data["OF"]) == 5
    assert data["BI"][0]["price"] < data["OF"][0]["price"]
    for bare in ("OP", "HI", "LO", "TV"):
        assert isinstance(data[bare], int | float), bare
    assert set(data["LA"]) == {"price", "size", "date"}
    assert set(data["CL"]) == {"price", "size", "date"} and set(data["SE"]) == {"price", "size", "date"}
    assert data["OI"]["price"] is None and data["OI"]["size"] > 0
    assert data["IV"] is None and data["ACP"] is None and data["EV"] is None and data["NV"] is None


async def test_market_data_byma_entries_and_nulls_for_empty_entries(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    body = await get(http, auth, f"rest/marketdata/get?marketId=ROFX&symbol={GGAL}&entries=OP,CL,EV,NV,OI,IV")
    data = body["marketData"]
    assert set(data["CL"]) == {"price", "date"}
    assert isinstance(data["EV"], int | float) and isinstance(data["NV"], int | float)
    assert data["OI"] is None and data["IV"] is None
    body = await get(http, auth, f"rest/marketdata/get?marketId=ROFX&symbol={GGAL}&entries=LA,BI,OF,OI")
    assert_shape(body, fixture("http_marketdata_get_empty_entries.json"))
    assert body["marketData"]["OI"] is None


async def test_trades_by_date_range_and_by_date(
    sim: PrimarySimulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    dlr = symbol_of(sim, "future")
    body = await get(
        http, auth, f"rest/data/getTrades?marketId=ROFX&symbol={dlr}&dateFrom=2025-12-30&dateTo=2025-12-31"
    )
    assert body["status"] == "OK" and body["symbol"] == dlr and body["market"] == "ROFX"
    assert body["trades"] and set(body["trades"][0]) == {"symbol", "servertime", "size", "price", "datetime"}
    one_day = await get(http, auth, f"rest/data/getTrades?marketId=ROFX&symbol={dlr}&date=2025-12-31")
    assert 0 < len(one_day["trades"]) <= len(body["trades"])
    empty = await get(http, auth, f"rest/data/getTrades?marketId=ROFX&symbol={dlr}&date=2020-01-01")
    assert_shape(empty, fixture("http_trades_get_empty.json"))
    byma = await get(http, auth, f"rest/data/getTrades?marketId=ROFX&symbol={GGAL}&date=2025-12-31")
    assert byma == {"status": "OK", "symbol": GGAL, "market": "MERV", "trades": []}
    external = await get(
        http, auth, f"rest/data/getTrades?marketId=MERV&external=1&symbol={GGAL}&date=2025-12-31"
    )
    assert external["trades"]


async def test_accounts_match_the_capture(
    sim: PrimarySimulator, http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    body = await get(http, auth, "rest/accounts")
    assert_shape(body, fixture("http_accounts.json"))
    assert body["accounts"][0]["name"] == sim.endpoints.account


async def test_foreign_accounts_are_refused(http: httpx.AsyncClient, auth: dict[str, str]) -> None:
    for path in (
        "rest/order/all?accountId=30",
        "rest/risk/accountReport/30",
        "rest/risk/position/getPositions/30",
        "rest/order/newSingleOrder?marketId=ROFX&symbol=MERV - XMEV - GGAL - 24hs&orderQty=1&ordType=limit"
        "&side=buy&timeInForce=Day&account=30&cancelPrevious=False&price=7000",
    ):
        body = await get(http, auth, path)
        assert body == {"status": "ERROR", "description": "No tiene acceso a la cuenta 30", "message": None}


async def test_unknown_orders_use_the_documented_wording(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    body = await get(http, auth, "rest/order/cancelById?clOrdId=user1144733478&proprietary=api")
    assert body == {
        "status": "ERROR",
        "description": "Order user1144733478:api doesn't exist",
        "message": None,
    }
    body = await get(http, auth, "rest/order/id?clOrdId=1&proprietary=PBCP")
    assert body["description"] == "Order 1:PBCP doesn't exist"


async def test_missing_parameter_is_an_error_envelope(http: httpx.AsyncClient, auth: dict[str, str]) -> None:
    body = await get(http, auth, "rest/marketdata/get?marketId=ROFX&entries=BI")
    assert body["status"] == "ERROR" and "symbol" in body["description"]
