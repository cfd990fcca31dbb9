"""What every command shares: logging set-up (with secret redaction), config loading, errors."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from brokerbridge.cli import logs
from brokerbridge.cli.logs import LOG_LEVELS
from brokerbridge.core.config import LOG_FORMATS, Config, load_config
from brokerbridge.core.errors import BrokerBridgeError
from brokerbridge.core.secret import Secret

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML config file (also $BROKERBRIDGE_CONFIG).", show_default=False),
]
RestUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--kraken-rest-url",
        envvar="BROKERBRIDGE_KRAKEN_REST_URL",
        help="Kraken REST base URL (default https://api.kraken.com).",
        show_default=False,
    ),
]
WsUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--kraken-ws-url",
        envvar="BROKERBRIDGE_KRAKEN_WS_URL",
        help="Kraken public WebSocket v2 URL (default wss://ws.kraken.com/v2).",
        show_default=False,
    ),
]
WsAuthUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--kraken-ws-auth-url",
        envvar="BROKERBRIDGE_KRAKEN_WS_AUTH_URL",
        help="Kraken private WebSocket v2 URL (default wss://ws-auth.kraken.com/v2).",
        show_default=False,
    ),
]
SimOpt = Annotated[
    bool | None,
    typer.Option(
        "--sim/--no-sim",
        help="Use the embedded simulator of the venue, or not (default: yes when it has no credentials "
        "or URLs configured).",
        show_default=False,
    ),
]
LogLevelOpt = Annotated[
    str | None,
    typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR (default INFO).", show_default=False),
]


LogFormatOpt = Annotated[
    str | None,
    typer.Option(
        "--log-format",
        help="auto (rich on a terminal, plain one-line otherwise), rich, plain or json (one object per "
        "line); also log_format in the config file and $BROKERBRIDGE_LOG_FORMAT.",
        show_default=False,
    ),
]


def setup_logging(
    level: str, console: Console, secrets: Sequence[Secret | None] = (), fmt: str = "auto"
) -> None:
    """Configure the process's logging (`cli.logs`), or exit 2 naming the bad option."""
    level, fmt = level.upper(), fmt.lower()
    if level not in LOG_LEVELS:
        console.print(f"[bold red]error:[/] --log-level {level!r} is not one of {', '.join(LOG_LEVELS)}")
        raise typer.Exit(2)
    if fmt not in LOG_FORMATS:
        console.print(f"[bold red]error:[/] --log-format {fmt!r} is not one of {', '.join(LOG_FORMATS)}")
        raise typer.Exit(2)
    logs.configure(level, fmt, console, secrets)


def load(
    config: Path | None,
    rest_url: str | None = None,
    ws_url: str | None = None,
    ws_auth_url: str | None = None,
    console: Console | None = None,
    venues: list[str] | None = None,
    cluster: str | None = None,
) -> Config:
    """The config, or exit 2 with the ConfigError's message: the one way a bad setting ends a command.
    `cluster`: `serve --cluster`'s Redis URL ([cluster] redis_url)."""
    try:
        return load_config(
            config,
            overrides={
                "rest_url": rest_url,
                "ws_url": ws_url,
                "ws_auth_url": ws_auth_url,
                "venues": venues,
                "cluster_redis_url": cluster,
            },
        )
    except BrokerBridgeError as exc:
        fail(exc, console)
        raise  # pragma: no cover


def fail(exc: BrokerBridgeError, console: Console | None = None) -> None:
    # escape(): messages name TOML sections ("[kraken]"), which rich would swallow as markup.
    (console or Console(stderr=True)).print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
    raise typer.Exit(2)
