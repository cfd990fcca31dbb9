"""Proof of fidelity: the unmodified pyRofex (0.5.0) against ``brokerbridge sim primary``.

pyRofex is pointed at the simulator with the maintainer's recipe
(``_set_environment_parameter("url"/"ws", ..., Environment.REMARKET)``, pyRofex ISSUE #6) and then
used exactly as its README/samples use it: REST calls, ``init_websocket_connection`` with
handlers, ``market_data_subscription``, ``order_report_subscription``, orders over REST and over
the WebSocket. What pyRofex sends and reads is documented in ``PYROFEX_REQUIREMENTS.md``;
simulator defects found by this module go to ``PYROFEX_FINDINGS.md``.

Run: ``/work/venv/bin/pytest -m thirdparty tests/thirdparty/test_pyrofex.py -v``
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# pyRofex is a test extra (pyproject.toml): a missing install must fail loudly, never skip.
import pyRofex
import pyrofex_helpers as _h
import pytest
import requests
from pyRofex import (
    CFICode,
    Environment,
    Market,
    MarketDataEntry,
    MarketSegment,
    OrderType,
    Side,
    TimeInForce,
)
from pyRofex.components.exceptions import ApiException
from pyrofex_helpers import (
    PrimarySim,
    Recorder,
    close_ws_client,
    on_tick,
    poll_until,
    rofex_globals,
    tick_of,
)

pytestmark = pytest.mark.thirdparty

# module-scoped fixtures from the helper module (tests/thirdparty/conftest.py belongs to the Kraken suite)
primary_sim = _h.primary_sim
pyrofex_state = _h.pyrofex_state

ENV = Environment.REMARKET
GGAL = "MERV - XMEV - GGAL - 24hs"
ALL_ENTRIES = [e.value for e in MarketDataEntry]  # BI,OF,LA,OP,CL,SE,HI,LO,TV,OI,IV,EV,NV,ACP,TC
SMD_BI_OF_LA = (  # what pyRofex sends (messages.py:8,12), "SYM" replaced by the symbol
    '{"type":"smd","level":1,"depth":1,"entries":["BI","OF","LA"],'
    '"products":[{"symbol":"SYM","marketId":"ROFX"}]}'
)
WAIT = 10.0  # bound for any single callback wait
DETAIL_KEYS = {
    "symbol", "segment", "lowLimitPrice", "highLimitPrice", "minPriceIncrement", "minTradeVol",
    "maxTradeVol", "tickSize", "contractMultiplier", "roundLot", "priceConvertionFactor",
    "maturityDate", "currency", "orderTypes", "timesInForce", "instrumentPricePrecision",
    "instrumentSizePrecision", "securityDescription", "tickPriceRanges", "cficode", "instrumentId",
}  # fmt: skip
REPORT_KEYS = {
    "orderId", "clOrdId", "proprietary", "accountId", "instrumentId", "price", "orderQty",
    "ordType", "side", "timeInForce", "transactTime", "status",
}  # fmt: skip


# ------------------------------------------------------------------------------------------------
# fixtures
# ------------------------------------------------------------------------------------------------
def _point_at(sim: PrimarySim, env: Environment) -> None:
    pyRofex._set_environment_parameter("url", sim.rest, env)
    pyRofex._set_environment_parameter("ws", sim.ws, env)


def _init(sim: PrimarySim, env: Environment = ENV, **kw: Any) -> None:
    pyRofex.initialize(user=sim.user, password=sim.password, account=sim.account, environment=env, **kw)


@pytest.fixture(scope="module")
def rofex(primary_sim: PrimarySim, pyrofex_state: None) -> PrimarySim:
    _point_at(primary_sim, ENV)
    _init(primary_sim)
    return primary_sim


@pytest.fixture(autouse=True)
def _default_env_is_remarket(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "rofex" in request.fixturenames and rofex_globals.environment_config[ENV]["initialized"]:
        pyRofex.set_default_environment(ENV)


@dataclass
class Catalog:
    all: list[dict[str, Any]]
    details: dict[str, dict[str, Any]]
    equity: str
    bond: str
    future: str

    def detail(self, symbol: str) -> dict[str, Any]:
        return self.details[symbol]


@pytest.fixture(scope="module")
def catalog(rofex: PrimarySim) -> Catalog:
    allr = pyRofex.get_all_instruments()
    assert allr.get("status") == "OK", allr
    detr = pyRofex.get_detailed_instruments()
    assert detr.get("status") == "OK", detr
    details = {d["instrumentId"]["symbol"]: d for d in detr["instruments"]}
    symbols = {i["instrumentId"]["symbol"]: i["cficode"] for i in allr["instruments"]}
    assert symbols.get(GGAL) == "ESXXXX", f"{GGAL} missing or not ESXXXX"
    bond = next(
        (s for s in ("MERV - XMEV - AL30 - 24hs", "MERV - XMEV - AL30 - CI") if symbols.get(s) == "DBXXXX"),
        None,
    )
    assert bond, "AL30 (24hs or CI) missing or not DBXXXX"
    futures = [s for s, c in symbols.items() if c == "FXXXSX" and re.fullmatch(r"DLR/[A-Z]{3}\d{2}", s)]
    assert futures, "no DLR/<MMM><YY> future (FXXXSX) in instruments/all"
    futures.sort(key=lambda s: (details.get(s, {}).get("maturityDate") or "99999999", s))
    return Catalog(all=allr["instruments"], details=details, equity=GGAL, bond=bond, future=futures[0])


@dataclass
class WsSession:
    md: Recorder = field(default_factory=lambda: Recorder("market_data"))
    orders: Recorder = field(default_factory=lambda: Recorder("order_report"))
    errors: Recorder = field(default_factory=lambda: Recorder("error"))
    exceptions: Recorder = field(default_factory=lambda: Recorder("exception"))
    expected_errors: list[Any] = field(default_factory=list)

    def unexpected_errors(self) -> list[Any]:
        return [e for e in self.errors.items() if not any(e is x for x in self.expected_errors)]

    def assert_healthy(self) -> None:
        assert not self.exceptions.items(), f"exception handler called: {self.exceptions.items()!r}"
        assert not self.unexpected_errors(), f"error handler called: {self.unexpected_errors()!r}"


@pytest.fixture(scope="module")
def ws(rofex: PrimarySim) -> Iterator[WsSession]:
    s = WsSession()
    t0 = time.monotonic()
    pyRofex.init_websocket_connection(
        market_data_handler=s.md.handle,
        order_report_handler=s.orders.handle,
        error_handler=s.errors.handle,
        exception_handler=s.exceptions.handle,
    )
    client = rofex_globals.environment_config[ENV]["ws_client"]
    try:
        assert time.monotonic() - t0 < 6.0
        assert _connected(client), f"pyRofex not connected; exceptions: {s.exceptions.items()!r}"
        s.assert_healthy()
        # order_report_subscription: snapshotOnlyActive=true, default account
        pyRofex.order_report_subscription()
        yield s
    finally:
        try:
            pyRofex.close_websocket_connection(ENV)
        finally:
            close_ws_client(client)


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
def _connected(client: Any) -> bool:
    """pyRofex's `connected` flag, set by on_open (websocket_rfx.py:213-216). connect() returns as soon
    as `sock.connected` (websocket_rfx.py:143-147) — without sleeping if the handshake was already
    done — and websocket-client calls on_open a moment later (after starting its ping thread,
    websocket/_app.py:442-448), so the flag may lag: allow it a bounded moment."""
    return bool(poll_until(client.is_connected, bool, 2.0, interval=0.02))


def _report(msg: dict[str, Any]) -> dict[str, Any]:
    return msg["orderReport"]


def _is_report(cl_ord_id: str, *statuses: str) -> Any:
    def pred(msg: dict[str, Any]) -> bool:
        r = _report(msg)
        return (r.get("clOrdId") == cl_ord_id or r.get("origClOrdId") == cl_ord_id) and (
            not statuses or r.get("status") in statuses
        )

    return pred


def _book(symbol: str) -> dict[str, Any]:
    md = pyRofex.get_market_data(
        symbol, entries=[MarketDataEntry.BIDS, MarketDataEntry.OFFERS, MarketDataEntry.LAST]
    )
    assert md.get("status") == "OK", md
    return md["marketData"]


def _ref_price(symbol: str) -> float:
    book = _book(symbol)
    for key in ("BI", "OF"):
        if book.get(key):
            return float(book[key][0]["price"])
    assert book.get("LA"), f"no bid/offer/last to price an order on {symbol}: {book}"
    return float(book["LA"]["price"])


def _far_buy_price(cat: Catalog, symbol: str) -> float:
    detail = cat.detail(symbol)
    tick = tick_of(detail)
    price = on_tick(_ref_price(symbol) * 0.8, tick, up=False)
    low = float(detail.get("lowLimitPrice") or 0)
    if price <= low:  # a price band: stay inside it, still well below the bid
        price = on_tick(low + float(tick), tick, up=True)
    assert price > 0, (price, detail)
    return price


def _wait_report(ws: WsSession, pred: Any, what: str, start: int = 0) -> dict[str, Any]:
    msg = ws.orders.wait_for(pred, WAIT, start)
    assert msg is not None, f"no order report {what} within {WAIT}s; got: {ws.orders.items(start)!r}"
    return msg


def _check_report_shape(msg: dict[str, Any], account: str) -> None:
    assert msg["type"] == "or", msg
    assert isinstance(msg.get("timestamp"), int), msg
    r = _report(msg)
    missing = REPORT_KEYS - set(r)
    assert not missing, f"order report lacks {sorted(missing)}: {r}"
    assert str(r["accountId"]["id"]) == account, r
    assert r["instrumentId"]["marketId"] == "ROFX", r


# ------------------------------------------------------------------------------------------------
# authentication
# ------------------------------------------------------------------------------------------------
def test_get_token_wire(primary_sim: PrimarySim) -> None:
    """getToken on the wire: token in the header, failures non-2xx without it; 401 JSON on REST."""
    url = primary_sim.rest + "auth/getToken"
    ok = requests.post(
        url, headers={"X-Username": primary_sim.user, "X-Password": primary_sim.password}, timeout=5
    )
    assert ok.ok, (ok.status_code, ok.text)
    assert ok.headers.get("X-Auth-Token"), dict(ok.headers)
    bad = requests.post(
        url,
        headers={"X-Username": primary_sim.user, "X-Password": "wrong-" + primary_sim.password},
        timeout=5,
    )
    assert not bad.ok, (bad.status_code, dict(bad.headers))
    assert "X-Auth-Token" not in bad.headers, dict(bad.headers)
    # unknown token on REST -> 401 with a JSON body (pyRofex parses the 401 body, rest_rfx.py:356)
    r = requests.get(
        primary_sim.rest + "rest/segment/all", headers={"X-Auth-Token": "not-a-token"}, timeout=5
    )
    assert r.status_code == 401, (r.status_code, r.text)
    json.loads(r.content)


def test_initialize_wrong_password_raises(primary_sim: PrimarySim, pyrofex_state: None) -> None:
    _point_at(primary_sim, ENV)
    try:
        with pytest.raises(ApiException, match="Authentication fails"):
            pyRofex.initialize(
                user=primary_sim.user, password="wrong-" + primary_sim.password,
                account=primary_sim.account, environment=ENV,
            )  # fmt: skip
    finally:
        _init(primary_sim)  # the failed call left the wrong password in pyRofex's globals


def test_initialize(rofex: PrimarySim) -> None:
    cfg = rofex_globals.environment_config[ENV]
    assert cfg["initialized"] is True
    assert isinstance(cfg["token"], str) and cfg["token"] and " " not in cfg["token"]
    assert rofex_globals.default_environment is ENV


# ------------------------------------------------------------------------------------------------
# reference data
# ------------------------------------------------------------------------------------------------
def test_get_segments(rofex: PrimarySim) -> None:
    resp = pyRofex.get_segments()
    assert resp["status"] == "OK", resp
    segs = resp["segments"]
    assert all(set(s) >= {"marketSegmentId", "marketId"} and s["marketId"] == "ROFX" for s in segs), segs
    ids = {s["marketSegmentId"] for s in segs}
    assert {"DDF", "MERV"} <= ids, ids


def test_get_all_instruments(rofex: PrimarySim, catalog: Catalog) -> None:
    insts = catalog.all
    assert len(insts) >= 20
    for i in insts:
        assert set(i) >= {"instrumentId", "cficode"}, i
        assert i["instrumentId"]["marketId"] == "ROFX", i
        assert isinstance(i["instrumentId"]["symbol"], str), i
    by_symbol = {i["instrumentId"]["symbol"]: i["cficode"] for i in insts}
    cfis = set(by_symbol.values())
    assert {"ESXXXX", "DBXXXX", "FXXXSX", "OCASPS", "OPASPS"} <= cfis, cfis
    assert any(s.startswith("MERV - XMEV - GFGC") and c == "OCASPS" for s, c in by_symbol.items())
    assert any(s.startswith("MERV - XMEV - GFGV") and c == "OPASPS" for s, c in by_symbol.items())
    for ticker in ("GGAL", "YPFD", "PAMP", "ALUA", "BMA", "TXAR", "CEPU", "TECO2"):
        assert by_symbol.get(f"MERV - XMEV - {ticker} - 24hs") == "ESXXXX", ticker
    assert by_symbol.get("MERV - XMEV - GGAL - CI") == "ESXXXX"
    assert any(s.startswith("MERV - XMEV - GD30") for s in by_symbol)
    # generic form returns the same thing
    same = pyRofex.get_instruments("all")
    assert same["status"] == "OK" and len(same["instruments"]) == len(insts)


def test_get_detailed_instruments(catalog: Catalog) -> None:
    details = catalog.details
    assert set(details) == {i["instrumentId"]["symbol"] for i in catalog.all}
    for sym, d in details.items():
        missing = DETAIL_KEYS - set(d)
        assert not missing, f"{sym}: detail lacks {sorted(missing)}"
        assert set(d["segment"]) >= {"marketSegmentId", "marketId"}, d["segment"]
    g = details[GGAL]
    assert (
        g["segment"]["marketSegmentId"] == "MERV" and g["cficode"] == "ESXXXX" and g["currency"] == "ARS"
    ), g
    f = details[catalog.future]
    assert f["segment"]["marketSegmentId"] == "DDF" and f["cficode"] == "FXXXSX", f
    assert isinstance(f["maturityDate"], str) and re.fullmatch(r"\d{8}", f["maturityDate"]), f
    opts = [d for d in details.values() if d["cficode"] in ("OCASPS", "OPASPS")]
    assert opts and all(isinstance(o.get("strike"), (int, float)) for o in opts), opts[:2]
    generic = pyRofex.get_instruments("details")
    assert generic["status"] == "OK", generic
    assert {d["instrumentId"]["symbol"] for d in generic["instruments"]} == set(details)


@pytest.mark.parametrize("which", ["future", "equity"])
def test_get_instrument_details(catalog: Catalog, which: str) -> None:
    sym = getattr(catalog, which)  # DLR/MMMYY (raw "/") and "MERV - XMEV - GGAL - 24hs" (%20)
    resp = pyRofex.get_instrument_details(sym)
    assert resp["status"] == "OK", resp
    inst = resp["instrument"]
    assert inst["instrumentId"] == {"marketId": "ROFX", "symbol": sym}, inst["instrumentId"]
    assert inst["cficode"] == catalog.detail(sym)["cficode"]
    generic = pyRofex.get_instruments("detail", ticker=sym, market=Market.ROFEX)
    assert generic["status"] == "OK" and generic["instrument"]["instrumentId"]["symbol"] == sym


def test_get_instrument_details_unknown_symbol(rofex: PrimarySim) -> None:
    resp = pyRofex.get_instrument_details("NOPE/XXX99")
    assert resp["status"] == "ERROR", resp
    assert "NOPE/XXX99" in (resp.get("description") or ""), resp


def test_get_instruments_by_cfi(catalog: Catalog) -> None:
    resp = pyRofex.get_instruments("by_cfi", cfi_code=CFICode.STOCK)
    assert resp["status"] == "OK", resp
    for i in resp["instruments"]:
        assert set(i) >= {"marketId", "symbol"} and "instrumentId" not in i, i  # flat shape
    got = {i["symbol"] for i in resp["instruments"]}
    want = {i["instrumentId"]["symbol"] for i in catalog.all if i["cficode"] == "ESXXXX"}
    assert got == want
    both = pyRofex.get_instruments("by_cfi", cfi_code=[CFICode.STOCK, CFICode.BOND])
    bonds = {i["instrumentId"]["symbol"] for i in catalog.all if i["cficode"] == "DBXXXX"}
    assert {i["symbol"] for i in both["instruments"]} == want | bonds


@pytest.mark.parametrize("segment", [MarketSegment.MERV, MarketSegment.DDF])
def test_get_instruments_by_segments(catalog: Catalog, segment: MarketSegment) -> None:
    resp = pyRofex.get_instruments("by_segments", market=Market.ROFEX, market_segment=segment)
    assert resp["status"] == "OK", resp
    got = {i["symbol"] for i in resp["instruments"]}
    want = {s for s, d in catalog.details.items() if d["segment"]["marketSegmentId"] == segment.value}
    assert got == want and got
    if segment is MarketSegment.DDF:
        assert catalog.future in got


# ------------------------------------------------------------------------------------------------
# market data (REST)
# ------------------------------------------------------------------------------------------------
def _check_levels(levels: Any, descending: bool, max_len: int) -> None:
    if levels is None:
        return
    assert isinstance(levels, list) and len(levels) <= max_len, levels
    for lv in levels:
        assert set(lv) >= {"price", "size"}, lv
        assert isinstance(lv["price"], (int, float)) and isinstance(lv["size"], (int, float)), lv
    prices = [lv["price"] for lv in levels]
    assert prices == sorted(prices, reverse=descending), prices


@pytest.mark.parametrize("which", ["equity", "bond", "future"])
def test_get_market_data_all_entries(catalog: Catalog, which: str) -> None:
    sym = getattr(catalog, which)
    resp = pyRofex.get_market_data(sym)  # entries=None -> all 15, depth=1
    assert resp["status"] == "OK", resp
    md = resp["marketData"]
    assert set(md) == set(ALL_ENTRIES), sorted(md)
    assert resp.get("depth") == 1 and resp.get("aggregated") is True, {
        k: v for k, v in resp.items() if k != "marketData"
    }
    _check_levels(md["BI"], descending=True, max_len=1)
    _check_levels(md["OF"], descending=False, max_len=1)
    if md["LA"] is not None:
        assert set(md["LA"]) >= {"price", "size", "date"}, md["LA"]
    for k in ("OP", "HI", "LO", "TV", "IV", "EV", "NV", "TC"):
        assert md[k] is None or isinstance(md[k], (int, float)), (k, md[k])
    for k in ("CL", "SE"):
        assert md[k] is None or (isinstance(md[k], dict) and "price" in md[k]), (k, md[k])
    assert md["OI"] is None or isinstance(md["OI"], dict), md["OI"]
    # living market: both sides quoted and not crossed
    assert md["BI"] and md["OF"], f"{sym}: empty book {md['BI']!r} / {md['OF']!r}"
    assert md["BI"][0]["price"] < md["OF"][0]["price"], (md["BI"], md["OF"])


def test_get_market_data_depth5(catalog: Catalog) -> None:
    resp = pyRofex.get_market_data(
        catalog.future, entries=[MarketDataEntry.BIDS, MarketDataEntry.OFFERS], depth=5
    )
    assert resp["status"] == "OK", resp
    md = resp["marketData"]
    assert set(md) == {"BI", "OF"}, sorted(md)
    assert resp.get("depth") == 5
    _check_levels(md["BI"], descending=True, max_len=5)
    _check_levels(md["OF"], descending=False, max_len=5)


def test_get_trade_history(catalog: Catalog) -> None:
    today = dt.datetime.now(dt.UTC).date()
    start, end = (today - dt.timedelta(days=1)).isoformat(), (today + dt.timedelta(days=1)).isoformat()
    resp = pyRofex.get_trade_history(catalog.future, start, end)
    assert resp["status"] == "OK", resp
    assert isinstance(resp["trades"], list), resp
    for t in resp["trades"][:50]:
        assert set(t) >= {"price", "size", "datetime"}, t
        assert isinstance(t["price"], (int, float)) and t["size"] > 0, t


# ------------------------------------------------------------------------------------------------
# WebSocket: market data
# ------------------------------------------------------------------------------------------------
def _md_for(symbol: str) -> Any:
    return lambda m: m["instrumentId"]["symbol"] == symbol


def _check_md(msg: dict[str, Any], symbol: str, entries: set[str], depth: int) -> None:
    assert msg["type"] == "Md", msg
    assert isinstance(msg.get("timestamp"), int) and msg["timestamp"] > 1_600_000_000_000, msg
    assert msg["instrumentId"] == {"marketId": "ROFX", "symbol": symbol}, msg["instrumentId"]
    assert set(msg["marketData"]) == entries, (
        f"{symbol}: entries {sorted(msg['marketData'])} != {sorted(entries)}"
    )
    for key, desc in (("BI", True), ("OF", False)):
        if key in entries:
            _check_levels(msg["marketData"][key], descending=desc, max_len=depth)


def test_ws_market_data_subscription(catalog: Catalog, ws: WsSession) -> None:
    start = len(ws.md)
    first = [catalog.equity, catalog.future]
    pyRofex.market_data_subscription(
        tickers=first, entries=[MarketDataEntry.BIDS, MarketDataEntry.OFFERS, MarketDataEntry.LAST]
    )
    pyRofex.market_data_subscription(
        tickers=[catalog.bond],
        entries=[MarketDataEntry.OFFERS, MarketDataEntry.TRADE_VOLUME, MarketDataEntry.HIGH_PRICE],
        depth=2,
    )
    for sym in first:
        msg = ws.md.wait_for(_md_for(sym), WAIT, start)
        assert msg is not None, f"no Md for {sym} within {WAIT}s; got {len(ws.md) - start} Md for others"
        _check_md(msg, sym, {"BI", "OF", "LA"}, depth=1)
    msg = ws.md.wait_for(_md_for(catalog.bond), WAIT, start)
    assert msg is not None, f"no Md for {catalog.bond} within {WAIT}s"
    _check_md(msg, catalog.bond, {"OF", "TV", "HI"}, depth=2)
    # every Md so far matches its subscription
    for m in ws.md.items(start):
        s = m["instrumentId"]["symbol"]
        assert s in (*first, catalog.bond), s
        _check_md(
            m,
            s,
            {"OF", "TV", "HI"} if s == catalog.bond else {"BI", "OF", "LA"},
            2 if s == catalog.bond else 1,
        )
    ws.assert_healthy()


def test_ws_unknown_symbol_error_keeps_streaming(catalog: Catalog, ws: WsSession) -> None:
    err_start, md_start = len(ws.errors), len(ws.md)
    bad = "NOPE - XMEV - ZZZZ - 24hs"
    pyRofex.market_data_subscription(
        tickers=[bad], entries=[MarketDataEntry.BIDS, MarketDataEntry.OFFERS, MarketDataEntry.LAST]
    )
    err = ws.errors.wait_for(lambda e: True, WAIT, err_start)
    assert err is not None, f"error handler not called within {WAIT}s for unknown symbol"
    ws.expected_errors.append(err)
    assert isinstance(err, dict) and err.get("status") == "ERROR", err
    assert err.get("description") == f"Product {bad}:ROFX don't exist", err
    sent = SMD_BI_OF_LA.replace("SYM", bad)
    assert err.get("message") == sent, err
    # the socket stays up: a new subscription is answered and old ones keep streaming
    after = len(ws.md)
    pyRofex.market_data_subscription(tickers=[catalog.equity], entries=[MarketDataEntry.LAST])
    msg = ws.md.wait_for(lambda m: set(m["marketData"]) == {"LA"}, WAIT, after)
    assert msg is not None, f"no Md for a new subscription after the error within {WAIT}s"
    assert msg["instrumentId"]["symbol"] == catalog.equity
    assert rofex_globals.environment_config[ENV]["ws_client"].is_connected()
    assert not any(m["instrumentId"]["symbol"] == bad for m in ws.md.items(md_start))
    assert len(ws.errors.items(err_start)) == 1, ws.errors.items(err_start)
    ws.assert_healthy()


# ------------------------------------------------------------------------------------------------
# orders
# ------------------------------------------------------------------------------------------------
def test_rest_limit_order_lifecycle(rofex: PrimarySim, catalog: Catalog, ws: WsSession) -> None:
    sym = catalog.equity
    price = _far_buy_price(catalog, sym)
    start = len(ws.orders)
    ack = pyRofex.send_order(ticker=sym, side=Side.BUY, size=1, price=price, order_type=OrderType.LIMIT)
    assert ack["status"] == "OK", ack
    cid, prop = ack["order"]["clientId"], ack["order"]["proprietary"]
    assert cid and prop, ack
    new = _wait_report(ws, _is_report(cid, "NEW"), f"NEW for {cid}", start)
    _check_report_shape(new, rofex.account)
    r = _report(new)
    assert r["orderId"], r
    assert r["instrumentId"]["symbol"] == sym and r["side"] == "BUY" and r["ordType"] == "LIMIT", r
    assert float(r["price"]) == price and float(r["orderQty"]) == 1, r
    statuses = [_report(m)["status"] for m in ws.orders.items(start) if _is_report(cid)(m)]
    assert "PENDING_NEW" in statuses and statuses.index("PENDING_NEW") < statuses.index("NEW"), statuses

    st = pyRofex.get_order_status(cid, proprietary=prop)
    assert st["status"] == "OK" and st["order"]["clOrdId"] == cid and st["order"]["status"] == "NEW", st
    assert set(st["order"]) >= REPORT_KEYS, sorted(st["order"])
    allo = pyRofex.get_all_orders_status()
    assert allo["status"] == "OK", allo
    assert any(o.get("clOrdId") == cid for o in allo["orders"]), [o.get("clOrdId") for o in allo["orders"]]

    cstart = len(ws.orders)
    cack = pyRofex.cancel_order(cid, proprietary=prop)
    assert cack["status"] == "OK", cack
    assert cack["order"]["clientId"] and cack["order"]["clientId"] != cid, cack
    _wait_report(ws, _is_report(cid, "CANCELLED"), f"CANCELLED for {cid}", cstart)
    st = poll_until(
        lambda: pyRofex.get_order_status(cid, proprietary=prop),
        lambda s: s["order"]["status"] == "CANCELLED",
        5,
    )
    assert st["order"]["status"] == "CANCELLED", st
    ws.assert_healthy()


def test_ws_limit_order_lifecycle(rofex: PrimarySim, catalog: Catalog, ws: WsSession) -> None:
    assert hasattr(pyRofex, "send_order_via_websocket")
    sym = catalog.future
    price = _far_buy_price(catalog, sym)
    wid = "t" + uuid.uuid4().hex[:12]
    start = len(ws.orders)
    pyRofex.send_order_via_websocket(
        ticker=sym, size=1, side=Side.BUY, order_type=OrderType.LIMIT, price=price, ws_client_order_id=wid
    )
    first = _wait_report(ws, lambda m: _report(m).get("wsClOrdId") == wid, f"with wsClOrdId={wid}", start)
    r0 = _report(first)
    assert r0["status"] == "PENDING_NEW", r0
    cid, prop = r0["clOrdId"], r0["proprietary"]
    new = _wait_report(ws, _is_report(cid, "NEW"), f"NEW for {cid}", start)
    _check_report_shape(new, rofex.account)
    assert float(_report(new)["price"]) == price, _report(new)
    later = [m for m in ws.orders.items(start) if _is_report(cid)(m) and m is not first]
    assert all("wsClOrdId" not in _report(m) for m in later), later

    cstart = len(ws.orders)
    pyRofex.cancel_order_via_websocket(cid, proprietary=prop)
    _wait_report(ws, _is_report(cid, "CANCELLED"), f"CANCELLED for {cid}", cstart)
    st = poll_until(
        lambda: pyRofex.get_order_status(cid, proprietary=prop),
        lambda s: s["order"]["status"] == "CANCELLED",
        5,
    )
    assert st["order"]["status"] == "CANCELLED", st
    ws.assert_healthy()


def test_marketable_order_fills_and_positions(rofex: PrimarySim, catalog: Catalog, ws: WsSession) -> None:
    sym = catalog.equity
    detail = catalog.detail(sym)
    book = _book(sym)
    assert book.get("OF"), f"no offer to lift on {sym}: {book}"
    price = on_tick(float(book["OF"][0]["price"]) * 1.02, tick_of(detail), up=True)
    high = float(detail.get("highLimitPrice") or 0)
    assert not high or price <= high, (price, high)
    start = len(ws.orders)
    ack = pyRofex.send_order(ticker=sym, side=Side.BUY, size=1, price=price, order_type=OrderType.LIMIT)
    assert ack["status"] == "OK", ack
    cid = ack["order"]["clientId"]
    filled = _wait_report(ws, _is_report(cid, "FILLED"), f"FILLED for {cid}", start)
    _check_report_shape(filled, rofex.account)
    r = _report(filled)
    assert float(r["cumQty"]) == float(r["orderQty"]) == 1 and float(r["leavesQty"]) == 0, r
    assert float(r["avgPx"]) > 0 and float(r["lastPx"]) > 0 and float(r["lastQty"]) > 0, r
    assert float(r["avgPx"]) <= price, r

    pos = poll_until(
        pyRofex.get_account_position,
        lambda p: any(x["symbol"] == sym and float(x["buySize"]) >= 1 for x in p["positions"]),
        5,
    )
    assert pos["status"] == "OK", pos
    row = next((x for x in pos["positions"] if x.get("symbol") == sym), None)
    assert row is not None and float(row["buySize"]) >= 1, pos
    assert set(row) >= {"instrument", "symbol", "buySize", "buyPrice", "sellSize", "sellPrice"}, row

    det = pyRofex.get_detailed_position()
    assert det["status"] == "OK", det
    dp = det["detailedPosition"]
    assert str(dp.get("account")) == rofex.account, dp
    assert sym in json.dumps(dp.get("report")), dp

    rep = pyRofex.get_account_report()
    assert rep["status"] == "OK", rep
    ad = rep["accountData"]
    assert set(ad) >= {"accountName", "detailedAccountReports", "currentCash"}, sorted(ad)
    ws.assert_healthy()


def _expire_date() -> str:
    return (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=7)).strftime("%Y%m%d")


def _check_iceberg_gtd(r: dict[str, Any]) -> None:
    assert r["timeInForce"] == "GTD", r
    assert str(r.get("iceberg")).lower() == "true" and float(r.get("displayQty", -1)) == 1, r


def test_rest_gtd_iceberg_and_cancel_previous(rofex: PrimarySim, catalog: Catalog, ws: WsSession) -> None:
    """pyRofex's optional REST params: expireDate, iceberg=true&displayQty, cancelPrevious=True."""
    sym = catalog.future  # futures allow GTD
    price = _far_buy_price(catalog, sym)
    start = len(ws.orders)
    a = pyRofex.send_order(
        ticker=sym, side=Side.BUY, size=2, price=price, order_type=OrderType.LIMIT,
        time_in_force=TimeInForce.GoodTillDate, expire_date=_expire_date(), iceberg=True, display_quantity=1,
    )  # fmt: skip
    assert a["status"] == "OK", a
    cid_a, prop = a["order"]["clientId"], a["order"]["proprietary"]
    new_a = _wait_report(ws, _is_report(cid_a, "NEW"), f"NEW for GTD iceberg {cid_a}", start)
    _check_iceberg_gtd(_report(new_a))
    # cancelPrevious=True: "cancels active orders that match with the account, side and ticker"
    # (pyRofex service.py docstring of send_order)
    b = pyRofex.send_order(
        ticker=sym, side=Side.BUY, size=1, price=price, order_type=OrderType.LIMIT, cancel_previous=True
    )
    assert b["status"] == "OK", b
    cid_b = b["order"]["clientId"]
    _wait_report(ws, _is_report(cid_a, "CANCELLED"), f"CANCELLED for {cid_a} (cancelPrevious)", start)
    _wait_report(ws, _is_report(cid_b, "NEW"), f"NEW for {cid_b}", start)
    assert pyRofex.get_order_status(cid_b, proprietary=prop)["order"]["status"] == "NEW"
    cstart = len(ws.orders)
    assert pyRofex.cancel_order(cid_b, proprietary=prop)["status"] == "OK"
    _wait_report(ws, _is_report(cid_b, "CANCELLED"), f"CANCELLED for {cid_b}", cstart)
    ws.assert_healthy()


def test_ws_gtd_iceberg_order_with_string_fields(rofex: PrimarySim, catalog: Catalog, ws: WsSession) -> None:
    """`no` with "iceberg":"True", "displayQuantity":"1", "expireDate", all numbers as strings."""
    sym = catalog.future
    price = _far_buy_price(catalog, sym)
    wid = "g" + uuid.uuid4().hex[:12]
    start = len(ws.orders)
    pyRofex.send_order_via_websocket(
        ticker=sym, size=2, side=Side.BUY, order_type=OrderType.LIMIT, price=price,
        time_in_force=TimeInForce.GoodTillDate, expire_date=_expire_date(), iceberg=True, display_quantity=1,
        ws_client_order_id=wid,
    )  # fmt: skip
    first = _wait_report(ws, lambda m: _report(m).get("wsClOrdId") == wid, f"with wsClOrdId={wid}", start)
    assert _report(first)["status"] == "PENDING_NEW", _report(first)
    cid, prop = _report(first)["clOrdId"], _report(first)["proprietary"]
    new = _wait_report(ws, _is_report(cid, "NEW"), f"NEW for {cid}", start)
    _check_iceberg_gtd(_report(new))
    assert float(_report(new)["orderQty"]) == 2, _report(new)
    cstart = len(ws.orders)
    pyRofex.cancel_order_via_websocket(cid, proprietary=prop)
    _wait_report(ws, _is_report(cid, "CANCELLED"), f"CANCELLED for {cid}", cstart)
    ws.assert_healthy()


def test_rest_market_order_fills(rofex: PrimarySim, catalog: Catalog, ws: WsSession) -> None:
    """OrderType.MARKET: pyRofex sends no price parameter (rest_rfx.py:292-293)."""
    sym = catalog.equity
    start = len(ws.orders)
    ack = pyRofex.send_order(ticker=sym, side=Side.SELL, size=1, order_type=OrderType.MARKET)
    assert ack["status"] == "OK", ack
    cid = ack["order"]["clientId"]
    filled = _wait_report(ws, _is_report(cid, "FILLED"), f"FILLED for market order {cid}", start)
    r = _report(filled)
    assert r["ordType"] == "MARKET" and r["side"] == "SELL", r
    assert float(r["cumQty"]) == 1 and float(r["leavesQty"]) == 0 and float(r["avgPx"]) > 0, r
    pos = poll_until(
        pyRofex.get_account_position,
        lambda p: any(x["symbol"] == sym and float(x["sellSize"]) >= 1 for x in p["positions"]),
        5,
    )
    assert any(x["symbol"] == sym and float(x["sellSize"]) >= 1 for x in pos["positions"]), pos
    ws.assert_healthy()


def test_order_report_snapshot_on_second_connection(
    rofex: PrimarySim, catalog: Catalog, ws: WsSession
) -> None:
    """`os` with snapshotOnlyActive=true replays the active orders only; live reports reach both sockets.

    The second socket is pyRofex's LIVE environment sharing REMARKET's token (active_token: no
    new getToken, which would revoke the first token on a Cocos-like server).
    """
    sym = catalog.equity
    start = len(ws.orders)
    ack = pyRofex.send_order(
        ticker=sym, side=Side.BUY, size=1, price=_far_buy_price(catalog, sym), order_type=OrderType.LIMIT
    )
    cid, prop = ack["order"]["clientId"], ack["order"]["proprietary"]
    _wait_report(ws, _is_report(cid, "NEW"), f"NEW for {cid}", start)

    live = Environment.LIVE
    _point_at(rofex, live)
    token = rofex_globals.environment_config[ENV]["token"]
    pyRofex.initialize(
        user=rofex.user, password=rofex.password, account=rofex.account, environment=live, active_token=token
    )
    second = WsSession()
    try:
        pyRofex.init_websocket_connection(
            order_report_handler=second.orders.handle,
            error_handler=second.errors.handle,
            exception_handler=second.exceptions.handle,
            environment=live,
        )
        assert _connected(rofex_globals.environment_config[live]["ws_client"]), second.exceptions.items()
        pyRofex.order_report_subscription(snapshot=True, environment=live)
        snap = second.orders.wait_for(_is_report(cid, "NEW"), WAIT)
        assert snap is not None, f"no snapshot report for active order {cid}: {second.orders.items()!r}"
        time.sleep(0.5)  # the rest of the snapshot
        statuses = {_report(m)["status"] for m in second.orders.items()}
        assert statuses <= {"NEW", "PARTIALLY_FILLED"}, f"snapshotOnlyActive=true replayed {statuses}"
        n2, n1 = len(second.orders), len(ws.orders)
        assert pyRofex.cancel_order(cid, proprietary=prop, environment=ENV)["status"] == "OK"
        _wait_report(ws, _is_report(cid, "CANCELLED"), f"CANCELLED for {cid} (first socket)", n1)
        assert second.orders.wait_for(_is_report(cid, "CANCELLED"), WAIT, n2), "second socket: no CANCELLED"
        second.assert_healthy()
        ws.assert_healthy()
    finally:
        close_ws_client(rofex_globals.environment_config[live]["ws_client"])
        pyRofex.set_default_environment(ENV)


def test_rejections_in_documented_forms(rofex: PrimarySim, catalog: Catalog, ws: WsSession) -> None:
    """An account the user can't use -> HTTP 200 ERROR "No tiene acceso a la cuenta X" (DOC, primary.md
    §3.1); an order the market refuses -> PENDING_NEW then an `or` REJECTED with the reason in `text`
    (primary.md §4.3): GTD is not among a BYMA instrument's `timesInForce`."""
    sym = catalog.equity
    resp = pyRofex.send_order(
        ticker=sym, side=Side.BUY, size=1, price=_far_buy_price(catalog, sym), order_type=OrderType.LIMIT,
        account="NOT" + rofex.account,
    )  # fmt: skip
    assert resp == {"status": "ERROR", "description": f"No tiene acceso a la cuenta NOT{rofex.account}",
                    "message": None}, resp  # fmt: skip
    assert "GTD" not in catalog.detail(sym)["timesInForce"]
    start = len(ws.orders)
    ack = pyRofex.send_order(
        ticker=sym, side=Side.BUY, size=1, price=_far_buy_price(catalog, sym), order_type=OrderType.LIMIT,
        time_in_force=TimeInForce.GoodTillDate, expire_date=_expire_date(),
    )  # fmt: skip
    assert ack["status"] == "OK", ack
    cid = ack["order"]["clientId"]
    rej = _report(_wait_report(ws, _is_report(cid, "REJECTED"), f"REJECTED for {cid}", start))
    assert isinstance(rej.get("text"), str) and rej["text"].strip(), rej
    statuses = [_report(m)["status"] for m in ws.orders.items(start) if _is_report(cid)(m)]
    assert statuses[0] == "PENDING_NEW" and "NEW" not in statuses, statuses
    ws.assert_healthy()


# ------------------------------------------------------------------------------------------------
# second environment, WS handshake auth, 401 quirk
# ------------------------------------------------------------------------------------------------
def test_live_environment_and_ws_token_required(primary_sim: PrimarySim, pyrofex_state: None) -> None:
    live = Environment.LIVE
    _point_at(primary_sim, live)
    _init(primary_sim, env=live)
    try:
        segs = pyRofex.get_segments(environment=live)
        assert segs["status"] == "OK", segs
        # a bogus token (active_token skips getToken) must be refused at the WS upgrade
        pyRofex.initialize(
            user=primary_sim.user, password=primary_sim.password, account=primary_sim.account,
            environment=live, active_token="bogus-token",
        )  # fmt: skip
        exc = Recorder("exception")
        md = Recorder("md")
        t0 = time.monotonic()
        pyRofex.init_websocket_connection(
            market_data_handler=md.handle, exception_handler=exc.handle, environment=live
        )
        assert time.monotonic() - t0 < 7
        client = rofex_globals.environment_config[live]["ws_client"]
        close_ws_client(client)
        assert not client.is_connected()
        texts = [f"{type(e).__name__}: {e}" for e in exc.items()]
        assert any("Connection could not be established" in t for t in texts), texts
        assert any(re.search(r"Handshake status (401|403)", t) for t in texts), texts
    finally:
        pyRofex.set_default_environment(ENV)


def test_ws_handshake_rejection_fault_then_retry(primary_sim: PrimarySim, catalog: Catalog) -> None:
    """Fault `reject_ws_handshake`: pyRofex reports the refused upgrade to its exception handler
    (then "Connection could not be established."); calling init_websocket_connection again — the
    only reconnect pyRofex has — succeeds once the fault is spent."""
    live = Environment.LIVE
    _point_at(primary_sim, live)
    _init(primary_sim, env=live)
    session = WsSession()
    primary_sim.faults(reject_ws_handshake=1)
    try:
        pyRofex.init_websocket_connection(
            market_data_handler=session.md.handle,
            error_handler=session.errors.handle,
            exception_handler=session.exceptions.handle,
            environment=live,
        )
        texts = [f"{type(e).__name__}: {e}" for e in session.exceptions.items()]
        assert any("Connection could not be established" in t for t in texts), texts
        assert any(re.search(r"Handshake status 5\d\d", t) for t in texts), texts
        client = rofex_globals.environment_config[live]["ws_client"]
        assert not client.is_connected()
        n_exc = len(session.exceptions)
        pyRofex.init_websocket_connection(environment=live)  # same handlers stay registered
        assert _connected(client), session.exceptions.items(n_exc)
        pyRofex.market_data_subscription(
            tickers=[catalog.future], entries=[MarketDataEntry.LAST], environment=live
        )
        msg = session.md.wait_for(_md_for(catalog.future), WAIT)
        assert msg is not None and set(msg["marketData"]) == {"LA"}, msg
        assert not session.exceptions.items(n_exc) and not session.errors.items()
    finally:
        primary_sim.reset_faults()
        close_ws_client(rofex_globals.environment_config[live]["ws_client"])
        pyRofex.set_default_environment(ENV)


def test_rest_401_quirk_relogin(rofex: PrimarySim) -> None:
    """Unknown token -> 401 JSON; pyRofex re-logs in, returns the 401 body; next call works."""
    cfg = rofex_globals.environment_config[ENV]
    old = cfg["token"]
    cfg["token"] = "expired-" + old
    body = pyRofex.get_segments()
    assert isinstance(body, dict), body
    assert body.get("status") != "OK", body  # the discarded-retry quirk returns the 401 body
    assert cfg["token"] and cfg["token"] != "expired-" + old
    again = pyRofex.get_segments()
    assert again["status"] == "OK", again


def test_idle_close_spares_pinging_pyrofex(primary_sim: PrimarySim, catalog: Catalog, ws: WsSession) -> None:
    """The sim's idle close must count WebSocket pings: a pyRofex socket pinging every second
    (`heartbeat`, websocket_rfx.py:137) survives an idle limit of 3 s, while pyRofex's main socket
    (heartbeat 30 s, nothing sent since its subscriptions) is closed and reported to its exception
    handler. Runs last: it closes the module's main socket."""
    live = Environment.LIVE
    _point_at(primary_sim, live)
    _init(primary_sim, env=live)
    pyRofex._set_environment_parameter("heartbeat", 1, live)
    main_client = rofex_globals.environment_config[ENV]["ws_client"]
    pinger = WsSession()
    primary_sim.faults(idle_close_s=3)
    try:
        t0 = time.monotonic()
        pyRofex.init_websocket_connection(
            market_data_handler=pinger.md.handle,
            error_handler=pinger.errors.handle,
            exception_handler=pinger.exceptions.handle,
            environment=live,
        )
        live_client = rofex_globals.environment_config[live]["ws_client"]
        assert _connected(live_client), pinger.exceptions.items()
        pyRofex.market_data_subscription(
            tickers=[catalog.future], entries=[MarketDataEntry.BIDS], environment=live
        )
        closed = ws.exceptions.wait_for(lambda e: "closed" in str(e).lower(), WAIT)
        assert closed is not None, "the idle main socket (30 s heartbeat) was not closed by idle_close_s=3"
        # on_error (-> exception handler) runs before on_close clears the flag (websocket/_app.py
        # handleDisconnect -> teardown): allow it a bounded moment
        assert poll_until(main_client.is_connected, lambda c: not c, 2.0, interval=0.02) is False
        time.sleep(max(0.0, 6.5 - (time.monotonic() - t0)))  # > 2x the idle limit
        assert live_client.is_connected(), f"pinging socket closed: {pinger.exceptions.items()!r}"
        pinger.assert_healthy()
        assert pinger.md.wait_for(lambda m: True, WAIT) is not None
    finally:
        primary_sim.reset_faults()
        close_ws_client(rofex_globals.environment_config[live]["ws_client"])
        pyRofex.set_default_environment(ENV)
