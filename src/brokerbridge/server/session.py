"""Browser sessions: a signed session cookie, one-time login codes, short-lived WebSocket tokens.

A browser never holds an API key in script: `serve` prints a one-time login link (`/login?code=…`)
or the user posts a key once to `/api/session`; either way the answer is an HttpOnly, SameSite=Strict
cookie `bb_session` that `/ws` and every `/api` route accept. `/api/token` trades a key or the cookie
for a token usable once, within 60 s, as `/ws?token=` (for clients that cannot send the cookie).

The cookie is stateless — `base64url(claims).base64url(HMAC-SHA256)` over key id, key name, scopes
and expiry — so it survives a restart of `serve` as long as the signing key does: that key lives in
`[server] state_dir` (mode 0600), with the ids of signed-out sessions. A session opened with a key
is checked against the current config on every use: the key gone or changed refuses it, a key that
lost a scope narrows it. Codes and tokens are random, held (hashed) in memory only, used once.
`Sessions` is pure logic on an injected clock; `StateDir` is its file I/O; the routes are at the end.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import math
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import msgspec
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.requests import HTTPConnection

from brokerbridge.client import models
from brokerbridge.core.clock import Clock
from brokerbridge.core.config import SCOPES, state_path
from brokerbridge.core.errors import ConfigError
from brokerbridge.core.secret import Secret
from brokerbridge.server.auth import Authenticator, AuthThrottle, Principal, presented_key
from brokerbridge.server.rest_models import OpenApiModels

logger = logging.getLogger(__name__)

COOKIE = "bb_session"
CODE_TTL = 600.0  # a login link is good for 10 minutes …
TOKEN_TTL = 60.0  # … a WebSocket token for one
MAX_PENDING = 10_000  # unredeemed codes or tokens held at once; minting beyond that is refused
LINK_SCOPES = frozenset({"market", "account"})  # what the login link grants (whoever can read serve's output)


@dataclass(frozen=True)
class Grant:
    """What a credential carries: the key's name (None: the login link), its scopes and — for a key —
    a fingerprint of its value, so rotating the key signs its sessions out."""

    name: str | None
    scopes: frozenset[str]
    fingerprint: str | None = None


@dataclass(frozen=True)
class Session:
    id: str
    grant: Grant
    expires_at: float  # wall time


class _Claims(msgspec.Struct, frozen=True):
    i: str  # session id (for sign-out)
    n: str | None  # key name
    s: list[str]  # scopes
    e: float  # expiry, wall time
    f: str | None  # key fingerprint


class SessionStore(Protocol):
    """Where the signing key and the signed-out session ids persist (`StateDir`)."""

    def signing_key(self, *, create: bool) -> bytes | None: ...

    def load_revoked(self) -> dict[str, float]: ...

    def save_revoked(self, revoked: Mapping[str, float]) -> None: ...


class Sessions:
    """Sessions, login codes and tokens on an injected clock (wall time: sessions outlive the process)."""

    def __init__(self, store: SessionStore, *, ttl: float, clock: Clock) -> None:
        self._store = store
        self.ttl = ttl
        self._clock = clock
        # Codes and tokens, held by their SHA-256 (a dict probe on the digest leaks nothing about
        # the secret) → what they grant and until when.
        self._codes: dict[bytes, tuple[Grant, float]] = {}
        self._tokens: dict[bytes, tuple[Grant, float]] = {}
        self._revoked = store.load_revoked()  # session id → its expiry (kept until then)
        store.signing_key(create=False)  # a broken state_dir shows now, not on some later request

    def ensure_signing_key(self) -> None:
        self._key()

    def now(self) -> float:
        return self._clock.time()

    def mint_code(self) -> str:
        """A one-time login code (the `serve` link) for a market + account session, valid CODE_TTL."""
        return self._mint(self._codes, Grant(None, LINK_SCOPES), CODE_TTL, None)[0]

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

    # sessions (the cookie) ----------------------------------------------------------------------
    def fingerprint(self, key: Secret) -> str:
        mac = hmac.new(self._key(), b"fingerprint\0" + key.reveal().encode(), hashlib.sha256)
        return mac.hexdigest()[:32]

    def open(self, grant: Grant) -> tuple[str, Session]:
        """A new session for `grant`: the cookie value and what it stands for."""
        session = Session(secrets.token_urlsafe(12), grant, self._clock.time() + self.ttl)
        claims = _Claims(
            i=session.id, n=grant.name, s=sorted(grant.scopes), e=session.expires_at, f=grant.fingerprint
        )
        payload = _b64(msgspec.json.encode(claims))
        return f"{payload}.{_b64(self._sign(payload, self._key()))}", session

    def verify(self, cookie: str) -> Session | str:
        """The session a cookie value stands for, or why it does not stand for one."""
        key = self._store.signing_key(create=False)
        payload, dot, signature = cookie.partition(".")
        if key is None or not dot:
            return "the session cookie was not issued by this server"
        # The signature's text is compared, not its decoded bytes: base64 lets the last character
        # vary in padding bits, and a cookie must have exactly one accepted spelling.
        expected = _b64(self._sign(payload, key)).encode()
        if not hmac.compare_digest(expected, signature.encode("utf-8", "replace")):
            return "the session cookie was not issued by this server"
        try:
            claims = msgspec.json.decode(_unb64(payload), type=_Claims)
        except (binascii.Error, ValueError, msgspec.DecodeError):
            return "the session cookie is malformed"
        if self._clock.time() >= claims.e:
            return "the session expired"
        if claims.i in self._revoked:
            return "the session was signed out"
        scopes = frozenset(claims.s) & frozenset(SCOPES)
        return Session(claims.i, Grant(claims.n, scopes, claims.f), claims.e)

    def close(self, session: Session) -> None:
        """Sign `session` out for good (until it would have expired anyway), also across restarts."""
        now = self._clock.time()
        self._revoked = {sid: until for sid, until in self._revoked.items() if until > now}
        self._revoked[session.id] = session.expires_at
        self._store.save_revoked(self._revoked)

    def _key(self) -> bytes:
        key = self._store.signing_key(create=True)
        assert key is not None  # create=True makes one or raises
        return key

    @staticmethod
    def _sign(payload: str, key: bytes) -> bytes:
        return hmac.new(key, b"session\0" + payload.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class StateDir:
    """`[server] state_dir`: `session-key` (the signing key, 0600, made on first need) and
    `signed-out-sessions.json`. Deleting the key file signs every session out."""

    def __init__(self, path: str | Path) -> None:
        self.path = state_path(str(path))  # the default honours $XDG_STATE_HOME, like the journal
        self._key: bytes | None = None

    @property
    def key_file(self) -> Path:
        return self.path / "session-key"

    @property
    def revoked_file(self) -> Path:
        return self.path / "signed-out-sessions.json"

    def signing_key(self, *, create: bool) -> bytes | None:
        if self._key is None:
            try:
                self._key = self._read_key() if self.key_file.exists() or not create else self._make_key()
            except OSError as exc:
                raise ConfigError(
                    f"cannot use the session key in {self.path}: {exc.strerror or exc}",
                    remedy="set server.state_dir (BROKERBRIDGE_SERVER_STATE_DIR) to a directory this "
                    "user may write",
                ) from None
        return self._key

    def _read_key(self) -> bytes | None:
        try:
            info = self.key_file.stat()
        except FileNotFoundError:
            return None
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"{self.key_file} is readable by other users: anyone who can read it can forge sessions",
                remedy=f"chmod 600 {self.key_file} (or delete it, which signs every session out)",
            )
        text = self.key_file.read_text(encoding="ascii", errors="replace").strip()
        try:
            key = bytes.fromhex(text)
        except ValueError:
            key = b""
        if len(key) < 32:
            raise ConfigError(
                f"{self.key_file} does not hold a session key written by brokerbridge",
                remedy="delete it; a new one is made (every session is signed out)",
            )
        return key

    def _make_key(self) -> bytes:
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = secrets.token_bytes(32)
        try:
            fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            made = self._read_key()
            assert made is not None
            return made
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(key.hex() + "\n")
        logger.info("made a new session signing key in %s", self.path)
        return key

    def load_revoked(self) -> dict[str, float]:
        try:
            data = json.loads(self.revoked_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cannot read {self.revoked_file}: {exc}",
                remedy="delete it together with session-key (every session is signed out)",
            ) from None
        if not isinstance(data, dict):
            raise ConfigError(
                f"{self.revoked_file} is not a JSON object",
                remedy="delete it together with session-key (every session is signed out)",
            )
        return {str(k): float(v) for k, v in data.items() if isinstance(v, int | float)}

    def save_revoked(self, revoked: Mapping[str, float]) -> None:
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = self.revoked_file.with_suffix(".tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(dict(revoked), file)
        os.replace(partial, self.revoked_file)


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


def identify(conn: HTTPConnection, auth: Authenticator, sessions: Sessions) -> Principal | Denied:
    """The principal behind a request or WebSocket handshake: an API key (header or `?key=`), else
    a token (`?token=`, used up here), else the session cookie, else anonymous. A bad key or token
    is refused; a cookie that is no longer good only falls back to anonymous (with a `note` why),
    so a stale cookie never locks a browser out of what anonymous clients may see."""
    presented = presented_key(conn.headers, conn.query_params)
    token = conn.query_params.get("token")
    if presented is not None or token is not None:
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
    if token is not None:
        held = sessions.redeem_token(token)
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
        session = sessions.verify(cookie)
        found = session if isinstance(session, str) else _current(session, auth, sessions)
        if isinstance(found, str):
            return replace(auth.anonymous(), note=f"{found}: sign in again")
        return found
    return auth.anonymous()


def _current(session: Session, auth: Authenticator, sessions: Sessions) -> Principal | str:
    """A session as the config stands now: its key removed or changed → refused; scopes narrowed
    to what the key still has (a key that gained scopes does not widen old sessions)."""
    grant = session.grant
    if grant.name is None:
        return auth.authenticated(None, grant.scopes, session.expires_at)
    key = auth.key_named(grant.name)
    if key is None:
        return f"key {grant.name!r} of this session is no longer configured"
    if grant.fingerprint is None or not hmac.compare_digest(sessions.fingerprint(key.key), grant.fingerprint):
        return f"key {grant.name!r} of this session was changed"
    scopes = frozenset(s for s in grant.scopes if key.allows(s))
    if not scopes:
        return f"key {grant.name!r} no longer has any scope of this session"
    return auth.authenticated(grant.name, scopes, session.expires_at)


# Routes ---------------------------------------------------------------------------------------


class _KeyBody(msgspec.Struct, frozen=True):
    key: str


_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}

_BAD_LINK = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>brokerbridge: sign-in link not valid</title></head>
<body style="font:14px system-ui,sans-serif;margin:2em"><h1>This sign-in link is not valid</h1>
<p>Each link printed by <code>brokerbridge serve</code> works once, for 10 minutes. Restart
<code>serve</code> for a fresh one, or sign in with an API key (<code>POST /api/session</code>).</p>
</body></html>
"""


def _error(
    status: int, code: str, message: str, remedy: str = "", headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "remedy": remedy}}
    return JSONResponse(body, status_code=status, headers={**_NO_STORE, **(headers or {})})


def _denied(found: Denied) -> JSONResponse:
    return _error(found.status, found.code, found.message, found.remedy, found.headers)


def _session_body(principal: Principal) -> dict[str, object]:
    return {
        "authenticated": principal.authenticated,
        "name": principal.name,
        "scopes": sorted(principal.scopes),
        "expires_at": principal.expires_at,
    }


def _cross_origin(request: Request) -> JSONResponse | None:
    """Refuse a state-changing request from another origin (CSRF): the cookie is SameSite=Strict,
    but other ports of the same host are the same *site*. Clients without Origin are not browsers."""
    origin = request.headers.get("origin")
    host = (request.headers.get("host") or "").lower()
    foreign = origin is not None and urlsplit(origin).netloc.lower() != host
    if foreign or request.headers.get("sec-fetch-site") in ("cross-site", "same-site"):
        return _error(
            403, "not_authorized", "cross-origin request refused", "call this from the server's own pages"
        )
    return None


def _with_session(
    response: Response, request: Request, cookie: str, session: Session, now: float
) -> Response:
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=max(0, int(session.expires_at - now)),
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


def make_router() -> APIRouter:
    """`/login`, `/api/session` (GET/POST/DELETE), `/api/token`; state from `app.state.server`."""
    router = APIRouter(tags=["session"])
    error_body = {"model": OpenApiModels().of(models.ErrorResponse)}

    def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
        """`responses=`: the typed error body of each status a route answers (so /openapi.json is true)."""
        return {status: error_body for status in statuses}

    @router.get("/login", include_in_schema=False)
    async def login(request: Request, code: str = "") -> Response:
        state = request.app.state.server
        sessions: Sessions = state.sessions
        throttle: AuthThrottle = state.auth.throttle
        address = client_address(request)
        if code and (wait := throttle.retry_after(address, "rest")) is not None:
            return _denied(throttled(wait))
        grant = sessions.redeem_code(code) if code else None
        if grant is None:
            if code:
                throttle.failed(address, "rest", request.url.path, "invalid, expired or used login code")
            return HTMLResponse(_BAD_LINK, status_code=401, headers=_NO_STORE)
        try:
            cookie, session = sessions.open(grant)
        except ConfigError as exc:
            return _error(503, "unavailable", exc.message, exc.remedy)
        response = RedirectResponse("/", status_code=303, headers=_NO_STORE)
        return _with_session(response, request, cookie, session, sessions.now())

    @router.get(
        "/api/session",
        summary="Who this browser is signed in as (never a secret)",
        responses=errors(401, 429),
    )
    async def session_info(request: Request) -> Response:
        state = request.app.state.server
        found = identify(request, state.auth, state.sessions)
        if isinstance(found, Denied):
            return _denied(found)
        return JSONResponse(_session_body(found), headers=_NO_STORE)

    @router.post(
        "/api/session",
        summary='Sign in with an API key: body {"key": "…"} → session cookie',
        responses=errors(400, 401, 403, 429, 503),
    )
    async def sign_in(request: Request) -> Response:
        if (refused := _cross_origin(request)) is not None:
            return refused
        state = request.app.state.server
        auth: Authenticator = state.auth
        sessions: Sessions = state.sessions
        try:
            presented = msgspec.json.decode(await request.body(), type=_KeyBody).key
        except msgspec.DecodeError:
            # Never echo the body: it may be a key with a typo.
            return _error(400, "invalid_request", 'the body must be JSON {"key": "<API key>"}')
        address = client_address(request)
        if (wait := auth.throttle.retry_after(address, "rest")) is not None:
            return _denied(throttled(wait))
        key = auth.lookup(presented)
        if key is None:
            auth.throttle.failed(address, "rest", request.url.path, "invalid API key")
            return _error(
                401, "not_authorized", "invalid API key", "use a key from the server's [server] keys"
            )
        try:
            cookie, session = sessions.open(Grant(key.name, key.scopes, sessions.fingerprint(key.key)))
        except ConfigError as exc:  # the state_dir cannot hold a signing key
            return _error(503, "unavailable", exc.message, exc.remedy)
        principal = auth.authenticated(key.name, key.scopes, session.expires_at)
        response = JSONResponse(_session_body(principal), headers=_NO_STORE)
        return _with_session(response, request, cookie, session, sessions.now())

    @router.delete(
        "/api/session", summary="Sign out (the session is refused from now on)", responses=errors(403)
    )
    async def sign_out(request: Request) -> Response:
        if (refused := _cross_origin(request)) is not None:
            return refused
        state = request.app.state.server
        sessions: Sessions = state.sessions
        session = sessions.verify(request.cookies.get(COOKIE) or "")
        if isinstance(session, Session):
            sessions.close(session)
        response = JSONResponse(_session_body(state.auth.anonymous()), headers=_NO_STORE)
        response.delete_cookie(
            COOKIE, path="/", secure=request.url.scheme == "https", httponly=True, samesite="strict"
        )
        return response

    @router.post(
        "/api/token",
        summary="A token for /ws?token= (valid 60 s, once), for a key or the session",
        responses=errors(401, 403, 429),
    )
    async def token(request: Request) -> Response:
        if (refused := _cross_origin(request)) is not None:
            return refused
        state = request.app.state.server
        found = identify(request, state.auth, state.sessions)
        if isinstance(found, Denied):
            return _denied(found)
        if not found.authenticated:
            return _error(
                401,
                "not_authorized",
                "a token needs an API key or a session" + (f" ({found.note})" if found.note else ""),
                "send Authorization: Bearer <key>, or sign in first (/login link, POST /api/session)",
            )
        try:
            value, expires_at = state.sessions.mint_token(Grant(found.name, found.scopes), found.expires_at)
        except OverflowError:
            return _error(
                429, "rate_limited", "too many unused tokens", "use the tokens you have, or wait 60 s"
            )
        return JSONResponse({"token": value, "expires_at": expires_at}, headers=_NO_STORE)

    return router
