"""`create_app(bridge)`: the FastAPI app — `/ws`, `/api/*`, `/metrics`, a status page at `/`.

The app does not own the Bridge (its caller does: `serve`, tests); everything per-app (client
registry, metrics registry, codec) lives on `app.state`, nothing at module level.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import HTMLResponse, JSONResponse, Response

from brokerbridge.bridge import Bridge
from brokerbridge.core.config import ServerConfig
from brokerbridge.server.auth import Authenticator, presented_key
from brokerbridge.server.metrics import CONTENT_TYPE, ServerMetrics
from brokerbridge.server.protocol import Codec
from brokerbridge.server.rest import make_router, refusal
from brokerbridge.server.ws import ClientConnection, ClientRegistry, WsSettings


@dataclass(frozen=True)
class ServerSettings:
    """What the app needs: the `[server]` config and the WebSocket tunables derived from it.
    `open_market_data` None means: open when bound to loopback (BridgeServer resolves it)."""

    config: ServerConfig = field(default_factory=ServerConfig)
    ws: WsSettings = field(default_factory=WsSettings)

    @classmethod
    def from_config(cls, config: ServerConfig) -> ServerSettings:
        return cls(
            config=config,
            ws=WsSettings(
                heartbeat_interval=config.heartbeat_interval,
                client_queue_size=config.client_queue_size,
                messages_per_second=config.messages_per_second,
                message_burst=config.message_burst,
                max_subscriptions=config.max_subscriptions,
                max_connections_per_key=config.max_connections_per_key,
            ),
        )


@dataclass
class ServerState:
    bridge: Bridge
    settings: ServerSettings
    clients: ClientRegistry
    metrics: ServerMetrics
    codec: Codec
    auth: Authenticator


def create_app(bridge: Bridge, settings: ServerSettings | None = None, *, loopback: bool = False) -> FastAPI:
    """`loopback`: the server binds to a loopback address (market data is then open by default)."""
    settings = settings or ServerSettings()
    open_market = settings.config.open_market_data
    auth = Authenticator(settings.config, open_market_data=loopback if open_market is None else open_market)
    app = FastAPI(
        title="brokerbridge",
        summary="One authenticated upstream per venue, many clients: WebSocket /ws, REST /api, /metrics.",
        version="0.1.0",
    )
    clients = ClientRegistry()
    state = ServerState(bridge, settings, clients, ServerMetrics(bridge, clients.stats), Codec(), auth)
    app.state.bridge = bridge
    app.state.server = state
    app.include_router(make_router())

    @app.websocket("/ws")
    async def websocket(ws: WebSocket) -> None:
        # Refusals are HTTP answers to the handshake with a typed JSON body (status + reason).
        if not auth.origin_allowed(ws.headers.get("origin"), ws.headers.get("host")):
            await ws.send_denial_response(
                _denial(
                    403,
                    "not_authorized",
                    "Origin not allowed",
                    "connect from the same origin, or add it to server.allowed_origins",
                )
            )
            return
        key = None
        presented = presented_key(ws.headers, ws.query_params)
        if presented is not None:
            key = auth.lookup(presented)
            if key is None:
                await ws.send_denial_response(_denial(401, "not_authorized", "invalid API key"))
                return
            limit = settings.ws.max_connections_per_key
            if clients.connections_of(key.name) >= limit:
                await ws.send_denial_response(
                    _denial(
                        429,
                        "rate_limited",
                        f"too many connections for key {key.name!r} (limit {limit})",
                        "close another connection using this key (server.max_connections_per_key)",
                    )
                )
                return
        await ws.accept()
        client = ClientConnection(
            ws, bridge, state.metrics, state.codec, settings.ws, auth, auth.principal_of(key), clients
        )
        clients.add(client)
        try:
            await client.run()
        finally:
            clients.discard(client)

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        if (refused := refusal(request, "market")) is not None:
            return refused
        return Response(state.metrics.exposition(), media_type=CONTENT_TYPE)

    @app.get("/", include_in_schema=False)
    async def status_page() -> HTMLResponse:
        return HTMLResponse(STATUS_PAGE)

    return app


def _denial(status: int, code: str, message: str, remedy: str = "") -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "remedy": remedy}}, status_code=status)


# A placeholder until the dashboard (issue 5): same origin, no external assets, reads /api/health.
STATUS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>brokerbridge</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}td,th{padding:.2em .8em;text-align:left}
.live{color:#080}.reconnecting,.polling,.resyncing,.stale{color:#b60}</style></head>
<body><h1>brokerbridge</h1>
<p>WebSocket <code>/ws</code> · <a href="/docs">API docs</a> · <a href="/api/health">/api/health</a>
· <a href="/metrics">/metrics</a></p>
<table><thead><tr><th>venue</th><th>stream</th><th>state</th><th>mode</th><th>reconnects</th>
<th>last message (s ago)</th></tr></thead><tbody id="rows"></tbody></table>
<script>
async function refresh() {
  const body = await (await fetch("/api/health")).json();
  const rows = [];
  for (const [venue, h] of Object.entries(body.venues)) {
    for (const [name, s] of Object.entries(h.streams || {})) {
      if (!s || s.state === undefined) continue;
      const cells = [venue, name, s.state, s.mode ?? "", s.reconnects ?? "",
                     s.seconds_since_last_message ?? ""];
      const tr = document.createElement("tr");
      cells.forEach((text, i) => {
        const td = document.createElement("td");
        td.textContent = String(text);
        if (i === 2) td.className = String(text);
        tr.appendChild(td);
      });
      rows.push(tr);
    }
  }
  document.getElementById("rows").replaceChildren(...rows);
}
refresh(); setInterval(refresh, 2000);
</script></body></html>
"""
