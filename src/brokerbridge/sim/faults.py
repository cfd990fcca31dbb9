"""Fault switches of a simulator: what is broken right now, settable at start and at run time.

One `Faults` object per simulator, shared by its REST, WebSocket and control handlers. Every switch
is plain data (so the control endpoint can show and set it as JSON); the simulator reads the
switches at the point where the fault applies. Counted faults (`corrupt_checksums`, `rest_unavailable`
…) go down by one each time they fire; `-1` means "until reset".

Two actions are not state but events, so they are methods: `drop_now()` asks every live
WebSocket connection to be dropped, `invalidate_tokens()` makes every token issued so far invalid.
The simulator subscribes to them with `on_drop` / `on_invalidate`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

STALL_SCOPES = ("public", "private", "all")
SYSTEM_STATUSES = ("online", "maintenance", "cancel_only", "post_only")
SEQUENCE_CHANNELS = ("balances", "executions")
# The API-key permissions a simulated key can have (sim.kraken.account.Permission values).
PERMISSION_NAMES = (
    "query_funds",
    "query_open_orders",
    "query_closed_orders",
    "create_orders",
    "cancel_orders",
    "websockets",
)


class FaultError(ValueError):
    """A control request named an unknown switch or gave it a value of the wrong kind."""


@dataclass(slots=True)
class Faults:
    # Drop every WebSocket connection every N seconds (0 = off). Measured on the simulator's clock.
    drop_every_s: float = 0.0
    # Keep sockets open but send nothing (acks, data and heartbeats) on "public", "private" or "all".
    stall: str | None = None
    # The next N book messages (any connection) carry a wrong checksum.
    corrupt_checksums: int = 0
    # Channels ("balances", "executions") whose next private message skips one sequence number.
    skip_sequence: list[str] = field(default_factory=list)
    # Permissions taken away from the demo key (names from sim.kraken.account.Permission).
    deny_permissions: list[str] = field(default_factory=list)
    # The next N REST calls answer `EService:Unavailable` (HTTP 200 envelope); -1 = always.
    rest_unavailable: int = 0
    # The next N REST calls answer with HTTP `rest_http_status` (a 5xx) and a non-JSON body; -1 = always.
    rest_http_errors: int = 0
    rest_http_status: int = 503
    # The next N private REST calls answer `EAPI:Rate limit exceeded`; -1 = always.
    rate_limit: int = 0
    # Extra delay in milliseconds before every REST answer and every WebSocket frame.
    latency_ms: float = 0.0
    # Kraken's engine status: "maintenance" freezes the market (sockets stay up, heartbeats only);
    # every change is pushed as a `status` frame, as Kraken does, and shown by REST SystemStatus.
    system_status: str = "online"

    _listeners: dict[str, list[Callable[[], None]]] = field(
        default_factory=lambda: {"drop": [], "invalidate": [], "status": []}, repr=False
    )

    ACTIONS: ClassVar[tuple[str, ...]] = ("drop_now", "invalidate_tokens")

    # -- actions ---------------------------------------------------------------------------------------
    def on_drop(self, callback: Callable[[], None]) -> None:
        self._listeners["drop"].append(callback)

    def on_invalidate(self, callback: Callable[[], None]) -> None:
        self._listeners["invalidate"].append(callback)

    def on_status(self, callback: Callable[[], None]) -> None:
        self._listeners["status"].append(callback)

    def drop_now(self) -> None:
        for callback in self._listeners["drop"]:
            callback()

    def invalidate_tokens(self) -> None:
        for callback in self._listeners["invalidate"]:
            callback()

    # -- counted switches ----------------------------------------------------------------------------
    def take(self, name: str) -> bool:
        """True if the counted fault `name` fires now (and count it down)."""
        remaining = getattr(self, name)
        if remaining == 0:
            return False
        if remaining > 0:
            setattr(self, name, remaining - 1)
        return True

    def take_sequence_skip(self, channel: str) -> bool:
        if channel in self.skip_sequence:
            self.skip_sequence.remove(channel)
            return True
        return False

    def stalls(self, private: bool) -> bool:
        return self.stall == "all" or self.stall == ("private" if private else "public")

    # -- (de)serialisation for the control endpoint and the CLI ---------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {f.name: _copy(getattr(self, f.name)) for f in fields(self) if not f.name.startswith("_")}

    def reset(self) -> None:
        defaults = Faults()
        for f in fields(self):
            if not f.name.startswith("_"):
                setattr(self, f.name, getattr(defaults, f.name))

    def apply(self, changes: dict[str, Any]) -> None:
        """Set the switches named in `changes` (validated first: all or nothing), then run actions."""
        staged: dict[str, Any] = {}
        actions: list[str] = []
        known = {f.name: f for f in fields(self) if not f.name.startswith("_")}
        for name, value in changes.items():
            if name in self.ACTIONS:
                if not isinstance(value, bool):
                    raise FaultError(f"{name} takes true/false")
                if value:
                    actions.append(name)
                continue
            if name not in known:
                raise FaultError(f"unknown fault switch {name!r}; known: {sorted([*known, *self.ACTIONS])}")
            staged[name] = _validate(name, value)
        status_before = self.system_status
        for name, value in staged.items():
            setattr(self, name, value)
        if self.system_status != status_before:
            for callback in self._listeners["status"]:
                callback()
        for name in actions:
            getattr(self, name)()


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


def _validate(name: str, value: Any) -> Any:
    if name == "system_status":
        if value not in SYSTEM_STATUSES:
            raise FaultError(f"system_status must be one of {SYSTEM_STATUSES}")
        return value
    if name == "stall":
        if value is not None and value not in STALL_SCOPES:
            raise FaultError(f"stall must be one of {STALL_SCOPES} or null")
        return value
    if name == "skip_sequence":
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or any(item not in SEQUENCE_CHANNELS for item in items):
            raise FaultError(f"skip_sequence takes channel names from {SEQUENCE_CHANNELS}")
        return list(items)
    if name == "deny_permissions":
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(item in PERMISSION_NAMES for item in items):
            raise FaultError(f"deny_permissions takes permission names from {PERMISSION_NAMES}")
        return list(items)
    if name in ("drop_every_s", "latency_ms"):
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise FaultError(f"{name} takes a number >= 0")
        return float(value)
    if name == "rest_http_status":
        if isinstance(value, bool) or not isinstance(value, int) or not 500 <= value <= 599:
            raise FaultError("rest_http_status takes a 5xx status code")
        return value
    # Counted switches: true/false are accepted as "always"/"off" for convenience.
    if isinstance(value, bool):
        return -1 if value else 0
    if not isinstance(value, int) or value < -1:
        raise FaultError(f"{name} takes a count (>= 0), -1 for always, or true/false")
    return value
