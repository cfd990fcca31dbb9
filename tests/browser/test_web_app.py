"""A web app on another origin signs in to the bridge and uses it, in real Chromium.

A tiny static server (another port: another origin) serves the app's one page. Its script runs the
sign-in flow as a third-party front end would: PKCE verifier and challenge (WebCrypto), the browser
sent to the bridge's `/authorize`, the user signs in there with an API key and allows, the page
gets the code back, exchanges it with `fetch('…/api/tokens')` cross-origin for an access token,
calls `fetch('…/api/balances/kraken')` with `Authorization: Bearer` (a preflighted request) and
opens `/ws?token=…` for a balances subscription. `serve` lists the app's origin in
`server.allowed_origins`; the key never reaches the app's page.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_tab import Tab
from serve_process import ACCOUNT_KEY, Serve, start_serve, write_config

APP_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Opciones (test app)</title></head>
<body><pre id="out">…</pre>
<script type="module">
const BRIDGE = "BRIDGE_URL";
const done = (result) => {
  window.result = result;
  document.getElementById('out').textContent = JSON.stringify(result);
};
const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
  .replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
const redirectUri = location.origin + '/callback';

async function signIn() {
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
  const challenge = b64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  const state = b64url(crypto.getRandomValues(new Uint8Array(16)));
  sessionStorage.setItem('signin', JSON.stringify({verifier, state}));
  const query = new URLSearchParams({
    response_type: 'code', client_id: 'Opciones', redirect_uri: redirectUri, scope: 'read',
    state, code_challenge: challenge, code_challenge_method: 'S256',
  });
  location.assign(`${BRIDGE}/authorize?${query}`);
}

async function callback() {
  const back = new URLSearchParams(location.search);
  const {verifier, state} = JSON.parse(sessionStorage.getItem('signin'));
  if (back.get('state') !== state) return done({error: 'state mismatch'});
  const exchange = await fetch(`${BRIDGE}/api/tokens`, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'authorization_code', code: back.get('code'), redirect_uri: redirectUri,
      code_verifier: verifier, client_id: 'Opciones',
    }),
  });
  const token = await exchange.json();
  const rest = await fetch(`${BRIDGE}/api/balances/kraken`, {
    headers: {Authorization: `Bearer ${token.access_token}`},
  });
  const balances = await rest.json();
  const socketUrl = `${BRIDGE.replace('http', 'ws')}/ws?token=${encodeURIComponent(token.access_token)}`;
  const ws = new WebSocket(socketUrl);
  const first = await new Promise((resolve, reject) => {
    const subscribe = {op: 'subscribe', id: 'b', venue: 'kraken', channel: 'balances'};
    ws.onopen = () => ws.send(JSON.stringify(subscribe));
    ws.onmessage = (message) => {
      const m = JSON.parse(message.data);
      if (m.type === 'error' || (m.type === 'event' && m.event.kind === 'balance_snapshot')) resolve(m);
    };
    ws.onclose = (event) => reject(new Error(`socket closed ${event.code}`));
  });
  ws.close();
  done({
    exchange: exchange.status, scopes: token.scopes, token_type: token.token_type,
    rest: rest.status, assets: (balances.balances || []).length,
    ws: first.type === 'event' ? first.event.kind : first.code,
  });
}

(location.pathname === '/callback' ? callback() : signIn()).catch((e) => done({error: String(e)}));
</script></body></html>
"""


@dataclass
class WebApp:
    origin: str
    served: list[str]


@pytest.fixture(scope="module")
def web_app() -> Iterator[tuple[http.server.ThreadingHTTPServer, WebApp]]:
    """The app's static server (its page filled in once `serve`'s address is known)."""
    page: dict[str, bytes] = {}
    served: list[str] = []

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.append(self.path)
            if self.path.startswith("/favicon"):
                self.send_response(204)
                self.end_headers()
                return
            body = page["text"]
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    server.page = page  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, WebApp(f"http://127.0.0.1:{server.server_address[1]}", served)
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def listed_serve(
    tmp_path_factory: pytest.TempPathFactory, web_app: tuple[http.server.ThreadingHTTPServer, WebApp]
) -> Iterator[Serve]:
    """`serve` on the simulators with the app's origin in `server.allowed_origins`."""
    server, app = web_app
    config: Path = write_config(tmp_path_factory.mktemp("serve"))
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("[server]\n", f'[server]\nallowed_origins = ["{app.origin}"]\n', 1))
    running = start_serve(config)
    server.page["text"] = (  # type: ignore[attr-defined]
        APP_PAGE.replace("BRIDGE_URL", running.base_url).encode()
    )
    deadline = time.monotonic() + 60
    while httpx.get(f"{running.base_url}/api/ready", timeout=10).status_code != 200:
        assert time.monotonic() < deadline, "the accounts did not load"
        time.sleep(0.2)
    yield running
    running.stop()


def test_a_web_app_on_another_origin_signs_in_and_uses_the_bridge(
    listed_serve: Serve, web_app: tuple[http.server.ThreadingHTTPServer, WebApp], open_tab: Callable[[], Tab]
) -> None:
    _, app = web_app
    tab = open_tab()
    tab.page.goto(f"{app.origin}/")
    # The bridge's page: not signed in in this browser, so the key form (the app never sees it).
    tab.page.wait_for_selector('form[action="/authorize/sign-in"]')
    assert tab.page.url.startswith(f"{listed_serve.base_url}/authorize?")
    tab.page.fill('input[name="key"]', ACCOUNT_KEY)
    tab.page.click('form[action="/authorize/sign-in"] button[type="submit"]')
    tab.page.wait_for_selector('button[value="allow"]')
    assert "Opciones" in tab.page.inner_text("body") and app.origin in tab.page.inner_text("body")
    tab.shot("web-app-consent")
    tab.page.click('button[value="allow"]')
    tab.page.wait_for_function("() => window.result !== undefined", timeout=30_000)
    result = tab.page.evaluate("window.result")
    assert tab.page.url.startswith(f"{app.origin}/callback?")
    assert result == {
        "exchange": 200,
        "scopes": ["account", "market"],
        "token_type": "Bearer",
        "rest": 200,
        "assets": result["assets"],
        "ws": "balance_snapshot",
    }, result
    assert result["assets"] > 0
    assert any(path.startswith("/callback?code=") for path in app.served)
    assert tab.errors == []
