"""`brokerbridge doctor` next to a running `serve`: the steps that need no venue session run here,
the rest are checked through the server (cli/attach.py) instead of a login of the doctor's own.

A doctor that logged in itself would revoke `serve`'s Primary token (Primary keeps one session per
user) — the very fault it is often run to find — and sign with the same Kraken key as `serve`
(their nonces race). So, attached, it runs the venue doctor's session-free steps (Kraken: the
credentials as configured, REST and clock skew, the public WebSocket; Primary: the API host and
DNS/TCP/TLS), then asks the server: does it run the venue, does market data flow through it, does
its account stream deliver, and what holds its session (streams, token expiry).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable

from brokerbridge.cli.attach import Attachment, BridgeClient, account_access, venue_summary
from brokerbridge.cli.doctor.steps import Doctor, Finding, Progress, Step
from brokerbridge.core.clock import Clock
from brokerbridge.core.config import Config
from brokerbridge.core.errors import BrokerBridgeError, ConfigError
from brokerbridge.core.events import BalanceSnapshot, BookSnapshot, StreamState, StreamStatus, Ticker
from brokerbridge.core.health import VenueHealth
from brokerbridge.venues.primary.environments import resolve_environment

# Steps of the venue doctors that open no venue session (no login, no signed call, no token).
SESSION_FREE = {
    "kraken": ("credentials", "rest", "clock", "ws_public"),
    "primary": ("host", "reach"),
}
STATUS_REMEDY = "see `brokerbridge status` and serve's log for the stream's state and reason"


def same_endpoint(config: Config, venue: str, served: VenueHealth | None) -> bool:
    """The local config names the REST endpoint the server uses for `venue` (so checking the
    config's credentials and host here says something about the server's session)."""
    if served is None or served.rest_url is None:
        return True
    if venue == "kraken":
        ours: str | None = config.kraken.rest_url
    elif config.primary is None:
        return False
    else:
        try:
            ours = resolve_environment(
                config.primary.rest_url or config.primary.environment, ws_url=config.primary.ws_url
            ).rest_url
        except ConfigError:
            return True  # the host step says what is wrong with it
    return (ours or "").rstrip("/") == served.rest_url.rstrip("/")


@dataclasses.dataclass
class AttachedDoctor:
    venue: str
    local: Doctor
    attachment: Attachment
    clock: Clock
    symbol: str
    local_steps: bool = True  # False: the config names other endpoints than the server's
    _client: BridgeClient | None = None
    _stage: Progress = dataclasses.field(default_factory=Progress)
    _stack: contextlib.AsyncExitStack = dataclasses.field(default_factory=contextlib.AsyncExitStack)
    _credentials: bool = False  # the server holds credentials of the venue
    _account: bool = False  # … and lets this doctor read its account data
    secrets: list[str] = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.secrets = self.local.secrets  # the same list: what the local steps see is masked too

    @property
    def target(self) -> str:
        served = f"brokerbridge serve at {self.attachment.url}"
        return f"{self.local.target} — through {served}" if self.local_steps else served

    def steps(self) -> list[Step]:
        wanted = SESSION_FREE[self.venue] if self.local_steps else ()
        local = [step for step in self.local.steps() if step.key in wanted]
        return [
            *local,
            Step("serve", "brokerbridge serve runs the venue", self.serve),
            Step("serve_market", f"market data through serve ({self.symbol})", self.market, needs=("serve",)),
            Step("serve_account", "account stream through serve", self.account, needs=("serve",)),
            Step("serve_session", "venue session held by serve", self.session, needs=("serve",)),
        ]

    def timeouts(self) -> dict[str, Callable[[float], Finding]]:
        local = {k: v for k, v in self.local.timeouts().items() if k in SESSION_FREE[self.venue]}
        return {
            **local,
            "serve_market": self._stalled("serve_market"),
            "serve_account": self._stalled("serve_account"),
        }

    def _stalled(self, key: str) -> Callable[[float], Finding]:
        def finding(seconds: float) -> Finding:
            reached = self._stage.of(key)
            return Finding(
                f"nothing arrived through serve within {seconds:g} s"
                + (f" (last: {reached})" if reached else ""),
                f"{STATUS_REMEDY}; raise --timeout on a slow link",
            )

        return finding

    async def aclose(self) -> None:
        await self._stack.aclose()
        self._stack = contextlib.AsyncExitStack()
        self._client = None
        await self.local.aclose()

    async def client(self) -> BridgeClient:
        if self._client is None:
            self._client = await self._stack.enter_async_context(self.attachment.client())
        return self._client

    async def serve(self) -> str:
        client = await self.client()
        try:
            summary = await venue_summary(client, self.venue, self.attachment.url)
        except BrokerBridgeError as exc:
            raise Finding(exc.message, exc.remedy) from None
        # A simulated venue has an account too (the simulator's demo one), though not the user's.
        self._credentials = summary.credentials or summary.simulated
        # Signed in before the first subscription: the connection to /ws carries the sign-in.
        self._account = self._credentials and await account_access(client, self.attachment)
        pid = f" (pid {self.attachment.pid})" if self.attachment.pid else ""
        creds = (
            "the EMBEDDED SIMULATOR (demo account, not a real venue)"
            if summary.simulated
            else "credentials configured"
            if summary.credentials
            else "no credentials (market data only)"
        )
        return f"{self.attachment.url}{pid} runs {self.venue}: {creds}"

    async def market(self) -> str:
        stage = self._stage.tracker("serve_market", "subscribing to the ticker")
        client = await self.client()
        async with contextlib.aclosing(client.subscribe(self.venue, "ticker", self.symbol)) as events:
            async for event in events:
                match event:
                    case Ticker() | BookSnapshot():
                        return f"ticker of {self.symbol} received through serve"
                    case StreamStatus():
                        stage(_described(event))
        raise Finding("the ticker stream ended", STATUS_REMEDY)  # pragma: no cover - iterators end by raising

    async def account(self) -> str:
        client = await self.client()
        if not self._credentials:
            raise Finding(
                f"serve has no {self.venue} credentials: it holds no account session",
                f"configure {self.venue}'s credentials for serve and restart it",
                blocking=False,
            )
        if not self._account:
            raise Finding(
                "serve does not let this doctor read account data (it is on another machine)",
                "set [client] key (BROKERBRIDGE_CLIENT_KEY) to a key of the account or admin scope",
            )
        stage = self._stage.tracker("serve_account", "subscribing to balances")
        async with contextlib.aclosing(client.subscribe(self.venue, "balances")) as events:
            async for event in events:
                match event:
                    case BalanceSnapshot():
                        return f"balances received through serve ({len(event.balances)} assets)"
                    case StreamStatus(state=StreamState.LIVE):
                        return f"account stream {event.stream} live through serve"
                    case StreamStatus():
                        stage(_described(event))
        raise Finding("the balances stream ended", STATUS_REMEDY)  # pragma: no cover

    async def session(self) -> str:
        health = (await (await self.client()).health()).venues.get(self.venue)
        if health is None:  # pragma: no cover - the serve step checked the venue
            raise Finding(f"serve no longer runs {self.venue}", STATUS_REMEDY)
        streams = (
            ", ".join(f"{name} {stream.state}" for name, stream in health.streams.items()) or "none open"
        )
        expiry = health.token_expires_at
        token = (
            f"token valid for {max(0.0, expiry - self.clock.time()) / 60:.0f} min"
            if expiry is not None
            else "no token issued yet"
        )
        broken = [
            f"{name}: {stream.last_error}"
            for name, stream in health.streams.items()
            if stream.degraded() and stream.last_error
        ]
        if broken:
            raise Finding(
                f"serve's {self.venue} streams are degraded — " + "; ".join(broken),
                f"{STATUS_REMEDY}; `brokerbridge doctor {self.venue} --standalone` checks the venue "
                "link by link (with a login of its own: stop serve first on Primary)",
                evidence=f"streams: {streams}; {token}",
            )
        return f"streams: {streams}; {token}"


def _described(status: StreamStatus) -> str:
    return f"{status.stream} {status.state}" + (f": {status.reason}" if status.reason else "")
