"""Access tokens: short-lived bearer tokens with scopes, for browsers and programs that must not hold
an API key (a third-party front end, a pyRofex script logging in at `/primary/auth/getToken`).

A token is `bbt.<claims>.<signature>`: base64url JSON claims (id, key or user name, scopes, expiry,
renewal limit, the credential's fingerprint) and an HMAC-SHA256 under the login store's signing key
— the key that signs the `bb_session` cookie, with its own domain tag, so a cookie is never a token
nor the reverse. Stateless: tokens survive a restart of `serve` and cost no memory per token. What
is kept is what a stateless token cannot say by itself: the ids of revoked tokens (with the ids of
signed-out logins, in `state_dir`, until they would have expired anyway).

A token is checked against the config as it stands at every use (server/logins.py `identify`): its
key or user removed or changed (the fingerprint) refuses it; scopes the key lost are dropped.
Renewal gives a new token with the same id, grant and renewal limit: revoking the id ends the whole
chain, and nothing renews past `renew_until`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import msgspec

from brokerbridge.core.clock import Clock
from brokerbridge.core.config import SCOPES

PREFIX = "bbt."
DEFAULT_TTL = 900.0  # 15 minutes: a stolen browser token is worth little for long
DEFAULT_RENEW_FOR = 12 * 3600.0  # renewals stop this long after the first token of a chain
MAX_TOKEN_LENGTH = 2048  # anything longer is not ours (bounded before it is decoded)
# Why `verify` refused a text that is no token of ours: a guess or garbage (what the failed-auth
# throttle counts). An expired or revoked token was ours — its holder is no guesser, and many
# clients of one address whose tokens expire together must not lock that address out.
NOT_OURS = "the token was not issued by this server"
MALFORMED = "the token is malformed"
FORGED = frozenset({NOT_OURS, MALFORMED})


@dataclass(frozen=True)
class Grant:
    """What a credential carries — a login cookie, a one-time code or token, an access token: the
    key's or user's name (None: the login link), whether that name is a bridge-local user's
    (`user`), the scopes, and a fingerprint of the credential's value (None: the login link), so
    changing that credential ends what it granted."""

    name: str | None
    scopes: frozenset[str]
    fingerprint: str | None = None
    user: bool = False


@dataclass(frozen=True)
class AccessToken:
    """A valid token, as `verify` read it."""

    id: str
    grant: Grant
    expires_at: float  # wall time
    renew_until: float


class Issued(msgspec.Struct, frozen=True):
    """A token as handed out (`POST /api/tokens`, getToken): the text to present, its id (for
    revocation), when it expires and until when it can be renewed, and its scopes."""

    token: str
    id: str
    expires_at: float
    renew_until: float
    scopes: list[str]


class _Claims(msgspec.Struct, frozen=True):
    i: str  # token id (for revocation; kept across renewals)
    n: str | None  # key or user name
    u: bool  # n is a bridge-local user's name
    s: list[str]  # scopes
    e: float  # expiry, wall time
    r: float  # renewal limit, wall time
    f: str | None  # credential fingerprint


class Revocations(Protocol):
    """Where revoked ids are kept (the app's `Logins`, which keeps signed-out logins the same way)."""

    def is_revoked(self, id_: str) -> bool: ...

    def revoke_id(self, id_: str, until: float) -> None: ...


class AccessTokens:
    """Mint, verify, renew and revoke access tokens on an injected clock (wall time)."""

    def __init__(
        self,
        signing_key: Callable[[bool], bytes | None],
        revocations: Revocations,
        *,
        clock: Clock,
        default_ttl: float = DEFAULT_TTL,
        renew_for: float = DEFAULT_RENEW_FOR,
    ) -> None:
        # signing_key(create): the login store's key (None: none yet, so no token can be valid).
        self._key = signing_key
        self._revocations = revocations
        self._clock = clock
        self.default_ttl = default_ttl
        self.renew_for = renew_for

    def mint(self, grant: Grant, *, ttl: float | None = None, renew_until: float | None = None) -> Issued:
        """A new token chain for `grant`, valid `ttl` (default `default_ttl`), renewable until
        `renew_until` (default now + `renew_for`); never valid past `renew_until`."""
        now = self._clock.time()
        limit = now + self.renew_for if renew_until is None else renew_until
        return self._issue(secrets.token_urlsafe(12), grant, now, ttl, limit)

    def verify(self, text: str) -> AccessToken | str:
        """The token `text` stands for, or why it does not stand for one (words for the caller)."""
        key = self._key(False)
        if key is None or not text.startswith(PREFIX) or len(text) > MAX_TOKEN_LENGTH:
            return NOT_OURS
        payload, dot, signature = text[len(PREFIX) :].partition(".")
        if not dot:
            return NOT_OURS
        # The signature's text is compared (one accepted spelling per token, as for the cookie).
        expected = b64(_sign(payload, key)).encode()
        if not hmac.compare_digest(expected, signature.encode("utf-8", "replace")):
            return NOT_OURS
        try:
            claims = msgspec.json.decode(unb64(payload), type=_Claims)
        except (binascii.Error, ValueError, msgspec.DecodeError):
            return MALFORMED
        if self._clock.time() >= claims.e:
            return "the token expired"
        if self._revocations.is_revoked(claims.i):
            return "the token was revoked"
        grant = Grant(claims.n, frozenset(claims.s) & frozenset(SCOPES), claims.f, claims.u)
        return AccessToken(claims.i, grant, claims.e, claims.r)

    def renew(self, text: str, *, ttl: float | None = None) -> Issued | str:
        """A fresh token of the same chain (id, grant, renewal limit), or why not."""
        found = self.verify(text)
        if isinstance(found, str):
            return found
        now = self._clock.time()
        if now >= found.renew_until:
            return "the token can no longer be renewed: sign in again"
        return self._issue(found.id, found.grant, now, ttl, found.renew_until)

    def revoke(self, token: AccessToken) -> None:
        """End `token`'s chain for good (also across restarts)."""
        self._revocations.revoke_id(token.id, token.renew_until)

    def _issue(self, id_: str, grant: Grant, now: float, ttl: float | None, limit: float) -> Issued:
        key = self._key(True)
        assert key is not None  # create=True makes one or raises ConfigError
        expires_at = min(now + (self.default_ttl if ttl is None else ttl), limit)
        scopes = sorted(grant.scopes)
        claims = _Claims(
            i=id_, n=grant.name, u=grant.user, s=scopes, e=expires_at, r=limit, f=grant.fingerprint
        )
        payload = b64(msgspec.json.encode(claims))
        token = f"{PREFIX}{payload}.{b64(_sign(payload, key))}"
        return Issued(token=token, id=id_, expires_at=expires_at, renew_until=limit, scopes=scopes)


def is_access_token(text: str) -> bool:
    return text.startswith(PREFIX)


def _sign(payload: str, key: bytes) -> bytes:
    return hmac.new(key, b"access-token\0" + payload.encode(), hashlib.sha256).digest()


def b64(data: bytes) -> str:
    """base64url without padding: the spelling of cookies and tokens (server/logins.py too)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
