"""ccxt.pro (unmodified, asyncio) `ccxt.pro.kraken` WS v2 against the simulator process.

All current kraken watch/trade methods use ``urls.api.ws.publicV2`` / ``privateV2`` verbatim (no
``/v2`` appended); ``urls.api.ws.private`` (v1) is only the cache key of the REST-fetched token in
``authenticate()``; ``public`` is unused by v2 methods. All four are overridden, plus the REST
urls used by ``load_markets`` and ``GetWebSocketsToken``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import ccxt.pro
import pytest
from tp_helpers import async_wait_until, bounded

pytestmark = [pytest.mark.thirdparty, pytest.mark.timeout(60)]

SYMBOL = "BTC/USD"


def _make(sim) -> ccxt.pro.kraken:
    return ccxt.pro.kraken(
        {
            "apiKey": sim.api_key,
            "secret": sim.api_secret,
            "enableRateLimit": False,
            "timeout": 10_000,
            "urls": {
                "api": {
                    "public": sim.rest,
                    "private": sim.rest,
                    "ws": {
                        "publicV2": sim.ws_public,
                        "privateV2": sim.ws_private,
                        "public": sim.pks_ws_url,
                        "private": sim.pks_auth_ws_url,
                    },
                }
            },
        }
    )


@contextlib.asynccontextmanager
async def exchange(sim) -> AsyncIterator[ccxt.pro.kraken]:
    ex = _make(sim)
    try:
        ws = ex.urls["api"]["ws"]
        assert ws["publicV2"] == sim.ws_public and ws["privateV2"] == sim.ws_private
        assert "beta" in ws  # deep merge kept the entries we did not override
        await bounded(ex.load_markets(), 10, "load_markets")
        yield ex
    finally:
        await ex.close()


class Collector:
    """Runs ``watch_*`` in a loop in the background and keeps everything it returned."""

    def __init__(self, watch: Callable[[], Awaitable[Any]]) -> None:
        self.items: list[Any] = []
        self.error: BaseException | None = None
        self._watch = watch
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            while True:
                res = await self._watch()
                if isinstance(res, list):
                    self.items.extend(res)
                else:
                    self.items.append(res)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # surfaced by the test
            self.error = exc

    def find(self, pred: Callable[[Any], bool]) -> list[Any]:
        if self.error is not None:
            raise AssertionError(f"watcher failed: {self.error!r}") from self.error
        return [x for x in self.items if pred(x)]

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def test_public_watchers(sim):
    async with exchange(sim) as ex:
        ticker = await bounded(ex.watch_ticker(SYMBOL), 10, "watch_ticker")
        assert ticker["symbol"] == SYMBOL
        assert 0 < ticker["bid"] < ticker["ask"]
        assert ticker["bidVolume"] > 0 and ticker["askVolume"] > 0
        assert ticker["low"] <= ticker["last"] <= ticker["high"]
        assert ticker["baseVolume"] >= 0 and ticker["quoteVolume"] >= 0
        assert ticker["change"] is not None and ticker["percentage"] is not None

        ob = await bounded(ex.watch_order_book(SYMBOL, 10), 10, "watch_order_book snapshot")
        assert ob["symbol"] == SYMBOL
        assert len(ob["bids"]) == 10 and len(ob["asks"]) == 10
        assert ob["bids"][0][0] < ob["asks"][0][0]
        for _ in range(5):  # a few updates applied on top of the snapshot
            ob = await bounded(ex.watch_order_book(SYMBOL, 10), 10, "watch_order_book update")
        assert len(ob["bids"]) == 10 and len(ob["asks"]) == 10
        bids = [b[0] for b in ob["bids"]]
        asks = [a[0] for a in ob["asks"]]
        assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
        assert bids[0] < asks[0]
        assert all(b[1] > 0 for b in ob["bids"] + ob["asks"])
        assert ob["timestamp"] is not None and ob["datetime"]

        trades = await bounded(ex.watch_trades(SYMBOL), 20, "watch_trades (live trade)")
        assert trades
        for tr in trades:
            assert tr["symbol"] == SYMBOL and tr["side"] in ("buy", "sell")
            assert tr["price"] > 0 and tr["amount"] > 0 and tr["id"] and tr["timestamp"]
            assert tr["type"] in ("limit", "market")

        candles = await bounded(ex.watch_ohlcv(SYMBOL, "1m"), 10, "watch_ohlcv")
        assert candles
        for t, o, h, low, c, v in candles:
            assert t % 60_000 == 0
            assert low <= min(o, c) and h >= max(o, c) and v >= 0
        # the ccxt timestamp is interval_begin: the forming candle started within the last minute
        assert ex.milliseconds() - candles[-1][0] < 120_000

        # a REST cross-check of the same market
        rest_ob = await ex.fetch_order_book(SYMBOL, 10)
        assert abs(rest_ob["bids"][0][0] - bids[0]) / bids[0] < 0.01


async def test_private_watchers_and_ws_trading(sim):
    async with exchange(sim) as ex:
        rest_bal = await ex.fetch_balance()
        bal = await bounded(ex.watch_balance(), 10, "watch_balance snapshot")
        for code in ("BTC", "USD"):
            assert bal[code]["total"] == pytest.approx(rest_bal[code]["total"], abs=1e-9), code
        btc_before = bal["BTC"]["total"]
        usd_before = bal["USD"]["total"]

        orders = Collector(ex.watch_orders)
        balances = Collector(ex.watch_balance)
        try:
            await async_wait_until(
                lambda: "executions" in ex.clients[sim.ws_private].subscriptions, 5, "subscribe"
            )
            await asyncio.sleep(0.3)  # let the executions ack/snapshot arrive

            # ---- limit order over WS, then cancel over WS ---------------------------------------
            book = await ex.fetch_order_book(SYMBOL, 10)
            price = float(ex.price_to_precision(SYMBOL, book["bids"][0][0] * 0.5))
            amount = 0.001
            created = await bounded(
                ex.create_order_ws(SYMBOL, "limit", "buy", amount, price), 10, "add_order"
            )
            oid = created["id"]
            assert oid and isinstance(oid, str), created
            await async_wait_until(
                lambda: orders.find(lambda o: o["id"] == oid and o["status"] == "open"),
                5,
                "order open via WS",
            )
            first = orders.find(lambda o: o["id"] == oid)[0]
            assert first["symbol"] == SYMBOL and first["side"] == "buy" and first["type"] == "limit"
            assert first["price"] == pytest.approx(price) and first["amount"] == pytest.approx(amount)
            assert oid in {o["id"] for o in await ex.fetch_open_orders()}

            ack = await bounded(ex.cancel_order_ws(oid), 10, "cancel_order")
            assert ack["success"] is True and ack["result"]["order_id"] == oid, ack
            await async_wait_until(
                lambda: orders.find(lambda o: o["id"] == oid and o["status"] == "canceled"),
                5,
                "canceled via WS",
            )
            assert oid not in {o["id"] for o in await ex.fetch_open_orders()}

            # ---- market order over WS: my trades + balance follow ---------------------------------
            my_trades = Collector(ex.watch_my_trades)
            try:
                created = await bounded(
                    ex.create_order_ws(SYMBOL, "market", "buy", amount), 10, "market add_order"
                )
                moid = created["id"]
                fills = await async_wait_until(
                    lambda: my_trades.find(lambda t: t["order"] == moid), 5, "own trade via WS"
                )
                await async_wait_until(
                    lambda: orders.find(lambda o: o["id"] == moid and o["status"] == "closed"),
                    5,
                    "filled via WS",
                )
                await async_wait_until(
                    lambda: balances.find(
                        lambda b: (
                            b.get("BTC", {}).get("total") == pytest.approx(btc_before + amount, abs=1e-9)
                        )
                    ),
                    5,
                    "BTC balance update via WS",
                )
            finally:
                await my_trades.stop()
        finally:
            await orders.stop()
            await balances.stop()

        assert sum(t["amount"] for t in fills) == pytest.approx(amount, abs=1e-12)
        cost = sum(t["cost"] for t in fills)
        fee = sum(t["fee"]["cost"] for t in fills)
        for t in fills:
            assert t["symbol"] == SYMBOL and t["side"] == "buy" and t["takerOrMaker"] == "taker"
            assert t["fee"]["currency"] == "USD" and t["fee"]["cost"] > 0
            assert t["cost"] == pytest.approx(t["price"] * t["amount"], abs=1e-4)
        rest_after = await ex.fetch_balance()
        assert rest_after["BTC"]["total"] == pytest.approx(btc_before + amount, abs=1e-9)
        assert rest_after["USD"]["total"] == pytest.approx(usd_before - cost - fee, abs=2e-4)
        ws_bal = ex.balance["spot"]
        assert ws_bal["BTC"]["total"] == pytest.approx(rest_after["BTC"]["total"], abs=1e-9)
        assert ws_bal["USD"]["total"] == pytest.approx(rest_after["USD"]["total"], abs=1e-6)
        rest_trades = [t for t in await ex.fetch_my_trades() if t["order"] == moid]
        assert sum(t["amount"] for t in rest_trades) == pytest.approx(amount, abs=1e-12)
        assert sum(t["cost"] for t in rest_trades) == pytest.approx(cost, abs=1e-4)


async def test_orders_snapshot_bids_asks_and_ws_errors(sim):
    async with exchange(sim) as ex:
        # an order resting before the executions subscription shows up in its snapshot
        book = await ex.fetch_order_book(SYMBOL, 10)
        price = float(ex.price_to_precision(SYMBOL, book["bids"][0][0] * 0.5))
        resting = await ex.create_order(SYMBOL, "limit", "buy", 0.001, price)
        try:
            orders = await bounded(ex.watch_orders(), 10, "watch_orders snapshot")
            snap = [o for o in orders if o["id"] == resting["id"]]
            assert snap, orders
            assert snap[0]["status"] == "open" and snap[0]["symbol"] == SYMBOL
            assert snap[0]["price"] == pytest.approx(price) and snap[0]["amount"] == pytest.approx(0.001)

            with pytest.raises(ccxt.pro.ExchangeError, match="EOrder:Insufficient funds"):
                await bounded(ex.create_order_ws(SYMBOL, "limit", "buy", 1000, price), 10, "add_order")
            with pytest.raises(ccxt.pro.OrderNotFound):
                await bounded(ex.cancel_order_ws("OAAAAA-BBBBB-CCCCCC"), 10, "cancel_order unknown")
        finally:
            await ex.cancel_order(resting["id"])

        bbo = await bounded(ex.watch_bids_asks([SYMBOL]), 10, "watch_bids_asks")
        t = bbo[SYMBOL]
        assert 0 < t["bid"] < t["ask"]

        books = await bounded(ex.watch_order_book_for_symbols([SYMBOL, "ETH/USD"], 10), 10, "2 books")
        assert books["symbol"] in (SYMBOL, "ETH/USD")
        for sym in (SYMBOL, "ETH/USD"):
            await async_wait_until(lambda s=sym: s in ex.orderbooks, 5, f"{sym} book")
            ob = ex.orderbooks[sym]
            assert len(ob["bids"]) >= 10 and ob["bids"][0][0] < ob["asks"][0][0]


async def test_keepalive_pong_and_my_trades_snapshot(sim):
    ex = _make(sim)
    # ccxt pings {"method":"ping"} every keepAlive ms and fails the connection when no pong came
    # within 2 * keepAlive; shorten it (config, deep-merged) so the test sees several rounds quickly
    ex.streaming = {**ex.streaming, "keepAlive": 700}
    try:
        await ex.load_markets()
        # a fill to be found in the snapshot of a fresh executions subscription
        await ex.create_order(SYMBOL, "market", "buy", 0.001)
        trades = await bounded(ex.watch_my_trades(), 10, "watch_my_trades snapshot (snap_trades)")
        assert trades and all(t["symbol"] == SYMBOL and t["id"] for t in trades)
        assert any(t["side"] == "buy" and t["amount"] == pytest.approx(0.001) for t in trades)

        t0 = ex.milliseconds()
        end = asyncio.get_running_loop().time() + 3.0
        while asyncio.get_running_loop().time() < end:
            await bounded(ex.watch_ticker(SYMBOL), 5, "ticker while keepalive runs")
        client = ex.clients[sim.ws_public]
        assert client.lastPong is not None and client.lastPong > t0, "pongs for ccxt's pings"
        assert not client.closed()
    finally:
        await ex.close()
