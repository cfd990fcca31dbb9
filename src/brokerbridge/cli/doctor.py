"""`brokerbridge doctor`: check every link to a venue, one line each, with what to do on failure."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.console import Console

from brokerbridge.cli.common import (
    ConfigOpt,
    LogLevelOpt,
    RestUrlOpt,
    SimOpt,
    WsAuthUrlOpt,
    WsUrlOpt,
    load,
    setup_logging,
)
from brokerbridge.cli.doctor_primary import primary_checks
from brokerbridge.cli.runtime import venue_config
from brokerbridge.core.config import Config, KrakenConfig
from brokerbridge.core.errors import BrokerBridgeError, TransportError
from brokerbridge.core.events import Channel, Subscription
from brokerbridge.core.signals import Subscribed, SubscribeFailed, TokenRejected
from brokerbridge.io.kraken.rest import KrakenRestClient
from brokerbridge.io.ws import connect
from brokerbridge.venues.kraken.session import KrakenWsSession


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def doctor(
    venue: Annotated[str, typer.Option(help="Venue to check: kraken or primary.")] = "kraken",
    sim: SimOpt = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each network check.")] = 10.0,
    config: ConfigOpt = None,
    kraken_rest_url: RestUrlOpt = None,
    kraken_ws_url: WsUrlOpt = None,
    kraken_ws_auth_url: WsAuthUrlOpt = None,
    log_level: LogLevelOpt = None,
) -> None:
    """Check a venue link by link: config, REST, credentials, permissions, WebSockets (with remedies)."""
    err = Console(stderr=True)
    cfg = load(config, kraken_rest_url, kraken_ws_url, kraken_ws_auth_url, err)
    setup_logging(
        log_level or "WARNING", err, [cfg.kraken.api_secret, cfg.primary.password if cfg.primary else None]
    )
    out = Console(highlight=False, emoji=False)
    if venue not in ("kraken", "primary"):
        err.print(f"[bold red]error:[/] unknown venue {venue!r} — use kraken or primary")
        raise typer.Exit(2)
    checks = asyncio.run(_doctor(cfg, venue, sim, timeout, err))
    for check in checks:
        mark = "[green]✓[/]" if check.ok else "[red]✗[/]"
        out.print(f"{mark} {check.name}: {check.detail}")
    failed = [c for c in checks if not c.ok]
    out.print(f"\n{len(checks) - len(failed)}/{len(checks)} checks passed")
    raise typer.Exit(1 if failed else 0)


async def _doctor(cfg: Config, venue: str, sim: bool | None, wait_s: float, err: Console) -> list[Check]:
    async with venue_config(cfg, use_sim=sim, console=err, venues={venue}) as run_cfg:
        if venue == "primary":

            async def probe(name: str, run: Callable[[], Awaitable[str]]) -> tuple[str, bool, str]:
                result = await _check(name, wait_s, run)
                return result.name, result.ok, result.detail

            return [Check(*c) for c in await primary_checks(run_cfg.primary, probe)]
        return await kraken_checks(run_cfg.kraken, wait_s)


async def _check(name: str, wait_s: float, probe: Callable[[], Awaitable[str]]) -> Check:
    try:
        return Check(name, True, await asyncio.wait_for(probe(), wait_s))
    except TimeoutError:
        return Check(name, False, f"no answer within {wait_s:.0f}s — check the URL and the network")
    except BrokerBridgeError as exc:
        return Check(name, False, str(exc))


async def kraken_checks(kraken: KrakenConfig, wait_s: float) -> list[Check]:
    rest = KrakenRestClient(kraken)
    checks: list[Check] = []
    try:

        async def server_time() -> str:
            before = time.time()
            result = await rest.public("Time")
            skew = result.unixtime - (before + time.time()) / 2
            note = "" if abs(skew) < 5 else " — your clock is off; fix NTP (nonces are time-based)"
            return f"{kraken.rest_url} answered; clock skew {skew:+.1f}s{note}"

        checks.append(await _check("Kraken REST", wait_s, server_time))

        async def system_status() -> str:
            result = await rest.public("SystemStatus")
            if result.status != "online":
                raise TransportError(
                    f"Kraken reports status {result.status!r}", remedy="wait for it to be online"
                )
            return "online"

        checks.append(await _check("Kraken system status", wait_s, system_status))
        checks.append(await _check("Kraken public WebSocket", wait_s, lambda: _ws_probe(kraken, None)))
        if not kraken.has_credentials:
            checks.append(
                Check(
                    "Kraken credentials",
                    True,
                    "none configured: public data only (set kraken.api_key/secret)",
                )
            )
            return checks

        async def funds() -> str:
            result = await rest.private("BalanceEx")
            return f"key accepted; Query Funds ok ({len(result)} assets)"

        checks.append(await _check("Kraken API key / Query Funds", wait_s, funds))

        async def orders() -> str:
            result = await rest.private("OpenOrders")
            return f"Query Open Orders ok ({len(result.open)} open)"

        checks.append(await _check("Kraken Query Open Orders & Trades", wait_s, orders))
        token: dict[str, Any] = {}

        async def ws_token() -> str:
            result = await rest.private("GetWebSocketsToken")
            token["value"] = result.token
            return f"Access WebSockets API ok (token valid {result.expires}s)"

        checks.append(await _check("Kraken WebSocket token", wait_s, ws_token))
        if "value" in token:
            checks.append(
                await _check("Kraken private WebSocket", wait_s, lambda: _ws_probe(kraken, token["value"]))
            )
        return checks
    finally:
        await rest.aclose()


async def _ws_probe(kraken: KrakenConfig, token: str | None) -> str:
    """Connect and subscribe once (ticker BTC/USD, or balances with the token); wait for the ack."""
    private = token is not None
    session = KrakenWsSession(private=private)
    if token is not None:
        session.set_token(token)
        sub = Subscription(venue="kraken", channel=Channel.BALANCES)
    else:
        sub = Subscription(venue="kraken", channel=Channel.TICKER, symbol="BTC/USD")
    session.add(sub, 0.0)
    url = kraken.ws_auth_url if private else kraken.ws_url
    async with connect(url) as conn:
        session.connection_made(time.monotonic())
        for frame in session.data_to_send():
            await conn.send_text(frame)
        while True:
            session.receive_text(await conn.recv_text(), time.monotonic())
            for signal in session.signals_received():
                match signal:
                    case Subscribed():
                        return f"{url} connected; subscribed to {sub.channel.value}"
                    case SubscribeFailed(error=error) | TokenRejected(error=error):
                        raise error
