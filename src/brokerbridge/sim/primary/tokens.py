"""API tokens of the simulated Primary: issued by `POST /auth/getToken`, 24 h lifetime.

A token is 32 random bytes in base64 (44 characters ending in `=`, the documented form, §2.1).
Rules (documented choices where §10 leaves it open):
* REST and the WebSocket handshake need a token that is neither revoked nor older than the TTL.
* Logging in again revokes the user's previous tokens when `revoke_previous` (the Cocos/A3
  observation, §2.1); `removeToken` and the `invalidate_tokens` fault revoke too.
* An open socket whose token is *revoked* stays open but goes silent (no Md, no order reports), as
  observed on Cocos. A token that merely *ages* past 24 h does not silence a socket that is already
  open: nothing public says it does, and the socket was authorised at its handshake.
"""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass

TOKEN_TTL_S = 24 * 3600.0


@dataclass(slots=True)
class Token:
    value: str
    user: str
    issued: float  # monotonic seconds
    revoked: bool = False


class TokenBook:
    def __init__(self, rng: random.Random, ttl_s: float = TOKEN_TTL_S) -> None:
        self._rng = rng
        self.ttl_s = ttl_s
        self._tokens: dict[str, Token] = {}

    def issue(self, user: str, now: float, *, revoke_previous: bool) -> Token:
        if revoke_previous:
            for token in self._tokens.values():
                if token.user == user:
                    token.revoked = True
        token = Token(base64.b64encode(self._rng.randbytes(32)).decode(), user, now)
        self._tokens[token.value] = token
        return token

    def valid(self, value: str | None, now: float) -> Token | None:
        """The token if it may be used for a new request or handshake now."""
        token = self._tokens.get(value or "")
        if token is None or token.revoked or now - token.issued >= self.ttl_s:
            return None
        return token

    def revoked(self, value: str) -> bool:
        token = self._tokens.get(value)
        return token is None or token.revoked

    def revoke(self, value: str) -> None:
        token = self._tokens.get(value)
        if token is not None:
            token.revoked = True

    def revoke_all(self) -> None:
        for token in self._tokens.values():
            token.revoked = True
