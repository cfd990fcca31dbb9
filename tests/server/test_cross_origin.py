"""Cross-origin access (server/cors.py, the /ws gate): `server.allowed_origins` governs `/api`,
`/primary` and `/ws`; a listed origin gets CORS with credentials (its own origin echoed, never
`*`), any other none — its preflight refused with the typed error body, and one WARNING line per
origin and minute naming it and the setting to change. The login cookie is not honoured from
another origin, listed or not.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import httpx
import pytest
import websockets

from brokerbridge.bridge import Bridge
from brokerbridge.core.clock import FakeClock
from brokerbridge.core.config import Config, ServerConfig, load_config
from brokerbridge.core.errors import ConfigError
from brokerbridge.server import BridgeServer, ServerSettings
from brokerbridge.server.logins import COOKIE
from tests.server.conftest import LIMIT
from tests.server.web_app_rig import APP, BRIDGE, EVIL, KEYS, READ_KEY, bearer, web_rig

PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, x-csrf-token, x-auth-token",
}


def cors_headers(answer: httpx.Response) -> dict[str, str]:
    return {k.lower(): v for k, v in answer.headers.items() if k.lower().startswith("access-control-")}


def vary(answer: httpx.Response) -> set[str]:
    return {part.strip().lower() for part in answer.headers.get("vary", "").split(",")}


def refusals(caplog: pytest.LogCaptureFixture, origin: str) -> list[logging.LogRecord]:
    """WARNING records naming `origin` (one per refusal told)."""
    return [r for r in caplog.records if r.levelno == logging.WARNING and origin in r.getMessage()]


async def test_a_listed_origin_gets_cors_with_credentials(tmp_path: Path) -> None:
    async with web_rig(tmp_path) as rig:
        for path in ("/api/orders", "/primary/rest/marketdata/get"):
            answer = await rig.http.options(path, headers={"Origin": APP, **PREFLIGHT})
            assert answer.status_code == 200, answer.text
            cors = cors_headers(answer)
            assert cors["access-control-allow-origin"] == APP
            assert cors["access-control-allow-credentials"] == "true"
            assert {"GET", "POST", "PATCH", "DELETE"} <= set(cors["access-control-allow-methods"].split(", "))
            allowed = {h.lower() for h in cors["access-control-allow-headers"].split(", ")}
            wanted = {
                "authorization",
                "content-type",
                "x-csrf-token",
                "x-auth-token",
                "x-username",
                "x-password",
            }
            assert wanted <= allowed
            assert int(cors["access-control-max-age"]) > 0
            assert "origin" in vary(answer)
        answer = await rig.http.get("/api/session", headers={"Origin": APP, **bearer(READ_KEY)})
        assert answer.status_code == 200 and answer.json()["scopes"] == ["account", "market"]
        cors = cors_headers(answer)
        assert cors["access-control-allow-origin"] == APP
        assert cors["access-control-allow-credentials"] == "true"
        exposed = {h.strip().lower() for h in cors["access-control-expose-headers"].split(",")}
        assert {"x-auth-token", "retry-after"} <= exposed
        assert "origin" in vary(answer)
        # A preflight asking for what is not allowed: the typed body says what, still readable.
        put = await rig.http.options(
            "/api/orders", headers={"Origin": APP, "Access-Control-Request-Method": "PUT"}
        )
        assert put.status_code == 400
        assert put.json()["error"]["code"] == "invalid_request" and "'PUT'" in put.json()["error"]["message"]
        assert cors_headers(put)["access-control-allow-origin"] == APP
        # Routes outside /api and /primary are not cross-origin resources.
        login = await rig.http.get("/login", headers={"Origin": APP})
        assert cors_headers(login) == {}


async def test_other_origins_get_no_cors_and_their_preflight_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with web_rig(tmp_path) as rig:
        preflight = await rig.http.options("/api/orders", headers={"Origin": EVIL, **PREFLIGHT})
        assert preflight.status_code == 403 and cors_headers(preflight) == {}
        error = preflight.json()["error"]
        assert error["code"] == "not_authorized" and "server.allowed_origins" in error["remedy"]
        simple = await rig.http.get("/api/session", headers={"Origin": EVIL, **bearer(READ_KEY)})
        assert simple.status_code == 200 and cors_headers(simple) == {}  # served, unreadable to the page
        assert "origin" in vary(simple)
        # Its own pages (Origin = Host) are not cross-origin: no CORS headers, nothing logged.
        own = await rig.http.get("/api/session", headers={"Origin": BRIDGE, **bearer(READ_KEY)})
        assert own.status_code == 200 and cors_headers(own) == {}
        # The preflight and the request: one line each; more within the minute are counted.
        assert len(refusals(caplog, EVIL)) == 2
        for _ in range(3):
            await rig.http.get("/api/venues", headers={"Origin": EVIL})
        assert len(refusals(caplog, EVIL)) == 2
        await rig.clock.advance(60)
        await rig.http.get("/api/venues", headers={"Origin": EVIL})
        assert len(refusals(caplog, EVIL)) == 3
        assert not refusals(caplog, BRIDGE) and not refusals(caplog, APP)


async def test_the_login_cookie_is_a_same_origin_credential(tmp_path: Path) -> None:
    async with web_rig(tmp_path) as rig:
        cookie, csrf = await rig.sign_in(READ_KEY)
        with_cookie = {"Cookie": f"{COOKIE}={cookie}", "X-CSRF-Token": csrf}
        assert (await rig.who({"Origin": BRIDGE, **with_cookie}))["authenticated"] is True
        # From a listed origin the cookie does not count: the page reads nothing of the session
        # (no CSRF token either) and mints nothing with it.
        listed = await rig.who({"Origin": APP, **with_cookie})
        assert listed["authenticated"] is False and listed["csrf_token"] is None
        minted = await rig.http.post("/api/tokens", json={}, headers={"Origin": APP, **with_cookie})
        assert minted.status_code == 401
        assert (await rig.who({"Origin": EVIL, **with_cookie}))["authenticated"] is False
        # Other cookies of the request reach the routes as sent.
        both = {"Origin": APP, "Cookie": f"other=1; {COOKIE}={cookie}"}
        assert (await rig.who(both))["authenticated"] is False


async def test_a_refused_ws_handshake_is_logged_once_and_a_listed_origin_connects(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = ServerSettings.from_config(
        ServerConfig(keys=KEYS, allowed_origins=(APP,), state_dir=str(tmp_path / "state"))
    )
    bridge = Bridge(Config(journal_path=":memory:"))  # not started: no handshake here reaches a venue
    async with (
        asyncio.timeout(LIMIT),
        BridgeServer(bridge, host="127.0.0.1", port=0, settings=settings, clock=FakeClock()) as server,
    ):
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(server.ws_url, origin=EVIL)  # type: ignore[arg-type]
        assert refused.value.response.status_code == 403
        assert b"server.allowed_origins" in refused.value.response.body
        assert len(refusals(caplog, EVIL)) == 1
        async with websockets.connect(server.ws_url, origin=APP) as listed:  # type: ignore[arg-type]
            await listed.send('{"op": "ping", "id": 1}')
            assert '"pong"' in str(await listed.recv())
        assert not refusals(caplog, APP)
        # A listed origin's page is not served the dashboard's session over /ws either.
        async with httpx.AsyncClient(base_url=server.http_url) as http:
            signed = await http.post("/api/session", json={"key": READ_KEY})
        cookie = {"Cookie": f"{COOKIE}={signed.cookies[COOKIE]}"}
        async with websockets.connect(
            server.ws_url,
            origin=APP,  # type: ignore[arg-type]
            additional_headers=cookie,
        ) as listed:
            await listed.send('{"op": "subscribe", "id": "b", "venue": "kraken", "channel": "balances"}')
            refused_account = json.loads(await listed.recv())
            assert (refused_account["type"], refused_account["code"]) == ("error", "not_authorized")


@pytest.mark.parametrize(
    ("given", "read"),
    [
        ("http://localhost:5173", ("http://localhost:5173",)),
        ("HTTPS://App.Example.com:443/, http://[::1]:8080", ("https://app.example.com", "http://[::1]:8080")),
        ("*", None),
        ("null", None),
        ("http://app.example.com/path", None),
        ("localhost:5173", None),
    ],
)
def test_allowed_origins_are_read_as_browsers_send_them(given: str, read: tuple[str, ...] | None) -> None:
    env = {"BROKERBRIDGE_SERVER_ALLOWED_ORIGINS": given}
    if read is None:
        with pytest.raises(ConfigError, match=r"server\.allowed_origins"):
            load_config(env=env)
    else:
        assert load_config(env=env).server.allowed_origins == read
