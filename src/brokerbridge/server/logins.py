"""Browser logins: what the `bb_session` cookie, a one-time login code and a WebSocket token stand
for, and who is asking (`identify`). Pure logic on an injected clock: the files that outlive the
process are a `LoginStore` (server/login_store.py), the routes are server/login_routes.py.

A browser never holds an API key in script: `serve` prints a one-time login link (`/login?code=…`)
or the user posts a key once to `/api/session`; either way the answer is an HttpOnly, SameSite=Strict
cookie `bb_session` that `/ws` and every `/api` route accept. `/api/token` trades a key or the cookie
for a token usable once, within 60 s, as `/ws?token=` (for clients that cannot send the cookie).

A *login* is one such signed-in browser (the routes and the cookie say "session", as browsers do;
the code says login, since "session" already names a venue's protocol session, a venue's
authenticated session and a market's trading session). The cookie is stateless —
`base64url(claims).base64url(HMAC-SHA256)` over login id, key name, scopes and expiry — so it
survives a restart of `serve` as long as the signing key does: that key lives in the store, with
the ids of signed-out logins. A login opened with a key is checked against the current config on
every use: the key gone or changed refuses it, a key that lost a scope narrows it. Codes and tokens
are random, held (hashed) in memory only, used once.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Protocol

import msgspec
from starlette.requests import HTTPConnection

from brokerbridge.core.clock import Clock
from brokerbridge.core.config import SCOPES, ApiKey
from brokerbridge.core.secret import Secret
from brokerbridge.server.access_tokens import (
    DEFAULT_RENEW_FOR,
    DEFAULT_TTL,
    FORGED,
    AccessToken,
    AccessTokens,
    Grant,
    b64,
    is_access_token,
    unb64,
)
from brokerbridge.server.auth import Authenticator, Principal, presented_key

COOKIE = "bb_session"
CODE_TTL = 600.0  # a login link is good for 10 minutes …
TOKEN_TTL = 60.0  # … a WebSocket token for one
MAX_PENDING = 10_000  # unredeemed codes or tokens held at once; minting beyond that is refused
# What the login link grants (whoever can read serve's output); `trade` only to a link asked for
# with it (`login-link --trade`: a caller on the server's machine or with an admin key).
LINK_SCOPES = frozenset({"market", "account"})


@dataclass(frozen=True)
class Login:
    """One signed-in browser: what a valid cookie stands for."""

    id: str
    grant: Grant
    expires_at: float  # wall time


class _Claims(msgspec.Struct, frozen=True):
    i: str  # login id (for sign-out)
    n: str | None  # key name
    s: list[str]  # scopes
    e: float  # expiry, wall time
    f: str | None  # key fingerprint


class LoginStore(Protocol):
    """Where the signing key and the signed-out login ids persist (server/login_store.py's `StateDir`)."""

    def signing_key(self, *, create: bool) -> bytes | None: ...

    def load_revoked(self) -> dict[str, float]: ...

    def save_revoked(self, revoked: Mapping[str, float]) -> None: ...


class Logins:
    """Logins, login codes and tokens on an injected clock (wall time: logins outlive the process)."""

    def __init__(
        self,
        store: LoginStore,
        *,
        ttl: float,
        clock: Clock,
        token_ttl: float = DEFAULT_TTL,
        token_renew_for: float = DEFAULT_RENEW_FOR,
    ) -> None:
        self._store = store
        self.ttl = ttl
        self._clock = clock
        # Access tokens (server/access_tokens.py): signed with the same key, revoked in the same list.
        self.access = AccessTokens(
            lambda create: store.signing_key(create=create),
            self,
            clock=clock,
            default_ttl=token_ttl,
            renew_for=token_renew_for,
        )
        # Codes and tokens, held by their SHA-256 (a dict probe on the digest leaks nothing about
        # the secret) → what they grant and until when.
        self._codes: dict[bytes, tuple[Grant, float]] = {}
        self._tokens: dict[bytes, tuple[Grant, float]] = {}
        self._revoked = store.load_revoked()  # login id → its expiry (kept until then)
        store.signing_key(create=False)  # a broken state_dir shows now, not on some later request

    def ensure_signing_key(self) -> None:
        self._key()

    def now(self) -> float:
        return self._clock.time()

    def mint_code(self, *, trade: bool = False) -> str:
        """A one-time login code (the `serve` link) for a market + account login — and `trade`
        when asked for (`brokerbridge login-link --trade`) — valid CODE_TTL."""
        scopes = LINK_SCOPES | {"trade"} if trade else LINK_SCOPES
        return self._mint(self._codes, Grant(None, scopes), CODE_TTL, None)[0]

    def redeem_code(self, code: str) -> Grant | None:
        held = self._redeem(self._codes, code)
        return None if held is None else held[0]

    def mint_token(self, grant: Grant, not_after: float | None = None) -> tuple[str, float]:
        """A token for `grant`, valid once within TOKEN_TTL (and not past `not_after`)."""
        return self._mint(self._tokens, grant, TOKEN_TTL, not_after)

    def redeem_token(self, token: str) -> tuple[Grant, float] | None:
        return self._redeem(self._tokens, token)

    def _mint(
        self, pending: dict[bytes, tuple[Grant, float]], grant: Grant, ttl: float, not_after: float | None
    ) -> tuple[str, float]:
        now = self._clock.time()
        for held, (_, expires_at) in list(pending.items()):
            if expires_at <= now:
                del pending[held]
        if len(pending) >= MAX_PENDING:
            raise OverflowError("too many unused login codes or tokens")
        secret = secrets.token_urlsafe(24)
        expires_at = now + ttl if not_after is None else min(now + ttl, not_after)
        pending[hashlib.sha256(secret.encode()).digest()] = (grant, expires_at)
        return secret, expires_at

    def _redeem(self, pending: dict[bytes, tuple[Grant, float]], secret: str) -> tuple[Grant, float] | None:
        held = pending.pop(hashlib.sha256(secret.encode()).digest(), None)
        if held is None or self._clock.time() >= held[1]:
            return None
        return held

    # logins (the cookie) ------------------------------------------------------------------------
    def fingerprint(self, key: Secret) -> str:
        """A key's (or a user's password hash's) fingerprint: what a login or token minted from it
        remembers, so changing it signs them out."""
        mac = hmac.new(self._key(), b"fingerprint\0" + key.reveal().encode(), hashlib.sha256)
        return mac.hexdigest()[:32]

    def open(self, grant: Grant) -> tuple[str, Login]:
        """A new login for `grant`: the cookie value and what it stands for."""
        login = Login(secrets.token_urlsafe(12), grant, self._clock.time() + self.ttl)
        claims = _Claims(
            i=login.id, n=grant.name, s=sorted(grant.scopes), e=login.expires_at, f=grant.fingerprint
        )
        payload = b64(msgspec.json.encode(claims))
        return f"{payload}.{b64(self._sign(payload, self._key()))}", login

    def verify(self, cookie: str) -> Login | str:
        """The login a cookie value stands for, or why it does not stand for one (the reason as a
        browser user reads it: their "session")."""
        key = self._store.signing_key(create=False)
        payload, dot, signature = cookie.partition(".")
        if key is None or not dot:
            return "the session cookie was not issued by this server"
        # The signature's text is compared, not its decoded bytes: base64 lets the last character
        # vary in padding bits, and a cookie must have exactly one accepted spelling.
        expected = b64(self._sign(payload, key)).encode()
        if not hmac.compare_digest(expected, signature.encode("utf-8", "replace")):
            return "the session cookie was not issued by this server"
        try:
            claims = msgspec.json.decode(unb64(payload), type=_Claims)
        except (binascii.Error, ValueError, msgspec.DecodeError):
            return "the session cookie is malformed"
        if self._clock.time() >= claims.e:
            return "the session expired"
        if claims.i in self._revoked:
            return "the session was signed out"
        scopes = frozenset(claims.s) & frozenset(SCOPES)
        return Login(claims.i, Grant(claims.n, scopes, claims.f), claims.e)

    def csrf_token(self, login_id: str) -> str:
        """The login's CSRF token: what a state-changing request on its behalf sends in
        `X-CSRF-Token`. Derived (HMAC of the login id under the signing key), so it needs no
        storage, survives a restart with the login, and differs for every login; a page of
        another origin cannot read it (it comes in the JSON of `GET /api/session`)."""
        mac = hmac.new(self._key(), b"csrf\0" + login_id.encode(), hashlib.sha256)
        return b64(mac.digest())

    def close(self, login: Login) -> None:
        """Sign `login` out for good (until it would have expired anyway), also across restarts."""
        self.revoke_id(login.id, login.expires_at)

    # the revoked ids: signed-out logins and revoked access-token chains (random, never equal)
    def is_revoked(self, id_: str) -> bool:
        return id_ in self._revoked

    def withdrawn(self, principal: Principal) -> str | None:
        """Why a connection opened by `principal` must end now (None: it may go on): its access
        token was revoked or its browser login signed out since the handshake. An expired token
        does not end a connection it opened (as a session outlives the credential that opened
        it); a revoked one does — that is what revoking is for."""
        if principal.token_id is not None and principal.token_id in self._revoked:
            return "the access token of this connection was revoked: get a new one"
        if principal.login_id is not None and principal.login_id in self._revoked:
            return "the session of this connection was signed out: sign in again"
        return None

    def revoke_id(self, id_: str, until: float) -> None:
        """Refuse `id_` from now on, until `until` (when it would have expired anyway)."""
        now = self._clock.time()
        self._revoked = {rid: held for rid, held in self._revoked.items() if held > now}
        self._revoked[id_] = until
        self._store.save_revoked(self._revoked)

    def _key(self) -> bytes:
        key = self._store.signing_key(create=True)
        assert key is not None  # create=True makes one or raises
        return key

    @staticmethod
    def _sign(payload: str, key: bytes) -> bytes:
        # The domain tag is in every cookie signed so far: changing it would sign every browser out.
        return hmac.new(key, b"session\0" + payload.encode(), hashlib.sha256).digest()


# Who is asking ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Denied:
    """A credential was presented and is not valid: the request is refused (401), not downgraded.
    `retry_after` set: the client's address failed too often; refused unchecked (429)."""

    message: str
    remedy: str
    retry_after: float | None = None

    @property
    def status(self) -> int:
        return 401 if self.retry_after is None else 429

    @property
    def code(self) -> str:
        return "not_authorized" if self.retry_after is None else "rate_limited"

    @property
    def headers(self) -> dict[str, str]:
        return {} if self.retry_after is None else {"Retry-After": str(math.ceil(self.retry_after))}


def throttled(retry_after: float) -> Denied:
    return Denied(
        f"too many failed authentications from this address: credentials are refused for "
        f"{math.ceil(retry_after)} s",
        "check the key or token (the server's [server] keys) and try again after Retry-After "
        "(limits: server.auth_failure_burst, server.auth_failure_interval)",
        retry_after,
    )


def client_address(conn: HTTPConnection) -> str:
    """Who is connecting, as the socket says (behind a proxy: the proxy)."""
    return conn.client.host if conn.client is not None else "unknown"


def way_in(conn: HTTPConnection) -> str:
    return "ws" if conn.scope.get("type") == "websocket" else "rest"


def identify(conn: HTTPConnection, auth: Authenticator, logins: Logins) -> Principal | Denied:
    """The principal behind a request or WebSocket handshake: an API key (header or `?key=`), else
    an access token (`Authorization: Bearer bbt.…`, `X-Auth-Token`, `?token=bbt.…`), else a one-time
    WebSocket token (`?token=`, used up here), else the login cookie, else anonymous. A bad key or
    token is refused; a cookie that is no longer good only falls back to anonymous (with a `note`
    why), so a stale cookie never locks a browser out of what anonymous clients may see."""
    presented = presented_key(conn.headers, conn.query_params)
    token = conn.query_params.get("token")
    access = conn.headers.get("x-auth-token") or None
    if presented is not None and is_access_token(presented):
        access, presented = presented, None
    if token is not None and is_access_token(token):
        access, token = access or token, None
    if presented is not None or token is not None or access is not None:
        address, via = client_address(conn), way_in(conn)
        wait = auth.throttle.retry_after(address, via)
        if wait is not None:
            return throttled(wait)
    if presented is not None:
        key = auth.lookup(presented)
        if key is None:
            auth.throttle.failed(address, via, conn.url.path, "invalid API key")
            return Denied("invalid API key", "use a key from the server's [server] keys")
        return auth.principal_of(key)
    if access is not None:
        found = logins.access.verify(access)
        current = found if isinstance(found, str) else _current(found.grant, found.expires_at, auth, logins)
        if isinstance(current, str):
            if current in FORGED:
                auth.throttle.failed(address, via, conn.url.path, f"access token refused: {current}")
            return Denied(
                f"access token refused: {current}",
                "get a new one (POST /api/tokens/renew while it is valid, POST /api/tokens, or "
                "POST /primary/auth/getToken)",
            )
        assert isinstance(found, AccessToken)
        return replace(current, token_id=found.id)
    if token is not None:
        held = logins.redeem_token(token)
        if held is None:
            auth.throttle.failed(address, via, conn.url.path, "invalid, expired or used token")
            return Denied(
                "invalid, expired or already used token",
                "get a fresh one: POST /api/token (valid 60 s, once)",
            )
        grant, expires_at = held
        return auth.authenticated(grant.name, grant.scopes, expires_at)
    cookie = conn.cookies.get(COOKIE)
    if cookie:
        login = logins.verify(cookie)
        found_login = (
            login if isinstance(login, str) else _current(login.grant, login.expires_at, auth, logins)
        )
        if isinstance(found_login, str):
            return replace(auth.anonymous(), note=f"{found_login}: sign in again")
        assert isinstance(login, Login)
        return replace(found_login, login_id=login.id)
    return auth.anonymous()


def _current(grant: Grant, expires_at: float, auth: Authenticator, logins: Logins) -> Principal | str:
    """What a login or access token grants as the config stands now: its key or user removed or
    changed → refused; scopes narrowed to what the key or user still has (one that gained scopes
    does not widen what was granted before)."""
    if grant.name is None:
        return auth.authenticated(None, grant.scopes, expires_at)
    if grant.user:
        user = auth.user_named(grant.name)
        if user is None:
            return f"user {grant.name!r} is no longer configured"
        credential, allows, what = user.password_hash, user.allows, f"user {grant.name!r}"
    else:
        key = auth.key_named(grant.name)
        if key is None:
            return f"key {grant.name!r} is no longer configured"
        credential, allows, what = key.key, key.allows, f"key {grant.name!r}"
    if grant.fingerprint is None or not hmac.compare_digest(
        logins.fingerprint(credential), grant.fingerprint
    ):
        return f"{what} was changed"
    scopes = frozenset(s for s in grant.scopes if allows(s))
    if not scopes:
        return f"{what} no longer has any of the scopes granted"
    return auth.authenticated(grant.name, scopes, expires_at)


async def password_grant(
    conn: HTTPConnection, auth: Authenticator, logins: Logins, username: str, password: str
) -> Grant | Denied:
    """What a Primary-style login (`X-Username`/`X-Password`, as `/primary/auth/getToken` takes it)
    grants: a bridge-local user's scopes, or an API key's (its name as user, the key as password).
    Never the broker's credentials. Failures count against the client's address like a bad key."""
    address, via = client_address(conn), way_in(conn)
    wait = auth.throttle.retry_after(address, via)
    if wait is not None:
        return throttled(wait)
    found = await auth.check_password(username, password)
    if found is None:
        auth.throttle.failed(address, via, conn.url.path, "wrong user name or password")
        return Denied(
            "wrong user name or password",
            "use a bridge user ([server.users], made with brokerbridge hash-password) or an API key's "
            "name with the key as password — never the broker's own credentials",
        )
    if isinstance(found, ApiKey):
        return Grant(found.name, found.scopes, logins.fingerprint(found.key))
    return Grant(found.name, found.scopes, logins.fingerprint(found.password_hash), user=True)
