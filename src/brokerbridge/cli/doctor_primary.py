"""`brokerbridge doctor --venue primary`: environment, login, REST, instruments, account, WebSocket."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from brokerbridge.core.clock import SystemClock
from brokerbridge.core.config import PrimaryConfig
from brokerbridge.core.errors import ConfigError
from brokerbridge.core.events import Channel, Subscription
from brokerbridge.core.signals import Subscribed, SubscribeFailed
from brokerbridge.io.primary.rest import PrimaryRestClient
from brokerbridge.io.token import TokenManager
from brokerbridge.io.ws import connect
from brokerbridge.venues.primary import rest as codec
from brokerbridge.venues.primary.environments import resolve_environment
from brokerbridge.venues.primary.session import PrimaryWsSession

Check = tuple[str, bool, str]
Probe = Callable[[str, Callable[[], Awaitable[str]]], Awaitable[Check]]

PROBE_SYMBOL = "MERV - XMEV - GGAL - 24hs"


async def primary_checks(primary: PrimaryConfig | None, check: Probe) -> list[Check]:
    if primary is None:
        return [("Primary configuration", False, "no [primary] section or BROKERBRIDGE_PRIMARY_* settings")]
    try:
        env = resolve_environment(primary.rest_url or primary.environment, ws_url=primary.ws_url)
    except ConfigError as exc:
        return [("Primary environment", False, str(exc))]
    results: list[Check] = [("Primary environment", True, f"{env.name}: {env.rest_url} · {env.ws_url}")]
    rest = PrimaryRestClient(primary, env)
    tokens = TokenManager(rest.login, clock=SystemClock(), venue="primary")
    rest.tokens = tokens
    try:

        async def login() -> str:
            await tokens.get()
            return "token received (valid 24 h)"

        results.append(await check("Primary login", login))
        if not results[-1][1]:
            return results

        async def segments() -> str:
            response = await rest.call(codec.segments_request())
            return f"REST answers ({len(response.segments)} segments)"

        results.append(await check("Primary REST", segments))

        async def instruments() -> str:
            response = await rest.call(codec.instruments_all_request())
            return f"{len(response.instruments)} instruments listed"

        results.append(await check("Primary instruments", instruments))
        if primary.account:
            account = primary.account

            async def report() -> str:
                await rest.call(codec.account_report_request(account))
                return f"account {account} readable (risk API)"

            results.append(await check("Primary account", report))

        async def websocket() -> str:
            return await _ws_probe(env.ws_url, await tokens.get(), tokens.redact)

        results.append(await check("Primary WebSocket", websocket))
        return results
    finally:
        await rest.aclose()


async def _ws_probe(url: str, token: str, redact: Callable[[str], str]) -> str:
    """Connect with the token header, subscribe to one product, wait for its first `Md`."""
    session = PrimaryWsSession(confirm_after=30.0)
    sub = Subscription(venue="primary", channel=Channel.TICKER, symbol=PROBE_SYMBOL)
    session.add(sub, 0.0)
    async with connect(url, headers={codec.TOKEN_HEADER: token}, redact=redact) as conn:
        session.connection_made(time.monotonic())
        for frame in session.data_to_send():
            await conn.send_text(frame)
        while True:
            session.receive_text(await conn.recv_text(), time.monotonic())
            for signal in session.signals_received():
                if isinstance(signal, Subscribed):
                    return f"{url} connected; market data for {PROBE_SYMBOL} received"
                if isinstance(signal, SubscribeFailed):
                    raise signal.error
