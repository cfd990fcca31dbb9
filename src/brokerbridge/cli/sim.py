"""`brokerbridge sim <venue>`: run a protocol-faithful local simulator until SIGINT/SIGTERM.

The first line on stdout is one JSON object with the endpoints and the demo credentials, flushed,
so a parent process can read it and connect; logs go to stderr.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from brokerbridge.cli import logs
from brokerbridge.cli.logs import LOG_LEVELS
from brokerbridge.core.config import LOG_FORMATS
from brokerbridge.sim.faults import STALL_SCOPES, KrakenFaults, PrimaryFaults
from brokerbridge.sim.primary.tokens import TOKEN_TTL_S

app = typer.Typer(help="Run a local venue simulator (prints its endpoints as JSON on the first line).")

HostOpt = Annotated[str, typer.Option(help="Interface to bind.")]
PortOpt = Annotated[int, typer.Option(help="Port for REST, WebSockets and control (0 = a free port).")]
SeedOpt = Annotated[int, typer.Option(help="Seed of the simulated market (same seed, same market).")]
DropEveryOpt = Annotated[float, typer.Option(help="Drop every WebSocket connection every N seconds.")]
RestHttpErrorsOpt = Annotated[
    int, typer.Option(help="Answer the next N REST calls with HTTP 5xx (-1 = always).")
]
RestHttpStatusOpt = Annotated[int, typer.Option(help="The 5xx status for --rest-http-errors.")]
LatencyOpt = Annotated[float, typer.Option(help="Added latency on every REST answer and WebSocket frame.")]
RestTrickleOpt = Annotated[
    float, typer.Option(help="Send every REST answer's body one byte every N seconds (0 = off).")
]
RestHeadersOnlyOpt = Annotated[
    int, typer.Option(help="Answer the next N REST calls with headers only, never the body (-1 = always).")
]
SimLogLevelOpt = Annotated[str, typer.Option(help="Log level for stderr.")]
SimLogFormatOpt = Annotated[
    str, typer.Option(help="auto (rich on a terminal, plain otherwise), rich, plain or json.")
]


def _setup_logging(log_level: str, log_format: str) -> None:
    if log_level.upper() not in LOG_LEVELS:
        raise typer.BadParameter(
            f"{log_level!r} is not one of {', '.join(LOG_LEVELS)}", param_hint="--log-level"
        )
    if log_format.lower() not in LOG_FORMATS:
        raise typer.BadParameter(
            f"{log_format!r} is not one of {', '.join(LOG_FORMATS)}", param_hint="--log-format"
        )
    logs.configure(log_level, log_format.lower(), Console(stderr=True))


def _apply(faults: Any, switches: dict[str, Any]) -> None:
    try:
        faults.apply(switches)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


async def _serve(simulator: Any) -> None:
    """Run `simulator` until SIGINT/SIGTERM; the endpoints JSON is the first stdout line."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with simulator as sim:
        sys.stdout.write(json.dumps(sim.endpoints.to_dict()) + "\n")
        sys.stdout.flush()
        await stop.wait()


@app.callback()
def _sim() -> None:
    """Local venue simulators."""


@app.command("kraken")
def kraken(
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 0,
    seed: SeedOpt = 0,
    tick_ms: Annotated[float, typer.Option(help="Market step interval in milliseconds.")] = 10.0,
    drop_every: DropEveryOpt = 0.0,
    stall: Annotated[
        str | None, typer.Option(help=f"Stall a feed: one of {', '.join(STALL_SCOPES)}.")
    ] = None,
    corrupt_checksums: Annotated[int, typer.Option(help="Corrupt the next N book checksums.")] = 0,
    skip_sequence: Annotated[
        list[str] | None, typer.Option(help="Skip one sequence number on this private channel.")
    ] = None,
    lose_message: Annotated[
        list[str] | None,
        typer.Option(help="Lose the next message of this private channel (its sequence number is used)."),
    ] = None,
    deny_permission: Annotated[
        list[str] | None, typer.Option(help="Deny this permission on the demo key (e.g. websockets).")
    ] = None,
    rest_unavailable: Annotated[
        int, typer.Option(help="Answer the next N REST calls EService:Unavailable (-1 = always).")
    ] = 0,
    rest_http_errors: RestHttpErrorsOpt = 0,
    rest_http_status: RestHttpStatusOpt = 503,
    rate_limit: Annotated[
        int, typer.Option(help="Answer the next N private calls EAPI:Rate limit exceeded (-1 = always).")
    ] = 0,
    latency_ms: LatencyOpt = 0.0,
    rest_trickle: RestTrickleOpt = 0.0,
    rest_headers_only: RestHeadersOnlyOpt = 0,
    system_status: Annotated[
        str, typer.Option(help="Engine status: online, maintenance (market frozen), cancel_only, post_only.")
    ] = "online",
    log_level: SimLogLevelOpt = "WARNING",
    log_format: SimLogFormatOpt = "auto",
) -> None:
    """Simulated Kraken Spot: REST /0/public|private, WebSocket /v2 and /auth/v2, control /_sim."""
    _setup_logging(log_level, log_format)
    faults = KrakenFaults()
    _apply(
        faults,
        {
            "drop_every_s": drop_every,
            "system_status": system_status,
            "stall": stall,
            "corrupt_checksums": corrupt_checksums,
            "skip_sequence": list(skip_sequence or []),
            "lose_message": list(lose_message or []),
            "deny_permissions": list(deny_permission or []),
            "rest_unavailable": rest_unavailable,
            "rest_http_errors": rest_http_errors,
            "rest_http_status": rest_http_status,
            "rate_limit": rate_limit,
            "latency_ms": latency_ms,
            "rest_trickle_s": rest_trickle,
            "rest_headers_only": rest_headers_only,
        },
    )
    from brokerbridge.sim.kraken import KrakenSimulator

    asyncio.run(_serve(KrakenSimulator(host, port, seed=seed, faults=faults, tick_s=tick_ms / 1000)))


@app.command("primary")
def primary(
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 0,
    seed: SeedOpt = 0,
    tick_ms: Annotated[float, typer.Option(help="Market step interval in milliseconds.")] = 100.0,
    user: Annotated[str | None, typer.Option(help="Demo user name (default: bbdemo).")] = None,
    password: Annotated[
        str | None, typer.Option(help="Demo password (default: derived from the seed).")
    ] = None,
    account: Annotated[str | None, typer.Option(help="Demo account (default: REM<n> from the seed).")] = None,
    token_ttl: Annotated[
        float, typer.Option(help="Seconds a token lives (Primary: 24 h); shorter to see clients renew.")
    ] = TOKEN_TTL_S,
    drop_every: DropEveryOpt = 0.0,
    stall: Annotated[
        str | None, typer.Option(help="Stall the socket: public (Md), private (or) or all.")
    ] = None,
    rest_http_errors: RestHttpErrorsOpt = 0,
    rest_http_status: RestHttpStatusOpt = 503,
    reject_ws_handshake: Annotated[
        int, typer.Option(help="Refuse the next N WebSocket handshakes with HTTP 503 (-1 = always).")
    ] = 0,
    latency_ms: LatencyOpt = 0.0,
    rest_trickle: RestTrickleOpt = 0.0,
    rest_headers_only: RestHeadersOnlyOpt = 0,
    idle_close_s: Annotated[
        float, typer.Option(help="Close sockets that send nothing (not even pings) for N s (0 = never).")
    ] = 60.0,
    relogin_invalidates: Annotated[
        bool, typer.Option(help="Logging in again revokes the user's previous tokens (sockets go silent).")
    ] = True,
    block_user: Annotated[
        bool, typer.Option(help="Refuse the demo user's logins: 401 invalid_grant 'User account is locked'.")
    ] = False,
    option_arbitrage: Annotated[
        str | None,
        typer.Option(help="Quote one option's ask below intrinsic value: auto, or a ticker (GFGC6000DI)."),
    ] = None,
    freeze_underlying: Annotated[
        bool, typer.Option(help="Hold GGAL's books still (a stale underlying for the options).")
    ] = False,
    log_level: SimLogLevelOpt = "WARNING",
    log_format: SimLogFormatOpt = "auto",
) -> None:
    """Simulated Primary API (pyRofex-compatible): REST /auth and /rest, WebSocket at /, control /_sim."""
    _setup_logging(log_level, log_format)
    if not token_ttl > 0:
        raise typer.BadParameter(
            f"{token_ttl!r} is not a positive number of seconds", param_hint="--token-ttl"
        )
    faults = PrimaryFaults()
    _apply(
        faults,
        {
            "drop_every_s": drop_every,
            "stall": stall,
            "rest_http_errors": rest_http_errors,
            "rest_http_status": rest_http_status,
            "reject_ws_handshake": reject_ws_handshake,
            "latency_ms": latency_ms,
            "rest_trickle_s": rest_trickle,
            "rest_headers_only": rest_headers_only,
            "idle_close_s": idle_close_s,
            "relogin_invalidates": relogin_invalidates,
            "block_user": block_user,
            "option_arbitrage": option_arbitrage,
            "freeze_underlying": freeze_underlying,
        },
    )
    from brokerbridge.sim.primary import PrimarySimulator

    simulator = PrimarySimulator(
        host,
        port,
        seed=seed,
        faults=faults,
        tick_s=tick_ms / 1000,
        token_ttl_s=token_ttl,
        user=user,
        password=password,
        account=account,
    )
    asyncio.run(_serve(simulator))
