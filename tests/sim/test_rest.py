"""REST: public shapes and precision, signing, nonces, permissions, rate limit, error envelopes."""

from __future__ import annotations

import itertools
import json
import re

import httpx
from sim_helpers import Signer, step

from brokerbridge.core.clock import FakeClock
from brokerbridge.sim.kraken import KrakenSimulator, Permission
from brokerbridge.venues.kraken.auth import sign

VECTOR_SECRET = "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
VECTOR_SIGN = "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ=="


async def test_public_time_status_and_content_type(http: httpx.AsyncClient, clock: FakeClock) -> None:
    response = await http.get("/0/public/Time")
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json() == {
        "error": [],
        "result": {"unixtime": int(clock.time()), "rfc1123": "Thu, 01 Jan 26 00:00:00 +0000"},
    }
    status = (await http.post("/0/public/SystemStatus")).json()["result"]
    assert status == {"status": "online", "timestamp": "2026-01-01T00:00:00Z"}


async def test_asset_pairs_keys_follow_the_requested_spelling(http: httpx.AsyncClient) -> None:
    by_slash = (await http.get("/0/public/AssetPairs", params={"pair": "BTC/USD"})).json()["result"]
    assert list(by_slash) == ["BTC/USD"]
    assert by_slash["BTC/USD"]["pair_decimals"] == 1 and by_slash["BTC/USD"]["lot_decimals"] == 8
    by_alt = (await http.get("/0/public/AssetPairs", params={"pair": "XBTUSD,ETHXBT"})).json()["result"]
    assert list(by_alt) == ["XXBTZUSD", "XETHXXBT"]
    everything = (await http.get("/0/public/AssetPairs")).json()["result"]
    assert {"XXBTZUSD", "XETHZUSD", "SOLUSD", "XXRPZUSD", "XETHXXBT"} <= set(everything)
    assert everything["XXRPZUSD"]["tick_size"] == "0.00001" and everything["SOLUSD"]["ordermin"] == "0.06"
    # Form-encoded POST works for public calls too (krakenex style).
    posted = await http.post("/0/public/AssetPairs", data={"pair": "SOLUSD"})
    assert list(posted.json()["result"]) == ["SOLUSD"]


async def test_public_errors_are_http_200_envelopes(http: httpx.AsyncClient) -> None:
    response = await http.get("/0/public/Ticker", params={"pair": "NOPE"})
    assert response.status_code == 200
    assert response.text == '{"error":["EQuery:Unknown asset pair"]}'
    assert (await http.get("/0/public/Depth")).json() == {"error": ["EGeneral:Invalid arguments"]}


async def test_depth_ticker_trades_keep_trailing_zeros(http: httpx.AsyncClient) -> None:
    raw = (await http.get("/0/public/Depth", params={"pair": "XBTUSD", "count": 7})).text
    depth = json.loads(raw)["result"]["XXBTZUSD"]
    assert len(depth["asks"]) == 7 and len(depth["bids"]) == 7
    assert all(
        re.fullmatch(r"\d+\.\d{5}", row[0]) and re.fullmatch(r"\d+\.\d{3}", row[1]) for row in depth["asks"]
    )
    assert float(depth["bids"][0][0]) < float(depth["asks"][0][0])
    ticker = (await http.get("/0/public/Ticker", params={"pair": "XRPUSD"})).json()["result"]["XXRPZUSD"]
    assert re.fullmatch(r"\d+\.\d{8}", ticker["a"][0])  # XRPUSD cost_decimals = 8
    trades_raw = (await http.get("/0/public/Trades", params={"pair": "XBTUSD", "count": 5})).text
    assert "e-" not in trades_raw.lower() and "E+" not in trades_raw
    trades = json.loads(trades_raw)["result"]
    assert isinstance(trades["last"], str) and len(trades["XXBTZUSD"]) == 5
    assert all(re.fullmatch(r"\d+\.\d{8}", row[1]) for row in trades["XXBTZUSD"])


async def test_trades_since_cursor_and_ohlc_last(http: httpx.AsyncClient, clock: FakeClock) -> None:
    first = (await http.get("/0/public/Trades", params={"pair": "XBTUSD"})).json()["result"]
    await step(clock, 30)
    newer = (await http.get("/0/public/Trades", params={"pair": "XBTUSD", "since": first["last"]})).json()[
        "result"
    ]
    assert newer["XXBTZUSD"], "the market traded during 30 simulated seconds"
    assert all(row[2] * 1e9 > int(first["last"]) - 1_000 for row in newer["XXBTZUSD"])
    assert int(newer["last"]) > int(first["last"])
    ohlc = (await http.get("/0/public/OHLC", params={"pair": "XBTUSD", "interval": 5})).json()["result"]
    rows = ohlc["XXBTZUSD"]
    assert rows[-2][0] == ohlc["last"] and all(b[0] - a[0] == 300 for a, b in itertools.pairwise(rows))
    assert len(rows[0]) == 8 and re.fullmatch(r"\d+\.\d", rows[0][1])
    since = (
        await http.get("/0/public/OHLC", params={"pair": "XBTUSD", "interval": 5, "since": ohlc["last"]})
    ).json()
    assert [row[0] for row in since["result"]["XXBTZUSD"]] == [rows[-1][0]]
    bad = (await http.get("/0/public/OHLC", params={"pair": "XBTUSD", "interval": 7})).json()
    assert bad == {"error": ["EGeneral:Invalid arguments:interval"]}


async def test_signing_test_vector_accepted_and_wrong_signature_rejected(
    sim: KrakenSimulator, http: httpx.AsyncClient
) -> None:
    # The official vector: our verifier must accept exactly the published signature.
    body = "nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25"
    assert sign("/0/private/AddOrder", "1616492376594", body, VECTOR_SECRET) == VECTOR_SIGN
    key = sim.exchange.create_key()
    key.secret = VECTOR_SECRET  # a key whose secret is the vector's
    headers = {
        "API-Key": key.key,
        "API-Sign": VECTOR_SIGN,
        "Content-Type": "application/x-www-form-urlencoded",
    }
    accepted = (await http.post("/0/private/AddOrder", content=body, headers=headers)).json()
    assert accepted["error"] == [], accepted
    assert accepted["result"]["descr"]["order"] == "buy 1.25000000 XBTUSD @ limit 37500.0"
    headers["API-Sign"] = VECTOR_SIGN.replace("4/dp", "5/dp")
    body2 = body.replace("1616492376594", "1616492376595")
    rejected = (await http.post("/0/private/AddOrder", content=body2, headers=headers)).json()
    assert rejected == {"error": ["EAPI:Invalid signature"]}


async def test_invalid_key_nonce_and_private_get(signer: Signer, http: httpx.AsyncClient) -> None:
    assert (await signer.call("Balance"))["error"] == []
    replay = await signer.call("Balance", nonce=signer.nonce)
    assert replay == {"error": ["EAPI:Invalid nonce"]}
    assert (await signer.call("Balance", nonce=5))["error"] == ["EAPI:Invalid nonce"]
    unknown = Signer(http, "not-a-key", signer.secret)
    assert await unknown.call("Balance") == {"error": ["EAPI:Invalid key"]}
    assert (await http.get("/0/private/Balance")).json() == {"error": ["EGeneral:Invalid arguments"]}
    json_body = await signer.call("BalanceEx", as_json=True)
    assert json_body["error"] == [] and "hold_trade" in json_body["result"]["ZUSD"]


async def test_nonce_window_accepts_late_nonces_once(sim: KrakenSimulator, http: httpx.AsyncClient) -> None:
    key, secret = sim.create_key(nonce_window=100)
    client = Signer(http, key, secret)
    assert (await client.call("Balance", nonce=1000))["error"] == []
    assert (await client.call("Balance", nonce=950))["error"] == []  # late but inside the window
    assert (await client.call("Balance", nonce=950))["error"] == ["EAPI:Invalid nonce"]  # used already
    assert (await client.call("Balance", nonce=800))["error"] == ["EAPI:Invalid nonce"]  # outside


async def test_permissions_per_key(sim: KrakenSimulator, http: httpx.AsyncClient) -> None:
    key, secret = sim.create_key(permissions={Permission.QUERY_FUNDS})
    client = Signer(http, key, secret)
    assert (await client.call("Balance"))["error"] == []
    for method in ("OpenOrders", "ClosedOrders", "TradesHistory", "GetWebSocketsToken", "CancelOrder"):
        assert await client.call(method, {"txid": "X"}) == {"error": ["EGeneral:Permission denied"]}, method
    add = await client.call(
        "AddOrder", {"pair": "XBTUSD", "type": "buy", "ordertype": "market", "volume": "0.01"}
    )
    assert add == {"error": ["EGeneral:Permission denied"]}
    cancel_only, secret2 = sim.create_key(permissions={"cancel_orders"})
    assert (await Signer(http, cancel_only, secret2).call("CancelOrder", {"txid": "OAAAAA-BBBBB-CCCCCC"}))[
        "error"
    ] == ["EOrder:Unknown order"]


async def test_rate_limit_counter_decays_on_the_clock(signer: Signer, clock: FakeClock) -> None:
    for _ in range(20):
        assert (await signer.call("Balance"))["error"] == []
    assert await signer.call("Balance") == {"error": ["EAPI:Rate limit exceeded"]}
    await clock.advance(2.0)  # -1.0 → one more call fits
    assert (await signer.call("Balance"))["error"] == []
    assert (await signer.call("Balance"))["error"] == ["EAPI:Rate limit exceeded"]
    await clock.advance(4.0)  # -2.0 → TradesHistory costs 2
    assert (await signer.call("TradesHistory"))["error"] == []
    assert (await signer.call("Balance"))["error"] == ["EAPI:Rate limit exceeded"]
    # Trading calls are not counted here (Kraken has a separate per-pair limiter).
    assert (await signer.call("CancelOrder", {"txid": "OAAAAA-BBBBB-CCCCCC"}))["error"] == [
        "EOrder:Unknown order"
    ]


async def test_add_order_validation_strings(signer: Signer) -> None:
    base = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": "0.01", "price": "50000.0"}
    cases = {
        "EQuery:Unknown asset pair": {"pair": "FOOBAR"},
        "EGeneral:Invalid arguments:ordertype": {"ordertype": "iceberg-ish"},
        "EGeneral:Invalid arguments:type": {"type": "hold"},
        "EOrder:Order minimum not met": {"volume": "0.00001"},
        "EOrder:Insufficient funds": {"volume": "5", "price": "60000.0"},
        "EGeneral:Invalid arguments:price": {"price": ""},
        "EOrder:Invalid price:XBTUSD price can only be specified up to 1 decimals.": {"price": "50000.05"},
    }
    for error, change in cases.items():
        assert await signer.call("AddOrder", {**base, **change}) == {"error": [error]}, error
    validated = await signer.call("AddOrder", {**base, "validate": "true"})
    assert validated == {"error": [], "result": {"descr": {"order": "buy 0.01000000 XBTUSD @ limit 50000.0"}}}
    assert (await signer.call("OpenOrders"))["result"] == {"open": {}}


async def test_limit_order_holds_and_cancel(signer: Signer) -> None:
    placed = await signer.call(
        "AddOrder",
        {
            "pair": "XBTUSD",
            "type": "buy",
            "ordertype": "limit",
            "volume": "0.5",
            "price": "40000.0",
            "cl_ord_id": "my-1",
        },
    )
    txid = placed["result"]["txid"][0]
    assert re.fullmatch(r"[A-Z0-9]{6}-[A-Z0-9]{5}-[A-Z0-9]{6}", txid)
    ex = (await signer.call("BalanceEx"))["result"]
    assert ex["ZUSD"] == {"balance": "100000.0000", "hold_trade": "20080.0000"}  # 0.5 × 40000 × 1.004
    open_ = (await signer.call("OpenOrders", {"cl_ord_id": "my-1"}))["result"]["open"]
    assert open_[txid]["status"] == "open" and open_[txid]["descr"]["price"] == "40000.0"
    assert (await signer.call("CancelOrder", {"cl_ord_id": "my-1"}))["result"] == {"count": 1}
    assert (await signer.call("BalanceEx"))["result"]["ZUSD"]["hold_trade"] == "0.0000"
    closed = (await signer.call("ClosedOrders"))["result"]
    assert closed["count"] == 1 and closed["closed"][txid]["status"] == "canceled"
    assert closed["closed"][txid]["reason"] == "User requested"
    assert (await signer.call("CancelOrder", {"txid": txid}))["error"] == ["EOrder:Unknown order"]
