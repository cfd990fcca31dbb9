"""Client auth for the server: API keys with scopes, the Origin and Host checks, per-connection rate
limits, and the limit on failed authentications per client address (`AuthThrottle`).

A key is presented as `Authorization: Bearer <key>`, as `?key=<key>` or (WebSocket) in a first
`{"op": "auth", "key": …}` message. Keys are `Secret`s: compared in constant time, never echoed.
Browsers use a login cookie or a short-lived token instead (logins.py).
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import ipaddress
import logging
import secrets
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from brokerbridge.core.clock import Clock
from brokerbridge.core.config import ApiKey, ServerConfig, User, scope_allowed
from brokerbridge.core.events import Channel
from brokerbridge.core.log_limit import LogLimiter, clip
from brokerbridge.core.passwords import check_password
from brokerbridge.core.passwords import hash_password as _hash_password

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Principal:
    """Who is on a connection: a configured key's name, or None (anonymous, or a login by the
    one-time link). `authenticated`: a key, login cookie or token was accepted; `expires_at` (wall
    time) for logins and tokens; `note` says why a login cookie was not accepted (for refusal
    messages)."""

    name: str | None
    scopes: frozenset[str]
    authenticated: bool = False
    expires_at: float | None = None
    note: str = ""
    # The browser login (the `bb_session` cookie) this principal came by; None: a key, a token or
    # nobody. A state-changing request on a login's behalf needs its CSRF token (server/csrf.py).
    login_id: str | None = None
    # The access-token chain (server/access_tokens.py) this principal came by; None: not a token.
    token_id: str | None = None

    def allows(self, scope: str) -> bool:
        return scope_allowed(self.scopes, scope)


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


class Authenticator:
    """`bound_host`: the address the server listens on (a Host header naming it is served)."""

    def __init__(
        self,
        config: ServerConfig,
        *,
        open_market_data: bool,
        clock: Clock,
        bound_host: str | None = None,
        throttle: AuthThrottle | None = None,
    ) -> None:
        self._keys = config.keys
        self._users = config.users
        self.open_market_data = open_market_data
        self.allowed_origins = frozenset(o.rstrip("/").lower() for o in config.allowed_origins)
        names = [*LOOPBACK_NAMES, *config.allowed_hosts, *([bound_host] if bound_host else [])]
        self.allowed_hosts = frozenset(_host_name(name) for name in names)
        self.throttle = throttle or AuthThrottle(
            config.auth_failure_burst, config.auth_failure_interval, clock
        )
        # One line per refused origin and way in a minute: a page polling every 2 s must not
        # fill the log, yet the first refusal is always told.
        self._origin_log = LogLimiter(logger, clock.monotonic, burst=1)

    def host_allowed(self, host: str | None) -> bool:
        """The Host header names this server (a loopback name, the bound host or one of
        `allowed_hosts`; `*` there allows any): a page of another site that made its own name
        resolve to us (DNS rebinding) is not served."""
        if "*" in self.allowed_hosts:
            return True
        return host is not None and _host_name(host) in self.allowed_hosts

    def anonymous(self) -> Principal:
        return Principal(None, frozenset({"market"}) if self.open_market_data else frozenset())

    def key_named(self, name: str) -> ApiKey | None:
        return next((key for key in self._keys if key.name == name), None)

    def user_named(self, name: str) -> User | None:
        return next((user for user in self._users if user.name == name), None)

    async def check_password(self, username: str, password: str) -> ApiKey | User | None:
        """A Primary-style login (X-Username/X-Password): the bridge-local user `username` with
        that password, or the API key named `username` with the key itself as password; None
        when neither. The scrypt check runs in a worker thread (tens of ms: not on the event
        loop), and an unknown user costs the same as a known one (no user enumeration by timing)."""
        user = self.user_named(username)
        if user is None:
            key = self.key_named(username)
            if key is not None and hmac.compare_digest(key.key.reveal().encode(), password.encode()):
                return key
        hashed = user.password_hash.reveal() if user is not None else self._decoy
        good = await asyncio.to_thread(check_password, password, hashed)
        return user if good and user is not None else None

    @functools.cached_property
    def _decoy(self) -> str:
        """A hash checked for unknown users, so they take as long as known ones."""
        return _hash_password(secrets.token_urlsafe(16))

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
        return origin is None or self.listed(origin) or same_origin(origin, host)

    def listed(self, origin: str) -> bool:
        """`origin` is one of `server.allowed_origins`."""
        return origin.rstrip("/").lower() in self.allowed_origins

    def origin_refused(self, origin: str, what: str, path: str) -> None:
        """Log at WARNING that `what` ("request", "preflight", "WebSocket handshake") from
        `origin` to `path` was refused, naming the setting that would allow it; one line per
        origin and kind a minute (the rest counted on the next one)."""
        # An Origin naming this server itself: a reverse proxy that rewrites the Host header
        # (nginx's default) makes the server's own pages look foreign; listing them is not the fix.
        own = _host_name(urlsplit(origin).netloc) in self.allowed_hosts - set(LOOPBACK_NAMES)
        self._origin_log.log(
            logging.WARNING,
            (origin, what),
            "refused a cross-origin %s to %s from Origin %s: not in server.allowed_origins; %s",
            what,
            clip(path, 80),
            clip(origin, 80),
            "if this is the server's own page behind a reverse proxy, have the proxy pass the "
            "Host header on (nginx: proxy_set_header Host $host)"
            if own
            else "if that web app is yours, add its origin there (or to "
            "BROKERBRIDGE_SERVER_ALLOWED_ORIGINS, comma-separated)",
        )


def same_origin(origin: str, host: str | None) -> bool:
    """Origin's host:port is the Host header the request was sent to (the server's own page)."""
    return host is not None and urlsplit(origin).netloc.lower() == host.lower()


def _host_name(host: str) -> str:
    """A Host header (or configured name) without its port, brackets and trailing dot, lowercased."""
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:8000
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:  # name:port (a bare IPv6 address has more colons)
        host = host.partition(":")[0]
    return host.rstrip(".")


def host_refusal(host: str | None) -> tuple[str, str]:
    """The message and remedy of a refused Host header (the header clipped: it is the client's)."""
    return (
        f"Host {clip(host or '', 80)} is not a name of this server",
        "connect with a name this server answers to (localhost, 127.0.0.1, the address it listens "
        "on), or add this one to server.allowed_hosts (BROKERBRIDGE_SERVER_ALLOWED_HOSTS)",
    )


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


# Client addresses whose failures are remembered at once: beyond this the oldest are forgotten,
# so a flood from many addresses (IPv6 hands out plenty) costs bounded memory.
MAX_ADDRESSES = 10_000


class _Failures:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class AuthThrottle:
    """Failed authentications per client address: `burst` in a row, then one per `interval`
    seconds (a token bucket on the injected clock). An address out of tokens has every credential
    it presents refused — right or wrong, unchecked — until one is back (`retry_after`): a
    guesser learns nothing at full speed. Each failure is logged at WARNING (address, way in and
    path — never the key; repeats of an address rate-limited) and counted (`on_failure(via)`); a
    refusal is counted by `on_refused(via)`."""

    def __init__(
        self,
        burst: int,
        interval: float,
        clock: Clock,
        *,
        on_failure: Callable[[str], None] = lambda via: None,
        on_refused: Callable[[str], None] = lambda via: None,
    ) -> None:
        self.burst = burst
        self.interval = interval
        self._now = clock.monotonic
        self._on_failure = on_failure
        self._on_refused = on_refused
        self._addresses: OrderedDict[str, _Failures] = OrderedDict()
        self._log = LogLimiter(logger, clock.monotonic)

    def _bucket(self, address: str) -> _Failures | None:
        """The address's bucket, refilled to now (None: it is full, nothing held against it)."""
        held = self._addresses.get(address)
        if held is None:
            return None
        now = self._now()
        held.tokens = min(float(self.burst), held.tokens + (now - held.stamp) / self.interval)
        held.stamp = now
        if held.tokens >= self.burst:
            del self._addresses[address]
            return None
        return held

    def retry_after(self, address: str, via: str) -> float | None:
        """Seconds until `address` may present a credential again (None: it may now). A refusal
        is counted."""
        held = self._bucket(address)
        if held is None or held.tokens >= 1.0:
            return None
        self._on_refused(via)
        return (1.0 - held.tokens) * self.interval

    def failed(self, address: str, via: str, where: str, why: str) -> None:
        """`address` presented a credential that is not valid (`why`) over `via` at `where`."""
        self._on_failure(via)
        held = self._bucket(address)
        if held is None:
            held = self._addresses[address] = _Failures(float(self.burst), self._now())
            if len(self._addresses) > MAX_ADDRESSES:
                self._addresses.popitem(last=False)
        self._addresses.move_to_end(address)
        held.tokens = max(0.0, held.tokens - 1.0)
        self._log.log(
            logging.WARNING,
            address,
            "authentication failed from %s over %s at %s: %s",
            address,
            via,
            clip(where, 80),
            why,
        )
        if held.tokens < 1.0:
            self._log.log(
                logging.WARNING,
                ("locked", address),
                "%s: %d failed authentications; its credentials are refused (429) for %.0f s",
                address,
                self.burst,
                self.interval * (1.0 - held.tokens),
            )
