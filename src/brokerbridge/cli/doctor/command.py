"""The `brokerbridge doctor [kraken|primary]` command: run the steps, fix what is safe, report."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from brokerbridge.cli.attach import Attachment, BridgeOpt, StandaloneOpt, find_bridge, say
from brokerbridge.cli.common import (
    ConfigOpt,
    LogFormatOpt,
    LogLevelOpt,
    RestUrlOpt,
    WsAuthUrlOpt,
    WsUrlOpt,
    fail,
    load,
    setup_logging,
)
from brokerbridge.cli.doctor.attached import AttachedDoctor, same_endpoint
from brokerbridge.cli.doctor.fixes import ConfigTarget, fix_kraken, fix_primary
from brokerbridge.cli.doctor.kraken import KrakenDoctor
from brokerbridge.cli.doctor.primary import PROBE_SYMBOL, PrimaryDoctor
from brokerbridge.cli.doctor.render import print_report, to_json
from brokerbridge.cli.doctor.steps import (
    Doctor,
    FixReport,
    Report,
    Status,
    StepResult,
    merge,
    run_steps,
)
from brokerbridge.cli.runtime import venue_config
from brokerbridge.core.clock import Clock, SystemClock
from brokerbridge.core.config import Config, KrakenConfig, PrimaryConfig
from brokerbridge.core.errors import BrokerBridgeError
from brokerbridge.core.secret import Secret

VENUES = ("kraken", "primary")


async def examine(
    venue: str,
    doctor: Doctor,
    fixer: Callable[[list[StepResult]], Awaitable[list[FixReport]]] | None,
    *,
    clock: Clock,
    step_timeout: float,
) -> Report:
    """Run every step; with a fixer, apply its fixes and run the steps again to verify them."""
    try:
        results = await run_steps(
            doctor.steps(), step_timeout=step_timeout, clock=clock, timeouts=doctor.timeouts()
        )
        report = Report(venue, doctor.target, results)
        if fixer is None or report.ok:
            return report
        fixes = await fixer([r for r in results if r.status is Status.FAIL])
        report.fixes = fixes
        if any(f.applied for f in fixes):
            await doctor.aclose()  # fresh clients and sockets for the re-run
            again = await run_steps(
                doctor.steps(), step_timeout=step_timeout, clock=clock, timeouts=doctor.timeouts()
            )
            notes = {f.step: f"fixed by --fix: {f.action}" for f in fixes if f.applied}
            report.results = merge(results, again, notes)
            report.target = doctor.target
        return report
    finally:
        await doctor.aclose()


async def diagnose_kraken(
    config: KrakenConfig,
    *,
    clock: Clock,
    step_timeout: float = 10.0,
    fix: bool = False,
    target: ConfigTarget = ConfigTarget(None),
    symbol: str = "BTC/USD",
    trading: bool = False,
) -> tuple[Report, list[str]]:
    """The Kraken report and every secret the run saw (for masking the output)."""
    doctor = KrakenDoctor(config, clock, step_timeout, symbol=symbol, trading=trading)

    async def fixer(failed: list[StepResult]) -> list[FixReport]:
        return await fix_kraken(doctor, failed, target)

    report = await examine("kraken", doctor, fixer if fix else None, clock=clock, step_timeout=step_timeout)
    return report, [*doctor.secrets, *_reveal(config.api_secret), config.api_key or ""]


async def diagnose_primary(
    config: PrimaryConfig | None,
    *,
    clock: Clock,
    environment: str | None = None,
    step_timeout: float = 10.0,
    fix: bool = False,
    target: ConfigTarget = ConfigTarget(None),
    symbol: str = PROBE_SYMBOL,
) -> tuple[Report, list[str]]:
    doctor = PrimaryDoctor(config, clock, step_timeout, environment=environment, symbol=symbol)

    async def fixer(failed: list[StepResult]) -> list[FixReport]:
        return await fix_primary(doctor, failed, target)

    report = await examine("primary", doctor, fixer if fix else None, clock=clock, step_timeout=step_timeout)
    return report, [*doctor.secrets, *_reveal(config.password if config else None)]


def _reveal(secret: Secret | None) -> list[str]:
    return [secret.reveal()] if secret else []


def doctor(
    venue: Annotated[
        str | None,
        typer.Argument(help="kraken or primary (default kraken).", show_default=False),
    ] = None,
    venue_option: Annotated[
        str | None,
        typer.Option(
            "--venue", help="The same as the VENUE argument (kept for scripts).", show_default=False
        ),
    ] = None,
    env: Annotated[
        str | None,
        typer.Option(
            "--env",
            help="Primary: remarkets, live, a broker (cocos, bull, …) or an API URL; replaces the "
            "configured environment for this check.",
            show_default=False,
        ),
    ] = None,
    sim: Annotated[
        bool | None,
        typer.Option(
            "--sim/--no-sim",
            help="Check the embedded simulator of the venue (a demo of every step), or not (default: "
            "the simulator when the venue has no credentials or URLs configured, as watch and serve "
            "do; --no-sim checks the real venue anyway).",
            show_default=False,
        ),
    ] = None,
    trading: Annotated[
        bool,
        typer.Option(
            "--trading",
            help="Kraken: also check the trading permissions (Create & Modify Orders, Cancel/Close "
            "Orders) — nothing is placed or cancelled. Use it if you trade through brokerbridge.",
        ),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON (for scripts).")] = False,
    fix: Annotated[
        bool,
        typer.Option(
            "--fix",
            help="Apply the safe fixes (nonce scale, fresh token, API host written to the config file), "
            "then run the steps again to verify; say plainly what cannot be fixed.",
        ),
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="Seconds each step may take (a feed silent this long is stalled).")
    ] = 10.0,
    symbol: Annotated[
        str | None,
        typer.Option(
            "--symbol",
            "-s",
            help="Instrument to probe (default BTC/USD; Primary: MERV - XMEV - GGAL - 24hs).",
        ),
    ] = None,
    config: ConfigOpt = None,
    kraken_rest_url: RestUrlOpt = None,
    kraken_ws_url: WsUrlOpt = None,
    kraken_ws_auth_url: WsAuthUrlOpt = None,
    log_level: LogLevelOpt = None,
    log_format: LogFormatOpt = None,
    bridge: BridgeOpt = None,
    standalone: StandaloneOpt = False,
) -> None:
    """Check a venue link by link, say what is wrong and what to do; exit 0 only if every step passes.

    Next to a running `brokerbridge serve` the steps that need a venue session are checked through
    it (no login of the doctor's own, which would revoke serve's Primary token); --standalone
    checks everything with sessions of its own.

    Kraken: credentials, REST and clock skew, a signed call, the key's permissions (Query Funds,
    Query Open / Closed Orders & Trades, Access WebSockets API; with --trading also Create & Modify
    and Cancel/Close Orders), the WebSocket token, the public and the private WebSocket. Primary: API
    host, DNS/TLS, login, REST, WebSocket handshake, smd, os.
    """
    err = Console(stderr=True)
    chosen = _venue(venue, venue_option, err)
    if env is not None and chosen != "primary":
        err.print("[bold red]error:[/] --env is for `doctor primary`")
        raise typer.Exit(2)
    if trading and chosen != "kraken":
        err.print("[bold red]error:[/] --trading is for `doctor kraken`")
        raise typer.Exit(2)
    if timeout <= 0:
        err.print("[bold red]error:[/] --timeout must be a positive number of seconds")
        raise typer.Exit(2)
    cfg = load(config, kraken_rest_url, kraken_ws_url, kraken_ws_auth_url, err)
    setup_logging(
        log_level or "WARNING",
        err,
        [cfg.kraken.api_secret, cfg.primary.password if cfg.primary else None, cfg.client.key],
        fmt=log_format or cfg.log_format,
    )
    path = config or (
        Path(os.environ["BROKERBRIDGE_CONFIG"]) if os.environ.get("BROKERBRIDGE_CONFIG") else None
    )
    from brokerbridge.sim.embedded import wants_kraken_sim, wants_primary_sim  # loads the simulators

    simulated = (wants_primary_sim if chosen == "primary" else wants_kraken_sim)(cfg, sim)
    if env is not None and sim is None:
        simulated = False  # --env names the venue to check
    target = ConfigTarget(path, simulated=simulated)
    try:
        attached = asyncio.run(_attachment(cfg, bridge, standalone, sim is True, trading, env, err))
    except BrokerBridgeError as exc:
        fail(exc, err)
    if attached is not None:
        report, secrets = asyncio.run(
            diagnose_attached(cfg, chosen, attached, fix=fix, step_timeout=timeout, symbol=symbol, err=err)
        )
    else:
        plan = _Plan(chosen, env, simulated, fix, timeout, symbol, trading)
        report, secrets = asyncio.run(_run(cfg, plan, target, err))
    if json_out:
        sys.stdout.write(to_json(report, secrets) + "\n")
        sys.stdout.flush()
    else:
        print_report(Console(highlight=False, emoji=False), report, secrets)
    raise typer.Exit(report.exit_code)


async def _attachment(
    cfg: Config,
    bridge: str | None,
    standalone: bool,
    sim: bool,
    trading: bool,
    env: str | None,
    err: Console,
) -> Attachment | None:
    """The running server to check through, unless a flag asks for the doctor's own sessions."""
    reason = (
        "--sim: the embedded simulator"
        if sim
        else "--trading: the order permissions are probed with signed calls of its own"
        if trading
        else "--env: an environment of its own"
        if env is not None
        else "--standalone"
        if standalone
        else None
    )
    return await find_bridge(cfg, bridge, reason, err)


async def diagnose_attached(
    cfg: Config,
    venue: str,
    attachment: Attachment,
    *,
    fix: bool,
    step_timeout: float,
    symbol: str | None,
    err: Console,
    clock: Clock | None = None,
) -> tuple[Report, list[str]]:
    """The report of `venue` through a running server (cli/doctor/attached.py)."""
    clock = clock or SystemClock()
    if fix:
        say(
            err,
            "--fix is not applied through serve: the fixes need the doctor's own venue session "
            "(stop serve, or run `doctor --standalone --fix`)",
        )
    local: KrakenDoctor | PrimaryDoctor
    if venue == "primary":
        local = PrimaryDoctor(cfg.primary, clock, step_timeout, symbol=symbol or PROBE_SYMBOL)
    else:
        local = KrakenDoctor(cfg.kraken, clock, step_timeout, symbol=symbol or "BTC/USD")
    try:
        async with attachment.client() as client:
            served = (await client.health()).venues.get(venue)
    except BrokerBridgeError:
        served = None  # the serve step says why
    local_steps = same_endpoint(cfg, venue, served)
    if not local_steps:
        say(err, f"the config names other {venue} endpoints than serve's: only serve's are checked")
    doctor = AttachedDoctor(venue, local, attachment, clock, symbol or local.symbol, local_steps=local_steps)
    report = await examine(venue, doctor, None, clock=clock, step_timeout=step_timeout)
    return report, [*doctor.secrets, *([cfg.client.key.reveal()] if cfg.client.key else [])]


def _venue(argument: str | None, option: str | None, err: Console) -> str:
    if argument and option and argument != option:
        err.print(f"[bold red]error:[/] venue {argument!r} and --venue {option!r} disagree")
        raise typer.Exit(2)
    chosen = (argument or option or "kraken").lower()
    if chosen not in VENUES:
        err.print(f"[bold red]error:[/] unknown venue {chosen!r} — use kraken or primary")
        raise typer.Exit(2)
    return chosen


@dataclasses.dataclass(frozen=True, slots=True)
class _Plan:
    venue: str
    env: str | None
    simulated: bool  # the embedded simulator is checked (asked for, or nothing is configured)
    fix: bool
    step_timeout: float
    symbol: str | None
    trading: bool


async def _run(cfg: Config, plan: _Plan, target: ConfigTarget, err: Console) -> tuple[Report, list[str]]:
    if plan.env is not None:
        primary = dataclasses.replace(
            cfg.primary or PrimaryConfig(), environment=plan.env, rest_url=None, ws_url=None
        )
        cfg = dataclasses.replace(cfg, primary=primary)
    clock = SystemClock()
    async with venue_config(cfg, use_sim=plan.simulated, console=err, venues={plan.venue}) as run_cfg:
        if plan.venue == "primary":
            report, secrets = await diagnose_primary(
                run_cfg.primary,
                clock=clock,
                step_timeout=plan.step_timeout,
                fix=plan.fix,
                target=target,
                symbol=plan.symbol or PROBE_SYMBOL,
            )
        else:
            report, secrets = await diagnose_kraken(
                run_cfg.kraken,
                clock=clock,
                step_timeout=plan.step_timeout,
                fix=plan.fix,
                target=target,
                symbol=plan.symbol or "BTC/USD",
                trading=plan.trading,
            )
    if plan.simulated:
        # Said in the report itself, not only in a log line: every step passing here proves
        # nothing about a real account.
        report.simulated = True
        report.target = f"EMBEDDED SIMULATOR, not a real venue · {report.target}"
    return report, secrets
