"""API tokens of the simulated Primary: issued by `POST /auth/getToken`, 24 h lifetime.

A token is 32 random bytes in base64 (44 characters ending in `=`, the documented form, §2.1).
Rules (documented choices where §10 leaves it open):
* REST and the WebSocket handshake need a token that is neither revoked nor older than the TTL.
* Logging in again revokes the user's previous tokens when `revoke_previous` (the Cocos/A3
  observation, §2.1); `removeToken` and the `invalidate_tokens` fault revoke too.
* An open socket whose token is *revoked* stays open but goes silent (no Md, no order reports), as
  observed on Cocos. A token that merely *ages* past 24 h does not silence a socket that is already
  open: nothing public says it does, and the socket was authorised at its handshake.

The book also keeps what a test of a client's session handling asks of the venue: why each token
ended (a later login, `removeToken`, the fault, or its age) and which tokens are in use — used for a
REST call or a handshake and not ended since — with the most ever in use at once.
"""

from __future__ import annotations

import base64
import enum
import random
from collections.abc import Iterable
from dataclasses import dataclass

TOKEN_TTL_S = 24 * 3600.0


class Ended(enum.StrEnum):
    """Why a token was revoked."""

    LOGIN = "login"  # the same user logged in again (`revoke_previous`)
    REMOVED = "removed"  # `removeToken`
    INVALIDATED = "invalidated"  # the `invalidate_tokens` fault


@dataclass(slots=True)
class Token:
    value: str
    user: str
    issued: float  # monotonic seconds
    revoked: Ended | None = None
    used: bool = False  # by a REST call or a WebSocket handshake
    last_used: float | None = None  # monotonic seconds of its last REST call or handshake

    def expired(self, now: float, ttl_s: float) -> bool:
        """Aged out: past the TTL without being revoked first."""
        return self.revoked is None and now - self.issued >= ttl_s


@dataclass(frozen=True, slots=True)
class TokenCounts:
    """The tokens' story so far (`TokenBook.counts`)."""

    issued: int
    live: int  # neither revoked nor expired
    in_use: int  # live and used at least once
    in_use_max: int  # the most in use at once
    revoked_by_login: int
    removed: int
    invalidated: int
    expired: int
    expired_refusals: int  # requests and handshakes refused for an expired token


class TokenBook:
    def __init__(self, rng: random.Random, ttl_s: float = TOKEN_TTL_S) -> None:
        self._rng = rng
        self.ttl_s = ttl_s
        self._tokens: dict[str, Token] = {}
        self._in_use_max = 0
        self._expired_refusals = 0

    def issue(self, user: str, now: float, *, revoke_previous: bool) -> tuple[Token, list[Token]]:
        """A new token for `user`, and the tokens this login revoked."""
        ended: list[Token] = []
        if revoke_previous:
            ended = self._end((t for t in self._tokens.values() if t.user == user), Ended.LOGIN)
        token = Token(base64.b64encode(self._rng.randbytes(32)).decode(), user, now)
        self._tokens[token.value] = token
        return token, ended

    def valid(self, value: str | None, now: float) -> Token | None:
        """The token if it may be used for a new request or handshake now."""
        token = self._tokens.get(value or "")
        if token is None or token.revoked is not None or now - token.issued >= self.ttl_s:
            return None
        return token

    def use(self, value: str | None, now: float) -> Token | None:
        """`valid`, and the token counted as in use (or the refusal of an expired one counted)."""
        token = self.valid(value, now)
        if token is None:
            known = self._tokens.get(value or "")
            if known is not None and known.expired(now, self.ttl_s):
                self._expired_refusals += 1
        else:
            token.last_used = now
            if not token.used:
                token.used = True
                self._in_use_max = max(self._in_use_max, self._in_use(now))
        return token

    def revoked(self, value: str) -> bool:
        token = self._tokens.get(value)
        return token is None or token.revoked is not None

    def revoke(self, value: str, why: Ended = Ended.REMOVED) -> list[Token]:
        """Revoke one token; the tokens this ended (none if it was unknown or ended already)."""
        token = self._tokens.get(value)
        return self._end([token] if token is not None else [], why)

    def revoke_all(self, why: Ended = Ended.INVALIDATED) -> list[Token]:
        return self._end(self._tokens.values(), why)

    def counts(self, now: float) -> TokenCounts:
        tokens = self._tokens.values()
        ended = [t.revoked for t in tokens if t.revoked is not None]
        return TokenCounts(
            issued=len(self._tokens),
            live=sum(1 for t in tokens if self.valid(t.value, now) is not None),
            in_use=self._in_use(now),
            in_use_max=self._in_use_max,
            revoked_by_login=ended.count(Ended.LOGIN),
            removed=ended.count(Ended.REMOVED),
            invalidated=ended.count(Ended.INVALIDATED),
            expired=sum(1 for t in tokens if t.expired(now, self.ttl_s)),
            expired_refusals=self._expired_refusals,
        )

    def live(self, now: float) -> list[Token]:
        """The tokens neither revoked nor expired now."""
        return [t for t in self._tokens.values() if self.valid(t.value, now) is not None]

    def _in_use(self, now: float) -> int:
        return sum(1 for t in self._tokens.values() if t.used and self.valid(t.value, now) is not None)

    @staticmethod
    def _end(tokens: Iterable[Token], why: Ended) -> list[Token]:
        ended = [t for t in tokens if t.revoked is None]
        for token in ended:
            token.revoked = why
        return ended
