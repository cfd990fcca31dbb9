"""Cross-site request forgery defence for state-changing requests made with the login cookie.

The `bb_session` cookie is SameSite=Strict, but other ports of the same host are the same *site*,
and a browser sends the cookie with whatever such a page makes it send. So an order request made
with the cookie (a `Principal` with a `login_id`) must also pass two checks:

1. its `Origin` (when sent — every browser sends it on POST, PATCH and DELETE) is the server's own
   (Origin's host:port equals the Host header), and `Sec-Fetch-Site` does not say cross-site or
   same-site. A page of a listed origin (`server.allowed_origins`) is no exception: the cookie is
   a same-origin credential (server/cors.py does not even pass it on from another origin), and a
   listed web app acts with an access token the user consented to;
2. it carries the login's CSRF token in the `X-CSRF-Token` header (`Logins.csrf_token`: an HMAC of
   the login id). The page gets it from `GET /api/session` — which answers a page of another
   origin without the cookie, so without the token — and a forged request cannot carry it.

A request with an API key (`Authorization: Bearer`, `?key=`) or a `/ws` token needs neither: a
page of another origin cannot add the header, and does not hold the key. (`/ws` is guarded by the
Origin check of its handshake: server/gate.py.)
"""

from __future__ import annotations

import hmac

from starlette.requests import Request

from brokerbridge.server.auth import Principal, same_origin
from brokerbridge.server.logins import Logins

HEADER = "X-CSRF-Token"


def csrf_refusal(request: Request, principal: Principal, logins: Logins) -> str | None:
    """Why a state-changing request of `principal` is refused as possibly forged (None: it is not)."""
    if principal.login_id is None:
        return None
    origin = request.headers.get("origin")
    if origin is not None and not same_origin(origin, request.headers.get("host")):
        return f"Origin {origin[:80]!r} is not this server's"
    if request.headers.get("sec-fetch-site") in ("cross-site", "same-site"):
        return "a request from another site"
    sent = request.headers.get(HEADER.lower())
    if not sent:
        return f"no {HEADER} header"
    expected = logins.csrf_token(principal.login_id)
    if not hmac.compare_digest(expected.encode(), sent.encode("utf-8", "replace")):
        return f"the {HEADER} header is not this session's token"
    return None


CSRF_REMEDY = (
    f"from the dashboard's own page, send the session's token (csrf_token of GET /api/session) in "
    f"{HEADER}; a program should use an API key with the trade scope (Authorization: Bearer) instead"
)
