"""python-kraken-sdk (unmodified) REST clients against the simulator process.

`kraken.spot.Market`, `User`, `Trade` are pointed at the simulator with their documented
``url=`` argument; nothing of the SDK is patched.
"""

from __future__ import annotations

import base64
import re
import time
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from email.utils import parsedate_to_datetime

import pytest
from kraken.exceptions import KrakenUnknownOrderError
from kraken.spot import Market, Trade, User
from tp_helpers import CallCounter, Paced, wait_until

pytestmark = [pytest.mark.thirdparty, pytest.mark.timeout(60)]

PAIR_ID = "XXBTZUSD"
ALTNAME = "XBTUSD"
TXID_RE = re.compile(r"^[A-Z0-9]{6}-[A-Z0-9]{5}-[A-Z0-9]{6}$")
DEC_RE = re.compile(r"^-?\d+(\.\d+)?$")


def D(x: object) -> Decimal:
    return Decimal(str(x))


@pytest.fixture(scope="module")
def market(sim) -> Market:
    return Market(url=sim.rest)


# private REST costs on Kraken's per-key call counter (trading calls have their own limiter)
COSTS = {
    "get_account_balance": 1,
    "get_balances": 1,
    "get_balance": 1,
    "get_open_orders": 1,
    "get_closed_orders": 1,
    "get_trades_history": 2,
    "request": 1,
    "create_order": 0,
    "cancel_order": 0,
}


@pytest.fixture(scope="module")
def counter() -> CallCounter:
    return CallCounter()


@pytest.fixture(scope="module")
def user(sim, counter) -> User:
    return Paced(User(key=sim.api_key, secret=sim.api_secret, url=sim.rest), counter, COSTS)


@pytest.fixture(scope="module")
def trade(sim, counter) -> Trade:
    return Paced(Trade(key=sim.api_key, secret=sim.api_secret, url=sim.rest), counter, COSTS)


@pytest.fixture(scope="module")
def pair_info(market) -> dict:
    return market.get_asset_pairs(pair=ALTNAME)[PAIR_ID]


def _is_dec(s: object) -> bool:
    return isinstance(s, str) and bool(DEC_RE.match(s))


def _far_limit_buy_price(market: Market, pair_info: dict) -> Decimal:
    """Half the best bid, on the tick grid: never fills in the living market."""
    book = market.get_order_book(pair=ALTNAME, count=1)[PAIR_ID]
    best_bid = D(book["bids"][0][0])
    tick = D(pair_info["tick_size"])
    return ((best_bid / 2) / tick).to_integral_value(rounding=ROUND_DOWN) * tick


def _order_volume(pair_info: dict, price: Decimal) -> Decimal:
    """Small volume that satisfies ordermin and costmin, at lot precision."""
    lot = Decimal(1).scaleb(-int(pair_info["lot_decimals"]))
    vol = max(D(pair_info["ordermin"]) * 2, Decimal("0.001"))
    costmin = D(pair_info.get("costmin") or "0")
    while vol * price < costmin * 2:
        vol *= 2
    return vol.quantize(lot)


# ---------------------------------------------------------------- public ----------------------
def test_server_time(market):
    res = market.request(method="GET", uri="/0/public/Time", auth=False)
    assert isinstance(res["unixtime"], int)
    assert abs(res["unixtime"] - time.time()) < 5
    assert abs(parsedate_to_datetime(res["rfc1123"]).timestamp() - res["unixtime"]) <= 1


def test_system_status(market):
    res = market.get_system_status()
    assert res["status"] == "online"
    ts = datetime.fromisoformat(res["timestamp"].replace("Z", "+00:00"))
    assert abs(ts.timestamp() - time.time()) < 120


def test_assets(market):
    res = market.get_assets()
    assert {"XXBT", "ZUSD"} <= set(res)
    assert res["XXBT"]["altname"] == "XBT"
    assert res["ZUSD"]["altname"] == "USD"
    for asset_id in ("XXBT", "ZUSD"):
        a = res[asset_id]
        assert a["aclass"] == "currency"
        assert isinstance(a["decimals"], int) and isinstance(a["display_decimals"], int)
        assert a["status"] == "enabled"
    assert res["XXBT"]["decimals"] == 10 and res["ZUSD"]["decimals"] == 4
    one = market.get_assets(assets="XXBT")
    assert set(one) == {"XXBT"}
    assert one["XXBT"] == res["XXBT"]


def test_asset_pairs(market):
    all_pairs = market.get_asset_pairs()
    assert PAIR_ID in all_pairs
    p = all_pairs[PAIR_ID]
    assert p["altname"] == ALTNAME
    assert p["wsname"] == "XBT/USD"
    assert (p["base"], p["quote"]) == ("XXBT", "ZUSD")
    for k in ("pair_decimals", "lot_decimals", "cost_decimals"):
        assert isinstance(p[k], int), k
    for k in ("ordermin", "costmin", "tick_size"):
        assert _is_dec(p[k]), (k, p[k])
    assert D(p["tick_size"]) == Decimal(1).scaleb(-p["pair_decimals"])
    assert p["status"] == "online"
    assert p["fees"] and p["fees_maker"]
    # asked with the altname -> keyed by pair id; asked with the slash name -> keyed by it
    by_alt = market.get_asset_pairs(pair=ALTNAME)
    assert list(by_alt) == [PAIR_ID]
    assert by_alt[PAIR_ID] == p
    by_ws = market.get_asset_pairs(pair="BTC/USD")
    assert list(by_ws) == ["BTC/USD"]
    assert by_ws["BTC/USD"]["pair_decimals"] == p["pair_decimals"]
    assert by_ws["BTC/USD"]["lot_decimals"] == p["lot_decimals"]


def test_ticker(market):
    res = market.get_ticker(pair=ALTNAME)
    assert list(res) == [PAIR_ID]
    t = res[PAIR_ID]
    assert len(t["a"]) == 3 and len(t["b"]) == 3 and len(t["c"]) == 2
    assert all(_is_dec(x) for x in t["a"] + t["b"] + t["c"])
    assert D(t["b"][0]) < D(t["a"][0])
    for k in ("v", "p", "l", "h"):
        assert len(t[k]) == 2 and all(_is_dec(x) for x in t[k]), k
    assert all(isinstance(x, int) for x in t["t"])
    assert D(t["l"][1]) <= D(t["h"][1])
    assert D(t["l"][1]) <= D(t["c"][0]) <= D(t["h"][1])
    assert _is_dec(t["o"])


def test_order_book(market, pair_info):
    res = market.get_order_book(pair=ALTNAME, count=10)
    assert list(res) == [PAIR_ID]
    book = res[PAIR_ID]
    asks, bids = book["asks"], book["bids"]
    assert 0 < len(asks) <= 10 and 0 < len(bids) <= 10
    for lvl in asks + bids:
        assert len(lvl) == 3 and _is_dec(lvl[0]) and _is_dec(lvl[1]) and isinstance(lvl[2], int)
        assert D(lvl[1]) >= 0  # Depth volumes are shown with 3 decimals; dust levels read 0.000
        assert D(lvl[0]) % D(pair_info["tick_size"]) == 0
    ask_px = [D(a[0]) for a in asks]
    bid_px = [D(b[0]) for b in bids]
    assert ask_px == sorted(ask_px) and len(set(ask_px)) == len(ask_px)
    assert bid_px == sorted(bid_px, reverse=True) and len(set(bid_px)) == len(bid_px)
    assert bid_px[0] < ask_px[0]
    big = market.get_order_book(pair=ALTNAME, count=100)[PAIR_ID]
    assert len(big["asks"]) > 10 or len(big["asks"]) == len(asks)


def test_ohlc(market):
    res = market.get_ohlc(pair=ALTNAME, interval=1)
    assert set(res) == {PAIR_ID, "last"}
    rows = res[PAIR_ID]
    assert rows and len(rows) <= 720
    assert isinstance(res["last"], int)
    times = [r[0] for r in rows]
    assert times == sorted(times) and len(set(times)) == len(times)
    for r in rows:
        assert len(r) == 8
        assert isinstance(r[0], int) and r[0] % 60 == 0
        o, h, low, c, vwap, vol = (D(x) for x in r[1:7])
        assert all(_is_dec(x) for x in r[1:7])
        assert isinstance(r[7], int) and r[7] >= 0
        assert low <= min(o, c) and h >= max(o, c) and vol >= 0
        if r[7] > 0:
            assert low <= vwap <= h
    assert abs(rows[-1][0] - time.time()) < 180


def test_recent_trades(market):
    res = market.get_recent_trades(pair=ALTNAME)
    assert set(res) == {PAIR_ID, "last"}
    rows = res[PAIR_ID]
    assert rows, "the living market should have traded already"
    assert isinstance(res["last"], str) and res["last"].isdigit()
    for r in rows:
        assert len(r) == 7
        assert _is_dec(r[0]) and _is_dec(r[1]) and D(r[0]) > 0 and D(r[1]) > 0
        assert isinstance(r[2], float)
        assert r[3] in ("b", "s") and r[4] in ("m", "l") and isinstance(r[5], str)
        assert isinstance(r[6], int)
    times = [r[2] for r in rows]
    ids = [r[6] for r in rows]
    assert times == sorted(times)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert int(res["last"]) >= int(times[-1] * 1e9) - 10**6
    few = market.get_recent_trades(pair=ALTNAME, count=3)[PAIR_ID]
    assert len(few) == min(3, len(rows))
    assert few[-1][6] == rows[-1][6]


# ---------------------------------------------------------------- private: account -----------
def test_balance_and_extended_balance(user):
    bal = user.get_account_balance()
    ex = user.get_balances()
    assert {"XXBT", "ZUSD"} <= set(bal)
    assert set(bal) == set(ex)
    for asset, amount in bal.items():
        assert _is_dec(amount), (asset, amount)
        assert _is_dec(ex[asset]["balance"]) and _is_dec(ex[asset]["hold_trade"])
        assert D(ex[asset]["balance"]) == D(amount)
        assert 0 <= D(ex[asset]["hold_trade"]) <= D(ex[asset]["balance"])
    # asset precision: ZUSD 4 decimals, XXBT 10
    assert len(bal["ZUSD"].split(".")[1]) == 4
    assert len(bal["XXBT"].split(".")[1]) == 10
    assert D(bal["ZUSD"]) > 1000, "account must be funded for the trading tests"
    usd = user.get_balance(currency="USD")  # SDK helper over BalanceEx
    assert usd["currency"] == "ZUSD"
    assert usd["balance"] == float(ex["ZUSD"]["balance"])


def test_open_closed_orders_and_trades_history_shapes(user):
    oo = user.get_open_orders()
    assert set(oo) == {"open"} and isinstance(oo["open"], dict)
    co = user.get_closed_orders()
    assert isinstance(co["closed"], dict) and isinstance(co["count"], int)
    assert co["count"] >= len(co["closed"])
    th = user.get_trades_history()
    assert isinstance(th["trades"], dict) and isinstance(th["count"], int)
    assert th["count"] >= len(th["trades"])


def test_websockets_token(user):
    # the WS client calls it on its async base client; the sync User has the same generic
    # request() with the same signing
    res = user.request(method="POST", uri="/0/private/GetWebSocketsToken")
    assert res["expires"] == 900
    tok = res["token"]
    assert isinstance(tok, str) and len(tok) == 43
    base64.b64decode(tok + "=")  # base64 alphabet, no padding


def test_private_call_with_bad_signature_is_rejected(sim, counter):
    from kraken.exceptions import KrakenInvalidSignatureError

    wrong = base64.b64encode(b"\x01" * 64).decode()
    u = Paced(User(key=sim.api_key, secret=wrong, url=sim.rest), counter, COSTS)
    with pytest.raises(KrakenInvalidSignatureError):
        u.get_account_balance()


# ---------------------------------------------------------------- private: trading -----------
def test_limit_order_create_and_cancel(market, user, trade, pair_info):
    price = _far_limit_buy_price(market, pair_info)
    vol = _order_volume(pair_info, price)
    hold_before = D(user.get_balances()["ZUSD"]["hold_trade"])

    res = trade.create_order(ordertype="limit", side="buy", pair=ALTNAME, volume=str(vol), price=str(price))
    assert len(res["txid"]) == 1 and TXID_RE.match(res["txid"][0]), res
    txid = res["txid"][0]
    pd, ld = int(pair_info["pair_decimals"]), int(pair_info["lot_decimals"])
    assert res["descr"]["order"] == f"buy {vol:.{ld}f} {ALTNAME} @ limit {price:.{pd}f}"

    open_ = user.get_open_orders()["open"]
    assert txid in open_, open_
    o = open_[txid]
    assert o["status"] == "open"
    assert o["descr"]["pair"] == ALTNAME and o["descr"]["type"] == "buy"
    assert o["descr"]["ordertype"] == "limit" and D(o["descr"]["price"]) == price
    assert D(o["vol"]) == vol and D(o["vol_exec"]) == 0
    assert isinstance(o["opentm"], float) and abs(o["opentm"] - time.time()) < 30

    hold_open = D(user.get_balances()["ZUSD"]["hold_trade"])
    assert hold_open - hold_before >= vol * price, (hold_before, hold_open)

    assert trade.cancel_order(txid=txid) == {"count": 1}
    closed = user.get_closed_orders()["closed"]
    assert txid in closed and closed[txid]["status"] == "canceled"
    assert D(closed[txid]["vol_exec"]) == 0
    assert D(user.get_balances()["ZUSD"]["hold_trade"]) == hold_before
    with pytest.raises(KrakenUnknownOrderError):
        trade.cancel_order(txid=txid)


def test_market_order_fills_and_balances_follow(market, user, trade, pair_info):
    before = user.get_balances()
    best_ask = D(market.get_order_book(pair=ALTNAME, count=1)[PAIR_ID]["asks"][0][0])
    vol = _order_volume(pair_info, best_ask)

    res = trade.create_order(ordertype="market", side="buy", pair=ALTNAME, volume=str(vol))
    txid = res["txid"][0]
    assert TXID_RE.match(txid)
    ld = int(pair_info["lot_decimals"])
    assert res["descr"]["order"] == f"buy {vol:.{ld}f} {ALTNAME} @ market"

    closed = wait_until(
        lambda: (c := user.get_closed_orders()["closed"]).get(txid, {}).get("status") == "closed" and c,
        5,
        "market order to be closed",
        interval=0.1,
    )
    o = closed[txid]
    assert D(o["vol_exec"]) == D(o["vol"]) == vol
    cost, fee, avg = D(o["cost"]), D(o["fee"]), D(o["price"])
    assert cost > 0 and fee > 0
    assert abs(avg * vol - cost) <= Decimal("0.01"), (avg, vol, cost)

    history = user.get_trades_history()["trades"]
    fills = [t for t in history.values() if t["ordertxid"] == txid]
    assert all(TXID_RE.match(k) for k, t in history.items() if t["ordertxid"] == txid)
    assert fills, "TradesHistory must list the fill(s) of the market order"
    assert sum(D(t["vol"]) for t in fills) == vol
    assert abs(sum(D(t["cost"]) for t in fills) - cost) <= Decimal("0.00002")
    assert abs(sum(D(t["fee"]) for t in fills) - fee) <= Decimal("0.00002")
    # taker fee at the lowest tier (AssetPairs fees[0]), not the maker rate; rounded per fill
    taker_pct = D(pair_info["fees"][0][1])
    assert abs(fee - cost * taker_pct / 100) <= Decimal("0.00005") * len(fills) + Decimal("0.00001"), (
        fee,
        cost,
        taker_pct,
    )
    for t in fills:
        assert t["type"] == "buy" and t["ordertype"] == "market"
        assert t["pair"] in (PAIR_ID, ALTNAME)
        assert isinstance(t["time"], float) and abs(t["time"] - time.time()) < 30

    after = user.get_balances()
    d_usd = D(after["ZUSD"]["balance"]) - D(before["ZUSD"]["balance"])
    d_btc = D(after["XXBT"]["balance"]) - D(before["XXBT"]["balance"])
    assert d_btc == vol, (d_btc, vol)
    # ledger amounts are at the asset's precision (ZUSD: 4 decimals)
    assert abs(d_usd + cost + fee) <= Decimal("0.0002"), (d_usd, cost, fee)
    assert D(after["ZUSD"]["hold_trade"]) == D(before["ZUSD"]["hold_trade"])
    bal = user.get_account_balance()
    assert D(bal["XXBT"]) == D(after["XXBT"]["balance"])
    assert D(bal["ZUSD"]) == D(after["ZUSD"]["balance"])


def test_validate_only_order_userref_and_errors(market, user, trade, pair_info):
    from kraken.exceptions import KrakenInsufficientFundsError, KrakenOrderMinimumNotMetError

    price = _far_limit_buy_price(market, pair_info)
    vol = _order_volume(pair_info, price)
    # validate=True: described, not placed (no txid)
    res = trade.create_order(
        ordertype="limit", side="buy", pair=ALTNAME, volume=str(vol), price=str(price), validate=True
    )
    assert "txid" not in res and res["descr"]["order"].startswith("buy ")
    # userref: placed, then canceled by the userref (txid=int)
    res = trade.create_order(
        ordertype="limit", side="buy", pair=ALTNAME, volume=str(vol), price=str(price), userref=4242
    )
    txid = res["txid"][0]
    opened = user.get_open_orders(userref=4242)["open"]
    assert list(opened) == [txid] and opened[txid]["userref"] == 4242
    assert trade.cancel_order(txid=4242) == {"count": 1}
    assert user.get_open_orders()["open"] == {}
    with pytest.raises(KrakenInsufficientFundsError):
        trade.create_order(ordertype="limit", side="buy", pair=ALTNAME, volume="1000", price=str(price))
    with pytest.raises(KrakenOrderMinimumNotMetError):
        small = Decimal(pair_info["ordermin"]) / 2
        trade.create_order(ordertype="limit", side="buy", pair=ALTNAME, volume=str(small), price=str(price))


def test_recent_trades_since_cursor(market):
    first = market.get_recent_trades(pair=ALTNAME)
    cursor = first["last"]
    newest_id = first[PAIR_ID][-1][6]
    # the living market keeps trading: ask again from the cursor
    later = wait_until(
        lambda: (r := market.get_recent_trades(pair=ALTNAME, since=cursor))[PAIR_ID] and r,
        10,
        "trades after the cursor",
        interval=0.2,
    )
    rows = later[PAIR_ID]
    assert all(r[6] > newest_id for r in rows), "only trades after the cursor"
    assert rows[0][6] == newest_id + 1, "no trade skipped between the two pages"
    assert int(later["last"]) > int(cursor)
