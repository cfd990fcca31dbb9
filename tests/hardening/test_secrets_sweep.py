"""Run everything with known, distinctive secrets and look for them everywhere they must not be.

The simulators run in this process (so every venue token they issue can be listed afterwards);
`brokerbridge serve --log-level DEBUG` and `brokerbridge doctor` run as a user runs them. Clients
subscribe (account channels too), call every REST endpoint, make mistakes (wrong keys, unknown
venues, malformed frames), sign in, take a /ws token and use it, scrape /metrics. Then no secret —
Kraken API secret, Primary password, client keys, venue tokens, /ws tokens — may appear in the
logs (stderr), stdout, any response body or header, /metrics, or any file under the state dir
(journal included).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from brokerbridge.bridge import Bridge
from brokerbridge.core.config import Config, load_config
from brokerbridge.server import BridgeServer, ServerSettings
from brokerbridge.sim.kraken import KrakenSimulator
from brokerbridge.sim.primary import PrimarySimulator
from tests.fuzz.server_rig import threaded
from tests.hardening.cli_rig import CLIENT_KEY, PRIMARY_PASSWORD, leaks, process, run, toml_string

pytestmark = pytest.mark.timeout(300)

MARKET_KEY = "MARKET-CLIENT-KEY-3d7b2f-LEAKCHECK"
WRONG_KEY = "WRONG-CLIENT-KEY-9a4c6e-LEAKCHECK"  # a typo of a key is as secret as the key


@dataclass
class Sims:
    kraken: KrakenSimulator
    primary: PrimarySimulator


@contextlib.asynccontextmanager
async def simulators() -> AsyncIterator[Sims]:
    async with (
        KrakenSimulator(host="127.0.0.1", port=0, seed=11) as kraken,
        PrimarySimulator(host="127.0.0.1", port=0, seed=11, password=PRIMARY_PASSWORD) as primary,
    ):
        yield Sims(kraken, primary)


def _config(tmp_path: Path, sims: Sims, kraken_key: str, kraken_secret: str) -> Path:
    ke, pe = sims.kraken.endpoints, sims.primary.endpoints
    state = tmp_path / "state"
    config = tmp_path / "brokerbridge.toml"
    config.write_text(
        f"""
journal_path = {toml_string(str(state / "journal.sqlite3"))}

[kraken]
rest_url = {toml_string(ke.rest)}
ws_url = {toml_string(ke.ws_public)}
ws_auth_url = {toml_string(ke.ws_private)}
api_key = {toml_string(kraken_key)}
api_secret = {toml_string(kraken_secret)}

[primary]
environment = {toml_string(pe.rest)}
rest_url = {toml_string(pe.rest)}
ws_url = {toml_string(pe.ws)}
user = {toml_string(pe.user)}
password = {toml_string(PRIMARY_PASSWORD)}
account = {toml_string(pe.account)}
market_hours = "always"
instruments_cache_dir = {toml_string(str(state / "instruments"))}

[server]
state_dir = {toml_string(str(state))}

[server.keys.bot]
key = {toml_string(CLIENT_KEY)}
scopes = ["market", "account"]

[server.keys.viewer]
key = {toml_string(MARKET_KEY)}
scopes = ["market"]
"""
    )
    return config


def _ws_session(ws_url: str, seen: list[str]) -> None:
    """Account and market streams, requests with mistakes, an auth message with a wrong key."""
    with connect(ws_url, additional_headers={"Authorization": f"Bearer {CLIENT_KEY}"}, open_timeout=30) as ws:
        requests = [
            {"op": "subscribe", "id": "kb", "venue": "kraken", "channel": "balances"},
            {"op": "subscribe", "id": "ke", "venue": "kraken", "channel": "executions"},
            {"op": "subscribe", "id": "kt", "venue": "kraken", "channel": "ticker", "symbol": "BTC/USD"},
            {"op": "subscribe", "id": "pe", "venue": "primary", "channel": "executions"},
            {"op": "subscribe", "id": "pb", "venue": "primary", "channel": "balances"},
            {"op": "subscribe", "id": "x", "venue": "nowhere", "channel": "ticker", "symbol": "A"},
            {"op": "auth", "id": "wrong", "key": WRONG_KEY},
            {"op": "auth", "id": "right", "key": CLIENT_KEY},
        ]
        for request in requests:
            ws.send(json.dumps(request))
        ws.send("not json " + WRONG_KEY)
        acks = errors = 0
        events = set()
        while not (acks >= 5 and errors >= 3 and {"kb", "pe"} <= events):
            raw = ws.recv(timeout=30)
            seen.append(str(raw))
            message = json.loads(raw)
            acks += message["type"] == "ack"
            errors += message["type"] == "error"
            if message["type"] == "event":
                events.add(message["id"])


def _rest_session(http_url: str, ws_url: str, seen: list[str]) -> list[str]:
    """Every endpoint with and without keys, mistakes included; returns the /ws tokens handed out."""
    tokens = []
    with httpx.Client(base_url=http_url, timeout=30) as http:
        bearer = {"Authorization": f"Bearer {CLIENT_KEY}"}
        calls = [
            ("GET", "/api/venues", {}),
            ("GET", "/api/health", bearer),
            ("GET", "/api/instruments?venue=primary&search=GGAL", bearer),
            ("GET", "/api/ticker/kraken?symbol=BTC/USD", bearer),
            ("GET", "/api/book/kraken?symbol=BTC/USD", bearer),
            ("GET", "/api/balances/kraken", bearer),
            ("GET", "/api/balances/primary", bearer),
            ("GET", "/api/orders/kraken", bearer),
            ("GET", "/api/fills/primary", bearer),
            ("GET", "/api/balances/nowhere", bearer),
            ("GET", "/api/balances/kraken", {"Authorization": f"Bearer {WRONG_KEY}"}),
            ("GET", f"/api/fills/kraken?key={WRONG_KEY}", {}),
            ("GET", f"/api/fills/kraken?key={MARKET_KEY}", {}),
            ("GET", "/metrics", bearer),
            ("GET", "/openapi.json", {}),
            ("GET", "/api/session", bearer),
        ]
        for method, path, headers in calls:
            response = http.request(method, path, headers=headers)
            assert response.status_code < 500, (path, response.status_code, response.text)
            seen.extend([response.text, json.dumps(dict(response.headers))])
        refused = http.post("/api/session", json={"key": WRONG_KEY})
        seen.extend([refused.text, json.dumps(dict(refused.headers))])
        signed_in = http.post("/api/session", json={"key": CLIENT_KEY})
        assert signed_in.status_code == 200, signed_in.text
        seen.append(signed_in.text)  # its Set-Cookie header is the session itself, by design
        token = http.post("/api/token", headers=bearer)
        assert token.status_code == 200, token.text
        tokens.append(token.json()["token"])
    with connect(f"{ws_url}?token={tokens[0]}", open_timeout=30) as ws:
        ws.send(json.dumps({"op": "ping", "id": "t"}))
        seen.append(str(ws.recv(timeout=30)))
    with connect(f"{ws_url}?key={CLIENT_KEY}", open_timeout=30) as ws:
        ws.send(json.dumps({"op": "ping", "id": "k"}))
        seen.append(str(ws.recv(timeout=30)))
    return tokens


def _secrets(kraken_secret: str, sims: Sims, ws_tokens: list[str]) -> tuple[str, ...]:
    kraken_tokens = list(sims.kraken.exchange.tokens._tokens)
    primary_tokens = list(sims.primary.exchange.tokens._tokens)
    assert kraken_tokens and primary_tokens, "the bridge never took a venue token: nothing was exercised"
    return (
        kraken_secret,
        base64.b64decode(kraken_secret).hex(),
        PRIMARY_PASSWORD,
        CLIENT_KEY,
        MARKET_KEY,
        WRONG_KEY,
        *kraken_tokens,
        *primary_tokens,
        *ws_tokens,
    )


def _assert_nothing_leaked(places: dict[str, str], secrets: tuple[str, ...]) -> None:
    found = {place: leaked for place, text in places.items() if (leaked := leaks(text, secrets))}
    assert not found, found


def test_no_secret_appears_in_logs_answers_metrics_or_files(tmp_path: Path) -> None:
    with threaded(simulators) as sims:
        kraken_key, kraken_secret = sims.kraken.create_key()
        config = _config(tmp_path, sims, kraken_key, kraken_secret)
        seen: list[str] = []
        serve_args = ("serve", "--port", "0", "--config", str(config), "--log-level", "DEBUG")
        with process(*serve_args, cwd=tmp_path) as serve:
            ws_url = ""
            while not ws_url:
                name, _, rest = serve.read_line().partition(":")
                if name.strip() == "WebSocket":
                    ws_url = rest.split()[0]
            http_url = ws_url.removesuffix("/ws").replace("ws://", "http://", 1)
            _ws_session(ws_url, seen)
            ws_tokens = _rest_session(http_url, ws_url, seen)
            status, out, err = serve.stop()
        doctor = run("doctor", "--config", str(config), "--log-level", "DEBUG", cwd=tmp_path)
        secrets = _secrets(kraken_secret, sims, ws_tokens)

    assert status == 0, err
    assert "DEBUG" in err, "serve did not log at DEBUG"
    files = {
        str(path.relative_to(tmp_path)): path.read_bytes().decode("latin-1")
        for path in (tmp_path / "state").rglob("*")
        if path.is_file()
    }
    assert any("journal" in name for name in files), f"no journal under the state dir: {sorted(files)}"
    places = {
        "serve stderr (logs)": err,
        "serve stdout": out,
        "doctor output": doctor.stdout + doctor.stderr,
        "answers (WS, REST, /metrics)": "\n".join(seen),
        **{f"file {name}": text for name, text in files.items()},
    }
    _assert_nothing_leaked(places, secrets)


@contextlib.asynccontextmanager
async def _server(config: Config) -> AsyncIterator[BridgeServer]:
    async with (
        Bridge(config, grace_s=0.0) as bridge,
        BridgeServer(
            bridge, host="127.0.0.1", port=0, settings=ServerSettings.from_config(config.server)
        ) as server,
    ):
        yield server


SERVER_THREAD = "bridge-server"


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.threadName != SERVER_THREAD:
            return  # this test's own clients log what they send, keys included: not the server's doing
        self.lines.append(f"{record.name} {record.getMessage()} {record.exc_text or ''}")


def test_no_secret_in_debug_logs_of_every_library(tmp_path: Path) -> None:
    """The CLI quiets websockets/httpx/uvicorn even at DEBUG; an embedding app may not. In process,
    with every logger at DEBUG (frames, requests, handshakes), the same secrets stay out."""
    capture = _Capture()
    root = logging.getLogger()
    noisy = [
        logging.getLogger(name) for name in ("websockets", "httpx", "httpcore", "uvicorn", "uvicorn.error")
    ]
    levels = [(logger, logger.level) for logger in (root, *noisy)]
    root.addHandler(capture)
    for logger, _ in levels:
        logger.setLevel(logging.DEBUG)
    try:
        with threaded(simulators) as sims:
            kraken_key, kraken_secret = sims.kraken.create_key()
            config = load_config(_config(tmp_path, sims, kraken_key, kraken_secret))
            seen: list[str] = []
            with threaded(lambda: _server(config), name=SERVER_THREAD) as server:
                _ws_session(server.ws_url, seen)
                ws_tokens = _rest_session(server.http_url, server.ws_url, seen)
            secrets = _secrets(kraken_secret, sims, ws_tokens)
    finally:
        root.removeHandler(capture)
        for logger, level in levels:
            logger.setLevel(level)
    frames = [line for line in capture.lines if line.startswith("websockets")]
    assert frames, "no websockets DEBUG record was captured: the sweep saw no frames"
    # httpcore logs every response header at DEBUG (Primary's login answer carries X-Auth-Token):
    # io/http.py masks them on httpcore's loggers, so every line is checked, theirs included.
    assert any(line.startswith("httpcore") for line in capture.lines), "httpcore logged nothing"
    _assert_nothing_leaked({"DEBUG logs": "\n".join(capture.lines), "answers": "\n".join(seen)}, secrets)
