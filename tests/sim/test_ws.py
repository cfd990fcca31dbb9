"""WebSocket v2: acks compared with captured fixture lines, errors, heartbeat, book checksums."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from sim_helpers import Signer, Ws, connect, fixture_lines, step, without_times

from brokerbridge.core.clock import FakeClock
from brokerbridge.sim.kraken import KrakenSimulator
from brokerbridge.sim.market import BookSide
from brokerbridge.venues.kraken.checksum import book_checksum

ACKS = fixture_lines("ws_subscribe_acks.jsonl")
ERRORS = fixture_lines("ws_error_acks.jsonl")


async def test_status_ping_and_subscribe_acks_match_captures(sim: KrakenSimulator) -> None:
    ws = await connect(sim.endpoints.ws_public)
    await ws.send({"method": "ping", "req_id": 1})
    pong = await ws.recv()
    assert list(pong) == ["method", "req_id", "time_in", "time_out"] and pong["req_id"] == 1
    requests: list[tuple[dict[str, Any], dict[str, Any]]] = [
        (
            {"method": "subscribe", "params": {"channel": "ticker", "symbol": ["BTC/USD"]}, "req_id": 42},
            ACKS[1],
        ),
        (
            {"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD"]}, "req_id": 11},
            ACKS[2],
        ),
        (
            {
                "method": "subscribe",
                "params": {"channel": "ohlc", "symbol": ["ETH/USD"], "interval": 60},
                "req_id": 121,
            },
            ACKS[3],
        ),
        ({"method": "subscribe", "params": {"channel": "instrument"}, "req_id": 0}, ACKS[5]),
        (
            {"method": "subscribe", "params": {"channel": "trade", "symbol": ["BTC/USD"], "snapshot": False}},
            ACKS[7],
        ),
    ]
    for request, expected in requests:
        await ws.send(request)
        ack = await ws.until(lambda m: "method" in m)
        assert without_times(ack) == without_times(expected)
        assert list(ack) == sorted(ack)  # alphabetical keys, as captured
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", ack["time_in"])
    await ws.conn.close()


async def test_error_acks_match_captures(sim: KrakenSimulator) -> None:
    public = await connect(sim.endpoints.ws_public)
    await public.send({"method": "ping", "req_id": 0, "params": {}})
    assert without_times(await public.recv()) == without_times(ERRORS[0])
    await public.send({"method": "subscribe", "params": {"channel": "ticker", "symbol": ["XBT/USD"]}})
    assert without_times(await public.recv()) == without_times(ERRORS[6])
    await public.send({"method": "subscribe", "params": {"channel": "executions", "token": "x"}})
    assert without_times(await public.recv()) == without_times(ERRORS[7])
    await public.send(
        {"method": "unsubscribe", "params": {"channel": "book", "symbol": ["BTC/USD"]}, "req_id": 5}
    )
    not_found = await public.recv()
    assert without_times(not_found) == {
        "error": "Subscription Not Found",
        "method": "subscribe",
        "req_id": 5,
        "success": False,
        "symbol": "BTC/USD",
    }
    await public.send({"method": "subscribe", "params": {"channel": "trade", "symbol": ["BTC/USD"]}})
    await public.until(lambda m: m.get("method") == "subscribe")
    await public.send({"method": "subscribe", "params": {"channel": "trade", "symbol": ["BTC/USD"]}})
    assert (await public.until(lambda m: m.get("method") == "subscribe"))["error"] == "Already subscribed"
    await public.send({"method": "subscribe", "params": {"channel": "nope"}})
    assert (await public.until(lambda m: "error" in m))["error"] == "Subscription name invalid"
    await public.send({"method": "dance", "req_id": 0})
    assert (await public.until(lambda m: "error" in m))["error"] == "Unsupported event"
    private = await connect(sim.endpoints.ws_private)
    await private.send({"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD"]}})
    assert without_times(await private.recv()) == without_times(ERRORS[8])
    await private.send({"method": "edit_order", "req_id": 0, "params": {"order_id": "X"}})
    assert without_times(await private.recv()) == without_times(ERRORS[5])
    await private.send({"method": "subscribe", "params": {"channel": "executions"}})
    assert without_times(await private.recv()) == {
        "channel": "executions",
        "error": "ESession:Invalid session",
        "method": "subscribe",
        "status": "error",
        "success": False,
    }


async def test_heartbeat_only_when_idle_and_subscribed(sim: KrakenSimulator, clock: FakeClock) -> None:
    ws = await connect(sim.endpoints.ws_public)
    await step(clock, 2.5)
    assert await ws.nothing_within(0.2), "no heartbeat without a subscription"
    await ws.send({"method": "subscribe", "params": {"channel": "instrument"}})
    await ws.recv()
    snapshot = await ws.recv()
    assert snapshot["channel"] == "instrument" and set(snapshot["data"]) == {"assets", "pairs"}
    await step(clock, 1.05)
    assert await ws.recv() == {"channel": "heartbeat"}
    await step(clock, 1.0)
    assert await ws.recv() == {"channel": "heartbeat"}


async def test_book_checksums_hold_over_many_updates(sim: KrakenSimulator, clock: FakeClock) -> None:
    """Rebuild books from the raw frame text (one connection per depth) and check every checksum."""
    conns: dict[int, Ws] = {}
    for depth in (10, 25, 100):
        conns[depth] = await connect(sim.endpoints.ws_public)
        await conns[depth].send(
            {
                "method": "subscribe",
                "params": {"channel": "book", "symbol": ["BTC/USD", "XRP/USD"], "depth": depth},
            }
        )
    books: dict[tuple[str, int], dict[str, dict[Decimal, Decimal]]] = {}
    checked = 0

    async def pump(depth: int, ws: Ws) -> None:
        nonlocal checked
        while True:
            try:
                # Frames for the step just taken are already on loopback; a short lull means done.
                raw = await ws.recv_raw(within=0.02)
            except TimeoutError:
                return
            message = json.loads(raw, parse_float=Decimal)
            if message.get("channel") != "book":
                continue
            assert "e-" not in raw.lower()
            data = message["data"][0]
            if message["type"] == "snapshot":
                books[(data["symbol"], depth)] = {"bids": {}, "asks": {}}
                assert len(data["bids"]) == len(data["asks"]) == depth
            book = books[(data["symbol"], depth)]
            for side in ("bids", "asks"):
                for level in data[side]:  # in order, each level then cut to depth (as clients do)
                    if level["qty"] == 0:
                        assert level["price"] in book[side], "a deletion names a level the client has"
                        book[side].pop(level["price"])
                    else:
                        book[side][level["price"]] = level["qty"]
                    ordered = sorted(book[side], reverse=side == "bids")[:depth]
                    book[side] = {p: book[side][p] for p in ordered}
                assert len(book[side]) == depth, "replacement levels keep the window full"
            asks = [(str(p), str(q)) for p, q in book["asks"].items()]
            bids = [(str(p), str(q)) for p, q in book["bids"].items()]
            assert data["checksum"] == book_checksum(asks, bids), raw
            checked += 1

    for _ in range(25):
        for depth, ws in conns.items():
            await pump(depth, ws)
        await step(clock, 0.1)
    for depth, ws in conns.items():
        await pump(depth, ws)
    assert checked > 500
    # The rebuilt books equal the simulator's own top of book.
    market_book = sim.exchange.market.book("BTC/USD")
    for depth in conns:
        assert list(books[("BTC/USD", depth)]["bids"]) == [
            p for p, _ in market_book.levels(BookSide.BID, depth)
        ]


async def test_trailing_zeros_in_frames(sim: KrakenSimulator, clock: FakeClock) -> None:
    ws = await connect(sim.endpoints.ws_public)
    await ws.send({"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD"]}})
    await ws.recv()
    raw = await ws.recv_raw()
    # Every qty has 8 decimals and every BTC/USD price 1, exactly as the wire text.
    assert all(len(q) == 8 for q in re.findall(r'"qty":\d+\.(\d+)', raw))
    assert all(len(p) == 1 for p in re.findall(r'"price":\d+\.(\d+)', raw))
    await ws.send({"method": "subscribe", "params": {"channel": "instrument"}})
    await ws.until(lambda m: m.get("method") == "subscribe")
    instrument = await ws.until(lambda m: m.get("channel") == "instrument")
    pairs = {p["symbol"]: p for p in instrument["data"]["pairs"]}
    assert format(pairs["BTC/USD"]["qty_increment"], "f") == "0.00000001"
    assert format(pairs["ETH/BTC"]["price_increment"], "f") == "0.00001"


async def test_private_flow_balances_consistent_after_fill(
    sim: KrakenSimulator, signer: Signer, clock: FakeClock
) -> None:
    token = (await signer.call("GetWebSocketsToken"))["result"]
    assert len(token["token"]) == 43 and token["expires"] == 900
    ws = await connect(sim.endpoints.ws_private)
    await ws.send(
        {
            "method": "subscribe",
            "params": {"channel": "balances", "token": token["token"]},
            "req_id": 10312008,
        }
    )
    assert without_times(await ws.recv()) == without_times(ACKS[8])
    balances_snapshot = await ws.recv()
    assert balances_snapshot["sequence"] == 1
    start = {entry["asset"]: entry["balance"] for entry in balances_snapshot["data"]}
    await ws.send(
        {"method": "subscribe", "params": {"channel": "executions", "token": token["token"]}, "req_id": 0}
    )
    ack = await ws.recv()
    assert without_times(ack) == without_times(ACKS[0])
    exec_snapshot = await ws.recv()
    assert exec_snapshot["type"] == "snapshot" and exec_snapshot["sequence"] == 1

    await ws.send(
        {
            "method": "add_order",
            "req_id": 7,
            "params": {
                "order_type": "market",
                "side": "buy",
                "order_qty": 0.01,
                "symbol": "BTC/USD",
                "cl_ord_id": "c-1",
                "token": token["token"],
            },
        }
    )
    add_ack = await ws.recv()
    assert add_ack["success"] is True and add_ack["result"]["cl_ord_id"] == "c-1"
    frames = [await ws.recv() for _ in range(6)]
    executions = [f for f in frames if f["channel"] == "executions"]
    ledgers = [f for f in frames if f["channel"] == "balances"]
    assert [f["data"][0]["exec_type"] for f in executions] == ["pending_new", "new", "trade", "filled"]
    assert [f["sequence"] for f in executions] == [2, 3, 4, 5]
    assert [f["sequence"] for f in ledgers] == [2, 3]
    assert executions[0]["data"][0]["cum_cost"] == 0
    assert set(executions[1]["data"][0]) == {
        "timestamp",
        "order_status",
        "exec_type",
        "order_userref",
        "cl_ord_id",
        "order_id",
    }
    trade = executions[2]["data"][0]
    base, quote = ledgers[0]["data"][0], ledgers[1]["data"][0]
    assert base["ref_id"] == quote["ref_id"] == trade["exec_id"]
    assert base["asset"] == "BTC" and base["amount"] == trade["last_qty"]
    assert quote["amount"] == -trade["cost"] and quote["fee"] == trade["fees"][0]["qty"]
    assert base["balance"] == start["BTC"] + trade["last_qty"]
    assert quote["balance"] == start["USD"] - trade["cost"] - quote["fee"]
    rest = (await signer.call("Balance"))["result"]
    assert Decimal(rest["XXBT"]) == base["balance"] and Decimal(rest["ZUSD"]) == quote["balance"]
    history = (await signer.call("TradesHistory"))["result"]
    assert history["count"] == 1
    (row,) = history["trades"].values()
    assert Decimal(row["vol"]) == trade["last_qty"] and row["pair"] == "XXBTZUSD" and row["maker"] is False


async def test_resting_limit_order_fills_when_market_trades_through(
    sim: KrakenSimulator, signer: Signer, clock: FakeClock
) -> None:
    book = sim.exchange.market.book("BTC/USD")

    best_bid = book.best(BookSide.BID)
    assert best_bid is not None
    placed = await signer.call(
        "AddOrder",
        {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": "0.02", "price": str(best_bid)},
    )
    txid = placed["result"]["txid"][0]
    for _ in range(200):
        await step(clock, 1.0)
        order = (await signer.call("QueryOrders", {"txid": txid}))["result"][txid]
        if order["status"] == "closed":
            break
    assert order["status"] == "closed" and order["vol_exec"] == "0.02000000"
    assert (await signer.call("BalanceEx"))["result"]["ZUSD"]["hold_trade"] == "0.0000"


async def test_token_expiry_and_binding(sim: KrakenSimulator, signer: Signer, clock: FakeClock) -> None:
    sim.tick_s = 5.0  # a calm market: fifteen fake minutes pass in few steps
    token = (await signer.call("GetWebSocketsToken"))["result"]["token"]
    bound = await connect(sim.endpoints.ws_private)
    await bound.send({"method": "subscribe", "params": {"channel": "balances", "token": token}})
    assert (await bound.recv())["success"] is True
    await clock.advance(901)
    # Same connection: the bound token still works (docs: valid for the connection's lifetime).
    await bound.send({"method": "subscribe", "params": {"channel": "executions", "token": token}})
    assert (await bound.until(lambda m: m.get("method") == "subscribe"))["success"] is True
    # A new connection cannot use the old token any more.
    fresh = await connect(sim.endpoints.ws_private)
    await fresh.send({"method": "subscribe", "params": {"channel": "balances", "token": token}})
    assert (await fresh.recv())["error"] == "ESession:Invalid session"
    await fresh.send(
        {
            "method": "add_order",
            "params": {
                "token": token,
                "order_type": "market",
                "side": "buy",
                "order_qty": 0.01,
                "symbol": "BTC/USD",
            },
        }
    )
    assert (await fresh.recv())["error"] == "EAPI:Invalid token"


async def test_add_order_refusals_keep_each_wire_text_and_order(sim: KrakenSimulator, signer: Signer) -> None:
    """REST AddOrder and WS add_order share one reader of order arguments; each wire keeps its own
    refusal texts and its own order of checks (the first failing check is the error a client sees)."""
    token = (await signer.call("GetWebSocketsToken"))["result"]["token"]
    ws = await connect(sim.endpoints.ws_private)
    base: dict[str, Any] = {
        "order_type": "limit",
        "side": "buy",
        "order_qty": 0.01,
        "symbol": "BTC/USD",
        "limit_price": 50000.0,
        "validate": True,
        "token": token,
    }
    cases: list[tuple[str, dict[str, Any]]] = [
        ("Unsupported field: 'bogus' for the given msg type: add order", {"bogus": 1}),
        ("Order_qty field must be a number_float", {"order_qty": "0.01"}),
        ("Limit_price field must be a number_float", {"limit_price": "50000.0"}),
        ("EGeneral:Invalid arguments:order_type", {"order_type": "iceberg", "side": "hold"}),
        ("EGeneral:Invalid arguments:side", {"side": "hold", "symbol": "FOO/BAR"}),
        ("Currency pair not supported FOO/BAR", {"symbol": "FOO/BAR", "limit_price": None}),
        ("EGeneral:Invalid arguments:limit_price", {"limit_price": None}),
        ("EGeneral:Invalid arguments:time_in_force", {"time_in_force": "fok"}),
        ("EGeneral:Invalid arguments", {"order_userref": "3"}),
        (
            "EGeneral:Invalid arguments:cl_ord_id and order_userref are mutually exclusive",
            {"order_userref": 3, "cl_ord_id": "c-1", "order_qty": 1e-9},
        ),
        ("EGeneral:Invalid arguments:order_qty", {"order_qty": 1e-9}),
    ]
    for req_id, (error, change) in enumerate(cases):
        params = {k: v for k, v in {**base, **change}.items() if v is not None}
        await ws.send({"method": "add_order", "params": params, "req_id": req_id})
        answer = await ws.until(lambda m: m.get("method") == "add_order")
        assert (answer["req_id"], answer["success"], answer["error"]) == (req_id, False, error)
    rest_base = {"pair": "XBTUSD", "type": "buy", "ordertype": "limit", "volume": "0.01", "price": "50000.0"}
    rest_cases: list[tuple[str, dict[str, str]]] = [
        ("EQuery:Unknown asset pair", {"pair": "FOOBAR", "type": "hold"}),  # REST: the pair first
        ("EGeneral:Invalid arguments:type", {"type": "hold", "ordertype": "iceberg"}),
        ("EGeneral:Invalid arguments:volume", {"volume": "0.000000001", "price": ""}),
        ("EGeneral:Invalid arguments:oflags", {"oflags": "post,bogus", "timeinforce": "fok"}),
        ("EGeneral:Invalid arguments:timeinforce", {"timeinforce": "fok", "userref": "x"}),
        ("EGeneral:Invalid arguments:userref", {"userref": "x"}),
        (
            "EGeneral:Invalid arguments:cl_ord_id and userref are mutually exclusive",
            {"userref": "3", "cl_ord_id": "c"},
        ),
    ]
    for error, rest_change in rest_cases:
        assert await signer.call("AddOrder", {**rest_base, **rest_change}) == {"error": [error]}, error


def test_ws_type_errors_use_kraken_text() -> None:
    from brokerbridge.sim.kraken.ws_wire import unsupported

    assert unsupported("params", "ping") == ERRORS[0]["error"]
