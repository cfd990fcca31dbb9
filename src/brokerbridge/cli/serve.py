"""`brokerbridge serve`: the bridge server (WebSocket /ws, REST /api, /metrics) in one process.

With no credentials configured both simulators run in-process, so a newcomer gets live data at once;
each simulated venue is said so (a WARNING, "SIMULATED" next to it below, `simulated` in /api/venues,
the dashboard's SIMULADOR badge). `--venue` (repeatable; `[server] venues`) runs only those venues.
The first URL printed is a one-time sign-in link for the dashboard (on loopback by default): it goes
to stdout with print(), never through logging, so it lands in no log file.
SIGINT/SIGTERM: every client gets a close frame ("server shutting down"), then everything stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from brokerbridge import __version__
from brokerbridge.cli import discovery
from brokerbridge.cli.common import ConfigOpt, LogFormatOpt, LogLevelOpt, SimOpt, fail, load, setup_logging
from brokerbridge.cli.runtime import venue_config
from brokerbridge.core.config import Config
from brokerbridge.core.errors import BrokerBridgeError, ConfigError

if TYPE_CHECKING:  # imported when serving: the server stack is most of the CLI's start-up time
    from brokerbridge.bridge import Bridge
    from brokerbridge.cluster.node import ClusterNode
    from brokerbridge.server import BridgeServer

logger = logging.getLogger(__name__)

LoginLinkOpt = Annotated[
    bool | None,
    typer.Option(
        "--login-link/--no-login-link",
        help="Print a one-time dashboard sign-in link (market + account scopes, valid 10 min) "
        "(default: yes when --host is a loopback address).",
        show_default=False,
    ),
]


VenueOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--venue",
        help="Run only this venue: kraken or primary (repeatable; also server.venues in the config file). "
        "Default: both, "
        "each on its embedded simulator when it has no credentials.",
        show_default=False,
    ),
]


ClusterOpt = Annotated[
    str | None,
    typer.Option(
        "--cluster",
        metavar="REDIS_URL",
        help="Run as a node of a cluster on this Redis (redis://host:6379/0; also [cluster] redis_url): "
        "it serves clients from the events the venues' holders publish there and, unless "
        '[cluster] role = "edge", may hold venue sessions itself. No embedded simulator is '
        "started in cluster mode: every node must reach the same venue (run `brokerbridge sim "
        "kraken|primary` once and point the config at it).",
        show_default=False,
    ),
]


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0: any free port).")] = 8000,
    config: ConfigOpt = None,
    sim: SimOpt = None,
    log_level: LogLevelOpt = None,
    log_format: LogFormatOpt = None,
    login_link: LoginLinkOpt = None,
    venue: VenueOpt = None,
    cluster: ClusterOpt = None,
) -> None:
    """Serve WebSocket + REST to many clients over one upstream session per venue."""
    err = Console(stderr=True)
    cfg = load(config, console=err, venues=venue, cluster=cluster)
    setup_logging(
        log_level or cfg.log_level,
        err,
        [
            cfg.kraken.api_secret,
            cfg.primary.password if cfg.primary else None,
            *(key.key for key in cfg.server.keys),  # client keys may arrive as ?key= in URLs
        ],
        fmt=log_format or cfg.log_format,
    )
    from brokerbridge.server.auth import is_loopback

    try:
        link = is_loopback(host) if login_link is None else login_link
        asyncio.run(_serve(cfg, host, port, sim, err, login_link=link))
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        pass
    except BrokerBridgeError as exc:
        fail(exc, err)


async def _serve(
    cfg: Config, host: str, port: int, sim: bool | None, err: Console, *, login_link: bool
) -> None:
    from brokerbridge.bridge import Bridge
    from brokerbridge.cluster.node import ClusterNode
    from brokerbridge.server import BridgeServer, ServerSettings

    async with contextlib.AsyncExitStack() as stack:
        node: ClusterNode | None = None
        if cfg.cluster.redis_url is None:
            run_cfg = await stack.enter_async_context(
                venue_config(cfg, use_sim=sim, console=err, venues=cfg.venues)
            )
            bridge = await stack.enter_async_context(Bridge(run_cfg, grace_s=cfg.server.grace_s))
        else:
            if sim:
                raise ConfigError(
                    "--sim cannot be used with --cluster: each node would log in to a simulator of its own",
                    remedy="run `brokerbridge sim kraken` / `brokerbridge sim primary` once and point "
                    "every node's config at its URLs (the cluster guide: Operating it)",
                )
            node = await stack.enter_async_context(ClusterNode(cfg))
            bridge = node.bridge
        server = await stack.enter_async_context(
            BridgeServer(bridge, host=host, port=port, settings=ServerSettings.from_config(cfg.server))
        )
        if node is not None:
            node.heartbeat.url = server.http_url  # `status` shows where each node serves
        await _serving(cfg, host, bridge, server, node, login_link=login_link)


async def _serving(
    cfg: Config,
    host: str,
    bridge: Bridge,
    server: BridgeServer,
    node: ClusterNode | None,
    *,
    login_link: bool,
) -> None:
    loop = asyncio.get_running_loop()
    stopping: set[asyncio.Task[None]] = set()

    def on_signal(signum: int) -> None:
        if not stopping:
            logger.info("%s: shutting down", signal.Signals(signum).name)
            stopping.add(loop.create_task(server.shutdown()))

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    found: Path | None = None
    try:
        found = _announce(cfg, host, server.port, bridge.clock.time())
        names = [f"{v} (SIMULATED)" if v in bridge.simulated else v for v in bridge.connectors]
        print(f"brokerbridge serving venues: {', '.join(names)}", flush=True)
        if node is not None:
            print(
                f"  Cluster mode: node {node.node_id}, role {node.role}, Redis {node.where}",
                flush=True,
            )
        if login_link:
            print(f"  Dashboard:   {server.login_url()}   (one-time sign-in link, 10 min)", flush=True)
        else:
            print(f"  Dashboard:   {server.http_url}/   (sign in with an API key)", flush=True)
        print(f"  API docs:    {server.http_url}/docs", flush=True)
        print(f"  WebSocket:   {server.ws_url}", flush=True)
        print(f"  Metrics:     {server.http_url}/metrics", flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        await server.wait_closed()
        for task in stopping:
            await task
    finally:
        if found is not None:
            discovery.remove(found, os.getpid())
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def _announce(cfg: Config, host: str, port: int, now: float) -> Path | None:
    """Write the discovery file (cli/discovery.py) through which `watch`, `doctor`, `instruments`,
    `status` and `login-link` find this server; its path, or None when it cannot be written (they
    then need `--bridge URL`)."""
    path = discovery.discovery_file(cfg.server.state_dir)
    try:
        discovery.write(
            path,
            discovery.Discovery(
                url=discovery.local_url(host, port),
                pid=os.getpid(),
                started_at=now,
                version=__version__,
            ),
        )
    except OSError as exc:
        logger.warning(
            "cannot write %s (%s): other brokerbridge commands will not find this server by themselves; "
            "give them --bridge URL or set [client] url",
            path,
            exc.strerror or exc,
        )
        return None
    return path
