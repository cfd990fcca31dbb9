"""Sign-in routes: `/login` (the one-time link `serve` prints), `/api/session` (who is signed in;
sign in with a key; sign out) and `/api/token` (a one-time WebSocket token). Their state — the
app's `Logins` — is `app.state.server.logins`; what a login is lives in server/logins.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import msgspec
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from brokerbridge.client import models
from brokerbridge.core.errors import ConfigError
from brokerbridge.server.access_tokens import Grant
from brokerbridge.server.auth import Authenticator, AuthThrottle, Principal
from brokerbridge.server.logins import (
    COOKIE,
    Denied,
    Login,
    Logins,
    client_address,
    identify,
    throttled,
)
from brokerbridge.server.rest_models import OpenApiModels


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


def _principal_body(principal: Principal, csrf_token: str | None = None) -> dict[str, object]:
    """`csrf_token`: the login's, for the `X-CSRF-Token` header of its order requests
    (server/csrf.py); None when the caller is not a signed-in browser."""
    return {
        "authenticated": principal.authenticated,
        "name": principal.name,
        "scopes": sorted(principal.scopes),
        "expires_at": principal.expires_at,
        "csrf_token": csrf_token,
    }


def cross_origin_refusal(request: Request) -> JSONResponse | None:
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


def with_cookie(response: Response, request: Request, cookie: str, login: Login, now: float) -> Response:
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=max(0, int(login.expires_at - now)),
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


def key_login(request: Request, presented: str) -> tuple[str, Login, Principal] | Denied:
    """Sign a browser in with the API key `presented`: the cookie, the login and who it is — or
    why not (a wrong key, never echoed; the address locked out). Failures count against the
    client's address. Raises ConfigError when the state_dir cannot hold the signing key."""
    state = request.app.state.server
    auth: Authenticator = state.auth
    logins: Logins = state.logins
    address = client_address(request)
    if (wait := auth.throttle.retry_after(address, "rest")) is not None:
        return throttled(wait)
    key = auth.lookup(presented)
    if key is None:
        auth.throttle.failed(address, "rest", request.url.path, "invalid API key")
        return Denied("invalid API key", "use a key from the server's [server] keys")
    cookie, opened = logins.open(Grant(key.name, key.scopes, logins.fingerprint(key.key)))
    return cookie, opened, auth.authenticated(key.name, key.scopes, opened.expires_at)


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
        logins: Logins = state.logins
        throttle: AuthThrottle = state.auth.throttle
        address = client_address(request)
        if code and (wait := throttle.retry_after(address, "rest")) is not None:
            return _denied(throttled(wait))
        grant = logins.redeem_code(code) if code else None
        if grant is None:
            if code:
                throttle.failed(address, "rest", request.url.path, "invalid, expired or used login code")
            return HTMLResponse(_BAD_LINK, status_code=401, headers=_NO_STORE)
        try:
            cookie, opened = logins.open(grant)
        except ConfigError as exc:
            return _error(503, "unavailable", exc.message, exc.remedy)
        response = RedirectResponse("/", status_code=303, headers=_NO_STORE)
        return with_cookie(response, request, cookie, opened, logins.now())

    @router.get(
        "/api/session",
        summary="Who this browser is signed in as, its scopes and its CSRF token (for X-CSRF-Token)",
        responses=errors(401, 429),
    )
    async def session_info(request: Request) -> Response:
        state = request.app.state.server
        found = identify(request, state.auth, state.logins)
        if isinstance(found, Denied):
            return _denied(found)
        logins: Logins = state.logins
        csrf = logins.csrf_token(found.login_id) if found.login_id is not None else None
        return JSONResponse(_principal_body(found, csrf), headers=_NO_STORE)

    @router.post(
        "/api/session",
        summary='Sign in with an API key: body {"key": "…"} → session cookie',
        responses=errors(400, 401, 403, 429, 503),
    )
    async def sign_in(request: Request) -> Response:
        if (refused := cross_origin_refusal(request)) is not None:
            return refused
        logins: Logins = request.app.state.server.logins
        try:
            presented = msgspec.json.decode(await request.body(), type=_KeyBody).key
        except msgspec.DecodeError:
            # Never echo the body: it may be a key with a typo.
            return _error(400, "invalid_request", 'the body must be JSON {"key": "<API key>"}')
        try:
            signed_in = key_login(request, presented)
        except ConfigError as exc:  # the state_dir cannot hold a signing key
            return _error(503, "unavailable", exc.message, exc.remedy)
        if isinstance(signed_in, Denied):
            return _denied(signed_in)
        cookie, opened, principal = signed_in
        response = JSONResponse(_principal_body(principal, logins.csrf_token(opened.id)), headers=_NO_STORE)
        return with_cookie(response, request, cookie, opened, logins.now())

    @router.delete(
        "/api/session", summary="Sign out (the session is refused from now on)", responses=errors(403)
    )
    async def sign_out(request: Request) -> Response:
        if (refused := cross_origin_refusal(request)) is not None:
            return refused
        state = request.app.state.server
        logins: Logins = state.logins
        signed_in = logins.verify(request.cookies.get(COOKIE) or "")
        if isinstance(signed_in, Login):
            logins.close(signed_in)
        response = JSONResponse(_principal_body(state.auth.anonymous()), headers=_NO_STORE)
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
        if (refused := cross_origin_refusal(request)) is not None:
            return refused
        state = request.app.state.server
        found = identify(request, state.auth, state.logins)
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
            value, expires_at = state.logins.mint_token(Grant(found.name, found.scopes), found.expires_at)
        except OverflowError:
            return _error(
                429, "rate_limited", "too many unused tokens", "use the tokens you have, or wait 60 s"
            )
        return JSONResponse({"token": value, "expires_at": expires_at}, headers=_NO_STORE)

    return router
