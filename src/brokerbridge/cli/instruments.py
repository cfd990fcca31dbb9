"""`brokerbridge instruments`: Primary's catalogue (cached once a day), filtered and printed."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from brokerbridge.cli.attach import BridgeOpt, StandaloneOpt, find_bridge, venue_summary
from brokerbridge.cli.common import ConfigOpt, LogFormatOpt, LogLevelOpt, SimOpt, fail, load, setup_logging
from brokerbridge.cli.runtime import venue_config
from brokerbridge.core.config import Config
from brokerbridge.core.errors import BrokerBridgeError
from brokerbridge.venues.primary.catalog import Catalog, InstrumentDetail, Kind


def instruments(
    kind: Annotated[
        str | None,
        typer.Option(help="stock, bond, future, option, caucion (CFI families).", show_default=False),
    ] = None,
    cfi: Annotated[
        str | None, typer.Option(help="Exact CFI code, e.g. ESXXXX, OCASPS.", show_default=False)
    ] = None,
    search: Annotated[str, typer.Option(help="Substring of symbol, ticker or underlying.")] = "",
    underlying: Annotated[
        str | None, typer.Option(help="Option chain for this underlying (e.g. GGAL).", show_default=False)
    ] = None,
    json_lines: Annotated[bool, typer.Option("--json", help="Print one JSON object per instrument.")] = False,
    sim: SimOpt = None,
    config: ConfigOpt = None,
    log_level: LogLevelOpt = None,
    log_format: LogFormatOpt = None,
    bridge: BridgeOpt = None,
    standalone: StandaloneOpt = False,
) -> None:
    """List Primary instruments (strike, underlying, expiry, tick, lot) from the daily cache —
    a running `brokerbridge serve`'s when one runs (no login of its own)."""
    err = Console(stderr=True)
    cfg = load(config, console=err)
    setup_logging(
        log_level or "WARNING",
        err,
        [cfg.primary.password if cfg.primary else None, cfg.client.key],
        fmt=log_format or cfg.log_format,
    )
    try:
        rows = asyncio.run(_load(cfg, sim, err, kind, cfi, search, underlying, (bridge, standalone)))
    except BrokerBridgeError as exc:
        fail(exc, err)
        return
    if json_lines:
        for row in rows:
            sys.stdout.write(msgspec.json.encode(row).decode() + "\n")
        return
    table = Table("symbol", "cfi", "ccy", "tick", "lot", "strike", "underlying", "maturity", box=None)
    for d in rows:
        table.add_row(
            d.symbol,
            d.cfi or "",
            d.currency or "",
            format(d.tick, "f") if d.tick is not None else "",
            format(d.lot, "f") if d.lot is not None else "",
            format(d.strike, "f") if d.strike is not None else "",
            d.underlying or "",
            d.maturity.isoformat() if d.maturity else "",
        )
    Console(highlight=False, emoji=False).print(table)
    err.print(f"{len(rows)} instruments")


async def _load(
    cfg: Config,
    sim: bool | None,
    err: Console,
    kind: str | None,
    cfi: str | None,
    search: str,
    underlying: str | None,
    attach: tuple[str | None, bool] = (None, False),
) -> list[InstrumentDetail]:
    """`attach`: --bridge and --standalone."""
    catalog = await _catalog(cfg, sim, err, *attach)
    if underlying:
        return [d for _, call, put in catalog.option_chain(underlying) for d in (call, put) if d is not None]
    rows = catalog.search(search)
    if kind:
        try:
            wanted = Kind(kind)
        except ValueError:
            raise typer.BadParameter(f"kind must be one of {', '.join(k.value for k in Kind)}") from None
        rows = [d for d in rows if d.kind is wanted]
    if cfi:
        rows = [d for d in rows if (d.cfi or "").upper() == cfi.upper()]
    return rows


async def _catalog(
    cfg: Config, sim: bool | None, err: Console, bridge_url: str | None, standalone: bool
) -> Catalog:
    """The catalogue of a running `serve` (attached: no login of our own), else our own Bridge's."""
    reason = "--sim: the embedded simulator" if sim else "--standalone" if standalone else None
    attachment = await find_bridge(cfg, bridge_url, reason, err)
    if attachment is not None:
        async with attachment.client(timeout=60.0) as client:  # a first catalogue download takes a while
            await venue_summary(client, "primary", attachment.url)
            answer = await client.instruments("primary")
        # The rows are the server's InstrumentDetails as JSON (Decimals as text): read back as such.
        return Catalog(
            msgspec.json.decode(msgspec.json.encode(answer.instruments), type=list[InstrumentDetail])
        )
    from brokerbridge.bridge import Bridge  # here: the server stack and numpy load only when used

    async with (
        venue_config(cfg, use_sim=sim, console=err, venues={"primary"}) as run_cfg,
        Bridge(run_cfg, hold_accounts=False) as bridge,  # a catalogue query: no account session
    ):
        return await bridge.catalog("primary")
