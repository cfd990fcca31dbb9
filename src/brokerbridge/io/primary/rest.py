"""Primary REST over HTTP: the pure codec (venues.primary.rest) plus httpx and the login token.

`call(request)` sends a `Request[T]` built by the codec (`codec.orders_request(account)`) and
returns its answer as a `T`.

Every call carries `X-Auth-Token`. A 401/403 means the token expired or was invalidated (Primary
invalidates a token when the same user logs in elsewhere): log in again once and return the
*retried* result — pyRofex famously returns the failed one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from brokerbridge.core.clock import Clock
from brokerbridge.core.config import PrimaryConfig
from brokerbridge.core.errors import ConfigError, SessionInvalid
from brokerbridge.core.rest import Request
from brokerbridge.io.http import HttpClient
from brokerbridge.io.token import TokenManager
from brokerbridge.venues.primary import rest as codec
from brokerbridge.venues.primary.environments import PrimaryEnvironment

logger = logging.getLogger(__name__)

T = TypeVar("T")
TOKEN_LIFETIME = 24 * 3600.0
# A 401 to a token that answered before: Primary keeps one session per user, so the likeliest cause
# is a login elsewhere with the same user (the token is re-fetched ahead of its 24 h expiry).
REPLACED_SESSION = (
    "primary: the venue refused a token that worked until now (%s): another login with the same user "
    "(another brokerbridge, a `watch`/`doctor` run with --standalone, the broker's app or web) may "
    "have replaced this session; logging in again once. Let every tool go through one `brokerbridge "
    "serve` (watch, doctor and instruments attach to it by themselves) or give each program its own "
    "API user"
)
# Primary: "la duración del token es de 24 hs"


@dataclass(frozen=True, slots=True)
class Answered(Generic[T]):
    """A successful call's decoded answer and the body it was decoded from."""

    value: T
    body: bytes


class PrimaryRestClient:
    def __init__(
        self,
        config: PrimaryConfig,
        environment: PrimaryEnvironment,
        *,
        http: HttpClient | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._config = config
        self.environment = environment
        self._http = http or HttpClient(
            timeout=config.request_timeout, deadline=config.request_deadline, clock=clock
        )
        self.tokens: TokenManager | None = None  # set by the connector (it owns the lifecycle)
        self.calls = 0
        self._proven: str | None = None  # the last token a call succeeded with
        self.replaced_sessions = 0  # 401s to a proven token: a login elsewhere, most likely

    async def login(self) -> tuple[str, float]:
        """`POST auth/getToken` → (token, lifetime). Used as the TokenManager's fetch."""
        if not self._config.has_credentials:
            raise ConfigError(
                "Primary needs a user and password (even for market data)",
                remedy="set primary.user and primary.password (or BROKERBRIDGE_PRIMARY_USER/_PASSWORD)",
            )
        assert self._config.user is not None and self._config.password is not None
        request = codec.login_request(self._config.user, self._config.password)
        try:
            response = await self._http.request(
                request.method, self.environment.url(request.target), headers=request.headers, content=""
            )
        except UnicodeEncodeError:
            # Primary takes the credentials as HTTP headers, which carry Latin-1 only; never echo them.
            raise ConfigError(
                "the Primary user or password has characters HTTP headers cannot carry",
                remedy="use the API credentials exactly as issued (no accents or ñ); ask your broker",
            ) from None
        detail = codec.error_text(response.body, mask=[self._config.password.reveal()])
        token = codec.token_from_login(response.status, response.headers, detail)
        return token.reveal(), TOKEN_LIFETIME

    async def call(self, request: Request[T]) -> T:
        """The decoded answer; on 401/403 one re-login and the *retried* call's answer."""
        _, answer = await self._with_relogin(request)
        return answer

    async def answer(self, request: Request[T]) -> Answered[T]:
        """`call`, with the body the answer came in (the Primary-compatible endpoint serves
        Primary's own bytes where it forwards a read)."""
        body, value = await self._with_relogin(request)
        return Answered(value, body)

    async def raw(self, request: Request[Any]) -> bytes:
        """The body of a successful call, undecoded (for the on-disk instrument cache)."""
        body, _ = await self._with_relogin(request)
        return body

    async def _with_relogin(self, request: Request[T]) -> tuple[bytes, T]:
        assert self.tokens is not None, "the connector sets the token manager before any call"
        token = await self.tokens.get()
        try:
            return await self._send(request, token)
        except SessionInvalid:
            if token == self._proven:
                self.session_replaced(f"HTTP 401 on {request.name}")
            else:
                logger.warning("primary: token refused on %s; logging in again once", request.name)
            # Marked refused, so no other call sends it again while the login is refused or held.
            self.tokens.reject(token)
            token = await self.tokens.get(fresh=True, replacing=token)
            return await self._send(request, token)

    def session_replaced(self, how: str) -> None:
        """The venue refused (`how`) a token that worked: say what most likely happened, and count it."""
        self.replaced_sessions += 1
        logger.warning(REPLACED_SESSION, how)

    async def _send(self, request: Request[T], token: str) -> tuple[bytes, T]:
        self.calls += 1
        wire = codec.wire(request).with_token(token)
        response = await self._http.request(
            wire.method, self.environment.url(wire.target), headers=wire.headers, repeatable=not wire.acts
        )
        # Parsing raises the mapped error (401 → SessionInvalid) before anyone sees the body.
        answer = codec.parse_answer(request, response.status, response.headers, response.body)
        self._proven = token
        return response.body, answer

    async def aclose(self) -> None:
        await self._http.aclose()
