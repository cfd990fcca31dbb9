"""`brokerbridge status`: what a running `serve` holds — venues, streams, token expiries, balance
freshness, connected clients — from its `GET /api/status` (a caller on its machine, or an admin
key). A table on a terminal (plain text elsewhere), `--json` for scripts. In a cluster (`--cluster
URL` or `[cluster] redis_url`) it shows the cluster instead, read from Redis directly
(cli/cluster_view.py).

Exit codes: 0 the server (or the cluster's Redis) answered (whatever the state of its venues:
`status` in the JSON says `ok` or `degraded`), 2 a bad option or a refusal, 3 no `serve` runs (none
found, or none answers) or the cluster's Redis does not answer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
from typing import Annotated

import msgspec
import typer
from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from brokerbridge.cli.attach import Attachment, BridgeOpt, StatusResponse, answers, candidate
from brokerbridge.cli.cluster_view import cluster_url, fetch_cluster, render_cluster
from brokerbridge.cli.common import ConfigOpt, LogFormatOpt, LogLevelOpt, fail, load, setup_logging
from brokerbridge.cli.discovery import discovery_file
from brokerbridge.cli.render import STATE_STYLE, ago
from brokerbridge.core.config import Config
from brokerbridge.core.errors import BrokerBridgeError, ClusterUnavailable
from brokerbridge.core.secret import Secret

NOT_RUNNING = 3  # as `systemctl status` of a stopped unit

READINESS_STYLE = {"ready": "green", "starting": "yellow", "degraded": "red"}


class Reported(msgspec.Struct, frozen=True, kw_only=True):
    """`status --json`: where the server was found, and what it answered."""

    url: str
    found_by: str
    server: StatusResponse


ClusterOpt = Annotated[
    str | None,
    typer.Option(
        "--cluster",
        help="Show the cluster on this Redis (redis://[:password@]host:port/db) instead: nodes, roles, "
        "leases, epochs, stream lags, read from Redis directly; also [cluster] redis_url.",
        show_default=False,
    ),
]


def status(
    json_out: Annotated[bool, typer.Option("--json", help="Print the status as JSON (for scripts).")] = False,
    bridge: BridgeOpt = None,
    cluster: ClusterOpt = None,
    config: ConfigOpt = None,
    log_level: LogLevelOpt = None,
    log_format: LogFormatOpt = None,
) -> None:
    """Show a running `brokerbridge serve`: venues, streams, token expiries, balance freshness and
    connected clients — or, with --cluster URL or [cluster] redis_url, the cluster (nodes, roles,
    leases, epochs, stream lags) from its Redis. Exit 3 when no serve runs (or Redis does not answer)."""
    err = Console(stderr=True)
    cfg = load(config, console=err)
    try:
        redis_url = cluster_url(cfg, cluster)
    except BrokerBridgeError as exc:
        fail(exc, err)
        return
    setup_logging(log_level or "WARNING", err, [cfg.client.key, redis_url], fmt=log_format or cfg.log_format)
    if redis_url is not None:
        _cluster_status(cfg, redis_url, json_out, err)
        return
    try:
        attachment, answer = asyncio.run(_status(cfg, bridge, err))
    except BrokerBridgeError as exc:
        fail(exc, err)
        return
    report = Reported(url=attachment.url, found_by=attachment.found_by, server=answer)
    if json_out:
        sys.stdout.write(msgspec.json.encode(report).decode() + "\n")
        sys.stdout.flush()
        return
    Console(highlight=False, emoji=False).print(render_status(report))


def _cluster_status(cfg: Config, url: Secret, json_out: bool, err: Console) -> None:
    try:
        view = asyncio.run(fetch_cluster(cfg, url))
    except ClusterUnavailable as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(NOT_RUNNING) from None
    except BrokerBridgeError as exc:
        fail(exc, err)
        return
    if json_out:
        sys.stdout.write(msgspec.json.encode(view).decode() + "\n")
        sys.stdout.flush()
        return
    Console(highlight=False, emoji=False).print(render_cluster(view))


async def running_server(cfg: Config, bridge: str | None, err: Console) -> Attachment:
    """The running server named by --bridge, [client] url or the discovery file; exit 3 without one."""
    found = candidate(cfg, bridge)
    if found is None:
        err.print(
            "[bold red]error:[/] no brokerbridge serve is running here (no live discovery file "
            f"{escape(str(discovery_file(cfg.server.state_dir)))})\n→ start one with `brokerbridge "
            "serve`, or name it with --bridge URL or \\[client] url",
            highlight=False,
        )
        raise typer.Exit(NOT_RUNNING)
    why = await answers(found)
    if why is not None:
        err.print(
            f"[bold red]error:[/] no brokerbridge serve answers at {escape(found.url)} (from "
            f"{escape(found.found_by)}): "
            f"{escape(why)}\n→ start `brokerbridge serve`, or correct --bridge / \\[client] url",
            highlight=False,
        )
        raise typer.Exit(NOT_RUNNING)
    return found


async def _status(cfg: Config, bridge: str | None, err: Console) -> tuple[Attachment, StatusResponse]:
    found = await running_server(cfg, bridge, err)
    async with found.client() as client:
        return found, await client.status()


def render_status(report: Reported) -> Group:
    answer = report.server
    now = answer.now
    started = dt.datetime.fromtimestamp(answer.started_at).strftime("%Y-%m-%d %H:%M:%S")
    head = Text()
    head.append(f"brokerbridge serve {answer.version} at {report.url}", style="bold")
    head.append(f" — pid {answer.pid}, up {ago(now - answer.started_at)} (since {started}); ")
    head.append(answer.status, style="green" if answer.status == "ok" else "yellow")
    if answer.ready is not None:
        head.append(
            " · ready" if answer.ready else " · not ready", style="green" if answer.ready else "yellow"
        )
    streams = Table("venue", "stream", "state", "mode", "reconnects", "last message", "last error", box=None)
    for venue, venue_status in answer.venues.items():
        for name, stream in venue_status.health.streams.items():
            age = stream.seconds_since_last_message
            streams.add_row(
                venue,
                name,
                Text(stream.state, style=STATE_STYLE.get(stream.state, "")),
                stream.mode,
                "" if stream.reconnects is None else str(stream.reconnects),
                "" if age is None else f"{ago(age)} ago",
                stream.last_error or "",
            )
        if not venue_status.health.streams:
            streams.add_row(venue, "—", Text("no stream open", style="dim"), "", "", "", "")
    venues = Table("venue", "state", "credentials", "token", "balances", box=None)
    for venue, venue_status in answer.venues.items():
        health, balances = venue_status.health, venue_status.balances
        expiry = health.token_expires_at
        token = "none issued yet" if expiry is None else f"expires in {ago(expiry - now)}"
        if expiry is not None and expiry <= now:
            token = "expired"
        if balances.updated_at is None:
            held = "none received yet"
        else:
            held = f"{balances.assets} assets, updated {ago(now - balances.updated_at)} ago"
            if balances.stale:
                held += f", {balances.stale} stale"
        creds = "SIMULATED (demo account)" if health.simulated else "yes" if health.credentials else "no"
        readiness = health.readiness
        state = Text()
        if readiness is not None:
            state.append(readiness.state, style=READINESS_STYLE.get(readiness.state, ""))
            if not readiness.ready and readiness.reason:
                state.append(f": {readiness.reason}")
        venues.add_row(venue, state, creds, token, held)
    clients = answer.clients
    keys = ", ".join(f"{name} {count}" for name, count in sorted(clients.by_key.items()))
    line = Text(
        f"clients: {clients.connections} WebSocket connection(s)"
        + (f" (keys: {keys}; without a key name: {clients.unnamed})" if keys else "")
        + f", {clients.queued_messages} message(s) queued"
    )
    return Group(head, Text(), venues, Text(), streams, Text(), line)
