"""ccxt (unmodified, synchronous) `ccxt.kraken` against the simulator process.

Redirect: the constructor deep-merges the config into ``describe()``
(``settings = self.deep_extend(self.describe(), config)``), so overriding ``urls.api.public`` and
``urls.api.private`` keeps the other url entries. Kraken's URLs carry no ``{hostname}`` placeholder
and kraken has no sandbox URL, so no substitution happens. ``enableRateLimit: False`` only turns off
ccxt's client-side throttle (1 s per public call, ~3 s per private call), which would push this
suite far beyond its time budget.
"""

from __future__ import annotations

import re
import time

import ccxt
import pytest
from tp_helpers import CallCounter, Paced, wait_until

pytestmark = [pytest.mark.thirdparty, pytest.mark.timeout(60)]

SYMBOL = "BTC/USD"
ID_RE = re.compile(r"^[A-Z0-9]{6}-[A-Z0-9]{5}-[A-Z0-9]{6}$")


@pytest.fixture(scope="module")
def ex(sim) -> ccxt.kraken:
    exchange = ccxt.kraken(
        {
            "apiKey": sim.api_key,
            "secret": sim.api_secret,
            "enableRateLimit": False,
            "timeout": 10_000,
            "urls": {"api": {"public": sim.rest, "private": sim.rest}},
        }
    )
    # deep-merge kept the other entries and did not touch ours
    assert exchange.urls["api"]["public"] == sim.rest and exchange.urls["api"]["private"] == sim.rest
    assert "zendesk" in exchange.urls["api"]
    exchange.load_markets()
    # Kraken's per-key private call counter (TradesHistory costs 2, trading calls 0): pace the
    # private calls the way ccxt's own throttle would, without its fixed 1-3 s per call
    costs = {
        "fetch_balance": 1,
        "fetch_open_orders": 1,
        "fetch_closed_orders": 1,
        "fetch_order": 1,
        "fetch_my_trades": 2,
        "fetch_ledger": 2,
        "edit_order": 0,
        "create_orders": 0,
        "cancel_orders": 0,
        "create_market_buy_order_with_cost": 0,
    }
    return Paced(exchange, CallCounter(), costs)


def _far_buy_price(ex: ccxt.kraken) -> float:
    bid = ex.fetch_order_book(SYMBOL, 10)["bids"][0][0]
    return float(ex.price_to_precision(SYMBOL, bid * 0.5))


def _amount(ex: ccxt.kraken) -> float:
    m = ex.market(SYMBOL)
    return float(ex.amount_to_precision(SYMBOL, max(m["limits"]["amount"]["min"] * 2, 0.001)))


def test_load_markets(ex):
    m = ex.market(SYMBOL)
    assert m["id"] == "XXBTZUSD"
    assert m["altname"] == "XBTUSD" and m["wsId"] == "XBT/USD"
    assert (m["base"], m["quote"], m["baseId"], m["quoteId"]) == ("BTC", "USD", "BTC", "USD")
    assert m["active"] is True and m["spot"] is True
    assert m["precision"]["price"] == 0.1 and m["precision"]["amount"] == 1e-08
    assert m["limits"]["amount"]["min"] > 0 and m["limits"]["cost"]["min"] > 0
    assert 0 < m["maker"] <= m["taker"] < 0.01
    assert ex.markets_by_id["XXBTZUSD"][0]["symbol"] == SYMBOL
    assert "BTC" in ex.currencies and "USD" in ex.currencies
    assert ex.currencies["BTC"]["id"] == "XXBT" and ex.currencies["BTC"]["precision"] == 1e-10
    assert ex.currencies["USD"]["id"] == "ZUSD"
    assert ex.fetch_status()["status"] == "ok"
    assert abs(ex.fetch_time() / 1000 - time.time()) < 5


def test_fetch_ticker(ex):
    t = ex.fetch_ticker(SYMBOL)
    assert t["symbol"] == SYMBOL
    assert 0 < t["bid"] < t["ask"]
    assert t["bidVolume"] > 0 and t["askVolume"] > 0
    assert t["low"] <= t["last"] <= t["high"]
    assert t["baseVolume"] >= 0 and t["vwap"] > 0 and t["open"] > 0
    assert float(t["info"]["c"][0]) == t["last"]


def test_fetch_order_book(ex):
    ob = ex.fetch_order_book(SYMBOL, 10)
    assert ob["symbol"] == SYMBOL
    bids, asks = ob["bids"], ob["asks"]
    assert 0 < len(bids) <= 10 and 0 < len(asks) <= 10
    assert [b[0] for b in bids] == sorted((b[0] for b in bids), reverse=True)
    assert [a[0] for a in asks] == sorted(a[0] for a in asks)
    assert bids[0][0] < asks[0][0]
    for price, amount, ts in bids + asks:
        assert price > 0 and amount >= 0 and isinstance(ts, int)  # Depth shows volumes with 3 decimals
        assert round(price * 10) == pytest.approx(price * 10)  # on the 0.1 tick grid
    full = ex.fetch_order_book(SYMBOL)
    assert len(full["bids"]) >= len(bids)


def test_fetch_ohlcv(ex):
    candles = ex.fetch_ohlcv(SYMBOL, "1m")
    assert candles
    ts = [c[0] for c in candles]
    assert ts == sorted(ts) and len(set(ts)) == len(ts)
    for t, o, h, low, c, v in candles:
        assert t % 60_000 == 0
        assert low <= min(o, c) and h >= max(o, c) and v >= 0
    assert abs(ts[-1] / 1000 - time.time()) < 180
    limited = ex.fetch_ohlcv(SYMBOL, "1m", limit=5)
    assert len(limited) == 5 and all(c[0] in ts for c in limited)
    hourly = ex.fetch_ohlcv(SYMBOL, "1h")
    assert hourly and all(c[0] % 3_600_000 == 0 for c in hourly)


def test_fetch_trades(ex):
    trades = ex.fetch_trades(SYMBOL)
    assert trades
    for tr in trades:
        assert tr["symbol"] == SYMBOL
        assert tr["side"] in ("buy", "sell") and tr["type"] in ("limit", "market")
        assert tr["price"] > 0 and tr["amount"] > 0 and tr["id"]
        assert abs(tr["cost"] - tr["price"] * tr["amount"]) < 1e-6 * max(1.0, tr["cost"])
    ts = [t["timestamp"] for t in trades]
    assert ts == sorted(ts)
    assert abs(ts[-1] / 1000 - time.time()) < 300
    few = ex.fetch_trades(SYMBOL, limit=5)
    assert 0 < len(few) <= 5


def test_fetch_balance(ex):
    bal = ex.fetch_balance()
    for code in ("BTC", "USD"):
        acc = bal[code]
        assert acc["total"] >= acc["used"] >= 0
        assert acc["free"] == pytest.approx(acc["total"] - acc["used"])
    assert bal["USD"]["total"] > 1000
    assert set(bal["info"]["result"]) >= {"XXBT", "ZUSD"}


def test_limit_order_then_cancel(ex):
    price = _far_buy_price(ex)
    amount = _amount(ex)
    used_before = ex.fetch_balance()["USD"]["used"]

    order = ex.create_order(SYMBOL, "limit", "buy", amount, price)
    oid = order["id"]
    assert ID_RE.match(oid), order
    assert order["symbol"] == SYMBOL and order["side"] == "buy" and order["type"] == "limit"
    assert order["amount"] == amount and order["price"] == price

    opened = {o["id"]: o for o in ex.fetch_open_orders()}
    assert oid in opened, list(opened)
    o = opened[oid]
    assert o["status"] == "open" and o["symbol"] == SYMBOL
    assert o["side"] == "buy" and o["type"] == "limit"
    assert o["price"] == price and o["amount"] == amount and o["filled"] == 0
    assert abs(o["timestamp"] / 1000 - time.time()) < 30
    assert ex.fetch_open_orders(SYMBOL)  # filtering by symbol works too
    assert ex.fetch_balance()["USD"]["used"] - used_before >= amount * price - 1e-6

    ex.cancel_order(oid)
    assert oid not in {o["id"] for o in ex.fetch_open_orders()}
    assert ex.fetch_balance()["USD"]["used"] == pytest.approx(used_before)
    with pytest.raises(ccxt.OrderNotFound):
        ex.cancel_order(oid)


def test_market_order_my_trades_and_balance(ex):
    amount = _amount(ex)
    before = ex.fetch_balance()
    order = ex.create_order(SYMBOL, "market", "buy", amount)
    oid = order["id"]
    assert ID_RE.match(oid), order
    assert order["type"] == "market" and order["side"] == "buy" and order["amount"] == amount

    mine = wait_until(
        lambda: [t for t in ex.fetch_my_trades() if t["order"] == oid],
        5,
        "fetch_my_trades to list the fills of the market order",
        interval=0.1,
    )
    assert sum(t["amount"] for t in mine) == pytest.approx(amount, abs=1e-12)
    cost = sum(t["cost"] for t in mine)
    fee = sum(t["fee"]["cost"] for t in mine)
    for t in mine:
        assert t["symbol"] == SYMBOL and t["side"] == "buy" and t["type"] == "market"
        assert t["fee"]["currency"] == "USD" and t["fee"]["cost"] > 0
        assert t["cost"] == pytest.approx(t["price"] * t["amount"], abs=1e-4)
        assert abs(t["timestamp"] / 1000 - time.time()) < 30
    assert fee == pytest.approx(cost * ex.market(SYMBOL)["taker"], abs=2e-4)
    # the filled order is no longer open
    assert oid not in {o["id"] for o in ex.fetch_open_orders()}

    after = ex.fetch_balance()
    assert after["BTC"]["total"] - before["BTC"]["total"] == pytest.approx(amount, abs=1e-10)
    assert after["USD"]["total"] - before["USD"]["total"] == pytest.approx(-(cost + fee), abs=2e-4)
    assert after["USD"]["used"] == pytest.approx(before["USD"]["used"])


def test_client_order_id_fetch_order_and_errors(ex):
    price = _far_buy_price(ex)
    amount = _amount(ex)
    order = ex.create_order(SYMBOL, "limit", "buy", amount, price, {"clientOrderId": "tp-cl-1"})
    oid = order["id"]
    o = next(o for o in ex.fetch_open_orders() if o["id"] == oid)
    assert o["clientOrderId"] == "tp-cl-1"
    fetched = ex.fetch_order(oid)  # QueryOrders
    assert fetched["id"] == oid and fetched["status"] == "open" and fetched["symbol"] == SYMBOL
    assert fetched["clientOrderId"] == "tp-cl-1"
    ex.cancel_order(oid, None, {"clientOrderId": "tp-cl-1"})  # CancelOrder by cl_ord_id
    assert ex.fetch_order(oid)["status"] == "canceled"
    closed = {o["id"]: o for o in ex.fetch_closed_orders()}
    assert closed[oid]["status"] == "canceled" and closed[oid]["filled"] == 0

    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order(SYMBOL, "limit", "buy", 1000, price)
    with pytest.raises(ccxt.InvalidOrder):
        ex.create_order(SYMBOL, "limit", "buy", ex.market(SYMBOL)["limits"]["amount"]["min"] / 2, price)
    # captured Kraken string; ccxt only maps "EQuery:Invalid asset pair" to BadSymbol
    with pytest.raises(ccxt.ExchangeError, match="EQuery:Unknown asset pair"):
        ex.publicGetTicker({"pair": "NOPENOPE"})


# ---- client features outside the current brief: xfail while the simulator lacks them ------------
# (see FINDINGS.md "Coverage gaps"; they turn into XPASS once implemented)
@pytest.mark.xfail(
    reason="FINDINGS F-1: AddOrder oflags=viqc refused", raises=ccxt.ExchangeError, strict=False
)
def test_market_buy_with_cost_viqc(ex):
    before = ex.fetch_balance()["USD"]["total"]
    order = ex.create_market_buy_order_with_cost(SYMBOL, 50)
    assert ID_RE.match(order["id"])
    spent = before - ex.fetch_balance()["USD"]["total"]
    assert 50 <= spent <= 50 * 1.01  # cost 50 USD + taker fee


@pytest.mark.xfail(
    reason="FINDINGS F-2: AddOrderBatch/CancelOrderBatch not simulated", raises=ccxt.ExchangeError
)
def test_create_orders_and_cancel_orders_batch(ex):
    price = _far_buy_price(ex)
    orders = ex.create_orders(
        [
            {"symbol": SYMBOL, "type": "limit", "side": "buy", "amount": 0.001, "price": price}
            for _ in range(2)
        ]
    )
    assert len(orders) == 2 and all(ID_RE.match(o["id"]) for o in orders)
    ex.cancel_orders([o["id"] for o in orders])
    assert not {o["id"] for o in orders} & {o["id"] for o in ex.fetch_open_orders()}


def test_edit_order_amend(ex):
    price = _far_buy_price(ex)
    order = ex.create_order(SYMBOL, "limit", "buy", 0.001, price)
    try:
        ex.edit_order(order["id"], SYMBOL, "limit", "buy", 0.002, price)
        o = next(o for o in ex.fetch_open_orders() if o["id"] == order["id"])
        assert o["amount"] == 0.002
    finally:
        ex.cancel_order(order["id"])


@pytest.mark.xfail(reason="FINDINGS F-2: Ledgers not simulated", raises=ccxt.ExchangeError)
def test_fetch_ledger(ex):
    entries = ex.fetch_ledger()
    assert entries and {e["currency"] for e in entries} >= {"BTC", "USD"}
