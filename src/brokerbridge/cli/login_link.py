"""`brokerbridge login-link`: a fresh one-time dashboard sign-in link from a running `serve`.

The link `serve` prints at start works once, for 10 minutes; this asks the running server for
another (`POST /api/login-link`), which it grants to a caller on its own machine or one with an
admin key ([client] key). The link goes to stdout with print(), never through logging.

Exit codes: 0 a link was printed, 2 the server refused (or a bad option), 3 no `serve` runs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
from typing import Annotated

import msgspec
import typer
from rich.console import Console

from brokerbridge.cli.attach import BridgeOpt, LoginLinkResponse
from brokerbridge.cli.common import ConfigOpt, LogFormatOpt, LogLevelOpt, fail, load, setup_logging
from brokerbridge.cli.status import running_server
from brokerbridge.core.config import Config
from brokerbridge.core.errors import BrokerBridgeError


def login_link(
    json_out: Annotated[
        bool, typer.Option("--json", help='Print {"url": …, "expires_at": …} (for scripts).')
    ] = False,
    trade: Annotated[
        bool,
        typer.Option(
            "--trade",
            help="The session may also place, cancel and amend orders (the trade scope); from another "
            "machine the \\[client] key needs the trade scope too.",
        ),
    ] = False,
    bridge: BridgeOpt = None,
    config: ConfigOpt = None,
    log_level: LogLevelOpt = None,
    log_format: LogFormatOpt = None,
) -> None:
    """Print a fresh one-time dashboard sign-in link (market + account, + trade with --trade; valid
    10 minutes) from a running `brokerbridge serve`: on its machine, or with an admin key
    (\\[client] key)."""
    err = Console(stderr=True)
    cfg = load(config, console=err)
    setup_logging(log_level or "WARNING", err, [cfg.client.key], fmt=log_format or cfg.log_format)
    try:
        link = asyncio.run(_link(cfg, bridge, err, trade))
    except BrokerBridgeError as exc:
        fail(exc, err)
        return
    if json_out:
        sys.stdout.write(msgspec.json.encode(link).decode() + "\n")
    else:
        until = dt.datetime.fromtimestamp(link.expires_at).strftime("%H:%M")
        print(link.url, flush=True)
        err.print(f"one-time sign-in link: works once, until {until}", style="dim", highlight=False)


async def _link(cfg: Config, bridge: str | None, err: Console, trade: bool) -> LoginLinkResponse:
    found = await running_server(cfg, bridge, err)
    async with found.client() as client:
        return await client.login_link(trade=trade)
