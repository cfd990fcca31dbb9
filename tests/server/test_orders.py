"""Trading through the server: `/api/orders`, the `/ws` ops `place`/`cancel`/`amend` and
`BridgeClient`, end to end over loopback sockets against the simulators — the same acks and error
codes three ways, the `trade` scope, CSRF for cookie sessions, cancel-on-disconnect, fills paged
and as CSV."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from brokerbridge.client import BridgeClient
from brokerbridge.core.clock import FakeClock
from brokerbridge.core.config import ApiKey
from brokerbridge.core.errors import (
    BrokerBridgeError,
    InvalidRequest,
    NotAuthorized,
    OrderRefused,
    OrderRejected,
    TransportError,
    UnknownOrder,
    UnknownVenue,
    VenueError,
    error_from_wire,
)
from brokerbridge.core.orders import AmendRequest, OrderRequest
from brokerbridge.core.secret import Secret
from brokerbridge.server.order_ops import code_of
from brokerbridge.server.order_routes import order_error
from tests.server.conftest import (
    ACCOUNT_KEY,
    KEYS,
    LIMIT,
    Client,
    Stack,
    connect,
    is_event,
    make_stack,
)
from tests.server.observe import eventually

TRADE_KEY = "trade-key-0123456789ab"
ADMIN_KEY = "admin-key-0123456789ab"
COD_KEY = "cod-key-0123456789abcd"
GRACE_S = 5.0
TRADING_KEYS = (
    *KEYS,
    ApiKey(name="trader", key=Secret(TRADE_KEY), scopes=frozenset({"market", "account", "trade"})),
    ApiKey(name="root", key=Secret(ADMIN_KEY), scopes=frozenset({"admin"})),
    ApiKey(
        name="dms",
        key=Secret(COD_KEY),
        scopes=frozenset({"market", "account", "trade"}),
        cancel_on_disconnect_s=GRACE_S,
    ),
)

RESTING = {"venue": "kraken", "symbol": "BTC/USD", "side": "buy", "qty": "0.001", "price": "1000"}
# More than the demo account holds: the venue refuses it (EOrder:Insufficient funds).
TOO_BIG = {"venue": "kraken", "symbol": "BTC/USD", "side": "buy", "qty": "5000", "price": "90000"}


@pytest.fixture
async def trading(tmp_path: Path) -> AsyncIterator[Stack]:
    async with make_stack(tmp_path, keys=TRADING_KEYS) as s:
        await s.bridge.wait_ready(LIMIT)
        yield s


def order_of(fields: dict[str, Any]) -> OrderRequest:
    return msgspec.convert(fields, OrderRequest)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def http_of(stack: Stack, key: str | None = TRADE_KEY) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=stack.server.http_url, timeout=LIMIT, headers=bearer(key) if key else None
    )


def venue_orders(stack: Stack) -> int:
    """Orders the Kraken simulator has ever been sent (open or not)."""
    return len(stack.kraken_sim.exchange.account.orders)


async def ws_op(client: Client, op: str, request_id: str, **fields: Any) -> dict[str, Any]:
    await client.send({"op": op, "id": request_id, **fields})
    return await client.until(lambda m: m["type"] in ("ack", "error") and m.get("id") == request_id)


async def seen(client: Client, predicate: Any) -> None:
    """`predicate` matches a message read already (an event may overtake its op's ack) or a later one."""
    if not any(predicate(m) for m in client.received):
        await client.until(predicate)


async def test_rest_places_lists_and_cancels_an_order(trading: Stack) -> None:
    async with http_of(trading) as http:
        placed = await http.post("/api/orders", json=RESTING)
        assert placed.status_code == 200, placed.text
        ack = placed.json()
        assert ack["status"] == "accepted" and ack["venue"] == "kraken" and ack["via"] in ("rest", "ws")
        assert ack["order_id"] and ack["client_order_id"] and ack["duplicate"] is False
        assert placed.headers["cache-control"] == "no-store"
        order_id = ack["order_id"]
        assert trading.kraken_sim.exchange.account.orders[order_id].status in ("pending", "open")

        await eventually(lambda: any(o.order_id == order_id for o in trading.bridge.open_orders("kraken")))
        listed = (await http.get("/api/orders/kraken")).json()["orders"]
        assert order_id in [o["order_id"] for o in listed]

        canceled = await http.delete(f"/api/orders/kraken/{order_id}")
        assert canceled.status_code == 200, canceled.text
        assert canceled.json()["canceled"] == 1 and canceled.json()["order_id"] == order_id
        assert trading.kraken_sim.exchange.account.orders[order_id].status == "canceled"
        again = await http.delete(f"/api/orders/kraken/{order_id}")  # the venue no longer has it open
        assert again.status_code in (200, 404)

        # Mistakes in the body: typed 400s that name what is wrong, and nothing sent.
        before = venue_orders(trading)
        not_json = await http.post("/api/orders", content=b"{", headers={"Content-Type": "application/json"})
        assert (not_json.status_code, not_json.json()["error"]["code"]) == (400, "malformed")
        bad_side = await http.post("/api/orders", json={**RESTING, "side": "hold"})
        assert (bad_side.status_code, bad_side.json()["error"]["code"]) == (400, "invalid_request")
        assert "side" in bad_side.json()["error"]["message"] and bad_side.json()["error"]["remedy"]
        float_qty = await http.post("/api/orders", json={**RESTING, "qty": 0.1, "extra": 1})
        assert float_qty.status_code == 400
        assert venue_orders(trading) == before


async def test_ws_ops_are_acked_with_the_request_id_and_the_order_follows_on_executions(
    trading: Stack,
) -> None:
    async with asyncio.timeout(3 * LIMIT):
        client = await connect(trading.server, key=TRADE_KEY)
        await client.send({"op": "subscribe", "id": "x", "venue": "kraken", "channel": "executions"})
        await client.until(lambda m: m["type"] == "ack" and m["id"] == "x")
        await client.until(
            lambda m: (
                m["type"] == "event" and m["event"]["kind"] == "status" and m["event"]["state"] == "live"
            )
        )
        ack = await ws_op(client, "place", "p1", order=RESTING)
        assert (ack["type"], ack["op"]) == ("ack", "place"), ack
        order = ack["order"]
        assert order["status"] == "accepted" and order["order_id"] and "cancel" not in ack
        await seen(client, is_event("order_update", order_id=order["order_id"]))

        canceled = await ws_op(client, "cancel", 7, venue="kraken", order_id=order["order_id"])
        assert (canceled["type"], canceled["op"], canceled["cancel"]["canceled"]) == ("ack", "cancel", 1)
        await seen(client, is_event("order_update", order_id=order["order_id"], status="canceled"))

        # Malformed ops get a specific error with the request's id; the connection stays.
        wrong = await ws_op(client, "place", "p2", order={"venue": "kraken", "symbol": "BTC/USD"})
        assert (wrong["type"], wrong["code"]) == ("error", "invalid_request")
        assert "side" in wrong["message"] or "qty" in wrong["message"]
        assert "order:" in wrong["remedy"]
        no_id = await ws_op(client, "cancel", "c2", venue="kraken")
        assert (no_id["type"], no_id["code"]) == ("error", "invalid_request")
        await client.send("not json")
        malformed = await client.until(lambda m: m["type"] == "error")
        assert malformed["code"] == "malformed"
        rejected = await ws_op(client, "place", "p3", order=TOO_BIG)
        assert (rejected["type"], rejected["code"]) == ("error", "order_rejected")
        await client.send({"op": "ping", "id": "still"})
        await client.until(lambda m: m["type"] == "pong" and m["id"] == "still")  # the connection stays
        await client.close()


async def test_the_three_ways_give_the_same_acks_and_error_codes(trading: Stack) -> None:
    """REST, /ws and BridgeClient answer the same requests with the same ack shape and the same
    error codes (and the client raises the class the in-process Bridge raises)."""
    mistakes: list[tuple[str, dict[str, Any], type[BrokerBridgeError], str, int]] = [
        ("place", {"order": TOO_BIG}, OrderRejected, "order_rejected", 422),
        ("place", {"order": {**RESTING, "venue": "nope"}}, UnknownVenue, "unknown_venue", 404),
        (
            "cancel",
            {"venue": "kraken", "order_id": "OXXXXX-XXXXX-XXXXXX"},
            UnknownOrder,
            "unknown_order",
            404,
        ),
        ("amend", {"amend": {"venue": "kraken", "order_id": "O1"}}, InvalidRequest, "invalid_request", 400),
    ]
    ws = await connect(trading.server, key=TRADE_KEY)
    async with http_of(trading) as http, BridgeClient(trading.server.http_url, key=TRADE_KEY) as bot:
        for n, (op, fields, error, code, status) in enumerate(mistakes):
            if op == "place":
                rest = await http.post("/api/orders", json=fields["order"])
                call = bot.place(order_of(fields["order"]))
            elif op == "cancel":
                rest = await http.delete(f"/api/orders/{fields['venue']}/{fields['order_id']}")
                call = bot.cancel(fields["venue"], fields["order_id"])
            else:
                rest = await http.patch(f"/api/orders/kraken/{fields['amend']['order_id']}", json={})
                call = bot.amend(msgspec.convert(fields["amend"], AmendRequest))
            assert (rest.status_code, rest.json()["error"]["code"]) == (status, code), rest.text
            answer = await ws_op(ws, op, f"m{n}", **fields)
            assert (answer["type"], answer["code"]) == ("error", code), answer
            with pytest.raises(error) as raised:
                await call
            assert isinstance(raised.value, VenueError) and raised.value.code == code
            assert raised.value.message == rest.json()["error"]["message"] == answer["message"]

        # The same order three ways: the same ack fields.
        acks = [
            (await http.post("/api/orders", json=RESTING)).json(),
            (await ws_op(ws, "place", "ok", order=RESTING))["order"],
            msgspec.to_builtins(await bot.place(order_of(RESTING))),
        ]
        assert {tuple(sorted(ack)) for ack in acks} == {tuple(sorted(acks[0]))}
        assert [(a["status"], a["venue"], a["duplicate"]) for a in acks] == [
            ("accepted", "kraken", False)
        ] * 3
        for ack in acks:
            await bot.cancel("kraken", ack["order_id"])
    await ws.close()


async def test_only_the_trade_scope_trades_and_nothing_reaches_the_venue_otherwise(trading: Stack) -> None:
    before = venue_orders(trading)
    for key, status in ((ACCOUNT_KEY, 403), (ADMIN_KEY, 403), (None, 401)):
        async with http_of(trading, key) as http:
            refused = await http.post("/api/orders", json=RESTING)
            assert (refused.status_code, refused.json()["error"]["code"]) == (status, "not_authorized")
            assert "trade" in refused.json()["error"]["message"]
            assert (await http.delete("/api/orders/kraken/O1")).status_code == status
            assert (await http.patch("/api/orders/kraken/O1", json={"qty": "1"})).status_code == status
    for key in (ACCOUNT_KEY, ADMIN_KEY, None):
        client = await connect(trading.server, key=key)
        for op, fields in (
            ("place", {"order": RESTING}),
            ("cancel", {"venue": "kraken", "order_id": "O1"}),
            ("amend", {"amend": {"venue": "kraken", "order_id": "O1", "qty": "1"}}),
        ):
            answer = await ws_op(client, op, op, **fields)
            assert (answer["type"], answer["code"]) == ("error", "not_authorized"), answer
            assert "trade" in answer["message"]
        await client.close()
    async with BridgeClient(trading.server.http_url, key=ACCOUNT_KEY) as bot:
        with pytest.raises(NotAuthorized):
            await bot.place(order_of(RESTING))
    assert venue_orders(trading) == before
    # A key that gains trade over /ws's auth op may then trade on that connection.
    client = await connect(trading.server, key=ACCOUNT_KEY)
    await ws_op(client, "auth", "a", key=TRADE_KEY)
    ack = await ws_op(client, "place", "p", order=RESTING)
    assert ack["type"] == "ack" and ack["order"]["status"] == "accepted"
    await client.close()


async def sign_in(http: httpx.AsyncClient, key: str) -> str:
    """A cookie session for `key`; returns its CSRF token (the client keeps the cookie)."""
    answer = await http.post("/api/session", json={"key": key})
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["csrf_token"]
    assert token and (await http.get("/api/session")).json()["csrf_token"] == token
    return token


async def test_a_cookie_session_trades_only_with_its_csrf_token_from_its_own_origin(trading: Stack) -> None:
    origin = trading.server.http_url
    async with http_of(trading, key=None) as http:
        token = await sign_in(http, TRADE_KEY)
        before = venue_orders(trading)
        forged: list[dict[str, str]] = [
            {},  # no token (what a form on another page sends)
            {"X-CSRF-Token": "not-the-token"},
            {"X-CSRF-Token": token, "Origin": "http://evil.example"},
            {"X-CSRF-Token": token, "Origin": "http://127.0.0.1:1"},  # another port: same site
            {"X-CSRF-Token": token, "Sec-Fetch-Site": "cross-site"},
        ]
        for headers in forged:
            for method, path, body in (
                ("POST", "/api/orders", RESTING),
                ("DELETE", "/api/orders/kraken/O1", None),
                ("PATCH", "/api/orders/kraken/O1", {"qty": "1"}),
            ):
                refused = await http.request(method, path, json=body, headers=headers)
                error = refused.json()["error"]
                if "Origin" in headers:  # from another origin the cookie is not even passed on
                    assert refused.status_code == 401, (headers, method, refused.text)
                    assert error["code"] == "not_authorized"
                    continue
                assert refused.status_code == 403, (headers, method, refused.text)
                assert error["code"] == "not_authorized" and "X-CSRF-Token" in error["remedy"]
        assert venue_orders(trading) == before, "a refused request reached the venue"
        placed = await http.post(
            "/api/orders", json=RESTING, headers={"X-CSRF-Token": token, "Origin": origin}
        )
        assert placed.status_code == 200, placed.text
        canceled = await http.delete(
            f"/api/orders/kraken/{placed.json()['order_id']}", headers={"X-CSRF-Token": token}
        )
        assert canceled.status_code == 200
        # Another login of the same key has another token; a bearer request needs none.
        async with http_of(trading, key=None) as other:
            assert await sign_in(other, TRADE_KEY) != token
        assert (await http.get("/api/session", headers=bearer(TRADE_KEY))).json()["csrf_token"] is None
        # A session of a key without trade is refused even with its token.
        async with http_of(trading, key=None) as viewer:
            viewer_token = await sign_in(viewer, ACCOUNT_KEY)
            refused = await viewer.post("/api/orders", json=RESTING, headers={"X-CSRF-Token": viewer_token})
            assert refused.status_code == 403 and "trade" in refused.json()["error"]["message"]


async def test_login_links_grant_trade_only_when_asked_and_only_to_the_owner(trading: Stack) -> None:
    async with http_of(trading, key=None) as http:
        for trade, scopes in ((False, ["account", "market"]), (True, ["account", "market", "trade"])):
            link = await http.post("/api/login-link", params={"trade": "true"} if trade else None)
            assert link.status_code == 200
            code = httpx.URL(link.json()["url"]).params["code"]
            http.cookies.clear()
            assert (await http.get("/login", params={"code": code})).status_code == 303
            session = (await http.get("/api/session")).json()
            assert session["scopes"] == scopes and session["csrf_token"]
        placed = await http.post("/api/orders", json=RESTING, headers={"X-CSRF-Token": session["csrf_token"]})
        assert placed.status_code == 200, placed.text
        await http.delete(
            f"/api/orders/kraken/{placed.json()['order_id']}", headers={"X-CSRF-Token": session["csrf_token"]}
        )
    # From another machine (behind a proxy here) an admin key without trade gets no trading link.
    async with http_of(trading, key=ADMIN_KEY) as admin:
        proxied = {"X-Forwarded-For": "203.0.113.9"}
        assert (await admin.post("/api/login-link", headers=proxied)).status_code == 200
        refused = await admin.post("/api/login-link", params={"trade": "true"}, headers=proxied)
        assert refused.status_code == 403 and "trade" in refused.json()["error"]["message"]


async def test_cancel_on_disconnect_cancels_a_keys_ws_orders_unless_it_comes_back(tmp_path: Path) -> None:
    clock = FakeClock()
    async with make_stack(tmp_path, keys=TRADING_KEYS, clock=clock) as stack:
        await stack.bridge.wait_ready(LIMIT)
        account = stack.kraken_sim.exchange.account

        async def place_and_drop(client_id: str) -> str:
            client = await connect(stack.server, key=COD_KEY)
            ack = await ws_op(client, "place", client_id, order=RESTING)
            order_id: str = ack["order"]["order_id"]
            await eventually(lambda: any(o.order_id == order_id for o in stack.bridge.open_orders("kraken")))
            await client.close()
            await eventually(lambda: clock.sleepers > 0)  # the grace timer runs
            return order_id

        # Back within the grace period: the order stays.
        kept = await place_and_drop("k1")
        await clock.advance(GRACE_S / 2)
        back = await connect(stack.server, key=COD_KEY)
        await eventually(lambda: clock.sleepers == 0)  # the reconnect stopped the timer
        await clock.advance(2 * GRACE_S)
        assert account.orders[kept].status in ("pending", "open")
        await back.close()
        await eventually(lambda: clock.sleepers > 0)

        # Not back: every order it placed over /ws and still open is canceled.
        await clock.advance(GRACE_S + 1)
        await eventually(lambda: account.orders[kept].status == "canceled")

        # A key without cancel_on_disconnect_s: its orders stay.
        trader = await connect(stack.server, key=TRADE_KEY)
        ack = await ws_op(trader, "place", "t1", order=RESTING)
        await trader.close()
        await asyncio.sleep(0.05)
        await clock.advance(10 * GRACE_S)
        assert account.orders[ack["order"]["order_id"]].status in ("pending", "open")


async def test_fills_are_paged_from_the_journal_and_downloaded_as_csv(trading: Stack) -> None:
    market = {"venue": "kraken", "symbol": "BTC/USD", "side": "buy", "qty": "0.001", "type": "market"}
    async with http_of(trading) as http:
        for _ in range(3):
            assert (await http.post("/api/orders", json=market)).status_code == 200
        made = set(trading.kraken_sim.exchange.account.trades)
        await eventually(lambda: len(trading.bridge.fills_page("kraken", limit=100).fills) >= len(made))
        everything = trading.bridge.fills_page("kraken", limit=100).fills
        assert len(everything) >= 3

        first = (await http.get("/api/fills/kraken", params={"limit": 2})).json()
        assert len(first["fills"]) == 2 and first["next"]
        rest = (await http.get("/api/fills/kraken", params={"limit": 100, "after": first["next"]})).json()
        assert rest["next"] is None
        paged = first["fills"] + rest["fills"]
        assert [f["exec_id"] for f in paged] == [f.exec_id for f in everything]
        bad = await http.get("/api/fills/kraken", params={"after": "nonsense"})
        assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid_request")

        download = await http.get("/api/fills/kraken", params={"format": "csv"})
        assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
        assert "attachment" in download.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(download.text)))
        assert [r["exec_id"] for r in rows] == [f["exec_id"] for f in paged]
        for row, fill in zip(rows, paged, strict=True):  # the venue's digits, as in the JSON
            assert (row["price"], row["qty"], row["fee"]) == (fill["price"], fill["qty"], fill["fee"])
            assert row["side"] == fill["side"] and row["symbol"] == fill["symbol"]
        assert Decimal(rows[0]["qty"]) > 0

    async with BridgeClient(trading.server.http_url, key=TRADE_KEY) as bot:
        assert [f.exec_id async for f in bot.all_fills("kraken", page_size=2)] == [
            f.exec_id for f in everything
        ]
        page = await bot.fills_page("kraken", limit=1)
        assert len(page.fills) == 1 and page.next


async def test_openapi_documents_the_order_routes(trading: Stack) -> None:
    async with http_of(trading, key=None) as http:
        paths = (await http.get("/openapi.json")).json()["paths"]
    place = paths["/api/orders"]["post"]
    assert {"200", "202", "403", "409", "422"} <= set(place["responses"])
    body = place["requestBody"]["content"]["application/json"]["schema"]
    assert {"venue", "symbol", "side", "qty", "price", "client_order_id"} <= set(body["properties"])
    assert {"delete", "patch"} <= set(paths["/api/orders/{venue}/{order_id}"])
    fills = paths["/api/fills/{venue}"]["get"]
    assert {"after", "limit", "format"} <= {p["name"] for p in fills["parameters"]}


def test_order_refused_carries_its_rule_on_every_way_in() -> None:
    """The local rules (tick size, rate limit, …) refuse with `OrderRefused(rule=…)`: REST's body,
    the /ws error and the client's exception all carry the rule."""
    refused = OrderRefused("price 1.005 is not a multiple of 0.01", rule="tick_size", venue="primary")
    body = order_error(refused)
    assert body.status_code == 422
    error = json.loads(body.body)["error"]
    assert (error["code"], error["rule"]) == ("order_refused", "tick_size")
    assert code_of(refused).value == "order_refused"
    raised = error_from_wire(
        error["code"], error["message"], error["remedy"], venue="primary", rule=error["rule"]
    )
    assert isinstance(raised, OrderRefused) and raised.rule == "tick_size"
    assert order_error(TransportError("no answer")).status_code == 503
