"""What the simulated Primary saw of its clients: logins, tokens, sockets, calls and frames.

A bridge that holds ONE session for many clients shows here as one login, one token in use, one
socket, no token ended under it, and only the calls and frames it had to forward (everything it
answered from its cache never arrives). `GET /_sim/stats` serves `UsageStats` as JSON, so a harness
in another process reads the same figures as a test in this one (`PrimaryExchange.usage()`).
"""

from __future__ import annotations

import collections

import msgspec

UNKNOWN_ROUTE = "unknown"  # a path under /rest/ that is not one of Primary's (answered `Ruta invalida`)


class UsageStats(msgspec.Struct, frozen=True, kw_only=True):
    """A snapshot of the counters (all since the simulator started, except those saying `now`)."""

    logins: int  # getToken calls granted
    # Sessions live now, and the most at once: a token neither revoked nor expired with an open
    # WebSocket or a REST call in the last 2 s (the simulator's clock). More than one: two clients
    # held the user's session together (two bridges with the same credentials, a split brain).
    live_sessions: int
    max_live_sessions: int
    refused_logins: int  # getToken refused (bad credentials, `block_user`)
    refused_calls: int  # REST calls refused for their token (HTTP 401)
    refused_handshakes: int  # WebSocket upgrades refused for their token (HTTP 401)
    # Tokens ended while their user may still hold them: revoked by a later login of the same user,
    # by removeToken or the `invalidate_tokens` fault, or aged past the TTL — the sum and each.
    invalidations: int
    revoked_by_login: int
    removed: int
    invalidated: int
    expired: int
    expired_refusals: int  # calls and handshakes that came with an expired token
    token_ttl_s: float
    tokens_live: int  # now: neither revoked nor expired
    tokens_in_use: int  # now: live and used (a REST call or a handshake)
    tokens_in_use_max: int  # the most tokens in use at once
    sockets_open: int  # now
    sockets_open_max: int  # the most sockets open at once
    sockets_opened: int  # handshakes accepted
    sockets_silenced: int  # open sockets whose token was revoked under them (they go silent)
    rest_calls: dict[str, int]  # authorised REST calls by route ("marketdata/get", …)
    ws_requests: dict[str, int]  # client frames by type ("smd", "os", "no", "co", "invalid")
    ws_error_frames: int  # error frames sent (unknown product, bad request, …)


class Usage:
    """The counters the exchange keeps besides its tokens' (`TokenBook.counts`)."""

    def __init__(self) -> None:
        self.refused_handshakes = 0
        self.sockets_open = 0
        self.sockets_open_max = 0
        self.sockets_opened = 0
        self.sockets_silenced = 0
        self.rest_calls: collections.Counter[str] = collections.Counter()
        self.ws_requests: collections.Counter[str] = collections.Counter()
        self.ws_error_frames = 0

    def call(self, route: str) -> None:
        self.rest_calls[route] += 1

    def request(self, kind: str) -> None:
        self.ws_requests[kind] += 1

    def error_frame(self) -> None:
        self.ws_error_frames += 1

    def socket_opened(self) -> None:
        self.sockets_opened += 1
        self.sockets_open += 1
        self.sockets_open_max = max(self.sockets_open_max, self.sockets_open)

    def socket_closed(self) -> None:
        self.sockets_open -= 1
