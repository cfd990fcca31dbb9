"""python-kraken-sdk (unmodified) `SpotWSClient` (WS v2) against the simulator process.

URL plumbing (kraken/spot/websocket/__init__.py, 3.5.1): the client appends ``API_V = "/v2"``
to ``ws_url`` and ``auth_ws_url``; so ``ws_url`` is the simulator's public base
(``ws://127.0.0.1:P``) and ``auth_ws_url`` is ``ws://127.0.0.1:P/auth`` which the client turns
into ``ws://127.0.0.1:P/auth/v2``. The private connection first calls REST
``GetWebSocketsToken`` through ``rest_url`` and injects the token in every private message.
"""

from __future__ import annotations

import asyncio
import math
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

import pytest
from kraken.spot import Market, SpotWSClient, User
from tp_helpers import async_wait_until, bounded

pytestmark = [pytest.mark.thirdparty, pytest.mark.timeout(90)]

SYMBOL = "BTC/USD"
PAIR_ID = "XXBTZUSD"


def D(x: object) -> Decimal:
    return Decimal(str(x))


def _ts(s: str) -> datetime:
    # RFC3339 with µs or ns fraction
    head, _, frac = s.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00" if frac else f"{head}+00:00")


class Recorder:
    def __init__(self) -> None:
        self.msgs: list[dict[str, Any]] = []

    async def on_message(self, message: dict[str, Any]) -> None:
        self.msgs.append(message)

    def channel(self, name: str, type_: str | None = None) -> list[dict[str, Any]]:
        return [
            m
            for m in self.msgs
            if isinstance(m, dict) and m.get("channel") == name and (type_ is None or m.get("type") == type_)
        ]

    def acks(self, method: str, req_id: int | None = None) -> list[dict[str, Any]]:
        return [
            m
            for m in self.msgs
            if isinstance(m, dict)
            and m.get("method") == method
            and (req_id is None or m.get("req_id") == req_id)
        ]

    def executions_for(self, order_id: str) -> list[dict[str, Any]]:
        return [e for m in self.channel("executions") for e in m["data"] if e.get("order_id") == order_id]


async def _start(client: SpotWSClient) -> None:
    # SpotWSClientBase.start() loops forever if a socket never opens (its timeout counter is
    # reset on every iteration), so bound it here.
    await bounded(client.start(), 15, "SpotWSClient.start()")
    assert not client.exception_occur


async def _close(client: SpotWSClient) -> None:
    await bounded(client.close(), 25, "SpotWSClient.close()")


def _assert_ack(ack: dict[str, Any], channel: str) -> dict[str, Any]:
    assert ack["success"] is True, ack
    assert "error" not in ack
    assert ack["result"]["channel"] == channel
    assert "time_in" in ack and "time_out" in ack
    assert _ts(ack["time_in"]) <= _ts(ack["time_out"])
    return ack["result"]


async def test_public_channels(sim):
    rec = Recorder()
    client = SpotWSClient(callback=rec.on_message, rest_url=sim.rest, ws_url=sim.pks_ws_url)
    await _start(client)
    try:
        await client.subscribe(params={"channel": "ticker", "symbol": [SYMBOL]}, req_id=1)
        await client.subscribe(params={"channel": "book", "symbol": [SYMBOL], "depth": 10}, req_id=2)
        await client.subscribe(params={"channel": "trade", "symbol": [SYMBOL]}, req_id=3)
        await client.subscribe(params={"channel": "ohlc", "symbol": [SYMBOL], "interval": 1}, req_id=4)
        await client.subscribe(params={"channel": "instrument"}, req_id=5)

        await async_wait_until(lambda: all(rec.acks("subscribe", i) for i in (1, 2, 3, 4, 5)), 10, "5 acks")
        await async_wait_until(
            lambda: (
                rec.channel("ticker", "snapshot")
                and rec.channel("instrument", "snapshot")
                and rec.channel("book", "snapshot")
                and len(rec.channel("book", "update")) >= 5
                and rec.channel("ohlc", "snapshot")
                and rec.channel("trade", "update")
            ),
            20,
            "ticker/book/ohlc snapshots, book updates and a live trade",
        )
        # the same market over REST, right after (closed candles and past trades are stable)
        market = Market(url=sim.rest)
        rest_ohlc = market.get_ohlc(pair="XBTUSD", interval=1)[PAIR_ID]
        rest_trades = market.get_recent_trades(pair="XBTUSD")[PAIR_ID]
        rest_pairs = market.get_asset_pairs()
        rest_assets = market.get_assets()
    finally:
        await _close(client)

    # status on connect, pong for the SDK's {"method":"ping"}
    status = rec.channel("status")
    assert status, "status frame expected on connect"
    st = status[0]["data"][0]
    assert st["system"] == "online" and st["api_version"] == "v2"
    assert isinstance(st["connection_id"], int) and isinstance(st["version"], str)
    assert rec.msgs[0].get("channel") == "status", rec.msgs[0]
    pongs = rec.acks("pong")
    assert pongs and "time_in" in pongs[0] and "time_out" in pongs[0]

    # acks echo the subscription (the SDK replays them on reconnect)
    r = _assert_ack(rec.acks("subscribe", 1)[0], "ticker")
    assert r["symbol"] == SYMBOL
    r = _assert_ack(rec.acks("subscribe", 2)[0], "book")
    assert r["symbol"] == SYMBOL and r["depth"] == 10
    r = _assert_ack(rec.acks("subscribe", 3)[0], "trade")
    assert r["symbol"] == SYMBOL
    r = _assert_ack(rec.acks("subscribe", 4)[0], "ohlc")
    assert r["symbol"] == SYMBOL and r["interval"] == 1
    _assert_ack(rec.acks("subscribe", 5)[0], "instrument")
    subs = client.active_public_subscriptions
    by_channel = {s["channel"]: s for s in subs}
    assert set(by_channel) == {"ticker", "book", "trade", "ohlc", "instrument"}, subs
    assert by_channel["book"]["symbol"] == [SYMBOL] and by_channel["book"]["depth"] == 10
    assert by_channel["ohlc"]["interval"] == 1

    # instrument (data is an object, not a list) agrees with REST
    instr = rec.channel("instrument", "snapshot")
    assert instr and isinstance(instr[0]["data"], dict)
    _check_instrument_matches_rest(instr[0]["data"], rest_pairs, rest_assets)

    # ticker
    t = rec.channel("ticker", "snapshot")[0]["data"]
    assert len(t) == 1
    t = t[0]
    for k in (
        "bid",
        "bid_qty",
        "ask",
        "ask_qty",
        "last",
        "volume",
        "vwap",
        "low",
        "high",
        "change",
        "change_pct",
    ):
        assert isinstance(t[k], int | float) and not isinstance(t[k], bool), (k, t)
    assert t["symbol"] == SYMBOL
    assert 0 < t["bid"] < t["ask"]
    assert t["low"] <= t["last"] <= t["high"]

    # book
    snap = rec.channel("book", "snapshot")[0]["data"][0]
    assert snap["symbol"] == SYMBOL
    assert len(snap["bids"]) == 10 and len(snap["asks"]) == 10
    bids = [lv["price"] for lv in snap["bids"]]
    asks = [lv["price"] for lv in snap["asks"]]
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
    assert bids[0] < asks[0]
    assert isinstance(snap["checksum"], int) and snap["checksum"] > 0
    for m in rec.channel("book", "update"):
        d = m["data"][0]
        assert d["symbol"] == SYMBOL and isinstance(d["checksum"], int)
        assert isinstance(d["bids"], list) and isinstance(d["asks"], list)
        assert d["bids"] or d["asks"]
        assert "timestamp" in d

    # trade
    trades = [x for m in rec.channel("trade", "update") for x in m["data"]]
    for tr in trades:
        assert tr["symbol"] == SYMBOL and tr["side"] in ("buy", "sell")
        assert tr["ord_type"] in ("limit", "market")
        assert tr["price"] > 0 and tr["qty"] > 0 and isinstance(tr["trade_id"], int)
        _ts(tr["timestamp"])
    ids = [tr["trade_id"] for tr in trades]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    # every live WS trade is in REST Trades with the same price/qty/side/type
    by_id = {r[6]: r for r in rest_trades}
    for tr in trades:
        r = by_id.get(tr["trade_id"])
        assert r is not None, f"WS trade {tr['trade_id']} missing from REST Trades"
        assert D(r[0]) == D(tr["price"]) and D(r[1]) == D(tr["qty"]), (r, tr)
        assert r[3] == tr["side"][0] and r[4] == tr["ord_type"][0]
        assert abs(r[2] - _ts(tr["timestamp"]).timestamp()) < 0.001

    # ohlc
    candles = rec.channel("ohlc", "snapshot")[0]["data"]
    assert candles
    for c in candles:
        assert c["symbol"] == SYMBOL and c["interval"] == 1
        assert c["low"] <= min(c["open"], c["close"]) and c["high"] >= max(c["open"], c["close"])
        begin = _ts(c["interval_begin"])
        assert begin.second == 0 and begin.microsecond == 0
        assert (_ts(c["timestamp"]) - begin).total_seconds() == 60  # deprecated field = interval end
        assert isinstance(c["trades"], int) and c["volume"] >= 0
    # closed WS candles equal the REST OHLC rows of the same minute
    rest_rows = {row[0]: row for row in rest_ohlc}
    current_minute = max(int(_ts(c["interval_begin"]).timestamp()) for c in candles)
    compared = 0
    for c in candles:
        begin = int(_ts(c["interval_begin"]).timestamp())
        if begin == current_minute or begin not in rest_rows:
            continue
        row = rest_rows[begin]
        assert [D(x) for x in row[1:5]] == [D(c[k]) for k in ("open", "high", "low", "close")], (row, c)
        assert D(row[6]) == D(c["volume"]).quantize(D(row[6])) and row[7] == c["trades"], (row, c)
        compared += 1
    assert compared >= 1, "the ohlc snapshot should include closed candles"


async def test_private_trading_executions_and_balances(sim):
    rest_user = User(key=sim.api_key, secret=sim.api_secret, url=sim.rest)
    market = Market(url=sim.rest)
    pair = market.get_asset_pairs(pair="XBTUSD")[PAIR_ID]
    tick = D(pair["tick_size"])
    best_bid = D(market.get_order_book(pair="XBTUSD", count=1)[PAIR_ID]["bids"][0][0])
    limit_px = ((best_bid / 2) / tick).to_integral_value(rounding=ROUND_DOWN) * tick
    qty = Decimal("0.001")
    assert qty >= D(pair["ordermin"])

    rec = Recorder()
    client = SpotWSClient(
        key=sim.api_key,
        secret=sim.api_secret,
        callback=rec.on_message,
        # no public socket: without subscriptions it gets no heartbeats and close() would wait
        # for the SDK's 10 s recv timeout
        no_public=True,
        rest_url=sim.rest,
        ws_url=sim.pks_ws_url,
        auth_ws_url=sim.pks_auth_ws_url,
    )
    await _start(client)
    try:
        await client.subscribe(params={"channel": "executions"}, req_id=10)
        await client.subscribe(params={"channel": "balances"}, req_id=11)
        await async_wait_until(lambda: rec.acks("subscribe", 10) and rec.acks("subscribe", 11), 10, "acks")
        _assert_ack(rec.acks("subscribe", 10)[0], "executions")
        _assert_ack(rec.acks("subscribe", 11)[0], "balances")
        await async_wait_until(lambda: rec.channel("balances", "snapshot"), 5, "balances snapshot")
        assert {"executions", "balances"} == {s["channel"] for s in client.active_private_subscriptions}
        # heartbeats ~1/s on a subscribed connection with nothing else to say
        hb = await async_wait_until(lambda: rec.channel("heartbeat"), 3, "a heartbeat")
        assert hb[0] == {"channel": "heartbeat"}

        ex_before = rest_user.get_balances()
        snap = {e["asset"]: e for e in rec.channel("balances", "snapshot")[0]["data"]}
        assert {"BTC", "USD"} <= set(snap), snap.keys()
        assert "XBT" not in snap and "XXBT" not in snap and "ZUSD" not in snap  # v2 asset names
        for ws_name, rest_name in (("BTC", "XXBT"), ("USD", "ZUSD")):
            e = snap[ws_name]
            assert e["asset_class"] == "currency"
            assert math.isclose(e["balance"], float(ex_before[rest_name]["balance"]), abs_tol=1e-9)
            spot = [w for w in e["wallets"] if w["type"] == "spot" and w["id"] == "main"]
            assert spot and math.isclose(spot[0]["balance"], e["balance"], abs_tol=1e-9)

        # ---- limit order: add, see pending_new/new, cancel, see canceled -------------------
        await client.send_message(
            message={
                "method": "add_order",
                "params": {
                    "order_type": "limit",
                    "side": "buy",
                    "order_qty": float(qty),
                    "symbol": SYMBOL,
                    "limit_price": float(limit_px),
                },
                "req_id": 20,
            }
        )
        ack = (await async_wait_until(lambda: rec.acks("add_order", 20), 5, "add_order ack"))[0]
        assert ack["success"] is True, ack
        oid = ack["result"]["order_id"]
        await async_wait_until(
            lambda: {"pending_new", "new"} <= {e["exec_type"] for e in rec.executions_for(oid)},
            5,
            "pending_new and new executions",
        )
        evs = rec.executions_for(oid)
        kinds = [e["exec_type"] for e in evs]
        assert kinds.index("pending_new") < kinds.index("new")
        pn = evs[kinds.index("pending_new")]
        assert pn["order_status"] == "pending_new"
        assert pn["symbol"] == SYMBOL and pn["side"] == "buy" and pn["order_type"] == "limit"
        assert math.isclose(pn["order_qty"], float(qty)) and math.isclose(pn["limit_price"], float(limit_px))
        assert evs[kinds.index("new")]["order_status"] == "new"
        assert oid in rest_user.get_open_orders()["open"]

        await client.send_message(
            message={"method": "cancel_order", "params": {"order_id": [oid]}, "req_id": 21}
        )
        ack = (await async_wait_until(lambda: rec.acks("cancel_order", 21), 5, "cancel_order ack"))[0]
        assert ack["success"] is True and ack["result"]["order_id"] == oid, ack
        await async_wait_until(
            lambda: any(e["exec_type"] == "canceled" for e in rec.executions_for(oid)),
            5,
            "canceled execution",
        )
        canceled = next(e for e in rec.executions_for(oid) if e["exec_type"] == "canceled")
        assert canceled["order_status"] == "canceled"
        assert oid not in rest_user.get_open_orders()["open"]

        # ---- market order: trade(s) + filled, balances ledger updates -----------------------
        n_bal_updates = len(rec.channel("balances", "update"))
        await client.send_message(
            message={
                "method": "add_order",
                "params": {"order_type": "market", "side": "buy", "order_qty": float(qty), "symbol": SYMBOL},
                "req_id": 22,
            }
        )
        ack = (await async_wait_until(lambda: rec.acks("add_order", 22), 5, "market add_order ack"))[0]
        assert ack["success"] is True, ack
        moid = ack["result"]["order_id"]
        assert moid != oid
        await async_wait_until(
            lambda: any(e["exec_type"] == "filled" for e in rec.executions_for(moid)), 5, "filled execution"
        )
        await async_wait_until(
            lambda: (
                {"BTC", "USD"}
                <= {e["asset"] for m in rec.channel("balances", "update")[n_bal_updates:] for e in m["data"]}
            ),
            5,
            "balances updates for BTC and USD",
        )
    finally:
        await _close(client)

    evs = rec.executions_for(moid)
    fills = [e for e in evs if e["exec_type"] == "trade"]
    assert fills, evs
    filled = [e for e in evs if e["exec_type"] == "filled"]
    assert len(filled) == 1 and filled[0]["order_status"] == "filled"
    assert [e["exec_type"] for e in evs].index("filled") > max(
        i for i, e in enumerate(evs) if e["exec_type"] == "trade"
    )
    fill_qty = sum(D(f["last_qty"]) for f in fills)
    assert fill_qty == qty
    fill_cost = sum(D(f["cost"]) for f in fills)
    fill_fee = sum(D(fee["qty"]) for f in fills for fee in f["fees"])
    for f in fills:
        assert f["liquidity_ind"] == "t" and f["side"] == "buy" and f["symbol"] == SYMBOL
        assert isinstance(f["trade_id"], int) and isinstance(f["exec_id"], str)
        assert abs(D(f["last_price"]) * D(f["last_qty"]) - D(f["cost"])) <= Decimal("0.0001")
        assert [fee["asset"] for fee in f["fees"]] == ["USD"]
    assert D(filled[0]["cum_qty"]) == qty

    # sequence numbers: per subscription, from 1 (the snapshot), consecutive
    for ch in ("executions", "balances"):
        frames = rec.channel(ch)
        seqs = [m["sequence"] for m in frames]
        assert seqs == list(range(1, len(seqs) + 1)), (ch, seqs)
        assert frames[0]["type"] == "snapshot", (ch, frames[0])

    # balances updates are ledger entries whose `balance` matches REST afterwards
    ex_after = rest_user.get_balances()
    upd = [e for m in rec.channel("balances", "update")[n_bal_updates:] for e in m["data"]]
    btc = [e for e in upd if e["asset"] == "BTC"]
    usd = [e for e in upd if e["asset"] == "USD"]
    assert btc and usd
    for e in btc + usd:
        assert e["type"] == "trade" and e["category"] == "trade" and e["wallet_type"] == "spot"
        assert e["asset_class"] == "currency" and isinstance(e["ledger_id"], str) and e["ref_id"]
    assert {e["ref_id"] for e in btc} & {e["ref_id"] for e in usd}, "base/quote entries share ref_id"
    assert math.isclose(sum(e["amount"] for e in btc), float(qty), abs_tol=1e-10)
    assert math.isclose(-sum(e["amount"] for e in usd), float(fill_cost), abs_tol=2e-4)  # quote leg
    assert math.isclose(sum(e["fee"] for e in usd), float(fill_fee), abs_tol=2e-4)
    assert math.isclose(btc[-1]["balance"], float(ex_after["XXBT"]["balance"]), abs_tol=1e-9)
    assert math.isclose(usd[-1]["balance"], float(ex_after["ZUSD"]["balance"]), abs_tol=1e-6)
    d_usd = D(ex_after["ZUSD"]["balance"]) - D(ex_before["ZUSD"]["balance"])
    d_btc = D(ex_after["XXBT"]["balance"]) - D(ex_before["XXBT"]["balance"])
    assert d_btc == qty
    assert abs(d_usd + fill_cost + fill_fee) <= Decimal("0.0002"), (d_usd, fill_cost, fill_fee)


async def test_subscription_errors_and_unsubscribe(sim):
    rec = Recorder()
    client = SpotWSClient(callback=rec.on_message, rest_url=sim.rest, ws_url=sim.pks_ws_url)
    await _start(client)
    try:
        # keeps frames flowing, so close() does not sit in the SDK's 10 s recv timeout
        await client.subscribe(params={"channel": "trade", "symbol": ["ETH/USD"]}, req_id=4)
        # v1 name on v2 -> rejected with the pair named
        await client.subscribe(params={"channel": "ticker", "symbol": ["XBT/USD"]}, req_id=5)
        await client.subscribe(params={"channel": "book", "symbol": [SYMBOL], "depth": 10}, req_id=6)
        await async_wait_until(
            lambda: rec.acks("subscribe", 5) and rec.channel("book", "snapshot"), 10, "acks"
        )
        await client.subscribe(params={"channel": "book", "symbol": [SYMBOL], "depth": 10}, req_id=7)
        await async_wait_until(lambda: rec.acks("subscribe", 7), 5, "duplicate subscribe ack")
        await client.unsubscribe(params={"channel": "book", "symbol": [SYMBOL], "depth": 10}, req_id=8)
        await async_wait_until(lambda: rec.acks("unsubscribe", 8), 5, "unsubscribe ack")
        n_book = len(rec.channel("book"))
        await client.unsubscribe(params={"channel": "book", "symbol": [SYMBOL], "depth": 10}, req_id=9)
        await async_wait_until(
            lambda: rec.acks("unsubscribe", 9) or rec.acks("subscribe", 9), 5, "2nd unsub ack"
        )
        await asyncio.sleep(0.5)
        subs_after = client.active_public_subscriptions
    finally:
        await _close(client)

    bad = rec.acks("subscribe", 5)[0]
    assert bad["success"] is False and "result" not in bad
    assert bad["error"] == "Currency pair not supported XBT/USD"
    assert bad["symbol"] == "XBT/USD"
    dup = rec.acks("subscribe", 7)[0]
    assert dup["success"] is False and dup["error"] == "Already subscribed", dup
    assert len(rec.channel("book", "snapshot")) == 1, "a refused duplicate must not re-snapshot"
    unsub = _assert_ack(rec.acks("unsubscribe", 8)[0], "book")
    assert unsub["symbol"] == SYMBOL and unsub["depth"] == 10
    assert [x["channel"] for x in subs_after] == ["trade"], subs_after  # the SDK dropped book on the ack
    assert len(rec.channel("book")) == n_book, "no book frames after the unsubscribe ack"
    # captured quirk: the not-found ack says method "subscribe"
    nf = (rec.acks("subscribe", 9) or rec.acks("unsubscribe", 9))[0]
    assert nf["success"] is False and nf["error"] == "Subscription Not Found", nf


async def test_reconnect_replays_subscriptions_from_acks(sim):
    """Drop every socket (fault `drop_now`): the SDK reconnects, fetches a new token and re-sends the
    subscriptions it rebuilt from the server's acks; the simulator must accept every one of them."""
    rec = Recorder()
    client = SpotWSClient(
        key=sim.api_key,
        secret=sim.api_secret,
        callback=rec.on_message,
        rest_url=sim.rest,
        ws_url=sim.pks_ws_url,
        auth_ws_url=sim.pks_auth_ws_url,
    )
    await _start(client)
    try:
        await client.subscribe(params={"channel": "ticker", "symbol": [SYMBOL, "ETH/USD"]})
        await client.subscribe(params={"channel": "book", "symbol": [SYMBOL], "depth": 25})
        await client.subscribe(params={"channel": "ohlc", "symbol": [SYMBOL], "interval": 5})
        await client.subscribe(params={"channel": "trade", "symbol": [SYMBOL]})
        await client.subscribe(params={"channel": "executions", "snap_trades": True})
        await client.subscribe(params={"channel": "balances"})
        await async_wait_until(
            lambda: len([a for a in rec.acks("subscribe") if a["success"]]) == 7, 10, "7 acks"
        )
        await async_wait_until(lambda: rec.channel("balances", "snapshot"), 5, "balances snapshot")
        pub_before = sorted(map(repr, client.active_public_subscriptions))
        priv_before = sorted(map(repr, client.active_private_subscriptions))
        assert len(pub_before) == 5 and len(priv_before) == 2, (pub_before, priv_before)
        n_msgs = len(rec.msgs)

        sim.set_faults(drop_now=True)

        def replayed() -> bool:
            acks = [a for a in rec.msgs[n_msgs:] if a.get("method") == "subscribe"]
            return len(acks) >= 7 and bool(rec.channel("balances", "snapshot")[1:])

        await async_wait_until(replayed, 20, "the SDK's reconnect and replay")
        await asyncio.sleep(0.3)
        new = rec.msgs[n_msgs:]
        assert not client.exception_occur
        pub_after = sorted(map(repr, client.active_public_subscriptions))
        priv_after = sorted(map(repr, client.active_private_subscriptions))
    finally:
        await _close(client)

    failed = [a for a in new if a.get("success") is False]
    assert failed == [], failed
    replay_acks = [a for a in new if a.get("method") == "subscribe"]
    assert len(replay_acks) == 7, replay_acks
    assert {a["result"]["channel"] for a in replay_acks} == {
        "ticker",
        "book",
        "ohlc",
        "trade",
        "executions",
        "balances",
    }
    assert pub_after == pub_before and priv_after == priv_before
    assert [m for m in new if m.get("channel") == "book" and m.get("type") == "snapshot"]
    assert [m for m in new if m.get("channel") == "ohlc" and m.get("type") == "snapshot"]
    assert [m for m in new if m.get("channel") == "status"]


def _check_instrument_matches_rest(instr: dict[str, Any], rest_pairs: dict, rest_assets: dict) -> None:
    """The WS `instrument` snapshot and REST AssetPairs/Assets describe the same venue."""
    pairs = {p["symbol"]: p for p in instr["pairs"]}
    assets = {a["id"]: a for a in instr["assets"]}
    assert SYMBOL in pairs and {"BTC", "USD"} <= set(assets)
    ws_names = {"XXBT": "BTC", "ZUSD": "USD", "XETH": "ETH", "XXRP": "XRP"}
    for row in rest_pairs.values():
        base = ws_names.get(row["base"], row["base"])
        quote = ws_names.get(row["quote"], row["quote"])
        p = pairs[f"{base}/{quote}"]
        assert (p["base"], p["quote"]) == (base, quote)
        assert p["price_precision"] == row["pair_decimals"] and p["qty_precision"] == row["lot_decimals"]
        assert D(p["price_increment"]) == D(row["tick_size"]) and D(p["qty_min"]) == D(row["ordermin"])
        assert p["status"] == "online"
    for asset_id, a in rest_assets.items():
        assert assets[ws_names.get(asset_id, asset_id)]["precision"] == a["decimals"]
