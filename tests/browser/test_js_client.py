"""The JavaScript client package in real Chromium, imported from the bridge at `/client/` by a page
of another origin (a third-party front end), and the dashboard loading the very same module.

The page lives on its own loopback port (another origin, listed in `[server] allowed_origins`);
it imports `http://127.0.0.1:<bridge>/client/index.js`, connects with `getToken` (an access token
`bbt.…` minted at `POST /api/tokens` by the test standing in for the page's own backend — no key in
the page), subscribes, calls the REST API cross-origin with that token (CORS), and reports its
events and states.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from browser_tab import Tab
from serve_process import Serve, start_serve

pytestmark = pytest.mark.slow

PACKAGE = Path(__file__).parents[2] / "src" / "brokerbridge" / "server" / "static" / "client"
VIEW_KEY = "browser-js-view-key-0123456"  # market + account: what the page's backend holds
PAGE = """<!doctype html><meta charset="utf-8"><title>third party</title>
<script type="module">
import { BridgeClient, NotAuthorized, VERSION } from "BRIDGE/client/index.js";
window.run = async () => {
  const states = [];
  const bridge = new BridgeClient({ url: "BRIDGE", getToken: () => window.mintToken() });
  bridge.on("state", ({ state }) => states.push(state));
  const events = [];
  const rest = await bridge.balances("kraken");  // fetch from another origin, Bearer bbt.…
  const sub = bridge.subscribe({ venue: "kraken", channel: "balances" });
  for await (const event of sub) {
    events.push(event.kind);
    if (event.kind === "balance_snapshot") break;
  }
  let refused = null;
  const anonymous = new BridgeClient({ url: "BRIDGE" });
  try {
    for await (const _ of anonymous.subscribe({ venue: "kraken", channel: "executions" })) break;
  } catch (error) {
    refused = { kind: error instanceof NotAuthorized, code: error.code };
  }
  anonymous.close();
  bridge.close();
  return { version: VERSION, states, events, closed: sub.closed, refused, rest: rest.length };
};
window.ready = true;
</script>"""


class _Page(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def third_party() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def serve(
    tmp_path_factory: pytest.TempPathFactory, third_party: http.server.ThreadingHTTPServer
) -> Iterator[Serve]:
    directory = tmp_path_factory.mktemp("serve")
    origin = f"http://127.0.0.1:{third_party.server_address[1]}"
    config = directory / "brokerbridge.toml"
    config.write_text(
        f'[primary]\ninstruments_cache_dir = "{directory / "cache"}"\n\n'
        f'[server]\nstate_dir = "{directory / "state"}"\nallowed_origins = ["{origin}"]\n\n'
        f'[server.keys.viewer]\nkey = "{VIEW_KEY}"\nscopes = ["market", "account"]\n',
        encoding="utf-8",
    )
    running = start_serve(config, venues=("kraken",))
    yield running
    running.stop()


def test_client_module_is_served_for_any_origin(serve: Serve) -> None:
    answer = httpx.get(f"{serve.base_url}/client/index.js", headers={"Origin": "http://elsewhere.example"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/javascript")
    assert answer.headers["access-control-allow-origin"] == "*"
    assert answer.text == (PACKAGE / "index.js").read_text(encoding="utf-8")
    manifest = httpx.get(f"{serve.base_url}/client/package.json").json()
    assert manifest["name"] == "brokerbridge-client"


def test_third_party_page_imports_the_client_and_streams(
    serve: Serve, third_party: http.server.ThreadingHTTPServer, open_tab: Callable[[], Tab]
) -> None:
    _Page.body = PAGE.replace("BRIDGE", serve.base_url).encode()

    def mint_token() -> str:
        # The page's own backend: it holds the key; the browser gets a short-lived read token.
        answer = httpx.post(
            f"{serve.base_url}/api/tokens",
            headers={"Authorization": f"Bearer {VIEW_KEY}"},
            json={"scopes": ["read"], "ttl_s": 120},
        )
        answer.raise_for_status()
        token: str = answer.json()["token"]
        assert token.startswith("bbt.")
        return token

    tab = open_tab()
    tab.page.expose_function("mintToken", mint_token)
    tab.page.goto(f"http://127.0.0.1:{third_party.server_address[1]}/")
    tab.page.wait_for_function("() => window.ready === true")
    result = tab.page.evaluate("() => window.run()")
    assert result["states"][:2] == ["connecting", "live"], result
    assert result["states"][-1] == "closed"
    assert result["events"][0] == "status" and result["events"][-1] == "balance_snapshot", result
    assert result["closed"] is True  # leaving the loop unsubscribed
    assert result["refused"] == {"kind": True, "code": "not_authorized"}
    assert result["rest"] > 0  # the simulated account's balances, read cross-origin
    assert result["version"] == json.loads((PACKAGE / "package.json").read_text(encoding="utf-8"))["version"]
    assert tab.errors == []


def test_dashboard_runs_on_the_same_client_module(serve: Serve, open_tab: Callable[[], Tab]) -> None:
    tab = open_tab()
    loaded: list[str] = []
    tab.page.on("request", lambda request: loaded.append(request.url))
    tab.page.goto(serve.fresh_login_url())
    tab.page.wait_for_selector('#conn[data-state="live"]')
    assert f"{serve.base_url}/client/index.js" in loaded
    assert f"{serve.base_url}/client/client.js" in loaded
    assert not any("/dashboard/js/bridge.js" in url for url in loaded)  # no second socket class
    assert tab.errors == []
