"""The server's own channels: `status` (a venue's whole status feed) and `orders` (order updates
without the fills), end to end over real sockets against the simulators."""

from __future__ import annotations

import asyncio

from tests.io.rig import btc_usd
from tests.server.conftest import LIMIT, MARKET_KEY, Client, Stack, connect, is_event


async def subscribe(client: Client, sub_id: str, **fields: object) -> dict:
    await client.send({"op": "subscribe", "id": sub_id, **fields})
    return await client.until(lambda m: m["type"] in ("ack", "error") and m.get("id") == sub_id)


def status_of(stream: str, state: str) -> object:
    return lambda m: (
        m["type"] == "event"
        and m["event"]["kind"] == "status"
        and m["event"]["stream"] == stream
        and m["event"]["state"] == state
    )


async def test_status_channel_reports_every_stream_of_the_venue_and_its_recovery(stack: Stack) -> None:
    async with asyncio.timeout(3 * LIMIT):
        data = await connect(stack.server, key=MARKET_KEY)
        await subscribe(data, "t", venue="kraken", channel="ticker", symbol="BTC/USD")
        await data.until(is_event("ticker"))
        watcher = await connect(stack.server, key=MARKET_KEY)
        ack = await subscribe(watcher, "s", venue="kraken", channel="status")
        assert (ack["type"], ack["stream"]) == ("ack", "kraken:status")
        # The current state of the open stream at once, then its changes.
        await watcher.until(status_of("kraken:ticker:BTC/USD", "live"), within=2.0)
        await subscribe(data, "b", venue="kraken", channel="book", symbol="ETH/USD", depth=10)
        await watcher.until(lambda m: m["type"] == "event" and m["event"]["stream"].startswith("kraken:book"))
        stack.kraken_sim.faults.apply({"drop_now": True})
        await watcher.until(status_of("kraken:ticker:BTC/USD", "reconnecting"))
        await watcher.until(status_of("kraken:ticker:BTC/USD", "live"))
        # Only this venue's streams, and never market data.
        seen = [m for m in watcher.received if m["type"] == "event"]
        assert all(m["event"]["kind"] in ("status", "gap") for m in seen)
        assert all(m["event"]["venue"] == "kraken" for m in seen)
        wrong = await subscribe(watcher, "x", venue="kraken", channel="status", symbol="BTC/USD")
        assert (wrong["type"], wrong["code"]) == ("error", "invalid_request")
        await data.close()
        await watcher.close()


async def test_orders_channel_needs_the_account_scope_and_carries_no_fills(stack: Stack) -> None:
    async with asyncio.timeout(3 * LIMIT):
        viewer = await connect(stack.server, key=MARKET_KEY)
        refused = await subscribe(viewer, "o", venue="kraken", channel="orders")
        assert (refused["type"], refused["code"]) == ("error", "not_authorized")
        await viewer.close()

        bot = await connect(stack.server)  # the account key
        ack = await subscribe(bot, "o", venue="kraken", channel="orders")
        assert (ack["type"], ack["stream"]) == ("ack", "kraken:orders")
        await bot.until(status_of("kraken:executions", "live"))
        resting = await stack.bridge.place(btc_usd("0.001", "1000"))
        assert resting.status == "accepted"
        update = await bot.until(is_event("order_update", order_id=resting.order_id))
        assert update["event"]["status"] in ("pending_new", "new")
        taken = await stack.bridge.place(btc_usd("0.001"))
        assert taken.status == "accepted"
        await bot.until(is_event("order_update", order_id=taken.order_id, status="filled"))
        assert stack.bridge.fills("kraken"), "the market order filled"
        assert not any(m["type"] == "event" and m["event"]["kind"] == "fill" for m in bot.received)

        late = await connect(stack.server)  # a late joiner gets the orders believed open first
        await subscribe(late, "o2", venue="kraken", channel="orders")
        first = await late.until(is_event("order_update"), within=2.0)
        assert first["event"]["order_id"] == resting.order_id
        await bot.close()
        await late.close()
