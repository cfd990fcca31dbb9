"""Cross-origin access to `/api/*` and `/primary/*` (CORS), governed by `server.allowed_origins`.

Starlette's `CORSMiddleware` speaks the protocol — preflights answered, the listed Origin echoed
(never `*`), `Allow-Credentials`, exposed headers, `Vary: Origin`. `CrossOrigin` decides who
reaches it, because Starlette's own rules are not ours: it adds `Allow-Credentials: true` to every
answer that had an Origin, listed or not, and refuses a preflight with a bare text `400`.

- no `Origin`, or the server's own (Origin's host:port is the Host header): not cross-origin,
  passed on untouched;
- a listed origin: `CORSMiddleware` answers (a preflight it refuses — a method or header not
  allowed — gets the typed error body naming what, with the CORS headers it computed);
- any other origin: no CORS header at all, so the browser keeps the answer from the page; its
  preflight is refused with 403 and the typed error body, and each is logged at WARNING naming the
  origin and the setting to change (`Authenticator.origin_refused`, repeats limited).

The login cookie (`bb_session`) is a same-origin credential: a cross-origin request — from a
listed origin too — reaches the routes without it, so it is served as whatever else it presents
(an access token, a key) or as anonymous. A listed web app therefore gets the user's authority
only through an access token the user consented to (`/authorize`), never by riding the
dashboard's cookie, which stays SameSite=Strict. `/ws` handshakes are not ASGI requests: the gate
applies the same rules to them (server/gate.py).
"""

from __future__ import annotations

import json

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from brokerbridge.core.log_limit import clip
from brokerbridge.server.auth import Authenticator, same_origin
from brokerbridge.server.logins import COOKIE

GOVERNED = ("/api", "/primary")  # path prefixes served cross-origin
METHODS = ("GET", "POST", "PATCH", "DELETE")
HEADERS = ("Authorization", "Content-Type", "X-CSRF-Token", "X-Auth-Token", "X-Username", "X-Password")
EXPOSED = ("X-Auth-Token", "Retry-After")  # what a page may read of an answer besides the safe ones
MAX_AGE = 600  # s a browser may reuse a preflight's answer (Chromium caps it at 7200)
REMEDY = (
    "add the web app's origin (scheme://host:port, as the browser sends it) to server.allowed_origins "
    "(BROKERBRIDGE_SERVER_ALLOWED_ORIGINS), or serve the app from this server's origin (a dev server's "
    "proxy, a reverse proxy)"
)


def governed(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in GOVERNED)


class CrossOrigin:
    """ASGI middleware: CORS for `/api/*` and `/primary/*` per `auth.allowed_origins`."""

    def __init__(self, app: ASGIApp, auth: Authenticator) -> None:
        self._app = app
        self._auth = auth
        self._cors = CORSMiddleware(
            app,
            allow_origins=sorted(auth.allowed_origins),
            allow_methods=METHODS,
            allow_headers=HEADERS,
            allow_credentials=True,
            expose_headers=EXPOSED,
            max_age=MAX_AGE,
            # A listed page on a public address may call a bridge on the user's own machine or
            # network (Chromium asks first: Private Network Access); the operator listed it.
            allow_private_network=True,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not governed(scope["path"]):
            await self._app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None or same_origin(origin, headers.get("host")):
            await self._app(scope, receive, _vary_origin(send))
            return
        scope = without_login_cookie(scope)
        preflight = scope["method"] == "OPTIONS" and "access-control-request-method" in headers
        if self._auth.listed(origin):
            if not preflight:
                await self._cors(scope, receive, send)
                return
            answer = self._cors.preflight_response(request_headers=headers)
            if answer.status_code != 200:
                answer = _refused_preflight(answer, headers)
            await answer(scope, receive, send)
            return
        self._auth.origin_refused(origin, "preflight" if preflight else "request", scope["path"])
        if preflight:
            message = f"Origin {clip(origin, 80)} may not call this server's API"
            await _typed(403, "not_authorized", message, REMEDY, {"Vary": "Origin"})(scope, receive, send)
            return
        await self._app(scope, receive, _vary_origin(send))


def without_login_cookie(scope: Scope) -> Scope:
    """`scope` with the `bb_session` cookie taken out of its Cookie headers (the others kept)."""
    headers: list[tuple[bytes, bytes]] = []
    for name, value in scope["headers"]:
        if name == b"cookie":
            kept = [
                part
                for part in value.split(b";")
                if part.strip().partition(b"=")[0].strip() != COOKIE.encode()
            ]
            if not kept:
                continue
            value = b";".join(kept).strip()
        headers.append((name, value))
    return {**scope, "headers": headers}


def _vary_origin(send: Send) -> Send:
    """`send` adding `Vary: Origin`: what a governed path answers depends on the Origin (a cache
    must not hand a listed origin an answer made without CORS headers, nor the reverse)."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            vary = headers.get("vary")
            if vary is None:
                headers["Vary"] = "Origin"
            elif "origin" not in vary.lower():
                headers["Vary"] = f"{vary}, Origin"
        await send(message)

    return sending


def _refused_preflight(answer: Response, request: Headers) -> Response:
    """Starlette's text refusal of a listed origin's preflight, as the typed error body naming
    what was not allowed (its CORS headers kept, so the page can read why)."""
    failures = bytes(answer.body).decode().removeprefix("Disallowed CORS ").split(", ")
    method = request.get("access-control-request-method", "")
    wanted = request.get("access-control-request-headers", "")
    said = {
        "method": f"method {clip(method, 20)} (allowed: {', '.join(METHODS)})",
        "headers": f"headers {clip(wanted, 120)} (allowed: {', '.join(HEADERS)}, and the safelisted)",
    }
    what = "; ".join(said.get(failure, failure) for failure in failures)
    headers = {
        name: value
        for name, value in answer.headers.items()
        if name.lower() not in ("content-length", "content-type")
    }
    return _typed(
        400,
        "invalid_request",
        f"cross-origin request refused: {what}",
        "send only these methods and headers from the browser",
        headers,
    )


def _typed(status: int, code: str, message: str, remedy: str, headers: dict[str, str]) -> Response:
    body = {"error": {"code": code, "message": message, "remedy": remedy}}
    return Response(json.dumps(body), status_code=status, headers=headers, media_type="application/json")
