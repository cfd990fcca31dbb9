"""The bridge's app for the tests of what web apps on other origins use — CORS, access-token routes,
the sign-in flow — served in process (httpx over ASGI) on a FakeClock.

These routes never reach a venue, so the Bridge under the app is built but not started (no
simulators): each test costs milliseconds. `/api/session` answers who a request is (scopes,
authenticated): the tests use it to see what a token or a cookie stands for.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from fastapi import FastAPI

from brokerbridge.bridge import Bridge
from brokerbridge.core.clock import FakeClock
from brokerbridge.core.config import ApiKey, Config, ServerConfig
from brokerbridge.core.secret import Secret
from brokerbridge.server import ServerSettings
from brokerbridge.server.app import create_app
from brokerbridge.server.logins import COOKIE

BRIDGE = "http://127.0.0.1:8000"  # the app's own origin (what the test client's Host says)
APP = "http://localhost:5173"  # a web app's origin, listed in server.allowed_origins
EVIL = "http://evil.example:8080"  # an origin nobody listed
CALLBACK = f"{APP}/callback"

VIEW_KEY = "view-key-0123456789abcdef"  # market
READ_KEY = "read-key-0123456789abcdef"  # market, account
TRADE_KEY = "trade-key-0123456789abcde"  # market, account, trade
ADMIN_KEY = "admin-key-0123456789abcde"  # admin
KEYS = (
    ApiKey("viewer", Secret(VIEW_KEY), frozenset({"market"})),
    ApiKey("reader", Secret(READ_KEY), frozenset({"market", "account"})),
    ApiKey("trader", Secret(TRADE_KEY), frozenset({"market", "account", "trade"})),
    ApiKey("admin", Secret(ADMIN_KEY), frozenset({"admin"})),
)
TTL = 900.0
MAX_AGE = 1800.0
SESSION_TTL = 3600.0


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


@dataclass
class WebRig:
    app: FastAPI
    clock: FakeClock
    http: httpx.AsyncClient

    async def who(self, headers: Mapping[str, str]) -> dict[str, Any]:
        """What `/api/session` says of a request with `headers` (a token, a cookie…)."""
        answer = await self.http.get("/api/session", headers=dict(headers))
        return {"status": answer.status_code, **answer.json()}

    async def sign_in(self, key: str) -> tuple[str, str]:
        """A dashboard session for `key`: its cookie and CSRF token."""
        answer = await self.http.post("/api/session", json={"key": key})
        assert answer.status_code == 200, answer.text
        self.http.cookies.clear()  # every request names the cookie it sends
        return answer.cookies[COOKIE], answer.json()["csrf_token"]


@asynccontextmanager
async def web_rig(tmp_path: Path, **config: Any) -> AsyncIterator[WebRig]:
    """The app with `KEYS`, `APP` listed, tokens of `TTL` renewable for `MAX_AGE`, sessions of
    `SESSION_TTL`; `config`: other `[server]` settings."""
    settings: dict[str, Any] = {
        "keys": KEYS,
        "allowed_origins": (APP,),
        "state_dir": str(tmp_path / "state"),
        "access_token_ttl": TTL,
        "access_token_max_age": MAX_AGE,
        "session_ttl": SESSION_TTL,
        **config,
    }
    clock = FakeClock()
    bridge = Bridge(Config(journal_path=":memory:"))  # not started: these routes never reach a venue
    app = create_app(
        bridge, ServerSettings.from_config(ServerConfig(**settings)), loopback=False, clock=clock
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BRIDGE) as http:
        yield WebRig(app, clock, http)


def pkce() -> tuple[str, str]:
    """A code verifier and its S256 challenge, computed as a browser app does (RFC 7636 §4.1-4.2)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_query(challenge: str, **overrides: str | None) -> str:
    """An `/authorize` query string (a parameter set to None is left out)."""
    parameters: dict[str, str | None] = {
        "response_type": "code",
        "client_id": "Opciones",
        "redirect_uri": CALLBACK,
        "scope": "read",
        "state": "st-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **overrides,
    }
    return urlencode({k: v for k, v in parameters.items() if v is not None})


def hidden_fields(page: str) -> dict[str, str]:
    """The hidden inputs of a page's form (the consent form's parameters and CSRF token)."""
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page)
    return {name: html.unescape(value) for name, value in found}


def redirected(answer: httpx.Response) -> tuple[str, dict[str, str]]:
    """Where a 303 sends the browser: the URL without its query, and the query's fields."""
    assert answer.status_code == 303, (answer.status_code, answer.text)
    location = answer.headers["location"]
    parts = urlsplit(location)
    fields = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.scheme else parts.path, fields
