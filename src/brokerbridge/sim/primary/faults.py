"""The Primary simulator's fault switches: the common ones plus Primary's own.

Common (sim.faults.FaultSwitches): `drop_every_s`, `stall`, `rest_http_errors`/`rest_http_status`,
`latency_ms`, `lose_answers`, `rest_trickle_s`, `rest_headers_only`, and the actions `drop_now` and
`invalidate_tokens`. On Primary's single socket the
stall scopes mean: "public" = `Md` frames, "private" = `or` frames, "all" = every frame (error frames
included; protocol-level pongs still answer, they belong to the WebSocket layer).
`invalidate_tokens` covers both "expire" and "invalidate": every token issued so far is refused on
REST (401) and at the handshake, and sockets opened with one go silent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from brokerbridge.sim.faults import FaultError, FaultSwitches

# Default idle close (§4.1, ISSUE #15): the server closes sockets that send nothing. pyRofex pings
# every 30 s since 2021 (a 270 s interval had stopped being enough), so the real limit lies
# somewhere in (30, 270) s; 60 s lets a 30 s pinger miss one ping and still survive.
DEFAULT_IDLE_CLOSE_S = 60.0


@dataclass(slots=True)
class PrimaryFaults(FaultSwitches):
    # The next N WebSocket handshakes are refused with HTTP 503 (before the upgrade); -1 = always.
    reject_ws_handshake: int = 0
    # Close sockets that have sent nothing (no frame, no ping) for this many seconds; 0 = never.
    idle_close_s: float = DEFAULT_IDLE_CLOSE_S
    # Logging in again revokes the user's previous tokens (their sockets go silent), as on Cocos.
    relogin_invalidates: bool = True
    # The user's account is blocked: getToken answers 401 `invalid_grant` "User account is locked"
    # (a documented choice: Primary's wording for a blocked user is not public).
    block_user: bool = False

    def _validate(self, name: str, value: Any) -> Any:
        if name == "idle_close_s":
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise FaultError("idle_close_s takes a number of seconds >= 0 (0 = never)")
            return float(value)
        if name in ("relogin_invalidates", "block_user"):
            if not isinstance(value, bool):
                raise FaultError(f"{name} takes true/false")
            return value
        return FaultSwitches._validate(self, name, value)
