"""`create_app(bridge)`: the FastAPI app — `/ws`, `/api/*`, `/metrics`, a status page at `/`.

The app does not own the Bridge (its caller does: `serve`, tests); everything per-app (client
registry, metrics registry, codec) lives on `app.state`, nothing at module level.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import HTMLResponse, Response

from brokerbridge.bridge import Bridge
from brokerbridge.server.metrics import CONTENT_TYPE, ServerMetrics
from brokerbridge.server.protocol import Codec
from brokerbridge.server.rest import make_router
from brokerbridge.server.ws import ClientConnection, ClientRegistry, WsSettings


@dataclass(frozen=True)
class ServerSettings:
    ws: WsSettings = field(default_factory=WsSettings)


@dataclass
class ServerState:
    bridge: Bridge
    settings: ServerSettings
    clients: ClientRegistry
    metrics: ServerMetrics
    codec: Codec


def create_app(bridge: Bridge, settings: ServerSettings | None = None) -> FastAPI:
    settings = settings or ServerSettings()
    app = FastAPI(
        title="brokerbridge",
        summary="One authenticated upstream per venue, many clients: WebSocket /ws, REST /api, /metrics.",
        version="0.1.0",
    )
    clients = ClientRegistry()
    state = ServerState(bridge, settings, clients, ServerMetrics(bridge, clients.stats), Codec())
    app.state.bridge = bridge
    app.state.server = state
    app.include_router(make_router())

    @app.websocket("/ws")
    async def websocket(ws: WebSocket) -> None:
        await ws.accept()
        client = ClientConnection(ws, bridge, state.metrics, state.codec, settings.ws)
        clients.add(client)
        try:
            await client.run()
        finally:
            clients.discard(client)

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        return Response(state.metrics.exposition(), media_type=CONTENT_TYPE)

    @app.get("/", include_in_schema=False)
    async def status_page() -> HTMLResponse:
        return HTMLResponse(STATUS_PAGE)

    return app


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
