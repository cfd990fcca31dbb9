"""REST under /api/ and /metrics, against the live stack."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from typing import Any

import httpx
import websockets
from prometheus_client.parser import text_string_to_metric_families

from tests.server.conftest import ACCOUNT_KEY, GGAL, LIMIT, Stack, connect, is_event


async def test_venues_and_health(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.server.http_url, timeout=LIMIT) as http:
        venues = (await http.get("/api/venues")).json()
        assert {v["venue"] for v in venues["venues"]} == {"kraken", "primary"}
        health = (await http.get("/api/health")).json()
        assert health["status"] in ("ok", "degraded")
        for venue in ("kraken", "primary"):
            streams = health["venues"][venue]["streams"]
            for stream in streams.values():
                if "state" in stream:
                    assert {"state", "mode", "reconnects", "seconds_since_last_message"} <= set(stream)
            assert "token_expires_at" in health["venues"][venue]
        docs = await http.get("/docs")
        assert docs.status_code == 200
        # Swagger UI comes from the package, not a CDN: no external URL, and its assets are served.
        assert "http://" not in docs.text and "https://" not in docs.text and "//cdn" not in docs.text
        assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
        assert {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"} <= set(assets)
        for asset in assets:
            served = await http.get(asset)
            assert served.status_code == 200 and len(served.content) > 500, asset
        assert '"validatorUrl": null' in docs.text  # no badge fetched from validator.swagger.io
        assert "SwaggerUIBundle" in (await http.get("/docs/assets/swagger-ui-bundle.js")).text
        assert (await http.get("/redoc")).status_code == 404  # ReDoc would need a CDN: not served
        assert "/api/health" in (await http.get("/openapi.json")).json()["paths"]
        page = await http.get("/")  # the dashboard, with its own assets under /dashboard/
        assert page.status_code == 200 and 'src="/dashboard/js/main.js"' in page.text
        assert (await http.get("/dashboard/js/main.js")).status_code == 200


VENUE_FIELDS = {
    "venue",
    "credentials",
    "token_expires_at",
    "streams",
    "rest_url",
    "environment",
    "simulated",
    "readiness",
}
STREAM_FIELDS = {
    "state",
    "mode",
    "connected",
    "reconnects",
    "seconds_since_last_message",
    "last_error",
    "subscriptions",
    "url",
}


async def test_health_json_keeps_every_field_of_every_kind_of_stream(stack: Stack) -> None:
    """What the dashboard, `BridgeClient` and scripts read from /api/health: every field of a venue
    and of a stream, with its type — Kraken's two connections, Primary's socket, and Primary's
    REST-polled account streams (`risk`: mode `rest`, worst state, no connection)."""
    subscriptions = {
        "kt": {"venue": "kraken", "channel": "ticker", "symbol": "BTC/USD"},
        "kb": {"venue": "kraken", "channel": "balances"},
        "pt": {"venue": "primary", "channel": "ticker", "symbol": GGAL},
        "pp": {"venue": "primary", "channel": "positions"},
    }
    async with (
        asyncio.timeout(LIMIT),
        httpx.AsyncClient(base_url=stack.server.http_url, timeout=LIMIT) as http,
    ):
        client = await connect(stack.server)
        for sub_id, fields in subscriptions.items():
            await client.send({"op": "subscribe", "id": sub_id, **fields})
        live: set[str] = set()  # in any order: an account stream the Bridge holds may be live first

        def all_live(message: dict[str, Any]) -> bool:
            if is_event("status", state="live")(message):
                live.add(message["id"])
            return live >= set(subscriptions)

        await client.until(all_live)
        await stack.bridge.wait_ready(LIMIT)  # the account streams the Bridge holds itself are live too
        health = (await http.get("/api/health")).json()
        venues = (await http.get("/api/venues")).json()["venues"]
        await client.close()

    assert health["status"] == "ok" and set(health) == {"status", "venues"}
    kraken, primary = health["venues"]["kraken"], health["venues"]["primary"]
    for venue in (kraken, primary):
        assert set(venue) == VENUE_FIELDS
        assert venue["credentials"] is True and isinstance(venue["rest_url"], str)
        assert isinstance(venue["token_expires_at"], float)  # a token is held: private data flows
    assert kraken["venue"] == "kraken" and kraken["environment"] is None
    assert primary["venue"] == "primary" and isinstance(primary["environment"], str)
    assert set(kraken["streams"]) == {"public", "private"} and set(primary["streams"]) == {"ws", "risk"}
    connections = {
        ("kraken", "public"): {"kraken:ticker:BTC/USD": "live"},
        ("kraken", "private"): {"kraken:balances": "live", "kraken:executions": "live"},  # held always
        ("primary", "ws"): {f"primary:ticker:{GGAL}": "live", "primary:executions": "live"},
    }
    for (venue, name), subs in connections.items():
        stream = health["venues"][venue]["streams"][name]
        assert set(stream) == STREAM_FIELDS, (venue, name)
        assert stream["state"] == "live" and stream["mode"] == "ws" and stream["connected"] is True
        assert stream["subscriptions"] == subs and isinstance(stream["last_error"], str | None)
        assert isinstance(stream["reconnects"], int) and isinstance(stream["url"], str)
        assert isinstance(stream["seconds_since_last_message"], float | int)
    assert primary["streams"]["risk"] == {
        "state": "live",
        "mode": "rest",
        "connected": None,
        "reconnects": None,
        "seconds_since_last_message": None,
        "last_error": None,
        "subscriptions": {"primary:balances": "live", "primary:positions": "live"},
        "url": None,
    }
    for venue in (kraken, primary):
        assert venue["readiness"]["state"] == "ready" and venue["readiness"]["remedy"] == ""
    assert sorted(venues, key=lambda v: v["venue"]) == [
        {
            "venue": "kraken",
            "credentials": True,
            "streams": {"public": "live", "private": "live"},
            "simulated": False,  # configured by URL like any venue: not the bridge's own simulator
        },
        {
            "venue": "primary",
            "credentials": True,
            "streams": {"ws": "live", "risk": "live"},
            "simulated": False,
        },
    ]


async def test_instruments(stack: Stack) -> None:
    async with (
        asyncio.timeout(LIMIT),
        httpx.AsyncClient(base_url=stack.server.http_url, timeout=LIMIT) as http,
    ):
        primary = (await http.get("/api/instruments", params={"venue": "primary", "search": "GGAL"})).json()
        assert primary["source"] == "catalog" and primary["count"] > 0
        assert all(
            "GGAL" in i["symbol"] or "GGAL" in (i.get("underlying") or "") for i in primary["instruments"]
        )
        client = await connect(stack.server)
        await client.send(
            {"op": "subscribe", "id": 1, "venue": "kraken", "channel": "ticker", "symbol": "BTC/USD"}
        )
        await client.until(is_event("ticker"))
        kraken = (await http.get("/api/instruments", params={"venue": "kraken"})).json()
        assert kraken["instruments"] == [{"symbol": "BTC/USD"}]
        unknown = await http.get("/api/instruments", params={"venue": "binance"})
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_venue"
        await client.close()


async def test_balances_orders_fills(stack: Stack) -> None:
    async with (
        asyncio.timeout(LIMIT),
        httpx.AsyncClient(base_url=stack.server.http_url, timeout=LIMIT) as http,
    ):
        client = await connect(stack.server)
        await client.send({"op": "subscribe", "id": "b", "venue": "kraken", "channel": "balances"})
        await client.until(is_event("balance_snapshot"))
        bearer = {"Authorization": f"Bearer {ACCOUNT_KEY}"}
        http.headers.update(bearer)
        balances = (await http.get("/api/balances/kraken")).json()
        assert balances["venue"] == "kraken" and balances["balances"]
        first = balances["balances"][0]
        assert {"asset", "total", "hold", "stale", "updated_at"} <= set(first)
        assert isinstance(first["total"], str)
        assert (await http.get("/api/orders/kraken")).json() == {"venue": "kraken", "orders": []}
        assert (await http.get("/api/fills/kraken")).json() == {
            "venue": "kraken",
            "fills": [],
            "next": None,
            "resume": "0",
        }
        for path in ("/api/balances/nope", "/api/orders/nope", "/api/fills/nope"):
            assert (await http.get(path)).status_code == 404
        # Account answers are never kept by a browser or a proxy.
        for path in ("/api/balances/kraken", "/api/orders/kraken", "/api/fills/kraken"):
            assert (await http.get(path)).headers["cache-control"] == "no-store", path
        await client.close()


async def test_odd_parameters_are_refused_with_a_bounded_typed_400(stack: Stack) -> None:
    async with (
        asyncio.timeout(LIMIT),
        httpx.AsyncClient(base_url=stack.server.http_url, timeout=LIMIT) as http,
    ):
        cases = [
            ("/api/ticker/kraken", {"symbol": "S" * 20_000}),
            ("/api/ticker/kraken", {"symbol": "BTC/USD\n2026 CRITICAL forged"}),
            ("/api/book/kraken", {"symbol": "\x1b[31m"}),
            ("/api/ticker/" + "k" * 200, {"symbol": "BTC/USD"}),
            ("/api/instruments", {"venue": "primary", "search": "G" * 1000}),
        ]
        for path, params in cases:
            answer = await http.get(path, params=params)
            assert answer.status_code == 400, (path[:40], answer.text[:200])
            error = answer.json()["error"]
            assert error["code"] == "invalid_request" and len(answer.text) < 1000, answer.text[:200]


async def test_metrics_parse(stack: Stack) -> None:
    async with (
        asyncio.timeout(LIMIT),
        httpx.AsyncClient(base_url=stack.server.http_url, timeout=LIMIT) as http,
    ):
        client = await connect(stack.server)
        await client.send(
            {"op": "subscribe", "id": 1, "venue": "kraken", "channel": "ticker", "symbol": "BTC/USD"}
        )
        await client.until(is_event("ticker"))
        text = (await http.get("/metrics")).text
        families = {f.name: f for f in text_string_to_metric_families(text)}
        assert families["brokerbridge_ws_clients"].samples[0].value == 1
        assert families["brokerbridge_events_in"].samples[0].value > 0
        subscribes = [
            s for s in families["brokerbridge_ws_messages_in"].samples if s.labels.get("op") == "subscribe"
        ]
        assert subscribes and subscribes[0].value == 1
        assert "brokerbridge_reconnects" in families and "brokerbridge_ws_queue_depth" in families
        await client.close()


async def test_serve_prints_its_urls_and_exits_0_on_sigint(tmp_path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "brokerbridge.cli.main",
        "serve",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(LIMIT):
            while not any("WebSocket:" in line for line in lines):
                line = (await proc.stdout.readline()).decode()
                assert line, f"serve exited early: {lines} {(await proc.stderr.read()).decode()}"  # type: ignore[union-attr]
                lines.append(line)
        ws_url = next(line.split()[-1] for line in lines if "WebSocket:" in line)
        assert any("/docs" in line for line in lines)
        async with asyncio.timeout(LIMIT):
            async with websockets.connect(ws_url) as ws:
                await ws.send('{"op":"ping","id":1}')
                assert '"pong"' in str(await ws.recv())
                proc.send_signal(signal.SIGINT)
                try:
                    while True:
                        await ws.recv()
                except websockets.ConnectionClosed as closed:
                    assert closed.rcvd is not None and closed.rcvd.reason == "server shutting down"
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
