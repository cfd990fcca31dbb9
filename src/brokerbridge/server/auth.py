"""Client auth for the server: API keys with scopes, the Origin check, per-connection rate limits.

A key is presented as `Authorization: Bearer <key>`, as `?key=<key>` or (WebSocket) in a first
`{"op": "auth", "key": …}` message. Keys are `Secret`s: compared in constant time, never echoed.
Browsers use a session cookie or a short-lived token instead (session.py).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from brokerbridge.core.config import ApiKey, ServerConfig
from brokerbridge.core.events import Channel


@dataclass(frozen=True)
class Principal:
    """Who is on a connection: a configured key's name, or None (anonymous, or the login link's
    session). `authenticated`: a key, session or token was accepted; `expires_at` (wall time) for
    sessions and tokens; `note` says why a session cookie was not accepted (for refusal messages)."""

    name: str | None
    scopes: frozenset[str]
    authenticated: bool = False
    expires_at: float | None = None
    note: str = ""

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


class Authenticator:
    def __init__(self, config: ServerConfig, *, open_market_data: bool) -> None:
        self._keys = config.keys
        self.open_market_data = open_market_data
        self.allowed_origins = frozenset(o.rstrip("/").lower() for o in config.allowed_origins)

    def anonymous(self) -> Principal:
        return Principal(None, frozenset({"market"}) if self.open_market_data else frozenset())

    def key_named(self, name: str) -> ApiKey | None:
        return next((key for key in self._keys if key.name == name), None)

    def lookup(self, presented: str) -> ApiKey | None:
        found = None
        for key in self._keys:  # constant time per key; no early exit
            if hmac.compare_digest(key.key.reveal().encode(), presented.encode()):
                found = key
        return found

    def principal_of(self, key: ApiKey | None) -> Principal:
        if key is None:
            return self.anonymous()
        return self.authenticated(key.name, key.scopes)

    def authenticated(
        self, name: str | None, scopes: frozenset[str], expires_at: float | None = None
    ) -> Principal:
        if self.open_market_data:
            scopes = scopes | {"market"}
        return Principal(name, scopes, authenticated=True, expires_at=expires_at)

    def origin_allowed(self, origin: str | None, host: str | None) -> bool:
        """No Origin (not a browser) or same origin (Origin's host:port is the Host header) or listed."""
        if origin is None:
            return True
        if origin.rstrip("/").lower() in self.allowed_origins:
            return True
        return host is not None and urlsplit(origin).netloc.lower() == host.lower()


def presented_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization")
    if auth is not None:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    key = query.get("key")
    return key or None


def scope_of(channel: str) -> str:
    """The scope a channel needs: account channels (and `orders`) always `account`, the rest `market`."""
    if channel == "orders":
        return "account"
    try:
        return "account" if Channel(channel).private else "market"
    except ValueError:
        return "market"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class TokenBucket:
    """`rate` tokens per second up to `burst`, on an injected monotonic clock."""

    def __init__(self, rate: float, burst: int, now: Callable[[], float]) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._now = now
        self._tokens = float(burst)
        self._stamp = now()

    def take(self) -> bool:
        now = self._now()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
