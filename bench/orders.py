"""Issue 18: an order's round trip through the bridge, against the same order sent straight to the
venue, and 1,000 orders a second offered to the bridge.

The Kraken simulator on loopback, a `Bridge` on it and the bridge server. One round = one limit buy
far below the market (it rests: nothing fills, nothing moves balances), timed from the moment the
client sends it to the moment the client has its acknowledgement with the order id:

* baseline, straight to the simulator: a signed REST `AddOrder` (httpx, one pooled connection) and a
  WebSocket v2 `add_order` on an authenticated socket held open (the token fetched once);
* through the bridge: `Bridge.place` in process, `POST /api/orders` (httpx, a trade key) and the
  `/ws` op `place` on a socket held open — each crossing the bridge to the simulator and back.

Rounds alternate between the paths so that a slow moment of the machine is shared by all. Each
order goes to one of the four pairs in turn, and both the simulator's counter and the bridge's model
of it are at Kraken's Pro tier (180 a pair): the rounds must not meet the rate limit they do not
measure.

Then the offered load, on a fresh simulator and Bridge at their default tiers (the simulator
Intermediate, the bridge Starter — the bridge assumes less than the account has): 1,000
`Bridge.place` calls in one second on one pair. The bridge's model of Kraken's rate counter must
refuse (`order_refused`, rule `rate_limit`) or queue what the venue would refuse: the simulator's own
refusals (`EOrder:Rate limit exceeded`) must stay 0.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from collections import Counter
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import httpx
import websockets

from bench.common import SEED, Report, percentile
from brokerbridge.bridge import Bridge
from brokerbridge.core.config import ApiKey, Config, KrakenConfig, ServerConfig
from brokerbridge.core.errors import BrokerBridgeError, OrderRefused
from brokerbridge.core.events import Side
from brokerbridge.core.orders import OrderRequest
from brokerbridge.core.secret import Secret
from brokerbridge.server import BridgeServer, ServerSettings
from brokerbridge.server.ws import WsSettings
from brokerbridge.sim.kraken import KrakenSimulator
from brokerbridge.sim.kraken.order_rate import OrderRateCounter
from brokerbridge.venues.kraken.auth import sign

KEY = "bench-trade-key-0123456789"
# (pair as the bridge and WS v2 name it, REST altname, a price far below the market, volume)
PAIRS = (
    ("BTC/USD", "XBTUSD", "10000.0", "0.0001"),
    ("ETH/USD", "ETHUSD", "1000.00", "0.002"),
    ("SOL/USD", "SOLUSD", "50.00", "0.1"),
    ("XRP/USD", "XRPUSD", "0.20000", "5"),
)
Timed = Callable[[int], Awaitable[None]]  # one round's order, on pair index i


async def _rounds(paths: dict[str, Timed], rounds: int) -> dict[str, list[float]]:
    took: dict[str, list[float]] = {name: [] for name in paths}
    for i in range(rounds):
        for name, path in paths.items():
            start = time.perf_counter()
            await path(i)
            took[name].append(time.perf_counter() - start)
    return took


class _DirectRest:
    """AddOrder signed by hand, as any client would send it, with a key of its own (a key's nonces
    must grow, and the bridge signs with the configured one)."""

    def __init__(self, sim: KrakenSimulator, http: httpx.AsyncClient) -> None:
        self.sim, self.http, self.nonce = sim, http, time.time_ns()
        self.key = sim.exchange.create_key()

    async def call(self, method: str, params: dict[str, str]) -> Any:
        self.nonce += 1
        body = urllib.parse.urlencode({"nonce": self.nonce, **params})
        headers = {
            "API-Key": self.key.key,
            "API-Sign": sign(f"/0/private/{method}", str(self.nonce), body, self.key.secret),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        answer = (
            await self.http.post(
                f"{self.sim.endpoints.rest}/0/private/{method}", content=body, headers=headers
            )
        ).json()
        if answer["error"]:
            raise RuntimeError(f"direct {method}: {answer['error']}")
        return answer["result"]

    async def __call__(self, i: int) -> None:
        _, altname, price, volume = PAIRS[i % len(PAIRS)]
        await self.call(
            "AddOrder",
            {"ordertype": "limit", "type": "buy", "volume": volume, "pair": altname, "price": price},
        )


class _DirectWs:
    def __init__(self, ws: Any, token: str) -> None:
        self.ws, self.token, self.req_id = ws, token, 0

    async def __call__(self, i: int) -> None:
        symbol, _, price, volume = PAIRS[i % len(PAIRS)]
        self.req_id += 1
        params = {"order_type": "limit", "side": "buy", "order_qty": float(volume), "symbol": symbol}
        params |= {"limit_price": float(price), "token": self.token}
        await self.ws.send(json.dumps({"method": "add_order", "params": params, "req_id": self.req_id}))
        while True:
            message = json.loads(await self.ws.recv())
            if message.get("method") == "add_order" and message.get("req_id") == self.req_id:
                if not message.get("success"):
                    raise RuntimeError(f"direct add_order: {message.get('error')}")
                return


def _request(i: int, client_order_id: str | None = None) -> OrderRequest:
    symbol, _, price, volume = PAIRS[i % len(PAIRS)]
    return OrderRequest(
        venue="kraken",
        symbol=symbol,
        side=Side.BUY,
        qty=Decimal(volume),
        price=Decimal(price),
        client_order_id=client_order_id,
    )


def _wire(i: int) -> dict[str, Any]:
    symbol, _, price, volume = PAIRS[i % len(PAIRS)]
    return {
        "venue": "kraken",
        "symbol": symbol,
        "side": "buy",
        "qty": volume,
        "type": "limit",
        "price": price,
    }


async def _bridge_ws_path(server: BridgeServer) -> tuple[Any, Timed]:
    ws = await websockets.connect(server.ws_url, additional_headers={"Authorization": f"Bearer {KEY}"})
    counter = 0

    async def place(i: int) -> None:
        nonlocal counter
        counter += 1
        await ws.send(json.dumps({"op": "place", "id": counter, "order": _wire(i)}))
        while True:
            message = json.loads(await ws.recv())
            if message.get("id") == counter and message["type"] in ("ack", "error"):
                if message["type"] == "error" or message["order"]["status"] != "accepted":
                    raise RuntimeError(f"bridge /ws place: {message}")
                return

    return ws, place


async def _offered(per_second: int, seconds: float) -> dict[str, int]:
    """`per_second` places a second on one pair for `seconds` through a fresh Bridge; outcomes
    counted, with the simulator's own rate refusals."""
    outcomes: Counter[str] = Counter()
    async with KrakenSimulator(host="127.0.0.1", port=0, seed=SEED) as sim, Bridge(_config(sim)) as bridge:
        await bridge.wait_ready(30)

        async def one() -> None:
            try:
                ack = await bridge.place(_request(0))
                outcomes[ack.status] += 1
            except OrderRefused as exc:
                outcomes[f"refused locally ({exc.rule})"] += 1
            except BrokerBridgeError as exc:
                outcomes[f"{type(exc).__name__}: {exc.message[:60]}"] += 1

        tasks = []
        start = time.perf_counter()
        for n in range(int(per_second * seconds)):
            delay = start + n / per_second - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one()))
        await asyncio.gather(*tasks)
        outcomes["refused by the venue"] = sim.exchange.account.order_rate.refused
    return dict(outcomes)


def _config(sim: KrakenSimulator, **kraken: Any) -> Config:
    ends = sim.endpoints
    return Config(
        kraken=KrakenConfig(
            rest_url=ends.rest,
            ws_url=ends.ws_public,
            ws_auth_url=ends.ws_private,
            api_key=ends.api_key,
            api_secret=Secret(ends.api_secret),
            **kraken,
        ),
        journal_path=":memory:",
    )


async def _run(rounds: int, offered_s: float) -> Report:
    report = Report("orders")
    async with KrakenSimulator(host="127.0.0.1", port=0, seed=SEED) as sim:
        ends = sim.endpoints
        sim.exchange.account.order_rate = OrderRateCounter(tier="pro")
        config = _config(sim, tier="pro")
        keys = (ApiKey(name="bench", key=Secret(KEY), scopes=frozenset({"market", "account", "trade"})),)
        # The per-connection message limit (20/s, a protection against a flooding client) would
        # refuse the rounds' back-to-back places on /ws: lifted, it is not what is measured.
        ws = WsSettings(messages_per_second=100_000, message_burst=100_000)
        settings = ServerSettings(config=ServerConfig(keys=keys), ws=ws)
        async with (
            Bridge(config) as bridge,
            BridgeServer(bridge, host="127.0.0.1", port=0, settings=settings) as server,
            httpx.AsyncClient(timeout=30) as venue_http,
            httpx.AsyncClient(
                base_url=server.http_url, timeout=30, headers={"Authorization": f"Bearer {KEY}"}
            ) as bridge_http,
        ):
            await bridge.wait_ready(30)
            direct_rest = _DirectRest(sim, venue_http)
            token = (await direct_rest.call("GetWebSocketsToken", {}))["token"]
            direct_ws = await websockets.connect(ends.ws_private)
            bridge_ws, bridge_ws_place = await _bridge_ws_path(server)

            async def bridge_python(i: int) -> None:
                ack = await bridge.place(_request(i))
                if ack.status != "accepted":
                    raise RuntimeError(f"Bridge.place: {ack}")

            async def bridge_rest(i: int) -> None:
                answer = await bridge_http.post("/api/orders", json=_wire(i))
                if answer.status_code != 200:
                    raise RuntimeError(f"POST /api/orders: {answer.status_code} {answer.text}")

            paths: dict[str, Timed] = {
                "direct REST": direct_rest,
                "direct WS": _DirectWs(direct_ws, token),
                "bridge in-process": bridge_python,
                "bridge REST": bridge_rest,
                "bridge /ws": bridge_ws_place,
            }
            await _rounds(paths, 2)  # warm-up: connections, first-use imports
            took = await _rounds(paths, rounds)
            await direct_ws.close()
            await bridge_ws.close()
            for name, values in took.items():
                report.add(f"{name} p50", percentile(values, 0.5) * 1000, "ms")
                report.add(f"{name} p99", percentile(values, 0.99) * 1000, "ms")
            for ours, base in (("bridge REST", "direct REST"), ("bridge /ws", "direct WS")):
                report.ratio(f"{ours} p50 / {base} p50", f"{ours} p50", f"{base} p50")
    outcomes = await _offered(1000, offered_s)
    for outcome, count in sorted(outcomes.items()):
        report.add(f"offered 1,000/s: {outcome}", count)
    report.target("offered 1,000/s: refused by the venue", "<=", 0)
    report.note(
        f"{rounds} rounds per path, interleaved; limit buys far below the market on {len(PAIRS)} pairs in "
        f"turn; then 1,000 places/s for {offered_s:g} s on BTC/USD"
    )
    return report


def run(smoke: bool) -> list[Report]:
    return [asyncio.run(_run(3, 0.05) if smoke else _run(100, 1.0))]
