"""`/authorize`: the sign-in flow's pages (server/authorization.py says what the flow is).

- `GET /authorize?…`: a browser signed in to the bridge (its cookie) sees the consent page; one that
  is not sees how to sign in (an API key form, or `serve`'s login link) and comes back. A request
  whose client_id or redirect_uri is not good — a redirect_uri whose origin is not in
  `server.allowed_origins` above all — gets an error page, never a redirect; its other mistakes go
  back to the app as OAuth errors (`error=…&state=…`).
- `POST /authorize` (the consent form, with the login's CSRF token): Allow → 303 to
  `redirect_uri?code=…&state=…`; Deny → `error=access_denied&state=…`.
- `POST /authorize/sign-in` (the key form) → the login cookie, and 303 back to `/authorize?…`.

Both forms are same-origin only (their Origin is checked, as for `/api/session`), and the pages
may not be framed.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from brokerbridge.core.config import ServerConfig
from brokerbridge.core.errors import ConfigError
from brokerbridge.core.log_limit import clip
from brokerbridge.server.access_tokens import Grant
from brokerbridge.server.authorization import (
    AuthorizationCodes,
    AuthorizationRequest,
    BadAuthorization,
    Consented,
    parse_request,
)
from brokerbridge.server.consent_pages import (
    Language,
    consent_page,
    error_page,
    headers,
    language,
    sign_in_page,
)
from brokerbridge.server.login_routes import cross_origin_refusal, key_login, with_cookie
from brokerbridge.server.logins import COOKIE, Denied, Login, Logins, identify
from brokerbridge.server.token_routes import form_fields, read_body

logger = logging.getLogger(__name__)

# The parameters of an authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3), carried through
# the forms; anything else a form posts is the form's own (csrf_token, decision, trade, key).
PARAMETERS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)


def make_router(codes: AuthorizationCodes) -> APIRouter:
    """The pages; `codes`: where an Allow leaves its code (redeemed by `POST /api/tokens`)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/authorize")
    async def authorize(request: Request) -> Response:
        lang = language(request.headers.get("accept-language"))
        repeated = next((n for n in PARAMETERS if len(request.query_params.getlist(n)) > 1), None)
        if repeated is not None:
            return _error_page(lang, f"{repeated} is given twice", "send each parameter once", 400)
        parameters = {n: request.query_params[n] for n in PARAMETERS if n in request.query_params}
        return _ask(request, lang, parameters)

    @router.post("/authorize")
    async def decide(request: Request) -> Response:
        lang = language(request.headers.get("accept-language"))
        posted = await _posted(request, lang)
        if isinstance(posted, Response):
            return posted
        fields, checked = posted
        state = request.app.state.server
        logins: Logins = state.logins
        found = identify(request, state.auth, logins)
        if isinstance(found, Denied):
            return _error_page(lang, found.message, found.remedy, found.status)
        if found.login_id is None:  # signed out meanwhile, or the session ended
            return _ask(request, lang, _parameters(fields))
        expected = logins.csrf_token(found.login_id).encode()
        if not hmac.compare_digest(expected, fields.get("csrf_token", "").encode("utf-8", "replace")):
            return _error_page(
                lang,
                "this form is not of this browser's session",
                "go back to the app and start signing in again",
                403,
            )
        decision = fields.get("decision")
        if decision == "deny":
            return _redirect(checked.redirect(error="access_denied"))
        if decision != "allow":
            return _error_page(lang, "the form says neither allow nor deny", "use the page's buttons", 400)
        granted = frozenset(
            s for s in checked.scopes if found.allows(s) and (s != "trade" or fields.get("trade") == "on")
        )
        if not granted:
            return _redirect(
                checked.redirect(
                    error="access_denied", error_description="the session holds none of the scopes asked"
                )
            )
        login = logins.verify(request.cookies.get(COOKIE, ""))
        assert isinstance(login, Login)  # identify found this login a moment ago
        grant = Grant(login.grant.name, granted, login.grant.fingerprint, login.grant.user)
        try:
            code = codes.issue(Consented(checked, grant, login.id, login.expires_at))
        except OverflowError:
            return _error_page(
                lang, "too many sign-ins waiting for their exchange", "try again in a minute", 503
            )
        logger.info(
            "web app %s at %s authorized by %s: %s",
            clip(checked.client_id, 60),
            checked.origin,
            f"key {found.name!r}" if found.name else "a login-link session",
            ", ".join(sorted(granted)),
        )
        return _redirect(checked.redirect(code=code))

    @router.post("/authorize/sign-in")
    async def sign_in(request: Request) -> Response:
        lang = language(request.headers.get("accept-language"))
        posted = await _posted(request, lang)
        if isinstance(posted, Response):
            return posted
        fields, checked = posted
        logins: Logins = request.app.state.server.logins
        try:
            signed_in = key_login(request, fields.get("key", ""))
        except ConfigError as exc:
            return _error_page(lang, exc.message, exc.remedy, 503)
        parameters = _parameters(fields)
        if isinstance(signed_in, Denied):
            page = sign_in_page(lang, checked, fields=parameters, error=signed_in.message)
            return HTMLResponse(page, signed_in.status, {**headers(), **signed_in.headers})
        cookie, opened, _ = signed_in
        back = RedirectResponse(f"/authorize?{urlencode(parameters)}", 303, headers=headers())
        return with_cookie(back, request, cookie, opened, logins.now())

    return router


def _ask(request: Request, lang: Language, parameters: dict[str, str]) -> Response:
    """The page for an authorization request: consent, sign in first, or why not (an error page,
    or the error back to the app)."""
    state = request.app.state.server
    config: ServerConfig = state.settings.config
    logins: Logins = state.logins
    checked = parse_request(parameters, state.auth.allowed_origins)
    if isinstance(checked, BadAuthorization):
        return _refused(lang, checked)
    found = identify(request, state.auth, logins)
    if isinstance(found, Denied):
        return _error_page(lang, found.message, found.remedy, found.status)
    if found.login_id is None:
        page = sign_in_page(lang, checked, fields=parameters)
        return HTMLResponse(page, headers=headers())
    fields = {**parameters, "csrf_token": logins.csrf_token(found.login_id)}
    held = frozenset(s for s in ("market", "account", "trade") if found.allows(s))
    left = (found.expires_at or logins.now()) - logins.now()
    page = consent_page(
        lang,
        checked,
        fields=fields,
        who=found.name,
        held=held,
        ttl=config.access_token_ttl,
        renew_for=min(config.access_token_max_age, left),
    )
    return HTMLResponse(page, headers=headers(form_target=checked.origin))


async def _posted(request: Request, lang: Language) -> tuple[dict[str, str], AuthorizationRequest] | Response:
    """A form's fields and its authorization request, checked again (the form is the browser's to
    change), or the page refusing it: not from this site, not a form, a request not good."""
    if cross_origin_refusal(request) is not None:
        return _error_page(lang, "the form was sent from another site", "use this page's own buttons", 403)
    body = await read_body(request)
    fields = "the form is too long" if body is None else form_fields(body)
    if isinstance(fields, str):
        return _error_page(lang, fields, "use the page's own form", 400)
    checked = parse_request(_parameters(fields), request.app.state.server.auth.allowed_origins)
    return _refused(lang, checked) if isinstance(checked, BadAuthorization) else (fields, checked)


def _refused(lang: Language, refused: BadAuthorization) -> Response:
    if refused.request is None:  # client_id or redirect_uri not good: never redirect
        return _error_page(lang, refused.message, refused.remedy, 400)
    return _redirect(refused.request.redirect(error=refused.error, error_description=refused.message))


def _parameters(fields: Mapping[str, Any]) -> dict[str, str]:
    return {name: fields[name] for name in PARAMETERS if name in fields}


def _redirect(url: str) -> Response:
    return RedirectResponse(url, 303, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


def _error_page(lang: Language, message: str, remedy: str, status: int) -> Response:
    return HTMLResponse(error_page(lang, message, remedy), status, headers())
