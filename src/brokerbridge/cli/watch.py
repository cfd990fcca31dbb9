"""`brokerbridge watch [venue] [symbols…]`: a live view of tickers, balances and stream status on a
terminal; one line per normalized event otherwise (or JSON lines)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live

from brokerbridge.cli.attach import (
    BridgeOpt,
    StandaloneOpt,
    Streams,
    attached_streams,
    find_bridge,
    simulated_banner,
)
from brokerbridge.cli.common import (
    ConfigOpt,
    LogFormatOpt,
    LogLevelOpt,
    RestUrlOpt,
    SimOpt,
    WsAuthUrlOpt,
    WsUrlOpt,
    fail,
    load,
    setup_logging,
)
from brokerbridge.cli.render import render
from brokerbridge.cli.runtime import venue_config
from brokerbridge.cli.watch_board import WatchBoard
from brokerbridge.core.config import Config
from brokerbridge.core.errors import BrokerBridgeError
from brokerbridge.core.events import AnyEvent, Channel, encode_event
from brokerbridge.venues.defaults import book_depth as default_book_depth

DEFAULT_CHANNELS = ["ticker", "trades", "balances", "executions"]
PRIVATE = frozenset(c.value for c in Channel if c.private)
DEFAULT_SYMBOLS = {"kraken": "BTC/USD", "primary": "MERV - XMEV - GGAL - 24hs"}


VENUES = ("kraken", "primary")


def watch(
    target: Annotated[
        list[str] | None,
        typer.Argument(
            help="[VENUE] [SYMBOL…], e.g. `kraken BTC/USD ETH/USD` or `primary 'MERV - XMEV - GGAL - 24hs'` "
            "(the same as --venue and --symbol).",
            show_default=False,
        ),
    ] = None,
    channel: Annotated[
        list[str] | None,
        typer.Option(
            "--channel",
            "-C",
            help="ticker, book, trades, candles, stats, instruments, balances, executions, positions "
            "(repeatable). "
            "Default: ticker, trades, and balances + executions when credentials are available.",
            show_default=False,
        ),
    ] = None,
    symbol: Annotated[
        list[str] | None,
        typer.Option(
            "--symbol",
            "-s",
            help="Venue symbol, e.g. BTC/USD or 'MERV - XMEV - GGAL - 24hs' (repeatable).",
            show_default=False,
        ),
    ] = None,
    venue: Annotated[str, typer.Option(help="Venue to watch: kraken or primary.")] = "kraken",
    depth: Annotated[
        int | None,
        typer.Option(
            help="Book depth (Kraken: 10, 25, 100, 500, 1000; Primary: 1-5). Default 10 / 5.",
            show_default=False,
        ),
    ] = None,
    interval: Annotated[int, typer.Option(help="Candle interval in minutes.")] = 1,
    json_lines: Annotated[bool, typer.Option("--json", help="Print events as JSON lines.")] = False,
    live: Annotated[
        bool | None,
        typer.Option(
            "--live/--lines",
            help="A live view of tickers, balances and stream status, or one line per event "
            "(default: live on a terminal).",
            show_default=False,
        ),
    ] = None,
    sim: SimOpt = None,
    count: Annotated[int, typer.Option(help="Stop after this many events (0 = run until Ctrl-C).")] = 0,
    config: ConfigOpt = None,
    kraken_rest_url: RestUrlOpt = None,
    kraken_ws_url: WsUrlOpt = None,
    kraken_ws_auth_url: WsAuthUrlOpt = None,
    log_level: LogLevelOpt = None,
    log_format: LogFormatOpt = None,
    bridge: BridgeOpt = None,
    standalone: StandaloneOpt = False,
) -> None:
    """Show live tickers, balances and stream status: through a running `brokerbridge serve` when
    one runs (no login of its own), else connecting itself (to the simulator by default)."""
    err = Console(stderr=True)
    cfg = load(config, kraken_rest_url, kraken_ws_url, kraken_ws_auth_url, err)
    setup_logging(
        log_level or cfg.log_level,
        err,
        [cfg.kraken.api_secret, cfg.primary.password if cfg.primary else None, cfg.client.key],
        fmt=log_format or cfg.log_format,
    )
    out = Console(highlight=False, soft_wrap=True, emoji=False)
    venue, positional = _split_target(target or [], venue, err)
    try:
        symbols = [*positional, *(symbol or [])] or [DEFAULT_SYMBOLS.get(venue, "BTC/USD")]
        book_depth = default_book_depth(venue, depth)
        show_live = not json_lines and (live if live is not None else out.is_terminal)
        plan = _WatchPlan(venue, channel, symbols, book_depth, interval, json_lines, sim, count, show_live)
        plan = dataclasses.replace(plan, bridge_url=bridge, standalone=standalone)
        asyncio.run(_watch(cfg, plan, out, err))
    except KeyboardInterrupt:
        pass
    except BrokerBridgeError as exc:
        fail(exc, err)


def _split_target(target: list[str], venue: str, err: Console) -> tuple[str, list[str]]:
    """`[VENUE] [SYMBOL…]` → (venue, symbols); a venue given both ways must agree."""
    if target and target[0].lower() in VENUES:
        named = target[0].lower()
        if venue != "kraken" and venue != named:  # --venue left at its default does not conflict
            err.print(f"[bold red]error:[/] venue {named!r} and --venue {venue!r} disagree")
            raise typer.Exit(2)
        return named, target[1:]
    return venue, target


@dataclass(frozen=True)
class _WatchPlan:
    venue: str
    channels: list[str] | None
    symbols: list[str]
    depth: int
    interval: int
    json_lines: bool
    sim: bool | None
    count: int
    live: bool = False
    bridge_url: str | None = None  # --bridge
    standalone: bool = False


async def _watch(cfg: Config, plan: _WatchPlan, out: Console, err: Console) -> None:
    async with _streams(cfg, plan, err) as (bridge, has_credentials):
        wanted = plan.channels or [c for c in DEFAULT_CHANNELS if not Channel(c).private or has_credentials]
        streams: list[AsyncIterator[AnyEvent]] = []
        for name in wanted:
            needs_symbol = name in ("ticker", "book", "trades", "candles", "stats")
            for sym in plan.symbols if needs_symbol else [None]:
                # Validate now, so a typo exits with its message instead of failing inside a task.
                bridge.subscription(plan.venue, name, sym, depth=plan.depth, interval=plan.interval)
                streams.append(
                    bridge.subscribe(plan.venue, name, sym, depth=plan.depth, interval=plan.interval)
                )
        queue: asyncio.Queue[AnyEvent | BrokerBridgeError] = asyncio.Queue()

        async def pump(stream: AsyncIterator[AnyEvent]) -> None:
            try:
                async for event in stream:
                    await queue.put(event)
            except BrokerBridgeError as exc:  # e.g. the venue refused the stream for good
                await queue.put(exc)

        # The pumps are owned here: cancelled and awaited on every way out.
        pumps = [asyncio.create_task(pump(stream)) for stream in streams]
        try:
            if plan.live:
                await _show_live(queue, plan, out)
                return
            seen = 0
            while plan.count == 0 or seen < plan.count:
                item = await queue.get()
                if isinstance(item, BrokerBridgeError):
                    raise item
                seen += 1
                if plan.json_lines:
                    sys.stdout.write(encode_event(item).decode() + "\n")
                    sys.stdout.flush()
                else:
                    out.print(render(item))
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)


@contextlib.asynccontextmanager
async def _streams(cfg: Config, plan: _WatchPlan, err: Console) -> AsyncIterator[tuple[Streams, bool]]:
    """Where the events come from, and whether account channels are shown by default: a running
    `serve` (attached: its venue sessions, no login of our own) or, without one, a Bridge of our
    own (standalone; the embedded simulator when the venue has no credentials)."""
    standalone = "--sim: the embedded simulator" if plan.sim else "--standalone" if plan.standalone else None
    attachment = await find_bridge(cfg, plan.bridge_url, standalone, err)
    if attachment is not None:
        private = plan.channels is None or any(c in PRIVATE for c in plan.channels)
        async with attached_streams(attachment, plan.venue, wants_account=private, err=err) as remote:
            yield remote
        return
    from brokerbridge.bridge import Bridge  # here: the server stack and numpy load only when used

    async with (
        venue_config(cfg, use_sim=plan.sim, console=err, venues={plan.venue}) as run_cfg,
        Bridge(run_cfg) as bridge,
    ):
        if plan.venue in run_cfg.simulated:
            simulated_banner(plan.venue, err)
        has_credentials = (
            run_cfg.kraken.has_credentials
            if plan.venue == "kraken"
            else run_cfg.primary is not None and run_cfg.primary.has_credentials
        )
        yield bridge, has_credentials


async def _show_live(
    queue: asyncio.Queue[AnyEvent | BrokerBridgeError], plan: _WatchPlan, out: Console
) -> None:
    board = WatchBoard(plan.venue, plan.symbols)
    with Live(board.render(), console=out, refresh_per_second=4, transient=False) as view:
        while plan.count == 0 or board.events < plan.count:
            item = await queue.get()
            if isinstance(item, BrokerBridgeError):
                raise item
            board.apply(item)
            view.update(board.render())
