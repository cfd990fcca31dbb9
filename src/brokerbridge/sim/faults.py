"""Fault switches of the simulators: what is broken right now, settable at start and at run time.

One switches object per simulator, shared by its REST, WebSocket and control handlers: `FaultSwitches`
holds the switches every simulator has, `KrakenFaults` and `PrimaryFaults` add each venue's own. Every
switch is plain data (so the control endpoint `/_sim/faults` and the `brokerbridge sim` flags can show
and set it as JSON); the simulator reads the switches at the point where the fault applies. Counted
faults (`corrupt_checksums`, `rest_unavailable` …) go down by one each time they fire; `-1` means
"until reset".

Two actions are not state but events, so they are methods: `drop_now()` asks every live
WebSocket connection to be dropped, `invalidate_tokens()` makes every token issued so far invalid.
The simulator subscribes to them with `on_drop` / `on_invalidate`.

What a `stall` scope covers is each venue's to say: on Kraken "public" is the `/v2` socket and
"private" the `/auth/v2` one; on Primary's single socket "public" is `Md` frames, "private" `or`
frames and "all" every frame (error frames included; protocol-level pongs still answer, they belong
to the WebSocket layer). On Primary `invalidate_tokens` covers both "expire" and "invalidate": every
token issued so far is refused on REST (401) and at the handshake, and sockets opened with one go
silent.

The coroutines at the end apply switches on the simulators' I/O paths (answers held back, timed
drops, added latency).
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from brokerbridge.core.clock import Clock, race

STALL_SCOPES = ("public", "private", "all")
# What `option_arbitrage` accepts: "auto", a BYMA option ticker, or one in its xOMS symbol.
_OPTION_NAME = re.compile(r"auto|(MERV - XMEV - )?[A-Z]{3}[CV][0-9.]+[A-Z]{1,2}( - (CI|24hs|48hs))?")
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
class FaultSwitches:
    """The switches every simulator has; a venue front subclasses it with its own switches.

    Subclasses add dataclass fields (with defaults) and may override `_validate` for them, calling
    `FaultSwitches._validate(self, ...)` for the rest (zero-argument `super()` does not work in
    slotted dataclasses on Python 3.11), and `_changed` to react to switches that push something.
    """

    # Drop every WebSocket connection every N seconds (0 = off). Measured on the simulator's clock.
    drop_every_s: float = 0.0
    # Keep sockets open but send nothing on "public", "private" or "all" (what a scope covers is
    # the venue front's to say).
    stall: str | None = None
    # The next N REST calls answer with HTTP `rest_http_status` (a 5xx) and a non-JSON body; -1 = always.
    rest_http_errors: int = 0
    rest_http_status: int = 503
    # Extra delay in milliseconds before every REST answer and every WebSocket frame.
    latency_ms: float = 0.0
    # The next N order submits are carried out but never answered (the client times out, the order
    # is live): the "unknown order" case; -1 = always. Kraken: REST AddOrder and WS add_order.
    lose_answers: int = 0
    # Every REST answer's headers go out at once and its body one byte every N seconds (a server
    # that trickles: each read succeeds, the call never ends in time); 0 = off.
    rest_trickle_s: float = 0.0
    # The next N REST calls get their status line and headers, then never the body; -1 = always.
    rest_headers_only: int = 0

    _listeners: dict[str, list[Callable[[], None]]] = field(default_factory=dict, repr=False)
    # Set (and replaced) whenever switches change: watchers of an off switch wait on it instead of
    # waking every simulated second (a fake-clock test of 20 hours would pay 72,000 wake-ups each).
    _change: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    ACTIONS: ClassVar[tuple[str, ...]] = ("drop_now", "invalidate_tokens")

    # -- actions ---------------------------------------------------------------------------------------
    def on_drop(self, callback: Callable[[], None]) -> None:
        self._listeners.setdefault("drop", []).append(callback)

    def on_invalidate(self, callback: Callable[[], None]) -> None:
        self._listeners.setdefault("invalidate", []).append(callback)

    def drop_now(self) -> None:
        self._notify("drop")

    def invalidate_tokens(self) -> None:
        self._notify("invalidate")

    def _notify(self, event: str) -> None:
        for callback in self._listeners.get(event, ()):
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

    def stalls(self, private: bool) -> bool:
        return self.stall == "all" or self.stall == ("private" if private else "public")

    # -- (de)serialisation for the control endpoint and the CLI ---------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {f.name: _copy(getattr(self, f.name)) for f in fields(self) if not f.name.startswith("_")}

    def reset(self) -> None:
        defaults = type(self)()
        for f in fields(self):
            if not f.name.startswith("_"):
                setattr(self, f.name, getattr(defaults, f.name))
        self._announce_change()

    async def changed(self) -> None:
        """Return at the next change of any switch (through `apply` or `reset`)."""
        await self._change.wait()

    def _announce_change(self) -> None:
        self._change.set()
        self._change = asyncio.Event()

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
            staged[name] = self._validate(name, value)
        before = self.to_dict()
        for name, value in staged.items():
            setattr(self, name, value)
        self._changed(before)
        self._announce_change()
        for name in actions:
            getattr(self, name)()

    def _changed(self, before: dict[str, Any]) -> None:
        """Switches were set (`before` = the state until now); a subclass may push something."""

    def _validate(self, name: str, value: Any) -> Any:
        if name == "stall":
            if value is not None and value not in STALL_SCOPES:
                raise FaultError(f"stall must be one of {STALL_SCOPES} or null")
            return value
        if name in ("drop_every_s", "latency_ms", "rest_trickle_s"):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise FaultError(f"{name} takes a number >= 0")
            return float(value)
        if name == "rest_http_status":
            if isinstance(value, bool) or not isinstance(value, int) or not 500 <= value <= 599:
                raise FaultError("rest_http_status takes a 5xx status code")
            return value
        return _validate_count(name, value)


@dataclass(slots=True)
class KrakenFaults(FaultSwitches):
    """The Kraken simulator's switches (the common ones plus Kraken's)."""

    # The next N book messages (any connection) carry a wrong checksum.
    corrupt_checksums: int = 0
    # Channels ("balances", "executions") whose next private message skips one sequence number.
    skip_sequence: list[str] = field(default_factory=list)
    # Channels ("balances", "executions") whose next private message is lost on the way: its
    # sequence number is used, so only a later message of that channel shows the loss.
    lose_message: list[str] = field(default_factory=list)
    # Permissions taken away from the demo key (names from sim.kraken.account.Permission).
    deny_permissions: list[str] = field(default_factory=list)
    # The next N REST calls answer `EService:Unavailable` (HTTP 200 envelope); -1 = always.
    rest_unavailable: int = 0
    # The next N private REST calls answer `EAPI:Rate limit exceeded`; -1 = always.
    rate_limit: int = 0
    # Kraken's engine status: "maintenance" freezes the market (sockets stay up, heartbeats only);
    # every change is pushed as a `status` frame, as Kraken does, and shown by REST SystemStatus.
    system_status: str = "online"
    # Seconds added to the server time REST `Time` answers: a client clock that far behind (for
    # `brokerbridge doctor`'s clock-skew step); may be negative.
    clock_offset_s: float = 0.0
    # The next N tokens GetWebSocketsToken issues are already expired (as if fetched 15 minutes
    # ago), so the private WebSocket refuses them with `ESession:Invalid session`; -1 = always.
    stale_tokens: int = 0

    def on_status(self, callback: Callable[[], None]) -> None:
        self._listeners.setdefault("status", []).append(callback)

    def take_sequence_skip(self, channel: str) -> bool:
        if channel in self.skip_sequence:
            self.skip_sequence.remove(channel)
            return True
        return False

    def take_message_loss(self, channel: str) -> bool:
        if channel in self.lose_message:
            self.lose_message.remove(channel)
            return True
        return False

    def _changed(self, before: dict[str, Any]) -> None:
        if self.system_status != before["system_status"]:
            self._notify("status")

    def _validate(self, name: str, value: Any) -> Any:
        if name == "system_status":
            if value not in SYSTEM_STATUSES:
                raise FaultError(f"system_status must be one of {SYSTEM_STATUSES}")
            return value
        if name == "clock_offset_s":
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise FaultError("clock_offset_s takes a number of seconds (negative: server behind)")
            return float(value)
        if name in ("skip_sequence", "lose_message"):
            items = [value] if isinstance(value, str) else value
            if not isinstance(items, list) or any(item not in SEQUENCE_CHANNELS for item in items):
                raise FaultError(f"{name} takes channel names from {SEQUENCE_CHANNELS}")
            return list(items)
        if name == "deny_permissions":
            items = [value] if isinstance(value, str) else value
            if not isinstance(items, list) or not all(item in PERMISSION_NAMES for item in items):
                raise FaultError(f"deny_permissions takes permission names from {PERMISSION_NAMES}")
            return list(items)
        return FaultSwitches._validate(self, name, value)


# Primary's default idle close (primary.md §4.1): the server closes sockets that send nothing.
# pyRofex pings every 30 s since 2021 (a 270 s interval had stopped being enough), so the real limit
# lies somewhere in (30, 270) s; 60 s lets a 30 s pinger miss one ping and still survive.
DEFAULT_IDLE_CLOSE_S = 60.0


@dataclass(slots=True)
class PrimaryFaults(FaultSwitches):
    """The Primary simulator's switches (the common ones plus Primary's)."""

    # The next N WebSocket handshakes are refused with HTTP 503 (before the upgrade); -1 = always.
    reject_ws_handshake: int = 0
    # Close sockets that have sent nothing (no frame, no ping) for this many seconds; 0 = never.
    idle_close_s: float = DEFAULT_IDLE_CLOSE_S
    # Logging in again revokes the user's previous tokens (their sockets go silent), as on Cocos.
    relogin_invalidates: bool = True
    # The user's account is blocked: getToken answers 401 `invalid_grant` "User account is locked"
    # (a documented choice: Primary's wording for a blocked user is not public).
    block_user: bool = False
    # One option's ask is quoted 3 % below its intrinsic value (an arbitrage for the analytics to
    # flag) while it is in the money: "auto" (the nearest expiry's lowest-strike call), a BYMA
    # ticker ("GFGC6000DI") or a full symbol; null = off. A well-formed name that is not listed
    # changes nothing.
    option_arbitrage: str | None = None
    # GGAL's books (CI and 24hs) stop moving: no price change, no trade (a stale underlying).
    freeze_underlying: bool = False

    def _validate(self, name: str, value: Any) -> Any:
        if name == "option_arbitrage":
            if value is not None and (not isinstance(value, str) or not _OPTION_NAME.fullmatch(value)):
                raise FaultError(
                    'option_arbitrage takes "auto", an option ticker such as "GFGC6000DI", an option '
                    'symbol such as "MERV - XMEV - GFGC6000DI - 24hs", or null (off)'
                )
            return value
        if name == "idle_close_s":
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise FaultError("idle_close_s takes a number of seconds >= 0 (0 = never)")
            return float(value)
        if name in ("relogin_invalidates", "block_user", "freeze_underlying"):
            if not isinstance(value, bool):
                raise FaultError(f"{name} takes true/false")
            return value
        return FaultSwitches._validate(self, name, value)


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


def _validate_count(name: str, value: Any) -> int:
    """Counted switches: N, -1 for "until reset"; true/false are accepted as "always"/"off"."""
    if isinstance(value, bool):
        return -1 if value else 0
    if not isinstance(value, int) or value < -1:
        raise FaultError(f"{name} takes a count (>= 0), -1 for always, or true/false")
    return value


async def hold_until_disconnected(receive: Callable[[], Awaitable[MutableMapping[str, Any]]]) -> None:
    """The `lose_answers` fault: the call was carried out, its answer never leaves. Wait (on the
    ASGI `receive` channel, whose next message is the client's disconnect) for the client to give up."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def drop_periodically(clock: Clock, faults: Any, drop: Callable[[], None]) -> None:
    """Drop every connection every `faults.drop_every_s` seconds (0 = off), on the simulator's clock.

    Sleeps while the switch is off until a switch changes, and wakes exactly when a drop is due
    while it is on — so long fake-time tests do not pay for a busy loop.
    """
    since = clock.monotonic()
    while True:
        period = faults.drop_every_s
        now = clock.monotonic()
        if period <= 0:
            await faults.changed()
            since = clock.monotonic()
            continue
        due = since + period
        if now + 1e-9 >= due:
            drop()
            since = now
            continue
        await clock.sleep(min(due - now, 1.0))


async def sleep_unless_changed(clock: Clock, faults: FaultSwitches, seconds: float) -> None:
    """Sleep `seconds` on `clock`, or less if a switch changes meanwhile: a watcher of a deadline that
    a switch sets wakes once at the deadline, not every simulated second in case the switch moved."""
    await race(_sleep_until(clock, clock.monotonic() + seconds), faults.changed())


async def _sleep_until(clock: Clock, deadline: float) -> None:
    # The deadline is fixed by the caller: a task starts a loop turn later, when time may have moved.
    await clock.sleep(deadline - clock.monotonic())


async def send_with_latency(
    clock: Clock,
    faults: Any,
    queue: asyncio.Queue[tuple[float, str]],
    send: Callable[[str], Awaitable[None]],
) -> None:
    """Send queued (enqueued_at, text) frames in order, each no earlier than `faults.latency_ms`
    after it was queued (the added-latency switch), on the simulator's clock."""
    while True:
        enqueued, text = await queue.get()
        latency = faults.latency_ms / 1000
        if latency > 0:
            wait = enqueued + latency - clock.monotonic()
            if wait > 0:
                await clock.sleep(wait)
        await send(text)
