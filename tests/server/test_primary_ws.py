"""`/primary/`: Primary's WebSocket protocol served by the bridge from its one upstream Primary session.

Real sockets on loopback: the Primary simulator, a Bridge logged in to it, the server, and
`websockets` clients speaking Primary's frames. What reached the upstream session is read off the
simulator (its sockets' subscriptions, its account's orders).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from brokerbridge.core.config import ApiKey
from brokerbridge.core.secret import Secret
from brokerbridge.server.access_tokens import Grant
from brokerbridge.sim.market import BookSide
from tests.server.conftest import GGAL, LIMIT, Stack, catalogues_loaded, make_stack
from tests.server.observe import eventually

YPFD = "MERV - XMEV - YPFD - 24hs"
ALL_ENTRIES = ["BI", "OF", "LA", "OP", "CL", "SE", "HI", "LO", "TV", "OI", "IV", "EV", "NV", "ACP", "TC"]
TRADER_KEY = "trader-key-0123456789"
VIEWER_KEY = "viewer-key-0123456789"
REPORTS_KEY = "reports-key-0123456789"
BROWSER_APP = "http://localhost:5173"  # a Vite dev server: another origin, listed in allowed_origins
KEYS = (
    ApiKey(name="trader", key=Secret(TRADER_KEY), scopes=frozenset({"market", "account", "trade"})),
    ApiKey(name="viewer", key=Secret(VIEWER_KEY), scopes=frozenset({"market"})),
    ApiKey(name="reports", key=Secret(REPORTS_KEY), scopes=frozenset({"account"})),
)

Frame = dict[str, Any]


class PrimaryClient:
    """A Primary WebSocket client: JSON frames both ways."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws

    async def send(self, frame: Frame | str) -> str:
        text = frame if isinstance(frame, str) else json.dumps(frame)
        await self.ws.send(text)
        return text

    async def next(self, *, within: float = LIMIT) -> Frame:
        async with asyncio.timeout(within):
            frame: Frame = json.loads(await self.ws.recv())
            return frame

    async def until(self, predicate: Callable[[Frame], bool], *, within: float = LIMIT) -> Frame:
        async with asyncio.timeout(within):
            while True:
                frame = await self.next()
                if predicate(frame):
                    return frame

    async def error(self, *, within: float = LIMIT) -> Frame:
        return await self.until(lambda f: f.get("status") == "ERROR", within=within)


def md_of(symbol: str) -> Callable[[Frame], bool]:
    return lambda f: f.get("type") == "Md" and f["instrumentId"]["symbol"] == symbol


def report(status: str | None = None) -> Callable[[Frame], bool]:
    return lambda f: f.get("type") == "or" and status in (None, f["orderReport"]["status"])


def smd(entries: list[str], *symbols: str, depth: int = 1, market: str = "ROFX") -> Frame:
    return {
        "type": "smd",
        "level": 1,
        "depth": depth,
        "entries": entries,
        "products": [{"symbol": s, "marketId": market} for s in symbols],
    }


def primary_url(stack: Stack, path: str = "/primary/") -> str:
    return stack.server.ws_url.removesuffix("/ws") + path


async def connect(stack: Stack, key: str | None = TRADER_KEY, path: str = "/primary/") -> PrimaryClient:
    headers = {"Authorization": f"Bearer {key}"} if key else None
    ws = await websockets.connect(primary_url(stack, path), additional_headers=headers, max_queue=None)
    return PrimaryClient(ws)


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    # Market data closed to keys without the scope (on loopback it is open to all by default).
    async with make_stack(tmp_path, keys=KEYS, open_market_data=False, allowed_origins=(BROWSER_APP,)) as s:
        await s.bridge.wait_ready(LIMIT)
        await catalogues_loaded(s)
        yield s


def upstream_md(stack: Stack) -> dict[str, list[Any]]:
    """Per product, the simulator's market-data subscriptions (one per upstream socket)."""
    out: dict[str, list[Any]] = {}
    for session in stack.primary_sim.sessions:
        for symbol, sub in session.md.items():
            out.setdefault(symbol, []).append(sub)
    return out


def upstream_orders(stack: Stack) -> int:
    return len(stack.primary_sim.exchange.account.orders)


async def test_md_carries_exactly_the_requested_entries_and_depth(stack: Stack) -> None:
    client = await connect(stack)
    await client.send(smd(["OF", "BI", "LA"], GGAL, depth=2))
    frame = await client.until(md_of(GGAL))
    assert list(frame) == ["type", "timestamp", "instrumentId", "marketData"]
    assert frame["instrumentId"] == {"marketId": "ROFX", "symbol": GGAL}
    data = frame["marketData"]
    assert list(data) == ["OF", "BI", "LA"]  # exactly these, in the order asked
    for side in (data["BI"], data["OF"]):
        assert 1 <= len(side) <= 2
        assert all(set(level) == {"price", "size"} for level in side)
    assert data["BI"][0]["price"] < data["OF"][0]["price"]
    assert set(data["LA"]) == {"price", "size", "date"}

    full = await connect(stack)
    await full.send(smd(ALL_ENTRIES, GGAL, depth=5))
    data = (await full.until(md_of(GGAL)))["marketData"]
    assert list(data) == ALL_ENTRIES
    assert len(data["BI"]) == len(data["OF"]) == 5  # the simulator's book is deeper than 5
    assert data["ACP"] is None  # the bridge does not carry it
    assert isinstance(data["TV"], int | float) and isinstance(data["TC"], int)
    assert set(data["CL"]) == {"price"}


async def test_two_clients_get_their_own_entries_and_depths_from_one_upstream(stack: Stack) -> None:
    shallow, deep = await connect(stack), await connect(stack, VIEWER_KEY)
    await shallow.send(smd(["BI"], GGAL, depth=1))
    await deep.send(smd(["OF", "LA", "TV"], GGAL, depth=4))
    for _ in range(3):
        assert list((await shallow.until(md_of(GGAL)))["marketData"]) == ["BI"]
        data = (await deep.until(md_of(GGAL)))["marketData"]
        assert list(data) == ["OF", "LA", "TV"] and len(data["OF"]) == 4
        assert len((await shallow.until(md_of(GGAL)))["marketData"]["BI"]) == 1
    # Many more readers of the product: still the bridge's one socket, one subscription of it.
    others = [await connect(stack) for _ in range(5)]
    for other in others:
        await other.send(smd(["BI", "OF"], GGAL, depth=4))
    for other in others:
        await other.until(md_of(GGAL))
    assert len(stack.primary_sim.sessions) == 1
    (upstream,) = upstream_md(stack)[GGAL]
    assert upstream.depth == 4  # the deepest wanted, cut for each reader
    views = stack.server.state.gate.primary.views
    assert len(views) == 3  # (GGAL, BI, 1), (GGAL, OF LA TV, 4), (GGAL, BI OF, 4): one frame each per change
    for client in (shallow, deep, *others):
        await client.ws.close()
    await eventually(lambda: not len(views))  # the last reader gone, each view lets go of its streams


async def test_products_are_added_and_removed_live(stack: Stack) -> None:
    client = await connect(stack)
    await client.send(smd(["BI", "OF"], GGAL))
    await client.until(md_of(GGAL))
    await client.send(smd(["BI", "OF", "LA"], YPFD))  # added: GGAL goes on
    await client.until(md_of(YPFD))
    await client.until(md_of(GGAL))
    await client.send(smd(["OF"], GGAL, depth=3))  # a later smd replaces the product's entries
    frame = await client.until(lambda f: md_of(GGAL)(f) and list(f["marketData"]) == ["OF"])
    assert len(frame["marketData"]["OF"]) == 3
    await client.send({"type": "umd", "products": [{"symbol": GGAL, "marketId": "ROFX"}]})
    await client.send("{not json")  # its error frame comes after the umd was handled
    await client.error()
    ypfd = 0
    while ypfd < 3:
        frame = await client.next()
        assert not md_of(GGAL)(frame), "GGAL after its umd"
        ypfd += md_of(YPFD)(frame)
    await client.send({"type": "umd", "products": [{"symbol": GGAL, "marketId": "ROFX"}]})
    assert (await client.error())["description"] == f"Product {GGAL}:ROFX is not subscribed"


async def test_unknown_product_gets_the_error_frame_and_the_socket_stays_open(stack: Stack) -> None:
    client = await connect(stack)
    text = await client.send(smd(["BI"], "NOPE", GGAL))
    error = await client.error()
    assert error == {"status": "ERROR", "message": text, "description": "Product NOPE:ROFX don't exist"}
    await client.until(md_of(GGAL))  # the valid product of the same smd streams
    text = await client.send(smd(["BI"], GGAL, market="MERV"))
    assert (await client.error())["description"] == f"Product {GGAL}:MERV don't exist"
    await client.until(md_of(GGAL))
    assert "NOPE" not in upstream_md(stack)  # refused before anything went upstream


async def test_an_upstream_drop_is_only_a_pause(stack: Stack) -> None:
    client = await connect(stack)
    await client.send(smd(["BI", "OF", "LA"], GGAL, depth=3))
    before = await client.until(md_of(GGAL))
    sessions = set(stack.primary_sim.sessions)
    stack.primary_sim.drop_connections()
    async with asyncio.timeout(LIMIT):
        while not (stack.primary_sim.sessions and not sessions & set(stack.primary_sim.sessions)):
            frame = await client.next()
            assert frame.get("type") == "Md", frame  # no status, no error: only Md
    after = await client.until(md_of(GGAL))  # fresh values from the new upstream socket
    assert after["timestamp"] >= before["timestamp"]
    assert list(after["marketData"]) == ["BI", "OF", "LA"]
    assert upstream_md(stack)[GGAL][0].depth == 3  # resubscribed upstream by the bridge


async def test_bad_input_is_answered_as_primary_and_nothing_goes_upstream(stack: Stack) -> None:
    client = await connect(stack)
    account = stack.primary_sim.endpoints.account
    orders = upstream_orders(stack)
    cases: list[tuple[Frame | str, str]] = [
        ("{not json", "Invalid message"),
        ("[1, 2]", "Invalid message"),
        ({"type": "xx"}, "Invalid message"),
        ({"type": "smd", "entries": ["BI"], "products": []}, "Invalid message"),
        ({"type": "smd", "products": [{"symbol": GGAL}]}, "Invalid message"),
        (smd(["BI", "XX"], GGAL), "Entry XX invalid"),
        (smd(["BI"], GGAL, depth=0), "Invalid depth"),
        (smd(["BI"], GGAL, depth=6), "Invalid depth"),
        ({**smd(["BI"], GGAL), "depth": "a"}, "Invalid depth"),
        (
            {"type": "no", "product": {"symbol": GGAL}, "side": "BUY", "account": account},
            "Required String parameter 'quantity' is not present",
        ),
        (
            {"type": "no", "product": {"symbol": "NOPE"}, "quantity": "1", "side": "BUY", "account": account},
            "Product NOPE:ROFX doesn't exist",
        ),
        (
            {"type": "no", "product": {"symbol": GGAL}, "quantity": "1", "side": "BUY", "account": "999"},
            "No tiene acceso a la cuenta 999",
        ),
        (
            {"type": "no", "product": {"symbol": GGAL}, "quantity": "-1", "side": "BUY", "account": account},
            "Invalid value '-1' for parameter 'quantity'",
        ),
        (
            {"type": "no", "product": {"symbol": GGAL}, "quantity": "1", "side": "UP", "account": account},
            "Invalid value 'UP' for parameter 'side'",
        ),
        ({"type": "co"}, "Required String parameter 'clientId' is not present"),
        ({"type": "co", "clientId": "123", "proprietary": "api"}, "Order 123:api doesn't exist"),
        ({"type": "os", "account": {"id": "999"}}, "No tiene acceso a la cuenta 999"),
    ]
    for frame, description in cases:
        text = await client.send(frame)
        error = await client.error()
        assert error == {"status": "ERROR", "message": text, "description": description}
    assert upstream_orders(stack) == orders
    assert GGAL not in upstream_md(stack)
    await client.send(smd(["BI"], GGAL))  # the socket is still open and served
    await client.until(md_of(GGAL))


async def test_scopes_decide_what_a_token_may_ask(stack: Stack) -> None:
    viewer = await connect(stack, VIEWER_KEY)
    account = stack.primary_sim.endpoints.account
    orders = upstream_orders(stack)
    for frame, what in (
        ({"type": "os", "account": {"id": account}}, "order reports"),
        (
            {"type": "no", "product": {"symbol": GGAL}, "quantity": "1", "side": "BUY", "account": account},
            "order entry",
        ),
        ({"type": "co", "clientId": "1", "proprietary": "api"}, "order entry"),
    ):
        await viewer.send(frame)
        description = (await viewer.error())["description"]
        assert description.startswith(f"Access Denied: {what} needs the ")
    assert upstream_orders(stack) == orders
    await viewer.send(smd(["LA"], GGAL))
    await viewer.until(md_of(GGAL))
    reports = await connect(stack, REPORTS_KEY)
    await reports.send(smd(["LA"], GGAL))
    assert (await reports.error())["description"].startswith("Access Denied: market data needs the 'market'")
    assert GGAL in upstream_md(stack)


async def test_handshake_refusals_as_primary(stack: Stack) -> None:
    for headers in (None, {"Authorization": "Bearer wrong-key-0123456789"}):
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(primary_url(stack), additional_headers=headers)
        assert refused.value.response.status_code == 401
        assert json.loads(refused.value.response.body or b"") == {
            "status": "ERROR",
            "message": "Unauthorized",
            "description": "Invalid or expired token",
        }
    client = await connect(stack, path="/primary")  # without the slash too
    await client.send(smd(["BI"], GGAL))
    await client.until(md_of(GGAL))


def mint(stack: Stack, scopes: frozenset[str] = frozenset({"market", "account", "trade"})) -> str:
    """A bridge access token (what `/primary/auth/getToken` answers) of the trader key."""
    logins = stack.server.state.logins
    issued = logins.access.mint(Grant("trader", scopes, logins.fingerprint(Secret(TRADER_KEY))))
    return issued.token


async def test_the_token_by_x_auth_token_or_query_and_a_revoked_one_refused(stack: Stack) -> None:
    token = mint(stack)
    by_header = PrimaryClient(
        await websockets.connect(primary_url(stack), additional_headers={"X-Auth-Token": token})
    )
    by_query = PrimaryClient(await websockets.connect(primary_url(stack, f"/primary/?token={token}")))
    for client in (by_header, by_query):
        await client.send(smd(["BI"], GGAL))
        await client.until(md_of(GGAL))
    market_only = mint(stack, frozenset({"market"}))
    viewer = PrimaryClient(
        await websockets.connect(primary_url(stack), additional_headers={"X-Auth-Token": market_only})
    )
    await viewer.send({"type": "os"})
    assert (await viewer.error())["description"].startswith(
        "Access Denied: order reports needs the 'account'"
    )
    # A /ws connection opened with the same token (the bridge's own protocol).
    bridge_ws = await websockets.connect(f"{stack.server.ws_url}?token={token}")
    access = stack.server.state.logins.access
    found = access.verify(token)
    assert not isinstance(found, str)
    access.revoke(found)
    # Revoking ends what the token opened, not only what it would open: the sockets already open
    # are closed (1008: get a new credential) at the next heartbeat round; the other token's stays.
    for ws in (by_header.ws, by_query.ws, bridge_ws):
        async with asyncio.timeout(LIMIT):
            await ws.wait_closed()
        assert ws.close_code == 1008 and "revoked" in (ws.close_reason or "")
    await viewer.send(smd(["BI"], GGAL))
    await viewer.until(md_of(GGAL))
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(primary_url(stack), additional_headers={"X-Auth-Token": token})
    assert refused.value.response.status_code == 401
    assert json.loads(refused.value.response.body or b"")["description"] == "Invalid or expired token"


async def test_a_browser_app_on_a_listed_origin_passes_its_token_in_the_query(stack: Stack) -> None:
    token = mint(stack, frozenset({"market"}))
    url = primary_url(stack, f"/primary/?token={token}")
    app = PrimaryClient(await websockets.connect(url, origin=Origin(BROWSER_APP)))
    await app.send(smd(["BI", "OF", "LA"], GGAL, depth=5))
    assert len((await app.until(md_of(GGAL)))["marketData"]["BI"]) == 5
    with pytest.raises(InvalidStatus) as refused:  # an origin not listed: the gate's 403
        await websockets.connect(url, origin=Origin("http://evil.example"))
    assert refused.value.response.status_code == 403


def _resting_buy_price(stack: Stack) -> Decimal:
    levels = stack.primary_sim.exchange.market.book(GGAL).levels(BookSide.BID, 5)
    return levels[-1][0] - 50  # below the book: it rests


async def test_orders_over_the_socket_report_as_primary(stack: Stack) -> None:
    client, watcher = await connect(stack), await connect(stack)
    account = stack.primary_sim.endpoints.account
    await client.send({"type": "os", "account": {"id": account}, "snapshotOnlyActive": True})
    await watcher.send({"type": "os"})
    orders = upstream_orders(stack)
    price = _resting_buy_price(stack)
    await client.send(
        {
            "type": "no",
            "product": {"marketId": "ROFX", "symbol": GGAL},
            "quantity": "2",
            "ordType": "limit",
            "side": "BUY",
            "account": account,
            "allOrNone": "False",
            "timeInForce": "DAY",
            "wsClOrdId": "abc1",
            "price": str(price),
        }
    )
    first = (await client.until(report()))["orderReport"]
    assert first["wsClOrdId"] == "abc1"
    assert first["status"] == "PENDING_NEW" and first["orderId"] is None
    assert first["accountId"] == {"id": account}
    assert first["instrumentId"] == {"marketId": "ROFX", "symbol": GGAL}
    assert Decimal(str(first["price"])) == price and first["orderQty"] == 2
    assert first["side"] == "BUY" and first["ordType"] == "LIMIT" and first["timeInForce"] == "DAY"
    cl_ord_id, proprietary = first["clOrdId"], first["proprietary"]
    new = (await client.until(report("NEW")))["orderReport"]
    assert new["clOrdId"] == cl_ord_id and "wsClOrdId" not in new
    assert new["leavesQty"] == 2 and new["cumQty"] == 0
    seen = await watcher.until(report("NEW"))
    assert seen["orderReport"]["clOrdId"] == cl_ord_id  # every os subscriber gets the reports
    assert upstream_orders(stack) == orders + 1  # one `no` upstream
    assert cl_ord_id in stack.primary_sim.exchange.account.orders  # the upstream clOrdId itself

    late = await connect(stack)  # a later os replays the open order
    await late.send({"type": "os", "account": {"id": account}, "snapshotOnlyActive": True})
    replayed = (await late.until(report()))["orderReport"]
    assert replayed["clOrdId"] == cl_ord_id and replayed["status"] == "NEW"

    await client.send({"type": "co", "clientId": cl_ord_id, "proprietary": proprietary})
    canceled = await client.until(report("CANCELLED"))
    assert canceled["orderReport"]["clOrdId"] == cl_ord_id
    assert canceled["orderReport"]["leavesQty"] == 0
    assert stack.primary_sim.exchange.account.orders[cl_ord_id].status == "CANCELLED"


async def test_orders_the_bridge_refuses_get_a_rejected_report(stack: Stack) -> None:
    client = await connect(stack)
    account = stack.primary_sim.endpoints.account
    await client.send({"type": "os", "account": account})
    orders = upstream_orders(stack)
    base = {"type": "no", "product": {"symbol": GGAL}, "quantity": "1", "side": "BUY", "account": account}
    off_tick = _resting_buy_price(stack) + 1  # GGAL's tick is 5
    for extra, ws_id, text in (
        ({"price": str(off_tick)}, "t1", "multiple"),
        ({"price": "7000", "timeInForce": "GTD", "expireDate": "20990101"}, "t2", "GTD"),
        ({"price": "7000", "iceberg": "True", "displayQuantity": "1"}, "t3", "iceberg"),
    ):
        await client.send({**base, **extra, "wsClOrdId": ws_id})
        rejected = (await client.until(report()))["orderReport"]
        assert rejected["status"] == "REJECTED" and rejected["wsClOrdId"] == ws_id
        assert text in rejected["text"]
    assert upstream_orders(stack) == orders  # none reached Primary


async def test_a_fill_is_reported_with_its_price_and_quantity(stack: Stack) -> None:
    client = await connect(stack)
    account = stack.primary_sim.endpoints.account
    await client.send({"type": "os", "account": {"id": account}})
    best_ask = stack.primary_sim.exchange.market.book(GGAL).levels(BookSide.ASK, 1)[0][0]
    crossing = (best_ask * Decimal("1.05") / 5).quantize(Decimal(1)) * 5  # GGAL's tick is 5
    await client.send(
        {
            "type": "no",
            "product": {"marketId": "ROFX", "symbol": GGAL},
            "quantity": "1",
            "side": "BUY",
            "account": account,
            "price": str(crossing),
            "wsClOrdId": "fill1",
        }
    )
    first = (await client.until(report()))["orderReport"]
    assert first["wsClOrdId"] == "fill1"
    filled = (await client.until(report("FILLED")))["orderReport"]
    assert filled["clOrdId"] == first["clOrdId"]
    assert filled["cumQty"] == 1 and filled["leavesQty"] == 0 and filled["lastQty"] == 1
    assert 0 < filled["lastPx"] <= crossing and filled["avgPx"] == filled["lastPx"]
    assert filled["execId"] is not None


async def test_level_throttles_a_products_frames_on_that_socket(stack: Stack) -> None:
    fast, slow = await connect(stack), await connect(stack)
    await fast.send(smd(["BI", "OF", "LA"], GGAL, depth=5))
    await slow.send({**smd(["BI", "OF", "LA"], GGAL, depth=5), "level": 5})  # at most one per 6 s
    await slow.until(md_of(GGAL))
    for _ in range(4):  # the same view's frames, a few per second, on the level-1 socket
        await fast.until(md_of(GGAL))
    held: list[Frame] = []
    while True:  # what reached the level-5 socket meanwhile: nothing after its first frame
        try:
            held.append(json.loads(await asyncio.wait_for(slow.ws.recv(), 0.001)))
        except TimeoutError:
            break
    assert [f for f in held if md_of(GGAL)(f)] == []
