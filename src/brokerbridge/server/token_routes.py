"""Access-token routes: `POST /api/tokens` (mint one from an API key or a dashboard session — or,
with `grant_type=authorization_code`, redeem a code of the sign-in flow), `POST
/api/tokens/renew`, `DELETE /api/tokens/{id}`. The tokens themselves are server/access_tokens.py
(`logins.access`); the sign-in flow's codes are server/authorization.py.

A token never carries more than its minter holds: the scopes asked for (`read` = market +
account; default `read`) must be the caller's, and one minted by a browser session is not renewed
past that session's end. A token cannot mint tokens (it renews itself instead), so nothing outlives
its chain's `renew_until`. Who minted each chain is remembered in memory (`Minters`), so the key or
session that minted a token may revoke it; after a restart only the token itself or an admin key can.

Answers carry the token's fields (`token`, `id`, `expires_at`, `renew_until`, `scopes`) and the same
in OAuth 2.0's words (`access_token`, `token_type`, `expires_in`, `scope`), so OAuth client libraries
read the code exchange as they read any other. Errors of the exchange are OAuth's (`{"error":
"invalid_grant", "error_description": …}`, RFC 6749 §5.2); the other routes answer the bridge's
typed error body.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Union
from urllib.parse import parse_qsl

import msgspec
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from brokerbridge.core.config import ServerConfig, expand_scopes
from brokerbridge.core.errors import ConfigError
from brokerbridge.server.access_tokens import Grant, Issued, is_access_token
from brokerbridge.server.auth import Authenticator, Principal, presented_key
from brokerbridge.server.authorization import AuthorizationCodes, BadExchange, Exchange
from brokerbridge.server.csrf import HEADER, csrf_refusal
from brokerbridge.server.logins import COOKIE, Denied, Login, Logins, client_address, identify
from brokerbridge.server.rest_models import OpenApiModels

MAX_BODY = 16 * 1024  # a token request is a few hundred bytes
MIN_TTL = 10.0
MAX_MINTERS = 100_000  # chains whose minter is remembered at once (the oldest forgotten first)
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class TokenRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /api/tokens` (JSON) from a key or a session: the scopes wanted (default `read`) and
    the lifetime in seconds (default and at most `server.access_token_ttl`)."""

    scopes: list[str] | None = None
    ttl_s: float | None = None


class OAuthError(msgspec.Struct, frozen=True):
    """An error of the code exchange, in OAuth 2.0's shape (RFC 6749 §5.2), which OAuth client
    libraries read; every other error of these routes is the bridge's `ErrorResponse`."""

    error: str
    error_description: str


class TokenAnswer(msgspec.Struct, frozen=True):
    """A token handed out: as the bridge says it, then as OAuth 2.0 does (RFC 6749 §5.1)."""

    token: str
    id: str  # the chain's id: DELETE /api/tokens/{id}
    expires_at: float  # wall time
    renew_until: float  # wall time: POST /api/tokens/renew works until then
    scopes: list[str]
    access_token: str
    token_type: str
    expires_in: int  # seconds
    scope: str  # space-separated

    @classmethod
    def of(cls, issued: Issued, now: float) -> TokenAnswer:
        return cls(
            token=issued.token,
            id=issued.id,
            expires_at=issued.expires_at,
            renew_until=issued.renew_until,
            scopes=issued.scopes,
            access_token=issued.token,
            token_type="Bearer",
            expires_in=max(0, math.floor(issued.expires_at - now)),
            scope=" ".join(issued.scopes),
        )


class Revoked(msgspec.Struct, frozen=True):
    revoked: str  # the chain's id


class Minters:
    """Who minted each token chain: `key:<name>` or `login:<id>` (in memory, bounded)."""

    def __init__(self) -> None:
        self._by_id: OrderedDict[str, tuple[str, float]] = OrderedDict()  # id → minter, renew_until

    def add(self, issued: Issued, minter: str, now: float) -> None:
        for id_ in [i for i, (_, until) in self._by_id.items() if until <= now]:
            del self._by_id[id_]
        self._by_id[issued.id] = (minter, issued.renew_until)
        if len(self._by_id) > MAX_MINTERS:
            self._by_id.popitem(last=False)

    def minter(self, id_: str) -> tuple[str, float] | None:
        return self._by_id.get(id_)


def minter_of(principal: Principal) -> str | None:
    """How `Minters` names the caller: its login, or its key (None: neither)."""
    if principal.login_id is not None:
        return f"login:{principal.login_id}"
    if principal.token_id is None and principal.name is not None:
        return f"key:{principal.name}"
    return None


def _error(
    status: int, code: str, message: str, remedy: str = "", headers: Mapping[str, str] = {}
) -> Response:
    body = {"error": {"code": code, "message": message, "remedy": remedy}}
    return JSONResponse(body, status_code=status, headers={**_NO_STORE, **headers})


def _denied(found: Denied) -> Response:
    return _error(found.status, found.code, found.message, found.remedy, found.headers)


def _with_oauth_errors(
    schemas: OpenApiModels, responses: dict[int | str, dict[str, Any]]
) -> dict[int | str, dict[str, Any]]:
    """`responses` of the mint route, where 400, 429 and 503 may also be the code exchange's
    OAuth error (so /openapi.json is true of both shapes)."""
    oauth = schemas.of(OAuthError)
    for status in (400, 429, 503):
        bridge_error = responses[status]["model"]
        responses[status] = {"model": Union[bridge_error, oauth]}  # noqa: UP007
    return responses


def _oauth_error(
    error: str, description: str, status: int = 400, headers: Mapping[str, str] = {}
) -> Response:
    body = {"error": error, "error_description": description}
    return JSONResponse(body, status_code=status, headers={**_NO_STORE, **headers})


def _answer(issued: Issued, logins: Logins) -> Response:
    body = msgspec.json.encode(TokenAnswer.of(issued, logins.now()))
    return Response(body, media_type="application/json", headers=_NO_STORE)


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes | None:
    """The request's body, or None when it is longer than `limit` bytes (read no further)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def form_fields(body: bytes) -> dict[str, str] | str:
    """An `application/x-www-form-urlencoded` body as its fields, or why it is not one (a field
    given twice is refused: OAuth's parameters must not repeat)."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        return "the form is not UTF-8"
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            return f"field {name[:40]!r} is given twice"
        fields[name] = value
    return fields


def make_router(codes: AuthorizationCodes) -> APIRouter:
    """The token routes; `codes`: the sign-in flow's authorization codes (shared with /authorize)."""
    router = APIRouter(prefix="/api/tokens", tags=["tokens"])
    schemas = OpenApiModels()
    minters = Minters()
    mint_body = schemas.of(TokenRequest).model_json_schema()
    exchange_form = {
        "type": "object",
        "required": ["grant_type", "code", "redirect_uri", "code_verifier"],
        "properties": {
            name: {"type": "string"}
            for name in ("grant_type", "code", "redirect_uri", "code_verifier", "client_id")
        },
    }

    @router.post(
        "",
        summary="Mint an access token (bbt.…) from an API key or a session; or redeem a sign-in code",
        description=(
            'JSON `{"scopes": ["read"], "ttl_s": 900}` with `Authorization: Bearer <API key>`, or with '
            "the session cookie and `X-CSRF-Token`. With `grant_type=authorization_code` (a form or "
            "JSON: `code`, `redirect_uri`, `code_verifier`, `client_id`): the code exchange of the "
            "sign-in flow (`/authorize`); its errors are OAuth 2.0's `{error, error_description}`."
        ),
        responses=_with_oauth_errors(schemas, schemas.responses(TokenAnswer, 400, 401, 403, 413, 429, 503)),
        openapi_extra={
            "requestBody": {
                "content": {
                    "application/json": {"schema": mint_body},
                    "application/x-www-form-urlencoded": {"schema": exchange_form},
                }
            }
        },
    )
    async def mint(request: Request) -> Response:
        state = request.app.state.server
        body = await read_body(request)
        if body is None:
            return _error(413, "invalid_request", f"the body is longer than {MAX_BODY} bytes")
        kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if kind == "application/x-www-form-urlencoded":
            fields = form_fields(body)
            if isinstance(fields, str):
                return _oauth_error("invalid_request", fields)
            return await _exchange(request, fields, state, codes, minters)
        if body.strip():
            try:
                decoded = msgspec.json.decode(body)
            except msgspec.DecodeError:
                return _error(400, "malformed", "the body is not JSON", 'send {"scopes": ["read"]}')
            if isinstance(decoded, dict) and "grant_type" in decoded:
                if not all(isinstance(v, str) for v in decoded.values()):
                    return _oauth_error("invalid_request", "every field of a code exchange is a string")
                return await _exchange(request, decoded, state, codes, minters)
        try:
            asked = msgspec.json.decode(body.strip() or b"{}", type=TokenRequest)
        except msgspec.ValidationError as exc:
            return _error(
                400,
                "invalid_request",
                f"not a token request: {exc}",
                'e.g. {"scopes": ["read"], "ttl_s": 900}',
            )
        return _mint(request, asked, state, minters)

    @router.post(
        "/renew",
        summary="A fresh token of the same chain, from a valid one (Authorization: Bearer bbt.…)",
        responses=schemas.responses(TokenAnswer, 400, 401, 429),
    )
    async def renew(request: Request) -> Response:
        state = request.app.state.server
        logins: Logins = state.logins
        found = identify(request, state.auth, logins)
        if isinstance(found, Denied):
            return _denied(found)
        text = _presented_token(request)
        if found.token_id is None or text is None:
            return _error(
                401,
                "not_authorized",
                "renewing needs the access token to renew",
                "send it as Authorization: Bearer bbt.… (or X-Auth-Token); without one, mint a new "
                "token: POST /api/tokens",
            )
        renewed = logins.access.renew(text)
        if isinstance(renewed, str):
            return _error(401, "not_authorized", f"access token not renewed: {renewed}", _SIGN_IN_AGAIN)
        return _answer(renewed, logins)

    @router.delete(
        "/{token_id}",
        summary="Revoke a token chain: by the token, the key or session that minted it, or an admin key",
        responses=schemas.responses(Revoked, 400, 401, 403, 429),
    )
    async def revoke(request: Request, token_id: str) -> Response:
        state = request.app.state.server
        logins: Logins = state.logins
        config: ServerConfig = state.settings.config
        found = _caller(
            request,
            "revoking a token needs the token, the key or session that minted it, or an admin key",
            "send Authorization: Bearer <the token or the key>",
        )
        if isinstance(found, Response):
            return found
        if found.login_id is not None and (why := csrf_refusal(request, found, logins)) is not None:
            return _error(
                403, "not_authorized", f"revocation refused as possibly cross-site: {why}", _CSRF_REMEDY
            )
        if len(token_id) > 64 or not token_id.isascii() or not token_id.isprintable():
            return _error(400, "invalid_request", "not a token id", "use the id POST /api/tokens answered")
        minted = minters.minter(token_id)
        mine = minted is not None and minted[0] == minter_of(found)
        if not (found.token_id == token_id or mine or found.allows("admin")):
            return _error(
                403,
                "not_authorized",
                "only the token itself, the key or session that minted it, or an admin key may revoke it",
                "send the token (Authorization: Bearer bbt.…) or the key that minted it",
            )
        until = minted[1] if minted is not None else logins.now() + config.access_token_max_age
        logins.revoke_id(token_id, until)
        return Response(
            msgspec.json.encode(Revoked(token_id)), media_type="application/json", headers=_NO_STORE
        )

    return router


_SIGN_IN_AGAIN = "mint a new token (POST /api/tokens), or sign in again (/authorize)"
_CSRF_REMEDY = (
    f"from the dashboard's own page, send the session's token (csrf_token of GET /api/session) in "
    f"{HEADER}; a web app on another origin gets its token by the sign-in flow (/authorize)"
)


def _presented_token(request: Request) -> str | None:
    """The access token a request presents in a header (`Authorization: Bearer`, `X-Auth-Token`)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("x-auth-token") or None


def _caller(request: Request, needs: str, remedy: str) -> Principal | Response:
    """Who is asking, if authenticated: else the 401 (`needs`: what for; with why a cookie did not
    count, when one was sent), or the refusal of a bad credential."""
    state = request.app.state.server
    found = identify(request, state.auth, state.logins)
    if isinstance(found, Denied):
        return _denied(found)
    if not found.authenticated:
        return _error(401, "not_authorized", needs + (f" ({found.note})" if found.note else ""), remedy)
    return found


def _mint(request: Request, asked: TokenRequest, state: Any, minters: Minters) -> Response:
    """A token for the caller (a key, or a session with its CSRF token), at most its scopes."""
    auth: Authenticator = state.auth
    logins: Logins = state.logins
    config: ServerConfig = state.settings.config
    found = _caller(
        request,
        "minting a token needs an API key or a session",
        "send Authorization: Bearer <API key>, or from the dashboard's page the session cookie and "
        f"{HEADER}; a web app on another origin uses the sign-in flow (/authorize)",
    )
    if isinstance(found, Response):
        return found
    if found.token_id is not None:
        return _error(
            403,
            "not_authorized",
            "an access token cannot mint tokens",
            "renew it (POST /api/tokens/renew), or mint with an API key or a session",
        )
    presented = presented_key(request.headers, request.query_params)
    if found.login_id is None and (presented is None or is_access_token(presented)):
        # A one-time WebSocket token (?token=) is for /ws: it would turn a 60 s pass into a chain.
        return _error(
            403,
            "not_authorized",
            "only an API key or a session mints tokens",
            "send Authorization: Bearer <API key>, or the session cookie and its X-CSRF-Token",
        )
    if found.login_id is not None and (why := csrf_refusal(request, found, logins)) is not None:
        return _error(403, "not_authorized", f"token refused as possibly cross-site: {why}", _CSRF_REMEDY)
    try:
        scopes = expand_scopes(asked.scopes if asked.scopes is not None else ["read"])
    except ValueError as exc:
        return _error(400, "invalid_request", str(exc), "scopes: read, market, account, trade, admin")
    if asked.scopes is None:  # the default asks for what the caller can see, not more
        scopes = frozenset(s for s in scopes if found.allows(s))
    lacking = sorted(s for s in scopes if not found.allows(s))
    if not scopes or lacking:
        who = f"key {found.name!r}" if found.login_id is None else "this session"
        what = f"lacks {', '.join(repr(s) for s in lacking)}" if lacking else "has none of the scopes asked"
        return _error(
            403,
            "not_authorized",
            f"{who} {what}: a token gets a part of its minter's scopes, never more",
            f"ask for some of: {', '.join(sorted(found.scopes))}",
        )
    ttl = config.access_token_ttl if asked.ttl_s is None else asked.ttl_s
    if not MIN_TTL <= ttl <= config.access_token_ttl:
        return _error(
            400,
            "invalid_request",
            f"ttl_s must be from {MIN_TTL:g} to {config.access_token_ttl:g} seconds",
            "leave it out for the longest (server.access_token_ttl); renew before it ends",
        )
    now = logins.now()
    renew_until = now + config.access_token_max_age
    if found.login_id is not None:
        login = logins.verify(request.cookies.get(COOKIE, ""))
        assert isinstance(login, Login)  # identify found this login a moment ago
        grant = Grant(login.grant.name, scopes, login.grant.fingerprint, login.grant.user)
        renew_until = min(renew_until, login.expires_at)
    else:
        key = auth.key_named(found.name or "")
        assert key is not None  # a principal with a name and neither login nor token: a key
        grant = Grant(key.name, scopes, logins.fingerprint(key.key))
    try:
        issued = logins.access.mint(grant, ttl=ttl, renew_until=renew_until)
    except ConfigError as exc:  # the state_dir cannot hold the signing key
        return _error(503, "unavailable", exc.message, exc.remedy)
    minter = minter_of(found)
    assert minter is not None
    minters.add(issued, minter, now)
    return _answer(issued, logins)


async def _exchange(
    request: Request, fields: Mapping[str, str], state: Any, codes: AuthorizationCodes, minters: Minters
) -> Response:
    """The code exchange of the sign-in flow (RFC 6749 §4.1.3, RFC 7636 §4.6)."""
    auth: Authenticator = state.auth
    logins: Logins = state.logins
    config: ServerConfig = state.settings.config
    if fields.get("grant_type") != "authorization_code":
        return _oauth_error("unsupported_grant_type", "grant_type must be authorization_code")
    missing = [name for name in ("code", "redirect_uri", "code_verifier") if not fields.get(name)]
    if missing:
        return _oauth_error("invalid_request", f"missing {', '.join(missing)}")
    address = client_address(request)
    if (wait := auth.throttle.retry_after(address, "rest")) is not None:
        seconds = math.ceil(wait)
        return _oauth_error(
            "invalid_request",
            f"too many failed authentications from this address: try again in {seconds} s",
            429,
            {"Retry-After": str(seconds)},
        )
    exchange = Exchange(
        fields["code"], fields["redirect_uri"], fields["code_verifier"], fields.get("client_id")
    )
    consented = codes.redeem(exchange)
    if isinstance(consented, BadExchange):
        if consented.reused_token is not None:  # the code leaked: what it gave is revoked
            logins.revoke_id(consented.reused_token, logins.now() + config.access_token_max_age)
        auth.throttle.failed(address, "rest", request.url.path, f"code exchange refused: {consented.message}")
        return _oauth_error(consented.error, consented.message)
    if logins.is_revoked(consented.login_id):
        return _oauth_error("invalid_grant", "the session that consented has signed out")
    now = logins.now()
    renew_until = min(now + config.access_token_max_age, consented.not_after)
    try:
        issued = logins.access.mint(consented.grant, ttl=config.access_token_ttl, renew_until=renew_until)
    except ConfigError as exc:
        return _oauth_error("temporarily_unavailable", exc.message, 503)
    codes.gave(fields["code"], issued.id)
    minters.add(issued, f"login:{consented.login_id}", now)
    return _answer(issued, logins)
