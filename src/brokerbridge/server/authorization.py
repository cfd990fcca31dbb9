"""The sign-in flow for third-party web apps: OAuth 2.0 authorization code with PKCE (RFC 6749
§4.1, RFC 7636 with S256 only). Pure logic on an injected clock; the routes and pages are
server/authorize_routes.py, the code exchange is `POST /api/tokens` (server/token_routes.py).

A web app on a listed origin sends the user's browser to `/authorize?response_type=code&
client_id=…&redirect_uri=…&scope=…&state=…&code_challenge=…&code_challenge_method=S256`. The
bridge shows its own consent page to a browser signed in to it (the login cookie, on the bridge's
origin only), and on Allow redirects back with a one-time code bound to the client id, the
redirect URI, the code challenge and what was consented to. The app trades the code and its
`code_verifier` for an access token. No client registration: `client_id` is the app's name as
the user sees it, and what keeps a code from going astray is that `redirect_uri`'s origin must be
in `server.allowed_origins` (else an error page, never a redirect) and that only the holder of the
verifier can redeem the code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from brokerbridge.core.clock import Clock
from brokerbridge.server.access_tokens import Grant
from brokerbridge.server.logins import MAX_PENDING

CODE_TTL = 60.0  # s an authorization code may wait for its exchange (RFC 6749 advises ≤ 10 min)
MAX_CLIENT_ID = 128
MAX_STATE = 1024
MAX_REDIRECT_URI = 2048
# RFC 7636 §4.1: 43 to 128 unreserved characters; an S256 challenge is 43 base64url characters.
VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")
PRINTABLE = re.compile(r"[^\x00-\x1f\x7f-\x9f\u2028\u2029]*")
# What a web app may ask for. `read` is market + account; `admin` is never handed to a browser app.
SCOPE_NAMES = ("read", "market", "account", "trade")
DEFAULT_SCOPE = "read"


def s256(verifier: str) -> str:
    """The S256 code challenge of `verifier`: BASE64URL(SHA256(ASCII(verifier))), unpadded."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of a URL, lowercased, as a browser's Origin header says it."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = parts.port
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port is not None and port != default else "")


@dataclass(frozen=True)
class AuthorizationRequest:
    """A checked `/authorize` request: what the consent page shows and the code is bound to.
    `scopes`: the scope names asked for, `read` expanded (a subset of market, account, trade)."""

    client_id: str
    redirect_uri: str
    state: str | None
    code_challenge: str
    scopes: frozenset[str]

    @property
    def origin(self) -> str:
        return origin_of(self.redirect_uri)

    def redirect(self, **answer: str) -> str:
        """`redirect_uri` with `answer` (and `state`, when the app sent one) added to its query."""
        fields = {**answer, **({"state": self.state} if self.state is not None else {})}
        joiner = "&" if urlsplit(self.redirect_uri).query else "?"
        return f"{self.redirect_uri.rstrip('?&')}{joiner}{urlencode(fields)}"


@dataclass(frozen=True)
class BadAuthorization:
    """An `/authorize` request refused. `request` set: `redirect_uri` was checked, so the error goes
    back to the app by redirect (`error` is the OAuth code); None: it is shown on an error page
    (a redirect to an unchecked URI could hand anything to anyone)."""

    error: str
    message: str
    remedy: str
    request: AuthorizationRequest | None = None


def parse_request(
    query: Mapping[str, str], allowed_origins: frozenset[str]
) -> AuthorizationRequest | BadAuthorization:
    """Check an authorization request's parameters (RFC 6749 §4.1.1, RFC 7636 §4.3): client_id
    and redirect_uri first (their mistakes are never redirected), then the rest."""
    client_id = query.get("client_id", "")
    if not client_id or len(client_id) > MAX_CLIENT_ID or not PRINTABLE.fullmatch(client_id):
        return BadAuthorization(
            "invalid_request",
            "client_id is missing or not a printable name of at most 128 characters",
            "send client_id: your app's name as the user should see it on the consent page",
        )
    redirect_uri = query.get("redirect_uri", "")
    if not redirect_uri:
        return BadAuthorization(
            "invalid_request",
            "redirect_uri is missing",
            "send the URL of your app's page that takes the code",
        )
    try:
        parts = urlsplit(redirect_uri)
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        parts = None
    if (
        parts is None
        or len(redirect_uri) > MAX_REDIRECT_URI
        or parts.scheme.lower() not in ("http", "https")
        or not parts.hostname
        or parts.fragment
        or "@" in parts.netloc
        or not PRINTABLE.fullmatch(redirect_uri)
    ):
        return BadAuthorization(
            "invalid_request",
            "redirect_uri is not an absolute http(s) URL without a fragment",
            "send the full URL of your app's page that takes the code, e.g. http://localhost:5173/callback",
        )
    if origin_of(redirect_uri) not in allowed_origins:
        return BadAuthorization(
            "invalid_request",
            f"redirect_uri's origin {origin_of(redirect_uri)} is not allowed on this bridge",
            "the bridge's operator lists the web apps it trusts in server.allowed_origins "
            "(BROKERBRIDGE_SERVER_ALLOWED_ORIGINS); ask them to add this origin",
        )
    state = query.get("state")
    if state is not None and (len(state) > MAX_STATE or not PRINTABLE.fullmatch(state)):
        return BadAuthorization(
            "invalid_request",
            "state is longer than 1024 characters or not printable",
            "send a short random state (e.g. 32 characters) and keep what it stands for in your app",
        )
    names = (query.get("scope") or DEFAULT_SCOPE).split()
    checked = AuthorizationRequest(client_id, redirect_uri, state, "", frozenset())
    if query.get("response_type") != "code":
        return BadAuthorization(
            "unsupported_response_type",
            "response_type must be code",
            "this bridge serves the authorization code flow with PKCE only",
            checked,
        )
    unknown = [name for name in names if name not in SCOPE_NAMES]
    if unknown:
        return BadAuthorization(
            "invalid_scope",
            f"unknown scope {unknown[0][:40]!r}",
            f"ask for some of: {', '.join(SCOPE_NAMES)} (space-separated; read = market account)",
            checked,
        )
    if query.get("code_challenge_method") != "S256":
        return BadAuthorization(
            "invalid_request",
            "code_challenge_method must be S256 (PKCE; plain is not accepted)",
            "send code_challenge=BASE64URL(SHA256(code_verifier)) and code_challenge_method=S256",
            checked,
        )
    challenge = query.get("code_challenge", "")
    if not CHALLENGE.fullmatch(challenge):
        return BadAuthorization(
            "invalid_request",
            "code_challenge is missing or not 43 base64url characters (an S256 challenge)",
            "send code_challenge=BASE64URL(SHA256(code_verifier)), unpadded",
            checked,
        )
    scopes = {"market", "account"} if "read" in names else set()
    scopes.update(name for name in names if name != "read")
    return AuthorizationRequest(client_id, redirect_uri, state, challenge, frozenset(scopes))


@dataclass(frozen=True)
class Consented:
    """What a code stands for: the request it answers, the grant the user consented to (the
    login's key name and fingerprint, the scopes granted) and the login that did (`login_id`: it
    may revoke the token; `not_after`: its expiry, past which the token is not renewed)."""

    request: AuthorizationRequest
    grant: Grant
    login_id: str
    not_after: float


@dataclass(frozen=True)
class Exchange:
    """A token request of grant_type authorization_code (RFC 6749 §4.1.3, RFC 7636 §4.5)."""

    code: str
    redirect_uri: str
    code_verifier: str
    client_id: str | None = None


@dataclass(frozen=True)
class BadExchange:
    """A refused exchange; `error` is the OAuth code (invalid_grant, invalid_request);
    `reused_token`: the code was redeemed before — the id of the token it gave, to revoke."""

    error: str
    message: str
    reused_token: str | None = None


class AuthorizationCodes:
    """One-time authorization codes on an injected clock (wall time), held by their SHA-256 (as
    login codes are, server/logins.py): a code lives CODE_TTL and is used up by the first attempt to
    redeem it, right or wrong. A code presented again within its lifetime is refused and names the
    token it gave, so the route revokes it (RFC 6749 §4.1.2: a code used twice means it leaked)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._pending: dict[bytes, tuple[Consented, float]] = {}
        self._spent: dict[bytes, tuple[str | None, float]] = {}  # digest → token id given, until

    def issue(self, consented: Consented) -> str:
        now = self._clock.time()
        for held in (self._pending, self._spent):
            for digest in [d for d, (_, until) in held.items() if until <= now]:
                del held[digest]
        if len(self._pending) >= MAX_PENDING:
            raise OverflowError("too many unused authorization codes")
        code = secrets.token_urlsafe(32)
        self._pending[_digest(code)] = (consented, now + CODE_TTL)
        return code

    def redeem(self, exchange: Exchange) -> Consented | BadExchange:
        """What the code stands for, if the exchange matches it: the same redirect_uri (and
        client_id, when sent) and a verifier whose S256 is the challenge."""
        digest = _digest(exchange.code)
        now = self._clock.time()
        spent = self._spent.get(digest)
        if spent is not None and now < spent[1]:
            return BadExchange("invalid_grant", "the authorization code was used already", spent[0])
        held = self._pending.pop(digest, None)
        if held is None or now >= held[1]:
            return BadExchange("invalid_grant", "the authorization code is not valid (unknown or expired)")
        consented, until = held
        self._spent[digest] = (None, until)
        request = consented.request
        if exchange.redirect_uri != request.redirect_uri:
            return BadExchange("invalid_grant", "redirect_uri is not the one the code was issued for")
        if exchange.client_id is not None and exchange.client_id != request.client_id:
            return BadExchange("invalid_grant", "client_id is not the one the code was issued for")
        if not VERIFIER.fullmatch(exchange.code_verifier):
            return BadExchange(
                "invalid_request", "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~"
            )
        if not hmac.compare_digest(s256(exchange.code_verifier), request.code_challenge):
            return BadExchange("invalid_grant", "code_verifier does not match the code_challenge")
        return consented

    def gave(self, code: str, token_id: str) -> None:
        """The exchange of `code` gave token `token_id` (revoked if the code comes again)."""
        digest = _digest(code)
        if digest in self._spent:
            self._spent[digest] = (token_id, self._spent[digest][1])


def _digest(code: str) -> bytes:
    return hashlib.sha256(code.encode("utf-8", "replace")).digest()
