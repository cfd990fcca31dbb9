"""`brokerbridge doctor kraken`: the chain from credentials to the private WebSocket, step by step.

Steps: credentials → REST (+ system status) → clock skew → signed Balance → order permissions →
(with `trading`: trading permissions) → WebSocket token → public WebSocket → private WebSocket.
Each probe turns what it sees into evidence, or into a `Finding` that names the cause (invalid key,
wrong secret, nonce, permission, stale token, stalled feed, balance shown as 0) and the exact remedy.

Permissions: the Kraken bot guide's checklist — Query Funds (Balance), Query Open Orders & Trades
(OpenOrders), Query Closed Orders & Trades (ClosedOrders), Access WebSockets API
(GetWebSocketsToken) — each probed by a call that needs it and nothing more; with `trading`, also
Create & Modify Orders (AddOrder with `validate=true`: Kraken checks the order and places nothing)
and Cancel/Close Orders (CancelOrder of an order id that cannot exist: nothing is cancelled).
Kraken answers a missing permission with `EGeneral:Permission denied`; any other answer proves
the permission is there.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Callable
from decimal import Decimal

from brokerbridge.cli.doctor.steps import Finding, Progress, Step
from brokerbridge.core.clock import Clock
from brokerbridge.core.config import KrakenConfig
from brokerbridge.core.errors import (
    AuthenticationError,
    InvalidNonce,
    InvalidRequest,
    OrderRejected,
    PermissionDenied,
    SessionInvalid,
    UnknownOrder,
    UnknownSymbol,
)
from brokerbridge.core.events import BalanceSnapshot, Channel, Subscription, Ticker
from brokerbridge.core.rest import Request
from brokerbridge.core.signals import Subscribed, SubscribeFailed, SystemStatus, TokenRejected
from brokerbridge.io.kraken.rest import KrakenRestClient
from brokerbridge.io.ws import connect
from brokerbridge.venues.kraken import permissions
from brokerbridge.venues.kraken import rest as kraken_rest
from brokerbridge.venues.kraken.auth import NonceSource
from brokerbridge.venues.kraken.permissions import API_PAGE, KeyPermission
from brokerbridge.venues.kraken.session import KrakenWsSession

# Beyond this, a clock is worth fixing: order deadlines and nonces compared with other clients
# (both time-based) go wrong, and Kraken's Time has one-second resolution anyway.
SKEW_LIMIT_S = 2.0
# An order id no order can have (Kraken's are `XXXXXX-XXXXX-XXXXXX` of letters and digits): the
# cancel that probes the permission cancels nothing.
NO_SUCH_ORDER = "OBBDOC-TORXX-NOORDR"
NONCE_EXPLANATION = (
    "Kraken refused the nonce although it grows with the clock: this key's last nonce is larger "
    "than ours. Either another client uses the same key with a larger nonce scale (python-kraken-sdk "
    "and some bots count faster than brokerbridge's microseconds), or two programs use the key at the "
    "same time and their requests overtake each other"
)
NONCE_REMEDY = (
    "best: give brokerbridge its own API key; or raise kraken.nonce_scale above the other client's "
    f"(--fix finds and writes one); for concurrent use, set a nonce window on the key ({API_PAGE} › "
    "edit the key › Advanced › Nonce window)"
)


@dataclasses.dataclass
class KrakenDoctor:
    """The probes, sharing what earlier steps learnt (REST balances, the WebSocket token)."""

    config: KrakenConfig
    clock: Clock
    timeout: float
    symbol: str = "BTC/USD"
    trading: bool = False  # also check the trading permissions
    token: str | None = None
    rest_balances: dict[str, Decimal] | None = None
    secrets: list[str] = dataclasses.field(default_factory=list)  # tokens seen, for masking
    _stage: Progress = dataclasses.field(default_factory=Progress)
    _rest: KrakenRestClient | None = None

    @property
    def target(self) -> str:
        return f"{self.config.rest_url} · {self.config.ws_url} · {self.config.ws_auth_url}"

    def steps(self) -> list[Step]:
        return [
            Step("credentials", "credentials", self.credentials),
            Step("rest", "REST reachable", self.rest),
            Step("clock", "clock skew", self.clock_skew, needs=("rest",)),
            Step("private", "signed call (Balance)", self.private, needs=("credentials", "rest")),
            Step("orders", "order permissions", self.order_permissions, needs=("private",)),
            *(
                [Step("trading", "trading permissions", self.trading_permissions, needs=("private",))]
                if self.trading
                else []
            ),
            Step("ws_token", "WebSocket token", self.ws_token, needs=("credentials", "rest", "private")),
            Step("ws_public", "public WebSocket", self.ws_public),
            Step("ws_private", "private WebSocket", self.ws_private, needs=("ws_token",)),
        ]

    def timeouts(self) -> dict[str, Callable[[float], Finding]]:
        return {"ws_public": self._stalled("ws_public"), "ws_private": self._stalled("ws_private")}

    async def use_nonce_scale(self, scale: int) -> None:
        """Sign from now on with `scale` (what `--fix` found)."""
        await self.aclose()
        self.config = dataclasses.replace(self.config, nonce_scale=scale)

    def rest_client(self) -> KrakenRestClient:
        if self._rest is None:
            config = dataclasses.replace(self.config, request_timeout=self.timeout)
            nonces = NonceSource(self.clock.time, scale=self.config.nonce_scale)
            self._rest = KrakenRestClient(config, clock=self.clock, nonces=nonces)
        return self._rest

    async def aclose(self) -> None:
        if self._rest is not None:
            await self._rest.aclose()
            self._rest = None

    # -- 1. credentials ------------------------------------------------------------------------------
    async def credentials(self) -> str:
        key, secret = self.config.api_key, self.config.api_secret
        if not key or not secret:
            raise Finding(
                "no Kraken API key and secret configured: only public data works",
                f"create a key ({API_PAGE} › Create API key, with {_labels(permissions.READ_CHECKLIST)}; "
                f"to trade also {_labels(permissions.TRADING)}) and set kraken.api_key / "
                "kraken.api_secret (or BROKERBRIDGE_KRAKEN_API_KEY/_SECRET)",
            )
        try:
            raw = base64.b64decode(secret.reveal(), validate=True)
        except (binascii.Error, ValueError):
            raise Finding(
                "the API secret is not valid base64 (a character is missing, extra or was changed)",
                "copy the private key again from Kraken's key page — it is shown once, at creation; "
                "if it is lost, create a new key",
            ) from None
        note = "" if len(raw) == 64 else f" (Kraken secrets decode to 64 bytes, this one to {len(raw)})"
        return f"key {mask_key(key)} ({len(key)} chars); secret is valid base64, {len(raw)} bytes{note}"

    # -- 2. REST and clock ---------------------------------------------------------------------------
    async def rest(self) -> str:
        status = await self.rest_client().call(kraken_rest.system_status_request())
        if status.status != "online":
            raise Finding(
                f"Kraken answers but reports status {status.status!r}",
                "wait until Kraken is online again (status.kraken.com); brokerbridge keeps retrying",
            )
        return f"{self.config.rest_url} answered; system status online"

    async def clock_skew(self) -> str:
        before = self.clock.time()
        server = await self.rest_client().call(kraken_rest.server_time_request())
        local = (before + self.clock.time()) / 2
        # `unixtime` is truncated to the second: the venue's clock read somewhere in [t, t + 1).
        skew = local - (server.unixtime + 0.5)
        evidence = f"local clock {skew:+.1f} s (±0.5 s) against Kraken's /0/public/Time"
        if abs(skew) > SKEW_LIMIT_S:
            raise Finding(
                f"this machine's clock is {abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} Kraken's",
                "turn on time sync: `sudo timedatectl set-ntp true` (systemd), or with chrony "
                "`sudo chronyc makestep`; then check with `timedatectl status`",
                evidence=evidence,
                fix="clock",
                blocking=False,
            )
        return evidence

    # -- 3. signed call --------------------------------------------------------------------------------
    async def private(self) -> str:
        try:
            balances = await self.rest_client().call(kraken_rest.balance_request())
        except InvalidNonce:
            raise Finding(
                NONCE_EXPLANATION,
                NONCE_REMEDY,
                evidence=f"nonce scale {self.config.nonce_scale:g}/s",
                fix="nonce",
            ) from None
        except PermissionDenied:
            raise Finding(
                "the key works but lacks the “Query Funds” permission (Balance was refused): balances "
                "show nothing",
                permissions.QUERY_FUNDS.how_to_enable(),
                blocking=False,
            ) from None
        except AuthenticationError as exc:
            raise _auth_finding(exc) from None
        self.rest_balances = dict(balances)
        funded = sorted(asset for asset, amount in balances.items() if amount)
        shown = ", ".join(funded[:6]) + ("…" if len(funded) > 6 else "")
        return (
            f"key and signature accepted; {len(balances)} assets ({len(funded)} with funds: {shown or '-'})"
        )

    async def order_permissions(self) -> str:
        """Query Open / Query Closed Orders & Trades: without them fills and orders are never read
        back from REST (reconciliation after a reconnect fails, order status stays unknown)."""
        probes: list[tuple[KeyPermission, Request[object]]] = [
            (permissions.QUERY_OPEN, kraken_rest.open_orders_request()),
            (permissions.QUERY_CLOSED, kraken_rest.closed_orders_request()),
        ]
        return await self._check_permissions(
            probes, "fills and orders missed while a stream was down are never read back"
        )

    async def trading_permissions(self) -> str:
        """Create & Modify / Cancel/Close Orders, probed without placing or cancelling anything."""
        probe_order = kraken_rest.add_order_request(
            pair="XBTUSD",
            side="buy",
            order_type="limit",
            volume=Decimal("0.0001"),
            price=Decimal(1),
            validate=True,
        )
        probes: list[tuple[KeyPermission, Request[object]]] = [
            (permissions.CREATE_ORDERS, probe_order),
            (permissions.CANCEL_ORDERS, kraken_rest.cancel_order_request(NO_SUCH_ORDER)),
        ]
        return await self._check_permissions(
            probes, "orders cannot be placed or cancelled through brokerbridge"
        )

    async def _check_permissions(
        self, probes: list[tuple[KeyPermission, Request[object]]], without: str
    ) -> str:
        """Call each probe; every permission refused is named in one finding (not blocking: the
        other steps need other permissions)."""
        granted: list[str] = []
        missing: list[KeyPermission] = []
        for permission, request in probes:
            try:
                await self.rest_client().call(request)
            except PermissionDenied:
                missing.append(permission)
                continue
            except InvalidNonce:
                raise Finding(NONCE_EXPLANATION, NONCE_REMEDY, fix="nonce") from None
            except AuthenticationError as exc:
                raise _auth_finding(exc) from None
            except (InvalidRequest, OrderRejected, UnknownOrder, UnknownSymbol) as exc:
                # Kraken looked at the order itself, so the key may make the call.
                granted.append(f"{permission.label} ({request.name}: {exc.code or exc.message})")
                continue
            granted.append(f"{permission.label} ({request.name} answered)")
        if missing:
            raise Finding(
                f"the key lacks {_labels(missing)}: {without}",
                "; ".join(p.how_to_enable() for p in missing),
                evidence=f"granted: {', '.join(granted)}" if granted else "",
                blocking=False,
            )
        return "granted: " + ", ".join(granted)

    async def ws_token(self) -> str:
        try:
            result = await self.rest_client().call(kraken_rest.websockets_token_request())
        except PermissionDenied:
            raise Finding(
                "the key lacks the “Access WebSockets API” permission: no private streams (balances, "
                "executions) without it",
                permissions.WEBSOCKETS.how_to_enable(),
            ) from None
        except InvalidNonce:
            raise Finding(NONCE_EXPLANATION, NONCE_REMEDY, fix="nonce") from None
        except AuthenticationError as exc:
            raise _auth_finding(exc) from None
        self.token = result.token
        self.secrets.append(result.token)
        return f"token issued (valid {result.expires} s; must be used within 15 minutes)"

    # -- 5. public WebSocket ---------------------------------------------------------------------------
    async def ws_public(self) -> str:
        stage = self._progress("ws_public")
        session = KrakenWsSession(private=False, wall_clock=self.clock.time)
        sub = Subscription(venue="kraken", channel=Channel.TICKER, symbol=self.symbol)
        session.add(sub, self.clock.monotonic())
        status = "no status message"
        async with connect(self.config.ws_url, open_timeout=self.timeout) as conn:
            stage("connected; no message yet")
            session.connection_made(self.clock.monotonic())
            for frame in session.data_to_send():
                await conn.send_text(frame)
            while True:
                session.receive_text(await conn.recv_text(), self.clock.monotonic())
                for signal in session.signals_received():
                    match signal:
                        case SystemStatus(system=system):
                            status = f"status {system}"
                            stage(f"connected, {status}; no ticker subscription ack yet")
                        case Subscribed():
                            stage(f"connected, {status}, subscribed to ticker {self.symbol}; no ticker yet")
                        case SubscribeFailed(error=error):
                            raise Finding(f"ticker {self.symbol} refused: {error.message}", error.remedy)
                for event in session.events_received():
                    if isinstance(event, Ticker):
                        quote = f"bid {event.bid} ask {event.ask}"
                        return f"{self.config.ws_url}: {status}; ticker {self.symbol} {quote}"

    # -- 6. private WebSocket --------------------------------------------------------------------------
    async def ws_private(self) -> str:
        assert self.token is not None, "ws_token ran first"
        stage = self._progress("ws_private")
        session = KrakenWsSession(private=True, wall_clock=self.clock.time)
        session.set_token(self.token)
        subs = [Subscription(venue="kraken", channel=c) for c in (Channel.BALANCES, Channel.EXECUTIONS)]
        for sub in subs:
            session.add(sub, self.clock.monotonic())
        acked: set[Channel] = set()
        snapshot: BalanceSnapshot | None = None
        async with connect(self.config.ws_auth_url, open_timeout=self.timeout) as conn:
            stage("connected; no answer to the balances/executions subscriptions yet")
            session.connection_made(self.clock.monotonic())
            for frame in session.data_to_send():
                await conn.send_text(frame)
            while snapshot is None or len(acked) < len(subs):
                session.receive_text(await conn.recv_text(), self.clock.monotonic())
                for signal in session.signals_received():
                    match signal:
                        case TokenRejected(error=error) | SubscribeFailed(error=SessionInvalid() as error):
                            raise Finding(
                                f"the WebSocket token was refused ({error.code}): it expired or was "
                                "invalidated before it was used (tokens must be used within 15 minutes), "
                                "or the private WebSocket URL belongs to another Kraken than the REST URL",
                                "request a fresh token right before connecting (--fix does, and brokerbridge "
                                "does it on its own); check that kraken.ws_auth_url and kraken.rest_url "
                                "point at the same venue",
                                fix="token",
                            )
                        case SubscribeFailed(error=error):
                            raise Finding(
                                f"{signal.sub.channel.value} refused: {error.message}", error.remedy
                            )
                        case Subscribed(sub=sub):
                            acked.add(sub.channel)
                            names = ", ".join(sorted(c.value for c in acked))
                            stage(f"subscribed to {names}; no balances snapshot yet")
                for event in session.events_received():
                    if isinstance(event, BalanceSnapshot):
                        snapshot = event
        return self._check_balances(snapshot)

    def _check_balances(self, snapshot: BalanceSnapshot) -> str:
        funded_ws = {b.asset for b in snapshot.balances if b.total}
        funded_rest = {a for a, v in (self.rest_balances or {}).items() if v}
        if funded_rest and not funded_ws:
            raise Finding(
                "the private stream's balances snapshot shows 0 for every asset while REST Balance "
                f"shows funds in {len(funded_rest)} — an app reading the stream shows balance 0",
                "check that the key belongs to the funded account (a sub-account key sees only its own "
                "wallet) and that kraken.ws_auth_url is Kraken's (wss://ws-auth.kraken.com/v2)",
            )
        agree = " (REST Balance agrees)" if self.rest_balances is not None else ""
        return (
            f"{self.config.ws_auth_url}: balances snapshot with {len(snapshot.balances)} assets, "
            f"{len(funded_ws)} with funds{agree}; executions subscribed"
        )

    # -- stalls ------------------------------------------------------------------------------------
    def _progress(self, key: str) -> Callable[[str], None]:
        return self._stage.tracker(key, "not connected (the WebSocket handshake did not finish)")

    def _stalled(self, key: str) -> Callable[[float], Finding]:
        def finding(seconds: float) -> Finding:
            reached = self._stage.of(key)
            if key == "ws_public":
                return Finding(
                    f"stalled feed: no ticker message within {seconds:g} s ({reached})",
                    "the socket is open but silent: a proxy or firewall that buffers WebSockets, or the "
                    "venue's feed is stuck; try again, another network, or status.kraken.com — "
                    "brokerbridge's watchdog reconnects such sockets after kraken.idle_timeout",
                    evidence=reached,
                )
            return Finding(
                f"stalled private feed: no balances snapshot within {seconds:g} s ({reached}) — "
                "this is the “balance shows 0” case: an app waiting for the snapshot shows 0",
                "the private socket is open but silent: try again, check any proxy in between and "
                "status.kraken.com; brokerbridge marks such balances stale (never 0) and reconnects",
                evidence=reached,
            )

        return finding


def _auth_finding(exc: AuthenticationError) -> Finding:
    if exc.code == "EAPI:Invalid key":
        return Finding(
            "Kraken does not know this API key (EAPI:Invalid key): mistyped, deleted, or a key of "
            "another Kraken product (Futures and demo keys are separate)",
            f"copy the API key again from {API_PAGE} (or create one) into kraken.api_key",
        )
    if exc.code == "EAPI:Invalid signature":
        return Finding(
            "the key is known but the signature does not match (EAPI:Invalid signature): the secret is "
            "wrong — it belongs to another key or was copied incompletely",
            "copy the private key that was shown with this API key into kraken.api_secret; if it is "
            "lost, create a new key (Kraken shows the secret only once)",
        )
    return Finding(exc.message, exc.remedy)


def _labels(needed: tuple[KeyPermission, ...] | list[KeyPermission]) -> str:
    names = [f"“{p.label}”" for p in needed]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def mask_key(key: str) -> str:
    """Enough of an API key to recognise it, never enough to use it."""
    return f"{key[:4]}…{key[-2:]}" if len(key) > 8 else "***"
