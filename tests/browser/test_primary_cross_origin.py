"""A browser front end on another origin using the bridge as its Primary broker, in real Chromium.

What the options tool's React front end does against Primary — `fetch` POST `auth/getToken` with
`X-Username`/`X-Password` (the token read from the `X-Auth-Token` response header), `fetch`
`rest/marketdata/get`, `rest/accounts` and `rest/order/all` with `X-Auth-Token` — then what it could
not do against Primary from a browser: Primary's own WebSocket with the token as `?token=`, `smd`
for BI/OF/LA at depth 2, `Md` back. The page is served by a small static server the test starts on
a free port, listed in `server.allowed_origins`; `serve` runs Primary on its embedded simulator.

Asserted on what the page received (the CORS-exposed token header, the answers' shapes, the `Md`
frames with exactly the entries and depth asked for), and on the venue: the browser's login never
reached it (the simulator counted only the bridge's own login). The same page served from an origin
that is NOT listed gets nothing: its `fetch` is blocked by CORS and its socket refused.
"""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from browser_tab import Tab
from serve_process import Serve, start_serve

from brokerbridge.core.passwords import hash_password

GGAL = "MERV - XMEV - GGAL - 24hs"
USER = "ana"  # a bridge-local user: what the person types into the options tool's login form
PASSWORD = "options-tool-password"  # scope read (market + account): no trading
DEPTH = 2
MD_WANTED = 3  # Md frames the page waits for
LIMIT_MS = 30_000

# The options tool's calls, as the page makes them. `window.result` collects what came back and
# `window.done` says the flow ended (with an `error` when a step threw: the browser's own words).
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>options tool (test)</title></head>
<body><pre id="log"></pre>
<script type="module">
const params = new URL(location.href).searchParams;
const bridge = params.get("bridge");
const primary = `${bridge}/primary`;
const symbol = params.get("symbol");
const depth = Number(params.get("depth"));
const wanted = Number(params.get("wanted"));
const result = { frames: [] };
window.result = result;
function finish(error) {
  if (error !== undefined) result.error = String(error);
  window.done = true;
}
if (bridge) try {
  const login = await fetch(`${primary}/auth/getToken`, {
    method: "POST",
    headers: { "X-Username": params.get("user"), "X-Password": params.get("password") },
  });
  result.loginStatus = login.status;
  const token = login.headers.get("X-Auth-Token");
  result.token = token;
  const auth = { headers: { "X-Auth-Token": token } };
  const q = new URLSearchParams({ marketId: "ROFX", symbol, entries: "BI,OF,LA", depth: String(depth) });
  const md = await fetch(`${primary}/rest/marketdata/get?${q}`, auth);
  result.marketDataStatus = md.status;
  result.marketData = await md.json();
  const accounts = await fetch(`${primary}/rest/accounts`, auth);
  result.accounts = await accounts.json();
  const account = result.accounts.accounts?.[0]?.name;
  const orders = await fetch(`${primary}/rest/order/all?accountId=${encodeURIComponent(account)}`, auth);
  result.orders = await orders.json();
  const ws = new WebSocket(`${primary.replace(/^http/, "ws")}/?token=${encodeURIComponent(token)}`);
  ws.onopen = () => {
    result.opened = true;
    ws.send(JSON.stringify({
      type: "smd", level: 1, entries: ["BI", "OF", "LA"], depth,
      products: [{ symbol, marketId: "ROFX" }],
    }));
  };
  ws.onmessage = (event) => {
    const frame = JSON.parse(event.data);
    result.frames.push(frame);
    if (result.frames.filter((f) => f.type === "Md").length >= wanted) {
      ws.close(1000);
      finish();
    }
  };
  ws.onclose = (event) => {
    result.closeCode = event.code;
    if (!window.done) finish(`socket closed (${event.code}) before ${wanted} Md`);
  };
} catch (error) {
  finish(error);
}
</script></body></html>
"""


class StaticSite:
    """The front end's own origin: one page, from a server on a free port."""

    def __init__(self) -> None:
        page = PAGE.encode()

        class Page(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/favicon.ico":  # asked by the browser: a 404 is a console error
                    self.send_response(204)
                    self.end_headers()
                    return
                if not self.path.startswith("/options.html"):
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def site() -> Iterator[StaticSite]:
    running = StaticSite()
    yield running
    running.close()


@pytest.fixture(scope="module")
def stranger() -> Iterator[StaticSite]:
    """The same page from an origin the bridge does not list."""
    running = StaticSite()
    yield running
    running.close()


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory, site: StaticSite) -> Iterator[Serve]:
    directory = tmp_path_factory.mktemp("serve")
    config = directory / "brokerbridge.toml"
    config.write_text(
        f'[primary]\ninstruments_cache_dir = "{directory / "cache"}"\n\n'
        f'[server]\nstate_dir = "{directory / "state"}"\nallowed_origins = ["{site.origin}"]\n\n'
        f'[server.users.{USER}]\npassword_hash = "{hash_password(PASSWORD)}"\nscopes = ["read"]\n',
        encoding="utf-8",
    )
    running = start_serve(config, port=_free_port(), venues=("primary",))
    yield running
    running.stop()


def run_page(tab: Tab, site: StaticSite, serve: Serve) -> dict[str, Any]:
    query = httpx.QueryParams(
        bridge=serve.base_url, user=USER, password=PASSWORD, symbol=GGAL, depth=DEPTH, wanted=MD_WANTED
    )
    tab.page.goto(f"{site.origin}/options.html?{query}")
    tab.page.wait_for_function("() => window.done === true", timeout=LIMIT_MS)
    result: dict[str, Any] = tab.page.evaluate("window.result")
    return result


def venue_stats(serve: Serve) -> dict[str, Any]:
    answer = httpx.get(f"{serve.sim_urls['primary']}/_sim/stats", timeout=10)
    answer.raise_for_status()
    stats: dict[str, Any] = answer.json()
    return stats


def test_a_front_end_of_another_origin_logs_in_reads_market_data_and_streams_md(
    serve: Serve, site: StaticSite, open_tab: Callable[[], Tab]
) -> None:
    tab = open_tab()
    result = run_page(tab, site, serve)
    tab.shot("primary-cross-origin")
    assert "error" not in result, result
    # getToken: 200 and the token readable by the page (CORS exposes X-Auth-Token): a bridge token.
    assert result["loginStatus"] == 200
    assert isinstance(result["token"], str) and result["token"].startswith("bbt."), result["token"]
    # marketdata/get: Primary's shape, exactly the entries asked for, at most `DEPTH` levels a side.
    md = result["marketData"]
    assert result["marketDataStatus"] == 200 and md["status"] == "OK", md
    assert set(md["marketData"]) == {"BI", "OF", "LA"}, md
    for side in ("BI", "OF"):
        assert len(md["marketData"][side] or []) <= DEPTH
    assert result["accounts"]["status"] == "OK" and result["accounts"]["accounts"], result["accounts"]
    assert result["orders"]["status"] == "OK", result["orders"]
    # The WebSocket: opened with ?token=, Md frames of the product with exactly BI/OF/LA.
    assert result.get("opened") is True
    frames = result["frames"]
    mds = [f for f in frames if f.get("type") == "Md"]
    assert len(mds) >= MD_WANTED, frames
    assert not [f for f in frames if f.get("type") != "Md"], frames  # no error frame
    for frame in mds:
        assert frame["instrumentId"] == {"marketId": "ROFX", "symbol": GGAL}, frame
        assert set(frame["marketData"]) == {"BI", "OF", "LA"}, frame
        for side in ("BI", "OF"):
            assert len(frame["marketData"][side] or []) <= DEPTH, frame
    assert not tab.errors, tab.errors
    # The venue saw the bridge's one login, not the browser's.
    stats = venue_stats(serve)
    assert stats["logins"] == 1 and stats["invalidations"] == 0, stats


def test_the_same_front_end_on_an_origin_not_listed_gets_nothing(
    serve: Serve, stranger: StaticSite, open_tab: Callable[[], Tab]
) -> None:
    tab = open_tab()
    result = run_page(tab, stranger, serve)
    # The browser blocks the answer to getToken (no Access-Control-Allow-Origin for this origin):
    # fetch rejects with a TypeError before the page sees a status or a token.
    assert "error" in result and "TypeError" in result["error"], result
    assert "loginStatus" not in result and "token" not in result, result
    assert venue_stats(serve)["logins"] == 1


def test_a_socket_from_an_origin_not_listed_is_refused(
    serve: Serve, stranger: StaticSite, open_tab: Callable[[], Tab]
) -> None:
    """Even with a valid token (got by a program, not the page), the handshake of a page whose
    Origin is not listed is refused: the page sees the socket close without opening."""
    answer = httpx.post(
        f"{serve.base_url}/primary/auth/getToken",
        headers={"X-Username": USER, "X-Password": PASSWORD},
        timeout=10,
    )
    assert answer.status_code == 200
    token = answer.headers["X-Auth-Token"]
    tab = open_tab()
    tab.page.goto(f"{stranger.origin}/options.html")  # without ?bridge= the page does nothing itself
    script = """([url]) => new Promise((resolve) => {
        const ws = new WebSocket(url);
        ws.onopen = () => resolve({ opened: true });
        ws.onclose = (event) => resolve({ opened: false, code: event.code });
    })"""
    ws_url = serve.base_url.replace("http", "ws", 1) + f"/primary/?token={token}"
    outcome = tab.page.evaluate(script, [ws_url])
    assert outcome == {"opened": False, "code": 1006}, outcome
