"""WebSocket: smd snapshots, os, error frames that keep the socket, text ping, idle close."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal

import httpx
import websockets
from primary_helpers import GGAL, assert_shape, connect, fixture, fixture_lines, smd, step, symbol_of

from brokerbridge.core.clock import FakeClock
from brokerbridge.sim.market import BookSide
from brokerbridge.sim.primary import PrimarySimulator


async def test_md_snapshot_has_timestamp_instrument_and_exactly_the_requested_entries(
    sim: PrimarySimulator, clock: FakeClock, token: str
) -> None:
    ws = await connect(sim, token)
    await ws.send(smd(GGAL, "MERV - XMEV - AL30 - CI"))
    first = await ws.recv()
    second = await ws.recv()
    assert {first["instrumentId"]["symbol"], second["instrumentId"]["symbol"]} == {
        GGAL,
        "MERV - XMEV - AL30 - CI",
    }
    assert_shape(first, fixture_lines("ws_md_al30.jsonl")[0])
    assert list(first["marketData"]) == ["BI", "OF", "LA"]
    assert first["timestamp"] == int(clock.time() * 1000)
    await ws.send(smd(GGAL, entries=("OP", "CL", "LO", "BI", "HI", "OF")))
    md = await ws.until(
        lambda m: m.get("type") == "Md" and list(m["marketData"]) == ["OP", "CL", "LO", "BI", "HI", "OF"]
    )
    assert_shape(md, fixture("ws_md_ggal.json"))


async def test_md_updates_are_throttled_to_a_few_per_second_per_instrument(
    sim: PrimarySimulator, clock: FakeClock, token: str
) -> None:
    dlr = symbol_of(sim, "future")
    stamps: list[int] = []
    ws2 = await connect(sim, token)
    await ws2.send(smd(dlr, entries=("BI", "OF", "LA", "TV"), depth=5))
    stamps.append((await ws2.recv())["timestamp"])
    for _ in range(40):
        await step(clock, 0.25)
        try:
            while True:
                frame = await ws2.recv(within=0.05)
                stamps.append(frame["timestamp"])
        except TimeoutError:
            pass
    assert len(stamps) >= 5  # the market moves
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert min(gaps) >= 500  # never faster than 500 ms per instrument
    assert len(stamps) <= 10 * 2 + 1


async def test_unknown_symbol_gets_the_captured_error_frame_and_the_socket_keeps_streaming(
    sim: PrimarySimulator, clock: FakeClock, token: str
) -> None:
    ws = await connect(sim, token)
    request = json.dumps(smd("InvalidInstrument"), separators=(",", ":"))
    await ws.send(request)
    frame = await ws.recv()
    assert frame == fixture("ws_error_unknown_product.json")
    await ws.send(smd(GGAL))
    assert (await ws.recv())["instrumentId"]["symbol"] == GGAL
    await ws.send("not json")
    assert (await ws.recv())["status"] == "ERROR"
    await ws.send("ping")  # a text ping is tolerated silently
    await ws.send({"type": "smd", "level": 1, "depth": 1, "entries": ["XX"], "products": [{"symbol": GGAL}]})
    assert (await ws.until(lambda m: m.get("status") == "ERROR"))["description"] == "Entry XX invalid"
    assert ws.conn.state is websockets.State.OPEN


async def test_batch_of_products_and_the_1000_limit(sim: PrimarySimulator, token: str) -> None:
    symbols = [inst.symbol for inst in sim.exchange.catalog.instruments]
    ws = await connect(sim, token)
    await ws.send(smd(*symbols))
    seen = {(await ws.recv())["instrumentId"]["symbol"] for _ in symbols}
    assert seen == set(symbols)
    await ws.send(smd(*([GGAL] * 1001)))
    assert (await ws.until(lambda m: m.get("status") == "ERROR"))["description"].startswith(
        "Too many products"
    )


async def test_empty_book_side_is_an_empty_list_on_ws(sim: PrimarySimulator, token: str) -> None:
    book = sim.exchange.market.book("MERV - XMEV - ALUA - CI")
    for price in book.prices(BookSide.BID):
        book.set(BookSide.BID, price, Decimal(0), 0.0)
    ws = await connect(sim, token)
    await ws.send(smd("MERV - XMEV - ALUA - CI", entries=("BI", "LA", "OF")))
    frame = await ws.recv()
    assert frame["marketData"]["BI"] == []
    assert_shape(frame, fixture("ws_md_alua_ci_empty_bids.json"))


async def test_os_forms_and_foreign_account(
    sim: PrimarySimulator, http: httpx.AsyncClient, auth: dict[str, str], token: str
) -> None:
    account = sim.endpoints.account
    ws = await connect(sim, token)
    await ws.send({"type": "os", "account": {"id": "30"}, "snapshotOnlyActive": True})
    frame = await ws.recv()
    assert frame["status"] == "ERROR" and frame["description"] == "No tiene acceso a la cuenta 30"
    for message in (
        {"type": "os", "account": {"id": account}, "snapshotOnlyActive": True},
        {"type": "os", "accounts": [{"id": account}]},
        {"type": "os"},
    ):
        other = await connect(sim, token)
        await other.send(message)
        await http.get(
            f"rest/order/newSingleOrder?marketId=ROFX&symbol={GGAL}&orderQty=1&ordType=limit&side=buy"
            f"&timeInForce=Day&account={account}&cancelPrevious=False&price=100",
            headers=auth,
        )
        report = await other.until(lambda m: m.get("type") == "or")
        assert report["orderReport"]["accountId"] == {"id": account}


async def test_idle_socket_is_closed_but_a_pinging_one_stays(
    sim: PrimarySimulator, clock: FakeClock, token: str
) -> None:
    silent = await connect(sim, token)
    pinging = await connect(sim, token)
    await step(clock, 40)
    await pinging.conn.ping()
    await step(clock, 25)  # 65 s: the silent one is past 60 s, the pinging one at 25 s
    assert await silent.closed_with() == 1000
    assert pinging.conn.state is websockets.State.OPEN
    await step(clock, 40)
    assert await pinging.closed_with() == 1000


async def test_idle_close_is_configurable_and_can_be_off(
    sim: PrimarySimulator, http: httpx.AsyncClient, clock: FakeClock, token: str
) -> None:
    await http.post(sim.endpoints.control + "/faults", json={"idle_close_s": 0})
    ws = await connect(sim, token)
    await step(clock, 300)
    assert ws.conn.state is websockets.State.OPEN
    await http.post(sim.endpoints.control + "/faults", json={"idle_close_s": 5})
    await step(clock, 6)
    assert await ws.closed_with() == 1000
