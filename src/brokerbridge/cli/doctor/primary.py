"""`brokerbridge doctor primary`: host, reachability, login, REST, WebSocket handshake, `smd`, `os`.

The login is sent by hand (not through the client's token manager) so its answer can be read as
it is: a wrong user or password, a blocked account and a host that is not a Primary API at all
each answer differently, and each needs a different remedy. The WebSocket opened by the handshake
step is kept for the `smd` and `os` steps, as an application would.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import ssl
from collections.abc import Callable
from urllib.parse import urlsplit

from brokerbridge.cli.doctor.steps import Finding, Progress, Step
from brokerbridge.core.clock import Clock
from brokerbridge.core.config import PrimaryConfig
from brokerbridge.core.errors import BrokerBridgeError, ConfigError, SessionInvalid
from brokerbridge.core.events import Channel, OrderUpdate, Subscription, Ticker
from brokerbridge.core.secret import redact
from brokerbridge.core.signals import SubscribeFailed, TokenRejected
from brokerbridge.io.http import HttpClient
from brokerbridge.io.ws import WsConnection, connect
from brokerbridge.venues.primary import rest as codec
from brokerbridge.venues.primary.environments import (
    ENVIRONMENTS,
    MATRIZ_EXPLANATION,
    PrimaryEnvironment,
    known_names,
    resolve_environment,
)
from brokerbridge.venues.primary.session import PrimaryWsSession

PROBE_SYMBOL = "MERV - XMEV - GGAL - 24hs"
# Words a login refusal uses for a blocked (not mistyped) user, in Primary's English and Spanish.
BLOCKED_WORDS = ("lock", "block", "bloque", "disabled", "inhabilit", "suspend")
FRESH_TOKEN_REMEDY = (
    "another login with the same user (the broker's app, the web, another program) revoked this "
    "token: log in again (--fix does; brokerbridge re-logs in on its own) and give each program its "
    "own API user if you can"
)


@dataclasses.dataclass
class PrimaryDoctor:
    config: PrimaryConfig | None
    clock: Clock
    timeout: float
    environment: str | None = None  # the name or URL checked (config's unless --env)
    symbol: str = PROBE_SYMBOL
    env: PrimaryEnvironment | None = None
    suggestion: str | None = None  # the environment to use instead of a matriz.* host
    matriz_ws_url: str | None = None  # the config's ws_url, when it is a matriz.* host
    drop_ws_url: bool = False  # --fix removed that ws_url: the environment's own WebSocket is checked
    token: str | None = None
    secrets: list[str] = dataclasses.field(default_factory=list)
    _stage: Progress = dataclasses.field(default_factory=Progress)
    _http: HttpClient | None = None
    _conn: WsConnection | None = None
    _session: PrimaryWsSession | None = None
    _stack: contextlib.AsyncExitStack = dataclasses.field(default_factory=contextlib.AsyncExitStack)

    def __post_init__(self) -> None:
        if self.environment is None and self.config is not None:
            self.environment = self.config.rest_url or self.config.environment

    @property
    def target(self) -> str:
        if self.env is not None:
            return f"{self.env.name}: {self.env.rest_url} · {self.env.ws_url}"
        return self.environment or "no [primary] configuration"

    def steps(self) -> list[Step]:
        return [
            Step("host", "API host", self.host),
            Step("reach", "DNS / TCP / TLS", self.reach, needs=("host",)),
            Step("login", "login (getToken)", self.login, needs=("reach",)),
            Step("rest", "REST with the token", self.rest, needs=("login",)),
            Step("ws_handshake", "WebSocket handshake", self.ws_handshake, needs=("login",)),
            Step("md", "market data (smd → Md)", self.market_data, needs=("ws_handshake",)),
            Step("os", "order reports (os)", self.order_reports, needs=("md",)),
        ]

    def timeouts(self) -> dict[str, Callable[[float], Finding]]:
        return {"md": self._stalled("md"), "os": self._stalled("os")}

    async def aclose(self) -> None:
        await self._stack.aclose()
        self._stack = contextlib.AsyncExitStack()
        self._conn = self._session = None
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def http(self) -> HttpClient:
        if self._http is None:
            self._http = HttpClient(timeout=self.timeout)
        return self._http

    # -- 1. host ---------------------------------------------------------------------------------------
    async def host(self) -> str:
        if self.config is None or self.environment is None:
            raise Finding(
                "Primary is not configured (no [primary] section or BROKERBRIDGE_PRIMARY_* settings)",
                "add [primary] to the config file (--config or $BROKERBRIDGE_CONFIG) with environment "
                "(remarkets, live, your broker's name or its API URL), user, password and account — or "
                "set BROKERBRIDGE_PRIMARY_ENVIRONMENT, _USER, _PASSWORD, _ACCOUNT; "
                "`brokerbridge doctor primary --sim` shows every step against the simulator",
            )
        self.suggestion = matriz_suggestion(self.environment)
        if self.suggestion is not None:
            host = _hostname(self.environment)
            raise Finding(
                MATRIZ_EXPLANATION.format(host=host),
                f"use environment = {self.suggestion!r} ({_describe(self.suggestion)}) with the API user "
                "and password your broker issues for the Primary API (not your app login); --fix writes "
                "it to the config file",
                fix="host",
            )
        ws_url = self._ws_override()
        ws_suggestion = matriz_suggestion(ws_url) if ws_url else None
        if ws_url and ws_suggestion is not None:
            # The environment is right, the socket is the web app's: removing ws_url is the fix
            # (an environment's WebSocket is the root of its API host).
            self.matriz_ws_url, self.suggestion = ws_url, ws_suggestion
            host = _hostname(ws_url)
            raise Finding(
                MATRIZ_EXPLANATION.format(host=host) + f" (from primary.ws_url = {ws_url!r})",
                f"remove ws_url from [primary]: environment = {self.environment!r} already gives the "
                "API's WebSocket (the root of its API host); --fix removes it from the config file",
                fix="host",
            )
        try:
            self.env = resolve_environment(self.environment, ws_url=ws_url)
        except ConfigError as exc:
            raise Finding(exc.message, exc.remedy) from None
        return f"{self.env.name}: REST {self.env.rest_url}, WebSocket {self.env.ws_url}"

    def _ws_override(self) -> str | None:
        # An explicit --env replaces the config's URLs; otherwise the config's ws_url stands.
        if self.config is None or self.environment != (self.config.rest_url or self.config.environment):
            return None
        return None if self.drop_ws_url else self.config.ws_url

    # -- 2. reachability -------------------------------------------------------------------------------
    async def reach(self) -> str:
        assert self.env is not None
        parts = urlsplit(self.env.rest_url)
        host = parts.hostname or ""
        secure = parts.scheme == "https"
        port = parts.port or (443 if secure else 80)
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise Finding(
                f"DNS: {host} does not resolve ({exc.strerror})",
                "check the environment name or URL for typos and this machine's DNS / network "
                f"(known environments: {', '.join(known_names())})",
            ) from None
        address = str(infos[0][4][0])
        context = ssl.create_default_context() if secure else None
        try:
            _, writer = await asyncio.open_connection(
                address, port, ssl=context, server_hostname=host if secure else None
            )
        except ssl.SSLCertVerificationError as exc:
            raise Finding(
                f"TLS: the certificate of {host} is not valid ({exc.verify_message})",
                "a proxy or antivirus intercepting TLS, a wrong host, or an out-of-date CA store "
                "(update ca-certificates / certifi)",
                evidence=f"{host} → {address}",
            ) from None
        except (OSError, ssl.SSLError) as exc:
            raise Finding(
                f"cannot open a connection to {host}:{port} ({address}): {exc}",
                "a firewall or proxy blocks it, or nothing listens there: check the URL and the network",
                evidence=f"{host} → {address}",
            ) from None
        tls = writer.get_extra_info("ssl_object")
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
        how = f"TLS ok ({tls.version()})" if tls is not None else "plain TCP ok (no TLS: a local simulator?)"
        return f"{host} → {address}; port {port} open; {how}"

    # -- 3. login --------------------------------------------------------------------------------------
    async def login(self) -> str:
        assert self.env is not None and self.config is not None
        user, password = self.config.user, self.config.password
        if not user or not password:
            raise Finding(
                "no Primary user and password configured (a login is needed even for market data)",
                "set primary.user and primary.password (BROKERBRIDGE_PRIMARY_USER/_PASSWORD)",
            )
        self.secrets.append(password.reveal())
        request = codec.login_request(user, password)
        try:
            response = await self.http().request(
                request.method, self.env.url(request.target), headers=request.headers, content=""
            )
        except UnicodeEncodeError:
            raise Finding(
                "the user or password has characters HTTP headers cannot carry (accents, ñ)",
                "use the API credentials exactly as your broker issued them",
            ) from None
        token = next((v.strip() for k, v in response.headers.items() if k.lower() == "x-auth-token"), "")
        if 200 <= response.status < 300 and token:
            self.token = token
            self.secrets.append(token)
            return f"user {user!r}: token received (HTTP {response.status}, valid 24 h)"
        raise self._login_finding(user, response.status, response.body, bool(token))

    def _login_finding(self, user: str, status: int, body: bytes, had_token: bool) -> Finding:
        assert self.env is not None
        detail = codec.error_text(body)
        evidence = f"HTTP {status}" + (f": {detail}" if detail else "")
        if status in (401, 403) and any(word in detail.lower() for word in BLOCKED_WORDS):
            return Finding(
                f"the account of user {user!r} is blocked: the password may be right, but logins are refused",
                "contact your broker (or Primary for reMarkets) to unblock it; do not retry in a loop — "
                "repeated failed logins are what usually blocks an account",
                evidence=evidence,
            )
        if status in (401, 403):
            return Finding(
                f"user {user!r} or its password is wrong for {self.env.name} — or it is a user of another "
                "environment (reMarkets users do not exist on live or at brokers, and the Matriz app login "
                "is not an API user)",
                "check primary.user / primary.password, and that environment matches where the user was "
                "issued (--env remarkets|live|<broker>)",
                evidence=evidence,
            )
        if status == 429:
            return Finding(
                "too many logins: Primary throttles them",
                "wait a minute before trying again",
                evidence=evidence,
            )
        if status >= 500:
            return Finding(
                f"{self.env.rest_url} failed with HTTP {status}",
                "the service is down or in maintenance; try again later",
                evidence=evidence,
            )
        return Finding(
            f"{self.env.rest_url} is not a Primary API (getToken answered HTTP {status}"
            + ("" if had_token else " without an X-Auth-Token header")
            + "): wrong environment",
            f"use one of {', '.join(known_names())} or your broker's https://api.<broker>.xoms.com.ar/",
            evidence=evidence,
        )

    # -- 4. REST ---------------------------------------------------------------------------------------
    async def rest(self) -> str:
        assert self.env is not None and self.token is not None
        request = codec.segments_request()
        wire = codec.wire(request).with_token(self.token)
        response = await self.http().request(wire.method, self.env.url(wire.target), headers=wire.headers)
        try:
            result = codec.parse_answer(request, response.status, response.headers, response.body)
        except SessionInvalid:
            raise Finding(
                f"the token was refused by REST right after the login (HTTP {response.status}): it was "
                "invalidated",
                FRESH_TOKEN_REMEDY,
                fix="token",
            ) from None
        except BrokerBridgeError as exc:
            raise Finding(exc.message, exc.remedy) from None
        return f"rest/segment/all: {len(result.segments)} segments"

    # -- 5. WebSocket handshake ----------------------------------------------------------------------
    async def ws_handshake(self) -> str:
        assert self.env is not None and self.token is not None
        await self.aclose_socket()
        masked = list(self.secrets)
        try:
            self._conn = await self._stack.enter_async_context(
                connect(
                    self.env.ws_url,
                    headers={codec.TOKEN_HEADER: self.token},
                    open_timeout=self.timeout,
                    redact=lambda text: redact(text, *masked),
                )
            )
        except SessionInvalid:
            raise Finding(
                "the WebSocket handshake was rejected: the token was refused on the upgrade (HTTP 401/403)",
                FRESH_TOKEN_REMEDY,
                fix="token",
            ) from None
        except BrokerBridgeError as exc:
            status = getattr(getattr(exc.__cause__, "response", None), "status_code", None)
            if status is None:
                raise Finding(exc.message, exc.remedy) from None
            raise Finding(
                f"the WebSocket handshake was rejected with HTTP {status} (the token itself was not the "
                "reason: that is 401)",
                "the server or a proxy in front of it refuses the upgrade: retry in a minute; if it stays, "
                f"check the WebSocket URL ({self.env.ws_url}: Primary's socket is the API host's root, "
                "not /ws) and any proxy that does not pass WebSockets",
                evidence=f"HTTP {status}",
            ) from None
        return f"{self.env.ws_url}: upgraded with the {codec.TOKEN_HEADER} header"

    async def aclose_socket(self) -> None:
        await self._stack.aclose()
        self._stack = contextlib.AsyncExitStack()
        self._conn = self._session = None

    # -- 6. smd → Md -----------------------------------------------------------------------------------
    async def market_data(self) -> str:
        assert self._conn is not None and self.config is not None
        stage = self._stage.tracker("md")
        session = PrimaryWsSession(account=self.config.account, wall_clock=self.clock.time)
        self._session = session
        session.add(
            Subscription(venue="primary", channel=Channel.TICKER, symbol=self.symbol), self.clock.monotonic()
        )
        session.connection_made(self.clock.monotonic())
        await self._flush()
        stage(f"smd sent for {self.symbol!r}; no Md yet")
        while True:
            await self._receive()
            for signal in session.signals_received():
                if isinstance(signal, SubscribeFailed):
                    raise Finding(
                        f"{self.symbol!r} was refused: {signal.error.message}",
                        "pick an instrument this environment lists with --symbol (see `brokerbridge "
                        "instruments`)",
                    )
                if isinstance(signal, TokenRejected):
                    raise Finding(signal.error.message, FRESH_TOKEN_REMEDY, fix="token")
            for event in session.events_received():
                if isinstance(event, Ticker):
                    return f"Md for {self.symbol!r}: bid {event.bid} ask {event.ask} last {event.last}"

    # -- 7. os -----------------------------------------------------------------------------------------
    async def order_reports(self) -> str:
        assert self._session is not None and self.config is not None
        stage = self._stage.tracker("os")
        session = self._session
        account = self.config.account
        session.add(Subscription(venue="primary", channel=Channel.EXECUTIONS), self.clock.monotonic())
        await self._flush()
        stage(f"os sent for account {account or '(all of the user’s)'}; no frame since")
        # Primary answers a refused `os` at once with an error frame; frames that follow it on the
        # same socket mean it was taken.
        frames = 0
        while frames < 2:
            await self._receive()
            frames += 1
            for signal in session.signals_received():
                if isinstance(signal, SubscribeFailed) and signal.sub.channel is Channel.EXECUTIONS:
                    raise Finding(
                        f"order reports refused: {signal.error.message}",
                        "set primary.account to an account this user may trade (ask your broker for "
                        "the account number linked to the API user)",
                    )
        reports = sum(1 for e in session.events_received() if isinstance(e, OrderUpdate))
        return f"os accepted for account {account or '(all)'}; socket still streaming" + (
            f", {reports} order reports" if reports else ""
        )

    async def _flush(self) -> None:
        assert self._conn is not None and self._session is not None
        for frame in self._session.data_to_send():
            await self._conn.send_text(frame)

    async def _receive(self) -> None:
        assert self._conn is not None and self._session is not None
        self._session.receive_text(await self._conn.recv_text(), self.clock.monotonic())

    # -- stalls ------------------------------------------------------------------------------------
    def _stalled(self, key: str) -> Callable[[float], Finding]:
        def finding(seconds: float) -> Finding:
            reached = self._stage.of(key)
            what = f"no Md for {self.symbol!r}" if key == "md" else "no frame after the os subscription"
            return Finding(
                f"stalled feed: {what} within {seconds:g} s ({reached})",
                "the socket is open but silent: most often the token was revoked by another login with "
                "the same user (sockets then stay open and say nothing) — log in again and reconnect; "
                "otherwise the market is closed for this instrument or the feed is stuck (try --symbol)",
                evidence=reached,
                fix="token",
            )

        return finding


def matriz_suggestion(environment: str) -> str | None:
    """For a `matriz.<broker>…` web-app host: the environment to use instead (a known broker name,
    else the broker's API URL); None for anything else."""
    host = _hostname(environment)
    if not host.startswith("matriz."):
        return None
    labels = host.split(".")
    broker = labels[1] if len(labels) >= 3 else ""
    if broker in ENVIRONMENTS:
        return broker
    if host.endswith(".matrizoms.com.ar"):
        return f"https://api.{'.'.join(labels[1:])}/"
    return f"https://api.{broker or '<broker>'}.xoms.com.ar/"


def _hostname(environment: str) -> str:
    text = environment.strip()
    if "://" not in text:
        text = "https://" + text
    try:
        return (urlsplit(text).hostname or "").lower()
    except ValueError:
        return ""


def _describe(environment: str) -> str:
    env = ENVIRONMENTS.get(environment)
    return env.rest_url if env is not None else "the broker's API host"
